package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"mediagw/services/health-sentinel/internal/domain"
)

// Config of the incident use cases.
type Config struct {
	Policy domain.Policy
	// MailLimit mails per gateway per MailWindow; the rest go into one digest.
	MailLimit  int
	MailWindow time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	Metrics    Metrics
	// Cameras, when set, names a gateway outage's cameras in its opening
	// mail (those whose tasks failed are listed anyway).
	Cameras Cameras
}

// Incidents turns signals into incidents and incidents into mails.
type Incidents struct {
	store   Store
	mailer  Mailer
	footage Footage
	cfg     Config
	log     *slog.Logger
}

// NewIncidents returns the incident use cases.
func NewIncidents(store Store, mailer Mailer, footage Footage, cfg Config) *Incidents {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	return &Incidents{store: store, mailer: mailer, footage: footage, cfg: cfg, log: cfg.Logger}
}

// conflictRetries bounds the read-modify-write retries of one change: the
// consumer's concurrent handlers and the flush race on one incident.
const conflictRetries = 8

// Signal applies s to its key's incident, then sends the mails it made due.
func (a *Incidents) Signal(ctx context.Context, s domain.Signal) error {
	var before domain.Incident
	changed := false
	inc, err := a.update(ctx, s.Key(), func(cur domain.Incident) (domain.Incident, bool) {
		var n domain.Incident
		n, changed = domain.Apply(cur, s, a.cfg.Now(), a.cfg.Policy)
		before = cur
		return n, changed
	})
	if err != nil {
		return err
	}
	switch {
	case !changed:
		a.cfg.Metrics.SignalIgnored("duplicate")
	case inc.Open() && !before.Open() && before.ID == inc.ID:
		// Failed again before its resolved mail went out: not a new incident.
		a.log.InfoContext(ctx, "incident reopened", "incident", inc.ID, "title", inc.Title, "detail", inc.Detail)
	case inc.Open() && (!before.Open() || before.ID != inc.ID):
		a.cfg.Metrics.IncidentOpened(string(s.Kind))
		a.log.InfoContext(ctx, "incident opened", "incident", inc.ID, "title", inc.Title, "detail", inc.Detail)
	case before.Open() && !inc.Open():
		a.cfg.Metrics.IncidentResolved(string(s.Kind))
		a.log.InfoContext(ctx, "incident resolved", "incident", inc.ID, "by", inc.ClearedBy, "duration", inc.Duration(a.cfg.Now()).String())
	}
	return a.deliver(ctx, inc)
}

// update is one read-modify-write of a key's incident under its version,
// retried on conflict.
func (a *Incidents) update(ctx context.Context, key string, fn func(domain.Incident) (domain.Incident, bool)) (domain.Incident, error) {
	for range conflictRetries {
		cur, _, err := a.store.Get(ctx, key)
		if err != nil {
			return cur, fmt.Errorf("read incident %s: %w", key, err)
		}
		n, changed := fn(cur)
		if !changed {
			return cur, nil
		}
		out, err := a.store.Put(ctx, n)
		if errors.Is(err, domain.ErrConflict) {
			continue
		}
		if err != nil {
			return cur, fmt.Errorf("write incident %s: %w", key, err)
		}
		return out, nil
	}
	return domain.Incident{}, fmt.Errorf("incident %s: %w %d times", key, domain.ErrConflict, conflictRetries)
}

