package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"mediagw/pkg/awsenv"
	"mediagw/pkg/topology"
	"mediagw/testsupport/awstest"
)

// TestComposeOnLocalStack runs docker-compose.yml on the host, without
// Docker: LocalStack's free build (the pinned core, .tools/localstack-venv)
// with the services compose asks of it, then every service of the file in
// its dependency order, with its command and environment as written. Only
// what a container gives is translated: host names and ports of services
// (each container port becomes a free loopback port), volumes (temporary
// directories) and the image's /usr/local/bin (the binaries built from
// this tree). One thing is added: DynamoDB, which LocalStack cannot run on
// the host (it runs DynamoDB Local, a Java program it downloads at first
// use; in its container it can), goes to a private moto through
// AWS_ENDPOINT_URL_DYNAMODB.
//
// It checks what `docker compose up` promises:
//
//   - compose asks LocalStack only for services its free build has, and
//     the provisioning step succeeds against a LocalStack serving only
//     those (ECS is refused);
//   - every long-lived service passes its health check;
//   - with no manual step, the announced gateway is configured and every
//     camera is recorded into S3;
//   - a recorder that dies is replaced (its task state change goes
//     through EventBridge to the task-manager's task-state queue);
//   - every queue compose names is consumed by its service, which
//     handles what arrives on it: messages handled, none dead-lettered;
//   - the gateway saw no failed login.
func TestComposeOnLocalStack(t *testing.T) {
	begin := time.Now()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(workspaceRoot(t), "docker-compose.yml")}, cli.WithName("mediagw"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	work := t.TempDir()
	logDir := filepath.Join(work, "logs")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	printLogsOnFailure(t, logDir)

	h := &composeHost{t: t, project: project, work: work, logDir: logDir,
		ports: map[string]map[uint32]string{}, procs: map[string]*process{}}
	h.buildImages()

	// LocalStack as compose runs it.
	ls, ok := project.Services["localstack"]
	if !ok {
		t.Fatal("docker-compose.yml has no localstack service")
	}
	var onHost, asked []string
	dynamo := false
	for _, s := range strings.Split(env(ls, "SERVICES"), ",") {
		s = strings.TrimSpace(s)
		asked = append(asked, s)
		if s == "dynamodb" {
			dynamo = true // to moto: see above
			continue
		}
		onHost = append(onHost, s)
	}
	var lsEnv []string
	for k, v := range ls.Environment {
		if v != nil && k != "SERVICES" && k != "LOCALSTACK_HOST" {
			lsEnv = append(lsEnv, k+"="+*v)
		}
	}
	lsURL := awstest.PrivateLocalStack(t, onHost, lsEnv...)
	u, err := url.Parse(lsURL)
	if err != nil {
		t.Fatal(err)
	}
	// By a host name, as in compose (http://localstack:4566), not an IP
	// address: with an IP the SDK addresses S3 buckets by path whatever
	// the client says, which would hide a client that does not.
	for _, p := range ls.Ports {
		h.mapPort("localstack", p.Target, "localhost:"+u.Port())
	}
	// Every service compose asks for is one of the free build's.
	catalogue := localStackCatalogue(t, lsURL)
	for _, s := range asked {
		if _, ok := catalogue[s]; !ok {
			t.Errorf("compose asks LocalStack for %q, which its free build does not have (it has %s)", s, strings.Join(sortedKeys(catalogue), ", "))
		}
	}
	if !dynamo {
		t.Fatal("compose's LocalStack serves no DynamoDB, which every service needs")
	}
	h.extraEnv = []string{"AWS_ENDPOINT_URL_DYNAMODB=" + awstest.PrivateMoto(t)}
	for name, svc := range project.Services {
		if name != "localstack" {
			h.containerPorts(name, svc)
		}
	}
	t.Logf("LocalStack at %s serving %s (DynamoDB on moto)", lsURL, strings.Join(onHost, ","))

	// Recorders still running once the task-manager has stopped would be
	// leaked processes (registered before the processes: runs after them).
	t.Cleanup(func() {
		for _, p := range recorderProcs(h.bins["recorder"], h.bucket()) {
			t.Errorf("recorder pid %d still running after the task-manager stopped; killing it", p.pid)
			_ = syscallKill(p.pid)
		}
	})

	// Every service in dependency order, as `docker compose up` starts them.
	for _, name := range h.order() {
		h.up(name)
	}
	t.Logf("compose up in %s", time.Since(begin).Round(100*time.Millisecond))

	// Every camera recorded, with no manual step.
	s3c := s3.NewFromConfig(h.awsConfig(lsURL), func(o *s3.Options) {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	rec := recordings{s3: s3c, bucket: h.bucket(), prefix: "recordings/gw-local"}
	devs := h.simDevices()
	if len(devs) == 0 {
		t.Fatal("the simulator has no cameras")
	}
	eventually(t, "every camera recorded into S3", 3*time.Minute, func() error {
		for _, d := range devs {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			segs, err := rec.list(ctx, d, 1)
			cancel()
			if err != nil {
				return err
			}
			if len(segs) == 0 {
				return fmt.Errorf("camera %s: no segment yet", d)
			}
		}
		return nil
	})

	// A recorder dies: its end goes through EventBridge to the task-state
	// queue, and the task-manager starts another.
	procs := recordersByDevice(h.bins["recorder"], h.bucket())
	victim := devs[0]
	if len(procs[victim]) != 1 {
		t.Fatalf("camera %s has %d recorders, want 1", victim, len(procs[victim]))
	}
	killed := procs[victim][0].pid
	if err := syscallKill(killed); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the killed recorder replaced", 2*time.Minute, func() error {
		ps := recordersByDevice(h.bins["recorder"], h.bucket())[victim]
		if len(ps) != 1 || ps[0].pid == killed {
			return fmt.Errorf("recorders of camera %s: %v (killed %d)", victim, pids(ps), killed)
		}
		return nil
	})

	// Every queue compose names: consumed by its service, which handled
	// what came (at least one message) and dead-lettered nothing.
	queues := 0
	for name, svc := range project.Services {
		for k, v := range svc.Environment {
			if !strings.HasSuffix(k, "_QUEUE_URL") || v == nil {
				continue
			}
			queues++
			label := strings.TrimPrefix(lastElement(*v), "mediagw-")
			metrics := h.metricsURL(name)
			eventually(t, fmt.Sprintf("%s handled messages of queue %s", name, label), time.Minute, func() error {
				if n := metric(t, metrics, "mediagw_messages_handled_total", `queue="`+label+`"`); n < 1 {
					return fmt.Errorf("none handled yet; its metrics:\n%s", metricLines(metrics, `queue="`+label+`"`))
				}
				return nil
			})
			if n := metric(t, metrics, "mediagw_messages_dead_lettered_total", `queue="`+label+`"`); n != 0 {
				t.Errorf("%s dead-lettered %v messages of queue %s", name, n, label)
			}
		}
	}
	if queues == 0 {
		t.Fatal("docker-compose.yml names no queue")
	}
	// The gateway was configured and watched without a failed login (the
	// device-watcher awaited its configuration instead of trying the
	// desired password on a factory-fresh gateway).
	var failures struct {
		Total int `json:"total"`
	}
	h.simAdmin("/admin/login-failures", &failures)
	if failures.Total != 0 {
		t.Errorf("the gateway saw %d failed logins, want none", failures.Total)
	}
	t.Logf("the compose configuration did everything in %s", time.Since(begin).Round(100*time.Millisecond))
}

