package app_test

import (
	"testing"
	"time"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/device-watcher/internal/app"
	"mediagw/services/device-watcher/internal/domain"
)

func TestEventCarriesTheChangesIDTimeAndChannels(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	dev := domain.Device{Index: "D1", Name: "Gate", OfflineSince: at.Add(-time.Minute),
		Channels: []domain.Channel{{ID: 1, MediaURL: "rtsp://gw:554/a"}, {ID: 2, MediaURL: "rtsp://gw:554/b"}}}
	for kind, want := range map[domain.Kind]string{
		domain.KindDeviceOnline:               "mediagw.events.v1.DeviceOnline",
		domain.KindDeviceOffline:              "mediagw.events.v1.DeviceOffline",
		domain.KindDeviceDeleted:              "mediagw.events.v1.DeviceDeleted",
		domain.KindGatewayUnreachable:         "mediagw.events.v1.GatewayUnreachable",
		domain.KindGatewayReachable:           "mediagw.events.v1.GatewayReachable",
		domain.KindGatewayCredentialsRejected: "mediagw.events.v1.GatewayCredentialsRejected",
		domain.KindGatewayCredentialsAccepted: "mediagw.events.v1.GatewayCredentialsAccepted",
	} {
		ev, err := app.Event(domain.Change{Kind: kind, GatewayID: "gw", Device: dev, EventID: "id-1", OccurredAt: at,
			Gateway: domain.Gateway{Since: at, Reason: "refused"}, UnreachableFor: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if got := app.EventType(ev); got != want {
			t.Fatalf("%s → %s, want %s", kind, got, want)
		}
		if m := ev.(interface{ GetMeta() *eventsv1.EventMeta }).GetMeta(); m.GetId() != "id-1" || !m.GetOccurredAt().AsTime().Equal(at) {
			t.Fatalf("%s meta %+v", kind, m)
		}
	}
	ev, _ := app.Event(domain.Change{Kind: domain.KindDeviceOffline, GatewayID: "gw", Device: dev, EventID: "x"})
	off := ev.(*eventsv1.DeviceOffline)
	if len(off.Channels) != 2 || off.Channels[1].MediaUrl != "rtsp://gw:554/b" || !off.OfflineSince.AsTime().Equal(dev.OfflineSince) {
		t.Fatalf("%+v", off)
	}
	until := at.Add(30 * time.Minute)
	ev, _ = app.Event(domain.Change{Kind: domain.KindGatewayCredentialsRejected, GatewayID: "gw", EventID: "y", Gateway: domain.Gateway{
		Login: domain.Login{Rejected: true, Since: at, Refusal: domain.LoginRefusal{Reason: "budget-spent", Credential: "/p/Password@4",
			Until: until, FailedLogins: 2, Detail: "2 failed logins"}}}})
	if rej := ev.(*eventsv1.GatewayCredentialsRejected); rej.Component != "device-watcher" || rej.Reason != "budget-spent" ||
		rej.Credential != "/p/Password@4" || !rej.Until.AsTime().Equal(until) || rej.FailedLogins != 2 || rej.Detail != "2 failed logins" {
		t.Fatalf("%+v", rej)
	}
	if _, err := app.Event(domain.Change{Kind: "bogus"}); err == nil {
		t.Fatal("an unknown kind became an event")
	}
}
