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
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"mediagw/deploy/provision"
	"mediagw/pkg/topology"
	"mediagw/testsupport/awstest"
)

// Timings of the system under test: short, so that the whole story fits in
// a couple of minutes.
const (
	gatewayID     = "gw-local" // the gateway topology.json has parameters for
	cameras       = 3
	segmentLength = 4 * time.Second
	gop           = 2 * time.Second // the simulator's keyframe interval
	hysteresis    = 3 * time.Second
	keyPrefix     = "recordings"
)

// system is the whole recording path running as processes against private
// emulator resources.
type system struct {
	work, logDir string
	bins         map[string]string
	res          provision.Resources
	bucket       string
	password     string // the gateway's; must show nowhere

	sim      *process
	simAdmin string // http://host:port of the simulator's admin API
	watcher  *process
	tm       *process
	tmHTTP   string // http://host:port of the task-manager's /metrics
	// sentinel and its mails (withSentinel only).
	sentinel     *process
	sentinelHTTP string
	mails        *mailbox

	// s3Switch stands between the recorders and the emulator's S3.
	s3Switch *tcpSwitch

	awsCfg aws.Config
	ddb    *dynamodb.Client
	rec    recordings
	// redeliver delivers every device event to the task-manager a second time.
	redeliver *redeliverer
}

// systemOption adds to what startSystem starts.
type systemOption func(*systemConfig)

type systemConfig struct {
	sentinel bool
}

// Timings of the simulated machine and the health-sentinel (withSentinel).
// The detection is left at its defaults (HEALTH_CHECK_INTERVAL 20 s,
// GATEWAY_TIMEOUT 10 s, the device-watcher's UNREACHABLE_AFTER 10 s), so
// the times measured are those of a deployment; only what follows the
// recovery is shortened.
const (
	rebootDowntime     = 5 * time.Second  // a reboot of the simulated machine (as `make run`'s)
	resolvedMailSettle = 10 * time.Second // RESOLVED_MAIL_SETTLE (45 s by default)
)

// withSentinel also starts the health-sentinel, looking after the gateway
// and recovering it through the simulator's admin API
// (GATEWAY_SIM_ADMIN_URL, as in `make run`), and reads its alert mails
// from the mediagw-alert-mail queue (system.mails).
func withSentinel() systemOption { return func(c *systemConfig) { c.sentinel = true } }

