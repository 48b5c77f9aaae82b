package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSClient is the part of the SQS client the Consumer uses.
type SQSClient interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// ConsumerConfig configures a Consumer. Zero values take the defaults noted.
type ConsumerConfig struct {
	// Queue is a short name for logs and metrics; QueueURL is where to receive.
	Queue    string
	QueueURL string
	// DeadLetterQueueURL receives messages that are malformed or exhaust
	// their retries, with the reason in the dead_letter_reason attribute.
	DeadLetterQueueURL string
	// MaxReceiveCount is the delivery at which a still failing message is
	// dead-lettered by the consumer (default 5). Keep it equal to the queue's
	// redrive policy, which stays as the safety net for a consumer that crashes.
	MaxReceiveCount int
	// Concurrency bounds handlers running at once (default 8).
	Concurrency int
	// WaitTime is the long-polling wait (default 20 s).
	WaitTime time.Duration
	// VisibilityTimeout is how long a message stays hidden; it is extended
	// every half of it while the handler still works (default 30 s).
	VisibilityTimeout time.Duration
	// RetryBase and RetryMax shape the delay before a failed message is
	// delivered again: RetryBase·2^(n-1), at most RetryMax (defaults 2 s, 5 min).
	RetryBase, RetryMax time.Duration
	// ShutdownGrace is how long in-flight handlers may go on after Run's
	// context ends before their own contexts are cancelled (default 20 s).
	ShutdownGrace time.Duration
	// Middlewares wrap the handler, first outermost; nil means
	// DefaultMiddlewares.
	Middlewares []Middleware
	Logger      *slog.Logger
	Metrics     *Metrics
}

func (c *ConsumerConfig) defaults() {
	if c.MaxReceiveCount <= 0 {
		c.MaxReceiveCount = 5
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.WaitTime <= 0 {
		c.WaitTime = 20 * time.Second
	}
	if c.VisibilityTimeout <= 0 {
		c.VisibilityTimeout = 30 * time.Second
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 2 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 20 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Queue == "" {
		c.Queue = c.QueueURL
	}
	if c.Middlewares == nil {
		c.Middlewares = DefaultMiddlewares(c.Logger, c.Metrics, c.Queue)
	}
}

// Consumer receives messages from one SQS queue and runs a Handler on each.
type Consumer struct {
	sqs     SQSClient
	cfg     ConsumerConfig
	handler Handler
	deleter *batchDeleter
}

// NewConsumer returns a Consumer of one queue.
func NewConsumer(client SQSClient, cfg ConsumerConfig, h Handler) *Consumer {
	cfg.defaults()
	return &Consumer{sqs: client, cfg: cfg, handler: Chain(h, cfg.Middlewares...)}
}

// Run receives and handles messages until ctx ends, then stops receiving,
// lets in-flight handlers finish (within ShutdownGrace) and returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	if c.cfg.QueueURL == "" {
		return errors.New("consumer: no queue URL")
	}
	// Handlers outlive ctx by up to ShutdownGrace so that work under way
	// when SIGTERM arrives is finished and deleted, not redelivered.
	handlerCtx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()

	c.deleter = newBatchDeleter(c.sqs, c.cfg.QueueURL, c.cfg.Queue, 20*time.Millisecond, c.cfg.Logger)
	defer c.deleter.close()

	slots := make(chan struct{}, c.cfg.Concurrency)
	var wg sync.WaitGroup
	failures := 0
	for ctx.Err() == nil {
		// Wait for at least one free slot, then ask for as many messages as are free.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		free := 1
	fill:
		for free < min(10, c.cfg.Concurrency) {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break fill
			}
		}
		msgs, err := c.receive(ctx, free)
		for i := len(msgs); i < free; i++ {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			delay := min(time.Duration(failures)*time.Second, 20*time.Second)
			c.cfg.Logger.Warn("receive failed", "queue", c.cfg.Queue, "err", err, "retry_in", delay.String())
			select {
			case <-time.After(delay):
			case <-ctx.Done():
			}
			continue
		}
		failures = 0
		for _, m := range msgs {
			wg.Add(1)
			go func(m sqstypes.Message) {
				defer wg.Done()
				defer func() { <-slots }()
				c.process(handlerCtx, m)
			}(m)
		}
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(c.cfg.ShutdownGrace):
		c.cfg.Logger.Warn("shutdown grace over; cancelling handlers", "queue", c.cfg.Queue)
		cancelHandlers()
		<-done
	}
	return nil
}

