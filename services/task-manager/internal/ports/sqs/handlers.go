// Package sqs is the task-manager's inbound side on SQS: one handler per
// event type, each decoding its message, calling the use case
// (internal/app) and turning the result into the message's fate. An input
// the use case calls invalid (domain.ErrInvalid) is dead-lettered at once;
// any other error is retried by redelivery.
package sqs

import (
	"context"
	"errors"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
)

// DeviceUseCases are the use cases device events drive (app.Manager).
type DeviceUseCases interface {
	DeviceOnline(ctx context.Context, ev app.DeviceEvent) error
	DeviceOffline(ctx context.Context, ev app.DeviceEvent) error
	DeviceDeleted(ctx context.Context, ev app.DeviceEvent) error
}

// TaskStateUseCases are the use cases task state changes drive (app.Manager).
type TaskStateUseCases interface {
	TaskStateChanged(ctx context.Context, d app.TaskStateChange) error
}

// DeviceEvents is the router of the queue mediagw-task-manager-device-events:
// DeviceOnline, DeviceOffline and DeviceDeleted.
func DeviceEvents(uc DeviceUseCases) *messaging.Router {
	r := messaging.NewRouter()
	messaging.On(r, func(ctx context.Context, ev *eventsv1.DeviceOnline, _ *messaging.Message) error {
		in := deviceEvent(ev.GetMeta(), ev.GetGatewayId(), ev.GetDeviceIndex())
		for _, c := range ev.GetChannels() {
			in.Channels = append(in.Channels, domain.Channel{Number: c.GetChannel(), MediaURL: c.GetMediaUrl()})
		}
		return result(uc.DeviceOnline(ctx, in))
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.DeviceOffline, _ *messaging.Message) error {
		return result(uc.DeviceOffline(ctx, deviceEvent(ev.GetMeta(), ev.GetGatewayId(), ev.GetDeviceIndex())))
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.DeviceDeleted, _ *messaging.Message) error {
		return result(uc.DeviceDeleted(ctx, deviceEvent(ev.GetMeta(), ev.GetGatewayId(), ev.GetDeviceIndex())))
	})
	return r
}

// TaskState is the router of the queue mediagw-task-manager-task-state:
// EventBridge "ECS Task State Change" events of both launchers.
func TaskState(uc TaskStateUseCases) *messaging.Router {
	r := messaging.NewRouter()
	messaging.OnEventBridge(r, app.TaskStateDetailType, func(ctx context.Context, d *app.TaskStateChange, _ *messaging.Message) error {
		return result(uc.TaskStateChanged(ctx, *d))
	})
	return r
}

func deviceEvent(meta *eventsv1.EventMeta, gateway, device string) app.DeviceEvent {
	ev := app.DeviceEvent{ID: meta.GetId(), Gateway: gateway, Device: device}
	if meta.GetOccurredAt() != nil {
		ev.OccurredAt = meta.GetOccurredAt().AsTime()
	}
	return ev
}

// result marks what retrying cannot cure as permanent.
func result(err error) error {
	if errors.Is(err, domain.ErrInvalid) {
		return messaging.Permanent(err)
	}
	return err
}
