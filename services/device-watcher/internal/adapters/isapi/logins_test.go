package isapi

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	hik "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/services/device-watcher/internal/domain"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/loginbudgettest"
)

// params is a parameter store with one password; every set is a new
// version. bootstrap says whether the gateway has a BootstrapPassword
// parameter.
type params struct {
	mu        sync.Mutex
	pw        string
	version   int64
	bootstrap bool
}

func newParams(pw string) *params { return &params{pw: pw, version: 1} }

func (p *params) set(pw string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pw, p.version = pw, p.version+1
}

func (p *params) Password(context.Context, string, bool) (string, int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pw, p.version, nil
}

func (p *params) Version(context.Context, string) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.version, nil
}

func (p *params) ParameterName(id string) string { return "/mediagw/gateways/" + id + "/Password" }

func (p *params) BootstrapExists(context.Context, string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bootstrap, nil
}

func (p *params) setBootstrap(exists bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bootstrap = exists
}

const (
	bootstrapPassword = "Factory-Passw0rd"
	desiredPassword   = "Desired-Passw0rd"
)

type rig struct {
	sim    *gatewaysim.Server
	params *params
	budget *loginbudget.Budget
	conn   *Conn
}

// newRig starts a simulator (admin password simPassword) and a Conn that
// knows password pw (version 1).
func newRig(t *testing.T, simPassword, pw string, opts ...gatewaysimtest.Option) *rig {
	t.Helper()
	s := gatewaysimtest.Start(t, append([]gatewaysimtest.Option{gatewaysimtest.WithDevices(1, 1)}, opts...)...)
	if err := s.SetPassword(simPassword); err != nil {
		t.Fatal(err)
	}
	p := newParams(pw)
	b := loginbudget.New(loginbudgettest.NewStore(), "device-watcher")
	return &rig{sim: s, params: p, budget: b,
		conn: NewConn("gw", s.URL(), gatewaysimtest.User, p, b, Options{Timeout: 2 * time.Second, Recheck: time.Hour})}
}

func failed(s *gatewaysim.Server) int { return len(s.LoginFailures()) }

func cred(v int64) string {
	return string(loginbudget.CredentialOf("/mediagw/gateways/gw/Password", v))
}

// A rejected password costs one failed login: logins stop, and polls send
// nothing (they say why) until the parameter has a new version.
func TestRejectedPasswordStopsLoginsUntilTheParameterChanges(t *testing.T) {
	g := newRig(t, gatewaysimtest.Password, "Wrong-Passw0rd")
	ctx := context.Background()
	snap := g.conn.Poll(ctx, nil)
	if ErrorKind(snap.Err) != KindBadCredentials || snap.NothingSent || snap.Unreachable || snap.LoggedIn != "" {
		t.Fatalf("first poll: %+v", snap)
	}
	if r := snap.Refused; r == nil || r.Reason != "credentials-rejected" || r.Credential != cred(1) || r.FailedLogins != 1 || !r.Until.IsZero() || r.Detail == "" {
		t.Fatalf("refusal %+v", snap.Refused)
	}
	for range 5 {
		snap = g.conn.Poll(ctx, nil)
		if ErrorKind(snap.Err) != KindLoginRefused || !errors.Is(snap.Err, loginbudget.ErrRefused) || !snap.NothingSent || snap.Refused == nil {
			t.Fatalf("poll while stopped: %+v", snap)
		}
	}
	// Looked at again: the same version, still rejected in the budget.
	if ok, err := g.conn.recheck(ctx); ok || err != nil {
		t.Fatalf("recheck of the same version: %v %v", ok, err)
	}
	if n := failed(g.sim); n != 1 {
		t.Fatalf("%d failed logins, want 1", n)
	}
	g.params.set(gatewaysimtest.Password)
	if ok, err := g.conn.recheck(ctx); !ok || err != nil {
		t.Fatalf("recheck of a new version: %v %v", ok, err)
	}
	if snap = g.conn.Poll(ctx, nil); snap.Err != nil || snap.LoggedIn != cred(2) || len(snap.Sightings) != 1 || snap.Refused != nil {
		t.Fatalf("poll with the new version: %+v", snap)
	}
	if n := failed(g.sim); n != 1 {
		t.Fatalf("%d failed logins, want 1", n)
	}
}

// The configurator installs the password the gateway rejected before and
// tells the budget (Forget): Reconfigured resumes logins at once, with no
// further failed login. Without that word from the budget it does not.
func TestReconfiguredResumesWhenTheBudgetAllowsThePasswordAgain(t *testing.T) {
	g := newRig(t, bootstrapPassword, desiredPassword)
	ctx := context.Background()
	if snap := g.conn.Poll(ctx, nil); ErrorKind(snap.Err) != KindBadCredentials {
		t.Fatalf("poll with the password the gateway does not have yet: %+v", snap)
	}
	if err := g.sim.SetPassword(desiredPassword); err != nil { // the configurator's work
		t.Fatal(err)
	}
	// A GatewayConfigured that arrives before the budget was told (or a
	// duplicate of an older one) buys no attempt.
	if err := g.conn.Reconfigured(ctx); err != nil {
		t.Fatal(err)
	}
	if snap := g.conn.Poll(ctx, nil); !snap.NothingSent {
		t.Fatalf("poll after a configuration the budget does not know: %+v", snap)
	}
	if err := g.budget.Forget(ctx, "gw", loginbudget.CredentialOf("/mediagw/gateways/gw/Password", 1)); err != nil {
		t.Fatal(err)
	}
	if err := g.conn.Reconfigured(ctx); err != nil {
		t.Fatal(err)
	}
	if snap := g.conn.Poll(ctx, nil); snap.Err != nil || snap.LoggedIn != cred(1) {
		t.Fatalf("poll after the configuration: %+v", snap)
	}
	if n := failed(g.sim); n != 1 {
		t.Fatalf("%d failed logins, want 1", n)
	}
}

