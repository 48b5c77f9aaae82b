package app

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"mediagw/pkg/loginbudget"
	"mediagw/services/recorder/internal/domain"
	"mediagw/testsupport/testkit"
)

// Logins through the budget, over fakes: the relay's part is played by the
// segmenter's connect (it logs in through the relay spec's Login, as the
// relay does for ffmpeg) and the gateway's by answer.

func (f *fixture) logTo() *testkit.Buffer {
	buf := &testkit.Buffer{}
	f.deps.Logger = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return buf
}

// connectAs makes every run log in, the gateway answering with answer.
func (f *fixture) connectAs(answer func(password string) loginbudget.Result) {
	f.seg.connect = func() bool {
		spec := f.rel.last()
		l, err := spec.Login(context.Background())
		if err != nil {
			return false
		}
		r := answer(l.Password)
		l.Finish(context.Background(), r)
		return r == loginbudget.Accepted
	}
}

func acceptOnly(right string) func(string) loginbudget.Result {
	return func(pw string) loginbudget.Result {
		if pw == right {
			return loginbudget.Accepted
		}
		return loginbudget.Rejected
	}
}

var oneSegment = []domain.ListEntry{{File: "000000.ts", Start: 0, End: 4}}

// A wrong password: one login, rejected; then no login and no ffmpeg
// start at all, however long, only the parameter's version looked at
// every PasswordRecheck; one log line. A new version resumes recording at
// the next look, without a restart of the recorder.
func TestRejectedPasswordStopsLoginsUntilTheParameterChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		f.cfg.PasswordRecheck = 10 * time.Second
		logs := f.logTo()
		f.pw.value = "wrong-Pa55"
		f.seg.entries = oneSegment
		f.connectAs(acceptOnly("right-Pa55"))
		_, stop := f.start(t)
		synctest.Wait()

		begins, results := f.b.logins()
		if begins != 1 || !slices.Equal(results, []loginbudget.Result{loginbudget.Rejected}) {
			t.Fatalf("logins %d, results %v; want one, rejected", begins, results)
		}
		if f.m.rejected() != string(loginbudget.ReasonRejected) || !f.m.isFailing("1") {
			t.Fatalf("credentials metric %q, failing %v", f.m.rejected(), f.m.isFailing("1"))
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if begins, _ := f.b.logins(); begins != 1 || f.seg.started() != 1 {
			t.Fatalf("after an hour: %d logins, %d ffmpeg starts; want no retry of the rejected password", begins, f.seg.started())
		}
		if n := f.pw.currents; n < 300 || n > 361 {
			t.Errorf("the parameter's version was read %d times in an hour, want every 10 s", n)
		}
		if n := strings.Count(logs.String(), "credentials rejected"); n != 1 {
			t.Errorf("%d 'credentials rejected' log lines, want 1:\n%s", n, logs)
		}
		for _, want := range []string{`"gateway":"gw"`, `"parameter":"` + testParam + `"`, `"version":"1"`, `"reason":"credentials-rejected"`} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %s", want)
			}
		}

		f.pw.put("right-Pa55")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		begins, results = f.b.logins()
		if begins != 2 || results[1] != loginbudget.Accepted || f.seg.started() != 2 {
			t.Fatalf("after the put: %d logins %v, %d ffmpeg starts", begins, results, f.seg.started())
		}
		if f.m.rejected() != "" || f.m.isFailing("1") {
			t.Errorf("resumed, but credentials metric %q, failing %v", f.m.rejected(), f.m.isFailing("1"))
		}
		if len(f.up.uploaded()) != 1 {
			t.Errorf("uploaded %v after resuming", f.up.uploaded())
		}
		if !strings.Contains(logs.String(), "credentials usable again") || !strings.Contains(logs.String(), `"version":"2"`) {
			t.Errorf("resume not logged:\n%s", logs)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(logs.String(), "Pa55") {
			t.Errorf("a password in the log:\n%s", logs)
		}
	})
}

