package sqs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/device-watcher/internal/ports/sqs"
)

type call struct {
	gatewayID string
	at        time.Time
}

type fakeApp struct {
	calls []call
	err   error
}

func (f *fakeApp) GatewayConfigured(_ context.Context, gatewayID string, at time.Time) error {
	f.calls = append(f.calls, call{gatewayID, at})
	return f.err
}

func message(t *testing.T, ev *eventsv1.GatewayConfigured) *messaging.Message {
	t.Helper()
	body, err := messaging.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &messaging.Message{EventType: "mediagw.events.v1.GatewayConfigured", Body: body, Queue: "device-watcher-gateway-events"}
}

func TestGatewayConfiguredCallsTheAppWithTheConfigurationTime(t *testing.T) {
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	app := &fakeApp{}
	h := sqs.Handler(app)
	ev := &eventsv1.GatewayConfigured{Meta: &eventsv1.EventMeta{Id: "e1", OccurredAt: timestamppb.New(at)}, GatewayId: "gw-1"}
	if err := h(context.Background(), message(t, ev)); err != nil {
		t.Fatal(err)
	}
	if len(app.calls) != 1 || app.calls[0].gatewayID != "gw-1" || !app.calls[0].at.Equal(at) {
		t.Fatalf("calls %+v", app.calls)
	}

	// A failure of the use case fails the message (the queue retries it).
	app.err = errors.New("parameter store down")
	if err := h(context.Background(), message(t, ev)); err == nil || messaging.IsPermanent(err) {
		t.Fatalf("a failed reconfiguration: %v, want a retryable error", err)
	}
	// No time: the zero time (the watcher takes it as now).
	app.err = nil
	ev.Meta.OccurredAt = nil
	if err := h(context.Background(), message(t, ev)); err != nil || !app.calls[2].at.IsZero() {
		t.Fatalf("%v %+v", err, app.calls)
	}
}
