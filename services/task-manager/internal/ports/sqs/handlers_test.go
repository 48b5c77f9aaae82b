package sqs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
)

// useCases records what the handlers call and answers with err.
type useCases struct {
	calls []string
	ev    app.DeviceEvent
	state app.TaskStateChange
	err   error
}

func (u *useCases) DeviceOnline(_ context.Context, ev app.DeviceEvent) error {
	u.calls, u.ev = append(u.calls, "online"), ev
	return u.err
}

func (u *useCases) DeviceOffline(_ context.Context, ev app.DeviceEvent) error {
	u.calls, u.ev = append(u.calls, "offline"), ev
	return u.err
}

func (u *useCases) DeviceDeleted(_ context.Context, ev app.DeviceEvent) error {
	u.calls, u.ev = append(u.calls, "deleted"), ev
	return u.err
}

func (u *useCases) TaskStateChanged(_ context.Context, d app.TaskStateChange) error {
	u.calls, u.state = append(u.calls, "state"), d
	return u.err
}

func message(t *testing.T, ev proto.Message) *messaging.Message {
	t.Helper()
	body, err := messaging.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &messaging.Message{EventType: messaging.EventType(ev), Body: body}
}

var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Each device event reaches its use case with its ids, time and channels;
// an invalid one is dead-lettered at once, any other failure retried.
func TestDeviceEventsReachTheirUseCases(t *testing.T) {
	uc := &useCases{}
	r := DeviceEvents(uc)
	ctx := context.Background()
	online := &eventsv1.DeviceOnline{Meta: &eventsv1.EventMeta{Id: "e1", OccurredAt: timestamppb.New(at)}, GatewayId: "gw1", DeviceIndex: "cam-1",
		Channels: []*eventsv1.Channel{{Channel: 2, MediaUrl: "rtsp://h/2"}, {Channel: 1, MediaUrl: "rtsp://h/1"}}}
	if err := r.Handle(ctx, message(t, online)); err != nil {
		t.Fatal(err)
	}
	if uc.ev.ID != "e1" || uc.ev.Gateway != "gw1" || uc.ev.Device != "cam-1" || !uc.ev.OccurredAt.Equal(at) ||
		len(uc.ev.Channels) != 2 || uc.ev.Channels[0] != (domain.Channel{Number: 2, MediaURL: "rtsp://h/2"}) {
		t.Errorf("online as %+v", uc.ev)
	}
	noTime := &eventsv1.DeviceOffline{Meta: &eventsv1.EventMeta{Id: "e2"}, GatewayId: "gw1", DeviceIndex: "cam-1"}
	if err := r.Handle(ctx, message(t, noTime)); err != nil || !uc.ev.OccurredAt.IsZero() {
		t.Errorf("offline without a time: %v, %+v", err, uc.ev)
	}
	if err := r.Handle(ctx, message(t, &eventsv1.DeviceDeleted{Meta: &eventsv1.EventMeta{Id: "e3", OccurredAt: timestamppb.New(at)}, DeviceIndex: "cam-1"})); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(uc.calls) != "[online offline deleted]" {
		t.Errorf("calls %v", uc.calls)
	}

	uc.err = fmt.Errorf("device event e1: %w", domain.ErrInvalid)
	if err := r.Handle(ctx, message(t, online)); !messaging.IsPermanent(err) {
		t.Errorf("invalid event: %v, want a permanent error", err)
	}
	uc.err = errors.New("dynamodb unavailable")
	if err := r.Handle(ctx, message(t, online)); err == nil || messaging.IsPermanent(err) {
		t.Errorf("transient failure: %v, want a retryable error", err)
	}
}

// A task state change reaches its use case decoded.
func TestTaskStateChangeReachesItsUseCase(t *testing.T) {
	uc := &useCases{}
	body := []byte(`{"detail-type":"ECS Task State Change","source":"aws.ecs","detail":{"clusterArn":"arn:aws:ecs:us-east-1:1:cluster/mediagw",
		"taskArn":"arn:aws:ecs:us-east-1:1:task/mediagw/abc","group":"recorder:cam-1","lastStatus":"STOPPED","stopCode":"UserInitiated",
		"containers":[{"name":"recorder","exitCode":0}]}}`)
	err := TaskState(uc).Handle(context.Background(), &messaging.Message{EventType: messaging.EventBridgePrefix + app.TaskStateDetailType, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if d := uc.state; d.TaskArn != "arn:aws:ecs:us-east-1:1:task/mediagw/abc" || d.Group != "recorder:cam-1" || d.StopCode != app.StopCodeUserInitiated || d.ExitCode("recorder") != 0 {
		t.Errorf("state change %+v", d)
	}
}
