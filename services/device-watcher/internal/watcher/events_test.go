package watcher_test

import (
	"testing"
	"time"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/device-watcher/internal/devicestate"
	"mediagw/services/device-watcher/internal/watcher"
)

func TestEventCarriesTheChangesIDTimeAndChannels(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	dev := devicestate.Device{Index: "D1", Name: "Gate", OfflineSince: at.Add(-time.Minute),
		Channels: []devicestate.Channel{{ID: 1, MediaURL: "rtsp://gw:554/a"}, {ID: 2, MediaURL: "rtsp://gw:554/b"}}}
	for kind, want := range map[devicestate.Kind]string{
		devicestate.KindDeviceOnline:       "mediagw.events.v1.DeviceOnline",
		devicestate.KindDeviceOffline:      "mediagw.events.v1.DeviceOffline",
		devicestate.KindDeviceDeleted:      "mediagw.events.v1.DeviceDeleted",
		devicestate.KindGatewayUnreachable: "mediagw.events.v1.GatewayUnreachable",
		devicestate.KindGatewayReachable:   "mediagw.events.v1.GatewayReachable",
	} {
		ev, err := watcher.Event(devicestate.Change{Kind: kind, GatewayID: "gw", Device: dev, EventID: "id-1", OccurredAt: at,
			Gateway: devicestate.Gateway{Since: at, Reason: "refused"}, UnreachableFor: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if got := messaging.EventType(ev); got != want {
			t.Fatalf("%s → %s, want %s", kind, got, want)
		}
		if m := messaging.Meta(ev); m.GetId() != "id-1" || !m.GetOccurredAt().AsTime().Equal(at) {
			t.Fatalf("%s meta %+v", kind, m)
		}
	}
	ev, _ := watcher.Event(devicestate.Change{Kind: devicestate.KindDeviceOffline, GatewayID: "gw", Device: dev, EventID: "x"})
	off := ev.(*eventsv1.DeviceOffline)
	if len(off.Channels) != 2 || off.Channels[1].MediaUrl != "rtsp://gw:554/b" || !off.OfflineSince.AsTime().Equal(dev.OfflineSince) {
		t.Fatalf("%+v", off)
	}
	if _, err := watcher.Event(devicestate.Change{Kind: "bogus"}); err == nil {
		t.Fatal("an unknown kind became an event")
	}
}
