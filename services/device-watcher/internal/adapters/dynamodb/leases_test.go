package dynamodb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"mediagw/services/device-watcher/internal/adapters/dynamodb"
	"mediagw/services/device-watcher/internal/domain"
)

func TestLeaseOneHolderAtATime(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	clk := newClock()
	a := dynamodb.NewLeases(e.ddb, e.cfg.LeaseTable, "a", 400*time.Millisecond, dynamodb.WithClock(clk.now))
	b := dynamodb.NewLeases(e.ddb, e.cfg.LeaseTable, "b", 400*time.Millisecond, dynamodb.WithClock(clk.now))
	la := take(t, a, "device-watcher/gw")
	if _, ok, err := b.Acquire(ctx, "device-watcher/gw"); ok || err != nil {
		t.Fatalf("b took a held lease: ok=%v err=%v", ok, err)
	}
	la, err := a.Renew(ctx, la)
	if err != nil {
		t.Fatal(err)
	}
	// a stops renewing: after the expiry b takes it, with a higher token.
	clk.advance(500 * time.Millisecond)
	lb := take(t, b, "device-watcher/gw")
	if lb.Token <= la.Token {
		t.Fatalf("token did not grow: %d then %d", la.Token, lb.Token)
	}
	if _, err := a.Renew(ctx, la); !errors.Is(err, domain.ErrLeaseLost) {
		t.Fatalf("renew of a lost lease: %v", err)
	}
	// Release hands over at once.
	b2 := dynamodb.NewLeases(e.ddb, e.cfg.LeaseTable, "b", time.Hour, dynamodb.WithClock(clk.now))
	lb, err = b2.Renew(ctx, lb)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Acquire(ctx, "device-watcher/gw"); ok {
		t.Fatal("a took a lease b renewed for an hour")
	}
	if err := b2.Release(ctx, lb); err != nil {
		t.Fatal(err)
	}
	take(t, a, "device-watcher/gw")
	// Releasing a lease that is no longer ours is a no-op.
	if err := b2.Release(ctx, lb); err != nil {
		t.Fatal(err)
	}
}

// A configuration noted by another instance reaches the holder with its
// next renewal; an older note does not overwrite a newer one; a note on a
// lease nobody took does not create an item that would block acquisition.
func TestLeaseCarriesTheGatewaysLastConfiguration(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	holder := dynamodb.NewLeases(e.ddb, e.cfg.LeaseTable, "holder", time.Minute)
	other := dynamodb.NewLeases(e.ddb, e.cfg.LeaseTable, "other", time.Minute)
	configured := time.Now().Add(-time.Second).Truncate(time.Millisecond)

	if err := other.NoteConfigured(ctx, "device-watcher/never-taken", configured); err != nil {
		t.Fatal(err)
	}
	if l := take(t, holder, "device-watcher/never-taken"); !l.Configured.IsZero() {
		t.Fatalf("a lease nobody held carries configuration %v", l.Configured)
	}

	l := take(t, holder, "device-watcher/gw")
	if err := other.NoteConfigured(ctx, l.ID, configured); err != nil {
		t.Fatal(err)
	}
	if err := other.NoteConfigured(ctx, l.ID, configured.Add(-time.Minute)); err != nil {
		t.Fatalf("an older note is not an error: %v", err)
	}
	l, err := holder.Renew(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Configured.Equal(configured) {
		t.Fatalf("renewal carries configuration %v, want %v", l.Configured, configured)
	}
	if _, ok, err := other.Acquire(ctx, l.ID); ok || err != nil {
		t.Fatalf("the note broke the lease: other took it: ok=%v err=%v", ok, err)
	}
}
