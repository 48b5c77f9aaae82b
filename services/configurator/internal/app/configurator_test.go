package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/loginbudget"
	"mediagw/pkg/messaging"
	"mediagw/pkg/redact"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
)

// The run's rules on in-memory fakes; the same run against the simulated
// gateway through the ISAPI adapter is tested in adapters/isapi. Every test
// runs in a synctest bubble: backoffs, lock waits and reboot waits take no
// real time.

func loginsOf(j *journal) []string {
	var out []string
	for _, e := range j.all() {
		if s, ok := strings.CutPrefix(e, "gateway login "); ok {
			out = append(out, s)
		}
	}
	return out
}

func TestFactoryGatewayConfiguredThenNothingToDo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, bootstrapPassword, nil)
		res, fail := f.configure(t)
		if fail != nil {
			t.Fatalf("%v\nlog:\n%s", fail, f.logs.String())
		}
		if got := changedNames(res); got != "password,name,time,portmap.contentMgmt,portmap.devMgmt" || !res.Rebooted {
			t.Fatalf("changed %s, rebooted %v", got, res.Rebooted)
		}
		// Nobody ever logged in: the bootstrap password first, then the new
		// one proven. No failed login.
		if got := strings.Join(loginsOf(f.j), ","); got != "bootstrap,desired" {
			t.Fatalf("logins %s", got)
		}
		if _, failed, _ := f.gw.counts(); failed != 0 {
			t.Fatalf("failed logins %d", failed)
		}
		if l := f.ledger(t); l.Accepted != desiredCred || l.Failures(time.Now(), f.budget.Limits()) != 0 {
			t.Fatalf("ledger %+v", l)
		}
		// The pending-reboot record is written before the first write that
		// needs the reboot, and cleared once the reboot is verified.
		set, write, reboot, clear := f.j.index("params set pending reboot"), f.j.index("gateway write portmap"), f.j.index("gateway reboot"), f.j.index("params clear pending reboot")
		if set < 0 || set > write || write > reboot || reboot > clear || f.params.pendingReboot() {
			t.Fatalf("order of record, write, reboot, clear: %d %d %d %d; journal %v", set, write, reboot, clear, f.j.all())
		}
		if f.metrics.reboots != 1 || !slices.Equal(f.metrics.results, []string{app.ResultConfigured}) ||
			!slices.Equal(f.metrics.logins, []string{"bootstrap/accepted", "desired/accepted"}) || len(f.metrics.changed) != 5 {
			t.Fatalf("metrics %+v", f.metrics)
		}

		before := len(f.j.all())
		res, fail = f.configure(t)
		if fail != nil || len(res.Changed) != 0 || res.Rebooted {
			t.Fatalf("second run: %+v %v", res, fail)
		}
		for _, e := range f.j.all()[before:] {
			if strings.HasPrefix(e, "gateway write") || strings.HasPrefix(e, "gateway reboot") || strings.HasPrefix(e, "gateway change") {
				t.Fatalf("second run wrote: %s", e)
			}
		}
		// The accepted credential first: the desired one.
		if got := strings.Join(loginsOf(f.j), ","); got != "bootstrap,desired,desired" {
			t.Fatalf("logins %s", got)
		}
		if _, failed, _ := f.gw.counts(); failed != 0 {
			t.Fatalf("failed logins after the second run %d", failed)
		}
	})
}

