package domain

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const hyst = 30 * time.Second

func newTracker(devs ...Device) *Tracker {
	return NewTracker(TrackerConfig{GatewayID: "gw-1", OfflineHysteresis: hyst, UnreachableAfter: 10 * time.Second}, devs, Gateway{Reachable: true})
}

func chans(n int) []Channel {
	var out []Channel
	for i := n; i >= 1; i-- { // unsorted on purpose
		out = append(out, Channel{ID: i, MediaURL: "rtsp://gw:554/Streaming/Channels/cam/" + string(rune('0'+i)) + "01"})
	}
	return out
}

func at(d time.Duration) time.Time { return t0.Add(d) }

// poll simulates one complete poll at `when` seeing the given sightings.
func poll(tr *Tracker, when time.Duration, ss ...Sighting) []Change {
	for _, s := range ss {
		s.At = at(when)
		s.Source = SourcePoll
		tr.See(s)
	}
	tr.Confirmed(at(when))
	return tr.Changes(at(when))
}

func commitAll(tr *Tracker, cs []Change) {
	for _, c := range cs {
		tr.Commit(c)
	}
}

func kinds(cs []Change) []Kind {
	var out []Kind
	for _, c := range cs {
		out = append(out, c.Kind)
	}
	return out
}

func wantKinds(t *testing.T, cs []Change, want ...Kind) {
	t.Helper()
	got := kinds(cs)
	if len(got) != len(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("changes %v, want %v", got, want)
		}
	}
}

func TestNewOnlineCameraIsAnnouncedOnceWithSortedChannels(t *testing.T) {
	tr := newTracker()
	cs := poll(tr, 0, Sighting{Index: "A", Name: "Lobby", Online: true, Channels: chans(2)})
	wantKinds(t, cs, KindDeviceOnline)
	c := cs[0]
	if c.Previous != nil || c.Device.Version != 1 || c.Device.Status != Online || c.Device.Name != "Lobby" {
		t.Fatalf("change %+v", c)
	}
	if c.Device.Channels[0].ID != 1 || c.Device.Channels[1].ID != 2 {
		t.Fatalf("channels not sorted: %+v", c.Device.Channels)
	}
	if !c.OccurredAt.Equal(t0) || !c.Device.FirstSeen.Equal(t0) || c.Source != SourcePoll {
		t.Fatalf("times/source %+v", c)
	}
	// Not committed: proposed again (a failed store is retried).
	wantKinds(t, poll(tr, time.Second, Sighting{Index: "A", Name: "Lobby", Online: true}), KindDeviceOnline)
	tr.Commit(c)
	wantKinds(t, poll(tr, 2*time.Second, Sighting{Index: "A", Name: "Lobby", Online: true}))
	wantKinds(t, poll(tr, 3*time.Second, Sighting{Index: "A", Name: "Lobby", Online: true, Channels: chans(2)}))
}

func TestOnlineWaitsForChannelDetails(t *testing.T) {
	tr := newTracker()
	wantKinds(t, poll(tr, 0, Sighting{Index: "A", Online: true}))
	wantKinds(t, poll(tr, time.Second, Sighting{Index: "A", Online: true, Channels: []Channel{}}))
	cs := poll(tr, 2*time.Second, Sighting{Index: "A", Online: true, Channels: chans(1)})
	wantKinds(t, cs, KindDeviceOnline)
	// Occurred when first seen online, not when the details came.
	if !cs[0].OccurredAt.Equal(t0) {
		t.Fatalf("occurred %v", cs[0].OccurredAt)
	}
}

func TestOfflineShorterThanHysteresisProducesNothing(t *testing.T) {
	tr := newTracker()
	commitAll(tr, poll(tr, 0, Sighting{Index: "A", Online: true, Channels: chans(1)}))
	for s := 10 * time.Second; s < 35*time.Second; s += 5 * time.Second {
		wantKinds(t, poll(tr, s, Sighting{Index: "A", Online: false})) // offline from 10 s, confirmed until 30 s
	}
	// Back online at 35 s (offline for 25 s < 30 s).
	wantKinds(t, poll(tr, 35*time.Second, Sighting{Index: "A", Online: true, Channels: chans(1)}))
	wantKinds(t, poll(tr, 90*time.Second, Sighting{Index: "A", Online: true}))
}

