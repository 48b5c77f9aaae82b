package sqs_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/ports/sqs"
)

type stubUseCase struct {
	got []app.Request
	err error
}

func (s *stubUseCase) ConfigureAndReport(_ context.Context, req app.Request) error {
	s.got = append(s.got, req)
	return s.err
}

func message(t *testing.T, ev proto.Message) *messaging.Message {
	t.Helper()
	if _, err := messaging.Stamp(ev, "test", "", timestamppb.Now); err != nil {
		t.Fatal(err)
	}
	body, err := messaging.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &messaging.Message{EventType: messaging.EventType(ev), Body: body, Queue: "configurator-gateway-events"}
}

func TestEventsBecomeRequests(t *testing.T) {
	uc := &stubUseCase{}
	r := messaging.NewRouter()
	sqs.Register(r, uc)
	for _, ev := range []proto.Message{
		&eventsv1.GatewayProvisioned{GatewayId: "gw-7", Address: "10.0.3.7:80", ElasticIp: "198.51.100.7", BootstrapPasswordParameter: "/mediagw/gateways/gw-7/BootstrapPassword", InstanceId: "i-1"},
		&eventsv1.GatewayRecovered{GatewayId: "gw-7", Address: "10.0.3.8:80", ElasticIp: "198.51.100.7", BootstrapPasswordParameter: "/mediagw/b", InstanceId: "i-2"},
	} {
		if err := r.Handle(t.Context(), message(t, ev)); err != nil {
			t.Fatal(err)
		}
	}
	want := []app.Request{
		{GatewayID: "gw-7", Address: "10.0.3.7:80", ElasticIP: "198.51.100.7", BootstrapParameter: "/mediagw/gateways/gw-7/BootstrapPassword"},
		{GatewayID: "gw-7", Address: "10.0.3.8:80", ElasticIP: "198.51.100.7", BootstrapParameter: "/mediagw/b"},
	}
	if len(uc.got) != 2 || uc.got[0] != want[0] || uc.got[1] != want[1] {
		t.Fatalf("requests %+v", uc.got)
	}
}

func TestOutcomesBecomeMessageResults(t *testing.T) {
	retry := errors.New("report configured gw-7: sns down")
	final := &app.FinalError{Err: errors.New("could not report the failure of gw-7 at login (x): sns down")}
	for _, tc := range []struct {
		name      string
		ev        *eventsv1.GatewayProvisioned
		err       error
		wantErr   bool
		permanent bool
		text      string
	}{
		{name: "done", ev: &eventsv1.GatewayProvisioned{GatewayId: "gw-7", Address: "a"}},
		{name: "run again", ev: &eventsv1.GatewayProvisioned{GatewayId: "gw-7", Address: "a"}, err: retry, wantErr: true, text: retry.Error()},
		{name: "final is dead-lettered", ev: &eventsv1.GatewayProvisioned{GatewayId: "gw-7", Address: "a"}, err: final, wantErr: true, permanent: true, text: final.Error()},
		{name: "no gateway id", ev: &eventsv1.GatewayProvisioned{Address: "a"}, wantErr: true, permanent: true, text: "event without gateway_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uc := &stubUseCase{err: tc.err}
			r := messaging.NewRouter()
			sqs.Register(r, uc)
			err := r.Handle(t.Context(), message(t, tc.ev))
			if (err != nil) != tc.wantErr || messaging.IsPermanent(err) != tc.permanent || (err != nil && err.Error() != tc.text) {
				t.Fatalf("error %v (permanent %v)", err, messaging.IsPermanent(err))
			}
			if tc.ev.GetGatewayId() == "" && len(uc.got) != 0 {
				t.Fatal("a run for an event without gateway_id")
			}
		})
	}
}
