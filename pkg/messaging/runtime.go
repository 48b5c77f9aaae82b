package messaging

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"mediagw/pkg/service"
	"mediagw/pkg/topology"
)

// The runtime's shared instances, one per service.Runtime.
type (
	metricsKey struct{}
	sqsKey     struct{}
)

// RuntimeMetrics are the messaging metrics of rt's registry, shared by
// its consumers and publishers.
func RuntimeMetrics(rt *service.Runtime) *Metrics {
	return rt.Shared(metricsKey{}, func() any { return NewMetrics(rt.Metrics) }).(*Metrics)
}

// Consume registers on rt a consumer of q: messages go through the
// default middlewares (DefaultMiddlewares) to h, failures are redelivered
// with backoff and dead-lettered on q's MaxReceiveCount-th delivery, and
// /readyz checks that the queue answers. opts adjust the consumer
// (concurrency, middlewares, timings in tests).
func Consume(rt *service.Runtime, q *service.Queue, h Handler, opts ...func(*ConsumerConfig)) {
	client := rt.Shared(sqsKey{}, func() any { return sqs.NewFromConfig(rt.AWS) }).(*sqs.Client)
	cfg := ConsumerConfig{
		Queue: q.Label(), QueueURL: q.URL, DeadLetterQueueURL: q.DLQURL, MaxReceiveCount: q.MaxReceiveCount,
		// Leave part of the grace to the rest of the shutdown.
		ShutdownGrace: rt.Grace * 4 / 5,
		Logger:        rt.Logger, Metrics: RuntimeMetrics(rt),
	}
	for _, o := range opts {
		o(&cfg)
	}
	consumer := NewConsumer(client, cfg, h)
	url := q.URL
	rt.AddReadinessCheck("queue "+q.Label(), func(ctx context.Context) error {
		_, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		return err
	})
	rt.Go("consume "+q.Label(), consumer.Run)
}

// TopicPublisher returns a publisher of rt's events to topics; each event
// type goes to the topic of topology.json that carries it, with rt.Name as
// the source.
func TopicPublisher(rt *service.Runtime, topics ...*service.Topic) *Publisher {
	arns := map[string]string{}
	for _, t := range topics {
		arns[t.Name] = t.ARN
	}
	return NewPublisher(sns.NewFromConfig(rt.AWS), PublisherConfig{
		Source: rt.Name, Routes: topology.Default().Routes(arns), Logger: rt.Logger, Metrics: RuntimeMetrics(rt),
	})
}