// With fewer than MinAttemptsLeft failed logins left (others failed too),
// the next password is not tried: the configurator never triggers the
// lock itself; the configuration is pending, held back for a window.
func TestStopsBeforeTriggeringTheLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "Someone-Else-9", nil)
		f.gw.maxFailed = 2
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepLogin || fail.Retryable || !strings.Contains(fail.Reason, "only 1 more") ||
			!strings.Contains(fail.Reason, "desired password ("+string(desiredCred)+") was not tried") {
			t.Fatalf("failure = %+v", fail)
		}
		if got := strings.Join(loginsOf(f.j), ","); got != "bootstrap" {
			t.Fatalf("logins %s", got)
		}
		if !f.gw.lockedUntil.IsZero() {
			t.Fatal("the gateway locked")
		}
		if !slices.Equal(f.metrics.results, []string{app.ResultFailedPermanent}) {
			t.Fatalf("results %v", f.metrics.results)
		}
		pc, ok := f.params.pendingConfiguration(f.req.GatewayID)
		if !ok || !pc.NotBefore.Equal(time.Now().Add(30*time.Minute)) || fail.Credentials == nil ||
			fail.Credentials.Reason != domain.CredentialsBudget || !fail.Credentials.Until.Equal(pc.NotBefore) {
			t.Fatalf("pending %+v %v, credentials %+v", pc, ok, fail.Credentials)
		}
		// The resumer holds it back although the budget would admit the
		// desired password, until the window has passed.
		pub := &recordingPublisher{}
		res := app.NewResumer(f.conf, app.NewReporter(f.conf, pub), 15*time.Second)
		if err := res.Resume(t.Context()); err != nil || len(loginsOf(f.j)) != 1 || len(pub.events) != 0 {
			t.Fatalf("resumed while held back: %v, logins %v, events %v", err, loginsOf(f.j), pub.events)
		}
	})
}

// Neither password is the gateway's: two failed logins, then every later
// run sends nothing (the budget refuses both credentials) and says so.
func TestBothPasswordsRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "Someone-Else-9", nil)
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepLogin || fail.Retryable ||
			!strings.Contains(fail.Reason, "the gateway rejected the bootstrap password ("+string(bootstrapCred)+")") ||
			!strings.Contains(fail.Reason, "the gateway rejected the desired password ("+string(desiredCred)+")") ||
			!strings.Contains(fail.Reason, "Put the gateway's current admin password into "+paramPath+"Password") {
			t.Fatalf("failure = %+v", fail)
		}
		if cr := fail.Credentials; cr == nil || cr.Reason != domain.CredentialsRejected || cr.Credential != string(desiredCred) ||
			!cr.Until.IsZero() || cr.FailedLogins != 2 {
			t.Fatalf("credentials %+v", fail.Credentials)
		}
		for range 4 {
			_, fail = f.configure(t)
			if fail == nil || fail.Credentials == nil || fail.Credentials.Reason != domain.CredentialsRejected ||
				!strings.Contains(fail.Reason, "the bootstrap password ("+string(bootstrapCred)+") was not tried: the gateway rejected") {
				t.Fatalf("later run: %+v", fail)
			}
		}
		if _, failed, _ := f.gw.counts(); failed != 2 {
			t.Fatalf("failed logins %d, want 2", failed)
		}
		if got := strings.Join(loginsOf(f.j), ","); got != "bootstrap,desired,bootstrap refused,desired refused,bootstrap refused,desired refused,bootstrap refused,desired refused,bootstrap refused,desired refused" {
			t.Fatalf("logins %s", got)
		}
		if _, ok := f.params.pendingConfiguration(f.req.GatewayID); !ok || !f.metrics.isRejected(f.req.GatewayID) {
			t.Fatal("no pending configuration, or the gauge does not show it")
		}
		if n := strings.Count(strings.Join(f.metrics.logins, ","), "/refused"); n != 8 {
			t.Fatalf("refused logins counted %d: %v", n, f.metrics.logins)
		}
	})
}

// A 401 without lock fields may mean a lock: the reason says so.
func TestRejectedWithoutLockFields(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "Someone-Else-9", nil)
		f.gw.noLockFields = true
		_, fail := f.configure(t)
		if fail == nil || fail.Credentials == nil || !strings.Contains(fail.Reason, "rejected the password or is locked (this firmware does not say which)") ||
			!strings.Contains(fail.Reason, "the gateway was locked: put it again as a new version once the lock has ended") {
			t.Fatalf("failure = %+v", fail)
		}
		if _, failed, _ := f.gw.counts(); failed != 2 {
			t.Fatalf("failed logins %d", failed)
		}
	})
}