// Flush is the periodic pass: it resolves incidents whose time has come
// (a camera task running stably, an alert gone quiet), sends the mails
// that fell due (held camera mails, resolved mails after the settle time,
// ones a crash left pending) and the storm digests.
func (a *Incidents) Flush(ctx context.Context) error {
	incs, storms, err := a.store.Active(ctx)
	if err != nil {
		return fmt.Errorf("active incidents: %w", err)
	}
	now := a.cfg.Now()
	var errs []error
	for _, inc := range incs {
		if inc.Open() && !inc.AutoResolveAt.IsZero() && !inc.AutoResolveAt.After(now) {
			by := "the recording task has run without failing for " + a.cfg.Policy.Stable.String()
			if inc.Kind == domain.KindAlert {
				by = "no repeat of the alert for " + a.cfg.Policy.AlertQuiet.String()
			}
			inc, err = a.update(ctx, inc.Key, func(cur domain.Incident) (domain.Incident, bool) {
				if !cur.Open() || cur.AutoResolveAt.IsZero() || cur.AutoResolveAt.After(now) {
					return cur, false
				}
				cur.Resolve(cur.AutoResolveAt, by, "", now.Add(a.cfg.Policy.Settle))
				a.cfg.Metrics.IncidentResolved(string(cur.Kind))
				return cur, true
			})
			if err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := a.deliver(ctx, inc); err != nil {
			errs = append(errs, err)
		}
	}
	for _, s := range storms {
		if err := a.sendDigest(ctx, s.Gateway); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deliver sends inc's mails that are due. Each is claimed in the store
// before it is sent, so that it goes out at most once: two deliverers,
// a redelivered event or a restart never send it twice (a crash between
// claim and send loses that one mail instead; the log says so).
func (a *Incidents) deliver(ctx context.Context, inc domain.Incident) error {
	for _, kind := range inc.DueMails(a.cfg.Now()) {
		if kind == domain.MailOpened && inc.Kind == domain.KindCamera && inc.Gateway != "" {
			merged, err := a.mergeIntoGateway(ctx, inc)
			if err != nil {
				return err
			}
			if merged {
				return nil
			}
		}
		if err := a.send(ctx, inc.Key, kind); err != nil {
			return err
		}
	}
	return nil
}

// mergeIntoGateway folds a camera incident whose mail is due into its
// gateway's open outage: the outage explains it, and one mail covers them.
func (a *Incidents) mergeIntoGateway(ctx context.Context, cam domain.Incident) (bool, error) {
	gwKey := domain.KeyOf(domain.KindGateway, cam.Gateway, "")
	gw, found, err := a.store.Get(ctx, gwKey)
	if err != nil {
		return false, fmt.Errorf("read incident %s: %w", gwKey, err)
	}
	if !found || !gw.Open() {
		return false, nil
	}
	now := a.cfg.Now()
	sig := domain.Signal{ID: "merge/" + cam.ID, At: now, Kind: domain.KindGateway, Gateway: cam.Gateway, Action: domain.Note, Camera: cam.Device}
	if _, err := a.update(ctx, gwKey, func(cur domain.Incident) (domain.Incident, bool) {
		return domain.Apply(cur, sig, now, a.cfg.Policy)
	}); err != nil {
		return false, err
	}
	merged := false
	_, err = a.update(ctx, cam.Key, func(cur domain.Incident) (domain.Incident, bool) {
		merged = false
		// Only while its opening mail is still held: one that went out
		// (another deliverer, meanwhile) is owed its resolved mail.
		if m := cur.Mail(domain.MailOpened); !cur.Open() || cur.ID != cam.ID || m == nil || m.State != domain.MailPending {
			return cur, false
		}
		cur.Resolve(now, "part of the gateway outage "+gw.ID, gw.ID, now)
		merged = true
		return cur, true
	})
	if err != nil {
		return false, err
	}
	if merged {
		a.log.InfoContext(ctx, "camera incident merged into its gateway's outage", "incident", cam.ID, "into", gw.ID)
	}
	// Not merged: the camera incident changed meanwhile; its claim (in
	// send) decides what is still owed.
	return merged, nil
}

// send claims, sends and confirms one mail of key's incident.
func (a *Incidents) send(ctx context.Context, key, kind string) error {
	now := a.cfg.Now()
	var missed string
	if kind == domain.MailResolved && a.footage != nil {
		if cur, _, err := a.store.Get(ctx, key); err == nil && cur.Missed == "" {
			var cams []string
			if cur.Kind == domain.KindCamera {
				cams = []string{cur.Device}
			}
			if cur.Gateway == "" {
				missed = "unknown (the camera's gateway is not known)"
			} else if missed, err = a.footage.Missed(ctx, cur.Gateway, cams, cur.Opened, cur.Resolved); err != nil {
				a.log.WarnContext(ctx, "footage missed not counted", "incident", cur.ID, "err", err)
				missed = "unknown (" + err.Error() + ")"
			}
		}
	}
	var cams []string
	if kind == domain.MailOpened && a.cfg.Cameras != nil {
		if cur, _, err := a.store.Get(ctx, key); err == nil && cur.Kind == domain.KindGateway && cur.Gateway != "" {
			if cams, err = a.cfg.Cameras.Of(ctx, cur.Gateway); err != nil {
				a.log.WarnContext(ctx, "the gateway's cameras are not known", "gateway", cur.Gateway, "err", err)
			}
		}
	}
	mine := false
	claimed, err := a.update(ctx, key, func(cur domain.Incident) (domain.Incident, bool) {
		mine = false
		m := cur.Mail(kind)
		if m == nil || m.State != domain.MailPending || m.DueAt.After(now) {
			return cur, false
		}
		m.State, mine = domain.MailClaimed, true
		if missed != "" && cur.Missed == "" {
			cur.Missed = missed
		}
		for _, c := range cams {
			cur.AddCamera(c)
		}
		return cur, true
	})
	if err != nil {
		return err
	}
	if !mine {
		return nil // another deliverer has it, or it is no longer owed
	}
	// From the claim on, the mail is settled (sent, held, or put back to
	// pending) even when ctx ends (a shutdown): a mail left claimed is
	// never sent, and one published but put back would go out twice.
	msg := domain.Render(kind, claimed, now)
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	admitted, err := a.admit(sendCtx, claimed, kind, now)
	if err != nil {
		return a.release(ctx, claimed, kind, err)
	}
	final := domain.MailDigested
	if admitted {
		if err := a.mailer.Send(sendCtx, msg); err != nil {
			return a.release(ctx, claimed, kind, fmt.Errorf("send %s mail of %s: %w", kind, claimed.ID, err))
		}
		final = domain.MailSent
		a.cfg.Metrics.MailSent(kind)
		a.log.InfoContext(ctx, "mail sent", "incident", claimed.ID, "kind", kind, "subject", msg.Subject)
	} else {
		a.cfg.Metrics.MailHeld(kind)
		a.log.InfoContext(ctx, "mail held for the digest (storm limit)", "incident", claimed.ID, "kind", kind)
	}
	markCtx, cancelMark := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancelMark()
	_, err = a.update(markCtx, key, func(cur domain.Incident) (domain.Incident, bool) {
		m := cur.Mail(kind)
		if m == nil || m.State != domain.MailClaimed || cur.ID != claimed.ID {
			return cur, false
		}
		m.State, m.SentAt = final, now
		return cur, true
	})
	if err != nil {
		// Sent, but not marked: it stays claimed and is never sent again.
		a.log.ErrorContext(ctx, "mail sent but not marked sent; it stays claimed", "incident", claimed.ID, "kind", kind, "err", err)
	}
	return nil
}

// settleTimeout bounds each part of settling a claimed mail (the storm
// count and publish; marking it sent; putting it back to pending), which
// runs on when the caller's context has ended.
const settleTimeout = 10 * time.Second

// release puts a claimed mail back to pending after a failed send, so
// that the next delivery (the event's redelivery or the flush) sends it.
func (a *Incidents) release(ctx context.Context, claimed domain.Incident, kind string, cause error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	back := false
	_, err := a.update(ctx, claimed.Key, func(cur domain.Incident) (domain.Incident, bool) {
		back = false
		m := cur.Mail(kind)
		if m == nil || m.State != domain.MailClaimed || cur.ID != claimed.ID {
			return cur, false
		}
		m.State, back = domain.MailPending, true
		return cur, true
	})
	if err == nil && !back {
		// The key's incident was replaced while the mail was out (a claimed
		// mail is gone out as far as the rules know): it cannot be owed again.
		a.log.ErrorContext(ctx, "mail not sent and its incident replaced meanwhile; it is lost", "incident", claimed.ID, "kind", kind, "err", cause)
	}
	return errors.Join(cause, err)
}

// admit counts the mail against its gateway's storm limit.
func (a *Incidents) admit(ctx context.Context, inc domain.Incident, kind string, now time.Time) (bool, error) {
	gw := inc.Gateway
	if gw == "" {
		gw = "-" // cameras whose gateway is not known share one budget
	}
	line := domain.DigestLine(kind, inc, now)
	for range conflictRetries {
		s, _, err := a.store.GetStorm(ctx, gw)
		if err != nil {
			return false, fmt.Errorf("storm counter of %s: %w", gw, err)
		}
		s.Gateway = gw
		n, ok := s.Admit(now, a.cfg.MailLimit, a.cfg.MailWindow, line)
		if _, err := a.store.PutStorm(ctx, n); errors.Is(err, domain.ErrConflict) {
			continue
		} else if err != nil {
			return false, fmt.Errorf("storm counter of %s: %w", gw, err)
		}
		return ok, nil
	}
	return false, fmt.Errorf("storm counter of %s: %w", gw, domain.ErrConflict)
}

// sendDigest sends the gateway's digest if it is due: the lines are taken
// out of the counter first (so no two deliverers send them), and put back
// if the send fails.
func (a *Incidents) sendDigest(ctx context.Context, gw string) error {
	now := a.cfg.Now()
	for range conflictRetries {
		s, found, err := a.store.GetStorm(ctx, gw)
		if err != nil || !found || !s.DigestReady(now) {
			return err
		}
		n, lines := s.TakeDigest()
		if _, err := a.store.PutStorm(ctx, n); errors.Is(err, domain.ErrConflict) {
			continue
		} else if err != nil {
			return fmt.Errorf("storm counter of %s: %w", gw, err)
		}
		if err := a.mailer.Send(ctx, domain.RenderDigest(gw, lines, a.cfg.MailWindow)); err != nil {
			a.restoreDigest(ctx, gw, lines)
			return fmt.Errorf("digest of %s: %w", gw, err)
		}
		a.cfg.Metrics.MailSent("digest")
		a.log.InfoContext(ctx, "digest sent", "gateway", gw, "mails", len(lines))
		return nil
	}
	return fmt.Errorf("storm counter of %s: %w", gw, domain.ErrConflict)
}

func (a *Incidents) restoreDigest(ctx context.Context, gw string, lines []string) {
	for range conflictRetries {
		s, _, err := a.store.GetStorm(ctx, gw)
		if err != nil {
			break
		}
		s.Gateway = gw
		s.Digest = append(lines, s.Digest...)
		if s.DigestDue.IsZero() {
			s.DigestDue = a.cfg.Now()
		}
		if _, err := a.store.PutStorm(ctx, s); !errors.Is(err, domain.ErrConflict) {
			if err == nil {
				return
			}
			break
		}
	}
	a.log.ErrorContext(ctx, "digest lines lost after a failed send", "gateway", gw, "lines", len(lines))
}

type nopMetrics struct{}

func (nopMetrics) MailSent(string)         {}
func (nopMetrics) MailHeld(string)         {}
func (nopMetrics) IncidentOpened(string)   {}
func (nopMetrics) IncidentResolved(string) {}
func (nopMetrics) SignalIgnored(string)    {}