func TestOfflineLongerThanHysteresisIsAnnouncedOnce(t *testing.T) {
	tr := newTracker()
	commitAll(tr, poll(tr, 0, Sighting{Index: "A", Online: true, Channels: chans(2)}))
	wantKinds(t, poll(tr, 10*time.Second, Sighting{Index: "A", Online: false}))
	if c := tr.Counts(); c.Suspect != 2 || c.Online != 0 {
		t.Fatalf("counts %+v", c)
	}
	wantKinds(t, poll(tr, 39*time.Second, Sighting{Index: "A", Online: false}))
	cs := poll(tr, 40*time.Second, Sighting{Index: "A", Online: false})
	wantKinds(t, cs, KindDeviceOffline)
	c := cs[0]
	if !c.Device.OfflineSince.Equal(at(10*time.Second)) || !c.OccurredAt.Equal(at(10*time.Second)) || c.Device.Version != 2 {
		t.Fatalf("offline change %+v", c)
	}
	if !c.DetectableAt.Equal(at(40*time.Second)) || len(c.Device.Channels) != 2 || c.Previous.Status != Online {
		t.Fatalf("offline change %+v", c)
	}
	tr.Commit(c)
	if c := tr.Counts(); c.Offline != 2 {
		t.Fatalf("counts %+v", c)
	}
	wantKinds(t, poll(tr, 100*time.Second, Sighting{Index: "A", Online: false}))
	// Back: online again at once, with fresh details.
	wantKinds(t, poll(tr, 101*time.Second, Sighting{Index: "A", Online: true}))
	cs = poll(tr, 102*time.Second, Sighting{Index: "A", Online: true, Channels: chans(2)})
	wantKinds(t, cs, KindDeviceOnline)
	if !cs[0].OccurredAt.Equal(at(101*time.Second)) || cs[0].Device.Version != 3 || !cs[0].Device.FirstSeen.Equal(t0) {
		t.Fatalf("online again %+v", cs[0])
	}
}

// A flapping camera yields at most one offline/online pair per hysteresis
// window, whatever its period.
func TestFlappingCameraAtMostOnePairPerWindow(t *testing.T) {
	for _, period := range []time.Duration{time.Second, 7 * time.Second, 29 * time.Second, 31 * time.Second, 45 * time.Second, 90 * time.Second} {
		tr := newTracker()
		commitAll(tr, poll(tr, 0, Sighting{Index: "A", Online: true, Channels: chans(1)}))
		var offlines []time.Time
		online := true
		for s := time.Second; s <= 20*time.Minute; s += time.Second {
			if s%period == 0 {
				online = !online
			}
			sg := Sighting{Index: "A", Online: online}
			if online {
				sg.Channels = chans(1)
			}
			cs := poll(tr, s, sg)
			for _, c := range cs {
				if c.Kind == KindDeviceOffline {
					offlines = append(offlines, at(s))
				}
			}
			commitAll(tr, cs)
		}
		for i := 1; i < len(offlines); i++ {
			if offlines[i].Sub(offlines[i-1]) < hyst {
				t.Fatalf("period %s: two offline events %s apart", period, offlines[i].Sub(offlines[i-1]))
			}
		}
		if period < hyst && len(offlines) != 0 {
			t.Fatalf("period %s shorter than the hysteresis: %d offline events", period, len(offlines))
		}
		if period > hyst && len(offlines) == 0 {
			t.Fatalf("period %s longer than the hysteresis: no offline event", period)
		}
	}
}

func TestDeletedCamera(t *testing.T) {
	tr := newTracker()
	commitAll(tr, poll(tr, 0, Sighting{Index: "A", Online: true, Channels: chans(3)}))
	tr.Gone("A", at(5*time.Second), at(4*time.Second), SourceStream)
	cs := tr.Changes(at(5 * time.Second))
	wantKinds(t, cs, KindDeviceDeleted)
	c := cs[0]
	if c.Device.Status != Deleted || len(c.Device.Channels) != 3 || !c.OccurredAt.Equal(at(4*time.Second)) || c.Source != SourceStream {
		t.Fatalf("deleted %+v", c)
	}
	tr.Commit(c)
	wantKinds(t, tr.Changes(at(6*time.Second)))
	if len(tr.Devices()) != 0 {
		t.Fatalf("devices after delete: %+v", tr.Devices())
	}
	// A poll that started before the removal still lists it: ignored.
	tr.See(Sighting{Index: "A", Online: true, Channels: chans(3), At: at(4500 * time.Millisecond)})
	wantKinds(t, tr.Changes(at(6*time.Second)))
	// Added again later: a new camera.
	cs = poll(tr, 10*time.Second, Sighting{Index: "A", Online: true, Channels: chans(1)})
	wantKinds(t, cs, KindDeviceOnline)
	if cs[0].Previous != nil || cs[0].Device.Version != 1 {
		t.Fatalf("re-added %+v", cs[0])
	}
}

