package app

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Resumer runs the pending configurations (domain.PendingConfiguration:
// runs that found no password to log in with) again through the
// Reporter, as soon as the login budget admits one of their passwords: a
// new version of a password parameter, or the end of the budget's window
// or of a lock. Never a blind re-run: without the budget's leave nothing
// is sent to the gateway.
type Resumer struct {
	conf  *Configurator
	rep   *Reporter
	every time.Duration
	log   *slog.Logger

	mu sync.Mutex
	// A resumed run that failed waits retryAt[gw] (backing off from
	// every up to maxResumeBackoff) before the next.
	retryAt map[string]time.Time
	delay   map[string]time.Duration
	shown   map[string]bool // gateways the gauge shows as pending
}

// maxResumeBackoff bounds the wait between resumed runs that failed.
const maxResumeBackoff = 10 * time.Minute

// NewResumer returns a Resumer called every interval (the wiring's
// periodic part).
func NewResumer(conf *Configurator, rep *Reporter, every time.Duration) *Resumer {
	return &Resumer{conf: conf, rep: rep, every: every, log: conf.opt.Logger,
		retryAt: map[string]time.Time{}, delay: map[string]time.Duration{}, shown: map[string]bool{}}
}

// Resume looks at every pending configuration once and runs the ones the
// login budget admits, one after the other. Its error is the listing's;
// a failed run is reported by the Reporter and waits before the next.
func (r *Resumer) Resume(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	pending, listErr := r.conf.params.PendingConfigurations(ctx)
	seen := map[string]bool{}
	for _, p := range pending {
		if ctx.Err() != nil {
			break
		}
		gw := p.GatewayID
		seen[gw] = !p.Retry
		r.conf.opt.Metrics.CredentialsRejected(gw, !p.Retry)
		now := r.conf.now()
		if now.Before(p.NotBefore) || now.Before(r.retryAt[gw]) {
			continue
		}
		log := r.log.With("gateway_id", gw)
		ok, why, err := r.conf.admits(ctx, p)
		switch {
		case err != nil:
			log.Warn("pending configuration: could not check its passwords", "err", err)
			continue
		case !ok:
			log.Debug("pending configuration waits: the login budget admits none of its passwords", "why", why)
			continue
		}
		log.Info("resuming a pending configuration", "why", why, "pending_since", p.Since)
		req := Request{GatewayID: gw, Address: p.Address, ElasticIP: p.ElasticIP, BootstrapParameter: p.BootstrapParameter}
		fail, err := r.rep.configureAndReport(ctx, req)
		if ctx.Err() != nil {
			break
		}
		if (fail != nil && fail.Credentials == nil) || err != nil {
			// Reported already; what is still pending waits before its
			// next run. One that found no password again waits for the
			// budget only, so a new parameter version is tried at once.
			d := min(max(2*r.delay[gw], r.every), maxResumeBackoff)
			r.delay[gw], r.retryAt[gw] = d, r.conf.now().Add(d)
			log.Warn("resumed configuration failed", "next_try_in", d.String(), "err", err)
			continue
		}
		delete(r.delay, gw)
		delete(r.retryAt, gw)
	}
	if listErr == nil && ctx.Err() == nil {
		for gw := range r.shown {
			if !seen[gw] {
				r.conf.opt.Metrics.CredentialsRejected(gw, false)
			}
		}
		r.shown = map[string]bool{}
		for gw, rejected := range seen {
			if rejected {
				r.shown[gw] = true
			}
		}
	}
	return listErr
}
