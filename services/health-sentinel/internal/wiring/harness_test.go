package wiring

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"mediagw/deploy/provision"
	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	ddbadapter "mediagw/services/health-sentinel/internal/adapters/dynamodb"
	"mediagw/services/health-sentinel/internal/app"
	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/servicetest"
	"mediagw/testsupport/testkit"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// env is one health-sentinel, wired as in production, on its own resources
// in the emulator, with a scripted recovery side and a test clock.
type env struct {
	t     *testing.T
	cfg   aws.Config
	res   provision.Resources
	s     Settings
	svc   *built
	clock *testkit.Clock
	rec   *scriptedRecoverer
	sqs   *sqs.Client
	store *ddbadapter.Store
	pub   *messaging.Publisher
}

func newEnv(t *testing.T, tweak func(*Settings)) *env {
	t.Helper()
	cfg := awstest.Config(t)
	prefix := awstest.Name("hs") + "-"
	res, err := provision.Apply(context.Background(), cfg, topology.Default(), provision.Options{Prefix: prefix,
		Only: []string{"topics", "queues", "rules", "tables", "buckets"}})
	if err != nil {
		t.Fatal(err)
	}
	queue := func(name string) *service.Queue {
		q := res.Queues[name]
		return &service.Queue{Name: name, URL: q.URL, DLQURL: q.DLQURL, MaxReceiveCount: q.MaxReceiveCount}
	}
	e := &env{t: t, cfg: cfg, res: res, clock: testkit.NewClock(time.Now().UTC()), sqs: sqs.NewFromConfig(cfg),
		rec: &scriptedRecoverer{health: map[string]recovery.Health{}}}
	e.store = ddbadapter.NewStore(dynamodb.NewFromConfig(cfg), res.Tables[IncidentsTable])
	p := domain.DefaultPolicy()
	p.Settle = 0
	e.s = Settings{
		Events: queue(EventsQueue), TaskState: queue(TaskStateQueue), QueueWaitTime: time.Second,
		AlertEmail:     &service.Topic{Name: AlertEmailTopic, ARN: res.Topics[AlertEmailTopic]},
		GatewayEvents:  &service.Topic{Name: GatewayEventsTopic, ARN: res.Topics[GatewayEventsTopic]},
		IncidentsTable: res.Tables[IncidentsTable], DeviceMediaURLTable: res.Tables["deviceMediaURL"], RecordingsBucket: res.Buckets[RecordingsBucket], KeyPrefix: "recordings",
		Policy: p, MailLimit: 10, MailWindow: time.Hour, FlushInterval: 100 * time.Millisecond,
		// Checks run when a test asks (GatewayUnreachable, or checkAll).
		HealthCheckInterval: time.Hour, SnapshotPassInterval: time.Hour,
		RecorderContainer: "recorder", LogStreamPrefix: "mediagw",
	}
	if tweak != nil {
		tweak(&e.s)
	}
	// Resources are keyed by logical names: route as production does.
	arns := map[string]string{}
	for _, tp := range topology.Default().Topics {
		arns[tp.Name] = res.Topics[tp.Name]
	}
	e.pub = messaging.NewPublisher(sns.NewFromConfig(cfg), messaging.PublisherConfig{Source: "test", Routes: topology.Default().Routes(arns)})
	return e
}

// start builds the health-sentinel as Build does and runs it as Main does.
func (e *env) start() (stop func()) {
	e.t.Helper()
	rt := service.NewRuntime("health-sentinel", slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})), e.cfg)
	stop = servicetest.Run(e.t, rt, func(ctx context.Context, rt *service.Runtime) error {
		b, err := build(ctx, rt, e.s, options{now: e.clock.Now,
			recoverer: func(_ context.Context, _ *service.Runtime, rep recovery.Reporter) (app.Recoverer, error) {
				e.rec.rep = rep
				return e.rec, nil
			}})
		e.svc = b
		return err
	}, 30*time.Second)
	return stop
}

func (e *env) publish(ev proto.Message) {
	e.t.Helper()
	if err := e.pub.Publish(context.Background(), ev); err != nil {
		e.t.Fatal(err)
	}
}

// sendRaw puts a message on a queue as SNS raw delivery would (body and
// event_type, event_id attributes), so that a test controls duplicates
// and order exactly.
func (e *env) sendRaw(queue string, ev proto.Message) {
	e.t.Helper()
	body, err := messaging.Encode(ev)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sendBody(queue, string(body), messaging.EventType(ev), messaging.Meta(ev).GetId())
}

