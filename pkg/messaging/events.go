package messaging

import (
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
)

// EventType is the wire name of an event: its full protobuf name, e.g.
// "mediagw.events.v1.DeviceOnline".
func EventType(ev proto.Message) string { return string(ev.ProtoReflect().Descriptor().FullName()) }

// Meta returns the event's EventMeta, or nil if it has none.
func Meta(ev proto.Message) *eventsv1.EventMeta {
	fd := metaField(ev)
	if fd == nil {
		return nil
	}
	r := ev.ProtoReflect()
	if !r.Has(fd) {
		return nil
	}
	m, _ := r.Get(fd).Message().Interface().(*eventsv1.EventMeta)
	return m
}

// ensureMeta returns the event's EventMeta, creating it if absent.
func ensureMeta(ev proto.Message) (*eventsv1.EventMeta, error) {
	fd := metaField(ev)
	if fd == nil {
		return nil, fmt.Errorf("%s has no EventMeta field named meta", EventType(ev))
	}
	r := ev.ProtoReflect()
	m, ok := r.Mutable(fd).Message().Interface().(*eventsv1.EventMeta)
	if !ok {
		return nil, fmt.Errorf("%s: field meta is not an EventMeta", EventType(ev))
	}
	return m, nil
}

func metaField(ev proto.Message) protoreflect.FieldDescriptor {
	fd := ev.ProtoReflect().Descriptor().Fields().ByName("meta")
	if fd == nil || fd.Message() == nil || fd.Message().FullName() != (&eventsv1.EventMeta{}).ProtoReflect().Descriptor().FullName() {
		return nil
	}
	return fd
}

// Stamp fills what the event's meta lacks: a new id, occurred_at now, the
// source, and the correlation id (or the event's own id when it starts a chain).
func Stamp(ev proto.Message, source, correlationID string, now func() *timestamppb.Timestamp) (*eventsv1.EventMeta, error) {
	m, err := ensureMeta(ev)
	if err != nil {
		return nil, err
	}
	if m.Id == "" {
		m.Id = uuid.NewString()
	}
	if m.OccurredAt == nil {
		m.OccurredAt = now()
	}
	if m.Source == "" {
		m.Source = source
	}
	if m.CorrelationId == "" {
		m.CorrelationId = correlationID
	}
	if m.CorrelationId == "" {
		m.CorrelationId = m.Id
	}
	return m, nil
}

var (
	marshal   = protojson.MarshalOptions{UseProtoNames: true}
	unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// Encode renders an event as the JSON that goes on the wire.
func Encode(ev proto.Message) ([]byte, error) { return marshal.Marshal(ev) }

// Decode parses the wire JSON into ev. Unknown fields are ignored so that
// an older consumer reads a newer producer's events.
func Decode(body []byte, ev proto.Message) error { return unmarshal.Unmarshal(body, ev) }
