package wiring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"mediagw/services/device-watcher/internal/adapters/dynamodb"
	"mediagw/services/device-watcher/internal/domain"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/testkit"
)

const writesMetric = "mediagw_device_watcher_store_writes_total"

func TestRestartMidRunAnnouncesNothingTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-r", 3, 1)
	w1 := h.start("dw-1", []string{"gw-r=" + s.URL()})
	waitInitial(t, h, s)
	devs := s.Devices()
	a, b, c := devs[0].DevIndex, devs[1].DevIndex, devs[2].DevIndex
	w1.stop()

	// While no watcher runs: one camera deleted, one offline, one added.
	if err := s.DeleteDevice(b); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(c, gatewaysim.StatusOffline); err != nil {
		t.Fatal(err)
	}
	d, err := s.AddDevice(gatewaysim.DeviceSpec{Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	w2 := h.start("dw-2", []string{"gw-r=" + s.URL()})
	h.device.wait(t, "DeviceDeleted", b, 1, patience)
	h.device.wait(t, "DeviceOnline", d.DevIndex, 1, patience)
	h.device.wait(t, "DeviceOffline", c, 1, patience)
	h.settled(w2, "gw-r")
	for _, idx := range []string{a, b, c, d.DevIndex} {
		onlyOne(t, h.device, "DeviceOnline", idx)
	}
	onlyOne(t, h.device, "DeviceDeleted", b)
	onlyOne(t, h.device, "DeviceOffline", c)
	total := len(h.device.all())

	// A restart with nothing changed: no event, and no state written.
	w2.stop()
	w3 := h.start("dw-3", []string{"gw-r=" + s.URL()})
	testkit.Eventually(t, patience, 50*time.Millisecond, "dw-3 holds the lease", func() bool {
		return w3.metric("mediagw_device_watcher_lease_held", map[string]string{"gateway": "gw-r"}) == 1
	})
	// A whole poll after the reload: every camera seen as stored. No timer
	// is involved: the offline camera was stored offline, the others online.
	h.settled(w3, "gw-r")
	if got := len(h.device.all()); got != total {
		t.Fatalf("%d events after a restart with nothing changed:%s", got-total, h.device.summary())
	}
	if got := w3.metric(writesMetric, nil); got != 0 {
		t.Fatalf("%v state writes after a restart with nothing changed", got)
	}
	if got := w3.metric("mediagw_device_watcher_channels", map[string]string{"gateway": "gw-r", "state": "offline"}); got != 1 {
		t.Fatalf("offline channels after reload: %v", got)
	}
}

func TestTwoWatchersAnnounceEachChangeOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	sf := h.sim("gw-f", 2, 1)
	sg := h.sim("gw-g", 2, 2)
	gws := []string{"gw-f=" + sf.URL(), "gw-g=" + sg.URL()}
	w := map[string]*watcherProc{"dw-1": h.start("dw-1", gws), "dw-2": h.start("dw-2", gws)}
	waitInitial(t, h, sf)
	waitInitial(t, h, sg)
	holder := func(gw string) string {
		var hs []string
		for name, p := range w {
			if p.metric("mediagw_device_watcher_lease_held", map[string]string{"gateway": gw}) == 1 {
				hs = append(hs, name)
			}
		}
		if len(hs) > 1 {
			t.Fatalf("gateway %s watched by %v at once", gw, hs)
		}
		if len(hs) == 0 {
			return ""
		}
		return hs[0]
	}
	df, err := sf.AddDevice(gatewaysim.DeviceSpec{})
	if err != nil {
		t.Fatal(err)
	}
	h.device.wait(t, "DeviceOnline", df.DevIndex, 1, patience)

	// The holder of gw-f stops (rolling deploy): the other takes over.
	gone := holder("gw-f")
	w[gone].stop()
	delete(w, gone)
	other := ""
	for name := range w {
		other = name
	}
	if err := sf.DeleteDevice(df.DevIndex); err != nil {
		t.Fatal(err)
	}
	dg, err := sg.AddDevice(gatewaysim.DeviceSpec{Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	h.device.wait(t, "DeviceDeleted", df.DevIndex, 1, patience)
	h.device.wait(t, "DeviceOnline", dg.DevIndex, 1, patience)
	if hf, hg := holder("gw-f"), holder("gw-g"); hf != other || hg != other {
		t.Fatalf("after %s stopped: gw-f held by %q, gw-g by %q", gone, hf, hg)
	}
	h.settled(w[other], "gw-f")
	h.settled(w[other], "gw-g")
	for _, s := range []*gatewaysim.Server{sf, sg} {
		for _, d := range s.Devices() {
			onlyOne(t, h.device, "DeviceOnline", d.DevIndex)
		}
	}
	onlyOne(t, h.device, "DeviceOnline", df.DevIndex)
	onlyOne(t, h.device, "DeviceDeleted", df.DevIndex)
	if n := len(h.device.all()); n != 7 {
		t.Fatalf("%d events, want 7 (5 cameras online, 1 more online, 1 deleted):%s", n, h.device.summary())
	}
}

// A watcher that died between storing a change and publishing it left the
// rows pending: the next holder publishes the change once, same event id.
func TestChangeStoredButNotAnnouncedIsAnnouncedOnceByTheNextHolder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-h", 1, 2)
	dev := s.Devices()[0]
	ddb := awsddb.NewFromConfig(h.aws)
	// The crashed holder's clock says its lease ended a minute ago.
	crashed := dynamodb.NewLeases(ddb, h.env["LEASES_TABLE"], "crashed", 300*time.Millisecond,
		dynamodb.WithClock(func() time.Time { return time.Now().Add(-time.Minute) }))
	l, ok, err := crashed.Acquire(context.Background(), domain.LeaseID("gw-h"))
	if err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
	st := dynamodb.NewStore(ddb, dynamodb.Config{DeviceTable: h.env["DEVICE_MEDIA_URL_TABLE"], LeaseTable: h.env["LEASES_TABLE"]}, nil)
	now := time.Now()
	c := domain.Change{Kind: domain.KindDeviceOnline, GatewayID: "gw-h", EventID: "stored-before-crash", OccurredAt: now,
		Device: domain.Device{Index: dev.DevIndex, Name: dev.Name, Status: domain.Online, FirstSeen: now, LastChange: now, Version: 1,
			Channels: []domain.Channel{{ID: 1, MediaURL: s.StreamURL(dev.DevIndex, 1, false)}, {ID: 2, MediaURL: s.StreamURL(dev.DevIndex, 2, false)}}}}
	if err := st.Commit(context.Background(), l, c); err != nil {
		t.Fatal(err)
	}

	w := h.start("dw-1", []string{"gw-h=" + s.URL()})
	ev := h.device.wait(t, "DeviceOnline", dev.DevIndex, 1, patience)[0]
	if ev.ID != "stored-before-crash" {
		t.Fatalf("event id %q, want the stored one", ev.ID)
	}
	h.waitRows(dev.DevIndex, 2, "online", patience)
	h.settled(w, "gw-h")
	onlyOne(t, h.device, "DeviceOnline", dev.DevIndex)
}

// garbler sits between the watcher and the simulator and spoils answers;
// it notes when a list first named each camera.
type garbler struct {
	mu      sync.Mutex
	status  map[string]string    // devIndex → devStatus to report
	badURLs map[string]bool      // devIndex → streamMedia answers a non-RTSP URL
	listed  map[string]time.Time // devIndex → first deviceList answer naming it
}

func startGarbler(t *testing.T, target string) (*garbler, string) {
	g := &garbler{status: map[string]string{}, badURLs: map[string]bool{}, listed: map[string]time.Time{}}
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rp.ErrorLog = log.New(io.Discard, "", 0)
	rp.ModifyResponse = g.modify
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return g, srv.URL
}

// firstListing is when a deviceList answer naming devIndex first passed
// the proxy, before the watcher read it.
func (g *garbler) firstListing(devIndex string) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.listed[devIndex]
}

