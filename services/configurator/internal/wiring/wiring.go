// Package wiring wires the configurator: its settings, the adapters (SSM,
// ISAPI, the login budget on DynamoDB, Prometheus, the event publisher),
// the use cases of internal/app, and the ports — the consumer of its queue
// and the recheck of pending configurations (Build) and the operator
// commands (Commands).
package wiring

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"mediagw/pkg/awsenv"
	"mediagw/pkg/loginbudget"
	lbddb "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/messaging"
	"mediagw/pkg/redact"
	"mediagw/pkg/service"
	"mediagw/services/configurator/internal/adapters/isapi"
	"mediagw/services/configurator/internal/adapters/prometheus"
	"mediagw/services/configurator/internal/adapters/ssm"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/ports/cli"
	"mediagw/services/configurator/internal/ports/sqs"
)

// Name is the service's name in logs, metrics and event meta.
const Name = "configurator"

// Resources of topology.json.
const (
	QueueName = "mediagw-configurator-gateway-events"
	TopicName = "mediagw-gateway-events"
	// LoginBudgetTable is the shared login budget (LOGIN_BUDGET_TABLE).
	LoginBudgetTable = "mediagw-login-budget"
)

// Run configures a configuration run, in the service and in the apply command.
type Run struct {
	ParameterRoot   string
	GatewayUser     string
	GatewayTimeout  time.Duration
	RetryInitial    time.Duration
	RetryMaxElapsed time.Duration
	RebootTimeout   time.Duration
	LockWaitMax     time.Duration
	// LoginBudgetTable is the real name of the login budget's table.
	LoginBudgetTable string
	// BudgetOptions tune the login budget (tests: its clock).
	BudgetOptions []loginbudget.Option
}

// Settings configure the service.
type Settings struct {
	Run
	Queue       *service.Queue
	Topic       *service.Topic
	Concurrency int
	// CredentialRecheck is how often pending configurations are looked at
	// (default 15 s).
	CredentialRecheck time.Duration
	// Consumer timings; zero takes the messaging defaults (tests shorten them).
	ReceiveWait, VisibilityTimeout, RedeliveryBase, RedeliveryMax time.Duration
}

// DeclareRun registers the run settings with c; the returned function
// reads them after c.Parse.
func DeclareRun(c *service.Config) func() Run {
	root := c.String("PARAMETER_ROOT", "/mediagw", "SSM parameter root; a gateway's parameters are under <root>/gateways/<gateway-id>/")
	user := c.String("GATEWAY_USER", isapi.DefaultUser, "the gateway's admin user")
	timeout := c.Duration("GATEWAY_TIMEOUT", 10*time.Second, "timeout of each request to a gateway")
	retryMax := c.Duration("GATEWAY_RETRY_MAX_ELAPSED", 30*time.Second, "how long transient gateway failures are retried within a run")
	reboot := c.Duration("GATEWAY_REBOOT_TIMEOUT", 5*time.Minute, "how long to wait for a gateway to come back after a reboot")
	lockWait := c.Duration("GATEWAY_LOCK_WAIT_MAX", time.Minute, "a login lockout ending within this is waited out once per run; longer ones fail the run at once")
	table := c.Table(LoginBudgetTable)
	return func() Run {
		return Run{ParameterRoot: *root, GatewayUser: *user, GatewayTimeout: *timeout,
			RetryMaxElapsed: *retryMax, RebootTimeout: *reboot, LockWaitMax: *lockWait, LoginBudgetTable: *table}
	}
}

// Declare registers the service's settings with c; the returned function
// reads them after c.Parse.
func Declare(c *service.Config) func() Settings {
	topic := c.Topic(TopicName)
	run := DeclareRun(c)
	queue := c.Queue(QueueName)
	conc := c.Int("CONFIGURATOR_CONCURRENCY", 4, "gateways configured at once (runs on one gateway are always sequential)")
	var recheck *time.Duration
	recheck = c.Duration("CREDENTIAL_RECHECK", 15*time.Second,
		"how often configurations pending on their passwords are looked at; one runs again as soon as the login budget admits one of its passwords (a new parameter version, the end of a lock or of the budget's window)",
		service.Check(func() error {
			if *recheck <= 0 {
				return errors.New("must be positive")
			}
			return nil
		}))
	return func() Settings {
		return Settings{Run: run(), Queue: queue, Topic: topic, Concurrency: *conc, CredentialRecheck: *recheck}
	}
}

