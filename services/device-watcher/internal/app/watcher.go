// Package app is the device-watcher's use case: the watch of one gateway.
// A Watcher competes for the gateway's lease; while it holds it, it
// reloads the stored state, feeds polls and the event stream into the
// domain tracker, and stores then announces each change. Its needs are the
// interfaces of ports.go; the adapters implement them.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"mediagw/pkg/gatewayid"
	"mediagw/services/device-watcher/internal/domain"
)

// Config tunes the watch of one gateway.
type Config struct {
	GatewayID         gatewayid.ID
	PollInterval      time.Duration
	OfflineHysteresis time.Duration
	UnreachableAfter  time.Duration
	// DetailsRefresh: channels and media URLs of online cameras are read
	// again when older than this (0: only when needed).
	DetailsRefresh time.Duration
	Subscribe      bool
	// PollTimeout bounds one poll (default: 3 poll intervals, at least 30 s).
	PollTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Watcher watches one gateway while it holds the gateway's lease.
type Watcher struct {
	cfg     Config
	id      string // cfg.GatewayID
	gw      Gateway
	store   DeviceStore
	leases  Leases
	pub     EventPublisher
	metrics Metrics
	log     *slog.Logger

	holding atomic.Bool
	// pollNow asks the session for a poll at once (buffered: one pending
	// request is enough).
	pollNow chan struct{}
}

// New returns a Watcher; m may be nil.
func New(cfg Config, gw Gateway, st DeviceStore, leases Leases, pub EventPublisher, m Metrics, log *slog.Logger) *Watcher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if m == nil {
		m = NopMetrics{}
	}
	return &Watcher{cfg: cfg, id: cfg.GatewayID.String(), gw: gw, store: st, leases: leases, pub: pub, metrics: m,
		log: log.With("gateway_id", cfg.GatewayID.String()), pollNow: make(chan struct{}, 1)}
}

// GatewayID is the gateway watched.
func (w *Watcher) GatewayID() gatewayid.ID { return w.cfg.GatewayID }

// Reconfigured tells the watcher that the gateway was configured at
// configuredAt (the configurator's GatewayConfigured): the password's
// version and the login budget are looked at at once (stopped logins
// resume if the parameter changed or the budget allows the password
// again), and the gateway is polled at once. When another instance holds
// the lease, the news is noted on the lease for it to hear at its next
// renewal; this instance's connection looks as well, for when it takes
// the lease.
func (w *Watcher) Reconfigured(ctx context.Context, configuredAt time.Time) error {
	if err := w.gw.Reconfigured(ctx); err != nil {
		return err
	}
	if w.holding.Load() {
		w.requestPoll()
		return nil
	}
	return w.leases.NoteConfigured(ctx, domain.LeaseID(w.id), configuredAt)
}

func (w *Watcher) requestPoll() {
	select {
	case w.pollNow <- struct{}{}:
	default: // one is pending already
	}
}

