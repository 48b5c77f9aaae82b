package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"mediagw/services/health-sentinel/internal/domain"
)

// Gateway is one gateway the Recoverer looks after.
type Gateway struct {
	ID string
	// Address is where its ISAPI answers (host[:port]), for Recovered.
	Address string
	// BootstrapPasswordParameter is the SSM parameter of its factory
	// password, for Recovered (a replacement may come up with it).
	BootstrapPasswordParameter string
}

// Config tunes a Recoverer.
type Config struct {
	Gateways []Gateway
	Budget   domain.RecoveryBudget
	Policy   domain.SnapshotPolicy
	// CheckTimeout bounds each look at the API and at the instance (default 15 s).
	CheckTimeout time.Duration
	// PollInterval: how often a rung looks whether the gateway is back (default 5 s).
	PollInterval time.Duration
	// BootSlack: a boot this long before a reboot was asked for still
	// counts as that reboot (clock and uptime rounding; default 2 s).
	BootSlack time.Duration
	Now       func() time.Time
	Logger    *slog.Logger
}

// Recoverer checks gateways, runs the recovery ladder and takes snapshots.
type Recoverer struct {
	cfg       Config
	api       API
	instances Instances
	snapshots Snapshots // nil: no snapshots (local)
	leases    Leases
	rep       Reporter
	log       *slog.Logger

	mu      sync.Mutex
	running map[string]bool // gateways whose ladder this process runs now
	// checked is each gateway's last unhealthy Check: the ladder that
	// starts right after it (the Sentinel recovers what its check found
	// sick) acts on it rather than spend another CheckTimeout on a silent
	// API before the first rung.
	checked map[string]checkResult
}

type checkResult struct {
	h    Health
	inst InstanceStatus
}

// freshCheck: how old an unhealthy Check may be for the ladder to start
// on it; older, the ladder checks again.
const freshCheck = 5 * time.Second

// New returns a Recoverer over its adapters; snaps may be nil (no
// snapshots: replacements start from nothing, SnapshotDue does nothing).
func New(cfg Config, api API, inst Instances, snaps Snapshots, leases Leases, rep Reporter) (*Recoverer, error) {
	if err := cfg.Budget.Validate(); err != nil {
		return nil, err
	}
	if snaps != nil {
		if err := cfg.Policy.Validate(); err != nil {
			return nil, err
		}
	}
	if api == nil || inst == nil || leases == nil || rep == nil {
		return nil, errors.New("recovery: API, Instances, Leases and Reporter are required")
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 15 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.BootSlack <= 0 {
		cfg.BootSlack = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Recoverer{cfg: cfg, api: api, instances: inst, snapshots: snaps, leases: leases, rep: rep,
		log: cfg.Logger, running: map[string]bool{}, checked: map[string]checkResult{}}, nil
}

// GatewayIDs are the gateways looked after, in the configured order.
func (r *Recoverer) GatewayIDs() []string {
	ids := make([]string, 0, len(r.cfg.Gateways))
	for _, g := range r.cfg.Gateways {
		ids = append(ids, g.ID)
	}
	return ids
}

func (r *Recoverer) gateway(id string) (Gateway, bool) {
	for _, g := range r.cfg.Gateways {
		if g.ID == id {
			return g, true
		}
	}
	return Gateway{}, false
}

// Check runs one health check of gatewayID and takes no action: the API
// and the instance are looked at together, each within CheckTimeout.
func (r *Recoverer) Check(ctx context.Context, gatewayID string) (Health, error) {
	h, _, inst, err := r.check(ctx, gatewayID)
	r.mu.Lock()
	delete(r.checked, gatewayID)
	if err == nil && !h.Healthy() {
		r.checked[gatewayID] = checkResult{h: h, inst: inst}
	}
	r.mu.Unlock()
	return h, err
}

// recentCheck takes gw's last unhealthy Check if it is fresh (once).
func (r *Recoverer) recentCheck(gw string) (checkResult, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.checked[gw]
	delete(r.checked, gw)
	if !ok || r.cfg.Now().Sub(c.h.CheckedAt) > freshCheck {
		return checkResult{}, false
	}
	return c, true
}

func (r *Recoverer) check(ctx context.Context, gatewayID string) (Health, Probe, InstanceStatus, error) {
	if _, ok := r.gateway(gatewayID); !ok {
		return Health{}, Probe{}, InstanceStatus{}, fmt.Errorf("recovery: unknown gateway %q", gatewayID)
	}
	var (
		wg      sync.WaitGroup
		p       Probe
		st      InstanceStatus
		instErr error
	)
	wg.Go(func() {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CheckTimeout)
		defer cancel()
		p = r.api.Probe(cctx, gatewayID)
	})
	wg.Go(func() {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CheckTimeout)
		defer cancel()
		st, instErr = r.instances.Status(cctx, gatewayID)
	})
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Health{}, p, st, err
	}
	h := Health{GatewayID: gatewayID, APIAnswers: p.State == domain.APIOK || p.State == domain.APISick,
		APIState: p.State, APIDetail: p.Detail, InstanceID: st.InstanceID, InstanceOK: st.OK,
		InstanceDetail: st.Detail, CheckedAt: r.cfg.Now()}
	if instErr != nil {
		// The EC2 API failing says nothing of the instance: no verdict.
		h.InstanceOK, h.InstanceDetail = nil, "instance status unknown: "+instErr.Error()
	}
	return h, p, st, nil
}

