package messaging

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
)

// BenchmarkConsumerThroughput measures events/s through the Consumer
// (router, protojson decode, default middlewares, delete per message)
// next to a bare SDK receive/delete-batch loop on the same queue, in the
// same run, and reports their ratio. Run it with `make bench`.
func BenchmarkConsumerThroughput(b *testing.B) {
	const n = 400
	e := newEnv(b)
	ctx := context.Background()
	q := e.res.Queues["devices"]
	body, err := Encode(&eventsv1.DeviceOnline{Meta: &eventsv1.EventMeta{Id: "bench"}, GatewayId: "gw", DeviceIndex: "d",
		Channels: []*eventsv1.Channel{{Channel: 1, MediaUrl: "rtsp://10.0.0.1:554/Streaming/Channels/d/101"}}})
	if err != nil {
		b.Fatal(err)
	}
	fill := func() {
		for i := 0; i < n; i += 10 {
			var entries []sqstypes.SendMessageBatchRequestEntry
			for j := 0; j < 10; j++ {
				entries = append(entries, sqstypes.SendMessageBatchRequestEntry{
					Id: aws.String(fmt.Sprint(j)), MessageBody: aws.String(string(body)),
					MessageAttributes: map[string]sqstypes.MessageAttributeValue{
						AttrEventType: {DataType: aws.String("String"), StringValue: aws.String("mediagw.events.v1.DeviceOnline")},
						AttrEventID:   {DataType: aws.String("String"), StringValue: aws.String(fmt.Sprintf("ev-%d-%d", i, j))},
					},
				})
			}
			if _, err := e.sqs.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries}); err != nil {
				b.Fatal(err)
			}
		}
	}

	var consumerRate, bareRate float64
	for i := 0; i < b.N; i++ {
		fill()
		var handled atomic.Int32
		done := make(chan struct{})
		r := NewRouter()
		On(r, func(context.Context, *eventsv1.DeviceOnline, *Message) error {
			if handled.Add(1) == n {
				close(done)
			}
			return nil
		})
		c := e.consumer("devices", r.Handle, func(c *ConsumerConfig) { c.Concurrency = 10; c.Logger = nil; c.Middlewares = nil })
		start := time.Now()
		stop := run(b, c)
		<-done
		consumerRate = n / time.Since(start).Seconds()
		stop()

		fill()
		start = time.Now()
		for got := 0; got < n; {
			out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
			if err != nil {
				b.Fatal(err)
			}
			if len(out.Messages) == 0 {
				continue
			}
			var del []sqstypes.DeleteMessageBatchRequestEntry
			for j, m := range out.Messages {
				del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint(j)), ReceiptHandle: m.ReceiptHandle})
			}
			if _, err := e.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: del}); err != nil {
				b.Fatal(err)
			}
			got += len(out.Messages)
		}
		bareRate = n / time.Since(start).Seconds()
	}
	b.ReportMetric(consumerRate, "consumer_events/s")
	b.ReportMetric(bareRate, "bare_sdk_events/s")
	b.ReportMetric(consumerRate/bareRate, "ratio")
}
