package app_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

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
		// The desired password first, then the bootstrap one, then the new
		// one proven: at most one failed login.
		if got := strings.Join(loginsOf(f.j), ","); got != "desired,bootstrap,desired" {
			t.Fatalf("logins %s", got)
		}
		if _, failed, _ := f.gw.counts(); failed != 1 {
			t.Fatalf("failed logins %d", failed)
		}
		// The pending-reboot record is written before the first write that
		// needs the reboot, and cleared once the reboot is verified.
		set, write, reboot, clear := f.j.index("params set pending reboot"), f.j.index("gateway write portmap"), f.j.index("gateway reboot"), f.j.index("params clear pending reboot")
		if set < 0 || set > write || write > reboot || reboot > clear || f.params.pendingReboot() {
			t.Fatalf("order of record, write, reboot, clear: %d %d %d %d; journal %v", set, write, reboot, clear, f.j.all())
		}
		if f.metrics.reboots != 1 || !slices.Equal(f.metrics.results, []string{app.ResultConfigured}) ||
			!slices.Equal(f.metrics.logins, []string{"desired/rejected", "bootstrap/accepted"}) || len(f.metrics.changed) != 5 {
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
		if _, failed, _ := f.gw.counts(); failed != 1 {
			t.Fatalf("failed logins after the second run %d", failed)
		}
	})
}

// With fewer than MinAttemptsLeft failed logins left, the next password is
// not tried: the configurator never triggers the lock itself.
func TestStopsBeforeTriggeringTheLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "Someone-Else-9", nil)
		f.gw.maxFailed = 2
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepLogin || fail.Retryable || !strings.Contains(fail.Reason, "only 1 more") ||
			!strings.Contains(fail.Reason, "bootstrap password was not tried") {
			t.Fatalf("failure = %+v", fail)
		}
		if got := strings.Join(loginsOf(f.j), ","); got != "desired" {
			t.Fatalf("logins %s", got)
		}
		if !f.gw.lockedUntil.IsZero() {
			t.Fatal("the gateway locked")
		}
		if !slices.Equal(f.metrics.results, []string{app.ResultFailedPermanent}) {
			t.Fatalf("results %v", f.metrics.results)
		}
	})
}

func TestBothPasswordsRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, "Someone-Else-9", nil)
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepLogin || fail.Retryable || !strings.Contains(fail.Reason, "rejected both") {
			t.Fatalf("failure = %+v", fail)
		}
		if _, failed, _ := f.gw.counts(); failed != 2 {
			t.Fatalf("failed logins %d, want 2", failed)
		}
	})
}

func TestNoBootstrapPasswordKnown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, bootstrapPassword, nil)
		delete(f.params.params, domain.ParamBootstrapPassword)
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepLogin || fail.Retryable || !strings.Contains(fail.Reason, "no bootstrap password is known") {
			t.Fatalf("failure = %+v", fail)
		}
		if _, failed, _ := f.gw.counts(); failed != 1 {
			t.Fatalf("failed logins %d", failed)
		}
	})
}

// A locked gateway costs the probe and nothing else.
func TestLockedGatewayStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, bootstrapPassword, nil)
		f.gw.lock(30 * time.Minute)
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepLogin || fail.Retryable || fail.LockRemaining != 30*time.Minute ||
			!strings.Contains(fail.Reason, "send the event again after the lock ends") {
			t.Fatalf("failure = %+v", fail)
		}
		if req, failed, _ := f.gw.counts(); req != 1 || failed != 0 {
			t.Fatalf("requests %d, failed logins %d; want the one probe", req, failed)
		}
		if !slices.Equal(f.metrics.results, []string{app.ResultLocked}) {
			t.Fatalf("results %v", f.metrics.results)
		}
	})
}

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
// tries the desired password first and finds it.
func TestLostPasswordChangeAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, bootstrapPassword, nil)
		f.gw.changeLost = true
		_, fail := f.configure(t)
		if fail == nil || fail.Step != string(domain.SettingPassword) || !fail.Retryable ||
			!strings.Contains(fail.Reason, "the next run tries the desired password first") {
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
		if _, failed, _ := f.gw.counts(); failed != 1 {
			t.Fatalf("failed logins %d, want 1 (the first run's desired password)", failed)
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

// Secrets the gateway or AWS echo back are scrubbed from the reason.
func TestFailureReasonIsRedacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, nil)
		f.gw.loginErrText = "password " + desiredPassword + " refused by policy"
		_, fail := f.configure(t)
		if fail == nil || fail.Step != domain.StepLogin || !strings.Contains(fail.Reason, "[redacted]") {
			t.Fatalf("failure = %+v", fail)
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
		if _, failed, _ := f.gw.counts(); failed != 1 {
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