// startSystem builds the binaries, provisions a private topology and starts
// the gateway simulator, the device-watcher and the task-manager (local
// launcher), each on free loopback ports, and with withSentinel the
// health-sentinel. No configurator: the simulator starts with the gateway's
// desired password (the SSM Password parameter), which is what the
// configurator would have set, and the gateway has no BootstrapPassword
// parameter (a reboot of the simulated machine keeps its settings, so
// nothing needs the GatewayRecovered the sentinel publishes either).
func startSystem(t *testing.T, opts ...systemOption) *system {
	var conf systemConfig
	for _, o := range opts {
		o(&conf)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &system{work: t.TempDir()}
	s.logDir = filepath.Join(s.work, "logs")
	if err := os.MkdirAll(s.logDir, 0o700); err != nil {
		t.Fatal(err)
	}
	printLogsOnFailure(t, s.logDir)

	begin := time.Now()
	pkgs := []string{"services/gateway-sim/cmd/gateway-sim", "services/device-watcher/cmd/device-watcher",
		"services/task-manager/cmd/task-manager", "services/recorder/cmd/recorder"}
	if conf.sentinel {
		pkgs = append(pkgs, "services/health-sentinel/cmd/health-sentinel")
	}
	s.bins = buildBinaries(t, filepath.Join(s.work, "bin"), pkgs...)
	t.Logf("binaries built in %s", time.Since(begin).Round(100*time.Millisecond))

	endpoint := awstest.Endpoint(t)
	cfg := awstest.Config(t)
	res, err := provision.Apply(ctx, cfg, topology.Default(), provision.Options{Prefix: awstest.Name("e2e") + "-", LocalParameters: true})
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	s.res = res
	s.bucket = res.Buckets["mediagw-recordings"]
	s.awsCfg = cfg
	s.ddb = dynamodb.NewFromConfig(cfg)
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true // the emulator sends no checksums
	})
	s.rec = recordings{s3: s3c, bucket: s.bucket, prefix: keyPrefix + "/" + gatewayID}
	s.redeliver = startRedeliverer(ctx, t, cfg, res.Topics["mediagw-device-events"], res.Queues["mediagw-task-manager-device-events"].URL)

	// The gateway's password: what the configurator would have set, read
	// where every service reads it. The simulator takes it from a file
	// (0600), never from its command line.
	pw, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{
		Name: aws.String(res.Parameters["/mediagw/gateways/"+gatewayID+"/Password"]), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatalf("gateway password parameter: %v", err)
	}
	s.password = aws.ToString(pw.Parameter.Value)
	// Nor has it a factory password any more: with a BootstrapPassword
	// parameter the device-watcher would wait for the configurator before
	// its first login (a factory-fresh gateway rejects the configured one).
	if _, err := ssm.NewFromConfig(cfg).DeleteParameter(ctx, &ssm.DeleteParameterInput{
		Name: aws.String(res.Parameters["/mediagw/gateways/"+gatewayID+"/BootstrapPassword"])}); err != nil {
		t.Fatalf("bootstrap password parameter: %v", err)
	}
	pwFile := filepath.Join(s.work, "gateway-password")
	if err := os.WriteFile(pwFile, []byte(s.password), 0o600); err != nil {
		t.Fatal(err)
	}
	// Secrets never appear in logs (checked once every process has stopped).
	t.Cleanup(func() {
		entries, _ := os.ReadDir(s.logDir)
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(s.logDir, e.Name())); err == nil && strings.Contains(string(b), s.password) {
				t.Errorf("log %s contains the gateway password", e.Name())
			}
		}
	})

	// Only the recorders' S3 goes through the switch (AWS_ENDPOINT_URL_S3
	// wins over AWS_ENDPOINT_URL for S3 in the SDK; the task-manager passes
	// AWS_* to its tasks). Registered before the processes, so it closes
	// after they stopped.
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	s.s3Switch = newTCPSwitch(t, u.Host)

	// Recorders still running once the task-manager has stopped would be
	// leaked processes: fail and end them (by pid; they are this test's).
	t.Cleanup(func() {
		for _, p := range recorderProcs(s.bins["recorder"], s.bucket) {
			t.Errorf("recorder pid %d (device %s) still running after the task-manager stopped; killing it", p.pid, p.env["RECORDER_DEVICE_INDEX"])
			_ = syscallKill(p.pid)
		}
	})

	home, _ := os.UserHomeDir()
	// The emulators' endpoints (with MEDIAGW_TEST_AWS=localstack also
	// AWS_ENDPOINT_URL_DYNAMODB and _ECS, moto's).
	base := append(awstest.Env(t), "PATH="+os.Getenv("PATH"), "HOME="+home, "TMPDIR="+os.TempDir(),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"LOG_LEVEL=info")
	for k, v := range res.Env() {
		base = append(base, k+"="+v)
	}
	sort.Strings(base)
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }

	simHTTP, simRTSP, simAdmin := freeAddr(t), freeAddr(t), freeAddr(t)
	mediaDir := filepath.Join(os.TempDir(), "mediagw-gatewaysim-media")
	if c, err := os.UserCacheDir(); err == nil {
		mediaDir = filepath.Join(c, "mediagw", "gatewaysim-media") // the simulator's default: rendered once per machine
	}
	s.simAdmin = "http://" + simAdmin
	simArgs := []string{
		"--http-addr", simHTTP, "--rtsp-addr", simRTSP, "--admin-addr", simAdmin,
		"--devices", fmt.Sprint(cameras), "--channels", "1", "--device-seed", awstest.Name("e2e"),
		"--admin-password-file", pwFile, "--media-dir", mediaDir,
	}
	if conf.sentinel {
		simArgs = append(simArgs, "--reboot-downtime", rebootDowntime.String())
	}
	s.sim = startProcess(t, "gateway-sim", s.bins["gateway-sim"], simArgs, with(), s.logDir, 15*time.Second)
	waitHTTP(t, s.sim, s.simAdmin+"/admin/healthz", 2*time.Minute)

	watcherHTTP := freeAddr(t)
	s.watcher = startProcess(t, "device-watcher", s.bins["device-watcher"], nil, with(
		"HTTP_ADDR="+watcherHTTP, "GATEWAYS="+gatewayID+"=http://"+simHTTP,
		"POLL_INTERVAL=1s", "OFFLINE_HYSTERESIS="+hysteresis.String(), "SHUTDOWN_GRACE=5s",
	), s.logDir, 20*time.Second)

	tmHTTP := freeAddr(t)
	s.tmHTTP = "http://" + tmHTTP
	s.tm = startProcess(t, "task-manager", s.bins["task-manager"], nil, with(
		"HTTP_ADDR="+tmHTTP, "LAUNCHER=local", "RECORDER_BINARY="+s.bins["recorder"],
		"LOCAL_SPOOL_DIR="+filepath.Join(s.work, "spool"), "LOCAL_LOG_DIR="+s.logDir,
		"SEGMENT_LENGTH="+segmentLength.String(), "RECORDINGS_KEY_PREFIX="+keyPrefix,
		"RECONCILE_INTERVAL=5s", "RESTART_INITIAL=1s", "RECORDER_STOP_TIMEOUT=10s", "SHUTDOWN_GRACE=15s",
		"AWS_ENDPOINT_URL_S3=http://"+s.s3Switch.Addr(),
	), s.logDir, 30*time.Second)

	if conf.sentinel {
		// The mails are read from the start: any mail the system sends counts.
		s.mails = startMailbox(t, cfg, res.Queues["mediagw-alert-mail"].URL)
		sentinelHTTP := freeAddr(t)
		s.sentinelHTTP = "http://" + sentinelHTTP
		s.sentinel = startProcess(t, "health-sentinel", s.bins["health-sentinel"], nil, with(
			"HTTP_ADDR="+sentinelHTTP, "GATEWAYS="+gatewayID+"=http://"+simHTTP,
			"GATEWAY_SIM_ADMIN_URL="+s.simAdmin, "INSTANCE_ID=e2e-sentinel",
			"RECORDINGS_KEY_PREFIX="+keyPrefix, "RESOLVED_MAIL_SETTLE="+resolvedMailSettle.String(),
			"RECOVERY_POLL_INTERVAL=2s", "QUEUE_WAIT_TIME=2s", "SHUTDOWN_GRACE=5s",
		), s.logDir, 20*time.Second)
	}

	waitHTTP(t, s.watcher, "http://"+watcherHTTP+"/readyz", time.Minute)
	waitHTTP(t, s.tm, s.tmHTTP+"/readyz", time.Minute)
	if s.sentinel != nil {
		waitHTTP(t, s.sentinel, s.sentinelHTTP+"/readyz", time.Minute)
	}
	t.Logf("system up in %s (simulator ISAPI %s, RTSP %s)", time.Since(begin).Round(100*time.Millisecond), simHTTP, simRTSP)
	return s
}

