package loginbudget

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestLedgerAllowsTwoFailuresPerWindow(t *testing.T) {
	var l Ledger
	lim := Limits{}
	a := CredentialOf("/p/Password", 1)
	b := CredentialOf("/p/BootstrapPassword", 1)
	if r := l.Begin("1", a, "c", t0, lim); r != nil {
		t.Fatalf("first attempt refused: %v", r)
	}
	// An untried credential waits while another login is in flight.
	if r := l.Check(b, t0.Add(time.Second), lim); r == nil || r.Reason != ReasonBusy {
		t.Fatalf("second concurrent attempt: %+v", r)
	}
	// A credential the gateway accepted may go beside it: pending counts,
	// so two may be in flight and not three.
	l.Accepted = b
	if r := l.Begin("2", b, "c", t0.Add(time.Second), lim); r != nil {
		t.Fatalf("second attempt refused: %v", r)
	}
	c := CredentialOf("/p/Password", 2)
	// Two in flight: a third waits for them.
	r := l.Begin("3", c, "c", t0.Add(2*time.Second), lim)
	if r == nil || r.Reason != ReasonBusy || !r.Until.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("third attempt: %+v", r)
	}
	// Both unanswered: still counted.
	l.Finish("1", Unanswered, 0, t0.Add(3*time.Second), lim)
	l.Finish("2", Unanswered, 0, t0.Add(3*time.Second), lim)
	if r := l.Check(c, t0.Add(4*time.Second), lim); r == nil || r.Reason != ReasonBudgetSpent || r.Failures != 2 || !r.Until.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("after two unanswered: %+v", r)
	}
	if r := l.Check(c, t0.Add(29*time.Minute), lim); r == nil || r.Reason != ReasonBudgetSpent {
		t.Fatalf("at 29 min: %+v", r)
	}
	// The oldest leaves the window: one more is allowed, not two.
	if r := l.Begin("4", c, "c", t0.Add(30*time.Minute), lim); r != nil {
		t.Fatalf("after the window: %v", r)
	}
	if r := l.Check(c, t0.Add(30*time.Minute), lim); r == nil {
		t.Fatal("a third concurrent attempt allowed")
	}
}

func TestLedgerNeverRetriesARejectedCredential(t *testing.T) {
	var l Ledger
	lim := Limits{}
	v1 := CredentialOf("/p/Password", 1)
	l.Begin("1", v1, "recorder", t0, lim)
	l.Finish("1", Rejected, 0, t0, lim)
	// Long after the window it is still refused: only a new version is tried.
	r := l.Check(v1, t0.Add(24*time.Hour), lim)
	if r == nil || r.Reason != ReasonRejected {
		t.Fatalf("rejected credential: %+v", r)
	}
	v2 := CredentialOf("/p/Password", 2)
	if r := l.Begin("2", v2, "recorder", t0.Add(time.Minute), lim); r != nil {
		t.Fatalf("new version refused: %v", r)
	}
	l.Finish("2", Accepted, 0, t0.Add(time.Minute), lim)
	if l.Accepted != v2 || len(l.Attempts) != 1 {
		t.Fatalf("after acceptance: %+v", l)
	}
}

func TestLedgerAcceptanceClearsARejection(t *testing.T) {
	// The configurator sets the password that was rejected before it was
	// set (components tried it on a factory-fresh gateway).
	var l Ledger
	lim := Limits{}
	v1 := CredentialOf("/p/Password", 1)
	l.Begin("1", v1, "device-watcher", t0, lim)
	l.Finish("1", Rejected, 0, t0, lim)
	l.Begin("2", CredentialOf("/p/BootstrapPassword", 1), "configurator", t0, lim)
	l.Finish("2", Accepted, 0, t0, lim)
	// ... the configurator changes the password to v1 and proves it; that
	// login is allowed although v1 was rejected? No: Check refuses it, so
	// the configurator records the change with Forget first.
	if r := l.Check(v1, t0, lim); r == nil || r.Reason != ReasonRejected {
		t.Fatalf("v1: %+v", r)
	}
	l.Forget(v1)
	if r := l.Check(v1, t0, lim); r != nil {
		t.Fatalf("after Forget: %v", r)
	}
}