// A configuration with a new version of the password switches to it
// before the old one meets the changed gateway: no failed login.
func TestReconfiguredWithANewVersionSwitchesBeforeTheOldOneFails(t *testing.T) {
	g := newRig(t, gatewaysimtest.Password, gatewaysimtest.Password)
	ctx := context.Background()
	if snap := g.conn.Poll(ctx, nil); snap.Err != nil || snap.LoggedIn != cred(1) {
		t.Fatalf("%+v", snap)
	}
	g.params.set("Rotated-Passw0rd")
	if err := g.sim.SetPassword("Rotated-Passw0rd"); err != nil {
		t.Fatal(err)
	}
	if err := g.conn.Reconfigured(ctx); err != nil {
		t.Fatal(err)
	}
	if snap := g.conn.Poll(ctx, nil); snap.Err != nil || snap.LoggedIn != cred(2) {
		t.Fatalf("%+v", snap)
	}
	if n := failed(g.sim); n != 0 {
		t.Fatalf("%d failed logins, want 0", n)
	}
}

// Lost answers to logins count: two, then the budget refuses and logins
// stop with budget-spent; the gateway saw two.
func TestLostAnswersSpendTheBudgetThenLoginsStop(t *testing.T) {
	g := newRig(t, gatewaysimtest.Password, "Wrong-Passw0rd", gatewaysimtest.WithLoginFaults(gatewaysim.LoginFaults{Lost401: true}))
	ctx := context.Background()
	var snap domain.Snapshot
	for range 6 {
		snap = g.conn.Poll(ctx, nil)
	}
	if r := snap.Refused; r == nil || r.Reason != "budget-spent" || r.FailedLogins != 2 || r.Until.IsZero() || !snap.NothingSent {
		t.Fatalf("last poll: %+v (refusal %+v)", snap, snap.Refused)
	}
	if n := failed(g.sim); n != 2 {
		t.Fatalf("%d failed logins, want 2", n)
	}
}

// While logins are stopped the event stream subscribes to nothing; it
// says so once and, when WatchLogins finds a new version, subscribes at
// once.
func TestStreamWaitsWhileStoppedAndResubscribesWhenLoginsResume(t *testing.T) {
	g := newRig(t, gatewaysimtest.Password, "Wrong-Passw0rd")
	next, resumed := g.streamAndWatch(t)
	if u := next(); u.Kind != domain.UpdateDown || ErrorKind(u.Err) != KindBadCredentials || u.Refused == nil {
		t.Fatalf("first update %+v, want down, logins stopped", u)
	}
	if u := next(); u.Kind != domain.UpdateDown || !errors.Is(u.Err, loginbudget.ErrRefused) || u.Refused == nil {
		t.Fatalf("second update %+v, want down while logins are stopped", u)
	}
	subscriptions := g.sim.Counters().Requests["POST /ISAPI/Event/notification/subscribeDeviceMgmt"]
	g.params.set(gatewaysimtest.Password)
	select {
	case <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatal("logins did not resume")
	}
	if u := next(); u.Kind != domain.UpdateConnected || u.Credential != cred(2) {
		t.Fatalf("update %+v after the resumption, want connected", u)
	}
	if n := failed(g.sim); n != 1 {
		t.Fatalf("%d failed logins, want 1", n)
	}
	if got := g.sim.Counters().Requests["POST /ISAPI/Event/notification/subscribeDeviceMgmt"]; got <= subscriptions {
		t.Fatalf("subscriptions %d → %d", subscriptions, got)
	}
}

// streamAndWatch runs the Conn's event stream and its login watch until
// the test ends, with a 20 ms recheck and a reconnect backoff so long that
// only a resumption brings the stream back in time. next is the stream's
// next update; resumed receives when WatchLogins resumes logins.
func (g *rig) streamAndWatch(t *testing.T) (next func() domain.StreamUpdate, resumed <-chan struct{}) {
	g.conn.opt.Recheck = 20 * time.Millisecond
	g.conn.opt.Stream = hik.SubscribeOptions{InitialBackoff: time.Minute, MaxBackoff: time.Minute, HeartbeatTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan domain.StreamUpdate, 16)
	res := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { g.conn.Stream(ctx, out) })
	wg.Go(func() { g.conn.WatchLogins(ctx, res) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return func() domain.StreamUpdate {
		t.Helper()
		select {
		case u := <-out:
			return u
		case <-time.After(10 * time.Second):
			t.Fatal("no stream update")
			return domain.StreamUpdate{}
		}
	}, res
}