func TestGoneOfNeverAnnouncedCameraIsSilent(t *testing.T) {
	tr := newTracker()
	poll(tr, 0, Sighting{Index: "A", Online: false})
	tr.Gone("A", at(time.Second), time.Time{}, SourcePoll)
	wantKinds(t, tr.Changes(at(time.Second)))
}

func TestOfflineCameraDeletedIsAnnouncedDeleted(t *testing.T) {
	tr := newTracker(Device{Index: "A", Status: Offline, Channels: chans(1), Version: 4, LastChange: at(-time.Hour)})
	tr.Gone("A", at(time.Second), time.Time{}, SourcePoll)
	cs := tr.Changes(at(time.Second))
	wantKinds(t, cs, KindDeviceDeleted)
	if cs[0].Device.Version != 5 || cs[0].Previous.Version != 4 {
		t.Fatalf("%+v", cs[0])
	}
}

func TestChannelChangeWhileOnlineIsReannounced(t *testing.T) {
	tr := newTracker()
	commitAll(tr, poll(tr, 0, Sighting{Index: "A", Online: true, Channels: chans(1)}))
	cs := poll(tr, 5*time.Second, Sighting{Index: "A", Online: true, Channels: chans(2)})
	wantKinds(t, cs, KindDeviceOnline)
	if cs[0].Previous == nil || len(cs[0].Device.Channels) != 2 || !cs[0].OccurredAt.Equal(at(5*time.Second)) {
		t.Fatalf("%+v", cs[0])
	}
	commitAll(tr, cs)
	moved := []Channel{{ID: 1, MediaURL: "rtsp://other:554/x"}, {ID: 2, MediaURL: chans(2)[0].MediaURL}}
	wantKinds(t, poll(tr, 6*time.Second, Sighting{Index: "A", Online: true, Channels: moved}), KindDeviceOnline)
}

func TestStaleSightingIsIgnored(t *testing.T) {
	tr := newTracker()
	commitAll(tr, poll(tr, 0, Sighting{Index: "A", Online: true, Channels: chans(1)}))
	// Stream: offline at 10 s. A poll that started at 9 s and says online
	// comes later: it must not restart the offline streak.
	tr.See(Sighting{Index: "A", Online: false, At: at(10 * time.Second), Source: SourceStream})
	tr.See(Sighting{Index: "A", Online: true, Channels: chans(1), At: at(9 * time.Second)})
	tr.Confirmed(at(40 * time.Second))
	wantKinds(t, tr.Changes(at(40*time.Second)), KindDeviceOffline)
}

func TestRestartFromStoredStateAnnouncesNothingNew(t *testing.T) {
	stored := []Device{
		{Index: "A", Status: Online, Channels: chans(2), Version: 3},
		{Index: "B", Status: Offline, Channels: chans(1), Version: 2},
	}
	tr := newTracker(stored...)
	wantKinds(t, poll(tr, 0,
		Sighting{Index: "A", Online: true, Channels: chans(2)},
		Sighting{Index: "B", Online: false}))
	// B stays offline past the hysteresis: already announced, nothing.
	wantKinds(t, poll(tr, time.Minute, Sighting{Index: "A", Online: true}, Sighting{Index: "B", Online: false}))
	k := tr.Known(at(time.Minute), time.Hour)
	if k["A"].Announced != Online || k["A"].Channels != 2 || !k["A"].DetailsFresh || k["B"].Announced != Offline || k["B"].DetailsFresh {
		t.Fatalf("known %+v", k)
	}
	if k := tr.Known(at(2*time.Hour), time.Hour); k["A"].DetailsFresh {
		t.Fatalf("details should be stale after the refresh interval: %+v", k["A"])
	}
}