// NewConfigurator builds the run on SSM, ISAPI and the login budget on
// DynamoDB; every password it reads is registered in secrets.
func NewConfigurator(awsCfg aws.Config, s Run, log *slog.Logger, m app.Metrics, secrets *redact.Secrets) *app.Configurator {
	opts := append([]loginbudget.Option{loginbudget.WithLogger(log)}, s.BudgetOptions...)
	budget := loginbudget.New(lbddb.New(awsddb.NewFromConfig(awsCfg), s.LoginBudgetTable), app.Component, opts...)
	dialer := isapi.Dialer{User: s.GatewayUser, Timeout: s.GatewayTimeout, Budget: budget, Secrets: secrets}
	return app.New(ssm.NewFromConfig(awsCfg, s.ParameterRoot), dialer.Open, budget,
		app.Options{User: s.GatewayUser, RetryInitial: s.RetryInitial, RetryMaxElapsed: s.RetryMaxElapsed,
			RebootTimeout: s.RebootTimeout, LockWaitMax: s.LockWaitMax, Logger: log, Metrics: m, Secrets: secrets})
}

// Build wires the service on rt: it consumes gateway events from its
// queue, configures the gateways and publishes the results.
func Build(_ context.Context, rt *service.Runtime, s Settings) error {
	if s.Queue == nil || s.Queue.URL == "" || s.Topic == nil || s.Topic.ARN == "" {
		return errors.New("configurator: queue URL and gateway events topic are required")
	}
	if s.LoginBudgetTable == "" {
		return errors.New("configurator: the login budget table is required: every login goes through it")
	}
	log := rt.Logger
	conf := NewConfigurator(rt.AWS, s.Run, log, prometheus.NewMetrics(rt.Metrics), rt.Secrets())
	rep := app.NewReporter(conf, messaging.TopicPublisher(rt, s.Topic))
	router := messaging.NewRouter()
	sqs.Register(router, rep)
	recheck := s.CredentialRecheck
	if recheck <= 0 {
		recheck = 15 * time.Second
	}
	rt.Every("credential-recheck", recheck, app.NewResumer(conf, rep, recheck).Resume)
	mm := messaging.RuntimeMetrics(rt)
	messaging.Consume(rt, s.Queue, router.Handle, func(c *messaging.ConsumerConfig) {
		c.Concurrency = s.Concurrency
		c.WaitTime, c.VisibilityTimeout, c.RetryBase, c.RetryMax = s.ReceiveWait, s.VisibilityTimeout, s.RedeliveryBase, s.RedeliveryMax
		// No in-process retry middleware: a run retries its own transient
		// steps, and running it again at once would spend login attempts;
		// the queue's redelivery backoff spaces the runs instead.
		c.Middlewares = []messaging.Middleware{
			messaging.Recoverer(log), messaging.Correlation(), messaging.Logging(log), messaging.Measure(mm, s.Queue.Label()),
		}
	})
	log.Info("consuming gateway events", "queue_url", s.Queue.URL, "parameter_root", s.ParameterRoot)
	return nil
}

// Commands gives the operator commands (ports/cli) their settings and
// adapters: the run's settings as the service declares them, the run on
// SSM, ISAPI and the same login budget as the service's, and the publisher
// to the gateway events topic, over the AWS configuration every binary
// uses (pkg/awsenv).
func Commands() cli.Wiring {
	return cli.Wiring{
		Name: Name,
		DeclareRun: func(c *service.Config) func(context.Context, *slog.Logger, *redact.Secrets) (app.Configurer, error) {
			run := DeclareRun(c)
			return func(ctx context.Context, log *slog.Logger, secrets *redact.Secrets) (app.Configurer, error) {
				awsCfg, err := awsenv.Load(ctx)
				if err != nil {
					return nil, err
				}
				return NewConfigurator(awsCfg, run(), log, nil, secrets), nil
			}
		},
		Publisher: func(ctx context.Context, t *service.Topic, log *slog.Logger) (app.EventPublisher, error) {
			awsCfg, err := awsenv.Load(ctx)
			if err != nil {
				return nil, err
			}
			return messaging.TopicPublisher(service.NewRuntime(Name, log, awsCfg), t), nil
		},
	}
}
