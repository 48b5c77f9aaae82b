package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
)

// Sentinel checks gateways and recovers the sick ones; it is also the
// recovery side's Reporter, writing every step into the gateway's
// incident and publishing GatewayRecovered.
type Sentinel struct {
	inc      *Incidents
	rec      Recoverer
	gateways Gateways
	pub      EventPublisher
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex
	running map[string]bool // gateways whose check or recovery runs
	// again: gateways asked to be checked while theirs ran; the running
	// one checks again when it ends, instead of the ask waiting for the
	// next schedule tick (a GatewayUnreachable during a check that was
	// about to find the API still answering).
	again map[string]bool
	wg    sync.WaitGroup
	ctx   context.Context // the runtime's: recoveries outlive the handler that started them
}

// NewSentinel returns the gateway watcher; checks and recoveries run under
// ctx until Run gives them the runtime's. The Recoverer is set afterwards
// (SetRecoverer): it is built with this Sentinel as its Reporter.
func NewSentinel(ctx context.Context, inc *Incidents, pub EventPublisher, now func() time.Time, logger *slog.Logger) *Sentinel {
	return &Sentinel{inc: inc, pub: pub, now: now, log: logger, running: map[string]bool{}, again: map[string]bool{}, ctx: ctx}
}

// SetRecoverer sets the recovery side and the gateways it looks after.
func (s *Sentinel) SetRecoverer(r Recoverer, gateways Gateways) { s.rec, s.gateways = r, gateways }

// Run keeps the context recoveries run under until ctx ends, then waits
// for them to return (they stop at their next step boundary).
func (s *Sentinel) Run(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	<-ctx.Done()
	s.wg.Wait()
	return nil
}

// CheckAll starts a health check of every gateway (and its recovery when
// it is sick) in the background; a gateway whose check or recovery still
// runs is checked again as soon as it ends.
func (s *Sentinel) CheckAll(ctx context.Context) error {
	ids, err := s.gateways.IDs(ctx)
	if err != nil {
		return fmt.Errorf("gateways: %w", err)
	}
	for _, id := range ids {
		s.startCheck(id)
	}
	return nil
}

// Check checks one gateway: a sick one gets (or confirms) its incident, a
// healthy one resolves it. It reports whether the gateway is healthy.
func (s *Sentinel) Check(ctx context.Context, gw string) (bool, error) {
	h, err := s.rec.Check(ctx, gw)
	if err != nil {
		return false, fmt.Errorf("health check of %s: %w", gw, err)
	}
	at := h.CheckedAt
	if at.IsZero() {
		at = s.now()
	}
	// No ID: a check is never redelivered, and its ids would push the
	// events' out of the incident's memory of signals seen.
	sig := domain.Signal{At: at, Kind: domain.KindGateway, Gateway: gw}
	if h.APIState == domain.APIUnknown && (h.InstanceOK == nil || *h.InstanceOK) {
		// No login was possible (login budget, rejected password): the
		// check says nothing of the gateway; the credentials incident tells.
		s.log.InfoContext(ctx, "health check inconclusive", "gateway", gw, "detail", h.APIDetail)
		return true, nil
	}
	if h.Healthy() {
		sig.Action, sig.Detail = domain.Clear, "the health check finds the gateway's API answering"
		return true, s.inc.Signal(ctx, sig)
	}
	sig.Action, sig.Title, sig.Detail = domain.Raise, healthTitle(h), healthDetail(h)
	return false, s.inc.Signal(ctx, sig)
}

func healthTitle(h recovery.Health) string {
	api := ""
	switch h.APIState {
	case domain.APISilent:
		api = "API does not answer"
	case domain.APISick:
		api = "API answers with errors"
	}
	switch {
	case h.InstanceOK != nil && !*h.InstanceOK && api != "":
		return "instance status checks failed, " + api
	case h.InstanceOK != nil && !*h.InstanceOK:
		return "instance status checks failed"
	case api != "":
		return api
	}
	return "health check failed"
}

func healthDetail(h recovery.Health) string {
	d := "API: " + orNone(h.APIDetail)
	if h.InstanceOK != nil || h.InstanceDetail != "" {
		d += "; instance: " + orNone(h.InstanceDetail)
	}
	return d
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Unreachable handles a GatewayUnreachable: the incident at once (the
// first mail within the floor), then a health check that confirms it and
// starts the recovery.
func (s *Sentinel) Unreachable(ctx context.Context, sig domain.Signal) error {
	if err := s.inc.Signal(ctx, sig); err != nil {
		return err
	}
	s.startCheck(sig.Gateway)
	return nil
}

// startCheck checks gw in the background (a handler does not wait for the
// gateway's API to time out) and recovers it if it is sick: one check or
// recovery at a time per gateway in this process (the Recoverer's lease
// keeps recoveries to one sentinel across processes). Asked while one
// runs, it runs once more right after (asks meanwhile coalesce).
func (s *Sentinel) startCheck(gw string) {
	s.goOnce(gw, func(ctx context.Context) {
		healthy, err := s.Check(ctx, gw)
		if err != nil {
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "health check failed", "gateway", gw, "err", err)
			}
			return
		}
		if healthy {
			return
		}
		if err := s.rec.Recover(ctx, gw); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "recovery ended with an error", "gateway", gw, "err", err)
		}
	})
}

