package sns_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	"google.golang.org/protobuf/proto"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/device-watcher/internal/adapters/sns"
	"mediagw/services/device-watcher/internal/domain"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

type publishFunc func(ctx context.Context, ev proto.Message) error

func (f publishFunc) Publish(ctx context.Context, ev proto.Message) error { return f(ctx, ev) }

// A topic that exists takes the event; a missing topic, or an event type
// without a topic, is a misconfiguration; a passing fault is not.
func TestPublishFaults(t *testing.T) {
	ctx := context.Background()
	client := awssns.NewFromConfig(awstest.Config(t))
	topic, err := client.CreateTopic(ctx, &awssns.CreateTopicInput{Name: aws.String(awstest.Name("dwsns"))})
	if err != nil {
		t.Fatal(err)
	}
	publisher := func(arn string) *sns.Publisher {
		return sns.NewPublisher(messaging.NewPublisher(client, messaging.PublisherConfig{Source: "device-watcher",
			Routes: messaging.Routes{"mediagw.events.v1.DeviceOnline": arn}}))
	}
	if err := publisher(aws.ToString(topic.TopicArn)).Publish(ctx, &eventsv1.DeviceOnline{GatewayId: "gw"}); err != nil {
		t.Fatalf("publish to the topic: %v", err)
	}
	if err := publisher(aws.ToString(topic.TopicArn)+"-missing").Publish(ctx, &eventsv1.DeviceOnline{GatewayId: "gw"}); !errors.Is(err, domain.ErrMisconfigured) {
		t.Fatalf("publish to a missing topic: %v", err)
	}
	if err := publisher(aws.ToString(topic.TopicArn)).Publish(ctx, &eventsv1.DeviceOffline{GatewayId: "gw"}); !errors.Is(err, domain.ErrMisconfigured) {
		t.Fatalf("publish of a type without a topic: %v", err)
	}
	passing := errors.New("connection reset")
	p := sns.NewPublisher(publishFunc(func(context.Context, proto.Message) error { return passing }))
	if err := p.Publish(ctx, &eventsv1.DeviceOnline{}); !errors.Is(err, passing) || errors.Is(err, domain.ErrMisconfigured) {
		t.Fatalf("a passing fault: %v", err)
	}
}
