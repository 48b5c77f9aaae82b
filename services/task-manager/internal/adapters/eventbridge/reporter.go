// Package eventbridge puts the local launcher's task state changes on an
// EventBridge bus as ECS puts those of Fargate tasks ("ECS Task State
// Change", source mediagw.task-manager), so that one rule brings both to
// the task-manager's task-state queue.
package eventbridge

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/cenkalti/backoff/v4"

	"mediagw/services/task-manager/internal/app"
)

// PutEventsAPI is the part of the EventBridge client the Reporter uses.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Reporter puts task state changes on an EventBridge bus, as ECS would.
type Reporter struct {
	eb  PutEventsAPI
	bus string
	// MaxElapsed bounds the retries of a rejected entry (default 1 min).
	MaxElapsed time.Duration
	// FirstRetry is the wait before the first of them (default 200 ms).
	FirstRetry time.Duration
}

// NewReporter returns a Reporter for the bus ("" for the default bus).
func NewReporter(eb PutEventsAPI, bus string) *Reporter {
	return &Reporter{eb: eb, bus: bus, MaxElapsed: time.Minute, FirstRetry: 200 * time.Millisecond}
}

// Report puts one task state change.
//
// A failed call is returned as it is: throttling, 5xx answers and lost
// connections have already been retried by the SDK's retryer (pkg/awsenv),
// and what it gives up on, or does not retry (access denied, a bad
// request), another loop here would not cure. What the SDK cannot see is
// an entry the bus refused inside a successful answer (FailedEntryCount,
// with a per-entry code such as ThrottlingException or InternalFailure):
// only that is retried here, with backoff, for MaxElapsed.
func (r *Reporter) Report(ctx context.Context, d app.TaskStateChange) error {
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("task state change %s: %w", d.TaskArn, err)
	}
	entry := ebtypes.PutEventsRequestEntry{
		Source: aws.String(app.LocalTaskStateSource), DetailType: aws.String(app.TaskStateDetailType), Detail: aws.String(string(body)),
		Resources: []string{d.TaskArn},
	}
	if r.bus != "" {
		entry.EventBusName = aws.String(r.bus)
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = r.FirstRetry
	bo.MaxElapsedTime = r.MaxElapsed
	return backoff.Retry(func() error {
		out, err := r.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{entry}})
		if err != nil {
			return backoff.Permanent(fmt.Errorf("put task state change %s: %w", d.TaskArn, err))
		}
		if out.FailedEntryCount > 0 && len(out.Entries) > 0 {
			e := out.Entries[0]
			return fmt.Errorf("put task state change %s: entry refused: %s: %s", d.TaskArn, aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage))
		}
		return nil
	}, backoff.WithContext(bo, ctx))
}
