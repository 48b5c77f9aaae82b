package domain

import (
	"strings"
	"testing"
	"time"
)

// sentOpen is a gateway outage opened at at whose opening mail went out.
func sentOpen(t *testing.T, p Policy, at time.Time) Incident {
	t.Helper()
	g, _ := Apply(Incident{}, down("e1", at), at, p)
	g.Mail(MailOpened).State = MailSent
	return g
}

// A gateway that fails again within the settle time after its outage
// cleared continues that outage: no second opening mail, a step saying so,
// and later one resolved mail whose duration covers it all.
func TestFailureWithinSettleReopensTheIncident(t *testing.T) {
	p := DefaultPolicy()
	g := sentOpen(t, p, at0)
	g, _ = Apply(g, up("e2", at0.Add(30*time.Second)), at0.Add(30*time.Second), p)
	if due := g.NextDue(); !due.Equal(at0.Add(30*time.Second + p.Settle)) {
		t.Fatalf("resolved mail due %v", due)
	}
	again := at0.Add(50 * time.Second)
	r, changed := Apply(g, down("e3", again), again, p)
	if !changed || !r.Open() || r.ID != g.ID || len(r.History) != 0 || !r.Opened.Equal(at0) {
		t.Fatalf("failure within the settle time: %+v", r)
	}
	if m := r.Mail(MailOpened); m == nil || m.State != MailSent {
		t.Fatalf("opening mail %+v, want the one sent", m)
	}
	if r.Mail(MailResolved) != nil || len(r.DueMails(again.Add(time.Hour))) != 0 {
		t.Fatalf("mails owed while open again: %+v", r.Mails)
	}
	if len(r.Steps) != 1 || !strings.Contains(r.Steps[0].What, "failed again at 15:00:50") || !r.Resolved.IsZero() {
		t.Fatalf("steps %+v resolved %v", r.Steps, r.Resolved)
	}
	// A redelivered clearing event from before changes nothing.
	if r2, _ := Apply(r, up("e2b", at0.Add(30*time.Second)), again, p); !r2.Open() {
		t.Fatalf("an old clearing resolved the reopened incident: %+v", r2)
	}

	end := at0.Add(3 * time.Minute)
	r, _ = Apply(r, up("e4", end), end, p)
	due := r.DueMails(end.Add(p.Settle))
	if len(due) != 1 || due[0] != MailResolved || r.Duration(end.Add(time.Hour)) != 3*time.Minute {
		t.Fatalf("due %v duration %v", due, r.Duration(end.Add(time.Hour)))
	}
	m := Render(MailResolved, r, end.Add(p.Settle))
	if !strings.Contains(m.Subject, "after 3m0s") || !strings.Contains(m.Body, "failed again at") {
		t.Fatalf("resolved mail:\n%s\n%s", m.Subject, m.Body)
	}
}

// Once the resolved mail went out (or while it is being sent), a new
// failure is a new incident with its own opening mail.
func TestFailureAfterTheResolvedMailIsANewIncident(t *testing.T) {
	p := DefaultPolicy()
	for _, state := range []string{MailSent, MailClaimed, MailDigested} {
		g := sentOpen(t, p, at0)
		g, _ = Apply(g, up("e2", at0.Add(30*time.Second)), at0.Add(30*time.Second), p)
		g.Mail(MailResolved).State = state
		again := at0.Add(80 * time.Second)
		n, _ := Apply(g, down("e3", again), again, p)
		if !n.Open() || n.ID == g.ID || len(n.History) != 1 || n.History[0].ID != g.ID {
			t.Fatalf("%s: %+v", state, n)
		}
		if m := n.Mail(MailOpened); m == nil || m.State != MailPending || n.Mail(MailResolved) != nil {
			t.Fatalf("%s: mails %+v, want a new opening mail", state, n.Mails)
		}
	}
}