// Run competes for the gateway's lease and watches the gateway whenever it
// holds it, until ctx ends; then it releases the lease and returns nil.
//
// Faults are handled here, not returned: a gateway that does not answer
// or answers nonsense, a password that is missing or refused, a store or
// bus that fails or throttles (the SDK retries those first), a lost
// lease: each is logged and counted, and tried again (next poll, next
// lease attempt, next flush). Run returns an error only for
// domain.ErrMisconfigured — a table or topic missing, access denied —
// which no retry fixes and which stops every gateway alike.
func (w *Watcher) Run(ctx context.Context) error {
	retry := w.leases.Duration() / 3
	for ctx.Err() == nil {
		l, ok, err := w.leases.Acquire(ctx, domain.LeaseID(w.id))
		switch {
		case errors.Is(err, domain.ErrMisconfigured):
			return w.fatal("taking the lease", err)
		case err != nil && ctx.Err() == nil:
			w.log.Warn("lease", "err", err)
			w.metrics.StoreError("error")
		case ok:
			if err := w.hold(ctx, l); err != nil {
				return err
			}
			continue
		}
		// Jitter spreads the instances' attempts.
		wait := retry/2 + time.Duration(rand.Int64N(int64(retry/2)+1))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	return nil
}

// fatal is the error Run returns for a fault no retry fixes.
func (w *Watcher) fatal(doing string, err error) error {
	w.log.Error("unrecoverable: "+doing+" failed; stopping", "err", err)
	return fmt.Errorf("gateway %s: %s: %w", w.id, doing, err)
}

// hold watches the gateway while the lease l lasts. It returns an error
// only for an unrecoverable fault (domain.ErrMisconfigured).
func (w *Watcher) hold(ctx context.Context, l domain.Lease) error {
	w.log.Info("lease taken: watching the gateway", "token", l.Token)
	w.metrics.LeaseHeld(w.id, true)
	w.holding.Store(true)
	defer func() {
		w.holding.Store(false)
		w.metrics.LeaseHeld(w.id, false)
	}()
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !l.Configured.IsZero() {
		// Configured before this holding (noted on the lease by any
		// instance): no login awaits the gateway's configuration.
		if !w.heardConfigured(hctx, l.Configured) {
			l.Configured = time.Time{} // owed: the next renewal tries again
		}
	}
	renewed := make(chan error, 1)
	go func() {
		defer cancel()
		renewed <- w.renew(hctx, l)
	}()
	s, err := w.open(hctx, l)
	if err == nil {
		err = s.run(hctx)
	}
	if errors.Is(err, domain.ErrLeaseLost) {
		w.log.Warn("lease lost: another instance watches the gateway now")
	}
	cancel()
	if rerr := <-renewed; err == nil || errors.Is(err, context.Canceled) {
		err = rerr
	}
	fatal := errors.Is(err, domain.ErrMisconfigured)
	if ctx.Err() != nil || fatal {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		defer rcancel()
		if err := w.leases.Release(rctx, l); err != nil {
			w.log.Warn("lease release", "err", err)
		}
	}
	if fatal {
		return w.fatal("watching the gateway", err)
	}
	return nil
}

// renew extends the lease every third of its duration; it returns when the
// lease is lost, or when renewals failed until too close to its expiry
// (nil), or on an unrecoverable fault (domain.ErrMisconfigured).
func (w *Watcher) renew(ctx context.Context, l domain.Lease) error {
	d := w.leases.Duration()
	t := time.NewTicker(d / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		nl, err := w.leases.Renew(ctx, l)
		switch {
		case err == nil:
			if nl.Configured.After(l.Configured) && !w.heardConfigured(ctx, nl.Configured) {
				// Not acted on (the parameter store or the budget did not
				// answer in time): the next renewal tries again.
				nl.Configured = l.Configured
			}
			l = nl
		case errors.Is(err, domain.ErrLeaseLost):
			w.log.Warn("lease lost")
			return nil
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, domain.ErrMisconfigured):
			return err
		default:
			w.metrics.StoreError("error")
			// Stop before the lease can expire under us: another instance
			// may take it then.
			if l.Expires.Sub(w.cfg.Now()) < d/3 {
				w.log.Warn("lease renewals failing; letting the gateway go", "err", err)
				return nil
			}
			w.log.Warn("lease renewal failed; retrying", "err", err)
		}
	}
}

// heardConfigured acts on a configuration another instance heard of and
// noted on the lease, and reports whether it could. It is bounded so that
// it cannot hold up renewals (or, when the lease is taken, the first poll).
func (w *Watcher) heardConfigured(ctx context.Context, at time.Time) bool {
	ctx, cancel := context.WithTimeout(ctx, w.leases.Duration()/6)
	defer cancel()
	w.log.Info("gateway reconfigured (noted on the lease)", "configured_at", at)
	err := w.gw.Reconfigured(ctx)
	if err != nil {
		w.log.Warn("acting on the gateway's reconfiguration failed; trying again at the next lease renewal", "err", err)
	}
	w.requestPoll()
	return err == nil
}

// Session is one holding of the lease: the state is loaded and the
// gateway can be reconciled.
type Session struct {
	w       *Watcher
	lease   domain.Lease
	tracker *domain.Tracker
	// pending: stored changes not yet announced, in order.
	pending []domain.Change

	streamConnected bool
	streamSince     time.Time // connection time of the stream
	streamLive      bool      // a poll completed since the connection
}

// Open loads the gateway's stored state under the lease l and announces
// what a previous holder stored but may not have announced.
func (w *Watcher) Open(ctx context.Context, l domain.Lease) (*Session, error) {
	st, err := w.store.Load(ctx, w.id)
	if err != nil {
		return nil, err
	}
	tr := domain.NewTracker(domain.TrackerConfig{GatewayID: w.id, OfflineHysteresis: w.cfg.OfflineHysteresis,
		UnreachableAfter: w.cfg.UnreachableAfter}, st.Devices, st.Gateway)
	s := &Session{w: w, lease: l, tracker: tr, pending: st.Pending}
	if len(st.Pending) > 0 {
		w.log.Info("announcing changes stored by a previous holder", "count", len(st.Pending))
	}
	if err := s.announce(ctx); err != nil {
		return nil, err
	}
	s.updateGauges()
	return s, nil
}