func (g *garbler) set(f func(g *garbler)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}

func (g *garbler) modify(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var body []byte
	switch resp.Request.URL.Path {
	case gatewaysim.PathDeviceList:
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var doc map[string]any
		if json.Unmarshal(b, &doc) != nil {
			body = b
			break
		}
		if sr, ok := doc["SearchResult"].(map[string]any); ok {
			list, _ := sr["MatchList"].([]any)
			now := time.Now()
			for _, m := range list {
				d, _ := m.(map[string]any)["Device"].(map[string]any)
				idx, _ := d["devIndex"].(string)
				if _, ok := g.listed[idx]; !ok {
					g.listed[idx] = now
				}
				if st, ok := g.status[idx]; ok {
					d["devStatus"] = st
				}
			}
		}
		body, _ = json.Marshal(doc)
	case gatewaysim.PathStreamMedia:
		if !g.badURLs[resp.Request.URL.Query().Get("devIndex")] {
			return nil
		}
		body = []byte(`{"MediaAccessInfo":{"URL":"http://evil.example/stream"}}`)
	default:
		return nil
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

func TestNonsenseFromTheGatewayIsCountedAndErasesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-x", 1, 1)
	g, proxyURL := startGarbler(t, s.URL())
	w := h.start("dw-1", []string{"gw-x=" + proxyURL}, "--subscribe=false", "--poll-interval=500ms")
	waitInitial(t, h, s)
	a := s.Devices()[0].DevIndex
	errs := func(op, kind string) float64 {
		return w.metric("mediagw_device_watcher_gateway_errors_total", map[string]string{"gateway": "gw-x", "op": op, "kind": kind})
	}

	// An unknown status, a non-RTSP media URL, malformed and truncated lists.
	g.set(func(g *garbler) { g.status[a] = "zombie" })
	b, err := s.AddDevice(gatewaysim.DeviceSpec{})
	if err != nil {
		t.Fatal(err)
	}
	g.set(func(g *garbler) { g.badURLs[b.DevIndex] = true })
	for _, k := range []gatewaysim.FaultKind{gatewaysim.FaultMalformed, gatewaysim.FaultTruncated} {
		if _, err := s.InjectFault(gatewaysim.Fault{Path: gatewaysim.PathDeviceList, Kind: k, Count: 2}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, patience, 50*time.Millisecond, "every kind of nonsense counted", func() bool {
		return errs("deviceList", "unknown_status") >= 1 && errs("streamMedia", "malformed") >= 1 && errs("deviceList", "malformed") >= 2 && len(s.Faults()) == 0
	})
	// Longer than the 2 s hysteresis: six more polls, 500 ms apart, of
	// the nonsense; then every event they caused has been received.
	w.waitPolls(t, "gw-x", w.polls("gw-x")+6)
	h.caughtUp()
	none(t, h.device, "DeviceOffline", "")
	none(t, h.device, "DeviceDeleted", "")
	none(t, h.device, "DeviceOnline", b.DevIndex)
	h.waitRows(a, 1, "online", 0)
	if len(h.gw.all()) != 0 {
		t.Fatalf("gateway events for an answering gateway:%s", h.gw.summary())
	}

	// Sense again: the new camera is announced, the old one left alone.
	g.set(func(g *garbler) { g.status, g.badURLs = map[string]string{}, map[string]bool{} })
	h.device.wait(t, "DeviceOnline", b.DevIndex, 1, patience)
	h.settled(w, "gw-x")
	onlyOne(t, h.device, "DeviceOnline", a)
	onlyOne(t, h.device, "DeviceOnline", b.DevIndex)
	none(t, h.device, "DeviceOffline", "")
}