func (c *Consumer) receive(ctx context.Context, n int) ([]sqstypes.Message, error) {
	out, err := c.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(c.cfg.QueueURL),
		MaxNumberOfMessages:         int32(n),
		WaitTimeSeconds:             int32(c.cfg.WaitTime / time.Second),
		VisibilityTimeout:           int32(c.cfg.VisibilityTimeout / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, err
	}
	return out.Messages, nil
}

func (c *Consumer) process(ctx context.Context, raw sqstypes.Message) {
	m, decodeErr := toMessage(raw, c.cfg.Queue)
	if c.cfg.Metrics != nil {
		c.cfg.Metrics.received.WithLabelValues(c.cfg.Queue, m.EventType).Inc()
		if !m.SentAt.IsZero() {
			c.cfg.Metrics.age.WithLabelValues(c.cfg.Queue).Observe(time.Since(m.SentAt).Seconds())
		}
	}
	if decodeErr != nil {
		c.deadLetter(ctx, raw, m, "malformed", "malformed message: "+decodeErr.Error())
		return
	}

	stop := c.keepInvisible(ctx, raw.ReceiptHandle)
	err := c.handler(ctx, m)
	stop()

	switch {
	case err == nil:
		c.deleter.delete(raw.ReceiptHandle, m)
	case IsPermanent(err):
		c.deadLetter(ctx, raw, m, "permanent", err.Error())
	case m.ReceiveCount >= c.cfg.MaxReceiveCount:
		c.deadLetter(ctx, raw, m, "retries_exhausted", fmt.Sprintf("still failing after %d deliveries: %v", m.ReceiveCount, err))
	default:
		delay := c.retryDelay(m.ReceiveCount)
		c.cfg.Logger.Warn("handler failed; will retry", "queue", c.cfg.Queue, "event_type", m.EventType,
			"event_id", m.EventID, "message_id", m.MessageID, "receive_count", m.ReceiveCount,
			"retry_in", delay.String(), "err", err)
		c.setVisibility(ctx, raw.ReceiptHandle, delay)
	}
}

func (c *Consumer) retryDelay(receiveCount int) time.Duration {
	d := c.cfg.RetryBase
	for i := 1; i < receiveCount && d < c.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, c.cfg.RetryMax, 12*time.Hour)
}

// keepInvisible extends the message's visibility while the handler works,
// so a slow handler is not raced by a second delivery of the same message.
func (c *Consumer) keepInvisible(ctx context.Context, receipt *string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.cfg.VisibilityTimeout / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				c.setVisibility(ctx, receipt, c.cfg.VisibilityTimeout)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func (c *Consumer) setVisibility(ctx context.Context, receipt *string, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := c.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(c.cfg.QueueURL), ReceiptHandle: receipt, VisibilityTimeout: int32(d / time.Second),
	})
	if err != nil {
		c.cfg.Logger.Warn("change visibility failed", "queue", c.cfg.Queue, "err", err)
	}
}

func (c *Consumer) delete(ctx context.Context, receipt *string, m *Message) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := c.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(c.cfg.QueueURL), ReceiptHandle: receipt})
	if err != nil {
		// The message comes back after its visibility timeout; handlers are idempotent.
		c.cfg.Logger.Error("delete failed; message will be redelivered", "queue", c.cfg.Queue,
			"event_id", m.EventID, "message_id", m.MessageID, "err", err)
	}
}

