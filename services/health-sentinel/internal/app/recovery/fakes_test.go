package recovery

import (
	"context"
	"fmt"
	"sync"
	"time"

	"mediagw/services/health-sentinel/internal/domain"
)

// world is an in-memory gateway, its machine, snapshots and leases: the
// app's interfaces as the tests drive them.
type world struct {
	mu       sync.Mutex
	api      domain.APIState // what a probe finds
	bootedAt time.Time
	// fixedBy: the first rung after which the API answers ok ("" never).
	fixedBy     domain.RecoveryAction
	instance    string
	instanceOK  *bool
	eip         string
	isapiBoots  int
	ec2Boots    int
	runs        int // new instances started
	retired     []string
	replaceArgs []*domain.Replacement
	snaps       []domain.Snapshot
	deleted     []string
	nextID      int
	// dieAfterRun: Replace returns ctx's error right after starting the
	// instance (a sentinel dying mid-way).
	dieAfterRun bool
	// refuseReboot: the ISAPI reboot is refused (ErrNotDone).
	refuseReboot bool
	// takeBlock, if set, holds Take until closed.
	takeBlock chan struct{}
	// probes counts the API probes; probesAtEC2Reboot is the count when
	// the first EC2 reboot was asked for.
	probes, probesAtEC2Reboot int
}

func newWorld(api domain.APIState) *world {
	return &world{api: api, bootedAt: time.Now().Add(-24 * time.Hour), instance: "i-old", eip: "203.0.113.7"}
}

func (w *world) set(f func(w *world)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w)
}

func (w *world) Probe(ctx context.Context, gw string) Probe {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.probes++
	return Probe{State: w.api, Detail: string(w.api), BootedAt: w.bootedAt}
}

func (w *world) fixedAfter(a domain.RecoveryAction) {
	if w.fixedBy == a {
		w.api = domain.APIOK
	}
}

func (w *world) Reboot(ctx context.Context, gw string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.api == domain.APISilent {
		return fmt.Errorf("no answer")
	}
	if w.refuseReboot {
		return fmt.Errorf("refused: %w", ErrNotDone)
	}
	w.isapiBoots++
	w.bootedAt = time.Now()
	w.fixedAfter(domain.RecoveryISAPIReboot)
	return nil
}

type instances struct{ *world }

func (i instances) Status(ctx context.Context, gw string) (InstanceStatus, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	return InstanceStatus{InstanceID: i.instance, OK: i.instanceOK, Detail: "fake", ElasticIP: i.eip}, nil
}

func (i instances) Reboot(ctx context.Context, gw string) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.ec2Boots++
	if i.ec2Boots == 1 {
		i.probesAtEC2Reboot = i.probes
	}
	i.bootedAt = time.Now()
	i.fixedAfter(domain.RecoveryEC2Reboot)
	return i.instance, nil
}

func (i instances) Replace(ctx context.Context, gw, image string, prev *domain.Replacement, save func(domain.Replacement) error) (domain.Replacement, error) {
	i.mu.Lock()
	i.replaceArgs = append(i.replaceArgs, prev)
	var r domain.Replacement
	if prev != nil && prev.NewInstanceID != "" {
		r = *prev
	} else {
		i.runs++
		i.nextID++
		r = domain.Replacement{OldInstanceID: i.instance, NewInstanceID: fmt.Sprintf("i-new%d", i.nextID), ImageID: image}
	}
	die := i.dieAfterRun
	i.mu.Unlock()
	if err := save(r); err != nil {
		return r, err
	}
	if die {
		<-ctx.Done()
		return r, ctx.Err()
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	r.ElasticIP = i.eip
	i.instance = r.NewInstanceID
	i.bootedAt = time.Now()
	i.fixedAfter(domain.RecoveryReplace)
	return r, nil
}

func (i instances) Retire(ctx context.Context, gw string, r domain.Replacement) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.retired = append(i.retired, r.OldInstanceID)
	return nil
}