// A credential the budget refuses costs nothing: the next one is tried.
func TestRefusedCandidateIsSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, nil)
		// Another component was refused the bootstrap password before.
		a, err := f.budget.Begin(t.Context(), f.req.GatewayID, bootstrapCred)
		if err != nil {
			t.Fatal(err)
		}
		_ = a.Finish(t.Context(), loginbudget.Rejected, 0)
		res, fail := f.configure(t)
		if fail != nil || strings.Contains(changedNames(res), "password") {
			t.Fatalf("%+v %v", res, fail)
		}
		if got := strings.Join(loginsOf(f.j), ","); got != "bootstrap refused,desired" {
			t.Fatalf("logins %s", got)
		}
		if _, failed, _ := f.gw.counts(); failed != 0 {
			t.Fatalf("failed logins %d", failed)
		}
	})
}

// The credential the gateway accepted last comes first, whatever else.
func TestAcceptedCredentialFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, nil)
		a, err := f.budget.Begin(t.Context(), f.req.GatewayID, desiredCred)
		if err != nil {
			t.Fatal(err)
		}
		_ = a.Finish(t.Context(), loginbudget.Accepted, 0)
		if _, fail := f.configure(t); fail != nil {
			t.Fatal(fail)
		}
		if got := strings.Join(loginsOf(f.j), ","); got != "desired" {
			t.Fatalf("logins %s", got)
		}
	})
}

func TestNoBootstrapPasswordKnown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, bootstrapPassword, nil)
		delete(f.params.params, domain.ParamBootstrapPassword)
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepLogin || fail.Retryable || !strings.Contains(fail.Reason, "no bootstrap password is known") ||
			!strings.Contains(fail.Reason, "the configurator service tries it as soon as it sees it") {
			t.Fatalf("failure = %+v", fail)
		}
		if _, failed, _ := f.gw.counts(); failed != 1 {
			t.Fatalf("failed logins %d", failed)
		}
	})
}

// A lost answer to a login is retryable, counted, and not re-sent within
// the run; redeliveries stop at the budget: never more than 2 failed
// logins, then the run reports the budget and is pending.
func TestUnansweredLoginsAreBoundedByTheBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "Someone-Else-9", nil)
		f.gw.lost401 = true
		for i := range 2 {
			_, fail := f.configure(t)
			if fail == nil || fail.Step != domain.StepLogin || !fail.Retryable || fail.Credentials != nil ||
				!strings.Contains(fail.Reason, "no answer to the login with the bootstrap password") {
				t.Fatalf("run %d: %+v", i, fail)
			}
		}
		for range 3 {
			_, fail := f.configure(t)
			if fail == nil || fail.Retryable || fail.Credentials == nil || fail.Credentials.Reason != domain.CredentialsBudget ||
				!fail.Credentials.Until.Equal(time.Now().Add(30*time.Minute)) || fail.Credentials.FailedLogins != 2 ||
				!strings.Contains(fail.Reason, "2 failed or unanswered logins in the last 30m0s") {
				t.Fatalf("run after the budget: %+v %+v", fail, fail.Credentials)
			}
		}
		if _, failed, _ := f.gw.counts(); failed != 2 {
			t.Fatalf("failed logins %d, want 2", failed)
		}
		if got := strings.Join(loginsOf(f.j), ","); !strings.HasPrefix(got, "bootstrap,bootstrap,bootstrap refused,desired refused") {
			t.Fatalf("logins %s", got)
		}
	})
}