func (e *env) sendBody(queue, body, eventType, eventID string) {
	e.t.Helper()
	attrs := map[string]sqstypes.MessageAttributeValue{}
	if eventType != "" {
		attrs["event_type"] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(eventType)}
	}
	if eventID != "" {
		attrs["event_id"] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(eventID)}
	}
	if _, err := e.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(e.res.Queues[queue].URL),
		MessageBody: aws.String(body), MessageAttributes: attrs}); err != nil {
		e.t.Fatal(err)
	}
}

// mail is one alert mail as the alert-mail queue got it.
type mail struct{ Subject, Body string }

// mails takes every mail that has reached the alert-mail queue so far
// (waiting up to wait for the first).
func (e *env) mails(wait time.Duration) []mail {
	e.t.Helper()
	var out []mail
	q := e.res.Queues["mediagw-alert-mail"].URL
	for {
		r, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 10,
			WaitTimeSeconds: int32(wait / time.Second)})
		if err != nil {
			e.t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		wait = 0
		for _, m := range r.Messages {
			var env struct{ Subject, Message string }
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
				e.t.Fatalf("mail not in an SNS envelope: %v", err)
			}
			out = append(out, mail{env.Subject, env.Message})
			if _, err := e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(q), ReceiptHandle: m.ReceiptHandle}); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// waitMails collects mails until n have come (or fails after within).
func (e *env) waitMails(n int, within time.Duration) []mail {
	e.t.Helper()
	var got []mail
	testkit.Eventually(e.t, within, 10*time.Millisecond, fmt.Sprintf("%d mails", n), func() bool {
		got = append(got, e.mails(time.Second)...)
		return len(got) >= n
	})
	return got
}

// incident reads a key's incident.
func (e *env) incident(key string) domain.Incident {
	e.t.Helper()
	inc, _, err := e.store.Get(context.Background(), key)
	if err != nil {
		e.t.Fatal(err)
	}
	return inc
}

// waitIncident waits until key's incident satisfies cond.
func (e *env) waitIncident(key, what string, within time.Duration, cond func(domain.Incident) bool) domain.Incident {
	e.t.Helper()
	var inc domain.Incident
	testkit.Eventually(e.t, within, 20*time.Millisecond, key+": "+what, func() bool {
		inc = e.incident(key)
		return cond(inc)
	})
	return inc
}

func mailState(inc domain.Incident, kind string) string {
	if m := inc.Mail(kind); m != nil {
		return m.State
	}
	return ""
}

func meta(id string, at time.Time) *eventsv1.EventMeta {
	return &eventsv1.EventMeta{Id: id, OccurredAt: timestamppb.New(at), Source: "test"}
}

func subjects(ms []mail) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Subject)
	}
	return strings.Join(s, " | ")
}

// scriptedRecoverer stands in for the recovery side (its own tests run
// it against emulated EC2 and the simulator): Check answers what the test
// set, Recover reports the steps the test scripted.
type scriptedRecoverer struct {
	mu      sync.Mutex
	rep     recovery.Reporter
	health  map[string]recovery.Health
	recover func(ctx context.Context, gw string, rep recovery.Reporter) error
	checks  int
	recs    int
}

func (r *scriptedRecoverer) setHealth(gw string, api bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	state := map[bool]domain.APIState{true: domain.APIOK, false: domain.APISilent}[api]
	r.health[gw] = recovery.Health{GatewayID: gw, APIAnswers: api, APIState: state, APIDetail: map[bool]string{true: "answers", false: "timeout after 15s"}[api]}
}

func (r *scriptedRecoverer) Check(_ context.Context, gw string) (recovery.Health, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks++
	h, ok := r.health[gw]
	if !ok {
		return recovery.Health{}, fmt.Errorf("unknown gateway %s", gw)
	}
	h.CheckedAt = time.Now()
	return h, nil
}

func (r *scriptedRecoverer) Recover(ctx context.Context, gw string) error {
	r.mu.Lock()
	r.recs++
	fn := r.recover
	r.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(ctx, gw, r.rep)
}

func (r *scriptedRecoverer) SnapshotDue(context.Context) error { return nil }

func (r *scriptedRecoverer) GatewayIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id := range r.health {
		ids = append(ids, id)
	}
	return ids
}

func (r *scriptedRecoverer) counts() (checks, recs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checks, r.recs
}
