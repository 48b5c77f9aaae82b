package wiring_test

import (
	"strings"
	"testing"
	"time"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

// sim starts a simulated gateway with devices×channels cameras and stores
// its password for gatewayID.
func (h *harness) sim(gatewayID string, devices, channels int, opts ...gatewaysimtest.Option) *gatewaysim.Server {
	h.t.Helper()
	s := gatewaysimtest.Start(h.t, append([]gatewaysimtest.Option{gatewaysimtest.WithDevices(devices, channels)}, opts...)...)
	h.setPassword(gatewayID, gatewaysimtest.Password)
	return s
}

// settle gives late duplicates time to show.
const settle = 1500 * time.Millisecond

func onlyOne(t *testing.T, c *collector, typ, device string) received {
	t.Helper()
	got := c.of(typ, device)
	if len(got) != 1 {
		t.Fatalf("%d %s events for %s, want exactly 1:%s", len(got), typ, device, c.summary())
	}
	return got[0]
}

func none(t *testing.T, c *collector, typ, device string) {
	t.Helper()
	if got := c.of(typ, device); len(got) != 0 {
		t.Fatalf("%d unexpected %s events for %q:%s", len(got), typ, device, c.summary())
	}
}

// waitInitial waits for the online events of a simulator's initial cameras.
func waitInitial(t *testing.T, h *harness, s *gatewaysim.Server) {
	t.Helper()
	for _, d := range s.Devices() {
		h.device.wait(t, "DeviceOnline", d.DevIndex, 1, 15*time.Second)
		h.waitRows(d.DevIndex, len(d.Channels), "online", 5*time.Second)
	}
}

func TestCameraAddedIsAnnouncedWithin2sOverTheEventStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-a", 1, 1)
	// Polls are far apart: only the event stream can be this quick.
	w := h.start("dw-1", []string{"gw-a=" + s.URL()}, "--poll-interval=30s")
	waitInitial(t, h, s)
	testkit.Eventually(t, 5*time.Second, 50*time.Millisecond, "stream connected", func() bool { return s.Counters().Subscribers == 1 })

	added := time.Now()
	d, err := s.AddDevice(gatewaysim.DeviceSpec{Name: "Lobby", Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	ev := h.device.wait(t, "DeviceOnline", d.DevIndex, 1, 2*time.Second)[0]
	rows := h.waitRows(d.DevIndex, 2, "online", 2*time.Second-time.Since(added))
	if took := time.Since(added); took > 2*time.Second {
		t.Fatalf("event and rows took %s", took)
	}
	t.Logf("camera added → event %s, rows %s", ev.Arrived.Sub(added).Round(time.Millisecond), time.Since(added).Round(time.Millisecond))

	on := ev.Event.(*eventsv1.DeviceOnline)
	if on.GatewayId != "gw-a" || on.DeviceName != "Lobby" || len(on.Channels) != 2 || on.Meta.GetSource() != "device-watcher" {
		t.Fatalf("event %+v", on)
	}
	for i, ch := range on.Channels {
		want := s.StreamURL(d.DevIndex, i+1, false)
		if int(ch.Channel) != i+1 || ch.MediaUrl != want {
			t.Fatalf("channel %d: %+v, want %s", i, ch, want)
		}
	}
	for _, r := range rows {
		if r.Gateway != "gw-a" || r.Version != "1" || !strings.HasPrefix(r.MediaURL, "rtsp://127.0.0.1:") || strings.Contains(r.MediaURL, "@") {
			t.Fatalf("row %+v", r)
		}
	}
	if got := w.metric("mediagw_device_watcher_detection_latency_seconds", map[string]string{"source": "stream", "event_type": "mediagw.events.v1.DeviceOnline"}); got != 1 {
		t.Fatalf("stream latency samples: %v", got)
	}
	time.Sleep(settle)
	onlyOne(t, h.device, "DeviceOnline", d.DevIndex)
	if got := w.metric("mediagw_device_watcher_channels", map[string]string{"gateway": "gw-a", "state": "online"}); got != 3 {
		t.Fatalf("online channels gauge %v, want 3", got)
	}
}

func TestCameraAddedIsAnnouncedWithinOnePollIntervalWithoutTheStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-b", 1, 1)
	w := h.start("dw-1", []string{"gw-b=" + s.URL()}, "--subscribe=false", "--poll-interval=1s")
	waitInitial(t, h, s)
	if n := s.Counters().Subscribers; n != 0 {
		t.Fatalf("%d subscribers with SUBSCRIBE=false", n)
	}
	added := time.Now()
	d, err := s.AddDevice(gatewaysim.DeviceSpec{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	ev := h.device.wait(t, "DeviceOnline", d.DevIndex, 1, 3*time.Second)[0]
	h.waitRows(d.DevIndex, 1, "online", time.Second)
	// Seen by the first poll after the addition: its observation time is
	// within one interval of it. Publishing adds the cycle's own work.
	seen := ev.Event.(*eventsv1.DeviceOnline).Meta.OccurredAt.AsTime()
	if seen.Before(added) || seen.Sub(added) > time.Second {
		t.Fatalf("observed %s after the addition, want within the 1 s poll interval", seen.Sub(added))
	}
	if took := ev.Arrived.Sub(added); took > 2*time.Second {
		t.Fatalf("event arrived %s after the addition", took)
	}
	t.Logf("camera added → observed by poll after %s, event in queue after %s", seen.Sub(added).Round(time.Millisecond), ev.Arrived.Sub(added).Round(time.Millisecond))
	if w.metric("mediagw_device_watcher_detection_latency_seconds", map[string]string{"source": "poll", "event_type": "mediagw.events.v1.DeviceOnline"}) < 1 {
		t.Fatal("no poll latency sample")
	}
	time.Sleep(settle)
	onlyOne(t, h.device, "DeviceOnline", d.DevIndex)
}

func TestOfflineHysteresis(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-c", 2, 1)
	h.start("dw-1", []string{"gw-c=" + s.URL()})
	waitInitial(t, h, s)
	devs := s.Devices()
	a, b := devs[0].DevIndex, devs[1].DevIndex

	// Offline for 1 s (< 2 s hysteresis), and a camera flapping every 400 ms.
	if err := s.SetStatus(a, gatewaysim.StatusOffline); err != nil {
		t.Fatal(err)
	}
	if err := s.Flap(b, 400*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := s.SetStatus(a, gatewaysim.StatusOnline); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := s.Flap(b, 0); err != nil {
		t.Fatal(err)
	}
	// Flap(…, 0) does not wait for the flapping goroutine to end: a toggle
	// in flight could land after SetStatus.
	time.Sleep(200 * time.Millisecond)
	if err := s.SetStatus(b, gatewaysim.StatusOnline); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Device(b); d.Status != gatewaysim.StatusOnline {
		t.Fatalf("camera %s left %s after flapping", b, d.Status)
	}
	time.Sleep(settle)
	none(t, h.device, "DeviceOffline", "")
	onlyOne(t, h.device, "DeviceOnline", a)
	onlyOne(t, h.device, "DeviceOnline", b)

	// Offline for longer than the hysteresis: one event.
	wentOffline := time.Now()
	if err := s.SetStatus(a, gatewaysim.StatusOffline); err != nil {
		t.Fatal(err)
	}
	ev := h.device.wait(t, "DeviceOffline", a, 1, 6*time.Second)[0]
	off := ev.Event.(*eventsv1.DeviceOffline)
	if ev.Arrived.Sub(wentOffline) < 2*time.Second {
		t.Fatalf("offline announced after %s, before the hysteresis", ev.Arrived.Sub(wentOffline))
	}
	if since := off.OfflineSince.AsTime(); since.Sub(wentOffline).Abs() > 1100*time.Millisecond || len(off.Channels) != 1 {
		t.Fatalf("offline event %+v (went offline at %s)", off, wentOffline)
	}
	h.waitRows(a, 1, "offline", 2*time.Second)
	time.Sleep(3 * time.Second)
	onlyOne(t, h.device, "DeviceOffline", a)

	// Back online: announced again at once.
	if err := s.SetStatus(a, gatewaysim.StatusOnline); err != nil {
		t.Fatal(err)
	}
	h.device.wait(t, "DeviceOnline", a, 2, 2*time.Second)
	h.waitRows(a, 1, "online", 2*time.Second)
	none(t, h.device, "DeviceOffline", b)
}

func TestDeletedCameraIsAnnouncedAndItsRowsGo(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-d", 2, 3)
	h.start("dw-1", []string{"gw-d=" + s.URL()})
	waitInitial(t, h, s)
	victim := s.Devices()[0]
	if err := s.DeleteDevice(victim.DevIndex); err != nil {
		t.Fatal(err)
	}
	ev := h.device.wait(t, "DeviceDeleted", victim.DevIndex, 1, 3*time.Second)[0]
	if del := ev.Event.(*eventsv1.DeviceDeleted); del.GatewayId != "gw-d" || len(del.Channels) != 3 {
		t.Fatalf("deleted event %+v", del)
	}
	testkit.Eventually(t, 2*time.Second, 50*time.Millisecond, "rows of the deleted camera gone", func() bool { return len(h.rows(victim.DevIndex)) == 0 })
	time.Sleep(settle)
	onlyOne(t, h.device, "DeviceDeleted", victim.DevIndex)
	none(t, h.device, "DeviceOffline", "")
	if n := len(h.rows(s.Devices()[0].DevIndex)); n != 3 {
		t.Fatalf("the other camera has %d rows", n)
	}
}

func TestGatewayRebootIsUnreachableThenReachableWithoutDeviceEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-e", 2, 1)
	w := h.start("dw-1", []string{"gw-e=" + s.URL()})
	waitInitial(t, h, s)
	before := len(h.device.all())

	s.Reboot(3 * time.Second)
	un := h.gw.wait(t, "GatewayUnreachable", "", 1, 4*time.Second)[0].Event.(*eventsv1.GatewayUnreachable)
	if un.GatewayId != "gw-e" || un.Reason == "" || un.Since == nil {
		t.Fatalf("unreachable %+v", un)
	}
	testkit.Eventually(t, time.Second, 50*time.Millisecond, "reachable gauge 0 while rebooting", func() bool {
		return w.metric("mediagw_device_watcher_gateway_reachable", map[string]string{"gateway": "gw-e"}) == 0
	})
	re := h.gw.wait(t, "GatewayReachable", "", 1, 6*time.Second)[0].Event.(*eventsv1.GatewayReachable)
	if d := re.UnreachableFor.AsDuration(); d < 2*time.Second || d > 6*time.Second {
		t.Fatalf("unreachable for %s, rebooted for 3 s", d)
	}
	time.Sleep(3 * time.Second) // longer than the hysteresis
	onlyOne(t, h.gw, "GatewayUnreachable", "")
	onlyOne(t, h.gw, "GatewayReachable", "")
	if after := h.device.all(); len(after) != before {
		t.Fatalf("device events during a reboot:%s", h.device.summary())
	}
	if w.metric("mediagw_device_watcher_gateway_errors_total", map[string]string{"gateway": "gw-e", "kind": "unreachable"}) < 1 {
		t.Fatal("unreachable errors not counted")
	}
}