// A locked gateway costs the probe and nothing else; the configuration is
// pending until the lock ends, and then resumed.
func TestLockedGatewayStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, bootstrapPassword, nil)
		f.gw.lock(30 * time.Minute)
		_, fail := f.configure(t)
		until := time.Now().Add(30 * time.Minute)
		if fail == nil || fail.Step != domain.StepLogin || fail.Retryable || fail.LockRemaining != 30*time.Minute ||
			!strings.Contains(fail.Reason, "the configurator service tries again by itself after "+until.UTC().Format(time.RFC3339)) {
			t.Fatalf("failure = %+v", fail)
		}
		if cr := fail.Credentials; cr == nil || cr.Reason != domain.CredentialsLocked || !cr.Until.Equal(until) {
			t.Fatalf("credentials %+v", fail.Credentials)
		}
		if req, failed, _ := f.gw.counts(); req != 1 || failed != 0 {
			t.Fatalf("requests %d, failed logins %d; want the one probe", req, failed)
		}
		if !slices.Equal(f.metrics.results, []string{app.ResultLocked}) {
			t.Fatalf("results %v", f.metrics.results)
		}
		pub := &recordingPublisher{}
		res := app.NewResumer(f.conf, app.NewReporter(f.conf, pub), 15*time.Second)
		if err := res.Resume(t.Context()); err != nil || len(pub.events) != 0 {
			t.Fatalf("resumed during the lock: %v %v", err, pub.events)
		}
		if req, _, _ := f.gw.counts(); req != 1 {
			t.Fatalf("requests during the lock %d", req)
		}
		time.Sleep(30 * time.Minute)
		if err := res.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(pub.events) != 2 || !isA[*eventsv1.GatewayConfigured](pub.events[0]) || !isA[*eventsv1.GatewayCredentialsAccepted](pub.events[1]) {
			t.Fatalf("after the lock: %v", pub.events)
		}
		if _, ok := f.params.pendingConfiguration(f.req.GatewayID); ok {
			t.Fatal("the pending configuration is left")
		}
	})
}

func isA[T any](v any) bool { _, ok := v.(T); return ok }

// A lock ending within LockWaitMax is waited out once; the run then goes on.
func TestShortLockIsWaitedOutOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, func(o *app.Options) { o.LockWaitMax = time.Minute })
		f.gw.lock(20 * time.Second)
		start := time.Now()
		res, fail := f.configure(t)
		if fail != nil || !res.Rebooted {
			t.Fatalf("%+v %v\nlog:\n%s", res, fail, f.logs.String())
		}
		if waited := time.Since(start); waited < 20*time.Second {
			t.Fatalf("did not wait for the lock: %s", waited)
		}

		// Locked again at once by someone else's failed logins: a second
		// lock within one run is not waited out.
		f2 := newFixture(t, desiredPassword, func(o *app.Options) { o.LockWaitMax = time.Minute })
		f2.gw.lock(20 * time.Second)
		relock := make(chan struct{})
		go func() {
			// Right after the first lock ends, the gateway locks again.
			time.Sleep(20*time.Second + 100*time.Millisecond)
			f2.gw.lock(40 * time.Second)
			close(relock)
		}()
		_, fail = f2.configure(t)
		<-relock
		if fail == nil || fail.Step != domain.StepLogin || fail.LockRemaining <= 0 {
			t.Fatalf("second lock: %+v", fail)
		}
	})
}

func TestLongLockIsNotWaited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, func(o *app.Options) { o.LockWaitMax = time.Minute })
		f.gw.lock(2 * time.Minute)
		start := time.Now()
		_, fail := f.configure(t)
		if fail == nil || fail.LockRemaining != 2*time.Minute || time.Since(start) != 0 {
			t.Fatalf("failure %+v after %s", fail, time.Since(start))
		}
	})
}

// A password change whose answer is lost is not retried: the next run
// finds out which password the gateway has, at the cost of at most one
// failed login.
func TestLostPasswordChangeAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, bootstrapPassword, nil)
		f.gw.changeLost = true
		_, fail := f.configure(t)
		if fail == nil || fail.Step != string(domain.SettingPassword) || !fail.Retryable ||
			!strings.Contains(fail.Reason, "whether the gateway changed the password is unknown") {
			t.Fatalf("failure = %+v", fail)
		}
		changes := 0
		for _, e := range f.j.all() {
			if strings.HasPrefix(e, "gateway change password") {
				changes++
			}
		}
		if changes != 1 {
			t.Fatalf("password changes %d, want 1", changes)
		}
		f.gw.changeLost = false
		res, fail := f.configure(t)
		if fail != nil || strings.Contains(changedNames(res), "password") {
			t.Fatalf("next run: %+v %v", res, fail)
		}
		// The bootstrap password, accepted last, first.
		if got := strings.Join(loginsOf(f.j), ","); got != "bootstrap,bootstrap,desired" {
			t.Fatalf("logins %s", got)
		}
		if _, failed, _ := f.gw.counts(); failed != 1 {
			t.Fatalf("failed logins %d, want 1 (the second run's bootstrap password)", failed)
		}
	})
}