// deadLetter copies the message to the dead-letter queue with the reason,
// then deletes the original. Without a dead-letter queue URL the message is
// left for the queue's redrive policy. kind labels the metric: malformed,
// permanent or retries_exhausted.
func (c *Consumer) deadLetter(ctx context.Context, raw sqstypes.Message, m *Message, kind, reason string) {
	c.cfg.Logger.Error("dead-lettering message", "queue", c.cfg.Queue, "event_type", m.EventType,
		"event_id", m.EventID, "message_id", m.MessageID, "receive_count", m.ReceiveCount, "reason", reason)
	if c.cfg.DeadLetterQueueURL == "" {
		c.setVisibility(ctx, raw.ReceiptHandle, c.cfg.RetryMax)
		return
	}
	attrs := make(map[string]sqstypes.MessageAttributeValue, len(raw.MessageAttributes)+2)
	for k, v := range raw.MessageAttributes {
		attrs[k] = v
	}
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	attrs[AttrDeadLetterReason] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(reason)}
	attrs[AttrDeadLetterQueue] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(c.cfg.Queue)}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	body := aws.ToString(raw.Body)
	if body == "" {
		body = "(empty)" // SQS refuses an empty body; the reason says what was wrong.
	}
	if _, err := c.sqs.SendMessage(sctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(c.cfg.DeadLetterQueueURL), MessageBody: aws.String(body), MessageAttributes: attrs,
	}); err != nil {
		c.cfg.Logger.Error("dead-letter send failed; message stays on its queue", "queue", c.cfg.Queue, "err", err)
		return
	}
	c.cfg.Metrics.deadLetter(c.cfg.Queue, m.EventType, kind)
	c.delete(ctx, raw.ReceiptHandle, m)
}

// toMessage turns an SQS message into a Message. SNS raw delivery is the
// norm (attributes on the SQS message); an SNS envelope (raw delivery off)
// and an EventBridge event are recognised too.
func toMessage(raw sqstypes.Message, queue string) (*Message, error) {
	m := &Message{
		MessageID:  aws.ToString(raw.MessageId),
		Body:       []byte(aws.ToString(raw.Body)),
		Attributes: map[string]string{},
		Queue:      queue,
	}
	for k, v := range raw.MessageAttributes {
		m.Attributes[k] = aws.ToString(v.StringValue)
	}
	if n, err := strconv.Atoi(raw.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
		m.ReceiveCount = n
	}
	if ms, err := strconv.ParseInt(raw.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		m.SentAt = time.UnixMilli(ms)
	}
	if m.Attributes[AttrEventType] == "" {
		if err := unwrapEnvelope(m); err != nil {
			return m, err
		}
	}
	m.EventType = m.Attributes[AttrEventType]
	m.EventID = m.Attributes[AttrEventID]
	m.CorrelationID = m.Attributes[AttrCorrelationID]
	if m.EventType == "" {
		return m, errors.New("no event_type attribute and not an SNS or EventBridge envelope")
	}
	return m, nil
}

// EventBridgePrefix starts the EventType of a message that came from an
// EventBridge rule: "eventbridge:" + its detail-type.
const EventBridgePrefix = "eventbridge:"

func unwrapEnvelope(m *Message) error {
	var env struct {
		Type              string `json:"Type"`
		Message           string `json:"Message"`
		MessageAttributes map[string]struct {
			Value string `json:"Value"`
		} `json:"MessageAttributes"`
		ID         string          `json:"id"`
		DetailType string          `json:"detail-type"`
		Source     string          `json:"source"`
		Detail     json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(m.Body, &env); err != nil {
		return fmt.Errorf("body is not JSON: %w", err)
	}
	switch {
	case env.Type == "Notification":
		m.Body = []byte(env.Message)
		for k, v := range env.MessageAttributes {
			m.Attributes[k] = v.Value
		}
	case env.DetailType != "" && env.Source != "":
		m.Attributes[AttrEventType] = EventBridgePrefix + env.DetailType
		m.Attributes[AttrEventID] = env.ID
	}
	return nil
}