// goOnce runs fn for gw in the background; if fn already runs for gw it
// runs again once that run ends (however often it was asked meanwhile).
func (s *Sentinel) goOnce(gw string, fn func(ctx context.Context)) {
	s.mu.Lock()
	ctx := s.ctx
	if ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	if s.running[gw] {
		s.again[gw] = true
		s.mu.Unlock()
		return
	}
	s.running[gw] = true
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		for {
			fn(ctx)
			s.mu.Lock()
			if !s.again[gw] || ctx.Err() != nil {
				delete(s.running, gw)
				delete(s.again, gw)
				s.mu.Unlock()
				return
			}
			delete(s.again, gw)
			s.mu.Unlock()
		}
	}()
}

// Wait waits until no check or recovery runs (tests).
func (s *Sentinel) Wait() { s.wg.Wait() }

// StepStarted records a recovery step that starts.
func (s *Sentinel) StepStarted(ctx context.Context, gw string, st recovery.Step) error {
	return s.inc.Signal(ctx, s.stepSignal(gw, st, "started"))
}

// StepFinished records a recovery step's outcome.
func (s *Sentinel) StepFinished(ctx context.Context, gw string, st recovery.Step) error {
	out := st.Outcome
	if st.Detail != "" {
		out += " (" + st.Detail + ")"
	}
	return s.inc.Signal(ctx, s.stepSignal(gw, st, out))
}

func (s *Sentinel) stepSignal(gw string, st recovery.Step, outcome string) domain.Signal {
	at := st.Ended
	phase := "finished"
	if at.IsZero() {
		at, phase = st.Started, "started"
	}
	if at.IsZero() {
		at = s.now()
	}
	return domain.Signal{
		ID: fmt.Sprintf("step/%s/%s/%d/%d/%s", gw, st.Kind, st.Attempt, st.Started.UnixNano(), phase),
		At: at, Kind: domain.KindGateway, Gateway: gw, Action: domain.Note,
		Step: &domain.Step{At: at, What: fmt.Sprintf("%s (attempt %d)", st.Kind, st.Attempt), Outcome: outcome},
	}
}

// Recovered publishes GatewayRecovered (the configurator applies the
// settings again) and records it; the incident resolves when the gateway
// answers (GatewayReachable or the next health check).
func (s *Sentinel) Recovered(ctx context.Context, r recovery.Recovered) error {
	if err := s.pub.Publish(ctx, &eventsv1.GatewayRecovered{
		GatewayId: r.GatewayID, Address: r.Address, ElasticIp: r.ElasticIP, InstanceId: r.InstanceID,
		PreviousInstanceId: r.PreviousInstanceID, BootstrapPasswordParameter: r.BootstrapPasswordParameter,
	}); err != nil {
		return fmt.Errorf("publish GatewayRecovered of %s: %w", r.GatewayID, err)
	}
	at := s.now()
	what := "gateway answers again; GatewayRecovered published (the configurator re-applies the settings)"
	if r.PreviousInstanceID != "" && r.PreviousInstanceID != r.InstanceID {
		what = fmt.Sprintf("replaced instance %s by %s (Elastic IP %s); GatewayRecovered published", r.PreviousInstanceID, r.InstanceID, r.ElasticIP)
	}
	return s.inc.Signal(ctx, domain.Signal{ID: fmt.Sprintf("recovered/%s/%d", r.GatewayID, at.UnixNano()), At: at,
		Kind: domain.KindGateway, Gateway: r.GatewayID, Action: domain.Note, Step: &domain.Step{At: at, What: what}})
}

// GaveUp records that the recovery budget is spent and mails it.
func (s *Sentinel) GaveUp(ctx context.Context, gw, reason string) error {
	at := s.now()
	return s.inc.Signal(ctx, domain.Signal{ID: fmt.Sprintf("gaveup/%s/%d", gw, at.UnixNano()), At: at,
		Kind: domain.KindGateway, Gateway: gw, Action: domain.GaveUp, Detail: reason,
		Step: &domain.Step{At: at, What: "automatic recovery gave up", Outcome: reason}})
}

// Snapshots runs one pass of the snapshot schedule.
func (s *Sentinel) Snapshots(ctx context.Context) error { return s.rec.SnapshotDue(ctx) }

var _ recovery.Reporter = (*Sentinel)(nil)
