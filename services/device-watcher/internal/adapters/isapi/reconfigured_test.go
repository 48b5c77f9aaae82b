package isapi

import (
	"context"
	"sync"
	"testing"
	"time"

	hik "mediagw/pkg/isapi"
	"mediagw/services/device-watcher/internal/domain"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
)

// storedPassword is a parameter store with one password the test changes.
type storedPassword struct {
	mu sync.Mutex
	pw string
}

func (p *storedPassword) set(pw string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pw = pw
}

func (p *storedPassword) Password(context.Context, string, bool) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pw, nil
}

const (
	bootstrapPassword = "Factory-Passw0rd"
	desiredPassword   = "Desired-Passw0rd"
)

// newFactoryGateway starts a simulator that still has its bootstrap
// password and a Conn that knows only the desired one.
func newFactoryGateway(t *testing.T) (*gatewaysim.Server, *Conn, *storedPassword) {
	t.Helper()
	s := gatewaysimtest.Start(t, gatewaysimtest.WithDevices(1, 1))
	if err := s.SetPassword(bootstrapPassword); err != nil {
		t.Fatal(err)
	}
	store := &storedPassword{pw: desiredPassword}
	return s, NewConn("gw", s.URL(), gatewaysimtest.User, store, Options{RereadAfter: time.Nanosecond}), store
}

func failedLogins(s *gatewaysim.Server) int { return s.Counters().FailedLogins["127.0.0.1"] }

// A configuration forgives a rejection that came before it, once; a
// rejection after it (a duplicate or stale event) is not forgiven, so
// events cannot spend the gateway's login attempts.
func TestReconfiguredForgivesOnlyRejectionsBeforeTheConfiguration(t *testing.T) {
	s, c, store := newFactoryGateway(t)
	ctx := context.Background()
	poll := func() error { return c.Poll(ctx, nil).Err }

	for range 3 {
		if err := poll(); ErrorKind(err) != KindBadCredentials {
			t.Fatalf("poll with the password the gateway does not have yet: %v", err)
		}
	}
	if n := failedLogins(s); n != 1 {
		t.Fatalf("%d failed logins, want 1 (a rejected password is not sent again)", n)
	}

	// The configurator installs the desired password and reports it.
	if err := s.SetPassword(desiredPassword); err != nil {
		t.Fatal(err)
	}
	configured := time.Now()
	if err := c.Reconfigured(ctx, configured); err != nil {
		t.Fatal(err)
	}
	if err := poll(); err != nil {
		t.Fatalf("poll after the configuration: %v", err)
	}
	// Accepted: a repeated event changes nothing.
	if err := c.Reconfigured(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := poll(); err != nil {
		t.Fatalf("poll after a repeated event: %v", err)
	}

	// Someone changes the password behind the configurator's back: the
	// rejection comes after the configuration, so the event (delivered
	// again) cannot excuse it.
	if err := s.SetPassword("Operator-Passw0rd"); err != nil {
		t.Fatal(err)
	}
	if err := poll(); ErrorKind(err) != KindBadCredentials {
		t.Fatalf("poll with a password changed out of band: %v", err)
	}
	if err := c.Reconfigured(ctx, configured); err != nil {
		t.Fatal(err)
	}
	if err := poll(); ErrorKind(err) != KindBadCredentials {
		t.Fatalf("poll after a stale event: %v", err)
	}
	if n := failedLogins(s); n != 2 {
		t.Fatalf("%d failed logins, want 2 (the stale event must not buy an attempt)", n)
	}

	// A configuration with a new password in the store uses it.
	store.set("Operator-Passw0rd")
	if err := c.Reconfigured(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := poll(); err != nil {
		t.Fatalf("poll with the new stored password: %v", err)
	}
	if n := failedLogins(s); n != 2 {
		t.Fatalf("%d failed logins, want 2", n)
	}
}

// The event stream, waiting to reconnect after its password was refused,
// subscribes again at once when the gateway is reconfigured.
func TestStreamResubscribesAtOnceWhenReconfigured(t *testing.T) {
	s, c, _ := newFactoryGateway(t)
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan domain.StreamUpdate, 16)
	done := make(chan struct{})
	// Backoff this long: only the reconfiguration can bring it back in time.
	c.opt.Stream = hik.SubscribeOptions{InitialBackoff: time.Minute, MaxBackoff: time.Minute, HeartbeatTimeout: 5 * time.Second}
	go func() {
		defer close(done)
		c.Stream(ctx, out)
	}()
	t.Cleanup(func() { cancel(); <-done })

	next := func(within time.Duration) domain.StreamUpdate {
		t.Helper()
		select {
		case u := <-out:
			return u
		case <-time.After(within):
			t.Fatalf("no stream update within %s", within)
			return domain.StreamUpdate{}
		}
	}
	if u := next(5 * time.Second); u.Kind != domain.UpdateDown || ErrorKind(u.Err) != KindBadCredentials {
		t.Fatalf("first update %+v, want down with bad credentials", u)
	}
	if err := s.SetPassword(desiredPassword); err != nil {
		t.Fatal(err)
	}
	if err := c.Reconfigured(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if u := next(10 * time.Second); u.Kind != domain.UpdateConnected {
		t.Fatalf("update %+v after the reconfiguration, want connected", u)
	}
	if n := failedLogins(s); n != 1 {
		t.Fatalf("%d failed logins, want 1", n)
	}
}
