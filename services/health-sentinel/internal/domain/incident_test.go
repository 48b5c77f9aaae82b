package domain

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var at0 = time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)

func down(id string, at time.Time) Signal {
	return Signal{ID: id, At: at, Kind: KindGateway, Gateway: "gw-1", Action: Raise, Title: "API does not answer", Detail: "timeout"}
}

func up(id string, at time.Time) Signal {
	return Signal{ID: id, At: at, Kind: KindGateway, Gateway: "gw-1", Action: Clear, Detail: "GatewayReachable"}
}

func TestRedeliveredSignalChangesNothing(t *testing.T) {
	p := DefaultPolicy()
	inc, changed := Apply(Incident{}, down("e1", at0), at0, p)
	if !changed || !inc.Open() || len(inc.Mails) != 1 || inc.Mails[0].Kind != MailOpened || !inc.Mails[0].DueAt.Equal(at0) {
		t.Fatalf("first down: %+v", inc)
	}
	again, changed := Apply(inc, down("e1", at0), at0.Add(time.Minute), p)
	if changed || again.Version != inc.Version || len(again.Mails) != 1 {
		t.Fatalf("redelivery changed the incident: %+v", again)
	}
}

func TestLateRaiseAfterClearOpensNothing(t *testing.T) {
	p := DefaultPolicy()
	// Reachable (at0+1m) delivered before the Unreachable (at0) it follows.
	inc, _ := Apply(Incident{}, up("e2", at0.Add(time.Minute)), at0.Add(2*time.Minute), p)
	inc, _ = Apply(inc, down("e1", at0), at0.Add(2*time.Minute), p)
	if inc.Open() || len(inc.Mails) != 0 {
		t.Fatalf("late raise opened an incident: %+v", inc)
	}
	// A newer outage does open one.
	inc, _ = Apply(inc, down("e3", at0.Add(5*time.Minute)), at0.Add(5*time.Minute), p)
	if !inc.Open() {
		t.Fatalf("new outage did not open: %+v", inc)
	}
}

func TestResolveOwesOneResolvedMailOnlyAfterTheOpeningMail(t *testing.T) {
	p := DefaultPolicy()
	// A camera flap within the hold: no mail at all.
	cam := Signal{ID: "f1", At: at0, Kind: KindCamera, Gateway: "gw-1", Device: "d1", Action: Raise, Exit: &Exit{TaskID: "t1", Code: 1, At: at0}}
	inc, _ := Apply(Incident{}, cam, at0, p)
	if d := inc.NextDue(); !d.Equal(at0.Add(p.Hold[KindCamera])) {
		t.Fatalf("camera mail due %v", d)
	}
	inc, _ = Apply(inc, Signal{ID: "r1", At: at0.Add(10 * time.Second), Kind: KindCamera, Device: "d1", Action: Running}, at0, p)
	inc.Resolve(inc.AutoResolveAt, "ran", "", inc.AutoResolveAt)
	if inc.Open() || len(inc.DueMails(at0.Add(time.Hour))) != 0 {
		t.Fatalf("flap within the hold owes mail: %+v", inc.Mails)
	}

	// A gateway outage whose opening mail went out owes one resolved mail.
	g, _ := Apply(Incident{}, down("e1", at0), at0, p)
	g.Mail(MailOpened).State = MailSent
	g, _ = Apply(g, up("e2", at0.Add(3*time.Minute)), at0.Add(3*time.Minute), p)
	g2, _ := Apply(g, up("e3", at0.Add(4*time.Minute)), at0.Add(4*time.Minute), p)
	if due := g2.DueMails(at0.Add(5 * time.Minute)); len(due) != 1 || due[0] != MailResolved {
		t.Fatalf("due mails %v", due)
	}
	if d := g2.Duration(at0.Add(time.Hour)); d != 3*time.Minute {
		t.Fatalf("duration %v", d)
	}
	// A failure after the resolved mail went out is a new incident: the old
	// one goes to history, a new opening mail is owed.
	g2.Mail(MailResolved).State = MailSent
	g3, _ := Apply(g2, down("e4", at0.Add(10*time.Minute)), at0.Add(10*time.Minute), p)
	if !g3.Open() || len(g3.History) != 1 || g3.Mail(MailOpened).State != MailPending || g3.Mail(MailResolved) != nil {
		t.Fatalf("reopened: %+v", g3)
	}
}