type snapshots struct{ *world }

func (s snapshots) List(ctx context.Context, gw string) ([]domain.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]domain.Snapshot(nil), s.snaps...), nil
}

func (s snapshots) Take(ctx context.Context, gw string) (domain.Snapshot, error) {
	s.mu.Lock()
	block := s.takeBlock
	s.mu.Unlock()
	if block != nil {
		<-block
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	sn := domain.Snapshot{ID: fmt.Sprintf("ami-%d", s.nextID), GatewayID: gw, InstanceID: s.instance, Created: time.Now(), Healthy: true}
	s.snaps = append(s.snaps, sn)
	return sn, nil
}

func (s snapshots) Delete(ctx context.Context, sn domain.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, sn.ID)
	for i, x := range s.snaps {
		if x.ID == sn.ID {
			s.snaps = append(s.snaps[:i], s.snaps[i+1:]...)
			break
		}
	}
	return nil
}

// leases is an in-memory leases table shared by several holders.
type leaseTable struct {
	mu    sync.Mutex
	items map[string]*leaseItem
}

type leaseItem struct {
	holder  string
	token   int64
	expires time.Time
	state   domain.RecoveryState
}

func newLeaseTable() *leaseTable { return &leaseTable{items: map[string]*leaseItem{}} }

type leases struct {
	t      *leaseTable
	holder string
	d      time.Duration
}

func (l leases) Duration() time.Duration { return l.d }

func (l leases) Acquire(ctx context.Context, gw string) (Lease, bool, error) {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	it := l.t.items[gw]
	if it == nil {
		it = &leaseItem{}
		l.t.items[gw] = it
	}
	if it.holder != "" && it.holder != l.holder && time.Now().Before(it.expires) {
		return Lease{}, false, nil
	}
	it.holder, it.token, it.expires = l.holder, it.token+1, time.Now().Add(l.d)
	return Lease{ID: gw, Token: it.token, Expires: it.expires, State: it.state}, true, nil
}

func (l leases) mine(le Lease) (*leaseItem, error) {
	it := l.t.items[le.ID]
	if it == nil || it.holder != l.holder || it.token != le.Token {
		return nil, ErrLeaseLost
	}
	return it, nil
}

func (l leases) Renew(ctx context.Context, le Lease) (Lease, error) {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	it, err := l.mine(le)
	if err != nil {
		return le, err
	}
	it.expires = time.Now().Add(l.d)
	le.Expires = it.expires
	return le, nil
}

func (l leases) Save(ctx context.Context, le Lease, s domain.RecoveryState) error {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	it, err := l.mine(le)
	if err != nil {
		return err
	}
	it.state = s
	return nil
}

func (l leases) Release(ctx context.Context, le Lease) error {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	if it, err := l.mine(le); err == nil {
		it.expires = time.Time{}
	}
	return nil
}

func (t *leaseTable) state(gw string) domain.RecoveryState {
	t.mu.Lock()
	defer t.mu.Unlock()
	if it := t.items[gw]; it != nil {
		return it.state
	}
	return domain.RecoveryState{}
}

// reporter records what it is told.
type reporter struct {
	mu        sync.Mutex
	started   []Step
	finished  []Step
	recovered []Recovered
	gaveUp    []string
}

func (r *reporter) StepStarted(ctx context.Context, gw string, s Step) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = append(r.started, s)
	return nil
}

func (r *reporter) StepFinished(ctx context.Context, gw string, s Step) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = append(r.finished, s)
	return nil
}

func (r *reporter) Recovered(ctx context.Context, rec Recovered) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recovered = append(r.recovered, rec)
	return nil
}

func (r *reporter) GaveUp(ctx context.Context, gw, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gaveUp = append(r.gaveUp, reason)
	return nil
}

func (r *reporter) outcomes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.finished {
		out = append(out, string(s.Kind)+"="+s.Outcome)
	}
	return out
}
