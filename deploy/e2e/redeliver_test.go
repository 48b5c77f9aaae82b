package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"mediagw/testsupport/awstest"
)

// The events of the device events topic.
const (
	deviceOnline  = "mediagw.events.v1.DeviceOnline"
	deviceOffline = "mediagw.events.v1.DeviceOffline"
	deviceDeleted = "mediagw.events.v1.DeviceDeleted"
)

// redeliverer makes every device event reach the task-manager twice: a
// queue of the test's own, subscribed to the device events topic as the
// task-manager's queue is, is read in the background, and each message is
// sent again, same body and attributes, to the task-manager's queue.
type redeliverer struct {
	sqs               *sqs.Client
	tapURL, targetURL string

	mu          sync.Mutex
	firstOnline map[string]tappedEvent // by device
	count       map[string]int         // messages redelivered, by event type
}

// tappedEvent is a message as the device events topic delivered it.
type tappedEvent struct {
	eventType, device string
	body              string
	attrs             map[string]sqstypes.MessageAttributeValue
}

// startRedeliverer subscribes the tap and redelivers until t's cleanup.
func startRedeliverer(ctx context.Context, t *testing.T, cfg aws.Config, topicARN, targetURL string) *redeliverer {
	t.Helper()
	r := &redeliverer{sqs: sqs.NewFromConfig(cfg), targetURL: targetURL, firstOnline: map[string]tappedEvent{}, count: map[string]int{}}
	out, err := r.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name("e2e-tap"))})
	if err != nil {
		t.Fatalf("tap queue: %v", err)
	}
	r.tapURL = aws.ToString(out.QueueUrl)
	attrs, err := r.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("tap queue: %v", err)
	}
	filter, _ := json.Marshal(map[string][]string{"event_type": {deviceOnline, deviceOffline, deviceDeleted}})
	_, err = sns.NewFromConfig(cfg).Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(topicARN), Protocol: aws.String("sqs"),
		Endpoint:   aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]),
		Attributes: map[string]string{"RawMessageDelivery": "true", "FilterPolicy": string(filter)}})
	if err != nil {
		t.Fatalf("tap subscription: %v", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.run(runCtx, t)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

func (r *redeliverer) run(ctx context.Context, t *testing.T) {
	for ctx.Err() == nil {
		out, err := r.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(r.tapURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			if ctx.Err() == nil {
				t.Logf("tap: receive: %v", err) // the emulator is busy: try again
				time.Sleep(500 * time.Millisecond)
			}
			continue
		}
		for _, m := range out.Messages {
			te := tappedEvent{body: aws.ToString(m.Body), attrs: m.MessageAttributes}
			te.eventType = aws.ToString(m.MessageAttributes["event_type"].StringValue)
			// protojson: proto field names on the wire; readers accept the JSON names too.
			var ev struct {
				DeviceIndex string `json:"device_index"`
				JSONName    string `json:"deviceIndex"`
			}
			if err := json.Unmarshal([]byte(te.body), &ev); err != nil || ev.DeviceIndex+ev.JSONName == "" {
				t.Errorf("tap: a %s without a device index: %v: %s", te.eventType, err, te.body)
			}
			te.device = ev.DeviceIndex + ev.JSONName
			if err := r.send(ctx, te); err != nil {
				if ctx.Err() == nil {
					t.Errorf("tap: redeliver %s of %s: %v", te.eventType, te.device, err)
				}
				return
			}
			r.mu.Lock()
			r.count[te.eventType]++
			if _, seen := r.firstOnline[te.device]; te.eventType == deviceOnline && !seen {
				r.firstOnline[te.device] = te
			}
			r.mu.Unlock()
			if _, err := r.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.tapURL), ReceiptHandle: m.ReceiptHandle}); err != nil && ctx.Err() == nil {
				t.Errorf("tap: delete: %v", err)
			}
		}
	}
}

// send delivers a tapped event to the task-manager's queue once more.
func (r *redeliverer) send(ctx context.Context, te tappedEvent) error {
	attrs := map[string]sqstypes.MessageAttributeValue{}
	for k, v := range te.attrs {
		attrs[k] = sqstypes.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	_, err := r.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(r.targetURL),
		MessageBody: aws.String(te.body), MessageAttributes: attrs})
	return err
}

// online waits until a DeviceOnline of every device has been redelivered
// and returns the first of each.
func (r *redeliverer) online(t *testing.T, devices []string, within time.Duration) map[string]tappedEvent {
	t.Helper()
	out := map[string]tappedEvent{}
	eventually(t, "DeviceOnline of every camera published (and redelivered)", within, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, d := range devices {
			te, ok := r.firstOnline[d]
			if !ok {
				return fmt.Errorf("none yet for %s", d)
			}
			out[d] = te
		}
		return nil
	})
	return out
}

// redelivered counts the redelivered messages of an event type.
func (r *redeliverer) redelivered(eventType string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count[eventType]
}
