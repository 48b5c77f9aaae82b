// Package messaging is the one message-handling runtime of mediagw: a
// Publisher that puts events on SNS topics, and a Consumer that takes them
// off SQS queues and runs a Handler wrapped in small middlewares, in the
// style of watermill.
//
// The idempotency rule: SQS delivers at least once and in any order. A
// handler must therefore (1) treat a second delivery of the same event id as
// done, and (2) compare the event's occurred_at with the state it would
// change and ignore an event older than that state. Message.EventID and the
// EventMeta inside every event give it what it needs.
package messaging

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Message attribute names carried on SNS and SQS.
const (
	AttrEventType        = "event_type"
	AttrEventID          = "event_id"
	AttrCorrelationID    = "correlation_id"
	AttrDeadLetterReason = "dead_letter_reason"
	AttrDeadLetterQueue  = "dead_letter_source_queue"
)

// Message is one delivery of an event from a queue.
type Message struct {
	// MessageID is the SQS message id; EventID identifies the event itself
	// and is the same on every redelivery.
	MessageID     string
	EventID       string
	EventType     string
	CorrelationID string
	Body          []byte
	Attributes    map[string]string
	// ReceiveCount is how many times SQS has delivered this message, this one included.
	ReceiveCount int
	SentAt       time.Time
	Queue        string
}

// Handler handles one message. A nil error deletes the message; an error
// wrapped with Permanent sends it to the dead-letter queue at once; any
// other error is retried later.
type Handler func(ctx context.Context, m *Message) error

// Middleware wraps a Handler.
type Middleware func(Handler) Handler

// Chain applies middlewares so that the first is outermost.
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// PermanentError marks a failure that retrying cannot cure: a malformed body,
// an unknown event type, an event that breaks an invariant.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// Permanentf is Permanent(fmt.Errorf(...)).
func Permanentf(format string, args ...any) error { return Permanent(fmt.Errorf(format, args...)) }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

type ctxKey int

const correlationKey ctxKey = 0

// WithCorrelationID returns a context carrying the correlation id, which the
// Publisher copies into every event published with it.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationID returns the correlation id carried by ctx, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey).(string)
	return id
}
