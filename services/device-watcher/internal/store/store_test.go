package store_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"mediagw/deploy/provision"
	"mediagw/pkg/topology"
	"mediagw/services/device-watcher/internal/devicestate"
	"mediagw/services/device-watcher/internal/lease"
	"mediagw/services/device-watcher/internal/store"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

type env struct {
	ddb    *dynamodb.Client
	st     *store.Store
	leases *lease.Manager
	cfg    store.Config
}

func setup(t *testing.T) env {
	t.Helper()
	ctx := context.Background()
	awsCfg := awstest.Config(t)
	res, err := provision.Apply(ctx, awsCfg, topology.Default(), provision.Options{Prefix: awstest.Name("dwst") + "-", Only: []string{"tables"}})
	if err != nil {
		t.Fatal(err)
	}
	e := res.Env()
	ddb := dynamodb.NewFromConfig(awsCfg)
	cfg := store.Config{DeviceTable: e["DEVICE_MEDIA_URL_TABLE"], LeaseTable: e["LEASES_TABLE"]}
	return env{ddb: ddb, st: store.New(ddb, cfg, nil), leases: lease.NewManager(ddb, cfg.LeaseTable, "me", time.Minute), cfg: cfg}
}

func take(t *testing.T, m *lease.Manager, id string) lease.Lease {
	t.Helper()
	l, ok, err := m.Acquire(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("acquire %s: ok=%v err=%v", id, ok, err)
	}
	return l
}

func TestLeaseOneHolderAtATime(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	a := lease.NewManager(e.ddb, e.cfg.LeaseTable, "a", 400*time.Millisecond)
	b := lease.NewManager(e.ddb, e.cfg.LeaseTable, "b", 400*time.Millisecond)
	la := take(t, a, "device-watcher/gw")
	if _, ok, err := b.Acquire(ctx, "device-watcher/gw"); ok || err != nil {
		t.Fatalf("b took a held lease: ok=%v err=%v", ok, err)
	}
	la, err := a.Renew(ctx, la)
	if err != nil {
		t.Fatal(err)
	}
	// a stops renewing: after the expiry b takes it, with a higher token.
	time.Sleep(500 * time.Millisecond)
	lb := take(t, b, "device-watcher/gw")
	if lb.Token <= la.Token {
		t.Fatalf("token did not grow: %d then %d", la.Token, lb.Token)
	}
	if _, err := a.Renew(ctx, la); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("renew of a lost lease: %v", err)
	}
	// Release hands over at once.
	b2 := lease.NewManager(e.ddb, e.cfg.LeaseTable, "b", time.Hour)
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

func online(idx string, version int64, n int) devicestate.Device {
	d := devicestate.Device{Index: idx, Name: "cam " + idx, Status: devicestate.Online, Version: version,
		FirstSeen: time.Unix(1000, 0).UTC(), LastChange: time.Unix(2000, 0).UTC()}
	for i := 1; i <= n; i++ {
		d.Channels = append(d.Channels, devicestate.Channel{ID: i, MediaURL: "rtsp://127.0.0.1:554/" + idx + "/" + string(rune('0'+i))})
	}
	return d
}

func TestCommitAnnounceReloadAndConflicts(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	fence := take(t, e.leases, "device-watcher/gw-1")

	// New camera: stored pending.
	on := devicestate.Change{Kind: devicestate.KindDeviceOnline, GatewayID: "gw-1", Device: online("A", 1, 2), EventID: "ev-1", OccurredAt: time.Unix(2000, 0).UTC()}
	if err := e.st.Commit(ctx, fence, on); err != nil {
		t.Fatal(err)
	}
	st, err := e.st.Load(ctx, "gw-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Devices) != 1 || len(st.Pending) != 1 || st.Pending[0].EventID != "ev-1" || st.Pending[0].Kind != devicestate.KindDeviceOnline {
		t.Fatalf("after commit: %+v", st)
	}
	if got := st.Devices[0]; got.Name != "cam A" || len(got.Channels) != 2 || got.Version != 1 || !got.FirstSeen.Equal(time.Unix(1000, 0)) {
		t.Fatalf("device %+v", got)
	}
	if !st.Gateway.Reachable || st.Gateway.Version != 0 {
		t.Fatalf("gateway never stored should be reachable: %+v", st.Gateway)
	}
	// Committing the same new camera again (another writer) conflicts.
	on2 := on
	on2.EventID = "ev-dup"
	if err := e.st.Commit(ctx, fence, on2); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second commit of a new camera: %v", err)
	}
	if err := e.st.Announced(ctx, on); err != nil {
		t.Fatal(err)
	}
	if st, _ = e.st.Load(ctx, "gw-1"); len(st.Pending) != 0 {
		t.Fatalf("pending after announce: %+v", st.Pending)
	}
	writes := e.st.Writes()

	// Offline, shrinking to one channel: the other row goes.
	prev := online("A", 1, 2)
	off := online("A", 2, 1)
	off.Status, off.OfflineSince = devicestate.Offline, time.Unix(3000, 0).UTC()
	offC := devicestate.Change{Kind: devicestate.KindDeviceOffline, GatewayID: "gw-1", Device: off, Previous: &prev, EventID: "ev-2", OccurredAt: off.OfflineSince}
	if err := e.st.Commit(ctx, fence, offC); err != nil {
		t.Fatal(err)
	}
	if got := e.st.Writes() - writes; got != 2 {
		t.Fatalf("writes for a change of a 2-channel camera to 1 channel: %d", got)
	}
	d, pending, err := e.st.LoadDevice(ctx, "gw-1", "A")
	if err != nil || d == nil || pending == nil {
		t.Fatalf("load device: %+v %+v %v", d, pending, err)
	}
	if d.Status != devicestate.Offline || len(d.Channels) != 1 || !d.OfflineSince.Equal(off.OfflineSince) || pending.Kind != devicestate.KindDeviceOffline {
		t.Fatalf("device %+v pending %+v", d, pending)
	}
	// A stale writer (computed from version 1) conflicts.
	if err := e.st.Commit(ctx, fence, offC); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale commit: %v", err)
	}
	// A superseded announcement does not clear the newer pending flag.
	if err := e.st.Announced(ctx, on); err != nil {
		t.Fatal(err)
	}
	if _, pending, _ = e.st.LoadDevice(ctx, "gw-1", "A"); pending == nil || pending.EventID != "ev-2" {
		t.Fatalf("pending %+v", pending)
	}
	if err := e.st.Announced(ctx, offC); err != nil {
		t.Fatal(err)
	}

	// Deleted: pending tombstone, then gone once announced.
	del := off
	del.Status, del.Version = devicestate.Deleted, 3
	delC := devicestate.Change{Kind: devicestate.KindDeviceDeleted, GatewayID: "gw-1", Device: del, Previous: &off, EventID: "ev-3"}
	if err := e.st.Commit(ctx, fence, delC); err != nil {
		t.Fatal(err)
	}
	st, _ = e.st.Load(ctx, "gw-1")
	if len(st.Devices) != 0 || len(st.Pending) != 1 || st.Pending[0].Kind != devicestate.KindDeviceDeleted || len(st.Pending[0].Device.Channels) != 1 {
		t.Fatalf("after delete commit: %+v", st)
	}
	if err := e.st.Announced(ctx, delC); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := e.st.LoadDevice(ctx, "gw-1", "A"); d != nil {
		t.Fatalf("rows left after deletion: %+v", d)
	}
}