// composeHost runs a compose project's services as processes of the test.
type composeHost struct {
	t        *testing.T
	project  *types.Project
	work     string
	logDir   string
	bins     map[string]string
	binDir   string
	extraEnv []string
	// ports maps a service's container ports to loopback host:port.
	ports map[string]map[uint32]string
	procs map[string]*process
}

// buildImages builds every binary the images hold (deploy/Dockerfile puts
// them all in /usr/local/bin): the compose services' and the recorder.
func (h *composeHost) buildImages() {
	root := workspaceRoot(h.t)
	pkgs := []string{"deploy/cmd/provision"}
	mains, _ := filepath.Glob(filepath.Join(root, "services", "*", "cmd", "*"))
	for _, m := range mains {
		rel, _ := filepath.Rel(root, m)
		pkgs = append(pkgs, filepath.ToSlash(rel))
	}
	h.binDir = filepath.Join(h.work, "bin")
	h.bins = buildBinaries(h.t, h.binDir, pkgs...)
}

// binary is the binary a service's image runs (its SERVICE build arg), ""
// for an image built elsewhere.
func (h *composeHost) binary(svc types.ServiceConfig) string {
	if svc.Build == nil || svc.Build.Args["SERVICE"] == nil {
		return ""
	}
	return *svc.Build.Args["SERVICE"]
}

