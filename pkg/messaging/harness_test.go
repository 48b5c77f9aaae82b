package messaging

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"

	"mediagw/deploy/provision"
	"mediagw/pkg/topology"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/testkit"
)

func TestMain(m *testing.M) {
	os.Exit(awstest.Main(m))
}

// env is a small topology on the emulator: one topic, queues subscribed
// with filters, each with a DLQ.
type env struct {
	sns  *sns.Client
	sqs  *sqs.Client
	res  provision.Resources
	logs *testkit.Buffer
	log  *slog.Logger
}

const testTopology = `{
  "topics": [{"name": "events", "events": ["mediagw.events.v1.DeviceOnline", "mediagw.events.v1.DeviceOffline", "mediagw.events.v1.GatewayUnreachable"]}],
  "queues": [
    {"name": "devices", "maxReceiveCount": 3, "visibilityTimeoutSeconds": 30,
     "subscriptions": [{"topic": "events", "events": ["mediagw.events.v1.DeviceOnline", "mediagw.events.v1.DeviceOffline"]}]},
    {"name": "gateways", "maxReceiveCount": 3, "visibilityTimeoutSeconds": 30,
     "subscriptions": [{"topic": "events", "events": ["mediagw.events.v1.GatewayUnreachable"]}]}
  ]
}`

func newEnv(t testing.TB) *env {
	t.Helper()
	cfg := awstest.Config(t)
	def, err := topology.Parse([]byte(testTopology))
	if err != nil {
		t.Fatal(err)
	}
	res, err := provision.Apply(context.Background(), cfg, def, provision.Options{Prefix: awstest.Name("msg") + "-", Only: []string{"topics", "queues"}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	return &env{sns: sns.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg), res: res, logs: logs,
		log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

func (e *env) publisher() *Publisher {
	arn := e.res.Topics["events"]
	return NewPublisher(e.sns, PublisherConfig{Source: "test", Logger: e.log, Routes: Routes{
		"mediagw.events.v1.DeviceOnline":       arn,
		"mediagw.events.v1.DeviceOffline":      arn,
		"mediagw.events.v1.GatewayUnreachable": arn,
	}})
}

func (e *env) consumer(queue string, h Handler, tweak ...func(*ConsumerConfig)) *Consumer {
	q := e.res.Queues[queue]
	cfg := ConsumerConfig{
		Queue: queue, QueueURL: q.URL, DeadLetterQueueURL: q.DLQURL, MaxReceiveCount: q.MaxReceiveCount,
		WaitTime: time.Second, VisibilityTimeout: 4 * time.Second, RetryBase: time.Second, RetryMax: time.Second,
		ShutdownGrace: 10 * time.Second, Logger: e.log, Metrics: NewMetrics(prometheus.NewRegistry()),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	return NewConsumer(e.sqs, cfg, h)
}

// run starts c and returns a function that stops it and waits for Run to return.
func run(t testing.TB, c *Consumer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("consumer Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("consumer did not stop within 30 s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// drain receives everything visible on a queue within wait.
func (e *env) drain(t testing.TB, url string, wait time.Duration) []sqstypes.Message {
	t.Helper()
	var out []sqstypes.Message
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		r, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}, VisibilityTimeout: 60,
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Messages...)
	}
	return out
}
