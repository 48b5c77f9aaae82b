package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// SNSPublisher is the part of the SNS client the Publisher uses.
type SNSPublisher interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Routes maps an event type (see EventType) to the ARN of its topic.
type Routes map[string]string

// PublisherConfig configures a Publisher.
type PublisherConfig struct {
	// Source names the publishing service in every event's meta.
	Source  string
	Routes  Routes
	Logger  *slog.Logger
	Metrics *Metrics
}

// Publisher publishes events to SNS: body = protojson of the event,
// message attributes event_type, event_id and correlation_id.
type Publisher struct {
	sns SNSPublisher
	cfg PublisherConfig
	now func() time.Time
}

// NewPublisher returns a Publisher.
func NewPublisher(client SNSPublisher, cfg PublisherConfig) *Publisher {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{sns: client, cfg: cfg, now: time.Now}
}

// ErrNoRoute is returned for an event type the publisher has no topic for.
var ErrNoRoute = errors.New("no topic for event type")

// Publish stamps the event's meta (id, occurred_at, source, correlation id
// from ctx) and publishes it. Throttling, server errors and lost
// connections are retried by the SDK client's retryer (pkg/awsenv
// sets the project's policy), not again here.
func (p *Publisher) Publish(ctx context.Context, ev proto.Message) error {
	typ := EventType(ev)
	topic, ok := p.cfg.Routes[typ]
	if !ok {
		return fmt.Errorf("publish %s: %w", typ, ErrNoRoute)
	}
	meta, err := Stamp(ev, p.cfg.Source, CorrelationID(ctx), func() *timestamppb.Timestamp { return timestamppb.New(p.now()) })
	if err != nil {
		return fmt.Errorf("publish %s: %w", typ, err)
	}
	body, err := Encode(ev)
	if err != nil {
		return fmt.Errorf("publish %s: encode: %w", typ, err)
	}
	in := &sns.PublishInput{
		TopicArn: aws.String(topic),
		Message:  aws.String(string(body)),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			AttrEventType:     {DataType: aws.String("String"), StringValue: aws.String(typ)},
			AttrEventID:       {DataType: aws.String("String"), StringValue: aws.String(meta.Id)},
			AttrCorrelationID: {DataType: aws.String("String"), StringValue: aws.String(meta.CorrelationId)},
		},
	}
	if _, err := p.sns.Publish(ctx, in); err != nil {
		p.cfg.Metrics.published(typ, "error")
		return fmt.Errorf("publish %s %s: %w", typ, meta.Id, err)
	}
	p.cfg.Metrics.published(typ, "ok")
	p.cfg.Logger.DebugContext(ctx, "published", "event_type", typ, "event_id", meta.Id, "correlation_id", meta.CorrelationId)
	return nil
}

// Retryable reports whether an AWS call failed for a reason that may pass:
// throttling, a 5xx answer, or no answer at all.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		if re.HTTPStatusCode() >= 500 || re.HTTPStatusCode() == 429 {
			return true
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
			"TooManyRequestsException", "RequestLimitExceeded", "ServiceUnavailable", "InternalError", "InternalFailure":
			return true
		}
		return ae.ErrorFault() == smithy.FaultServer
	}
	// No API error: the request never got an answer (connection refused, reset).
	return true
}
