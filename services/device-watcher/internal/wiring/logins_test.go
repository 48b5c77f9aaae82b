package wiring_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

// Every login to the simulated gateway goes through the real login budget
// on the emulator's DynamoDB; the failed logins are counted on the
// gateway's side, from the simulator's own ledger.

const wrongPassword = "Wrong-Passw0rd"

func credentialsRejected(p *watcherProc, gw string) float64 {
	return p.metric("mediagw_device_watcher_gateway_credentials_rejected", map[string]string{"gateway": gw})
}

// noSecret fails if a password appears in the watcher's logs or in an
// event it published.
func noSecret(t *testing.T, h *harness, w *watcherProc, secrets ...string) {
	t.Helper()
	texts := []string{w.logs.String()}
	for _, r := range append(h.gw.all(), h.device.all()...) {
		texts = append(texts, prototext.Format(r.Event))
	}
	for _, secret := range secrets {
		for _, text := range texts {
			if strings.Contains(text, secret) {
				t.Fatal("a password appears in the logs or an event")
			}
		}
	}
}

// (a) The parameter holds a wrong password (a watcher restarts with it):
// the gateway sees one failed login over many polls and the event
// stream; GatewayCredentialsRejected is published once; the cameras,
// unseen meanwhile, are not reported offline.
// (b) The parameter gets the right password (a new version): the watcher
// resumes within its recheck interval, without a restart, publishes
// GatewayCredentialsAccepted, and cameras flow again.
func TestWrongPasswordStopsLoginsAndANewVersionResumesThem(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-p", 2, 1)
	gws := []string{"gw-p=" + s.URL()}
	w1 := h.start("dw-1", gws)
	waitInitial(t, h, s)
	w1.stop()

	wrong := h.setPassword("gw-p", wrongPassword)
	const recheck = time.Second
	w := h.start("dw-2", gws, "--poll-interval=300ms", "--password-recheck="+recheck.String())
	ev := h.gw.wait(t, "GatewayCredentialsRejected", "", 1, patience)[0].Event.(*eventsv1.GatewayCredentialsRejected)
	if ev.GatewayId != "gw-p" || ev.Component != "device-watcher" || ev.Reason != string(loginbudget.ReasonRejected) ||
		ev.Credential != string(wrong) || ev.FailedLogins != 1 || ev.Until != nil || !strings.Contains(ev.Detail, string(wrong)) {
		t.Fatalf("event %v", ev)
	}
	testkit.Eventually(t, patience, 20*time.Millisecond, "the credentials-rejected gauge", func() bool { return credentialsRejected(w, "gw-p") == 1 })
	// Ten polls, 300 ms apart: longer than the 2 s offline hysteresis.
	w.waitPolls(t, "gw-p", w.polls("gw-p")+10)
	h.caughtUp()
	if n := failedLogins(s); n != 1 {
		t.Fatalf("%d failed logins at the gateway, want 1: %+v", n, s.LoginFailures())
	}
	onlyOne(t, h.gw, "GatewayCredentialsRejected", "")
	none(t, h.device, "DeviceOffline", "")
	none(t, h.device, "DeviceDeleted", "")
	if !strings.Contains(w.logs.String(), "gateway credentials rejected") || !strings.Contains(w.logs.String(), `"parameter":"`+h.param("gw-p")+`"`) {
		t.Fatal("no log line says the credentials were rejected, naming the parameter")
	}

	fixedAt := time.Now()
	fixed := h.setPassword("gw-p", gatewaysimtest.Password)
	acc := h.gw.wait(t, "GatewayCredentialsAccepted", "", 1, patience)[0].Event.(*eventsv1.GatewayCredentialsAccepted)
	if acc.GatewayId != "gw-p" || acc.Component != "device-watcher" || acc.Credential != string(fixed) {
		t.Fatalf("event %v", acc)
	}
	// The first accepted login came within the recheck interval (plus a
	// poll and a loaded machine's slack), not after a blind timer.
	if d := acc.Meta.GetOccurredAt().AsTime().Sub(fixedAt); d > recheck+5*time.Second {
		t.Fatalf("logins resumed %s after the new version", d)
	}
	d, err := s.AddDevice(gatewaysim.DeviceSpec{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	h.device.wait(t, "DeviceOnline", d.DevIndex, 1, patience)
	testkit.Eventually(t, patience, 50*time.Millisecond, "event stream subscribed again", func() bool { return s.Counters().Subscribers == 1 })
	h.settled(w, "gw-p")
	if credentialsRejected(w, "gw-p") != 0 {
		t.Fatal("the gauge still says credentials-rejected")
	}
	if n := failedLogins(s); n != 1 {
		t.Fatalf("%d failed logins at the gateway, want 1", n)
	}
	onlyOne(t, h.gw, "GatewayCredentialsRejected", "")
	onlyOne(t, h.gw, "GatewayCredentialsAccepted", "")
	for _, dev := range s.Devices() {
		onlyOne(t, h.device, "DeviceOnline", dev.DevIndex)
	}
	none(t, h.device, "DeviceOffline", "")
	noSecret(t, h, w, wrongPassword, gatewaysimtest.Password)
}

// (c) The gateway's answers to failed logins are lost (the connection
// closes): each counts against the budget, so the gateway sees at most
// two, then the budget refuses (budget-spent) and it is reported.
func TestLostAnswersSpendTheBudgetThenLoginsStop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-l", 1, 1, gatewaysimtest.WithLoginFaults(gatewaysim.LoginFaults{Lost401: true}))
	h.setPassword("gw-l", wrongPassword)
	w := h.start("dw-1", []string{"gw-l=" + s.URL()}, "--poll-interval=300ms")
	ev := h.gw.wait(t, "GatewayCredentialsRejected", "", 1, patience)[0].Event.(*eventsv1.GatewayCredentialsRejected)
	if ev.Reason != string(loginbudget.ReasonBudgetSpent) || ev.FailedLogins != 2 || ev.Until == nil ||
		ev.Until.AsTime().Before(time.Now().Add(25*time.Minute)) {
		t.Fatalf("event %v", ev)
	}
	w.waitPolls(t, "gw-l", w.polls("gw-l")+10)
	h.caughtUp()
	failures := s.LoginFailures()
	if len(failures) > 2 {
		t.Fatalf("%d failed logins at the gateway, want at most 2: %+v", len(failures), failures)
	}
	for _, f := range failures {
		if f.Answer != gatewaysim.AnswerLost {
			t.Fatalf("failed login answered %q", f.Answer)
		}
	}
	onlyOne(t, h.gw, "GatewayCredentialsRejected", "")
	if credentialsRejected(w, "gw-l") != 1 {
		t.Fatal("the gauge does not say credentials-rejected")
	}
	if n := w.metric("mediagw_device_watcher_logins_refused_total", map[string]string{"gateway": "gw-l", "reason": "budget-spent"}); n < 1 {
		t.Fatalf("%v refusals counted", n)
	}
}

// (d) Someone else locked the gateway (5 failed logins from this host),
// and its firmware says nothing about the lock (no lock fields): the
// watcher, with the right password, meets a plain 401; it costs at most
// two further failed logins, and logins stop.
func TestGatewayLockedBySomeoneElseWithoutLockFields(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-k", 1, 1, gatewaysimtest.WithLoginFaults(gatewaysim.LoginFaults{NoLockFields: true}))
	for i := range 5 {
		c, err := isapi.New(s.URL(), gatewaysimtest.User, fmt.Sprintf("Someone-Else-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeviceInfo(context.Background()); err == nil {
			t.Fatal("a wrong password was accepted")
		}
	}
	if n, locks := len(s.LoginFailures()), s.Counters().Lockouts["127.0.0.1"]; n != 5 || locks != 1 {
		t.Fatalf("%d failed logins, %d lockouts before the watcher", n, locks)
	}
	w := h.start("dw-1", []string{"gw-k=" + s.URL()}, "--poll-interval=300ms")
	ev := h.gw.wait(t, "GatewayCredentialsRejected", "", 1, patience)[0].Event.(*eventsv1.GatewayCredentialsRejected)
	if ev.Component != "device-watcher" || ev.Credential == "" {
		t.Fatalf("event %v", ev)
	}
	w.waitPolls(t, "gw-k", w.polls("gw-k")+10)
	h.caughtUp()
	if n := len(s.LoginFailures()) - 5; n > 2 {
		t.Fatalf("%d further failed logins at the locked gateway, want at most 2: %+v", n, s.LoginFailures())
	}
	onlyOne(t, h.gw, "GatewayCredentialsRejected", "")
	none(t, h.device, "", "")
}
