package awstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// localStack is a LocalStack (open-source core, pinned in
// scripts/bootstrap.sh, installed into .tools/localstack-venv) run on the
// host, without Docker: one Python process in a process group of its own,
// its state and caches in a temporary directory.
type localStack struct {
	endpoint string
	dir      string
	cmd      *exec.Cmd
	done     chan struct{}
}

// startLocalStack starts LocalStack on a free loopback port, serving only
// services, and waits until it says they are available. env adds to (or
// overrides) its settings.
func startLocalStack(services []string, env ...string) (*localStack, error) {
	python, err := tool(filepath.Join(".tools", "localstack-venv", "bin", "python"))
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mediagw-localstack-")
	if err != nil {
		return nil, err
	}
	ls := &localStack{endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir, done: make(chan struct{})}
	log, err := os.Create(filepath.Join(dir, "localstack.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(python, "-m", "localstack.runtime.main")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	cmd.Env = append(localStackBaseEnv(),
		"OVERRIDE_IN_DOCKER=0", // it runs on the host, not in its container
		"FILESYSTEM_ROOT="+filepath.Join(dir, "fs"),
		"XDG_CACHE_HOME="+filepath.Join(dir, "cache"),
		"TMPDIR="+filepath.Join(dir, "fs"),
		"GATEWAY_LISTEN="+listen,
		"LOCALSTACK_HOST="+listen, // the host:port in the URLs it returns (queue URLs)
		"GATEWAY_SERVER=hypercorn",
		"DNS_ADDRESS=0",            // no DNS server of its own
		"SKIP_SSL_CERT_DOWNLOAD=1", // no network: a self-signed certificate
		"SQS_ENDPOINT_STRATEGY=path",
		"DISABLE_EVENTS=1", // no analytics
		"SERVICES="+strings.Join(services, ","),
	)
	cmd.Env = append(cmd.Env, env...)
	// Its own process group, so that Stop ends whatever it started too; and
	// killed with the test binary if that dies before Stop (a panic, a
	// timeout), so no emulator outlives its tests.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start LocalStack: %w", err)
	}
	ls.cmd = cmd
	go func() {
		_ = cmd.Wait()
		log.Close()
		close(ls.done)
	}()
	if err := ls.waitReady(services, 2*time.Minute); err != nil {
		out, _ := os.ReadFile(filepath.Join(dir, "localstack.log"))
		ls.stop()
		return nil, fmt.Errorf("%w; its log:\n%s", err, out)
	}
	return ls, nil
}

// localStackBaseEnv is the test's environment without the variables that
// would steer LocalStack itself (AWS_*, LocalStack's own settings).
func localStackBaseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "PATH", "HOME", "LANG", "LC_ALL", "TZ":
			env = append(env, kv)
		}
	}
	return env
}

// waitReady waits until LocalStack's health endpoint lists every one of
// services as available or running, or LocalStack exits.
func (ls *localStack) waitReady(services []string, within time.Duration) error {
	deadline := time.Now().Add(within)
	c := http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		last = ls.healthy(&c, services)
		if last == nil {
			return nil
		}
		select {
		case <-ls.done:
			return fmt.Errorf("LocalStack exited while starting (%v)", ls.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("LocalStack at %s not ready after %s: %w", ls.endpoint, within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (ls *localStack) healthy(c *http.Client, services []string) error {
	resp, err := c.Get(ls.endpoint + "/_localstack/health")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var h struct {
		Services map[string]string `json:"services"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	for _, s := range services {
		if st := h.Services[s]; st != "available" && st != "running" {
			return fmt.Errorf("service %s is %q", s, st)
		}
	}
	return nil
}

// stop kills LocalStack's process group, waits for it and removes its
// directory.
func (ls *localStack) stop() {
	if ls.cmd != nil && ls.cmd.Process != nil {
		_ = syscall.Kill(-ls.cmd.Process.Pid, syscall.SIGKILL)
		<-ls.done
	}
	os.RemoveAll(ls.dir)
}