// simDevice is a camera as the simulator's admin API shows it.
type simDevice struct {
	DevIndex string `json:"devIndex"`
	Name     string `json:"name"`
	Status   string `json:"status"`
}

// devices lists the simulator's cameras by name.
func (s *system) devices(t *testing.T) []simDevice {
	t.Helper()
	var ds []simDevice
	s.admin(t, http.MethodGet, "/admin/devices", "", http.StatusOK, &ds)
	sort.Slice(ds, func(i, j int) bool { return ds[i].Name < ds[j].Name })
	return ds
}

func (s *system) setStatus(t *testing.T, dev, status string) {
	t.Helper()
	s.admin(t, http.MethodPut, "/admin/devices/"+dev+"/status", `{"status":"`+status+`"}`, http.StatusOK, nil)
}

func (s *system) deleteDevice(t *testing.T, dev string) {
	t.Helper()
	s.admin(t, http.MethodDelete, "/admin/devices/"+dev, "", http.StatusNoContent, nil)
}

func (s *system) admin(t *testing.T, method, path, body string, wantStatus int, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.adminDo(ctx, method, path, body, wantStatus, out); err != nil {
		t.Fatal(err)
	}
}

// adminDo is admin for goroutines other than the test's: it returns what
// went wrong.
func (s *system) adminDo(ctx context.Context, method, path, body string, wantStatus int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, s.simAdmin+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("simulator admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		return fmt.Errorf("simulator admin %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("simulator admin %s %s: %w: %s", method, path, err, b)
		}
	}
	return nil
}