// open is Open, retried until it works or ctx ends; only an unrecoverable
// fault ends the retries.
func (w *Watcher) open(ctx context.Context, l domain.Lease) (*Session, error) {
	for {
		s, err := w.Open(ctx, l)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, domain.ErrMisconfigured) {
			return nil, err
		}
		w.metrics.StoreError("error")
		w.log.Warn("loading the stored state failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// PollOnce polls the gateway once and stores and announces what changed.
func (s *Session) PollOnce(ctx context.Context) error {
	snap := s.poll(ctx, s.tracker.Known(s.w.cfg.Now(), s.w.cfg.DetailsRefresh))
	s.applySnapshot(snap)
	err := s.flush(ctx)
	s.polled(snap)
	return err
}

// poll runs one poll; it does not touch the tracker (known is a copy). A
// gateway that stalls cannot hold a poll for longer than PollTimeout.
func (s *Session) poll(ctx context.Context, known map[string]domain.Known) domain.Snapshot {
	timeout := s.w.cfg.PollTimeout
	if timeout <= 0 {
		timeout = max(3*s.w.cfg.PollInterval, 30*time.Second)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return s.w.gw.Poll(pctx, known)
}

// polled records a poll once it has been applied and its changes stored
// and announced: a poll counted in the metric has had all its effects.
func (s *Session) polled(snap domain.Snapshot) {
	s.w.metrics.PollDuration(s.w.id, snap.Finished.Sub(snap.Started))
}

func (s *Session) applySnapshot(snap domain.Snapshot) {
	tr := s.tracker
	if snap.Refused != nil {
		tr.LoginRefused(snap.Finished, *snap.Refused)
	}
	if snap.AwaitingConfiguration {
		tr.AwaitingConfiguration(snap.Finished)
	}
	if snap.Err != nil {
		switch {
		case snap.NothingSent:
			// Nothing reached the gateway: nothing is known of it, and
			// its cameras are neither confirmed nor doubted.
		case snap.Unreachable:
			tr.Unreached(snap.Finished, snap.Err.Error())
		default:
			tr.Reached(snap.Finished) // it answered, if badly
		}
		return
	}
	if snap.LoggedIn != "" {
		tr.LoggedIn(snap.Finished, snap.LoggedIn)
	}
	for _, sg := range snap.Sightings {
		tr.See(sg)
	}
	for _, idx := range snap.Gone {
		tr.Gone(idx, snap.Started, time.Time{}, domain.SourcePoll)
	}
	tr.Confirmed(snap.Started)
	tr.Reached(snap.Finished)
	if s.streamConnected && !snap.Started.Before(s.streamSince) {
		s.streamLive = true
	}
}

// applyStream records a stream update; it reports whether a poll should
// resynchronise now.
func (s *Session) applyStream(u domain.StreamUpdate) (resync bool) {
	tr := s.tracker
	switch u.Kind {
	case domain.UpdateConnected:
		// Events may have been missed while disconnected: the stream only
		// vouches for the state once a poll has run since the connection.
		s.streamConnected, s.streamSince, s.streamLive = true, u.At, false
		tr.Reached(u.At)
		if u.Credential != "" {
			tr.LoggedIn(u.At, u.Credential)
		}
		return true
	case domain.UpdateAlive:
		tr.Reached(u.At)
		if s.streamLive {
			tr.Confirmed(u.At)
		}
	case domain.UpdateDevice:
		if u.Gone {
			tr.Gone(u.Index, u.At, u.GatewayTime, domain.SourceStream)
		} else if u.Sighting != nil {
			tr.See(*u.Sighting)
		}
		tr.Reached(u.At)
		if s.streamLive {
			tr.Confirmed(u.At)
		}
	case domain.UpdateLost:
		s.streamLive = false
		return true
	case domain.UpdateDown:
		s.streamConnected, s.streamLive = false, false
		if u.Refused != nil {
			tr.LoginRefused(u.At, *u.Refused)
		}
		if u.AwaitingConfiguration {
			tr.AwaitingConfiguration(u.At)
		}
		if u.Unreachable {
			tr.Unreached(u.At, u.Err.Error())
		}
	}
	return false
}

// run is the session's loop: periodic polls, stream updates, flushes,
// and a poll at once when stopped logins resume. It returns when ctx
// ends, the lease is lost (domain.ErrLeaseLost) or on an unrecoverable
// fault (domain.ErrMisconfigured).
func (s *Session) run(ctx context.Context) error {
	cfg := s.w.cfg
	// Whatever ends the loop ends the goroutines it waits for.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := make(chan domain.StreamUpdate, 64)
	streamDone := make(chan struct{})
	if cfg.Subscribe {
		go func() {
			defer close(streamDone)
			s.w.gw.Stream(ctx, updates)
		}()
	} else {
		close(streamDone)
	}
	resumed := make(chan struct{}, 1)
	loginsDone := make(chan struct{})
	go func() {
		defer close(loginsDone)
		s.w.gw.WatchLogins(ctx, resumed)
	}()
	results := make(chan domain.Snapshot, 1)
	polling, again := false, false
	startPoll := func() {
		if polling {
			again = true
			return
		}
		polling = true
		known := s.tracker.Known(cfg.Now(), cfg.DetailsRefresh)
		go func() { results <- s.poll(ctx, known) }()
	}
	defer func() {
		cancel()
		if polling {
			<-results
		}
		<-streamDone
		<-loginsDone
	}()
	tick := time.NewTicker(cfg.PollInterval)
	defer tick.Stop()
	// The first poll starts now: a request left from before is served by it.
	select {
	case <-s.w.pollNow:
	default:
	}
	startPoll()
	for {
		var applied *domain.Snapshot
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			startPoll()
		case <-s.w.pollNow:
			startPoll()
		case <-resumed:
			startPoll()
		case snap := <-results:
			polling = false
			if errors.Is(snap.Err, domain.ErrMisconfigured) {
				// The login budget's table is missing or refused: no
				// login can be admitted, by any retry.
				return snap.Err
			}
			if ctx.Err() == nil {
				s.applySnapshot(snap)
				applied = &snap
			}
		case u := <-updates:
			if s.applyStream(u) {
				startPoll()
			}
		}
		if err := s.flush(ctx); err != nil {
			return err
		}
		if applied != nil {
			s.polled(*applied)
		}
		// A poll asked for while one ran starts now, after the one that
		// ran has had all its effects: polls never overlap, each starts
		// after the previous one is counted.
		if again && !polling {
			again = false
			startPoll()
		}
	}
}

// flush stores and announces every change the tracker proposes. It
// returns domain.ErrLeaseLost when the lease is gone and
// domain.ErrMisconfigured when nothing can be stored or announced; other
// failures are logged and retried with the next observation.
func (s *Session) flush(ctx context.Context) error {
	defer s.updateGauges()
	if err := s.announce(ctx); err != nil {
		return err
	}
	// The tracker proposes one gateway change at a time: a second round
	// stores the next (a refusal that came with an unreachable gateway).
	for range 2 {
		if ctx.Err() != nil {
			return nil
		}
		gateway, err := s.commitChanges(ctx)
		if err != nil || !gateway {
			return err
		}
	}
	return nil
}

// commitChanges stores and announces the changes the tracker proposes now;
// gateway says whether a gateway change was stored.
func (s *Session) commitChanges(ctx context.Context) (gateway bool, _ error) {
	for _, c := range s.tracker.Changes(s.w.cfg.Now()) {
		if !c.Kind.IsDevice() && s.gatewayPending() {
			// The gateway's state item holds one announcement at a time:
			// the next waits until the last is published, so that a crash
			// cannot lose it.
			continue
		}
		c.EventID = uuid.NewString()
		// Once stored, the change is announced even during shutdown, so that
		// no stored event waits for the next holder.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		err := s.w.store.Commit(cctx, s.lease, c)
		switch {
		case errors.Is(err, domain.ErrLeaseLost):
			cancel()
			s.w.metrics.StoreError("lease_lost")
			return gateway, err
		case errors.Is(err, domain.ErrConflict):
			s.w.metrics.StoreError("conflict")
			s.reload(cctx, c)
			cancel()
			continue
		case errors.Is(err, domain.ErrMisconfigured):
			cancel()
			s.w.metrics.StoreError("error")
			return gateway, err
		case err != nil:
			cancel()
			s.w.metrics.StoreError("error")
			s.w.log.Warn("storing a change failed; retrying later", "kind", c.Kind, "device_index", c.Device.Index, "err", err)
			return false, nil
		}
		s.tracker.Commit(c)
		gateway = gateway || !c.Kind.IsDevice()
		s.logLogin(c)
		s.pending = append(s.pending, c)
		err = s.announce(cctx)
		cancel()
		if err != nil {
			return gateway, err
		}
	}
	return gateway, nil
}

func (s *Session) gatewayPending() bool {
	for _, p := range s.pending {
		if !p.Kind.IsDevice() {
			return true
		}
	}
	return false
}

// logLogin says, once per transition, that logins to the gateway stopped
// or work again.
func (s *Session) logLogin(c domain.Change) {
	l := c.Gateway.Login
	switch c.Kind {
	case domain.KindGatewayCredentialsRejected:
		param, version := domain.SplitCredential(l.Refusal.Credential)
		args := []any{"parameter", param, "version", version, "reason", l.Refusal.Reason,
			"failed_logins", l.Refusal.FailedLogins, "detail", l.Refusal.Detail}
		if !l.Refusal.Until.IsZero() {
			args = append(args, "until", l.Refusal.Until.UTC().Format(time.RFC3339))
		}
		s.w.log.Error("gateway credentials rejected: no login to the gateway, its cameras are not watched (nor reported offline), "+
			"until the password parameter has a new version or the login budget allows a login again", args...)
	case domain.KindGatewayCredentialsAccepted:
		param, version := domain.SplitCredential(l.Credential)
		s.w.log.Info("gateway credentials accepted: watching the gateway again", "parameter", param, "version", version)
	}
}

// reload adopts the stored state after a conditional write failed.
func (s *Session) reload(ctx context.Context, c domain.Change) {
	log := s.w.log.With("kind", c.Kind, "device_index", c.Device.Index)
	if !c.Kind.IsDevice() {
		st, err := s.w.store.Load(ctx, s.w.id)
		if err != nil {
			log.Warn("reloading the gateway state failed", "err", err)
			return
		}
		s.tracker.ResetGateway(st.Gateway)
		log.Info("gateway state was ahead in the store; reloaded")
		return
	}
	d, pending, err := s.w.store.LoadDevice(ctx, s.w.id, c.Device.Index)
	if err != nil {
		log.Warn("reloading the camera failed", "err", err)
		return
	}
	s.tracker.Reset(c.Device.Index, d)
	if pending != nil && !s.isPending(pending.EventID) {
		s.pending = append(s.pending, *pending)
	}
	log.Info("camera state was ahead in the store; reloaded")
}

func (s *Session) isPending(id string) bool {
	for _, p := range s.pending {
		if p.EventID == id {
			return true
		}
	}
	return false
}

// announce publishes the pending changes in order, then clears their
// pending flags. A failed publish stops the round: order is kept and the
// rest is tried again with the next flush. Only an unrecoverable fault
// (domain.ErrMisconfigured) is returned.
func (s *Session) announce(ctx context.Context) error {
	for len(s.pending) > 0 {
		c := s.pending[0]
		ev, err := Event(c)
		if err != nil {
			s.w.log.Error("dropping an unannounceable change", "err", err)
			s.pending = s.pending[1:]
			continue
		}
		typ := EventType(ev)
		if err := s.w.pub.Publish(ctx, ev); err != nil {
			if errors.Is(err, domain.ErrMisconfigured) {
				return err
			}
			if ctx.Err() == nil {
				s.w.log.Warn("publishing failed; retrying later", "event_type", typ, "event_id", c.EventID, "err", err)
			}
			return nil
		}
		s.w.metrics.Published(typ)
		if !c.DetectableAt.IsZero() {
			src := string(c.Source)
			if src == "" {
				src = "gateway"
			}
			s.w.metrics.DetectionLatency(typ, src, s.w.cfg.Now().Sub(c.DetectableAt))
		}
		s.w.log.Info("announced", "event_type", typ, "event_id", c.EventID, "device_index", c.Device.Index, "channels", len(c.Device.Channels))
		s.pending = s.pending[1:]
		if err := s.w.store.Announced(ctx, c); err != nil {
			if errors.Is(err, domain.ErrMisconfigured) {
				return err
			}
			// The flag stays: a later holder publishes it again, same id.
			s.w.log.Warn("clearing the pending flag failed", "event_id", c.EventID, "err", err)
		}
	}
	return nil
}

func (s *Session) updateGauges() {
	g := s.tracker.Gateway()
	s.w.metrics.State(s.w.id, s.tracker.Counts(), g.Reachable, g.Login.Rejected, s.tracker.IsAwaitingConfiguration())
}

// EventType is the name of an event's type, e.g.
// "mediagw.events.v1.DeviceOnline" (the event_type attribute).
func EventType(ev proto.Message) string { return string(ev.ProtoReflect().Descriptor().FullName()) }