// A login that gets no answer is not retried within the run: it may have
// counted as a failed login.
func TestUnansweredGatewayIsRetriedThenReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, bootstrapPassword, nil)
		f.gw.unreachable = true
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepConnect || !fail.Retryable || !strings.Contains(fail.Reason, "gave up after") {
			t.Fatalf("failure = %+v", fail)
		}
		if len(loginsOf(f.j)) != 0 {
			t.Fatal("a login was tried on a gateway that does not answer")
		}
		if !slices.Equal(f.metrics.results, []string{app.ResultFailedRetryable}) {
			t.Fatalf("results %v", f.metrics.results)
		}
	})
}

func TestReadBackMismatchFailsTheStep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, nil)
		f.gw.readBackWrong = domain.SettingName
		res, fail := f.configure(t)
		if fail == nil || fail.Step != string(domain.SettingName) || fail.Retryable || !strings.Contains(fail.Reason, "reads back differently") {
			t.Fatalf("failure = %+v", fail)
		}
		if len(res.Changed) != 0 || f.j.index("gateway reboot") >= 0 {
			t.Fatalf("changed %v, journal %v", res.Changed, f.j.all())
		}
	})
}

func TestSettingsLostInTheRebootFailVerify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, nil)
		f.gw.loseOnReboot = domain.SettingName
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepVerify || fail.Retryable || !strings.Contains(fail.Reason, "lost settings") {
			t.Fatalf("failure = %+v", fail)
		}
		if !f.params.pendingReboot() {
			t.Fatal("the pending-reboot record is cleared although the settings did not survive")
		}
	})
}

// A reboot owed by an earlier run is done even when nothing differs.
func TestOwedRebootIsDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, nil)
		if _, fail := f.configure(t); fail != nil {
			t.Fatal(fail)
		}
		f.params.pending = "2026-01-01T00:00:00Z: 2 changes wait for a reboot"
		res, fail := f.configure(t)
		if fail != nil || len(res.Changed) != 0 || !res.Rebooted || f.params.pendingReboot() {
			t.Fatalf("%+v %v, pending %v", res, fail, f.params.pendingReboot())
		}
	})
}

func TestGatewayThatDoesNotComeBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, func(o *app.Options) { o.RebootTimeout = 30 * time.Second })
		f.gw.rebootDown = 1 << 30 // silent once rebooted
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepReboot || !fail.Retryable || !strings.Contains(fail.Reason, "did not come back within 30s") {
			t.Fatalf("failure = %+v", fail)
		}
		if !f.params.pendingReboot() {
			t.Fatal("the pending-reboot record is gone")
		}
	})
}

// Secrets the gateway or AWS echo back are scrubbed from the reason, in
// every encoding: a password with < and & echoed JSON-escaped (\u003c,
// \u0026) reaches neither the reason, nor the event, nor the log.
func TestFailureReasonIsRedacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, nil)
		f.gw.loginErrText = "password " + desiredPassword + " refused by policy"
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepLogin || !strings.Contains(fail.Reason, "[redacted]") {
			t.Fatalf("failure = %+v", fail)
		}

		const pw = "Mgw<Pass&2026"
		f = newFixture(t, pw, nil)
		f.params.put(domain.ParamPassword, pw, true)
		delete(f.params.params, domain.ParamBootstrapPassword)
		echoed, _ := json.Marshal(map[string]string{"password": pw})
		if !strings.Contains(string(echoed), `\u003c`) || !strings.Contains(string(echoed), `\u0026`) {
			t.Fatalf("not the encoding under test: %s", echoed)
		}
		f.gw.loginErrText = "the gateway said " + string(echoed)
		pub := &recordingPublisher{}
		err := app.NewReporter(f.conf, pub).ConfigureAndReport(t.Context(), f.req)
		if err != nil || len(pub.events) != 1 {
			t.Fatalf("%v, events %v", err, pub.events)
		}
		ev := pub.events[0].(*eventsv1.GatewayConfigurationFailed)
		body, err := messaging.Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		// The process's registry knows the password (read as a
		// SecureString); a text it changes still holds some encoding of it.
		if f.secrets.Len() == 0 {
			t.Fatal("the SecureStrings read are not registered")
		}
		check := redact.New()
		check.Add(pw)
		for what, text := range map[string]string{"reason": ev.GetReason(), "event": string(body), "log": f.logs.String()} {
			if check.String(text) != text || strings.Contains(text, `\u003c`) {
				t.Errorf("the password shows in the %s: %s", what, text)
			}
		}
		if !strings.Contains(ev.GetReason(), `{"password":"[redacted]"}`) {
			t.Fatalf("reason %q", ev.GetReason())
		}
	})
}

