package app

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
)

// scriptedRecoverer answers checks from a script; a check blocks until
// its release channel (if any) is closed.
type scriptedRecoverer struct {
	mu        sync.Mutex
	checks    []recovery.Health
	release   []chan struct{}
	calls     int
	recovers  int
	running   int
	maxAtOnce int
}

func (r *scriptedRecoverer) enter() (int, chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running++
	r.maxAtOnce = max(r.maxAtOnce, r.running)
	n := r.calls
	r.calls++
	var rel chan struct{}
	if n < len(r.release) {
		rel = r.release[n]
	}
	return n, rel
}

func (r *scriptedRecoverer) leave() { r.mu.Lock(); r.running--; r.mu.Unlock() }

func (r *scriptedRecoverer) Check(ctx context.Context, gw string) (recovery.Health, error) {
	n, rel := r.enter()
	defer r.leave()
	if rel != nil {
		<-rel
	}
	return r.checks[min(n, len(r.checks)-1)], nil
}

func (r *scriptedRecoverer) Recover(context.Context, string) error {
	r.enter()
	defer r.leave()
	r.mu.Lock()
	r.recovers++
	r.calls-- // counted apart from the checks
	r.mu.Unlock()
	return nil
}

func (r *scriptedRecoverer) SnapshotDue(context.Context) error { return nil }

func (r *scriptedRecoverer) counts() (checks, recovers, atOnce int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls, r.recovers, r.maxAtOnce
}

type oneGateway struct{}

func (oneGateway) IDs(context.Context) ([]string, error) { return []string{"gw-1"}, nil }

// TestUnreachableDuringACheckChecksAgainAtOnce: a GatewayUnreachable that
// arrives while a scheduled check is still running (one that then finds
// the API answering: it asked before the hang) is not dropped: the
// gateway is checked again as soon as that check ends and recovered,
// without waiting for the next schedule tick; asks meanwhile coalesce, and
// one check or recovery runs at a time.
func TestUnreachableDuringACheckChecksAgainAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := newClock(start)
		inc := newIncidents(newMemStore(), &memMailer{}, c)
		first := make(chan struct{})
		rec := &scriptedRecoverer{
			checks: []recovery.Health{
				{GatewayID: "gw-1", APIState: domain.APIOK, CheckedAt: start},
				{GatewayID: "gw-1", APIState: domain.APISilent, APIDetail: "timeout", CheckedAt: start.Add(2 * time.Second)},
			},
			release: []chan struct{}{first},
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s := NewSentinel(ctx, inc, nil, c.Now, slog.New(slog.DiscardHandler))
		s.SetRecoverer(rec, oneGateway{})

		if err := s.CheckAll(ctx); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the scheduled check is waiting on the gateway
		for i := range 3 {
			sig := domain.Signal{ID: "u" + string(rune('1'+i)), At: start.Add(time.Second), Kind: domain.KindGateway,
				Gateway: "gw-1", Action: domain.Raise, Title: "API does not answer"}
			if err := s.Unreachable(ctx, sig); err != nil {
				t.Fatal(err)
			}
		}
		if checks, recovers, _ := rec.counts(); checks != 1 || recovers != 0 {
			t.Fatalf("while the first check runs: %d checks, %d recoveries", checks, recovers)
		}
		close(first)
		s.Wait()
		checks, recovers, atOnce := rec.counts()
		if checks != 2 || recovers != 1 || atOnce != 1 {
			t.Fatalf("%d checks, %d recoveries, %d at once; want 2, 1, 1", checks, recovers, atOnce)
		}
		if !time.Now().Equal(start) {
			t.Fatalf("recovery started after %v, want no wait", time.Since(start))
		}
	})
}

// TestCheckWithoutAsksRunsOnce: a check nobody asked again for ends there.
func TestCheckWithoutAsksRunsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClock(time.Now())
		rec := &scriptedRecoverer{checks: []recovery.Health{{GatewayID: "gw-1", APIState: domain.APIOK, CheckedAt: c.Now()}}}
		s := NewSentinel(context.Background(), newIncidents(newMemStore(), &memMailer{}, c), nil, c.Now, slog.New(slog.DiscardHandler))
		s.SetRecoverer(rec, oneGateway{})
		if err := s.CheckAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.Wait()
		if checks, recovers, _ := rec.counts(); checks != 1 || recovers != 0 {
			t.Fatalf("%d checks, %d recoveries", checks, recovers)
		}
	})
}
