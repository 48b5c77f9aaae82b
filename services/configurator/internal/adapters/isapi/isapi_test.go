package isapi

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	isapiclient "mediagw/pkg/isapi"
	"mediagw/services/configurator/internal/domain"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

func dial(t *testing.T, sim *gatewaysim.Server) *Gateway {
	t.Helper()
	g, err := Dialer{Timeout: time.Second}.Dial(sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
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
	if err := g.Login(t.Context(), domain.NewSecret("Wrong-Pass-1")); err == nil {
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
	down, err := Dialer{Timeout: 300 * time.Millisecond}.Dial("http://" + addr)
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
	g := dial(t, sim)
	k, oe := kindOf(t, g.Login(t.Context(), domain.NewSecret("Wrong-Pass-1")))
	if k != domain.KindRejected || oe.AttemptsLeft != 4 {
		t.Fatalf("wrong password: kind %v, attempts left %d", k, oe.AttemptsLeft)
	}
	// Any answer but a 401 means the credentials passed.
	if _, err := sim.InjectFault(gatewaysim.Fault{Kind: gatewaysim.FaultHTTPStatus, HTTPStatus: 500, Path: gatewaysim.PathDeviceInfo, Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := g.Login(t.Context(), domain.NewSecret(gatewaysimtest.Password)); err != nil {
		t.Fatalf("right password with a 500 answer: %v", err)
	}
	var cur domain.Current
	if err := g.Read(t.Context(), domain.SettingName, &cur); err != nil || cur.Name == "" {
		t.Fatalf("read after login: %q, %v", cur.Name, err)
	}
}

// The isapi client refuses a password it saw rejected; after the gateway
// took it as the new password, the adapter must use it all the same.
func TestChangeToAPasswordRejectedEarlierInTheRun(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	g := dial(t, sim)
	desired := domain.NewSecret("Mgw-Desired-2026")
	if k, _ := kindOf(t, g.Login(t.Context(), desired)); k != domain.KindRejected {
		t.Fatalf("desired password before the change: %v", k)
	}
	if err := g.Login(t.Context(), domain.NewSecret(gatewaysimtest.Password)); err != nil {
		t.Fatal(err)
	}
	if err := g.ChangePassword(t.Context(), desired); err != nil {
		t.Fatal(err)
	}
	if !sim.CheckPassword(desired.Reveal()) {
		t.Fatal("password not changed")
	}
	if err := g.Login(t.Context(), desired); err != nil {
		t.Fatalf("the new password after the change: %v", err)
	}
	var cur domain.Current
	if err := g.Read(t.Context(), domain.SettingTime, &cur); err != nil || cur.Time.Zone == "" || cur.Time.Clock.IsZero() {
		t.Fatalf("read time: %+v, %v", cur.Time, err)
	}
	if n := sim.Counters().FailedLogins["127.0.0.1"]; n != 1 {
		t.Fatalf("failed logins = %d, want 1", n)
	}
}

func TestWriteAndReadBack(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	g := dial(t, sim)
	if err := g.Login(t.Context(), domain.NewSecret(gatewaysimtest.Password)); err != nil {
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
	if err := g.Login(t.Context(), domain.NewSecret(gatewaysimtest.Password)); err != nil {
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
