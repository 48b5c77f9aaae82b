package wiring_test

import (
	"fmt"
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

// patience bounds every wait on a fact: a failure bound only, long enough
// for a loaded machine; a passing test does not wait for it.
const patience = 20 * time.Second

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
		h.device.wait(t, "DeviceOnline", d.DevIndex, 1, patience)
		h.waitRows(d.DevIndex, len(d.Channels), "online", patience)
	}
}

func TestCameraAddedIsAnnouncedOverTheEventStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-a", 1, 1)
	// Polls are far apart: only the event stream can announce the camera.
	w := h.start("dw-1", []string{"gw-a=" + s.URL()}, "--poll-interval=30s")
	waitInitial(t, h, s)
	testkit.Eventually(t, patience, 50*time.Millisecond, "stream connected", func() bool { return s.Counters().Subscribers == 1 })
	// The first poll and the one resynchronising the stream have run: the
	// next comes with the 30 s tick.
	w.waitPolls(t, "gw-a", 2)

	d, err := s.AddDevice(gatewaysim.DeviceSpec{Name: "Lobby", Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	ev := h.device.wait(t, "DeviceOnline", d.DevIndex, 1, patience)[0]
	rows := h.waitRows(d.DevIndex, 2, "online", patience)
	// Detected by the stream, not by a poll.
	if got := w.metric("mediagw_device_watcher_detection_latency_seconds", map[string]string{"source": "stream", "event_type": "mediagw.events.v1.DeviceOnline"}); got != 1 {
		t.Fatalf("stream latency samples: %v", got)
	}

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
	// A reconnection makes the watcher poll again (after the event: nothing
	// else is polling); once that poll is applied and every event
	// received, a duplicate would show.
	s.DropSubscribers()
	w.waitPolls(t, "gw-a", 3)
	h.caughtUp()
	onlyOne(t, h.device, "DeviceOnline", d.DevIndex)
	if got := w.metric("mediagw_device_watcher_channels", map[string]string{"gateway": "gw-a", "state": "online"}); got != 3 {
		t.Fatalf("online channels gauge %v, want 3", got)
	}
}

func TestCameraAddedIsAnnouncedByTheFirstPollThatListsItWithoutTheStream(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-b", 1, 1)
	// Through a proxy that notes when the gateway's lists name a camera.
	lists, proxyURL := startGarbler(t, s.URL())
	w := h.start("dw-1", []string{"gw-b=" + proxyURL}, "--subscribe=false", "--poll-interval=1s")
	waitInitial(t, h, s)
	if n := s.Counters().Subscribers; n != 0 {
		t.Fatalf("%d subscribers with SUBSCRIBE=false", n)
	}
	added := time.Now()
	d, err := s.AddDevice(gatewaysim.DeviceSpec{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	ev := h.device.wait(t, "DeviceOnline", d.DevIndex, 1, patience)[0]
	h.waitRows(d.DevIndex, 1, "online", patience)
	// Observed by a poll that started after the addition, and the first
	// poll whose list named the camera announced it: the poll that
	// announced it started before that list came back (a later poll starts
	// only after the previous one was applied).
	seen := ev.Event.(*eventsv1.DeviceOnline).Meta.OccurredAt.AsTime()
	if seen.Before(added) {
		t.Fatalf("observed %s before the addition", added.Sub(seen))
	}
	if first := lists.firstListing(d.DevIndex); !seen.Before(first) {
		t.Fatalf("announced by a poll that started %s after the first list naming the camera: a poll missed it", seen.Sub(first))
	}
	if w.metric("mediagw_device_watcher_detection_latency_seconds", map[string]string{"source": "poll", "event_type": "mediagw.events.v1.DeviceOnline"}) < 1 {
		t.Fatal("no poll latency sample")
	}
	h.settled(w, "gw-b")
	onlyOne(t, h.device, "DeviceOnline", d.DevIndex)
}

func TestOfflineHysteresis(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-c", 2, 1)
	w := h.start("dw-1", []string{"gw-c=" + s.URL()})
	waitInitial(t, h, s)
	devs := s.Devices()
	a, b := devs[0].DevIndex, devs[1].DevIndex
	suspect := func(n float64) func() bool {
		return func() bool {
			return w.metric("mediagw_device_watcher_channels", map[string]string{"gateway": "gw-c", "state": "suspect"}) == n
		}
	}
	// setStatus changes a camera's status and waits until the watcher has
	// seen it (the camera is suspect while seen offline, announced online).
	setStatus := func(dev string, status gatewaysim.DeviceStatus) {
		t.Helper()
		if err := s.SetStatus(dev, status); err != nil {
			t.Fatal(err)
		}
		n := 0.0
		if status != gatewaysim.StatusOnline {
			n = 1
		}
		testkit.Eventually(t, patience, 10*time.Millisecond, fmt.Sprintf("camera %s seen %s", dev, status), suspect(n))
	}

	// Offline for less than the 2 s hysteresis: seen offline, then online.
	setStatus(a, gatewaysim.StatusOffline)
	setStatus(a, gatewaysim.StatusOnline)
	// A camera flapping, each time seen offline then online, for longer
	// than the hysteresis: four more polls (1 s apart) while it flaps.
	for end := w.polls("gw-c") + 4; w.polls("gw-c") < end; {
		setStatus(b, gatewaysim.StatusOffline)
		setStatus(b, gatewaysim.StatusOnline)
	}
	if d, _ := s.Device(b); d.Status != gatewaysim.StatusOnline {
		t.Fatalf("camera %s left %s after flapping", b, d.Status)
	}
	h.settled(w, "gw-c")
	none(t, h.device, "DeviceOffline", "")
	onlyOne(t, h.device, "DeviceOnline", a)
	onlyOne(t, h.device, "DeviceOnline", b)

	// Offline for longer than the hysteresis: one event.
	wentOffline := time.Now()
	if err := s.SetStatus(a, gatewaysim.StatusOffline); err != nil {
		t.Fatal(err)
	}
	ev := h.device.wait(t, "DeviceOffline", a, 1, patience)[0]
	off := ev.Event.(*eventsv1.DeviceOffline)
	if ev.Arrived.Sub(wentOffline) < 2*time.Second {
		t.Fatalf("offline announced after %s, before the hysteresis", ev.Arrived.Sub(wentOffline))
	}
	// The gateway's event time has whole seconds.
	if since := off.OfflineSince.AsTime(); since.Sub(wentOffline).Abs() > 1100*time.Millisecond || len(off.Channels) != 1 {
		t.Fatalf("offline event %+v (went offline at %s)", off, wentOffline)
	}
	h.waitRows(a, 1, "offline", patience)
	h.settled(w, "gw-c")
	onlyOne(t, h.device, "DeviceOffline", a)

	// Back online: announced again at once.
	if err := s.SetStatus(a, gatewaysim.StatusOnline); err != nil {
		t.Fatal(err)
	}
	h.device.wait(t, "DeviceOnline", a, 2, patience)
	h.waitRows(a, 1, "online", patience)
	none(t, h.device, "DeviceOffline", b)
}

func TestDeletedCameraIsAnnouncedAndItsRowsGo(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-d", 2, 3)
	w := h.start("dw-1", []string{"gw-d=" + s.URL()})
	waitInitial(t, h, s)
	victim := s.Devices()[0]
	if err := s.DeleteDevice(victim.DevIndex); err != nil {
		t.Fatal(err)
	}
	ev := h.device.wait(t, "DeviceDeleted", victim.DevIndex, 1, patience)[0]
	if del := ev.Event.(*eventsv1.DeviceDeleted); del.GatewayId != "gw-d" || len(del.Channels) != 3 {
		t.Fatalf("deleted event %+v", del)
	}
	testkit.Eventually(t, patience, 50*time.Millisecond, "rows of the deleted camera gone", func() bool { return len(h.rows(victim.DevIndex)) == 0 })
	h.settled(w, "gw-d")
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

	rebooted := time.Now()
	s.Reboot(3 * time.Second)
	unEv := h.gw.wait(t, "GatewayUnreachable", "", 1, patience)[0]
	un := unEv.Event.(*eventsv1.GatewayUnreachable)
	if un.GatewayId != "gw-e" || un.Reason == "" || un.Since == nil {
		t.Fatalf("unreachable %+v", un)
	}
	testkit.Eventually(t, patience, 20*time.Millisecond, "reachable gauge 0 while rebooting", func() bool {
		return w.metric("mediagw_device_watcher_gateway_reachable", map[string]string{"gateway": "gw-e"}) == 0
	})
	reEv := h.gw.wait(t, "GatewayReachable", "", 1, patience)[0]
	re := reEv.Event.(*eventsv1.GatewayReachable)
	// The watcher failed to reach the gateway from no earlier than the
	// reboot, and reached it again once it was back up, before the event
	// said so: the duration lies between what the test saw of each end.
	back := s.Settings().BootTime
	if d := re.UnreachableFor.AsDuration(); d < back.Sub(unEv.Arrived) || d > reEv.Arrived.Sub(rebooted) {
		t.Fatalf("unreachable for %s: the gateway was down from %s to %s, the events arrived at %s and %s",
			d, rebooted.Format(time.StampMilli), back.Format(time.StampMilli), unEv.Arrived.Format(time.StampMilli), reEv.Arrived.Format(time.StampMilli))
	}
	// Two polls after the return: every camera seen online again.
	h.settled(w, "gw-e")
	onlyOne(t, h.gw, "GatewayUnreachable", "")
	onlyOne(t, h.gw, "GatewayReachable", "")
	if after := h.device.all(); len(after) != before {
		t.Fatalf("device events during a reboot:%s", h.device.summary())
	}
	if w.metric("mediagw_device_watcher_gateway_errors_total", map[string]string{"gateway": "gw-e", "kind": "unreachable"}) < 1 {
		t.Fatal("unreachable errors not counted")
	}
}
