package isapi_test

import (
	"context"
	"errors"
	"testing"
	"time"

	hik "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/services/health-sentinel/internal/adapters/isapi"
	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/loginbudgettest"
)

const gw = "gw-1"

// passwords is the gateway's password parameter at version 3.
type passwords struct{ pw string }

func (p passwords) ParameterName(string) string { return "/mediagw/gateways/gw-1/Password" }
func (p passwords) Password(context.Context, string) (string, int64, error) {
	return p.pw, 3, nil
}

type rig struct {
	sim    *gatewaysim.Server
	budget *loginbudget.Budget
	api    *isapi.API
	cred   loginbudget.Credential
}

func newRig(t *testing.T, pw string) *rig {
	t.Helper()
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithDevices(1, 1))
	budget := loginbudget.New(loginbudgettest.NewStore(), "health-sentinel")
	p := passwords{pw: pw}
	api := isapi.New(map[string]string{gw: sim.URL()}, p, budget, isapi.Options{User: gatewaysimtest.User, Timeout: 2 * time.Second})
	return &rig{sim: sim, budget: budget, api: api, cred: loginbudget.CredentialOf(p.ParameterName(gw), 3)}
}

// configure logs in once with the password through the budget, as the
// configurator does: the ledger then knows the gateway accepted it.
func (r *rig) configure(t *testing.T) {
	t.Helper()
	c, err := hik.New(r.sim.URL(), gatewaysimtest.User, gatewaysimtest.Password, hik.WithLoginGate(r.budget.ISAPIGate(gw, r.cred)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeviceInfo(t.Context()); err != nil {
		t.Fatal(err)
	}
	l, err := r.budget.Ledger(t.Context(), gw)
	if err != nil || l.Accepted != r.cred {
		t.Fatalf("ledger %+v %v", l, err)
	}
}

func TestNoLoginWithAPasswordNobodySawAccepted(t *testing.T) {
	r := newRig(t, "Wrong-Passw0rd")
	p := r.api.Probe(t.Context(), gw)
	if p.State != domain.APIUnknown || p.Detail == "" {
		t.Fatalf("probe %+v, want unknown", p)
	}
	if n := r.sim.Counters().FailedLogins["127.0.0.1"]; n != 0 {
		t.Fatalf("%d failed logins at the gateway", n)
	}
	l, _ := r.budget.Ledger(t.Context(), gw)
	if len(l.Attempts) != 0 {
		t.Fatalf("logins in the budget: %+v", l.Attempts)
	}
	if err := r.api.Reboot(t.Context(), gw); !errors.Is(err, recovery.ErrNotDone) || r.sim.Counters().Reboots != 0 {
		t.Fatalf("reboot without an accepted password: %v, want ErrNotDone", err)
	}
	// A hung gateway is told apart even so: no answer without credentials.
	r.sim.Hang()
	if p := r.api.Probe(t.Context(), gw); p.State != domain.APISilent {
		t.Fatalf("hung, no login: %+v, want silent", p)
	}
}

func TestProbeClassifiesAndRebootIsProven(t *testing.T) {
	r := newRig(t, gatewaysimtest.Password)
	r.configure(t)
	ctx := t.Context()
	p := r.api.Probe(ctx, gw)
	if p.State != domain.APIOK || p.BootedAt.IsZero() || time.Since(p.BootedAt) > time.Minute {
		t.Fatalf("probe %+v, want ok with a recent boot", p)
	}
	f, err := r.sim.InjectFault(gatewaysim.Fault{Path: "/ISAPI/System/status", Kind: gatewaysim.FaultHTTPStatus, HTTPStatus: 500})
	if err != nil {
		t.Fatal(err)
	}
	if p := r.api.Probe(ctx, gw); p.State != domain.APISick {
		t.Fatalf("500: %+v, want sick", p)
	}
	r.sim.ClearFault(f.ID)
	before := r.sim.Counters().Reboots
	asked := time.Now()
	if err := r.api.Reboot(ctx, gw); err != nil {
		t.Fatal(err)
	}
	if r.sim.Counters().Reboots != before+1 {
		t.Fatal("the gateway did not reboot")
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.sim.WaitUp(wctx); err != nil {
		t.Fatal(err)
	}
	p = r.api.Probe(ctx, gw)
	if p.State != domain.APIOK || p.BootedAt.Before(asked.Add(-time.Second)) {
		t.Fatalf("after the reboot: %+v (asked %s)", p, asked)
	}
	r.sim.Hang()
	if p := r.api.Probe(ctx, gw); p.State != domain.APISilent {
		t.Fatalf("hung: %+v, want silent", p)
	}
	if n := r.sim.Counters().FailedLogins["127.0.0.1"]; n != 0 {
		t.Fatalf("%d failed logins at the gateway", n)
	}
}