// mapPort makes container port p of service svc reachable at hostPort
// (host:port); "" takes a free loopback port.
func (h *composeHost) mapPort(svc string, p uint32, hostPort string) {
	if h.ports[svc] == nil {
		h.ports[svc] = map[uint32]string{}
	}
	if _, ok := h.ports[svc][p]; ok {
		return
	}
	if hostPort == "" {
		hostPort = freeAddr(h.t)
	}
	h.ports[svc][p] = hostPort
}

var loopbackPort = regexp.MustCompile(`^(?:127\.0\.0\.1|localhost|0\.0\.0\.0)?:(\d+)$`)
var urlLoopbackPort = regexp.MustCompile(`//(?:127\.0\.0\.1|localhost):(\d+)`)

// containerPorts are the ports a service listens on: those it publishes
// and those its health check and listen settings name.
func (h *composeHost) containerPorts(name string, svc types.ServiceConfig) {
	for _, p := range svc.Ports {
		h.mapPort(name, p.Target, "")
	}
	words := append([]string(nil), svc.Command...)
	for _, v := range svc.Environment {
		if v != nil {
			words = append(words, *v)
		}
	}
	if svc.HealthCheck != nil {
		words = append(words, svc.HealthCheck.Test...)
	}
	for _, w := range words {
		for _, m := range append(loopbackPort.FindAllStringSubmatch(w, -1), urlLoopbackPort.FindAllStringSubmatch(w, -1)...) {
			if p, err := strconv.Atoi(m[1]); err == nil {
				h.mapPort(name, uint32(p), "")
			}
		}
	}
}

// rewrite translates a word of service name's command or environment from
// the compose network to the host.
func (h *composeHost) rewrite(name string, svc types.ServiceConfig, w string) string {
	// Its own listen addresses and loopback URLs (first: the host's
	// addresses put in below are loopback ones too).
	if m := loopbackPort.FindStringSubmatch(w); m != nil {
		p, _ := strconv.Atoi(m[1])
		if hp, ok := h.ports[name][uint32(p)]; ok {
			return hp
		}
	}
	w = urlLoopbackPort.ReplaceAllStringFunc(w, func(s string) string {
		p, _ := strconv.Atoi(urlLoopbackPort.FindStringSubmatch(s)[1])
		if hp, ok := h.ports[name][uint32(p)]; ok {
			return "//" + hp
		}
		return s
	})
	// Other services by name: http://localstack:4566, gateway-sim:18080.
	for other, ports := range h.ports {
		for p, hp := range ports {
			w = strings.ReplaceAll(w, fmt.Sprintf("%s:%d", other, p), hp)
		}
	}
	// Volumes: a directory of the test per volume.
	for _, v := range svc.Volumes {
		if strings.HasPrefix(w, v.Target) {
			dir := filepath.Join(h.work, "volumes", v.Source)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				h.t.Fatal(err)
			}
			w = dir + strings.TrimPrefix(w, v.Target)
		}
	}
	// The image's binaries.
	if rest, ok := strings.CutPrefix(w, "/usr/local/bin/"); ok {
		w = filepath.Join(h.binDir, rest)
	}
	return w
}

// order lists the services `docker compose up` starts (no profile), every
// one after those it depends on; LocalStack, run by the test, is left out.
func (h *composeHost) order() []string {
	var out []string
	done := map[string]bool{"localstack": true}
	for len(done) < len(h.project.Services) {
		progress := false
		names := sortedKeys(h.project.Services)
		for _, name := range names {
			svc := h.project.Services[name]
			if done[name] {
				continue
			}
			ready := true
			for dep := range svc.DependsOn {
				ready = ready && done[dep]
			}
			if ready {
				done[name] = true
				out = append(out, name)
				progress = true
			}
		}
		if !progress {
			h.t.Fatalf("docker-compose.yml: a dependency cycle among the services left: %v", names)
		}
	}
	return out
}

