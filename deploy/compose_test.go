package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"mediagw/pkg/topology"
)

// loadCompose loads docker-compose.yml with compose-go (the library docker
// compose itself uses, schema validation included; no Docker engine
// needed).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join("..", "docker-compose.yml")}, cli.WithName("mediagw"))
	if err != nil {
		t.Fatal(err)
	}
	// Every profile, so that on-demand services (mediagw-ctl) are checked too.
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	project, err = project.WithProfiles([]string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	return project
}

// binaryOf is the binary a compose service runs: the SERVICE its image is
// built for (deploy/Dockerfile's entry point), "" for other images.
func binaryOf(svc types.ServiceConfig) string {
	if svc.Build == nil || svc.Build.Dockerfile != "deploy/Dockerfile" || len(svc.Entrypoint) > 0 {
		return ""
	}
	if v := svc.Build.Args["SERVICE"]; v != nil {
		return *v
	}
	return ""
}

// buildBinaries builds, into a temporary directory, the main packages
// named by their binary (deploy/cmd/provision, services/*/cmd/<name>).
func buildBinaries(t *testing.T, names []string) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		pkg := "./deploy/cmd/" + n
		if matches, _ := filepath.Glob(filepath.Join("..", "services", "*", "cmd", n)); len(matches) == 1 {
			pkg = "./" + filepath.ToSlash(strings.TrimPrefix(matches[0], ".."+string(filepath.Separator)))
		}
		args = append(args, pkg)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// sdkVariable reports whether a variable is the AWS SDK's (read by every
// binary through pkg/awsenv, not a setting of its own).
func sdkVariable(k string) bool { return strings.HasPrefix(k, "AWS_") }

// TestCompose checks docker-compose.yml against the binaries it runs,
// built from this tree:
//
//   - settings: each service's binary, run with the service's command and
//     exactly its environment plus --check-settings (pkg/service: the
//     validation a start does, connecting nowhere), accepts them and reads
//     every variable compose sets for it (one it ignores is a mistake
//     waiting to be believed);
//   - queues: every queue compose names goes to the service that
//     topology.json says consumes it, and every queue that a binary running
//     in compose declares (its --help) is given to it.
//
// That the services handle what arrives on those queues, and that the
// provisioning step asks only for what LocalStack's free build serves, is
// shown by running this configuration: deploy/e2e TestComposeOnLocalStack.
func TestCompose(t *testing.T) {
	project := loadCompose(t)
	var names []string
	seen := map[string]bool{}
	for _, svc := range project.Services {
		if b := binaryOf(svc); b != "" && !seen[b] {
			seen[b] = true
			names = append(names, b)
		}
	}
	sort.Strings(names)
	for _, want := range []string{"provision", "gateway-sim", "configurator", "device-watcher", "task-manager", "health-sentinel"} {
		if !seen[want] {
			t.Errorf("no service of docker-compose.yml runs %s", want)
		}
	}
	bin := buildBinaries(t, names)

	t.Run("settings", func(t *testing.T) {
		for name, svc := range project.Services {
			b := binaryOf(svc)
			if b == "" {
				continue
			}
			t.Run(name, func(t *testing.T) {
				args := append(append([]string(nil), svc.Command...), "--check-settings")
				out, err := run(filepath.Join(bin, b), args, composeEnv(svc))
				if err != nil {
					t.Fatalf("%s %s refuses the settings compose gives it: %v", b, strings.Join(args, " "), err)
				}
				read := map[string]bool{}
				for _, v := range strings.Fields(out) {
					read[v] = true
				}
				for k := range svc.Environment {
					if !sdkVariable(k) && !read[k] {
						t.Errorf("compose sets %s, which %s does not read", k, b)
					}
				}
			})
		}
	})

	t.Run("queues", func(t *testing.T) {
		queueOf := map[string]topology.Queue{}
		for _, q := range topology.Default().Queues {
			queueOf[topology.EnvName(q.Name, "QUEUE_URL")] = q
		}
		given := map[string]bool{}      // queues compose names
		services := map[string]string{} // binary → compose service running it (no command: the service itself)
		for name, svc := range project.Services {
			if b := binaryOf(svc); b != "" && len(svc.Command) == 0 {
				services[b] = name
			}
			for k, v := range svc.Environment {
				if !strings.HasSuffix(k, "_QUEUE_URL") || v == nil {
					continue
				}
				q, ok := queueOf[k]
				switch {
				case !ok:
					t.Errorf("service %s: %s is no queue of topology.json", name, k)
				case binaryOf(svc) != q.Consumer:
					t.Errorf("queue %s is given to %s, but %s consumes it", q.Name, name, q.Consumer)
				case !strings.HasSuffix(*v, "/"+q.Name):
					t.Errorf("service %s: %s = %q is not queue %s", name, k, *v, q.Name)
				default:
					given[q.Name] = true
				}
			}
		}
		for _, q := range topology.Default().Queues {
			name, ok := services[q.Consumer]
			if !ok || given[q.Name] {
				continue
			}
			help, err := run(filepath.Join(bin, q.Consumer), []string{"--help"}, nil)
			if err != nil {
				t.Fatalf("%s --help: %v", q.Consumer, err)
			}
			if declares(help, topology.EnvName(q.Name, "QUEUE_URL")) {
				t.Errorf("queue %s: %s consumes it, but compose's %s is not given it", q.Name, q.Consumer, name)
			}
		}
	})
}

// composeEnv is exactly a compose service's environment.
func composeEnv(svc types.ServiceConfig) []string {
	var env []string
	for k, v := range svc.Environment {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	return env
}

// run runs bin with args and exactly env; the error carries its stderr.
func run(bin string, args, env []string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// declares reports whether a binary's --help lists the variable.
func declares(help, variable string) bool {
	for _, line := range strings.Split(help, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == variable {
			return true
		}
	}
	return false
}
