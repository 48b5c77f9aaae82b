package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/prometheus/client_golang/prometheus"

	"mediagw/pkg/messaging"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	"mediagw/services/configurator/internal/adapters/isapi"
	ssmparams "mediagw/services/configurator/internal/adapters/ssm"
	"mediagw/services/configurator/internal/configurator"
)

// Name is the service's name in logs, metrics and event meta.
const Name = "configurator"

// Settings configure a configuration run, in the service and the commands.
type Settings struct {
	GatewayEventsTopicARN string
	ParameterRoot         string
	GatewayUser           string
	GatewayTimeout        time.Duration
	RetryInitial          time.Duration
	RetryMaxElapsed       time.Duration
	RebootTimeout         time.Duration
	LockWaitMax           time.Duration
}

// Config configures the service.
type Config struct {
	Settings
	QueueURL        string
	DLQURL          string
	MaxReceiveCount int
	Concurrency     int
	// Consumer timings; zero takes the messaging defaults (tests shorten them).
	ReceiveWait, VisibilityTimeout, RedeliveryBase, RedeliveryMax time.Duration
}

// declareSettings registers the run settings with c; the returned function
// reads them after c.Parse.
func declareSettings(c *service.Config, topicRequired bool) func() Settings {
	var topicOpts []service.Option
	if topicRequired {
		topicOpts = append(topicOpts, service.Required())
	}
	topic := c.String("GATEWAY_EVENTS_TOPIC_ARN", "", "SNS topic of gateway events (results are published there)", topicOpts...)
	root := c.String("PARAMETER_ROOT", "/mediagw", "SSM parameter root; a gateway's parameters are under <root>/gateways/<gateway-id>/")
	user := c.String("GATEWAY_USER", isapi.DefaultUser, "the gateway's admin user")
	timeout := c.Duration("GATEWAY_TIMEOUT", 10*time.Second, "timeout of each request to a gateway")
	retryMax := c.Duration("GATEWAY_RETRY_MAX_ELAPSED", 30*time.Second, "how long transient gateway failures are retried within a run")
	reboot := c.Duration("GATEWAY_REBOOT_TIMEOUT", 5*time.Minute, "how long to wait for a gateway to come back after a reboot")
	lockWait := c.Duration("GATEWAY_LOCK_WAIT_MAX", time.Minute, "a login lockout ending within this is waited out once per run; longer ones fail the run at once")
	return func() Settings {
		return Settings{GatewayEventsTopicARN: *topic, ParameterRoot: *root, GatewayUser: *user, GatewayTimeout: *timeout,
			RetryMaxElapsed: *retryMax, RebootTimeout: *reboot, LockWaitMax: *lockWait}
	}
}

// Declare registers the service's settings with c; the returned function
// reads them after c.Parse.
func Declare(c *service.Config) func() Config {
	settings := declareSettings(c, true)
	queue := c.String("CONFIGURATOR_GATEWAY_EVENTS_QUEUE_URL", "", "SQS queue of GatewayProvisioned and GatewayRecovered events", service.Required())
	dlq := c.String("CONFIGURATOR_GATEWAY_EVENTS_DLQ_URL", "", "its dead-letter queue")
	maxReceive := c.Int("CONFIGURATOR_GATEWAY_EVENTS_MAX_RECEIVE_COUNT", 5, "deliveries before a failing message is dead-lettered")
	conc := c.Int("CONFIGURATOR_CONCURRENCY", 4, "gateways configured at once (runs on one gateway are always sequential)")
	return func() Config {
		return Config{Settings: settings(), QueueURL: *queue, DLQURL: *dlq, MaxReceiveCount: *maxReceive, Concurrency: *conc}
	}
}

// NewConfigurator builds a Configurator on SSM and ISAPI.
func NewConfigurator(awsCfg aws.Config, s Settings, log *slog.Logger, metrics *configurator.Metrics) *configurator.Configurator {
	dialer := isapi.Dialer{User: s.GatewayUser, Timeout: s.GatewayTimeout}
	return configurator.New(ssmparams.New(ssm.NewFromConfig(awsCfg), s.ParameterRoot),
		func(base string) (configurator.Gateway, error) { return dialer.Dial(base) },
		configurator.Options{User: s.GatewayUser, RetryInitial: s.RetryInitial, RetryMaxElapsed: s.RetryMaxElapsed,
			RebootTimeout: s.RebootTimeout, LockWaitMax: s.LockWaitMax, Logger: log, Metrics: metrics})
}

// NewPublisher publishes to the gateway events topic.
func NewPublisher(awsCfg aws.Config, topicARN string, log *slog.Logger, reg prometheus.Registerer) *messaging.Publisher {
	var m *messaging.Metrics
	if reg != nil {
		m = messaging.NewMetrics(reg)
	}
	return newPublisher(awsCfg, topicARN, log, m)
}

func newPublisher(awsCfg aws.Config, topicARN string, log *slog.Logger, m *messaging.Metrics) *messaging.Publisher {
	return messaging.NewPublisher(sns.NewFromConfig(awsCfg), messaging.PublisherConfig{
		Source: Name, Logger: log, Metrics: m,
		Routes: topology.Default().Routes(map[string]string{"mediagw-gateway-events": topicARN}),
	})
}

// Serve runs the service until ctx ends: it consumes gateway events,
// configures the gateways and publishes the results.
func Serve(ctx context.Context, rt *service.Runtime, cfg Config) error {
	if cfg.QueueURL == "" || cfg.GatewayEventsTopicARN == "" {
		return errors.New("configurator: queue URL and gateway events topic are required")
	}
	log := rt.Logger
	mm := messaging.NewMetrics(rt.Metrics)
	pub := newPublisher(rt.AWS, cfg.GatewayEventsTopicARN, log, mm)
	conf := NewConfigurator(rt.AWS, cfg.Settings, log, configurator.NewMetrics(rt.Metrics))
	router := messaging.NewRouter()
	NewHandler(conf, pub, log).Register(router)

	sqsc := sqs.NewFromConfig(rt.AWS)
	const queue = "configurator-gateway-events"
	consumer := messaging.NewConsumer(sqsc, messaging.ConsumerConfig{
		Queue: queue, QueueURL: cfg.QueueURL, DeadLetterQueueURL: cfg.DLQURL, MaxReceiveCount: cfg.MaxReceiveCount,
		Concurrency: cfg.Concurrency, WaitTime: cfg.ReceiveWait, VisibilityTimeout: cfg.VisibilityTimeout,
		RetryBase: cfg.RedeliveryBase, RetryMax: cfg.RedeliveryMax, Logger: log, Metrics: mm,
		// No in-process retry middleware: a run retries its own transient
		// steps, and running it again at once would spend login attempts;
		// the queue's redelivery backoff spaces the runs instead.
		Middlewares: []messaging.Middleware{
			messaging.Recoverer(log), messaging.Correlation(), messaging.Logging(log), messaging.Measure(mm, queue),
		},
	}, router.Handle)
	rt.AddReadinessCheck("queue", func(ctx context.Context) error {
		_, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(cfg.QueueURL),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		return nil
	})
	rt.SetReady(true)
	log.Info("consuming gateway events", "queue_url", cfg.QueueURL, "parameter_root", cfg.ParameterRoot)
	return consumer.Run(ctx)
}