// up starts a service as compose would: once what it depends on is
// healthy or has completed, a one-shot (no restart policy) run to its end,
// which must be success, a long-lived one started and waited for until its
// health check passes.
func (h *composeHost) up(name string) {
	t := h.t
	svc := h.project.Services[name]
	bin := h.binary(svc)
	if bin == "" {
		t.Fatalf("service %s: image %q is not built from deploy/Dockerfile", name, svc.Image)
	}
	args := make([]string, len(svc.Command))
	for i, a := range svc.Command {
		args[i] = h.rewrite(name, svc, a)
	}
	home := filepath.Join(h.work, "home")
	_ = os.MkdirAll(home, 0o700)
	env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + os.TempDir()}, h.extraEnv...)
	for k, v := range svc.Environment {
		if v != nil {
			env = append(env, k+"="+h.rewrite(name, svc, *v))
		}
	}
	sort.Strings(env)
	if svc.Restart == "" || svc.Restart == "no" {
		p := startProcess(t, name, h.bins[bin], args, env, h.logDir, 10*time.Second)
		p.oneShot = true
		select {
		case <-p.done:
		case <-time.After(3 * time.Minute):
			t.Fatalf("one-shot %s still running after 3 minutes; log:\n%s", name, tail(p.logPath, 40))
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("one-shot %s exited %d; log:\n%s", name, code, tail(p.logPath, 40))
		}
		t.Logf("%s done", name)
		return
	}
	p := startProcess(t, name, h.bins[bin], args, env, h.logDir, 30*time.Second)
	h.procs[name] = p
	if svc.HealthCheck == nil {
		t.Fatalf("service %s has no health check", name)
	}
	url := ""
	for _, w := range svc.HealthCheck.Test {
		if strings.HasPrefix(w, "http://") {
			url = h.rewrite(name, svc, w)
		}
	}
	if url == "" {
		t.Fatalf("service %s: health check %v checks no URL", name, svc.HealthCheck.Test)
	}
	waitHTTP(t, p, url, 2*time.Minute)
	t.Logf("%s healthy (%s)", name, url)
}

// metricsURL is where a service's metrics are: beside its health check.
func (h *composeHost) metricsURL(name string) string {
	svc := h.project.Services[name]
	for _, w := range svc.HealthCheck.Test {
		if strings.HasPrefix(w, "http://") {
			u, _ := url.Parse(h.rewrite(name, svc, w))
			u.Path = "/metrics"
			return u.String()
		}
	}
	h.t.Fatalf("service %s: no health check URL", name)
	return ""
}

// bucket is the recordings bucket compose gives the task-manager.
func (h *composeHost) bucket() string {
	return env(h.project.Services["task-manager"], topology.EnvName("mediagw-recordings", "BUCKET"))
}

// simAdmin reads path of the simulator's admin API (at the address compose
// gives it, reached as from inside its container) into out.
func (h *composeHost) simAdmin(path string, out any) {
	svc := h.project.Services["gateway-sim"]
	admin := ""
	for i, a := range svc.Command {
		if a == "--admin-addr" && i+1 < len(svc.Command) {
			admin = h.rewrite("gateway-sim", svc, svc.Command[i+1])
		}
	}
	resp, err := http.Get("http://" + admin + path)
	if err != nil {
		h.t.Fatalf("simulator admin API: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		h.t.Fatalf("simulator admin API %s: %v", path, err)
	}
}

// simDevices lists the simulator's cameras.
func (h *composeHost) simDevices() []string {
	var ds []simDevice
	h.simAdmin("/admin/devices", &ds)
	var out []string
	for _, d := range ds {
		out = append(out, d.DevIndex)
	}
	sort.Strings(out)
	return out
}

// awsConfig is the test's own client configuration for LocalStack.
func (h *composeHost) awsConfig(endpoint string) aws.Config {
	cfg, err := awsenv.Load(context.Background(), config.WithRegion("us-east-1"), config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		h.t.Fatal(err)
	}
	return cfg
}

// localStackCatalogue is every service a LocalStack build has, enabled or
// not, as its health endpoint lists them.
func localStackCatalogue(t *testing.T, endpoint string) map[string]string {
	t.Helper()
	resp, err := http.Get(endpoint + "/_localstack/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var health struct {
		Services map[string]string `json:"services"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&health); err != nil {
		t.Fatal(err)
	}
	return health.Services
}

// env is a compose service's variable ("" when unset).
func env(svc types.ServiceConfig, k string) string {
	if v := svc.Environment[k]; v != nil {
		return *v
	}
	return ""
}

// lastElement is the last element of a URL's path (a queue's name).
func lastElement(u string) string { return u[strings.LastIndex(u, "/")+1:] }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// metricLines are the lines of a /metrics page that contain substr.
func metricLines(url, substr string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
