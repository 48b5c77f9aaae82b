package messaging

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// DefaultMiddlewares is the stack every consumer gets unless it says
// otherwise: recover panics, carry the correlation id, log, measure, and
// retry transient failures a few times before giving the message back.
func DefaultMiddlewares(logger *slog.Logger, metrics *Metrics, queue string) []Middleware {
	return []Middleware{
		Recoverer(logger),
		Correlation(),
		Logging(logger),
		Measure(metrics, queue),
		Retry(3, 200*time.Millisecond),
	}
}

// Recoverer turns a handler panic into an error, logged with its stack.
func Recoverer(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) (err error) {
			defer func() {
				if r := recover(); r != nil {
					logger.ErrorContext(ctx, "handler panicked", "event_type", m.EventType, "event_id", m.EventID,
						"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					err = fmt.Errorf("handler panicked: %v", r)
				}
			}()
			return next(ctx, m)
		}
	}
}

// Correlation puts the message's correlation id (or its event id, when it
// starts a chain) into the context, where the Publisher finds it.
func Correlation() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			id := m.CorrelationID
			if id == "" {
				id = m.EventID
			}
			if id != "" {
				ctx = WithCorrelationID(ctx, id)
			}
			return next(ctx, m)
		}
	}
}

// Logging logs each handled message at debug and each failure at warn.
func Logging(logger *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			start := time.Now()
			err := next(ctx, m)
			attrs := []any{"queue", m.Queue, "event_type", m.EventType, "event_id", m.EventID,
				"message_id", m.MessageID, "correlation_id", CorrelationID(ctx),
				"receive_count", m.ReceiveCount, "took", time.Since(start).String()}
			if err != nil {
				logger.WarnContext(ctx, "handler failed", append(attrs, "err", err, "permanent", IsPermanent(err))...)
			} else {
				logger.DebugContext(ctx, "handled", attrs...)
			}
			return err
		}
	}
}

// Measure records handled, failed and handler latency.
func Measure(metrics *Metrics, queue string) Middleware {
	return func(next Handler) Handler {
		if metrics == nil {
			return next
		}
		return func(ctx context.Context, m *Message) error {
			start := time.Now()
			err := next(ctx, m)
			metrics.latency.WithLabelValues(queue, m.EventType).Observe(time.Since(start).Seconds())
			if err != nil {
				metrics.failed.WithLabelValues(queue, m.EventType).Inc()
			} else {
				metrics.handled.WithLabelValues(queue, m.EventType).Inc()
			}
			return err
		}
	}
}

// Retry runs the handler up to attempts times while it fails with a
// transient error, waiting with exponential backoff from initial. Longer
// waits belong to the queue (the message's visibility), not to a goroutine.
func Retry(attempts int, initial time.Duration) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			bo := backoff.NewExponentialBackOff()
			bo.InitialInterval = initial
			bo.MaxElapsedTime = 0
			var b backoff.BackOff = backoff.WithMaxRetries(bo, uint64(max(attempts-1, 0)))
			return backoff.Retry(func() error {
				err := next(ctx, m)
				if IsPermanent(err) {
					return backoff.Permanent(err)
				}
				return err
			}, backoff.WithContext(b, ctx))
		}
	}
}
