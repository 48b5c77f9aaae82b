package app

import (
	"context"
	"strings"
	"testing"
	"time"

	"mediagw/services/health-sentinel/internal/domain"
)

func reachable(id string, at time.Time) domain.Signal {
	return domain.Signal{ID: id, At: at, Kind: domain.KindGateway, Gateway: "gw-1", Action: domain.Clear, Detail: "GatewayReachable"}
}

func flush(t *testing.T, a *Incidents) {
	t.Helper()
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func signal(t *testing.T, a *Incidents, s domain.Signal) {
	t.Helper()
	if err := a.Signal(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// TestQuickRepeatFailureIsOneIncident: a gateway that fails again 20 s
// after its outage cleared (before the resolved mail went out) continues
// that outage, across a restart of the service: one opening mail, one
// resolved mail covering the whole time; a failure after that resolved
// mail is a new incident with its own mails.
func TestQuickRepeatFailureIsOneIncident(t *testing.T) {
	store, mailer, c := newMemStore(), &memMailer{}, newClock(t0)
	a := newIncidents(store, mailer, c)
	signal(t, a, outage("u1", t0))
	c.Add(time.Minute)
	signal(t, a, reachable("r1", c.Now()))
	c.Add(20 * time.Second)
	flush(t, a)
	a = newIncidents(store, mailer, c) // a restart
	flush(t, a)
	signal(t, a, outage("u2", c.Now()))
	c.Add(2 * time.Minute)
	signal(t, a, reachable("r2", c.Now())) // t0+3m20s
	for range 12 {
		c.Add(5 * time.Second)
		flush(t, a)
	}
	got := mailer.subjects()
	if len(got) != 2 || !strings.Contains(got[0], "API does not answer") || got[1] != "[mediagw] RESOLVED gateway gw-1: API does not answer after 3m20s" {
		t.Fatalf("mails %q, want one opening and one resolved mail for the whole 3m20s", got)
	}
	if body := mailer.sent[1].Body; !strings.Contains(body, "failed again at 15:01:20") {
		t.Fatalf("resolved mail lacks the repeat:\n%s", body)
	}

	// After the resolved mail: a new incident, its own two mails.
	signal(t, a, outage("u3", c.Now()))
	c.Add(time.Minute)
	signal(t, a, reachable("r3", c.Now()))
	c.Add(time.Minute)
	flush(t, a)
	got = mailer.subjects()
	if len(got) != 4 || strings.Contains(got[2], "RESOLVED") || !strings.Contains(got[3], "RESOLVED gateway gw-1: API does not answer after 1m0s") {
		t.Fatalf("mails %q", got)
	}
	inc, _, _ := store.Get(context.Background(), "gateway/gw-1")
	if len(inc.History) != 1 {
		t.Fatalf("history %+v, want the first incident", inc.History)
	}
}

// TestQuickRepeatUnderTheStormLimit: with the limit reached the resolved
// mail of a reopened incident goes into the digest, once.
func TestQuickRepeatUnderTheStormLimit(t *testing.T) {
	store, mailer, c := newMemStore(), &memMailer{}, newClock(t0)
	a := NewIncidents(store, mailer, nil, Config{Policy: domain.DefaultPolicy(), MailLimit: 1, MailWindow: time.Hour, Now: c.Now})
	signal(t, a, outage("u1", t0))
	c.Add(time.Minute)
	signal(t, a, reachable("r1", c.Now()))
	c.Add(10 * time.Second)
	signal(t, a, outage("u2", c.Now()))
	c.Add(time.Minute)
	signal(t, a, reachable("r2", c.Now()))
	c.Add(time.Minute)
	flush(t, a)
	c.Add(time.Hour)
	flush(t, a)
	flush(t, a)
	got := mailer.subjects()
	if len(got) != 2 || !strings.Contains(got[1], "1 more alerts (digest)") {
		t.Fatalf("mails %q, want the opening mail and one digest", got)
	}
	if body := mailer.sent[1].Body; strings.Count(body, "resolved: gateway gw-1") != 1 {
		t.Fatalf("digest:\n%s", body)
	}
}

// TestShutdownDuringTheSendSettlesTheMail: a shutdown (the handler's
// context cancelled) while a claimed mail is published neither leaves it
// claimed (never sent) nor puts a published one back (sent twice).
func TestShutdownDuringTheSendSettlesTheMail(t *testing.T) {
	store, c := newMemStore(), newClock(t0)
	ctx, cancel := context.WithCancel(context.Background())
	mailer := &memMailer{before: cancel}
	a := newIncidents(store, mailer, c)
	if err := a.Signal(ctx, outage("u1", t0)); err != nil {
		t.Fatal(err)
	}
	inc, _, _ := store.Get(context.Background(), "gateway/gw-1")
	if m := inc.Mail(domain.MailOpened); len(mailer.subjects()) != 1 || m.State != domain.MailSent {
		t.Fatalf("mails %q, opening mail %+v", mailer.subjects(), m)
	}
}

// TestMailedCameraIsNotMergedSilently: a camera incident whose opening
// mail went out (the gateway was up then) and that is still open when its
// gateway's outage comes is not folded into the outage without its
// resolved mail.
func TestMailedCameraIsNotMergedSilently(t *testing.T) {
	store, mailer, c := newMemStore(), &memMailer{}, newClock(t0)
	a := newIncidents(store, mailer, c)
	ctx := context.Background()
	cam := domain.Signal{ID: "f1", At: t0, Kind: domain.KindCamera, Gateway: "gw-1", Device: "cam1", Action: domain.Raise,
		Exit: &domain.Exit{TaskID: "t1", Code: 1, At: t0}}
	signal(t, a, cam)
	c.Add(3 * time.Minute)
	flush(t, a) // the camera's mail
	signal(t, a, outage("u1", c.Now()))
	camInc, _, _ := store.Get(ctx, "camera/cam1")
	// A deliverer that read the camera's mail as still due (before the
	// flush claimed it) tries to merge it.
	held := camInc
	held.Mails = []domain.Mail{{Kind: domain.MailOpened, State: domain.MailPending, DueAt: t0}}
	merged, err := a.mergeIntoGateway(ctx, held)
	if err != nil || merged {
		t.Fatalf("merged=%v err=%v", merged, err)
	}
	camInc, _, _ = store.Get(ctx, "camera/cam1")
	if !camInc.Open() || camInc.MergedInto != "" {
		t.Fatalf("camera incident %+v", camInc)
	}
	if got := mailer.subjects(); len(got) != 2 {
		t.Fatalf("mails %q", got)
	}
}
