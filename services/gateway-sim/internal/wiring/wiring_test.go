package wiring_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"mediagw/pkg/service"
	"mediagw/services/gateway-sim/internal/wiring"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/testkit"
)

// settings parses args (and the environment) as main does.
func settings(t *testing.T, args ...string) (wiring.Settings, error) {
	t.Helper()
	cfg := service.NewCommandConfig("gateway-sim", "test")
	s := wiring.Declare(cfg)
	if err := cfg.Parse(args, io.Discard); err != nil {
		return wiring.Settings{}, err
	}
	return s(), nil
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	cfg := service.NewCommandConfig("gateway-sim", "test")
	wiring.Declare(cfg)
	var out bytes.Buffer
	if err := cfg.Parse([]string{"--help"}, &out); !errors.Is(err, service.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, f := range []string{"-http-addr", "-rtsp-addr", "-admin-addr", "-devices", "-channels", "-admin-user",
		"-admin-password-file", "-lockout-threshold", "-lockout-duration", "-scenario", "GATEWAY_SIM_",
		"-lost-401", "-late-401", "-no-lock-fields", "-basic-only", "-audio", "-full-hd"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("--help does not mention %s", f)
		}
	}
}

func TestBadArguments(t *testing.T) {
	if _, err := settings(t, "--devices", "many"); err == nil {
		t.Error("bad flag value accepted")
	}
	if _, err := settings(t, "extra"); err == nil {
		t.Error("positional argument accepted")
	}
	if _, err := settings(t, "--scenario", filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing scenario file accepted")
	}
	if _, err := settings(t, "--admin-password-file", filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "ADMIN_PASSWORD_FILE") {
		t.Errorf("missing password file: %v", err)
	}
	t.Setenv("GATEWAY_SIM_DEVICES", "lots")
	if _, err := settings(t); err == nil || !strings.Contains(err.Error(), "GATEWAY_SIM_DEVICES") {
		t.Errorf("bad env value: %v", err)
	}
	// A shell's own NAME or DEVICES is not the simulator's setting.
	os.Unsetenv("GATEWAY_SIM_DEVICES")
	t.Setenv("DEVICES", "lots")
	t.Setenv("NAME", "my-laptop")
	if s, err := settings(t); err != nil || s.Simulator.DeviceName == "my-laptop" {
		t.Errorf("unprefixed variables taken: %v, name %q", err, s.Simulator.DeviceName)
	}
}

func TestPasswordSources(t *testing.T) {
	t.Setenv(wiring.PasswordEnv, "")
	if s, err := settings(t); err != nil || s.Simulator.AdminPassword != "" {
		t.Fatalf("no password given: %q %v (Build uses the default)", s.Simulator.AdminPassword, err)
	}
	t.Setenv(wiring.PasswordEnv, "Env-Passw0rd")
	if s, _ := settings(t); s.Simulator.AdminPassword != "Env-Passw0rd" {
		t.Fatalf("from %s: %q", wiring.PasswordEnv, s.Simulator.AdminPassword)
	}
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("File-Passw0rd\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, _ := settings(t, "--admin-password-file", pwFile); s.Simulator.AdminPassword != "File-Passw0rd" {
		t.Fatalf("the file wins over the environment: %q", s.Simulator.AdminPassword)
	}
}

func TestLoginFaultSettings(t *testing.T) {
	if s, err := settings(t); err != nil || s.Simulator.LoginFaults != (gatewaysim.LoginFaults{}) {
		t.Fatalf("default: %+v %v", s.Simulator.LoginFaults, err)
	}
	t.Setenv("GATEWAY_SIM_LATE_401", "12s")
	t.Setenv("GATEWAY_SIM_NO_LOCK_FIELDS", "true")
	s, err := settings(t, "--lost-401", "--basic-only")
	want := gatewaysim.LoginFaults{Lost401: true, Late401: 12 * time.Second, NoLockFields: true, BasicOnly: true}
	if err != nil || s.Simulator.LoginFaults != want {
		t.Fatalf("from flags and environment: %+v %v", s.Simulator.LoginFaults, err)
	}
	if _, err := settings(t, "--late-401", "-1s"); err == nil || !strings.Contains(err.Error(), "LATE_401") {
		t.Errorf("negative delay: %v", err)
	}
}

// TestRunServesUntilCancelled runs the wired simulator as main does and
// stops it by cancelling its context.
func TestRunServesUntilCancelled(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("File-Passw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	scenario := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(scenario, []byte("steps:\n  - {action: addDevice, name: FromScenario}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEWAY_SIM_DEVICES", "3")
	s, err := settings(t, "--http-addr", "127.0.0.1:0", "--rtsp-addr=", "--admin-addr", "127.0.0.1:0",
		"--admin-password-file", pwFile, "--scenario", scenario)
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.Buffer
	rt := service.NewRuntime("gateway-sim", service.NewLogger(&logs, slog.LevelInfo, "gateway-sim"), aws.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sim, err := wiring.BuildServer(ctx, rt, s)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()

	if !sim.CheckPassword("File-Passw0rd") || sim.RTSPAddr() != "" {
		t.Fatalf("password from file not used or RTSP not disabled")
	}
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, "4 devices: 3 from the environment + 1 from the scenario", func() bool {
		return len(sim.Devices()) == 4
	})
	resp, err := http.Get(sim.AdminURL() + "/admin/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("not stopped after cancel")
	}
	if _, err := http.Get(sim.AdminURL() + "/admin/healthz"); err == nil {
		t.Fatal("admin endpoint still up after shutdown")
	}
	if strings.Contains(logs.String(), "File-Passw0rd") || !strings.Contains(logs.String(), `"msg":"gateway simulator started"`) {
		t.Fatalf("logs: %s", logs.String())
	}
}

func TestDefaultPasswordIsLogged(t *testing.T) {
	t.Setenv(wiring.PasswordEnv, "")
	s, err := settings(t, "--http-addr", "127.0.0.1:0", "--rtsp-addr=", "--admin-addr=")
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.Buffer
	rt := service.NewRuntime("gateway-sim", service.NewLogger(&logs, slog.LevelInfo, "gateway-sim"), aws.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	sim, err := wiring.BuildServer(ctx, rt, s)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := rt.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !sim.CheckPassword(wiring.DefaultPassword) || !strings.Contains(logs.String(), "built-in default admin password") ||
		strings.Contains(logs.String(), wiring.DefaultPassword) {
		t.Fatalf("default password: logs %s", logs.String())
	}
}
