// Package wiring builds the health-sentinel from its settings: the
// incident store (DynamoDB), the mailer (SNS), the footage counter (S3),
// the use cases of internal/app over them, the recovery side
// (buildRecovery, recovery.go) with the Sentinel as its Reporter, and the
// ports: the consumers of its two queues, the mail flush, the scheduled
// health checks and the snapshot pass, all registered on the runtime.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"mediagw/pkg/messaging"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	ddbadapter "mediagw/services/health-sentinel/internal/adapters/dynamodb"
	promadapter "mediagw/services/health-sentinel/internal/adapters/prometheus"
	s3adapter "mediagw/services/health-sentinel/internal/adapters/s3"
	snsadapter "mediagw/services/health-sentinel/internal/adapters/sns"
	"mediagw/services/health-sentinel/internal/app"
	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
	sqsport "mediagw/services/health-sentinel/internal/ports/sqs"
)

// Resources of topology.json.
const (
	EventsQueue        = "mediagw-health-sentinel-events"
	TaskStateQueue     = "mediagw-health-sentinel-task-state"
	AlertEmailTopic    = "mediagw-alert-email"
	GatewayEventsTopic = "mediagw-gateway-events"
	IncidentsTable     = "mediagw-incidents"
	RecordingsBucket   = "mediagw-recordings"
)

// Settings is the health-sentinel's whole configuration.
type Settings struct {
	Events, TaskState *service.Queue
	// QueueWaitTime is the SQS long-poll wait.
	QueueWaitTime time.Duration

	AlertEmail, GatewayEvents *service.Topic
	IncidentsTable            string
	// DeviceMediaURLTable is the device-watcher's table: a gateway's cameras.
	DeviceMediaURLTable string
	RecordingsBucket    string
	KeyPrefix           string
	// AlertEmailAddress (ALERT_EMAIL) is subscribed to the alert-email topic at start.
	AlertEmailAddress string

	Policy        domain.Policy
	MailLimit     int
	MailWindow    time.Duration
	FlushInterval time.Duration

	HealthCheckInterval  time.Duration
	SnapshotPassInterval time.Duration

	// How a failed recording task's log stream is named.
	RecorderContainer string
	LogStreamPrefix   string

	Recovery RecoverySettings
}

