package loginbudget_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/loginbudgettest"
)

func failed(sim *gatewaysim.Server) int { return len(sim.LoginFailures()) }

// A wrong password through the gate: one failed login on the gateway; the
// next client with that credential (another process) sends nothing.
func TestISAPIGateWrongPasswordCostsOneLogin(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	store := loginbudgettest.NewStore()
	cred := loginbudget.CredentialOf("/mediagw/gateways/gw/Password", 1)
	ctx := context.Background()
	for i := range 5 {
		b := loginbudget.New(store, "device-watcher")
		c, err := isapi.New(sim.URL(), gatewaysimtest.User, "Wrong-Pass1", isapi.WithLoginGate(b.ISAPIGate("gw", cred)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.DeviceInfo(ctx)
		var refused *loginbudget.RefusedError
		switch {
		case i == 0 && !errors.Is(err, isapi.ErrBadCredentials):
			t.Fatalf("first login: %v", err)
		case i > 0 && (!errors.As(err, &refused) || refused.Reason != loginbudget.ReasonRejected):
			t.Fatalf("login %d: %v", i, err)
		}
	}
	if n := failed(sim); n != 1 {
		t.Fatalf("the gateway saw %d failed logins, want 1", n)
	}
	// The right password in a new parameter version gets in.
	b := loginbudget.New(store, "device-watcher")
	c, _ := isapi.New(sim.URL(), gatewaysimtest.User, gatewaysimtest.Password,
		isapi.WithLoginGate(b.ISAPIGate("gw", loginbudget.CredentialOf("/mediagw/gateways/gw/Password", 2))))
	if _, err := c.DeviceInfo(ctx); err != nil {
		t.Fatalf("right password: %v", err)
	}
	l, _ := b.Ledger(ctx, "gw")
	if l.Accepted != loginbudget.CredentialOf("/mediagw/gateways/gw/Password", 2) {
		t.Fatalf("ledger %+v", l)
	}
}

// A lost 401 is one failed login on the gateway, never re-sent, and
// counted: a second lost one spends the budget, and a third is not sent.
func TestISAPIGateLostAnswersSpendTheBudget(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithLoginFaults(gatewaysim.LoginFaults{Lost401: true}))
	store := loginbudgettest.NewStore()
	cred := loginbudget.CredentialOf("/mediagw/gateways/gw/Password", 1)
	ctx := context.Background()
	var last error
	for range 4 {
		b := loginbudget.New(store, "configurator")
		c, _ := isapi.New(sim.URL(), gatewaysimtest.User, "Wrong-Pass1", isapi.WithLoginGate(b.ISAPIGate("gw", cred)))
		_, last = c.DeviceInfo(ctx)
	}
	var refused *loginbudget.RefusedError
	if !errors.As(last, &refused) || refused.Reason != loginbudget.ReasonBudgetSpent {
		t.Fatalf("last: %v", last)
	}
	if n := failed(sim); n != 2 {
		t.Fatalf("the gateway saw %d failed logins, want 2", n)
	}
}

// The password changed behind an accepted login: the 401 the gateway
// answers is recorded as a failure and the credential as rejected.
func TestISAPIGateRecordsRejectionsAfterLogin(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	store := loginbudgettest.NewStore()
	cred := loginbudget.CredentialOf("/mediagw/gateways/gw/Password", 1)
	ctx := context.Background()
	b := loginbudget.New(store, "device-watcher")
	c, _ := isapi.New(sim.URL(), gatewaysimtest.User, gatewaysimtest.Password, isapi.WithLoginGate(b.ISAPIGate("gw", cred)))
	if _, err := c.DeviceInfo(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetPassword("Other-Pass12"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeviceInfo(ctx); !errors.Is(err, isapi.ErrBadCredentials) {
		t.Fatalf("after the change: %v", err)
	}
	if err := b.Check(ctx, "gw", cred); !errors.Is(err, loginbudget.ErrRefused) {
		t.Fatalf("check: %v", err)
	}
	if n := failed(sim); n != 1 {
		t.Fatalf("the gateway saw %d failed logins, want 1", n)
	}
}

// cancelOnSave cancels the caller's context while its write is in flight.
type cancelOnSave struct {
	*loginbudgettest.Store
	cancel context.CancelFunc
}

func (c cancelOnSave) Save(ctx context.Context, gw string, l loginbudget.Ledger, prev int64) error {
	c.cancel()
	if ctx.Err() != nil {
		return ctx.Err() // the write would be cut: it must not be
	}
	return c.Store.Save(ctx, gw, l, prev)
}

// A caller that gives up while its attempt is being written leaves no
// orphan: the write lands, and the attempt is finished as not sent.
func TestBeginWhoseCallerGoesAwayLeavesNoOrphan(t *testing.T) {
	ms := loginbudgettest.NewStore()
	ctx, cancel := context.WithCancel(context.Background())
	b := loginbudget.New(cancelOnSave{ms, cancel}, "recorder")
	cred := loginbudget.CredentialOf("/p/Password", 1)
	if _, err := b.Begin(ctx, "gw", cred); !errors.Is(err, context.Canceled) {
		t.Fatalf("begin: %v", err)
	}
	l, _, _ := ms.Load(context.Background(), "gw")
	if n := l.Failures(time.Now(), loginbudget.Limits{}); n != 0 {
		t.Fatalf("an orphan counts: %+v", l)
	}
}

// While another login with an untried credential is in flight, Begin waits
// reading only: a caller that gives up meanwhile has written nothing.
func TestBeginWaitsForLoginsInFlightWithoutWriting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := loginbudgettest.NewStore()
		cred := loginbudget.CredentialOf("/p/Password", 1)
		other, err := loginbudget.New(s, "configurator").Begin(context.Background(), "gw", cred)
		if err != nil {
			t.Fatal(err)
		}
		_, before, _ := s.Load(context.Background(), "gw")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if _, err := loginbudget.New(s, "recorder").Begin(ctx, "gw", cred); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("begin while another is in flight = %v, want the caller's deadline", err)
		}
		if _, after, _ := s.Load(context.Background(), "gw"); after != before {
			t.Fatalf("the ledger was written %d times while waiting", after-before)
		}
		// Once the other reports, the next goes.
		if err := other.Finish(context.Background(), loginbudget.Accepted, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := loginbudget.New(s, "recorder").Begin(context.Background(), "gw", cred); err != nil {
			t.Fatalf("after the other login: %v", err)
		}
	})
}