func ladderHealth(h Health) domain.RecoveryHealth {
	return domain.RecoveryHealth{API: h.APIState, InstanceImpaired: h.InstanceOK != nil && !*h.InstanceOK}
}

// Recover runs or continues the ladder for gatewayID under its lease; it
// returns when the gateway is healthy, the budget is spent (GaveUp told
// once), another sentinel holds the lease, or ctx ends. Every rung is
// recorded on the lease before it starts, so that it counts against the
// budget even if this sentinel dies during it.
func (r *Recoverer) Recover(ctx context.Context, gatewayID string) error {
	g, ok := r.gateway(gatewayID)
	if !ok {
		return fmt.Errorf("recovery: unknown gateway %q", gatewayID)
	}
	done, ok := r.mark(gatewayID)
	if !ok {
		return nil // this process is on it already (its ladder, or a snapshot pass of it)
	}
	defer done()

	l, ok, err := r.leases.Acquire(ctx, gatewayID)
	if err != nil {
		return fmt.Errorf("recovery of %s: %w", gatewayID, err)
	}
	if !ok {
		r.log.InfoContext(ctx, "recovery: another sentinel holds the gateway's lease", "gateway", gatewayID)
		return nil
	}
	held := &heldLease{l: l, leases: r.leases, now: r.cfg.Now}
	lctx, stop := held.keep(ctx, r.log)
	defer func() {
		stop()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.leases.Release(rctx, held.get()); err != nil {
			r.log.WarnContext(ctx, "recovery: releasing the lease", "gateway", gatewayID, "err", err)
		}
	}()
	err = r.ladder(lctx, g, held)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && lctx.Err() != nil && held.lost() {
		return fmt.Errorf("recovery of %s: %w", gatewayID, ErrLeaseLost)
	}
	return err
}

