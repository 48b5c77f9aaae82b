// Package watcher runs the watch of one gateway: it takes the gateway's
// lease, reloads the stored state, feeds polls and the event stream into
// the domain tracker, and stores then announces each change.
package watcher

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"mediagw/pkg/isapi"
	"mediagw/pkg/messaging"
	"mediagw/services/device-watcher/internal/devicestate"
	"mediagw/services/device-watcher/internal/gateway"
	"mediagw/services/device-watcher/internal/lease"
	"mediagw/services/device-watcher/internal/store"
)

// Observer watches the gateway (gateway.Conn).
type Observer interface {
	Poll(ctx context.Context, known map[string]devicestate.Known) gateway.Snapshot
	Stream(ctx context.Context, opts isapi.SubscribeOptions, out chan<- gateway.StreamUpdate)
	// Reconfigured: the gateway was configured at the given time; a
	// password it rejected before may be tried again.
	Reconfigured(ctx context.Context, configuredAt time.Time) error
}

// Store keeps the state (store.Store).
type Store interface {
	Load(ctx context.Context, gatewayID string) (store.State, error)
	LoadDevice(ctx context.Context, gatewayID, index string) (*devicestate.Device, *devicestate.Change, error)
	Commit(ctx context.Context, l lease.Lease, c devicestate.Change) error
	Announced(ctx context.Context, c devicestate.Change) error
}

// Leases hands out the gateway's lease (lease.Manager).
type Leases interface {
	Acquire(ctx context.Context, id string) (lease.Lease, bool, error)
	Renew(ctx context.Context, l lease.Lease) (lease.Lease, error)
	Release(ctx context.Context, l lease.Lease) error
	NoteConfigured(ctx context.Context, id string, at time.Time) error
	Duration() time.Duration
}

// Publisher publishes events (messaging.Publisher).
type Publisher interface {
	Publish(ctx context.Context, ev proto.Message) error
}

// Config tunes the watch of one gateway.
type Config struct {
	GatewayID         string
	PollInterval      time.Duration
	OfflineHysteresis time.Duration
	UnreachableAfter  time.Duration
	// DetailsRefresh: channels and media URLs of online cameras are read
	// again when older than this (0: only when needed).
	DetailsRefresh time.Duration
	Subscribe      bool
	Stream         isapi.SubscribeOptions
	// PollTimeout bounds one poll (default: 3 poll intervals, at least 30 s).
	PollTimeout time.Duration
}

// Watcher watches one gateway while it holds the gateway's lease.
type Watcher struct {
	cfg     Config
	obs     Observer
	store   Store
	leases  Leases
	pub     Publisher
	metrics *Metrics
	log     *slog.Logger

	holding atomic.Bool
	// pollNow asks the session for a poll at once (buffered: one pending
	// request is enough).
	pollNow chan struct{}
}

// New returns a Watcher.
func New(cfg Config, obs Observer, st Store, leases Leases, pub Publisher, m *Metrics, log *slog.Logger) *Watcher {
	return &Watcher{cfg: cfg, obs: obs, store: st, leases: leases, pub: pub, metrics: m,
		log: log.With("gateway_id", cfg.GatewayID), pollNow: make(chan struct{}, 1)}
}

// Reconfigured tells the watcher that the gateway was configured at
// configuredAt (the configurator's GatewayConfigured): a password the
// gateway rejected before is tried again, and the gateway is polled at
// once. When another instance holds the lease, the news is noted on the
// lease for it to hear at its next renewal; this instance's connection is
// reset as well, for when it takes the lease.
func (w *Watcher) Reconfigured(ctx context.Context, configuredAt time.Time) error {
	if err := w.obs.Reconfigured(ctx, configuredAt); err != nil {
		return err
	}
	if w.holding.Load() {
		w.requestPoll()
		return nil
	}
	return w.leases.NoteConfigured(ctx, LeaseID(w.cfg.GatewayID), configuredAt)
}

func (w *Watcher) requestPoll() {
	select {
	case w.pollNow <- struct{}{}:
	default: // one is pending already
	}
}

// LeaseID is the lease of a gateway.
func LeaseID(gatewayID string) string { return "device-watcher/" + gatewayID }