func TestLedgerLock(t *testing.T) {
	var l Ledger
	lim := Limits{}
	v1 := CredentialOf("/p/Password", 1)
	l.Begin("1", v1, "c", t0, lim)
	l.Finish("1", Locked, 0, t0, lim)
	// Locked without saying for how long: one probe per window.
	if r := l.Check(v1, t0.Add(29*time.Minute), lim); r == nil || r.Reason != ReasonLocked {
		t.Fatalf("locked: %+v", r)
	}
	if r := l.Check(v1, t0.Add(30*time.Minute), lim); r != nil {
		t.Fatalf("after the window: %v", r)
	}
	// The gateway said 90 s.
	var m Ledger
	m.Begin("1", v1, "c", t0, lim)
	m.Finish("1", Locked, 90*time.Second, t0, lim)
	if r := m.Check(v1, t0.Add(89*time.Second), lim); r == nil || r.Reason != ReasonLocked || !r.Until.Equal(t0.Add(90*time.Second)) {
		t.Fatalf("locked 90 s: %+v", r)
	}
	if r := m.Check(v1, t0.Add(90*time.Second), lim); r != nil {
		t.Fatalf("after 90 s: %v", r)
	}
}

func TestLedgerNotSentIsFree(t *testing.T) {
	var l Ledger
	lim := Limits{}
	v1 := CredentialOf("/p/Password", 1)
	for i := range 5 {
		id := string(rune('a' + i))
		if r := l.Begin(id, v1, "c", t0, lim); r != nil {
			t.Fatalf("attempt %d: %v", i, r)
		}
		l.Finish(id, NotSent, 0, t0, lim)
	}
	if n := l.Failures(t0, lim); n != 0 {
		t.Fatalf("failures %d", n)
	}
}

func TestLedgerFinishTwiceOrUnknown(t *testing.T) {
	var l Ledger
	lim := Limits{}
	v1 := CredentialOf("/p/Password", 1)
	l.Begin("1", v1, "c", t0, lim)
	l.Finish("1", Rejected, 0, t0, lim)
	l.Finish("1", Accepted, 0, t0, lim) // a late, contradictory report changes nothing
	l.Finish("nope", Accepted, 0, t0, lim)
	if l.Accepted != "" || l.Failures(t0, lim) != 1 {
		t.Fatalf("ledger %+v", l)
	}
}

func TestLedgerPendingTooLongCountsAsFailed(t *testing.T) {
	var l Ledger
	lim := Limits{}
	v1 := CredentialOf("/p/Password", 1)
	l.Begin("1", v1, "c", t0, lim) // its process dies mid-login
	if r := l.Check(v1, t0.Add(time.Minute), lim); r == nil || r.Reason != ReasonBusy {
		t.Fatalf("in flight: %+v", r)
	}
	// Past MaxLoginTime it is a failure, and the next may go.
	if r := l.Begin("2", v1, "c", t0.Add(3*time.Minute), lim); r != nil {
		t.Fatalf("%v", r)
	}
	l.Finish("2", Rejected, 0, t0.Add(3*time.Minute), lim)
	// 1 lost + 1 rejected = spent, for every credential.
	if r := l.Check(CredentialOf("/p/Password", 2), t0.Add(4*time.Minute), lim); r == nil || r.Reason != ReasonBudgetSpent || r.Failures != 2 {
		t.Fatalf("%+v", r)
	}
}

func TestLedgerBeginIsIdempotent(t *testing.T) {
	var l Ledger
	lim := Limits{}
	v1 := CredentialOf("/p/Password", 1)
	if r := l.Begin("1", v1, "c", t0, lim); r != nil {
		t.Fatal(r)
	}
	// The same attempt again (its first write's answer was lost): admitted,
	// not counted twice, not "busy" behind itself.
	if r := l.Begin("1", v1, "c", t0, lim); r != nil || len(l.Attempts) != 1 {
		t.Fatalf("%v %+v", r, l)
	}
}
