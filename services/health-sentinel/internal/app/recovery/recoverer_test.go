package recovery

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"mediagw/services/health-sentinel/internal/domain"
)

const gw = "gw-1"

type rig struct {
	w   *world
	t   *leaseTable
	rep *reporter
	r   *Recoverer
}

func newRig(t *testing.T, api domain.APIState, withSnaps bool) *rig {
	t.Helper()
	w := newWorld(api)
	tab := newLeaseTable()
	rep := &reporter{}
	var snaps Snapshots
	if withSnaps {
		snaps = snapshots{w}
	}
	r, err := New(Config{
		Gateways: []Gateway{{ID: gw, Address: "203.0.113.7:80", BootstrapPasswordParameter: "/mediagw/gateways/gw-1/BootstrapPassword"}},
		Budget:   domain.DefaultRecoveryBudget(),
		Policy:   domain.SnapshotPolicy{RPO: time.Hour, Keep: 2, MaxAge: 24 * time.Hour},
	}, w, instances{w}, snaps, leases{t: tab, holder: "sentinel-a", d: 30 * time.Second}, rep)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{w: w, t: tab, rep: rep, r: r}
}

func TestISAPIRebootRecoversASickGateway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APISick, false)
		g.w.fixedBy = domain.RecoveryISAPIReboot
		h, err := g.r.Check(t.Context(), gw)
		if err != nil || h.Healthy() || !h.APIAnswers || h.APIState != domain.APISick {
			t.Fatalf("check before: %+v %v", h, err)
		}
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		if got := g.rep.outcomes(); !slices.Equal(got, []string{"isapi-reboot=recovered"}) {
			t.Fatalf("steps %v", got)
		}
		if g.w.isapiBoots != 1 || g.w.ec2Boots != 0 {
			t.Fatalf("isapi reboots %d, ec2 reboots %d", g.w.isapiBoots, g.w.ec2Boots)
		}
		if len(g.rep.recovered) != 1 || g.rep.recovered[0].InstanceID != "i-old" || g.rep.recovered[0].PreviousInstanceID != "i-old" {
			t.Fatalf("recovered %+v", g.rep.recovered)
		}
		if s := g.rep.started[0]; s.Attempt != 1 || s.Kind != StepISAPIReboot || s.Detail == "" {
			t.Fatalf("started %+v", s)
		}
		// Healthy now: a second Recover does nothing.
		if err := g.r.Recover(t.Context(), gw); err != nil || len(g.rep.finished) != 1 {
			t.Fatalf("second recover: %v, steps %v", err, g.rep.outcomes())
		}
	})
}

func TestReplacementAfterRebootsFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APISilent, true)
		g.w.fixedBy = domain.RecoveryReplace
		g.w.snaps = []domain.Snapshot{{ID: "ami-good", GatewayID: gw, Created: time.Now().Add(-time.Hour), Available: true, Healthy: true}}
		start := time.Now()
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		// Silent API: no ISAPI reboot; the EC2 reboot waits its whole step
		// time in vain; the replacement brings it back.
		if got := g.rep.outcomes(); !slices.Equal(got, []string{"ec2-reboot=failed", "replace=recovered"}) {
			t.Fatalf("steps %v", got)
		}
		if took := time.Since(start); took < domain.DefaultRecoveryBudget().StepWaitEC2 {
			t.Fatalf("the EC2 reboot step ended after %s, before its wait", took)
		}
		rec := g.rep.recovered
		if len(rec) != 1 || rec[0].InstanceID != "i-new1" || rec[0].PreviousInstanceID != "i-old" || rec[0].ElasticIP != "203.0.113.7" ||
			rec[0].BootstrapPasswordParameter == "" {
			t.Fatalf("recovered %+v", rec)
		}
		if !slices.Equal(g.w.retired, []string{"i-old"}) || g.w.runs != 1 {
			t.Fatalf("retired %v, runs %d", g.w.retired, g.w.runs)
		}
		if g.t.state(gw).Replacement != nil || g.t.state(gw).Active() {
			t.Fatalf("state after: %+v", g.t.state(gw))
		}
	})
}