// Declare registers every setting with c and returns a function that gives
// the parsed Settings (call it after c is parsed, inside service.Main).
func Declare(c *service.Config) func() Settings {
	events := c.Queue(EventsQueue)
	states := c.Queue(TaskStateQueue)
	wait := c.Duration("QUEUE_WAIT_TIME", 20*time.Second, "SQS long-poll wait")
	mailTopic := c.Topic(AlertEmailTopic)
	gwTopic := c.Topic(GatewayEventsTopic)
	table := c.Table(IncidentsTable)
	cams := c.Table("deviceMediaURL")
	bucket := c.Bucket(RecordingsBucket)
	prefix := c.String("RECORDINGS_KEY_PREFIX", "recordings", "S3 key prefix of the segments (to count the footage missed)")
	email := c.String("ALERT_EMAIL", "", "address subscribed to the alert mails (SNS email subscription, confirmed by a link SNS mails); empty: none")

	positive := func(d **time.Duration) service.Option {
		return service.Check(func() error {
			if **d <= 0 {
				return errors.New("must be positive")
			}
			return nil
		})
	}
	notNegative := func(d **time.Duration) service.Option {
		return service.Check(func() error {
			if **d < 0 {
				return errors.New("must not be negative")
			}
			return nil
		})
	}
	p := domain.DefaultPolicy()
	var camHold, cfgHold, stable, quiet, settle, window, flush, check, snaps *time.Duration
	camHold = c.Duration("CAMERA_MAIL_HOLD", p.Hold[domain.KindCamera], "a camera's first mail waits this long, so that a gateway outage explaining it takes it in (and a flap sends nothing)", notNegative(&camHold))
	cfgHold = c.Duration("CONFIG_MAIL_HOLD", p.Hold[domain.KindConfig], "a configuration failure's first mail waits this long (the configurator retries)", notNegative(&cfgHold))
	stable = c.Duration("TASK_STABLE_AFTER", p.Stable, "a camera's recording task running this long without failing resolves its incident", positive(&stable))
	quiet = c.Duration("ALERT_QUIET_AFTER", p.AlertQuiet, "an Alert not repeated for this long resolves its incident", positive(&quiet))
	settle = c.Duration("RESOLVED_MAIL_SETTLE", p.Settle, "the resolved mail waits this long, so that the footage missed counts the segments recorded since", notNegative(&settle))
	var limit *int
	limit = c.Int("MAIL_LIMIT", 10, "at most this many mails per gateway per MAIL_WINDOW; the rest go into one digest at the window's end",
		service.Check(func() error {
			if *limit < 1 {
				return errors.New("must be at least 1")
			}
			return nil
		}))
	window = c.Duration("MAIL_WINDOW", time.Hour, "the storm limit's window", positive(&window))
	flush = c.Duration("MAIL_FLUSH_INTERVAL", 5*time.Second, "how often held and pending mails, auto-resolutions and digests are looked at", positive(&flush))
	check = c.Duration("HEALTH_CHECK_INTERVAL", 20*time.Second, "how often every gateway's API and instance are checked", positive(&check))
	snaps = c.Duration("SNAPSHOT_PASS_INTERVAL", 5*time.Minute, "how often the snapshot schedule is looked at (the RPO itself is a recovery setting)", positive(&snaps))
	container := c.String("RECORDER_CONTAINER", topology.Default().ECS.RecorderContainer, "recorder container name in the task definition")
	streamPrefix := c.String("RECORDER_LOG_STREAM_PREFIX", "mediagw", "awslogs stream prefix of the recorder's task definition: a task's log stream is <prefix>/<container>/<task id>")
	rec := declareRecovery(c)

	return func() Settings {
		return Settings{
			Events: events, TaskState: states, QueueWaitTime: *wait,
			AlertEmail: mailTopic, GatewayEvents: gwTopic, IncidentsTable: *table, DeviceMediaURLTable: *cams, RecordingsBucket: *bucket, KeyPrefix: *prefix,
			AlertEmailAddress: *email,
			Policy: domain.Policy{Hold: map[domain.Kind]time.Duration{domain.KindCamera: *camHold, domain.KindConfig: *cfgHold},
				Stable: *stable, AlertQuiet: *quiet, Settle: *settle},
			MailLimit: *limit, MailWindow: *window, FlushInterval: *flush,
			HealthCheckInterval: *check, SnapshotPassInterval: *snaps,
			RecorderContainer: *container, LogStreamPrefix: *streamPrefix,
			Recovery: rec(),
		}
	}
}

// Validate checks what Declare's checks check, for settings built in code.
func (s Settings) Validate() error {
	var errs []error
	bad := func(v, msg string) { errs = append(errs, &service.ConfigError{Var: v, Err: errors.New(msg)}) }
	for i, q := range []*service.Queue{s.Events, s.TaskState} {
		if q == nil || q.URL == "" {
			bad(topology.EnvName([]string{EventsQueue, TaskStateQueue}[i], "QUEUE_URL"), "required")
		}
	}
	for i, t := range []*service.Topic{s.AlertEmail, s.GatewayEvents} {
		if t == nil || t.ARN == "" {
			bad(topology.EnvName([]string{AlertEmailTopic, GatewayEventsTopic}[i], "TOPIC_ARN"), "required")
		}
	}
	if s.IncidentsTable == "" {
		bad(topology.EnvName(IncidentsTable, "TABLE"), "required")
	}
	if s.DeviceMediaURLTable == "" {
		bad(topology.EnvName("deviceMediaURL", "TABLE"), "required")
	}
	if s.MailLimit < 1 || s.MailWindow <= 0 || s.FlushInterval <= 0 || s.HealthCheckInterval <= 0 || s.SnapshotPassInterval <= 0 ||
		s.Policy.Stable <= 0 || s.Policy.AlertQuiet <= 0 {
		bad("MAIL_LIMIT, MAIL_WINDOW, MAIL_FLUSH_INTERVAL, HEALTH_CHECK_INTERVAL, SNAPSHOT_PASS_INTERVAL, TASK_STABLE_AFTER, ALERT_QUIET_AFTER", "must be positive")
	}
	return errors.Join(errs...)
}

// Build wires the health-sentinel on rt.
func Build(ctx context.Context, rt *service.Runtime, s Settings) error {
	_, err := build(ctx, rt, s, options{})
	return err
}

