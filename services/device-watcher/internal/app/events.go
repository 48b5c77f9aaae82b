package app

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/device-watcher/internal/domain"
)

// Component is the device-watcher's name in the login budget and in the
// credentials events.
const Component = "device-watcher"

// Event renders a change as the event that announces it. Its id is the
// change's EventID, so a re-publication is recognisably the same event.
func Event(c domain.Change) (proto.Message, error) {
	meta := &eventsv1.EventMeta{Id: c.EventID, OccurredAt: ts(c.OccurredAt)}
	d := c.Device
	switch c.Kind {
	case domain.KindDeviceOnline:
		return &eventsv1.DeviceOnline{Meta: meta, GatewayId: c.GatewayID, DeviceIndex: d.Index, DeviceName: d.Name, Channels: channels(d.Channels)}, nil
	case domain.KindDeviceOffline:
		return &eventsv1.DeviceOffline{Meta: meta, GatewayId: c.GatewayID, DeviceIndex: d.Index, Channels: channels(d.Channels), OfflineSince: ts(d.OfflineSince)}, nil
	case domain.KindDeviceDeleted:
		return &eventsv1.DeviceDeleted{Meta: meta, GatewayId: c.GatewayID, DeviceIndex: d.Index, Channels: channels(d.Channels)}, nil
	case domain.KindGatewayUnreachable:
		return &eventsv1.GatewayUnreachable{Meta: meta, GatewayId: c.GatewayID, Reason: c.Gateway.Reason, Since: ts(c.Gateway.Since)}, nil
	case domain.KindGatewayReachable:
		return &eventsv1.GatewayReachable{Meta: meta, GatewayId: c.GatewayID, UnreachableFor: durationpb.New(c.UnreachableFor)}, nil
	case domain.KindGatewayCredentialsRejected:
		r := c.Gateway.Login.Refusal
		return &eventsv1.GatewayCredentialsRejected{Meta: meta, GatewayId: c.GatewayID, Component: Component,
			Reason: r.Reason, Credential: r.Credential, Detail: r.Detail, Until: ts(r.Until), FailedLogins: int32(r.FailedLogins)}, nil
	case domain.KindGatewayCredentialsAccepted:
		return &eventsv1.GatewayCredentialsAccepted{Meta: meta, GatewayId: c.GatewayID, Component: Component,
			Credential: c.Gateway.Login.Credential}, nil
	}
	return nil, fmt.Errorf("no event for change kind %q", c.Kind)
}

func channels(chs []domain.Channel) []*eventsv1.Channel {
	out := make([]*eventsv1.Channel, 0, len(chs))
	for _, c := range chs {
		out = append(out, &eventsv1.Channel{Channel: int32(c.ID), MediaUrl: c.MediaURL})
	}
	return out
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