// Nothing is sent to a gateway for a request or parameters that cannot work.
func TestUnusableRequestNeverTouchesTheGateway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			tweak func(*fixture)
			step  string
			want  string
		}{
			{"gateway id with a colon", func(f *fixture) { f.req.GatewayID = "site:1" }, app.StepRequest, "gateway id"},
			{"bad address", func(f *fixture) { f.req.Address = "ftp://x" }, app.StepRequest, "gateway address"},
			{"weak password", func(f *fixture) {
				f.params.params[domain.ParamPassword] = domain.Param{Value: domain.NewSecret("alllowercase"), Secure: true}
			}, domain.StepParameters, "character class"},
			{"no parameters", func(f *fixture) {
				f.params.err = &domain.OpError{Kind: domain.KindPermanent, Err: domain.ErrBadParameter}
			}, domain.StepParameters, "bad parameter"},
		} {
			f := newFixture(t, bootstrapPassword, nil)
			tc.tweak(f)
			_, fail := f.configure(t)
			if fail == nil || fail.Step != tc.step || fail.Retryable || !strings.Contains(fail.Reason, tc.want) {
				t.Errorf("%s: failure = %+v", tc.name, fail)
			}
			if req, _, dials := f.gw.counts(); req != 0 || dials != 0 {
				t.Errorf("%s: %d requests, %d dials", tc.name, req, dials)
			}
		}
	})
}

// A transient parameter store error fails the run retryable after one
// call: the AWS SDK has retried it already.
func TestParameterStoreOutageIsRetryable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, bootstrapPassword, nil)
		f.params.err = &domain.OpError{Op: "read parameters", Kind: domain.KindTransient, Err: errors.New("connection refused")}
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepParameters || !fail.Retryable {
			t.Fatalf("failure = %+v", fail)
		}
		if f.params.reads != 1 {
			t.Fatalf("parameter reads %d, want 1", f.params.reads)
		}
	})
}

// Two runs for one gateway at once (a duplicate delivery) run one after
// the other: one password change, the second run finds nothing to do.
func TestConcurrentRunsOnOneGateway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, bootstrapPassword, nil)
		var wg sync.WaitGroup
		results := make([]domain.Result, 2)
		fails := make([]*domain.Failure, 2)
		for i := range 2 {
			wg.Go(func() { results[i], fails[i] = f.conf.Configure(t.Context(), f.req) })
		}
		wg.Wait()
		if fails[0] != nil || fails[1] != nil {
			t.Fatal(fails)
		}
		if n := len(results[0].Changed) + len(results[1].Changed); n != 5 {
			t.Fatalf("changed %v and %v", results[0].Changed, results[1].Changed)
		}
		if _, failed, _ := f.gw.counts(); failed != 0 {
			t.Fatalf("failed logins %d", failed)
		}
	})
}

// A run waiting for another on the same gateway gives up with its context.
func TestWaitingRunEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, func(o *app.Options) { o.RebootTimeout = time.Hour })
		f.gw.rebootDown = 1 << 30 // the first run waits an hour for the reboot
		first := make(chan struct{})
		go func() {
			defer close(first)
			_, _ = f.conf.Configure(t.Context(), f.req)
		}()
		synctest.Wait() // the first run waits for the gateway, holding it
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, fail := f.conf.Configure(ctx, f.req)
		if fail == nil || fail.Step != app.StepRequest || !strings.Contains(fail.Reason, "waiting for another run") {
			t.Fatalf("failure = %+v", fail)
		}
		<-first
	})
}