func (r *Recoverer) ladder(ctx context.Context, g Gateway, held *heldLease) error {
	recent, haveRecent := r.recentCheck(g.ID)
	for {
		st := held.get().State
		now := r.cfg.Now()
		st.Prune(now, r.cfg.Budget)
		var (
			h    Health
			inst InstanceStatus
			err  error
		)
		if haveRecent {
			h, inst, haveRecent = recent.h, recent.inst, false
		} else if h, _, inst, err = r.check(ctx, g.ID); err != nil {
			return err
		}
		if st.Replacement != nil && st.ReplacementStale(now, r.cfg.Budget) {
			r.log.WarnContext(ctx, "recovery: a stale replacement is abandoned; its instances are left for people to look at",
				"gateway", g.ID, "old_instance", st.Replacement.OldInstanceID, "new_instance", st.Replacement.NewInstanceID)
			st.Replacement = nil
			closeOpen(&st, domain.RecoveryReplace, OutcomeFailed)
			if err := held.save(ctx, st); err != nil {
				return err
			}
		}
		action, reason := domain.NextRecoveryAction(ladderHealth(h), st, r.cfg.Budget, now)
		r.log.InfoContext(ctx, "recovery: next", "gateway", g.ID, "action", action, "reason", reason,
			"api", h.APIState, "instance_ok", okText(h.InstanceOK))
		switch action {
		case domain.RecoveryNone, domain.RecoveryGivenUp:
			// An attempt left open by a sentinel that died: the gateway's
			// state now is its outcome.
			if closeOpen(&st, "", "") {
				if err := held.save(ctx, st); err != nil {
					return err
				}
			}
			return nil
		case domain.RecoveryGiveUp:
			st.GaveUpAt = now
			if err := held.save(ctx, st); err != nil {
				return err
			}
			if err := r.rep.GaveUp(ctx, g.ID, reason); err != nil {
				r.log.WarnContext(ctx, "recovery: reporting give-up", "gateway", g.ID, "err", err)
			}
			return nil
		}
		done, err := r.step(ctx, g, held, &st, action, reason, h, inst)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// closeOpen gives attempts without an outcome one: outcome if set, else
// OutcomeFailed for kind (or any kind when kind is ""). It reports whether
// any was closed.
func closeOpen(st *domain.RecoveryState, kind domain.RecoveryAction, outcome string) bool {
	if outcome == "" {
		outcome = OutcomeFailed
	}
	closed := false
	for i, a := range st.Attempts {
		if a.Outcome == "" && (kind == "" || a.Action == kind) {
			st.Attempts[i].Outcome = outcome
			closed = true
		}
	}
	return closed
}

var stepKinds = map[domain.RecoveryAction]StepKind{
	domain.RecoveryISAPIReboot: StepISAPIReboot,
	domain.RecoveryEC2Reboot:   StepEC2Reboot,
	domain.RecoveryReplace:     StepReplace,
}

// step runs one rung, bounded by its wait; done: the gateway is healthy
// again (Recovered told).
func (r *Recoverer) step(ctx context.Context, g Gateway, held *heldLease, st *domain.RecoveryState,
	action domain.RecoveryAction, reason string, before Health, inst InstanceStatus) (done bool, err error) {
	now := r.cfg.Now()
	continuing := action == domain.RecoveryReplace && st.Replacement != nil
	if !continuing {
		closeOpen(st, "", "")
		st.Attempts = append(st.Attempts, domain.RecoveryAttempt{Action: action, Started: now})
	}
	// Written before anything is done: the attempt is spent even if this
	// sentinel dies now.
	if err := held.save(ctx, *st); err != nil {
		return false, err
	}
	step := Step{Kind: stepKinds[action], Attempt: st.Count(action, now, r.cfg.Budget), Started: now, Detail: reason}
	if continuing {
		step.Detail = reason + fmt.Sprintf(" (new instance %s)", st.Replacement.NewInstanceID)
	}
	if err := r.rep.StepStarted(ctx, g.ID, step); err != nil {
		r.log.WarnContext(ctx, "recovery: reporting a step", "gateway", g.ID, "err", err)
	}

	sctx, cancel := context.WithTimeout(ctx, r.cfg.Budget.StepWait(action))
	defer cancel()
	rec, outcome, detail := r.run(sctx, g, held, st, action, before, inst, now)
	if ctx.Err() != nil {
		// Stopped or lease lost: the attempt stays open for whoever continues.
		return false, ctx.Err()
	}
	for i := range st.Attempts {
		if st.Attempts[i].Outcome == "" && st.Attempts[i].Action == action {
			st.Attempts[i].Outcome = outcome
		}
	}
	if action == domain.RecoveryReplace {
		// Finished or failed: not continued again either way (a failed
		// one leaves its instances for people; the budget decides what is next).
		st.Replacement = nil
	}
	if err := held.save(ctx, *st); err != nil {
		return false, err
	}
	step.Ended, step.Outcome, step.Detail = r.cfg.Now(), outcome, detail
	if err := r.rep.StepFinished(ctx, g.ID, step); err != nil {
		r.log.WarnContext(ctx, "recovery: reporting a step", "gateway", g.ID, "err", err)
	}
	r.log.InfoContext(ctx, "recovery: step finished", "gateway", g.ID, "step", step.Kind, "outcome", outcome, "detail", detail,
		"took", step.Ended.Sub(step.Started).String())
	if outcome != OutcomeRecovered {
		return false, nil
	}
	if err := r.rep.Recovered(ctx, *rec); err != nil {
		r.log.WarnContext(ctx, "recovery: reporting recovery", "gateway", g.ID, "err", err)
	}
	return true, nil
}

// run carries out one rung within ctx (its step wait).
func (r *Recoverer) run(ctx context.Context, g Gateway, held *heldLease, st *domain.RecoveryState,
	action domain.RecoveryAction, before Health, inst InstanceStatus, asked time.Time) (*Recovered, string, string) {
	rec := &Recovered{GatewayID: g.ID, Address: g.Address, ElasticIP: inst.ElasticIP, InstanceID: inst.InstanceID,
		PreviousInstanceID: inst.InstanceID, BootstrapPasswordParameter: g.BootstrapPasswordParameter}
	switch action {
	case domain.RecoveryISAPIReboot:
		if err := r.api.Reboot(ctx, g.ID); err != nil {
			if errors.Is(err, ErrNotDone) {
				return nil, OutcomeError, fmt.Sprintf("the ISAPI reboot was not done: %v", err)
			}
			// The answer may be lost to the reboot itself: the wait decides.
			r.log.WarnContext(ctx, "recovery: ISAPI reboot request", "gateway", g.ID, "err", err)
		}
		return r.awaitBack(ctx, g, rec, asked, true, "after the ISAPI reboot")
	case domain.RecoveryEC2Reboot:
		id, err := r.instances.Reboot(ctx, g.ID)
		if err != nil {
			return nil, OutcomeError, fmt.Sprintf("the instance reboot could not be asked for: %v", err)
		}
		rec.InstanceID, rec.PreviousInstanceID = id, id
		return r.awaitBack(ctx, g, rec, asked, true, fmt.Sprintf("after rebooting instance %s", id))
	default:
		return r.replace(ctx, g, held, st, rec)
	}
}

func (r *Recoverer) replace(ctx context.Context, g Gateway, held *heldLease, st *domain.RecoveryState, rec *Recovered) (*Recovered, string, string) {
	imageID := ""
	if st.Replacement != nil {
		imageID = st.Replacement.ImageID
	}
	if imageID == "" && r.snapshots != nil {
		snaps, err := r.snapshots.List(ctx, g.ID)
		if err != nil {
			return nil, OutcomeError, fmt.Sprintf("the snapshots could not be listed: %v", err)
		}
		rp, ok := domain.NewestRestorePoint(snaps)
		if !ok {
			return nil, OutcomeError, "no snapshot taken while the gateway was healthy is available to replace it from"
		}
		imageID = rp.ID
	}
	save := func(rp domain.Replacement) error {
		if rp.ImageID == "" {
			rp.ImageID = imageID
		}
		st.Replacement = &rp
		return held.save(ctx, *st)
	}
	rp, err := r.instances.Replace(ctx, g.ID, imageID, st.Replacement, save)
	if err != nil {
		return nil, OutcomeError, fmt.Sprintf("the replacement could not be made: %v", err)
	}
	if err := save(rp); err != nil {
		return nil, OutcomeError, fmt.Sprintf("the replacement could not be recorded: %v", err)
	}
	rec.InstanceID, rec.PreviousInstanceID, rec.ElasticIP = rp.NewInstanceID, rp.OldInstanceID, rp.ElasticIP
	if rp.Address != "" {
		rec.Address = rp.Address
	}
	// The address now leads to the new machine: any answer is its.
	back, outcome, detail := r.awaitBack(ctx, g, rec, time.Time{}, false,
		fmt.Sprintf("on the new instance %s (from %s)", rp.NewInstanceID, rp.ImageID))
	if outcome != OutcomeRecovered {
		return back, outcome, detail + fmt.Sprintf("; the old instance %s is left as it is", rp.OldInstanceID)
	}
	if err := r.instances.Retire(ctx, g.ID, rp); err != nil {
		// The gateway is back; the old instance is left over. Reported
		// in the step, not a reason to fail it.
		detail += fmt.Sprintf("; the old instance %s could not be terminated: %v", rp.OldInstanceID, err)
	} else {
		detail += fmt.Sprintf("; the old instance %s was terminated", rp.OldInstanceID)
	}
	return back, outcome, detail
}

// awaitBack polls the gateway until it is healthy (and, when rebooted is
// asked, has booted since asked) or ctx ends.
func (r *Recoverer) awaitBack(ctx context.Context, g Gateway, rec *Recovered, asked time.Time, rebooted bool, what string) (*Recovered, string, string) {
	last := "no answer yet"
	for {
		h, p, inst, err := r.check(ctx, g.ID)
		if err == nil {
			fresh := !rebooted || p.BootedAt.IsZero() || !p.BootedAt.Before(asked.Add(-r.cfg.BootSlack))
			if h.Healthy() && fresh {
				if inst.InstanceID != "" {
					rec.InstanceID = inst.InstanceID
				}
				if inst.ElasticIP != "" {
					rec.ElasticIP = inst.ElasticIP
				}
				return rec, OutcomeRecovered, "the gateway answers again " + what
			}
			last = fmt.Sprintf("API %s (%s), instance %s", h.APIState, h.APIDetail, h.InstanceDetail)
			if h.Healthy() && !fresh {
				last = "the API answers but has not rebooted yet"
			}
		}
		t := time.NewTimer(r.cfg.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, OutcomeFailed, fmt.Sprintf("the gateway did not come back %s within the step's time; last seen: %s", what, last)
		case <-t.C:
		}
	}
}

// heldLease is a lease being kept: renewed every third of its duration
// until stopped or lost.
type heldLease struct {
	leases Leases
	now    func() time.Time
	mu     sync.Mutex
	l      Lease
	isLost bool
}

func (h *heldLease) get() Lease {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.l
}

func (h *heldLease) lost() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.isLost
}

func (h *heldLease) save(ctx context.Context, s domain.RecoveryState) error {
	l := h.get()
	if err := h.leases.Save(ctx, l, s); err != nil {
		return fmt.Errorf("recovery: saving the ladder's state: %w", err)
	}
	h.mu.Lock()
	h.l.State = s
	h.mu.Unlock()
	return nil
}

// keep renews the lease until stop is called; the returned context ends
// when the lease is lost (or could not be renewed before it expired).
func (h *heldLease) keep(ctx context.Context, log *slog.Logger) (context.Context, func()) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		every := h.leases.Duration() / 3
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			cur := h.get()
			nl, err := h.leases.Renew(lctx, cur)
			if err == nil {
				h.mu.Lock()
				h.l.Token, h.l.Expires = nl.Token, nl.Expires
				h.mu.Unlock()
				continue
			}
			if lctx.Err() != nil {
				return
			}
			log.WarnContext(lctx, "recovery: renewing the lease", "lease", cur.ID, "err", err)
			if errors.Is(err, ErrLeaseLost) || !h.now().Add(every).Before(cur.Expires) {
				h.mu.Lock()
				h.isLost = true
				h.mu.Unlock()
				cancel()
				return
			}
		}
	}()
	return lctx, func() { cancel(); <-done }
}