// options are what tests replace.
type options struct {
	// recoverer builds the recovery side for a Reporter (default buildRecovery).
	recoverer recovererFunc
	// now is the incidents' clock (default time.Now).
	now func() time.Time
}

// built is what component tests look into.
type built struct {
	incidents *app.Incidents
	sentinel  *app.Sentinel
	mailer    *snsadapter.Mailer
}

// recovererFunc builds the recovery side for a Reporter; nil means
// buildRecovery (tests give their own).
type recovererFunc func(ctx context.Context, rt *service.Runtime, rep recovery.Reporter) (app.Recoverer, error)

// gatewayLister is what the Recoverer offers when it knows its gateways.
type gatewayLister interface{ GatewayIDs() []string }

type listedGateways struct{ rec app.Recoverer }

func (g listedGateways) IDs(context.Context) ([]string, error) {
	if l, ok := g.rec.(gatewayLister); ok {
		return l.GatewayIDs(), nil
	}
	return nil, nil
}

func build(ctx context.Context, rt *service.Runtime, s Settings, o options) (*built, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cfg := rt.AWS
	mailer := snsadapter.NewMailer(sns.NewFromConfig(cfg), s.AlertEmail.ARN)
	if s.AlertEmailAddress != "" {
		already, err := mailer.EnsureEmail(ctx, s.AlertEmailAddress)
		if err != nil {
			return nil, fmt.Errorf("ALERT_EMAIL: %w", err)
		}
		rt.Logger.InfoContext(ctx, "alert mails go to ALERT_EMAIL", "subscribed_before", already,
			"note", "SNS mails a confirmation link first when the address is new")
	}
	now := o.now
	if now == nil {
		now = time.Now
	}
	db := dynamodb.NewFromConfig(cfg)
	incidents := app.NewIncidents(ddbadapter.NewStore(db, s.IncidentsTable), mailer,
		// An emulator serves buckets by path, not by host name.
		s3adapter.NewFootage(s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = o.BaseEndpoint != nil }), s.RecordingsBucket, s.KeyPrefix), app.Config{
			Policy: s.Policy, MailLimit: s.MailLimit, MailWindow: s.MailWindow, Now: now,
			Logger: rt.Logger, Metrics: promadapter.NewMetrics(rt.Metrics), Cameras: ddbadapter.NewCameras(db, s.DeviceMediaURLTable),
		})
	sentinel := app.NewSentinel(ctx, incidents, messaging.TopicPublisher(rt, s.GatewayEvents), now, rt.Logger)
	newRecoverer := o.recoverer
	if newRecoverer == nil {
		newRecoverer = func(ctx context.Context, rt *service.Runtime, rep recovery.Reporter) (app.Recoverer, error) {
			return buildRecovery(ctx, rt, s.Recovery, rep)
		}
	}
	rec, err := newRecoverer(ctx, rt, sentinel)
	if err != nil {
		return nil, fmt.Errorf("recovery: %w", err)
	}
	sentinel.SetRecoverer(rec, listedGateways{rec})

	consumer := func(c *messaging.ConsumerConfig) { c.WaitTime, c.ShutdownGrace = s.QueueWaitTime, 10*time.Second }
	messaging.Consume(rt, s.Events, sqsport.Events(incidents, sentinel).Handle, consumer)
	messaging.Consume(rt, s.TaskState, sqsport.TaskState(incidents, sqsport.TaskStateConfig{
		Container: s.RecorderContainer, LogStreamPrefix: s.LogStreamPrefix}).Handle, consumer)
	rt.Go("recoveries", sentinel.Run)
	rt.Every("mail flush", s.FlushInterval, incidents.Flush)
	rt.Every("health checks", s.HealthCheckInterval, sentinel.CheckAll)
	rt.Every("snapshots", s.SnapshotPassInterval, sentinel.Snapshots)

	// Mails owed from before a restart go out now, not a flush later.
	if err := incidents.Flush(ctx); err != nil && ctx.Err() == nil {
		rt.Logger.ErrorContext(ctx, "start-up mail flush incomplete; retried every interval", "err", err)
	}
	rt.Logger.InfoContext(ctx, "health-sentinel wired", "health_check_interval", s.HealthCheckInterval.String(),
		"mail_limit", s.MailLimit, "mail_window", s.MailWindow.String())
	return &built{incidents: incidents, sentinel: sentinel, mailer: mailer}, nil
}