// The recovery step that brought the gateway back is told just after
// GatewayReachable resolved the outage (seen end to end): it is recorded in
// that incident, which keeps its resolved mail, and opens no new one.
func TestNoteAfterResolutionJoinsTheResolvedIncident(t *testing.T) {
	p := DefaultPolicy()
	g, _ := Apply(Incident{}, down("e1", at0), at0, p)
	g.Mail(MailOpened).State = MailSent
	g, _ = Apply(g, up("e2", at0.Add(30*time.Second)), at0.Add(30*time.Second), p)
	step := Signal{ID: "s1", At: at0.Add(31 * time.Second), Kind: KindGateway, Gateway: "gw-1", Action: Note,
		Step: &Step{At: at0.Add(31 * time.Second), What: "ec2-reboot (attempt 1)", Outcome: "recovered"}}
	g2, changed := Apply(g, step, at0.Add(31*time.Second), p)
	if !changed || g2.Open() || g2.ID != g.ID || len(g2.History) != 0 {
		t.Fatalf("a note after the resolution opened an incident: %+v", g2)
	}
	if len(g2.Steps) != 1 || g2.Steps[0].What != "ec2-reboot (attempt 1)" {
		t.Fatalf("steps %+v", g2.Steps)
	}
	if due := g2.DueMails(at0.Add(5 * time.Minute)); len(due) != 1 || due[0] != MailResolved {
		t.Fatalf("due mails %v, want the resolved mail", due)
	}
	// A key without any incident still gets one from a note.
	n, _ := Apply(Incident{}, step, at0, p)
	if !n.Open() {
		t.Fatalf("a note on a new key: %+v", n)
	}
}

func TestRenderSubjectAndBody(t *testing.T) {
	inc, _ := Apply(Incident{}, Signal{ID: "x", At: at0, Kind: KindGateway, Gateway: strings.Repeat("g", 120), Action: Raise,
		Title: "API does not answer", Camera: "d1"}, at0, DefaultPolicy())
	inc.AddStep(Step{At: at0.Add(time.Minute), What: "isapi-reboot (attempt 1)", Outcome: "recovered"})
	m := Render(MailOpened, inc, at0.Add(2*time.Minute))
	if n := utf8.RuneCountInString(m.Subject); n > MaxSubject {
		t.Fatalf("subject has %d characters", n)
	}
	for _, want := range []string{"Since:", "d1 (1)", "isapi-reboot (attempt 1): recovered", "What to do:", "mediagw-ctl incidents --key gateway/"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	short, _ := Apply(Incident{}, down("y", at0), at0, DefaultPolicy())
	if s := Render(MailOpened, short, at0).Subject; s != "[mediagw] gateway gw-1: API does not answer" {
		t.Fatalf("subject %q", s)
	}
}

func TestStormLimitThenDigest(t *testing.T) {
	var s Storm
	var ok bool
	for i := range 3 {
		if s, ok = s.Admit(at0.Add(time.Duration(i)*time.Minute), 3, time.Hour, "x"); !ok {
			t.Fatalf("mail %d refused", i)
		}
	}
	s, ok = s.Admit(at0.Add(5*time.Minute), 3, time.Hour, "fourth")
	if ok || s.DigestReady(at0.Add(59*time.Minute)) || !s.DigestReady(at0.Add(time.Hour)) {
		t.Fatalf("fourth: ok=%v %+v", ok, s)
	}
	s, lines := s.TakeDigest()
	if len(lines) != 1 || s.DigestReady(at0.Add(2*time.Hour)) {
		t.Fatalf("digest %v", lines)
	}
	if _, ok = s.Admit(at0.Add(61*time.Minute), 3, time.Hour, "x"); !ok {
		t.Fatal("new window refused")
	}
}