func TestBudgetSpentGivesUpOnceAndNeverLoops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APISick, true)
		g.w.snaps = []domain.Snapshot{{ID: "ami-good", Created: time.Now(), Available: true, Healthy: true}}
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		want := []string{"isapi-reboot=failed", "ec2-reboot=failed", "replace=failed"}
		if got := g.rep.outcomes(); !slices.Equal(got, want) {
			t.Fatalf("steps %v, want %v", got, want)
		}
		if len(g.rep.gaveUp) != 1 || len(g.rep.recovered) != 0 {
			t.Fatalf("gave up %v, recovered %v", g.rep.gaveUp, g.rep.recovered)
		}
		// Called again (the next health check): nothing more is tried, nobody is told twice.
		for range 3 {
			if err := g.r.Recover(t.Context(), gw); err != nil {
				t.Fatal(err)
			}
		}
		if len(g.rep.finished) != 3 || len(g.rep.gaveUp) != 1 || g.w.isapiBoots != 1 || g.w.ec2Boots != 1 || g.w.runs != 1 {
			t.Fatalf("after more calls: steps %v, gave up %d, boots %d/%d, runs %d",
				g.rep.outcomes(), len(g.rep.gaveUp), g.w.isapiBoots, g.w.ec2Boots, g.w.runs)
		}
		// A failed replacement leaves the old instance alone.
		if len(g.w.retired) != 0 {
			t.Fatalf("retired %v after a failed replacement", g.w.retired)
		}
		// After the window the budget is whole again.
		time.Sleep(domain.DefaultRecoveryBudget().Window)
		g.w.set(func(w *world) { w.fixedBy = domain.RecoveryISAPIReboot })
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		if got := g.rep.outcomes(); got[len(got)-1] != "isapi-reboot=recovered" {
			t.Fatalf("after the window: %v", got)
		}
	})
}

func TestNoSnapshotNoReplacement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APISilent, true)
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		got := g.rep.outcomes()
		if !slices.Equal(got, []string{"ec2-reboot=failed", "replace=error"}) || g.w.runs != 0 || len(g.rep.gaveUp) != 1 {
			t.Fatalf("steps %v, runs %d, gave up %d", got, g.w.runs, len(g.rep.gaveUp))
		}
		if d := g.rep.finished[1].Detail; d == "" {
			t.Fatal("no detail on the failed replacement")
		}
	})
}

func TestAnotherSentinelHoldsTheLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APISick, false)
		other := leases{t: g.t, holder: "sentinel-b", d: time.Minute}
		if _, ok, _ := other.Acquire(t.Context(), gw); !ok {
			t.Fatal("other could not take the lease")
		}
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		if len(g.rep.started) != 0 || g.w.isapiBoots != 0 {
			t.Fatalf("acted without the lease: %v", g.rep.outcomes())
		}
	})
}

func TestDeadSentinelsReplacementIsContinuedNotRepeated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APISilent, true)
		g.w.snaps = []domain.Snapshot{{ID: "ami-good", Created: time.Now(), Available: true, Healthy: true}}
		// Rungs below are spent: the replacement is next.
		tab := g.t
		tab.items[gw] = &leaseItem{state: domain.RecoveryState{Attempts: []domain.RecoveryAttempt{
			{Action: domain.RecoveryEC2Reboot, Started: time.Now(), Outcome: OutcomeFailed}}}}
		g.w.dieAfterRun = true
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- g.r.Recover(ctx, gw) }()
		synctest.Wait() // blocked in Replace, the new instance saved
		cancel()
		<-done
		st := tab.state(gw)
		if st.Replacement == nil || st.Replacement.NewInstanceID != "i-new1" || st.Replacement.ImageID != "ami-good" {
			t.Fatalf("state after the death: %+v", st)
		}
		// Another sentinel takes over once the lease expires.
		time.Sleep(time.Minute)
		g.w.set(func(w *world) { w.dieAfterRun = false; w.fixedBy = domain.RecoveryReplace })
		rep := &reporter{}
		r2, err := New(g.r.cfg, g.w, instances{g.w}, snapshots{g.w}, leases{t: tab, holder: "sentinel-b", d: 30 * time.Second}, rep)
		if err != nil {
			t.Fatal(err)
		}
		if err := r2.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		if g.w.runs != 1 {
			t.Fatalf("%d instances started: the replacement was repeated", g.w.runs)
		}
		if last := g.w.replaceArgs[len(g.w.replaceArgs)-1]; last == nil || last.NewInstanceID != "i-new1" {
			t.Fatalf("continued with %+v", last)
		}
		if got := rep.outcomes(); !slices.Equal(got, []string{"replace=recovered"}) || rep.recovered[0].InstanceID != "i-new1" {
			t.Fatalf("steps %v recovered %+v", got, rep.recovered)
		}
		if n := tab.state(gw).Count(domain.RecoveryReplace, time.Now(), domain.DefaultRecoveryBudget()); n != 1 {
			t.Fatalf("replacement counted %d times", n)
		}
	})
}

func TestSnapshotSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APIOK, true)
		ctx := t.Context()
		for range 4 {
			if err := g.r.SnapshotDue(ctx); err != nil {
				t.Fatal(err)
			}
			// Twice within the RPO: one snapshot.
			if err := g.r.SnapshotDue(ctx); err != nil {
				t.Fatal(err)
			}
			g.w.set(func(w *world) {
				for i := range w.snaps {
					w.snaps[i].Available = true
				}
			})
			time.Sleep(time.Hour)
		}
		if len(g.w.snaps) != 2 || !slices.Equal(g.w.deleted, []string{"ami-1", "ami-2"}) {
			t.Fatalf("kept %v, deleted %v", g.w.snaps, g.w.deleted)
		}
		// Unhealthy: none taken.
		g.w.set(func(w *world) { w.api = domain.APISick })
		before := g.w.nextID
		if err := g.r.SnapshotDue(ctx); err != nil || g.w.nextID != before {
			t.Fatalf("taken while sick: %v", err)
		}
		// Healthy but a recovery holds the lease: none taken.
		g.w.set(func(w *world) { w.api = domain.APIOK })
		other := leases{t: g.t, holder: "sentinel-b", d: time.Minute}
		l, ok, _ := other.Acquire(ctx, gw)
		if !ok {
			t.Fatal("lease")
		}
		if err := g.r.SnapshotDue(ctx); err != nil || g.w.nextID != before {
			t.Fatalf("taken during a recovery: %v", err)
		}
		// Released but the recovery is unfinished (a replacement under way): none taken.
		_ = other.Save(ctx, l, domain.RecoveryState{Replacement: &domain.Replacement{OldInstanceID: "i-old"}})
		_ = other.Release(ctx, l)
		if err := g.r.SnapshotDue(ctx); err != nil || g.w.nextID != before {
			t.Fatalf("taken with a recovery unfinished: %v", err)
		}
	})
}

func TestRefusedISAPIRebootEndsItsStepAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APISick, false)
		g.w.refuseReboot = true
		g.w.fixedBy = domain.RecoveryEC2Reboot
		start := time.Now()
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		if got := g.rep.outcomes(); !slices.Equal(got, []string{"isapi-reboot=error", "ec2-reboot=recovered"}) {
			t.Fatalf("steps %v", got)
		}
		if took := g.rep.finished[0].Ended.Sub(start); took >= time.Second {
			t.Fatalf("the refused ISAPI reboot's step took %s: it waited for a reboot that was not coming", took)
		}
	})
}

func TestSnapshotPassAndRecoveryExcludeEachOtherInOneProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APISick, true)
		g.w.snaps = []domain.Snapshot{{ID: "ami-good", Created: time.Now(), Available: true, Healthy: true}}
		g.w.fixedBy = domain.RecoveryReplace
		g.w.dieAfterRun = true // the replacement blocks until cancelled
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- g.r.Recover(ctx, gw) }()
		synctest.Wait()
		// The ladder is in its replacement; the gateway looks healthy
		// through the address already. No snapshot is taken meanwhile.
		g.w.set(func(w *world) { w.api = domain.APIOK })
		before := g.w.nextID
		if err := g.r.SnapshotDue(t.Context()); err != nil {
			t.Fatal(err)
		}
		if g.w.nextID != before {
			t.Fatal("a snapshot was taken during a recovery")
		}
		cancel()
		<-done
	})
}

func TestRecoveryWaitsForASnapshotPassOfTheGateway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APIOK, true)
		block := make(chan struct{})
		g.w.takeBlock = block
		done := make(chan error, 1)
		go func() { done <- g.r.SnapshotDue(t.Context()) }()
		synctest.Wait() // the pass is taking the snapshot
		g.w.set(func(w *world) { w.api = domain.APISick })
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		if len(g.rep.started) != 0 {
			t.Fatalf("a recovery started during the snapshot pass: %v", g.rep.outcomes())
		}
		close(block)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// The pass is over: the next call recovers.
		g.w.set(func(w *world) { w.fixedBy = domain.RecoveryISAPIReboot })
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		if got := g.rep.outcomes(); !slices.Equal(got, []string{"isapi-reboot=recovered"}) {
			t.Fatalf("steps %v", got)
		}
	})
}

// TestLadderStartsOnTheCheckJustMade: the Sentinel recovers what its check
// just found silent; the first rung does not wait for another probe of the
// silent API (another CheckTimeout). A check older than freshCheck is not
// trusted: the ladder probes again first.
func TestLadderStartsOnTheCheckJustMade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APISilent, false)
		g.w.fixedBy = domain.RecoveryEC2Reboot
		if _, err := g.r.Check(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		if g.w.ec2Boots != 1 || g.w.probesAtEC2Reboot != 1 {
			t.Fatalf("ec2 reboots %d, probes before it %d; want 1 and only the check's", g.w.ec2Boots, g.w.probesAtEC2Reboot)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		g := newRig(t, domain.APISilent, false)
		g.w.fixedBy = domain.RecoveryEC2Reboot
		if _, err := g.r.Check(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		time.Sleep(freshCheck + time.Second) // the bubble's clock: the check goes stale
		if err := g.r.Recover(t.Context(), gw); err != nil {
			t.Fatal(err)
		}
		if g.w.probesAtEC2Reboot != 2 {
			t.Fatalf("probes before the reboot %d, want the stale check and a new one", g.w.probesAtEC2Reboot)
		}
	})
}
