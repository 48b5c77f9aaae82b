package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/testkit"
)

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"--help"}, func(string) string { return "" }, &out, io.Discard, nil)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, f := range []string{"-http-addr", "-rtsp-addr", "-admin-addr", "-devices", "-channels", "-admin-user",
		"-admin-password-file", "-lockout-threshold", "-lockout-duration", "-scenario", "GATEWAY_SIM_"} {
		if !strings.Contains(out.String(), f) {
			t.Errorf("--help does not mention %s", f)
		}
	}
}

func TestBadArguments(t *testing.T) {
	env := func(string) string { return "" }
	if err := run(t.Context(), []string{"--devices", "many"}, env, io.Discard, io.Discard, nil); !errors.Is(err, errUsage) {
		t.Errorf("bad flag value: %v", err)
	}
	if err := run(t.Context(), []string{"extra"}, env, io.Discard, io.Discard, nil); !errors.Is(err, errUsage) {
		t.Errorf("positional argument: %v", err)
	}
	badEnv := func(k string) string {
		if k == "GATEWAY_SIM_DEVICES" {
			return "lots"
		}
		return ""
	}
	if err := run(t.Context(), nil, badEnv, io.Discard, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "GATEWAY_SIM_DEVICES") {
		t.Errorf("bad env value: %v", err)
	}
	if err := run(t.Context(), []string{"--scenario", filepath.Join(t.TempDir(), "missing.yaml")}, env, io.Discard, io.Discard, nil); err == nil {
		t.Error("missing scenario file accepted")
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("File-Passw0rd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	scenario := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(scenario, []byte("steps:\n  - {action: addDevice, name: FromScenario}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "GATEWAY_SIM_DEVICES" {
			return "3"
		}
		return ""
	}
	ctx, cancel := context.WithCancel(t.Context())
	var logs bytes.Buffer
	started := make(chan *gatewaysim.Server, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--http-addr", "127.0.0.1:0", "--rtsp-addr=", "--admin-addr", "127.0.0.1:0",
			"--admin-password-file", pwFile, "--scenario", scenario}, env, io.Discard, &syncWriter{w: &logs}, func(s *gatewaysim.Server) { started <- s })
	}()
	var sim *gatewaysim.Server
	select {
	case sim = <-started:
	case err := <-done:
		t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("not started")
	}
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
	if err := <-done; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
	if _, err := http.Get(sim.AdminURL() + "/admin/healthz"); err == nil {
		t.Fatal("admin endpoint still up after shutdown")
	}
	if strings.Contains(logs.String(), "File-Passw0rd") || !strings.Contains(logs.String(), `"msg":"gateway simulator started"`) {
		t.Fatalf("logs: %s", logs.String())
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