func TestGatewayUnreachableThenReachable(t *testing.T) {
	tr := newTracker()
	commitAll(tr, poll(tr, 0,
		Sighting{Index: "A", Online: true, Channels: chans(1)},
		Sighting{Index: "B", Online: true, Channels: chans(1)}))
	// B goes offline just before the gateway stops answering.
	commitAll(tr, poll(tr, time.Second, Sighting{Index: "A", Online: true}, Sighting{Index: "B", Online: false}))
	tr.Unreached(at(2*time.Second), "connection refused")
	wantKinds(t, tr.Changes(at(2*time.Second)))
	tr.Unreached(at(7*time.Second), "connection refused")
	wantKinds(t, tr.Changes(at(7*time.Second)))
	tr.Unreached(at(12*time.Second), "connection refused")
	cs := tr.Changes(at(12 * time.Second))
	wantKinds(t, cs, KindGatewayUnreachable)
	if !cs[0].Gateway.Since.Equal(at(2*time.Second)) || cs[0].Gateway.Reason != "connection refused" || cs[0].Gateway.Version != 1 {
		t.Fatalf("%+v", cs[0])
	}
	commitAll(tr, cs)
	// Unreachable for minutes: no camera is declared offline, and the
	// gateway is announced once.
	for s := 13 * time.Second; s < 5*time.Minute; s += 5 * time.Second {
		tr.Unreached(at(s), "timeout")
		wantKinds(t, tr.Changes(at(s)))
	}
	if c := tr.Counts(); c.Online+c.Suspect != 2 {
		t.Fatalf("counts %+v", c)
	}
	// Back: reachable, and B's offline streak starts anew.
	cs = poll(tr, 5*time.Minute, Sighting{Index: "A", Online: true}, Sighting{Index: "B", Online: false})
	wantKinds(t, cs, KindGatewayReachable)
	if cs[0].UnreachableFor != 5*time.Minute-2*time.Second || !cs[0].Gateway.Reachable {
		t.Fatalf("%+v", cs[0])
	}
	commitAll(tr, cs)
	wantKinds(t, poll(tr, 5*time.Minute+20*time.Second, Sighting{Index: "A", Online: true}, Sighting{Index: "B", Online: false}))
	wantKinds(t, poll(tr, 5*time.Minute+30*time.Second, Sighting{Index: "A", Online: true}, Sighting{Index: "B", Online: false}), KindDeviceOffline)
}

func TestShortGatewayBlipIsSilent(t *testing.T) {
	tr := newTracker()
	tr.Reached(at(0))
	tr.Unreached(at(time.Second), "reset")
	tr.Reached(at(3 * time.Second))
	wantKinds(t, tr.Changes(at(20*time.Second)))
}

func TestStoredUnreachableGatewayAnnouncesReachableOnFirstAnswer(t *testing.T) {
	tr := NewTracker(TrackerConfig{GatewayID: "gw", UnreachableAfter: time.Second}, nil, Gateway{Since: at(-time.Hour), Version: 7})
	tr.Reached(at(0))
	cs := tr.Changes(at(0))
	wantKinds(t, cs, KindGatewayReachable)
	if cs[0].Gateway.Version != 8 || cs[0].UnreachableFor != time.Hour {
		t.Fatalf("%+v", cs[0])
	}
}

func TestResetAdoptsStoredState(t *testing.T) {
	tr := newTracker()
	poll(tr, 0, Sighting{Index: "A", Online: true, Channels: chans(1)})
	// Another holder stored it meanwhile (conditional write failed).
	tr.Reset("A", &Device{Index: "A", Status: Online, Channels: chans(1), Version: 1})
	wantKinds(t, tr.Changes(at(0)))
	tr.Reset("A", nil)
	wantKinds(t, tr.Changes(at(0)), KindDeviceOnline)
}

func TestParseStatus(t *testing.T) {
	for s, want := range map[string][2]bool{
		"online": {true, true}, "ONLINE": {true, true}, "offline": {false, true}, "sleep": {false, true},
		"": {false, false}, "weird": {false, false},
	} {
		on, ok := ParseStatus(s)
		if on != want[0] || ok != want[1] {
			t.Errorf("ParseStatus(%q) = %v, %v", s, on, ok)
		}
	}
}

func TestAnnouncementsOfOneCameraNeverGoBackInTime(t *testing.T) {
	tr := newTracker(Device{Index: "A", Status: Offline, Channels: chans(1), Version: 1, LastChange: at(time.Hour)})
	// The gateway's clock is behind: its event time is earlier than the last change.
	tr.See(Sighting{Index: "A", Online: true, Channels: chans(1), At: at(2 * time.Hour), GatewayTime: at(30 * time.Minute)})
	cs := tr.Changes(at(2 * time.Hour))
	wantKinds(t, cs, KindDeviceOnline)
	if !cs[0].OccurredAt.Equal(at(time.Hour)) {
		t.Fatalf("occurred %v", cs[0].OccurredAt)
	}
}