func TestFenceStopsAFormerHolder(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	a := lease.NewManager(e.ddb, e.cfg.LeaseTable, "a", 200*time.Millisecond)
	b := lease.NewManager(e.ddb, e.cfg.LeaseTable, "b", time.Minute)
	la := take(t, a, "device-watcher/gw-2")
	time.Sleep(300 * time.Millisecond)
	take(t, b, "device-watcher/gw-2")
	c := devicestate.Change{Kind: devicestate.KindDeviceOnline, GatewayID: "gw-2", Device: online("B", 1, 1), EventID: "ev"}
	if err := e.st.Commit(ctx, la, c); !errors.Is(err, store.ErrLeaseLost) {
		t.Fatalf("commit by a former holder: %v", err)
	}
	if d, _, _ := e.st.LoadDevice(ctx, "gw-2", "B"); d != nil {
		t.Fatalf("former holder wrote: %+v", d)
	}
}

func TestGatewayStateRoundTrip(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	fence := take(t, e.leases, "device-watcher/gw-3")
	since := time.Unix(5000, 0).UTC()
	un := devicestate.Change{Kind: devicestate.KindGatewayUnreachable, GatewayID: "gw-3", EventID: "g1", OccurredAt: since,
		PreviousGateway: devicestate.Gateway{Reachable: true},
		Gateway:         devicestate.Gateway{Reachable: false, Since: since, Reason: "connection refused", LastChange: since, Version: 1}}
	if err := e.st.Commit(ctx, fence, un); err != nil {
		t.Fatal(err)
	}
	st, err := e.st.Load(ctx, "gw-3")
	if err != nil {
		t.Fatal(err)
	}
	if st.Gateway.Reachable || !st.Gateway.Since.Equal(since) || st.Gateway.Reason != "connection refused" || len(st.Pending) != 1 || st.Pending[0].Kind != devicestate.KindGatewayUnreachable {
		t.Fatalf("%+v", st)
	}
	if err := e.st.Commit(ctx, fence, un); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second commit from version 0: %v", err)
	}
	if err := e.st.Announced(ctx, un); err != nil {
		t.Fatal(err)
	}
	re := devicestate.Change{Kind: devicestate.KindGatewayReachable, GatewayID: "gw-3", EventID: "g2", PreviousGateway: un.Gateway,
		Gateway: devicestate.Gateway{Reachable: true, LastChange: since.Add(time.Minute), Version: 2}, UnreachableFor: time.Minute}
	if err := e.st.Commit(ctx, fence, re); err != nil {
		t.Fatal(err)
	}
	st, _ = e.st.Load(ctx, "gw-3")
	if !st.Gateway.Reachable || st.Gateway.Version != 2 || len(st.Pending) != 1 || st.Pending[0].UnreachableFor != time.Minute {
		t.Fatalf("%+v", st)
	}
}

// A configuration noted by another instance reaches the holder with its
// next renewal; an older note does not overwrite a newer one; a note on a
// lease nobody took does not create an item that would block acquisition.
func TestLeaseCarriesTheGatewaysLastConfiguration(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	holder := lease.NewManager(e.ddb, e.cfg.LeaseTable, "holder", time.Minute)
	other := lease.NewManager(e.ddb, e.cfg.LeaseTable, "other", time.Minute)
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
