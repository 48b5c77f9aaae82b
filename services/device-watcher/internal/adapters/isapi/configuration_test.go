package isapi

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"mediagw/pkg/loginbudget"
	"mediagw/services/device-watcher/internal/domain"
)

// newFreshRig is a gateway still on its factory password, with a
// BootstrapPassword parameter, and a Conn that knows the desired password
// (version 1).
func newFreshRig(t *testing.T) (*rig, *bytes.Buffer) {
	t.Helper()
	g := newRig(t, bootstrapPassword, desiredPassword)
	g.params.setBootstrap(true)
	var logs bytes.Buffer
	g.conn.opt.Logger = slog.New(slog.NewJSONHandler(&syncWriter{w: &logs}, nil))
	return g, &logs
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// requests is the number of ISAPI requests the gateway received,
// unauthenticated challenges included.
func requests(g *rig) int {
	n := 0
	for _, c := range g.sim.Counters().Requests {
		n += c
	}
	return n
}

// pollAwaits checks that a poll sent nothing and says the gateway awaits
// its configuration.
func pollAwaits(t *testing.T, g *rig) {
	t.Helper()
	before := requests(g)
	snap := g.conn.Poll(context.Background(), nil)
	var aw *AwaitingConfigurationError
	if !snap.AwaitingConfiguration || !snap.NothingSent || snap.Refused != nil || snap.Unreachable || snap.LoggedIn != "" ||
		!errors.As(snap.Err, &aw) || ErrorKind(snap.Err) != KindAwaitingConfiguration || aw.Credential != loginbudget.Credential(cred(1)) {
		t.Fatalf("poll of a gateway awaiting its configuration: %+v", snap)
	}
	if got := requests(g); got != before {
		t.Fatalf("%d requests sent while awaiting the configuration", got-before)
	}
}

// A factory-fresh gateway is not logged in to: polls send nothing, the
// rechecks keep waiting, one info line says so, no failed login. Once
// configured (Reconfigured), the first poll logs in.
func TestFactoryFreshGatewayAwaitsItsConfiguration(t *testing.T) {
	g, logs := newFreshRig(t)
	ctx := context.Background()
	for range 3 {
		pollAwaits(t, g)
	}
	if ok, err := g.conn.recheck(ctx); ok || err != nil {
		t.Fatalf("recheck while not configured: %v %v", ok, err)
	}
	pollAwaits(t, g)
	if n := strings.Count(logs.String(), "gateway awaits its configuration"); n != 1 {
		t.Fatalf("%d log lines about the wait, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) || strings.Contains(logs.String(), `"level":"WARN"`) {
		t.Fatalf("the wait logged as a fault:\n%s", logs)
	}

	if err := g.sim.SetPassword(desiredPassword); err != nil { // the configurator's work
		t.Fatal(err)
	}
	if err := g.conn.Reconfigured(ctx); err != nil {
		t.Fatal(err)
	}
	if snap := g.conn.Poll(ctx, nil); snap.Err != nil || snap.LoggedIn != cred(1) || len(snap.Sightings) != 1 || snap.AwaitingConfiguration {
		t.Fatalf("poll after the configuration: %+v", snap)
	}
	if n := failed(g.sim); n != 0 {
		t.Fatalf("%d failed logins, want 0", n)
	}
	if !strings.Contains(logs.String(), "the gateway was configured") {
		t.Fatalf("no line says why logins resume:\n%s", logs)
	}
	for _, secret := range []string{bootstrapPassword, desiredPassword} {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("a password appears in the logs")
		}
	}
}

// Without GatewayConfigured, the wait ends at a recheck that finds the
// current credential accepted in the ledger (another component logged in
// with it), or the BootstrapPassword parameter gone.
func TestAwaitingConfigurationEndsWhenTheLedgerOrTheBootstrapParameterSaysSo(t *testing.T) {
	ctx := context.Background()
	t.Run("accepted in the ledger", func(t *testing.T) {
		g, _ := newFreshRig(t)
		pollAwaits(t, g)
		if err := g.sim.SetPassword(desiredPassword); err != nil {
			t.Fatal(err)
		}
		// The configurator logged in with the new password.
		a, err := g.budget.Begin(ctx, "gw", loginbudget.Credential(cred(1)))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Finish(ctx, loginbudget.Accepted, 0); err != nil {
			t.Fatal(err)
		}
		if ok, err := g.conn.recheck(ctx); !ok || err != nil {
			t.Fatalf("recheck: %v %v", ok, err)
		}
		if snap := g.conn.Poll(ctx, nil); snap.Err != nil || snap.LoggedIn != cred(1) {
			t.Fatalf("%+v", snap)
		}
		if n := failed(g.sim); n != 0 {
			t.Fatalf("%d failed logins, want 0", n)
		}
	})
	t.Run("bootstrap parameter gone", func(t *testing.T) {
		g, logs := newFreshRig(t)
		pollAwaits(t, g)
		if err := g.sim.SetPassword(desiredPassword); err != nil {
			t.Fatal(err)
		}
		g.params.setBootstrap(false)
		if ok, err := g.conn.recheck(ctx); !ok || err != nil {
			t.Fatalf("recheck: %v %v", ok, err)
		}
		if snap := g.conn.Poll(ctx, nil); snap.Err != nil || snap.LoggedIn != cred(1) {
			t.Fatalf("%+v", snap)
		}
		if !strings.Contains(logs.String(), "no BootstrapPassword parameter") {
			t.Fatalf("no line says why logins resume:\n%s", logs)
		}
	})
	t.Run("a new version is still awaited", func(t *testing.T) {
		g, logs := newFreshRig(t)
		pollAwaits(t, g)
		g.params.set("Other-Passw0rd")
		if ok, err := g.conn.recheck(ctx); ok || err != nil {
			t.Fatalf("recheck: %v %v", ok, err)
		}
		snap := g.conn.Poll(ctx, nil)
		var aw *AwaitingConfigurationError
		if !errors.As(snap.Err, &aw) || aw.Credential != loginbudget.Credential(cred(2)) {
			t.Fatalf("%+v", snap)
		}
		if n := strings.Count(logs.String(), "gateway awaits its configuration"); n != 1 {
			t.Fatalf("%d log lines about the wait, want 1", n)
		}
	})
}

// A credential the ledger saw accepted is logged in with at once, even on
// a gateway with a BootstrapPassword parameter (a restart of a configured
// gateway); so is any credential once the gateway is configured, and on a
// gateway without a bootstrap password (the other tests).
func TestAcceptedCredentialIsLoggedInAtOnce(t *testing.T) {
	g, _ := newFreshRig(t)
	ctx := context.Background()
	if err := g.sim.SetPassword(desiredPassword); err != nil {
		t.Fatal(err)
	}
	a, err := g.budget.Begin(ctx, "gw", loginbudget.Credential(cred(1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Finish(ctx, loginbudget.Accepted, 0); err != nil {
		t.Fatal(err)
	}
	if snap := g.conn.Poll(ctx, nil); snap.Err != nil || snap.LoggedIn != cred(1) {
		t.Fatalf("%+v", snap)
	}
}

// While awaiting the configuration the event stream subscribes to
// nothing; it says so once, and subscribes at once when WatchLogins finds
// the wait over.
func TestStreamWaitsForTheConfigurationAndSubscribesWhenItEnds(t *testing.T) {
	g, _ := newFreshRig(t)
	next, resumed := g.streamAndWatch(t)
	if u := next(); u.Kind != domain.UpdateDown || !u.AwaitingConfiguration || u.Refused != nil || u.Unreachable {
		t.Fatalf("first update %+v, want down, awaiting the configuration", u)
	}
	if n := requests(g); n != 0 {
		t.Fatalf("%d requests sent while awaiting the configuration", n)
	}
	if err := g.sim.SetPassword(desiredPassword); err != nil {
		t.Fatal(err)
	}
	g.params.setBootstrap(false)
	select {
	case <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatal("logins did not resume")
	}
	if u := next(); u.Kind != domain.UpdateConnected || u.Credential != cred(1) {
		t.Fatalf("update %+v after the wait, want connected", u)
	}
	if n := failed(g.sim); n != 0 {
		t.Fatalf("%d failed logins, want 0", n)
	}
}