// Run competes for the gateway's lease and watches the gateway whenever it
// holds it, until ctx ends; then it releases the lease.
func (w *Watcher) Run(ctx context.Context) error {
	retry := w.leases.Duration() / 3
	for ctx.Err() == nil {
		l, ok, err := w.leases.Acquire(ctx, LeaseID(w.cfg.GatewayID))
		switch {
		case err != nil && ctx.Err() == nil:
			w.log.Warn("lease", "err", err)
			w.metrics.storeErrors.WithLabelValues("error").Inc()
		case ok:
			w.hold(ctx, l)
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

// hold watches the gateway while the lease l lasts.
func (w *Watcher) hold(ctx context.Context, l lease.Lease) {
	w.log.Info("lease taken: watching the gateway", "token", l.Token)
	w.metrics.leaseHeld.WithLabelValues(w.cfg.GatewayID).Set(1)
	w.holding.Store(true)
	defer func() {
		w.holding.Store(false)
		w.metrics.leaseHeld.WithLabelValues(w.cfg.GatewayID).Set(0)
		w.metrics.forget(w.cfg.GatewayID)
	}()
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		defer cancel()
		w.renew(hctx, l)
	}()
	s, err := w.open(hctx, l)
	if err == nil {
		err = s.run(hctx)
	}
	if errors.Is(err, store.ErrLeaseLost) {
		w.log.Warn("lease lost: another instance watches the gateway now")
	}
	cancel()
	<-renewed
	if ctx.Err() != nil {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		defer rcancel()
		if err := w.leases.Release(rctx, l); err != nil {
			w.log.Warn("lease release", "err", err)
		}
	}
}

// renew extends the lease every third of its duration; it returns when the
// lease is lost, or when renewals failed until too close to its expiry.
func (w *Watcher) renew(ctx context.Context, l lease.Lease) {
	d := w.leases.Duration()
	t := time.NewTicker(d / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		nl, err := w.leases.Renew(ctx, l)
		switch {
		case err == nil:
			if nl.Configured.After(l.Configured) {
				w.heardConfigured(ctx, nl.Configured)
			}
			l = nl
		case errors.Is(err, lease.ErrLost):
			w.log.Warn("lease lost")
			return
		case ctx.Err() != nil:
			return
		default:
			w.metrics.storeErrors.WithLabelValues("error").Inc()
			// Stop before the lease can expire under us: another instance
			// may take it then.
			if time.Until(l.Expires) < d/3 {
				w.log.Warn("lease renewals failing; letting the gateway go", "err", err)
				return
			}
			w.log.Warn("lease renewal failed; retrying", "err", err)
		}
	}
}

// heardConfigured acts on a configuration another instance heard of and
// noted on the lease. It is bounded so that it cannot hold up renewals.
func (w *Watcher) heardConfigured(ctx context.Context, at time.Time) {
	ctx, cancel := context.WithTimeout(ctx, w.leases.Duration()/6)
	defer cancel()
	w.log.Info("gateway reconfigured (noted on the lease)", "configured_at", at)
	if err := w.obs.Reconfigured(ctx, at); err != nil {
		w.log.Warn("acting on the gateway's reconfiguration failed", "err", err)
	}
	w.requestPoll()
}

// Session is one holding of the lease: the state is loaded and the
// gateway can be reconciled.
type Session struct {
	w       *Watcher
	lease   lease.Lease
	tracker *devicestate.Tracker
	// pending: stored changes not yet announced, in order.
	pending []devicestate.Change

	streamConnected bool
	streamSince     time.Time // connection time of the stream
	streamLive      bool      // a poll completed since the connection
}

// Open loads the gateway's stored state under the lease l and announces
// what a previous holder stored but may not have announced.
func (w *Watcher) Open(ctx context.Context, l lease.Lease) (*Session, error) {
	st, err := w.store.Load(ctx, w.cfg.GatewayID)
	if err != nil {
		return nil, err
	}
	tr := devicestate.New(devicestate.Config{GatewayID: w.cfg.GatewayID, OfflineHysteresis: w.cfg.OfflineHysteresis,
		UnreachableAfter: w.cfg.UnreachableAfter}, st.Devices, st.Gateway)
	s := &Session{w: w, lease: l, tracker: tr, pending: st.Pending}
	if len(st.Pending) > 0 {
		w.log.Info("announcing changes stored by a previous holder", "count", len(st.Pending))
	}
	s.announce(ctx)
	s.updateGauges()
	return s, nil
}

// open is Open, retried until it works or ctx ends.
func (w *Watcher) open(ctx context.Context, l lease.Lease) (*Session, error) {
	for {
		s, err := w.Open(ctx, l)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		w.metrics.storeErrors.WithLabelValues("error").Inc()
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
	s.applySnapshot(s.poll(ctx, s.tracker.Known(time.Now(), s.w.cfg.DetailsRefresh)))
	return s.flush(ctx)
}

// poll runs one poll; it does not touch the tracker (known is a copy). A
// gateway that stalls cannot hold a poll for longer than PollTimeout.
func (s *Session) poll(ctx context.Context, known map[string]devicestate.Known) gateway.Snapshot {
	timeout := s.w.cfg.PollTimeout
	if timeout <= 0 {
		timeout = max(3*s.w.cfg.PollInterval, 30*time.Second)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	snap := s.w.obs.Poll(pctx, known)
	s.w.metrics.pollDuration.WithLabelValues(s.w.cfg.GatewayID).Observe(snap.Finished.Sub(snap.Started).Seconds())
	return snap
}

func (s *Session) applySnapshot(snap gateway.Snapshot) {
	tr := s.tracker
	if snap.Err != nil {
		if gateway.Unreachable(snap.Err) {
			tr.Unreached(snap.Finished, snap.Err.Error())
		} else {
			tr.Reached(snap.Finished) // it answered, if badly
		}
		return
	}
	for _, sg := range snap.Sightings {
		tr.See(sg)
	}
	for _, idx := range snap.Gone {
		tr.Gone(idx, snap.Started, time.Time{}, devicestate.SourcePoll)
	}
	tr.Confirmed(snap.Started)
	tr.Reached(snap.Finished)
	if s.streamConnected && !snap.Started.Before(s.streamSince) {
		s.streamLive = true
	}
}

// applyStream records a stream update; it reports whether a poll should
// resynchronise now.
func (s *Session) applyStream(u gateway.StreamUpdate) (resync bool) {
	tr := s.tracker
	switch u.Kind {
	case gateway.UpdateConnected:
		// Events may have been missed while disconnected: the stream only
		// vouches for the state once a poll has run since the connection.
		s.streamConnected, s.streamSince, s.streamLive = true, u.At, false
		tr.Reached(u.At)
		return true
	case gateway.UpdateAlive:
		tr.Reached(u.At)
		if s.streamLive {
			tr.Confirmed(u.At)
		}
	case gateway.UpdateDevice:
		if u.Gone {
			tr.Gone(u.Index, u.At, u.GatewayTime, devicestate.SourceStream)
		} else if u.Sighting != nil {
			tr.See(*u.Sighting)
		}
		tr.Reached(u.At)
		if s.streamLive {
			tr.Confirmed(u.At)
		}
	case gateway.UpdateLost:
		s.streamLive = false
		return true
	case gateway.UpdateDown:
		s.streamConnected, s.streamLive = false, false
		if u.Unreachable {
			tr.Unreached(u.At, u.Err.Error())
		}
	}
	return false
}

// run is the session's loop: periodic polls, stream updates, flushes.
func (s *Session) run(ctx context.Context) error {
	cfg := s.w.cfg
	updates := make(chan gateway.StreamUpdate, 64)
	streamDone := make(chan struct{})
	if cfg.Subscribe {
		go func() {
			defer close(streamDone)
			s.w.obs.Stream(ctx, cfg.Stream, updates)
		}()
	} else {
		close(streamDone)
	}
	results := make(chan gateway.Snapshot, 1)
	polling, again := false, false
	startPoll := func() {
		if polling {
			again = true
			return
		}
		polling = true
		known := s.tracker.Known(time.Now(), cfg.DetailsRefresh)
		go func() { results <- s.poll(ctx, known) }()
	}
	defer func() {
		if polling {
			<-results
		}
		<-streamDone
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
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			startPoll()
		case <-s.w.pollNow:
			startPoll()
		case snap := <-results:
			polling = false
			if ctx.Err() == nil {
				s.applySnapshot(snap)
			}
			if again {
				again = false
				startPoll()
			}
		case u := <-updates:
			if s.applyStream(u) {
				startPoll()
			}
		}
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
}

// flush stores and announces every change the tracker proposes. It
// returns store.ErrLeaseLost when the lease is gone; other failures are
// logged and retried with the next observation.
func (s *Session) flush(ctx context.Context) error {
	defer s.updateGauges()
	s.announce(ctx)
	if ctx.Err() != nil {
		return nil
	}
	for _, c := range s.tracker.Changes(time.Now()) {
		c.EventID = uuid.NewString()
		// Once stored, the change is announced even during shutdown, so that
		// no stored event waits for the next holder.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		err := s.w.store.Commit(cctx, s.lease, c)
		switch {
		case errors.Is(err, store.ErrLeaseLost):
			cancel()
			s.w.metrics.storeErrors.WithLabelValues("lease_lost").Inc()
			return err
		case errors.Is(err, store.ErrConflict):
			s.w.metrics.storeErrors.WithLabelValues("conflict").Inc()
			s.reload(cctx, c)
			cancel()
			continue
		case err != nil:
			cancel()
			s.w.metrics.storeErrors.WithLabelValues("error").Inc()
			s.w.log.Warn("storing a change failed; retrying later", "kind", c.Kind, "device_index", c.Device.Index, "err", err)
			return nil
		}
		s.tracker.Commit(c)
		s.pending = append(s.pending, c)
		s.announce(cctx)
		cancel()
	}
	return nil
}

// reload adopts the stored state after a conditional write failed.
func (s *Session) reload(ctx context.Context, c devicestate.Change) {
	log := s.w.log.With("kind", c.Kind, "device_index", c.Device.Index)
	if !c.Kind.IsDevice() {
		st, err := s.w.store.Load(ctx, s.w.cfg.GatewayID)
		if err != nil {
			log.Warn("reloading the gateway state failed", "err", err)
			return
		}
		s.tracker.ResetGateway(st.Gateway)
		log.Info("gateway state was ahead in the store; reloaded")
		return
	}
	d, pending, err := s.w.store.LoadDevice(ctx, s.w.cfg.GatewayID, c.Device.Index)
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
// rest is tried again with the next flush.
func (s *Session) announce(ctx context.Context) {
	for len(s.pending) > 0 {
		c := s.pending[0]
		ev, err := Event(c)
		if err != nil {
			s.w.log.Error("dropping an unannounceable change", "err", err)
			s.pending = s.pending[1:]
			continue
		}
		if err := s.w.pub.Publish(ctx, ev); err != nil {
			if ctx.Err() == nil {
				s.w.log.Warn("publishing failed; retrying later", "event_type", messaging.EventType(ev), "event_id", c.EventID, "err", err)
			}
			return
		}
		typ := messaging.EventType(ev)
		s.w.metrics.events.WithLabelValues(typ).Inc()
		if !c.DetectableAt.IsZero() {
			src := string(c.Source)
			if src == "" {
				src = "gateway"
			}
			s.w.metrics.latency.WithLabelValues(typ, src).Observe(time.Since(c.DetectableAt).Seconds())
		}
		s.w.log.Info("announced", "event_type", typ, "event_id", c.EventID, "device_index", c.Device.Index, "channels", len(c.Device.Channels))
		s.pending = s.pending[1:]
		if err := s.w.store.Announced(ctx, c); err != nil {
			// The flag stays: a later holder publishes it again, same id.
			s.w.log.Warn("clearing the pending flag failed", "event_id", c.EventID, "err", err)
		}
	}
}

func (s *Session) updateGauges() {
	s.w.metrics.setCounts(s.w.cfg.GatewayID, s.tracker.Counts(), s.tracker.Gateway().Reachable)
}