// The resolved mail not gone out yet for any reason (a failing publish past
// the settle time) is owed still: a failure then continues the incident too.
func TestFailureWhileTheResolvedMailIsStillOwedReopens(t *testing.T) {
	p := DefaultPolicy()
	g := sentOpen(t, p, at0)
	g, _ = Apply(g, up("e2", at0.Add(30*time.Second)), at0.Add(30*time.Second), p)
	again := at0.Add(10 * time.Minute)
	r, _ := Apply(g, down("e3", again), again, p)
	if !r.Open() || r.ID != g.ID || r.Mail(MailResolved) != nil {
		t.Fatalf("%+v", r)
	}
}

// A recovery giving up on a gateway whose resolved mail is still owed
// continues that incident and mails ACTION NEEDED once.
func TestGaveUpWithinSettleReopens(t *testing.T) {
	p := DefaultPolicy()
	g := sentOpen(t, p, at0)
	g, _ = Apply(g, up("e2", at0.Add(30*time.Second)), at0.Add(30*time.Second), p)
	at := at0.Add(40 * time.Second)
	r, _ := Apply(g, Signal{ID: "g1", At: at, Kind: KindGateway, Gateway: "gw-1", Action: GaveUp, Detail: "budget spent"}, at, p)
	if !r.Open() || r.ID != g.ID {
		t.Fatalf("%+v", r)
	}
	if due := r.DueMails(at); len(due) != 1 || due[0] != MailGaveUp {
		t.Fatalf("due %v, want the ACTION NEEDED mail alone", due)
	}
}

// A camera whose task fails again within the settle time after it ran
// stably continues its incident.
func TestCameraFailingAgainWithinSettleReopens(t *testing.T) {
	p := DefaultPolicy()
	exit := func(id string, at time.Time) Signal {
		return Signal{ID: id, At: at, Kind: KindCamera, Gateway: "gw-1", Device: "d1", Action: Raise, Exit: &Exit{TaskID: id, Code: 1, At: at}}
	}
	c, _ := Apply(Incident{}, exit("t1", at0), at0, p)
	c.Mail(MailOpened).State = MailSent
	c, _ = Apply(c, Signal{ID: "r1", At: at0.Add(3 * time.Minute), Kind: KindCamera, Device: "d1", Action: Running}, at0.Add(3*time.Minute), p)
	c.Resolve(c.AutoResolveAt, "ran", "", c.AutoResolveAt.Add(p.Settle))
	at := c.Resolved.Add(20 * time.Second)
	r, _ := Apply(c, exit("t2", at), at, p)
	if !r.Open() || r.ID != c.ID || !r.AutoResolveAt.IsZero() || len(r.Exits) != 2 || r.Mail(MailResolved) != nil {
		t.Fatalf("%+v", r)
	}
}

// A camera incident whose opening mail went out is never merged into its
// gateway's outage silently: it owes its resolved mail.
func TestMergeAfterTheOpeningMailOwesTheResolvedMail(t *testing.T) {
	p := DefaultPolicy()
	c, _ := Apply(Incident{}, Signal{ID: "f1", At: at0, Kind: KindCamera, Gateway: "gw-1", Device: "d1", Action: Raise}, at0, p)
	held := c
	held.Resolve(at0.Add(time.Minute), "merged", "gateway/gw-1@x", at0.Add(time.Minute))
	if held.MergedInto == "" || len(held.DueMails(at0.Add(time.Hour))) != 0 {
		t.Fatalf("held camera: %+v", held)
	}
	c.Mail(MailOpened).State = MailSent
	c.Resolve(at0.Add(time.Minute), "merged", "gateway/gw-1@x", at0.Add(time.Minute))
	if c.MergedInto != "" || c.Open() {
		t.Fatalf("mailed camera merged: %+v", c)
	}
	if due := c.DueMails(at0.Add(time.Minute)); len(due) != 1 || due[0] != MailResolved {
		t.Fatalf("due %v", due)
	}
}