// The budget is spent by others (two unanswered logins of the
// configurator): the login is refused before anything is sent, the
// recorder stops, and resumes when the budget allows the password again
// (the failures left the 30-minute window).
func TestBudgetRefusalStopsUntilTheBudgetAllows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		f.cfg.PasswordRecheck = 10 * time.Second
		logs := f.logTo()
		cred := loginbudget.CredentialOf(testParam, 1)
		for _, id := range []string{"a", "b"} {
			f.b.l.Begin(id, cred, "configurator", time.Now(), loginbudget.Limits{})
			f.b.l.Finish(id, loginbudget.Unanswered, 0, time.Now(), loginbudget.Limits{})
		}
		f.seg.entries = oneSegment
		f.connectAs(acceptOnly("pw"))
		_, stop := f.start(t)
		synctest.Wait()
		if begins, _ := f.b.logins(); begins != 0 || f.m.rejected() != string(loginbudget.ReasonBudgetSpent) {
			t.Fatalf("%d logins, credentials metric %q; want none, budget-spent", begins, f.m.rejected())
		}
		time.Sleep(29 * time.Minute)
		synctest.Wait()
		if f.seg.started() != 1 || f.m.rejected() != string(loginbudget.ReasonBudgetSpent) {
			t.Fatalf("within the window: %d ffmpeg starts, metric %q", f.seg.started(), f.m.rejected())
		}
		time.Sleep(time.Minute + 10*time.Second)
		synctest.Wait()
		begins, results := f.b.logins()
		if begins != 1 || results[0] != loginbudget.Accepted || f.m.rejected() != "" || len(f.up.uploaded()) != 1 {
			t.Fatalf("after the window: %d logins %v, metric %q, uploaded %v", begins, results, f.m.rejected(), f.up.uploaded())
		}
		if !strings.Contains(logs.String(), "the login budget allows the password again") {
			t.Errorf("resume not logged:\n%s", logs)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// Logins whose answer is lost count against the budget: two, then the
// recorder stops (budget spent) — never a third within the window.
func TestUnansweredLoginsSpendTheBudgetThenStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		f.seg.connect = nil
		f.connectAs(func(string) loginbudget.Result { return loginbudget.Unanswered })
		_, stop := f.start(t)
		time.Sleep(20 * time.Minute)
		synctest.Wait()
		begins, results := f.b.logins()
		if begins != 2 || !slices.Equal(results, []loginbudget.Result{loginbudget.Unanswered, loginbudget.Unanswered}) {
			t.Fatalf("%d logins %v in 20 minutes; want 2 unanswered", begins, results)
		}
		if f.m.rejected() != string(loginbudget.ReasonBudgetSpent) || f.seg.started() != 3 {
			t.Fatalf("metric %q, %d ffmpeg starts; want budget-spent after the third start's refusal", f.m.rejected(), f.seg.started())
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// The relay's Login: the user and password of the parameter's version;
// while logins are stopped, refused without asking the budget; the
// password store or the budget failing refuses the login (nothing sent)
// without stopping logins.
func TestLoginHandsTheRelayTheCredentials(t *testing.T) {
	f := newFixture()
	r, err := New(f.cfg, f.deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l, err := r.loginFunc()(ctx)
	if err != nil || l.User != "admin" || l.Password != "pw" {
		t.Fatalf("login = %+v, %v", l, err)
	}
	l.Finish(ctx, loginbudget.Accepted)
	l.Finish(ctx, loginbudget.Rejected) // only the first counts
	if _, res := f.b.logins(); !slices.Equal(res, []loginbudget.Result{loginbudget.Accepted}) || r.logins.stopped() != nil {
		t.Fatalf("results %v, stopped %v", res, r.logins.stopped())
	}

	f.b.err = errors.New("table unreachable")
	if _, err := r.login(ctx); err == nil || r.logins.stopped() != nil {
		t.Fatalf("budget down: %v, stopped %v; want a refusal that does not stop logins", err, r.logins.stopped())
	}
	f.b.err = nil
	f.pw.err = errors.New("ssm down")
	if _, err := r.login(ctx); err == nil || r.logins.stopped() != nil {
		t.Fatalf("ssm down: %v", err)
	}
	f.pw.err = nil

	r.stopLogins(loginbudget.CredentialOf(testParam, 1), loginbudget.ReasonRejected, "rejected")
	before, _ := f.b.logins()
	if _, err := r.login(ctx); !errors.Is(err, loginbudget.ErrRefused) {
		t.Fatalf("login while stopped = %v, want ErrRefused", err)
	}
	if after, _ := f.b.logins(); after != before {
		t.Error("the budget was asked while logins are stopped")
	}

	// A user without a password parameter logs in through the budget too.
	f = newFixture()
	f.deps.Password = nil
	r, _ = New(f.cfg, f.deps)
	if l, err := r.loginFunc()(ctx); err != nil || l.User != "admin" || l.Password != "" {
		t.Fatalf("user only: %+v, %v", l, err)
	}
	// Credentials need the budget; no credentials need nothing.
	f.deps.Budget = nil
	if _, err := New(f.cfg, f.deps); err == nil {
		t.Error("New accepted credentials without a login budget")
	}
	f.cfg.RTSPUser = ""
	r, err = New(f.cfg, f.deps)
	if err != nil || r.loginFunc() != nil {
		t.Fatalf("no credentials: %v, login %v", err, r.loginFunc() != nil)
	}
	for _, p := range r.Parts() {
		if p.Name == "logins" {
			t.Error("a logins watch without credentials")
		}
	}
}

// What the relay refuses to do (Basic only) is logged once per channel
// and problem, not at every ffmpeg restart.
func TestAuthFailuresAreLoggedOnce(t *testing.T) {
	f := newFixture()
	logs := f.logTo()
	r, _ := New(f.cfg, f.deps)
	basic := errors.New("gateway gw offers only Basic authentication on RTSP")
	for range 3 {
		r.authFailed("1", basic)
	}
	r.authFailed("2", basic)
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 2 {
		t.Fatalf("%d error lines, want one per channel:\n%s", n, logs)
	}
}

// A connection that had logged in is refused later (the gateway's password
// changed): a rejection is recorded in the budget and logins stop until
// the parameter changes.
func TestRefusalOnALoggedInConnectionStopsLogins(t *testing.T) {
	f := newFixture()
	r, _ := New(f.cfg, f.deps)
	ctx := context.Background()
	l, err := r.login(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.Finish(ctx, loginbudget.Accepted)
	l.Refused(ctx)
	l.Refused(ctx) // once per login
	if _, res := f.b.logins(); !slices.Equal(res, []loginbudget.Result{loginbudget.Accepted, loginbudget.Rejected}) {
		t.Fatalf("results %v, want accepted then one rejection recorded", res)
	}
	if st := r.logins.stopped(); st == nil || st.reason != loginbudget.ReasonRejected {
		t.Fatalf("logins %+v, want stopped as rejected", st)
	}
	if err := f.b.Check(ctx, "gw", loginbudget.CredentialOf(testParam, 1)); !errors.Is(err, loginbudget.ErrRefused) {
		t.Fatalf("the budget still allows the refused password: %v", err)
	}
}
