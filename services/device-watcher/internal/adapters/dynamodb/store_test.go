package dynamodb_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"mediagw/deploy/provision"
	"mediagw/pkg/loginbudget"
	lbddb "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/topology"
	"mediagw/services/device-watcher/internal/adapters/dynamodb"
	"mediagw/services/device-watcher/internal/domain"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

type env struct {
	ddb    *awsddb.Client
	st     *dynamodb.Store
	leases *dynamodb.Leases
	cfg    dynamodb.Config
}

// clock is the one fake clock the holders of a test's leases share: a
// lease expires when the test moves it on, not after a wait.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
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
	ddb := awsddb.NewFromConfig(awsCfg)
	cfg := dynamodb.Config{DeviceTable: e["DEVICE_MEDIA_URL_TABLE"], LeaseTable: e["LEASES_TABLE"]}
	return env{ddb: ddb, st: dynamodb.NewStore(ddb, cfg, nil), leases: dynamodb.NewLeases(ddb, cfg.LeaseTable, "me", time.Minute), cfg: cfg}
}

func take(t *testing.T, m *dynamodb.Leases, id string) domain.Lease {
	t.Helper()
	l, ok, err := m.Acquire(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("acquire %s: ok=%v err=%v", id, ok, err)
	}
	return l
}

func online(idx string, version int64, n int) domain.Device {
	d := domain.Device{Index: idx, Name: "cam " + idx, Status: domain.Online, Version: version,
		FirstSeen: time.Unix(1000, 0).UTC(), LastChange: time.Unix(2000, 0).UTC()}
	for i := 1; i <= n; i++ {
		d.Channels = append(d.Channels, domain.Channel{ID: i, MediaURL: "rtsp://127.0.0.1:554/" + idx + "/" + string(rune('0'+i))})
	}
	return d
}

