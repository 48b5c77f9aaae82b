package messaging

import (
	"context"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Router sends each message to the handler registered for its event type.
// A message of a type nobody handles is dead-lettered: a subscription's
// filter policy and its consumer disagree, which a human must look at.
type Router struct {
	handlers map[string]Handler
}

// NewRouter returns an empty Router.
func NewRouter() *Router { return &Router{handlers: map[string]Handler{}} }

// Add registers h for one event type.
func (r *Router) Add(eventType string, h Handler) { r.handlers[eventType] = h }

// Types lists the event types registered, for filter policies and docs.
func (r *Router) Types() []string {
	out := make([]string, 0, len(r.handlers))
	for t := range r.handlers {
		out = append(out, t)
	}
	return out
}

// Handle is the Router's Handler.
func (r *Router) Handle(ctx context.Context, m *Message) error {
	h, ok := r.handlers[m.EventType]
	if !ok {
		return Permanentf("no handler for event type %q on queue %s", m.EventType, m.Queue)
	}
	return h(ctx, m)
}

// On registers a typed handler for the protobuf event T. The body is
// decoded before fn runs; a body that does not decode is dead-lettered.
func On[T proto.Message](r *Router, fn func(ctx context.Context, ev T, m *Message) error) {
	var zero T
	typ := EventType(zero)
	r.Add(typ, func(ctx context.Context, m *Message) error {
		ev := zero.ProtoReflect().Type().New().Interface().(T)
		if err := Decode(m.Body, ev); err != nil {
			return Permanentf("decode %s: %w", typ, err)
		}
		if meta := Meta(ev); meta != nil {
			if m.EventID == "" {
				m.EventID = meta.GetId()
			}
			if m.CorrelationID == "" {
				m.CorrelationID = meta.GetCorrelationId()
			}
		}
		if m.EventID == "" {
			return Permanentf("%s without an event id", typ)
		}
		return fn(ctx, ev, m)
	})
}

// OnEventBridge registers a handler for EventBridge events of one
// detail-type; the event's detail is decoded as JSON into a new D.
func OnEventBridge[D any](r *Router, detailType string, fn func(ctx context.Context, detail *D, m *Message) error) {
	r.Add(EventBridgePrefix+detailType, func(ctx context.Context, m *Message) error {
		var env struct {
			Detail *D `json:"detail"`
		}
		if err := json.Unmarshal(m.Body, &env); err != nil || env.Detail == nil {
			if err == nil {
				err = fmt.Errorf("no detail")
			}
			return Permanentf("decode EventBridge %q: %w", detailType, err)
		}
		return fn(ctx, env.Detail, m)
	})
}
