// Package sns is the device-watcher's adapter to SNS (app.EventPublisher):
// pkg/messaging's Publisher does the work (routes from the topology, meta,
// encoding; the SDK retries throttling and server errors); this adapter
// marks the faults no retry fixes as domain.ErrMisconfigured.
package sns

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
	"google.golang.org/protobuf/proto"

	"mediagw/pkg/messaging"
	"mediagw/services/device-watcher/internal/app"
	"mediagw/services/device-watcher/internal/domain"
)

// Publisher is an EventPublisher over a messaging.Publisher.
type Publisher struct {
	next interface {
		Publish(ctx context.Context, ev proto.Message) error
	}
}

// NewPublisher wraps p (a *messaging.Publisher).
func NewPublisher(p interface {
	Publish(ctx context.Context, ev proto.Message) error
}) *Publisher {
	return &Publisher{next: p}
}

// Publish publishes ev. A topic that does not exist or may not be used,
// or an event type with no topic, is domain.ErrMisconfigured; any other
// failure is returned as it is (the change stays pending and is published
// again later).
func (p *Publisher) Publish(ctx context.Context, ev proto.Message) error {
	err := p.next.Publish(ctx, ev)
	if err == nil {
		return nil
	}
	if errors.Is(err, messaging.ErrNoRoute) {
		return fmt.Errorf("%w: %w", domain.ErrMisconfigured, err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NotFound", "NotFoundException", "AuthorizationError", "AuthorizationErrorException":
			return fmt.Errorf("%w: %w", domain.ErrMisconfigured, err)
		}
	}
	return err
}

var _ app.EventPublisher = (*Publisher)(nil)
