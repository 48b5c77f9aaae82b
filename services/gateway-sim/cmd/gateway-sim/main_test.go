package main

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/testkit"
)

// runMainEnv makes the test binary run main instead of the tests, so the
// tests below run the command as scripts do, without building it.
const runMainEnv = "GATEWAY_SIM_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// command is gateway-sim with args and extra environment.
func command(t *testing.T, args []string, env ...string) (*exec.Cmd, *testkit.Buffer, *testkit.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), exe, args...)
	cmd.Env = append(append(os.Environ(), runMainEnv+"=1"), env...)
	var stdout, stderr testkit.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

func exitCode(t *testing.T, args []string, env ...string) (int, string, string) {
	t.Helper()
	cmd, stdout, stderr := command(t, args, env...)
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("gateway-sim %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

func TestExitCodes(t *testing.T) {
	code, stdout, _ := exitCode(t, []string{"--help"})
	if code != 0 || !strings.Contains(stdout, "--http-addr") || !strings.Contains(stdout, "GATEWAY_SIM_ADMIN_PASSWORD") {
		t.Errorf("--help: exit %d, usage %s", code, stdout)
	}
	for _, args := range [][]string{{"--devices", "many"}, {"extra"}} {
		if code, _, stderr := exitCode(t, args); code != 2 || !strings.Contains(stderr, "gateway-sim: configuration") {
			t.Errorf("gateway-sim %v: exit %d (want 2), stderr %s", args, code, stderr)
		}
	}
	if code, _, stderr := exitCode(t, []string{"--http-addr", "127.0.0.1:0", "--rtsp-addr=", "--admin-addr", "0.0.0.0:0"}); code != 1 || !strings.Contains(stderr, "loopback") {
		t.Errorf("admin API off loopback: exit %d (want 1), stderr %s", code, stderr)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestRunLocalInvocation starts the simulator the way scripts/run-local.sh
// does (same flags, password in the environment) and stops it with SIGTERM.
func TestRunLocalInvocation(t *testing.T) {
	simHTTP, simRTSP, simAdmin := freeAddr(t), freeAddr(t), freeAddr(t)
	const password = "Factory-Pass1"
	cmd, _, stderr := command(t, []string{"--http-addr", simHTTP, "--rtsp-addr", simRTSP, "--admin-addr", simAdmin,
		"--devices", "3", "--channels", "1", "--reboot-downtime", "5s", "--media-dir", gatewaysim.DefaultMediaDir()},
		"GATEWAY_SIM_ADMIN_PASSWORD="+password)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})

	// The first start on a machine renders the media (a few seconds).
	admin := "http://" + simAdmin
	testkit.Eventually(t, 2*time.Minute, 50*time.Millisecond, "the admin API to answer", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("gateway-sim exited: %v\n%s", err, stderr.String())
		default:
		}
		resp, err := http.Get(admin + "/admin/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	var devices []gatewaysim.Device
	getJSON(t, admin+"/admin/devices", &devices)
	if len(devices) != 3 || len(devices[0].Channels) != 1 {
		t.Errorf("devices: %+v, want 3 with 1 channel", devices)
	}
	resp, err := http.Post(admin+"/admin/password/check", "application/json", strings.NewReader(`{"password":"`+password+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var match map[string]bool
	_ = json.NewDecoder(resp.Body).Decode(&match)
	resp.Body.Close()
	if !match["match"] {
		t.Error("the password from GATEWAY_SIM_ADMIN_PASSWORD is not the admin password")
	}
	for _, addr := range []string{simHTTP, simRTSP} {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		conn.Close()
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30s after SIGTERM\n%s", stderr.String())
	}
	logs := stderr.String()
	if strings.Contains(logs, password) || !strings.Contains(logs, `"msg":"gateway simulator started"`) || !strings.Contains(logs, `"msg":"gateway simulator stopped"`) {
		t.Fatalf("logs: %s", logs)
	}
	if strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatalf("errors logged: %s", logs)
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}
