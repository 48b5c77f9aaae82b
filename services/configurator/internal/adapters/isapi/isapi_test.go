package isapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	isapiclient "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/services/configurator/internal/domain"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

const gw = "gw-test-1"

// Credentials of the tests' passwords (parameter versions).
var (
	wrongCred   = loginbudget.CredentialOf("/mediagw/gateways/gw-test-1/BootstrapPassword", 1)
	simCred     = loginbudget.CredentialOf("/mediagw/gateways/gw-test-1/Password", 1)
	desiredCred = loginbudget.CredentialOf("/mediagw/gateways/gw-test-1/Password", 2)
)

func dialWith(t *testing.T, sim *gatewaysim.Server, budget *loginbudget.Budget) *Gateway {
	t.Helper()
	g, err := Dialer{Timeout: time.Second, Budget: budget}.Dial(gw, sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func dial(t *testing.T, sim *gatewaysim.Server) *Gateway {
	t.Helper()
	return dialWith(t, sim, NewMemBudget())
}

func kindOf(t *testing.T, err error) (domain.Kind, *domain.OpError) {
	t.Helper()
	var oe *domain.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("%v is not a *domain.OpError", err)
	}
	return oe.Kind, oe
}

func TestProbe(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithLockout(1, time.Hour))
	g := dial(t, sim)
	if err := g.Probe(t.Context()); err != nil {
		t.Fatalf("probe of a healthy gateway: %v", err)
	}
	if n := sim.Counters().FailedLogins["127.0.0.1"]; n != 0 {
		t.Fatalf("a probe counted as a failed login (%d)", n)
	}
	// Lock the source IP, then probe again.
	if err := g.Login(t.Context(), domain.NewSecret("Wrong-Pass-1"), wrongCred); err == nil {
		t.Fatal("wrong password accepted")
	}
	k, oe := kindOf(t, g.Probe(t.Context()))
	if k != domain.KindLocked || oe.LockRemaining < 59*time.Minute {
		t.Fatalf("probe of a locked gateway: kind %v, remaining %s", k, oe.LockRemaining)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	down, err := Dialer{Timeout: 300 * time.Millisecond, Budget: NewMemBudget()}.Dial(gw, "http://"+addr)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if k, _ := kindOf(t, down.Probe(t.Context())); k != domain.KindTransient {
		t.Fatalf("probe of a closed port: %v", k)
	}
}

func TestLoginOutcomes(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	budget := NewMemBudget()
	g := dialWith(t, sim, budget)
	k, oe := kindOf(t, g.Login(t.Context(), domain.NewSecret("Wrong-Pass-1"), wrongCred))
	if k != domain.KindRejected || oe.AttemptsLeft != 4 {
		t.Fatalf("wrong password: kind %v, attempts left %d", k, oe.AttemptsLeft)
	}
	// The budget refuses that credential from now on, in any client: the
	// gateway sees nothing.
	before := totalRequests(sim.Counters())
	var refused *loginbudget.RefusedError
	err := dialWith(t, sim, budget).Login(t.Context(), domain.NewSecret("Wrong-Pass-1"), wrongCred)
	if k, _ := kindOf(t, err); k != domain.KindRefused || !errors.As(err, &refused) || refused.Reason != loginbudget.ReasonRejected {
		t.Fatalf("the rejected credential again: %v", err)
	}
	if n := totalRequests(sim.Counters()); n != before || len(sim.LoginFailures()) != 1 {
		t.Fatalf("a refused login sent %d requests; failed logins %d", n-before, len(sim.LoginFailures()))
	}
	// Any answer but a 401 means the credentials passed.
	if _, err := sim.InjectFault(gatewaysim.Fault{Kind: gatewaysim.FaultHTTPStatus, HTTPStatus: 500, Path: gatewaysim.PathDeviceInfo, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := g.Login(t.Context(), domain.NewSecret(gatewaysimtest.Password), simCred); err != nil {
		t.Fatalf("right password with a 500 answer: %v", err)
	}
	if l, _ := budget.Ledger(t.Context(), gw); l.Accepted != simCred {
		t.Fatalf("ledger %+v", l)
	}
	var cur domain.Current
	if err := g.Read(t.Context(), domain.SettingName, &cur); err != nil || cur.Name == "" {
		t.Fatalf("read after login: %q, %v", cur.Name, err)
	}
}

// A password rejected earlier (tried before the gateway had it) is
// refused by the budget after the change too, until the run says the
// gateway has it now (Forget); the new password is then proven with a
// client of its own credential.
func TestChangeToAPasswordRejectedEarlierInTheRun(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	budget := NewMemBudget()
	g := dialWith(t, sim, budget)
	desired := domain.NewSecret("Mgw-Desired-2026")
	if k, _ := kindOf(t, g.Login(t.Context(), desired, desiredCred)); k != domain.KindRejected {
		t.Fatalf("desired password before the change: %v", k)
	}
	if err := g.Login(t.Context(), domain.NewSecret(gatewaysimtest.Password), simCred); err != nil {
		t.Fatal(err)
	}
	if err := g.ChangePassword(t.Context(), desired); err != nil {
		t.Fatal(err)
	}
	if !sim.CheckPassword(desired.Reveal()) {
		t.Fatal("password not changed")
	}
	var cur domain.Current
	if err := g.Read(t.Context(), domain.SettingName, &cur); err == nil {
		t.Fatal("read after the change without a login with the new password")
	}
	if k, _ := kindOf(t, g.Login(t.Context(), desired, desiredCred)); k != domain.KindRefused {
		t.Fatalf("the new password before Forget: %v", k)
	}
	if err := budget.Forget(t.Context(), gw, desiredCred); err != nil {
		t.Fatal(err)
	}
	if err := g.Login(t.Context(), desired, desiredCred); err != nil {
		t.Fatalf("the new password after the change: %v", err)
	}
	if err := g.Read(t.Context(), domain.SettingTime, &cur); err != nil || cur.Time.Zone == "" || cur.Time.Clock.IsZero() {
		t.Fatalf("read time: %+v, %v", cur.Time, err)
	}
	if n := sim.Counters().FailedLogins["127.0.0.1"]; n != 1 {
		t.Fatalf("failed logins = %d, want 1", n)
	}
	if l, _ := budget.Ledger(t.Context(), gw); l.Accepted != desiredCred {
		t.Fatalf("ledger %+v", l)
	}
}

// A lost 401 is transient (no verdict), counted by the budget and never
// re-sent; a 401 without lock fields says nothing of attempts left.
func TestLoginFaults(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithLoginFaults(gatewaysim.LoginFaults{Lost401: true}))
	budget := NewMemBudget()
	if k, _ := kindOf(t, dialWith(t, sim, budget).Login(t.Context(), domain.NewSecret("Wrong-Pass-1"), wrongCred)); k != domain.KindTransient {
		t.Fatalf("lost 401: %v", k)
	}
	if n := len(sim.LoginFailures()); n != 1 {
		t.Fatalf("failed logins %d: the request was re-sent", n)
	}
	if l, _ := budget.Ledger(t.Context(), gw); l.Failures(time.Now(), budget.Limits()) != 1 {
		t.Fatalf("the budget did not count it: %+v", l)
	}

	if err := sim.SetLoginFaults(gatewaysim.LoginFaults{NoLockFields: true}); err != nil {
		t.Fatal(err)
	}
	k, oe := kindOf(t, dialWith(t, sim, NewMemBudget()).Login(t.Context(), domain.NewSecret("Wrong-Pass-1"), wrongCred))
	if k != domain.KindRejected || oe.AttemptsLeft != -1 {
		t.Fatalf("401 without lock fields: %v, attempts left %d", k, oe.AttemptsLeft)
	}
}

func totalRequests(c gatewaysim.Counters) int {
	n := 0
	for _, v := range c.Requests {
		n += v
	}
	return n
}

func TestWriteAndReadBack(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	g := dial(t, sim)
	if err := g.Login(t.Context(), domain.NewSecret(gatewaysimtest.Password), simCred); err != nil {
		t.Fatal(err)
	}
	var cur domain.Current
	for _, s := range domain.ReadableSettings {
		if err := g.Read(t.Context(), s, &cur); err != nil {
			t.Fatal(err)
		}
	}
	d := domain.Desired{Name: "renamed", TimeMode: domain.TimeModeNTP, TimeZone: "CST+5:00:00", ExternalIP: "198.51.100.3",
		DevicePorts: domain.PortOverrides{7662: 17662}}
	plan := domain.NewPlan(cur, d, time.Now())
	for _, step := range plan.Steps {
		needs, err := g.Write(t.Context(), step.Setting, plan.Target)
		if err != nil {
			t.Fatalf("write %s: %v", step.Setting, err)
		}
		if needs != step.Setting.NeedsReboot() {
			t.Errorf("write %s: reboot required %v", step.Setting, needs)
		}
	}
	var back domain.Current
	for _, s := range domain.ReadableSettings {
		if err := g.Read(t.Context(), s, &back); err != nil {
			t.Fatal(err)
		}
		if m := plan.Target.Mismatch(s, back); m != "" {
			t.Errorf("read back %s: %s", s, m)
		}
	}
	set := sim.Settings()
	last := set.DevicePortMaps.PortList[len(set.DevicePortMaps.PortList)-1].Range
	if last == nil || last.MinExternalPort != 17662 || last.MaxExternalPort != 17700 {
		t.Fatalf("device range = %+v", last)
	}

	// Manual time with a clock.
	clock := time.Now().Add(-time.Hour).In(time.FixedZone("", -5*3600)).Truncate(time.Second)
	if _, err := g.Write(t.Context(), domain.SettingTime, domain.Target{Time: domain.TimeSettings{Mode: domain.TimeModeManual, Zone: "CST+5:00:00", Clock: clock}}); err != nil {
		t.Fatal(err)
	}
	if err := g.Read(t.Context(), domain.SettingTime, &back); err != nil {
		t.Fatal(err)
	}
	if back.Time.Mode != domain.TimeModeManual || back.Time.Clock.Sub(clock).Abs() > 5*time.Second {
		t.Fatalf("manual clock: %+v, want about %s", back.Time, clock)
	}
}

func TestRebootAndUptime(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithConfig(func(c *gatewaysim.Config) { c.RebootDowntime = 300 * time.Millisecond }))
	g := dial(t, sim)
	if err := g.Login(t.Context(), domain.NewSecret(gatewaysimtest.Password), simCred); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if err := g.Reboot(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := sim.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	// The nonce of the old boot is stale: the client must handle it
	// without a failed login. The first request may still meet a
	// connection of the old boot, so the test waits for an answer.
	var up time.Duration
	var err error
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, "the gateway reports its uptime after the reboot", func() bool {
		up, err = g.Uptime(ctx)
		return err == nil
	})
	// The new boot started after the request: its uptime is below the time since.
	if up > time.Since(sent) || sim.Counters().Reboots != 1 || sim.Counters().FailedLogins["127.0.0.1"] != 0 {
		t.Fatalf("after reboot: uptime %s (reboot asked %s ago), counters %+v", up, time.Since(sent), sim.Counters())
	}
}

func TestClassify(t *testing.T) {
	st := func(http, code int, sub string) error {
		return &isapiclient.StatusError{Method: "PUT", Path: "/x", HTTPStatus: http, Status: &isapiclient.ResponseStatus{StatusCode: code, SubStatusCode: sub}}
	}
	for _, tc := range []struct {
		err  error
		want domain.Kind
	}{
		{st(200, 2, "deviceBusy"), domain.KindTransient},
		{st(200, 3, "deviceError"), domain.KindTransient},
		{&isapiclient.StatusError{HTTPStatus: 503}, domain.KindTransient},
		{&isapiclient.StatusError{HTTPStatus: 502}, domain.KindTransient},
		{&isapiclient.MalformedResponseError{HTTPStatus: 200, Err: errors.New("eof")}, domain.KindTransient},
		{st(200, 6, "badParameters"), domain.KindPermanent},
		{st(200, 5, "badJsonFormat"), domain.KindPermanent},
		{st(403, 4, "notSupport"), domain.KindPermanent},
		{&isapiclient.StatusError{HTTPStatus: 404}, domain.KindPermanent},
		{st(200, 4, "badAuthorization"), domain.KindRejected},
		{&isapiclient.BadCredentialsError{User: "admin", RetryTimes: 3}, domain.KindRejected},
		{&isapiclient.LockedError{TimeLeft: time.Minute}, domain.KindLocked},
		{fmt.Errorf("isapi: GET /x: %w", &loginbudget.RefusedError{Gateway: "gw", Refusal: loginbudget.Refusal{Reason: loginbudget.ReasonBudgetSpent}}), domain.KindRefused},
		{fmt.Errorf("isapi: GET /x: gateway gw: login not attempted: the login budget could not be recorded: %w", errors.New("throttled")), domain.KindTransient},
		{st(200, 4, "deviceIsLocked"), domain.KindLocked},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, domain.KindTransient},
		{context.DeadlineExceeded, domain.KindTransient},
	} {
		if got := domain.KindOf(classify("op", tc.err)); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	var oe *domain.OpError
	if errors.As(classify("op", &isapiclient.LockedError{TimeLeft: time.Minute}), &oe); oe.LockRemaining != time.Minute {
		t.Fatalf("lock remaining %s", oe.LockRemaining)
	}
	if errors.As(classify("op", &isapiclient.BadCredentialsError{RetryTimes: 3}), &oe); oe.AttemptsLeft != 3 {
		t.Fatalf("attempts left %d", oe.AttemptsLeft)
	}
}
