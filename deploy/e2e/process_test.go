package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// workspaceRoot is the directory holding go.work, above the test's directory.
func workspaceRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the test's directory")
		}
		dir = parent
	}
}

// buildBinaries builds the named main packages (paths relative to the
// workspace root) into dir and returns dir/<last path element> per package.
func buildBinaries(t *testing.T, dir string, pkgs ...string) map[string]string {
	t.Helper()
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	out := map[string]string{}
	for _, p := range pkgs {
		args = append(args, "./"+p)
		out[filepath.Base(p)] = filepath.Join(dir, filepath.Base(p))
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = workspaceRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// freeAddr returns a 127.0.0.1 address with a port free at the time of
// the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// process is one service binary started by the test.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	// oneShot: expected to exit by itself (its exit is checked by whoever
	// set this), so the cleanup has nothing to stop.
	oneShot bool
}

// startProcess runs bin with args and exactly env (nothing inherited),
// output to <logDir>/<name>.log. It is stopped in t.Cleanup: SIGTERM, then
// SIGKILL after stopWithin.
func startProcess(t *testing.T, name, bin string, args, env []string, logDir string, stopWithin time.Duration) *process {
	t.Helper()
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	// Killed with the test binary if it dies (a panic on timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t, stopWithin) })
	return p
}

// stop sends SIGTERM and waits up to within, then kills. It logs the
// process's CPU time (its own and its reaped children's).
func (p *process) stop(t *testing.T, within time.Duration) {
	select {
	case <-p.done:
		if !p.oneShot {
			t.Errorf("%s had exited before the end of the test: %v", p.name, p.cmd.ProcessState)
		}
		return
	default:
	}
	begin := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", p.name, code)
		}
	case <-time.After(within):
		t.Errorf("%s did not stop within %s of SIGTERM; killed", p.name, within)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	ps := p.cmd.ProcessState
	t.Logf("%s stopped in %s; CPU %.1f s user + %.1f s system (with its reaped children)",
		p.name, time.Since(begin).Round(10*time.Millisecond), ps.UserTime().Seconds(), ps.SystemTime().Seconds())
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitHTTP waits until url answers 200 or the process exits.
func waitHTTP(t *testing.T, p *process, url string, within time.Duration) {
	t.Helper()
	c := http.Client{Timeout: time.Second}
	deadline := time.Now().Add(within)
	for {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p.exited() {
			t.Fatalf("%s exited while starting (%v); log:\n%s", p.name, p.cmd.ProcessState, tail(p.logPath, 40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s within %s; log:\n%s", p.name, url, within, tail(p.logPath, 40))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… %d earlier lines in %s", len(lines)-n, path)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// printLogsOnFailure prints the end of every log in dir if the test failed.
// Register it before starting processes, so that it runs after they stopped.
func printLogsOnFailure(t *testing.T, dir string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			t.Logf("===== %s =====\n%s", e.Name(), tail(filepath.Join(dir, e.Name()), 80))
		}
	})
}

// osProc is a process seen in /proc.
type osProc struct {
	pid  int
	ppid int
	env  map[string]string
}

// recorderProcs lists the live processes running exe whose environment
// has RECORDER_BUCKET=bucket, i.e. this test's recorders.
func recorderProcs(exe, bucket string) []osProc {
	var out []osProc
	for _, p := range allProcs() {
		if p.env["RECORDER_BUCKET"] != bucket {
			continue
		}
		if got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.pid)); err != nil || got != exe {
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

// recordersByDevice lists recorderProcs by the devices each records: a
// recorder is one task, which the task-manager may have packed with
// several devices of the gateway (see devicesOf).
func recordersByDevice(exe, bucket string) map[string][]osProc {
	m := map[string][]osProc{}
	for _, p := range recorderProcs(exe, bucket) {
		for _, d := range p.devices() {
			m[d] = append(m[d], p)
		}
	}
	return m
}

// devices are the devices a recorder records: RECORDER_DEVICE_INDEX and
// those of the <device>/<channel>=<url> entries of RECORDER_CHANNELS (the
// devices packed beside it), sorted.
func (p osProc) devices() []string {
	out := []string{p.env["RECORDER_DEVICE_INDEX"]}
	for _, part := range strings.Split(p.env["RECORDER_CHANNELS"], ",") {
		id, _, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		if dev, _, packed := strings.Cut(id, "/"); packed && !slices.Contains(out, dev) {
			out = append(out, dev)
		}
	}
	slices.Sort(out)
	return out
}

// childrenOf returns the live children of pid.
func childrenOf(pid int) []int {
	var out []int
	for _, p := range allProcs() {
		if p.ppid == pid {
			out = append(out, p.pid)
		}
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z'
}

// allProcs reads every live (non-zombie) process this user may inspect.
func allProcs() []osProc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []osProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, ok := readStat(pid)
		if !ok || st.state == 'Z' {
			continue
		}
		p := osProc{pid: pid, ppid: st.ppid, env: map[string]string{}}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil {
			for _, kv := range bytes.Split(b, []byte{0}) {
				if k, v, ok := strings.Cut(string(kv), "="); ok {
					p.env[k] = v
				}
			}
		}
		out = append(out, p)
	}
	return out
}

type procStat struct {
	state byte
	ppid  int
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return procStat{}, false
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, false
	}
	return procStat{state: f[0][0], ppid: ppid}, true
}

// metric sums the samples of a Prometheus metric whose labels include
// every one of labels (`name="value"` strings) on a /metrics page.
func metric(t *testing.T, url, name string, labels ...string) float64 {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("metrics %s: %v", url, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		// The value follows the last space (label values may hold spaces:
		// event_type="eventbridge:ECS Task State Change").
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, value := line[:i], line[i+1:]
		n, l, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		match := true
		for _, want := range labels {
			if !strings.Contains(l, want) {
				match = false
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics %s: %q: %v", url, line, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("metrics %s: %v", url, err)
	}
	return sum
}

// eventually polls cond every interval until it returns nil or within
// has passed; then the test fails with what and cond's last error.
func eventually(t *testing.T, what string, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	begin := time.Now()
	for {
		err := cond()
		if err == nil {
			t.Logf("%s: after %s", what, time.Since(begin).Round(100*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// syscallKill sends SIGKILL to pid.
func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