func TestCommitAnnounceReloadAndConflicts(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	fence := take(t, e.leases, "device-watcher/gw-1")

	// New camera: stored pending.
	on := domain.Change{Kind: domain.KindDeviceOnline, GatewayID: "gw-1", Device: online("A", 1, 2), EventID: "ev-1", OccurredAt: time.Unix(2000, 0).UTC()}
	if err := e.st.Commit(ctx, fence, on); err != nil {
		t.Fatal(err)
	}
	st, err := e.st.Load(ctx, "gw-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Devices) != 1 || len(st.Pending) != 1 || st.Pending[0].EventID != "ev-1" || st.Pending[0].Kind != domain.KindDeviceOnline {
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
	if err := e.st.Commit(ctx, fence, on2); !errors.Is(err, domain.ErrConflict) {
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
	off.Status, off.OfflineSince = domain.Offline, time.Unix(3000, 0).UTC()
	offC := domain.Change{Kind: domain.KindDeviceOffline, GatewayID: "gw-1", Device: off, Previous: &prev, EventID: "ev-2", OccurredAt: off.OfflineSince}
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
	if d.Status != domain.Offline || len(d.Channels) != 1 || !d.OfflineSince.Equal(off.OfflineSince) || pending.Kind != domain.KindDeviceOffline {
		t.Fatalf("device %+v pending %+v", d, pending)
	}
	// A stale writer (computed from version 1) conflicts.
	if err := e.st.Commit(ctx, fence, offC); !errors.Is(err, domain.ErrConflict) {
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
	del.Status, del.Version = domain.Deleted, 3
	delC := domain.Change{Kind: domain.KindDeviceDeleted, GatewayID: "gw-1", Device: del, Previous: &off, EventID: "ev-3"}
	if err := e.st.Commit(ctx, fence, delC); err != nil {
		t.Fatal(err)
	}
	st, _ = e.st.Load(ctx, "gw-1")
	if len(st.Devices) != 0 || len(st.Pending) != 1 || st.Pending[0].Kind != domain.KindDeviceDeleted || len(st.Pending[0].Device.Channels) != 1 {
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
	clk := newClock()
	a := dynamodb.NewLeases(e.ddb, e.cfg.LeaseTable, "a", 200*time.Millisecond, dynamodb.WithClock(clk.now))
	b := dynamodb.NewLeases(e.ddb, e.cfg.LeaseTable, "b", time.Minute, dynamodb.WithClock(clk.now))
	la := take(t, a, "device-watcher/gw-2")
	clk.advance(300 * time.Millisecond)
	take(t, b, "device-watcher/gw-2")
	c := domain.Change{Kind: domain.KindDeviceOnline, GatewayID: "gw-2", Device: online("B", 1, 1), EventID: "ev"}
	if err := e.st.Commit(ctx, la, c); !errors.Is(err, domain.ErrLeaseLost) {
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
	un := domain.Change{Kind: domain.KindGatewayUnreachable, GatewayID: "gw-3", EventID: "g1", OccurredAt: since,
		PreviousGateway: domain.Gateway{Reachable: true},
		Gateway:         domain.Gateway{Reachable: false, Since: since, Reason: "connection refused", LastChange: since, Version: 1}}
	if err := e.st.Commit(ctx, fence, un); err != nil {
		t.Fatal(err)
	}
	st, err := e.st.Load(ctx, "gw-3")
	if err != nil {
		t.Fatal(err)
	}
	if st.Gateway.Reachable || !st.Gateway.Since.Equal(since) || st.Gateway.Reason != "connection refused" || len(st.Pending) != 1 || st.Pending[0].Kind != domain.KindGatewayUnreachable {
		t.Fatalf("%+v", st)
	}
	if err := e.st.Commit(ctx, fence, un); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second commit from version 0: %v", err)
	}
	if err := e.st.Announced(ctx, un); err != nil {
		t.Fatal(err)
	}
	re := domain.Change{Kind: domain.KindGatewayReachable, GatewayID: "gw-3", EventID: "g2", PreviousGateway: un.Gateway,
		Gateway: domain.Gateway{Reachable: true, LastChange: since.Add(time.Minute), Version: 2}, UnreachableFor: time.Minute}
	if err := e.st.Commit(ctx, fence, re); err != nil {
		t.Fatal(err)
	}
	st, _ = e.st.Load(ctx, "gw-3")
	if !st.Gateway.Reachable || st.Gateway.Version != 2 || len(st.Pending) != 1 || st.Pending[0].UnreachableFor != time.Minute {
		t.Fatalf("%+v", st)
	}
}

// The login standing rides on the gateway's state item: a rejection is
// stored pending with its refusal (no secret: parameter and version), a
// reachability change after it keeps it, and the acceptance clears it.
func TestGatewayLoginStandingRoundTrip(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	fence := take(t, e.leases, "device-watcher/gw-4")
	at := time.Unix(6000, 0).UTC()
	refusal := domain.LoginRefusal{Reason: "budget-spent", Credential: "/mediagw/gateways/gw-4/Password@3",
		Until: at.Add(30 * time.Minute), FailedLogins: 2, Detail: "2 failed or unanswered logins"}
	rejected := domain.Gateway{Reachable: true, Login: domain.Login{Rejected: true, Since: at, Refusal: refusal}, LastChange: at, Version: 1}
	rc := domain.Change{Kind: domain.KindGatewayCredentialsRejected, GatewayID: "gw-4", EventID: "l1", OccurredAt: at,
		PreviousGateway: domain.Gateway{Reachable: true}, Gateway: rejected}
	if err := e.st.Commit(ctx, fence, rc); err != nil {
		t.Fatal(err)
	}
	st, err := e.st.Load(ctx, "gw-4")
	if err != nil {
		t.Fatal(err)
	}
	if l := st.Gateway.Login; !l.Rejected || !l.Since.Equal(at) || l.Refusal != refusal || len(st.Pending) != 1 ||
		st.Pending[0].Kind != domain.KindGatewayCredentialsRejected || st.Pending[0].Gateway.Login.Refusal != refusal {
		t.Fatalf("%+v", st)
	}
	if err := e.st.Announced(ctx, rc); err != nil {
		t.Fatal(err)
	}
	un := domain.Change{Kind: domain.KindGatewayUnreachable, GatewayID: "gw-4", EventID: "l2", PreviousGateway: rejected,
		Gateway: domain.Gateway{Reason: "timeout", Since: at, Login: rejected.Login, LastChange: at, Version: 2}}
	if err := e.st.Commit(ctx, fence, un); err != nil {
		t.Fatal(err)
	}
	st, _ = e.st.Load(ctx, "gw-4")
	if st.Gateway.Reachable || !st.Gateway.Login.Rejected || st.Gateway.Login.Refusal != refusal || st.Pending[0].Kind != domain.KindGatewayUnreachable {
		t.Fatalf("%+v", st)
	}
	ok := domain.Change{Kind: domain.KindGatewayCredentialsAccepted, GatewayID: "gw-4", EventID: "l3", PreviousGateway: un.Gateway,
		Gateway: domain.Gateway{Reason: "timeout", Since: at, Login: domain.Login{Since: at.Add(time.Hour), Credential: "/mediagw/gateways/gw-4/Password@4"},
			LastChange: at.Add(time.Hour), Version: 3}}
	if err := e.st.Commit(ctx, fence, ok); err != nil {
		t.Fatal(err)
	}
	st, _ = e.st.Load(ctx, "gw-4")
	if l := st.Gateway.Login; l.Rejected || l.Credential != "/mediagw/gateways/gw-4/Password@4" || l.Refusal != (domain.LoginRefusal{}) ||
		st.Pending[0].Kind != domain.KindGatewayCredentialsAccepted {
		t.Fatalf("%+v", st)
	}
}

// A table that does not exist is a fault no retry fixes: every operation
// says domain.ErrMisconfigured, so that the watcher stops instead of
// retrying for ever.
func TestMissingTablesAreMisconfigured(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	missing := dynamodb.Config{DeviceTable: e.cfg.DeviceTable + "-missing", LeaseTable: e.cfg.LeaseTable + "-missing"}
	st := dynamodb.NewStore(e.ddb, missing, nil)
	leases := dynamodb.NewLeases(e.ddb, missing.LeaseTable, "me", time.Minute)
	if _, _, err := leases.Acquire(ctx, "device-watcher/gw"); !errors.Is(err, domain.ErrMisconfigured) {
		t.Errorf("acquire: %v", err)
	}
	if _, err := st.Load(ctx, "gw"); !errors.Is(err, domain.ErrMisconfigured) {
		t.Errorf("load: %v", err)
	}
	if _, _, err := st.LoadDevice(ctx, "gw", "A"); !errors.Is(err, domain.ErrMisconfigured) {
		t.Errorf("load device: %v", err)
	}
	// A write to a missing device table, fenced by a lease in the real one.
	fenced := dynamodb.NewStore(e.ddb, dynamodb.Config{DeviceTable: missing.DeviceTable, LeaseTable: e.cfg.LeaseTable}, nil)
	l := take(t, e.leases, "device-watcher/gw-m")
	c := domain.Change{Kind: domain.KindDeviceOnline, GatewayID: "gw-m", Device: online("M", 1, 1), EventID: "ev"}
	if err := fenced.Commit(ctx, l, c); !errors.Is(err, domain.ErrMisconfigured) {
		t.Errorf("commit: %v", err)
	}
	// The login budget's table too.
	lb := dynamodb.LoginBudgetStore(lbddb.New(e.ddb, e.cfg.LeaseTable+"-missing"))
	if _, _, err := lb.Load(ctx, "gw"); !errors.Is(err, domain.ErrMisconfigured) {
		t.Errorf("login budget load: %v", err)
	}
	if err := lb.Save(ctx, "gw", loginbudget.Ledger{}, 0); !errors.Is(err, domain.ErrMisconfigured) {
		t.Errorf("login budget save: %v", err)
	}
	// A busy or refused condition is not a misconfiguration.
	if err := e.st.Commit(ctx, domain.Lease{ID: "device-watcher/gw-m", Holder: "other", Token: 1}, c); errors.Is(err, domain.ErrMisconfigured) || !errors.Is(err, domain.ErrLeaseLost) {
		t.Errorf("commit without the lease: %v", err)
	}
}