// SnapshotDue runs one pass of the snapshot schedule: for each gateway, if
// no recovery holds or left its lease mid-way and the gateway is healthy
// now, a snapshot is taken when the RPO says so, and the retention deletes
// what it lets go. A gateway's failure does not stop the others'.
func (r *Recoverer) SnapshotDue(ctx context.Context) error {
	if r.snapshots == nil {
		return nil
	}
	var errs []error
	for _, g := range r.cfg.Gateways {
		if err := r.snapshotOne(ctx, g.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mark marks gatewayID as worked on by this process (its ladder or a
// snapshot pass); false when it already is. done removes the mark.
func (r *Recoverer) mark(gatewayID string) (done func(), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[gatewayID] {
		return nil, false
	}
	r.running[gatewayID] = true
	return func() {
		r.mu.Lock()
		delete(r.running, gatewayID)
		r.mu.Unlock()
	}, true
}

func (r *Recoverer) snapshotOne(ctx context.Context, gatewayID string) error {
	// In this process the lease alone does not exclude a recovery (it is
	// the same holder's): the running mark does, both ways.
	done, ok := r.mark(gatewayID)
	if !ok {
		return nil
	}
	defer done()
	l, ok, err := r.leases.Acquire(ctx, gatewayID)
	if err != nil {
		return fmt.Errorf("snapshots of %s: %w", gatewayID, err)
	}
	if !ok {
		r.log.InfoContext(ctx, "snapshots: skipped, the gateway's lease is held (a recovery runs)", "gateway", gatewayID)
		return nil
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := r.leases.Release(rctx, l); err != nil {
			r.log.WarnContext(ctx, "snapshots: releasing the lease", "gateway", gatewayID, "err", err)
		}
	}()
	if l.State.Active() {
		r.log.InfoContext(ctx, "snapshots: skipped, a recovery is unfinished", "gateway", gatewayID)
		return nil
	}
	snaps, err := r.snapshots.List(ctx, gatewayID)
	if err != nil {
		return fmt.Errorf("snapshots of %s: %w", gatewayID, err)
	}
	now := r.cfg.Now()
	var errs []error
	if domain.SnapshotDue(snaps, r.cfg.Policy, now) {
		h, err := r.Check(ctx, gatewayID)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("snapshots of %s: %w", gatewayID, err))
		case !h.Healthy():
			r.log.InfoContext(ctx, "snapshots: not taken, the gateway is not healthy", "gateway", gatewayID,
				"api", h.APIState, "instance_ok", okText(h.InstanceOK))
		default:
			s, err := r.snapshots.Take(ctx, gatewayID)
			if err != nil {
				errs = append(errs, fmt.Errorf("snapshot of %s: %w", gatewayID, err))
			} else {
				r.log.InfoContext(ctx, "snapshots: taken", "gateway", gatewayID, "snapshot", s.ID, "instance", s.InstanceID)
				snaps = append(snaps, s)
			}
		}
	}
	for _, s := range domain.SnapshotsToDelete(snaps, r.cfg.Policy, now) {
		if err := r.snapshots.Delete(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("deleting snapshot %s of %s: %w", s.ID, gatewayID, err))
			continue
		}
		r.log.InfoContext(ctx, "snapshots: deleted", "gateway", gatewayID, "snapshot", s.ID, "created", s.Created)
	}
	return errors.Join(errs...)
}

// okText shows an instance verdict in logs: true, false or unknown.
func okText(ok *bool) string {
	if ok == nil {
		return "unknown"
	}
	if *ok {
		return "true"
	}
	return "false"
}