// ipCamera is the part of an ip-camera row the test looks at.
type ipCamera struct {
	Want, Status, TaskID, LaunchToken string
}

// ipCameraRow reads a device's row (consistently); ok is false when there is none.
func (s *system) ipCameraRow(t *testing.T, dev string) (row ipCamera, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.res.Tables["ip-camera"]), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"device_index": &ddbtypes.AttributeValueMemberS{Value: dev}}})
	if err != nil {
		t.Fatalf("ip-camera row %s: %v", dev, err)
	}
	if out.Item == nil {
		return ipCamera{}, false
	}
	str := func(k string) string {
		if v, ok := out.Item[k].(*ddbtypes.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	return ipCamera{Want: str("want"), Status: str("status"), TaskID: str("task_id"), LaunchToken: str("launch_token")}, true
}

// ipCameraRows counts the rows of the ip-camera table.
func (s *system) ipCameraRows(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := dynamodb.NewScanPaginator(s.ddb, &dynamodb.ScanInput{TableName: aws.String(s.res.Tables["ip-camera"]), ConsistentRead: aws.Bool(true)})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("scan ip-camera: %v", err)
		}
		n += len(page.Items)
	}
	return n
}

// tmMetric reads one of the task-manager's metrics.
func (s *system) tmMetric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return metric(t, s.tmHTTP+"/metrics", name, labels...)
}

// recorders lists this system's recorder processes by device.
func (s *system) recorders() map[string][]osProc {
	return recordersByDevice(s.bins["recorder"], s.bucket)
}

// segments lists a camera's segments in S3 (channel 1).
func (s *system) segments(t *testing.T, dev string) []segment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	segs, err := s.rec.list(ctx, dev, 1)
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// checkNoSecretInProcesses checks that the gateway password is in the
// command line and environment of no process of the system (services,
// recorders, any ffmpeg they start).
func (s *system) checkNoSecretInProcesses(t *testing.T) {
	t.Helper()
	children := map[int][]int{}
	for _, p := range allProcs() {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	todo := []int{s.sim.cmd.Process.Pid, s.watcher.cmd.Process.Pid, s.tm.cmd.Process.Pid}
	if s.sentinel != nil {
		todo = append(todo, s.sentinel.cmd.Process.Pid)
	}
	services, recorders := len(todo), len(recorderProcs(s.bins["recorder"], s.bucket))
	seen := 0
	for len(todo) > 0 {
		pid := todo[0]
		todo = append(todo[1:], children[pid]...)
		seen++
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, f))
			if err == nil && strings.Contains(string(b), s.password) {
				t.Errorf("the gateway password is in /proc/%d/%s", pid, f)
			}
		}
	}
	// The services and every recorder (a task: with packing one may record
	// every camera) at least: a recorder records in process, it starts
	// ffmpeg only for a channel that needs transcoding.
	if recorders == 0 || seen < services+recorders {
		t.Errorf("only %d processes of the system found, want its %d services and %d recorders at least", seen, services, recorders)
	}
}
