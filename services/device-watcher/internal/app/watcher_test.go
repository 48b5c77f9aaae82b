package app_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/device-watcher/internal/app"
	"mediagw/services/device-watcher/internal/domain"
)

// The tests run in a synctest bubble: the watcher's timers (poll ticks,
// lease renewals, retry waits) run on the bubble's clock, which moves on
// whenever every goroutine waits. A test waits on what the fakes report.

var camera = domain.Sighting{Index: "D1", Name: "Gate", Online: true, Channels: []domain.Channel{{ID: 1, MediaURL: "rtsp://gw:554/1"}}}

func config() app.Config {
	return app.Config{GatewayID: "gw-1", PollInterval: time.Second, OfflineHysteresis: 2 * time.Second, UnreachableAfter: time.Second}
}

// run starts w.Run; the returned function cancels it and returns its error.
func run(t *testing.T, w *app.Watcher) (done <-chan error, stop func() error) {
	ctx, cancel := context.WithCancel(t.Context())
	ch := make(chan error, 1)
	go func() { ch <- w.Run(ctx) }()
	return ch, func() error { cancel(); return <-ch }
}

// Every fault but a misconfiguration is retried inside the watcher: a
// lease store that fails, a commit that fails, a publish that fails. The
// change is announced once all passed, exactly once, and Run goes on.
func TestTransientFaultsAreRetriedInsideTheWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway(camera)
		st := &fakeStore{commitErrs: []error{errors.New("throttled")}, loadErrs: []error{errors.New("connection reset")}}
		leases := newFakeLeases(errors.New("connection reset"), errors.New("throttled"))
		pub := newFakePublisher(errors.New("503 from SNS"))
		m := &fakeMetrics{}
		w := app.New(config(), gw, st, leases, pub, m, discard)
		done, stop := run(t, w)

		ev := <-pub.published
		if on, ok := ev.(*eventsv1.DeviceOnline); !ok || on.DeviceIndex != "D1" || on.GatewayId != "gw-1" || len(on.Channels) != 1 {
			t.Fatalf("event %v", ev)
		}
		// Two more polls, and nothing more to announce.
		for range 2 {
			<-gw.polls
		}
		synctest.Wait()
		select {
		case ev := <-pub.published:
			t.Fatalf("announced again: %v", ev)
		case err := <-done:
			t.Fatalf("Run returned %v while faults were passing", err)
		default:
		}
		if len(st.committed) != 1 || len(st.announced) != 1 {
			t.Fatalf("committed %d, announced %d, want 1 and 1", len(st.committed), len(st.announced))
		}
		if m.storeErrs["error"] != 4 { // 2 lease attempts, 1 load, 1 commit
			t.Fatalf("store errors %v", m.storeErrs)
		}
		if err := stop(); err != nil {
			t.Fatalf("Run on shutdown: %v", err)
		}
		if l := <-leases.released; l.Token != 1 {
			t.Fatalf("released %+v", l)
		}
	})
}

// A table or topic that is missing or refused cannot be retried away: Run
// returns it (the process stops, the orchestrator restarts it), and lets
// go of the lease it held.
func TestMisconfigurationStopsTheWatcher(t *testing.T) {
	misconfigured := fmt.Errorf("table mediagw-leases: %w", domain.ErrMisconfigured)
	for name, tc := range map[string]struct {
		leases   func(*fakeLeases)
		store    func(*fakeStore)
		pub      []error
		released bool
	}{
		"acquire":   {leases: func(l *fakeLeases) { l.acquireErrs = []error{misconfigured} }},
		"renew":     {leases: func(l *fakeLeases) { l.renewErrs = []error{misconfigured} }, released: true},
		"load":      {store: func(s *fakeStore) { s.loadErrs = []error{misconfigured} }, released: true},
		"commit":    {store: func(s *fakeStore) { s.commitErrs = []error{misconfigured} }, released: true},
		"announced": {store: func(s *fakeStore) { s.announceErr = misconfigured }, released: true},
		"publish":   {pub: []error{misconfigured}, released: true},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gw := newFakeGateway(camera)
				st := &fakeStore{}
				leases := newFakeLeases()
				if tc.leases != nil {
					tc.leases(leases)
				}
				if tc.store != nil {
					tc.store(st)
				}
				w := app.New(config(), gw, st, leases, newFakePublisher(tc.pub...), nil, discard)
				done, _ := run(t, w)
				err := <-done
				if !errors.Is(err, domain.ErrMisconfigured) || !errors.Is(err, misconfigured) {
					t.Fatalf("Run returned %v, want the misconfiguration", err)
				}
				select {
				case <-leases.released:
					if !tc.released {
						t.Fatal("released a lease it never held")
					}
				default:
					if tc.released {
						t.Fatal("the lease was not released")
					}
				}
			})
		})
	}
}

// A lost lease ends the watch, not the watcher: it competes for the lease
// again.
func TestLostLeaseIsCompetedForAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway(camera)
		st := &fakeStore{commitErrs: []error{fmt.Errorf("store: %w", domain.ErrLeaseLost)}}
		leases := newFakeLeases()
		pub := newFakePublisher()
		m := &fakeMetrics{}
		w := app.New(config(), gw, st, leases, pub, m, discard)
		_, stop := run(t, w)
		<-leases.acquired
		<-leases.acquired
		<-pub.published // stored and announced under the second lease
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(m.leaseHeld); got != "[true false true false]" {
			t.Fatalf("lease held %s", got)
		}
		if m.storeErrs["lease_lost"] != 1 {
			t.Fatalf("store errors %v", m.storeErrs)
		}
	})
}

// GatewayConfigured reaches the watcher of its gateway: the gateway looks
// at its password again, and a watcher that does not hold the lease notes the
// configuration on it for the holder. A gateway not watched here is no
// error.
func TestGatewayConfiguredReachesTheWatcherOfItsGateway(t *testing.T) {
	gw := newFakeGateway(camera)
	leases := newFakeLeases()
	w := app.New(config(), gw, &fakeStore{}, leases, newFakePublisher(), nil, discard)
	ws := app.NewWatchers(discard, w)
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := ws.GatewayConfigured(context.Background(), "gw-elsewhere", at); err != nil {
		t.Fatalf("unknown gateway: %v", err)
	}
	if gw.reconfigured != 0 || len(leases.noted) != 0 {
		t.Fatal("an unknown gateway's configuration reached a watcher")
	}
	if err := ws.GatewayConfigured(context.Background(), "gw-1", at); err != nil {
		t.Fatal(err)
	}
	if gw.reconfigured != 1 || len(leases.noted) != 1 || !leases.noted[0].Equal(at) {
		t.Fatalf("reconfigured %v, noted %v", gw.reconfigured, leases.noted)
	}
	gw.reconfigErr = errors.New("parameter store down")
	if err := ws.GatewayConfigured(context.Background(), "gw-1", at); !errors.Is(err, gw.reconfigErr) {
		t.Fatalf("a failed password read: %v", err)
	}
}
