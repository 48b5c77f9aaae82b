package wiring

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
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
	store "mediagw/services/task-manager/internal/adapters/dynamodb"
	"mediagw/services/task-manager/internal/adapters/local/localtest"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/servicetest"
	"mediagw/testsupport/testkit"
)

func TestMain(m *testing.M) {
	localtest.Maybe()
	os.Exit(awstest.Main(m))
}

// env is one task-manager, wired as in production, on its own resources
// in the emulator, with the stand-in recorder as its local tasks.
type env struct {
	t     *testing.T
	cfg   aws.Config
	res   provision.Resources
	s     Settings
	svc   *built
	db    *dynamodb.Client
	sqs   *sqs.Client
	pub   *messaging.Publisher
	rows  *store.IPCamera
	spool string
}

// newEnv provisions a prefixed topology and settings for a local-launcher
// task-manager; tweak adjusts the settings before start.
func newEnv(t *testing.T, tweak func(*Settings)) *env {
	t.Helper()
	cfg := awstest.Config(t)
	prefix := awstest.Name("tm") + "-"
	def := topology.Default()
	// Every test's rule would match every test's local task state changes
	// (one emulator, one bus); narrow each to its own cluster.
	for i, r := range def.Rules {
		var p map[string]any
		if err := json.Unmarshal(r.Pattern, &p); err != nil {
			t.Fatal(err)
		}
		p["detail"] = map[string]any{"clusterArn": []string{app.LocalClusterArn(prefix + def.ECS.Cluster)}}
		def.Rules[i].Pattern, _ = json.Marshal(p)
	}
	res, err := provision.Apply(context.Background(), cfg, def, provision.Options{Prefix: prefix, LocalParameters: true})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cfg: cfg, res: res, db: dynamodb.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg), spool: t.TempDir()}
	e.s = Settings{
		DeviceEvents:        queueOf(res, DeviceEventsQueue),
		TaskState:           queueOf(res, TaskStateQueue),
		QueueWaitTime:       time.Second,
		TaskEvents:          &service.Topic{Name: TaskEventsTopic, ARN: res.Topics[TaskEventsTopic]},
		Alerts:              &service.Topic{Name: AlertsTopic, ARN: res.Topics[AlertsTopic]},
		DeviceMediaURLTable: res.Tables["deviceMediaURL"], IPCameraTable: res.Tables["ip-camera"],
		RecordingsBucket: res.Buckets["mediagw-recordings"], KeyPrefix: "recordings", ParameterRoot: res.ParameterRoot,
		LoginBudgetTable: res.Tables["mediagw-login-budget"], Launcher: LauncherLocal,
		Policy: domain.Policy{RestartInitial: 300 * time.Millisecond, RestartMax: 5 * time.Second, MaxFailures: 3,
			FailureWindow: time.Minute, GiveUpCooldown: time.Hour, LaunchGrace: 3 * time.Second},
		ReconcileInterval: time.Hour, AbsentGrace: time.Hour,
		RTSPUser: "admin", PasswordParameter: "{root}/gateways/{gateway}/Password", SegmentLength: 30 * time.Second,
		StopTimeout: 3 * time.Second, Cluster: res.Cluster, Container: "recorder",
		RecorderBinary: os.Args[0], RecorderArgs: []string{localtest.Arg}, LocalSpoolDir: e.spool,
		LocalPassEnv: []string{"PATH", "AWS_*"},
	}
	if tweak != nil {
		tweak(&e.s)
	}
	e.rows = store.NewIPCamera(e.db, res.Tables["ip-camera"])
	arn := res.Topics["mediagw-device-events"]
	e.pub = messaging.NewPublisher(sns.NewFromConfig(cfg), messaging.PublisherConfig{Source: "device-watcher", Routes: messaging.Routes{
		"mediagw.events.v1.DeviceOnline": arn, "mediagw.events.v1.DeviceOffline": arn, "mediagw.events.v1.DeviceDeleted": arn,
	}})
	return e
}

func queueOf(res provision.Resources, name string) *service.Queue {
	q := res.Queues[name]
	return &service.Queue{Name: name, URL: q.URL, DLQURL: q.DLQURL, MaxReceiveCount: q.MaxReceiveCount}
}

// start builds the task-manager as Build does and runs it, as Main does,
// until stop is called or the test ends.
func (e *env) start() (stop func()) {
	e.t.Helper()
	rt := service.NewRuntime("task-manager", slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})), e.cfg)
	stop = servicetest.Run(e.t, rt, func(ctx context.Context, rt *service.Runtime) error {
		b, err := build(ctx, rt, e.s)
		e.svc = b
		return err
	}, 30*time.Second)
	return stop
}

func deleteChannel(e *env, dev string, ch int) *dynamodb.DeleteItemInput {
	return &dynamodb.DeleteItemInput{TableName: aws.String(e.res.Tables["deviceMediaURL"]), Key: map[string]ddbtypes.AttributeValue{
		"device_index": &ddbtypes.AttributeValueMemberS{Value: dev},
		"channel":      &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(ch)},
	}}
}

var t0 = time.Now().UTC().Truncate(time.Second)

func meta(id string, at time.Time) *eventsv1.EventMeta {
	return &eventsv1.EventMeta{Id: id, OccurredAt: timestamppb.New(at)}
}

func channels(n int) []*eventsv1.Channel {
	var out []*eventsv1.Channel
	for i := 1; i <= n; i++ {
		out = append(out, &eventsv1.Channel{Channel: int32(i), MediaUrl: fmt.Sprintf("rtsp://127.0.0.1:8554/Streaming/Channels/%d01", i)})
	}
	return out
}

func (e *env) online(dev string, id string, at time.Time) *eventsv1.DeviceOnline {
	return &eventsv1.DeviceOnline{Meta: meta(id, at), GatewayId: "gw-local", DeviceIndex: dev, Channels: channels(2)}
}

func (e *env) publish(ev proto.Message) {
	e.t.Helper()
	if err := e.pub.Publish(context.Background(), ev); err != nil {
		e.t.Fatal(err)
	}
}

// putChannel writes a deviceMediaURL row as the device-watcher does.
func (e *env) putChannel(dev string, ch int, status string, at time.Time) {
	e.t.Helper()
	_, err := e.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.res.Tables["deviceMediaURL"]), Item: map[string]ddbtypes.AttributeValue{
		"device_index": &ddbtypes.AttributeValueMemberS{Value: dev},
		"channel":      &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(ch)},
		"gateway_id":   &ddbtypes.AttributeValueMemberS{Value: "gw-local"},
		"media_url":    &ddbtypes.AttributeValueMemberS{Value: fmt.Sprintf("rtsp://127.0.0.1:8554/Streaming/Channels/%d01", ch)},
		"status":       &ddbtypes.AttributeValueMemberS{Value: status},
		"first_seen":   &ddbtypes.AttributeValueMemberS{Value: at.Format(time.RFC3339Nano)},
		"last_change":  &ddbtypes.AttributeValueMemberS{Value: at.Format(time.RFC3339Nano)},
		"version":      &ddbtypes.AttributeValueMemberN{Value: "1"},
	}})
	if err != nil {
		e.t.Fatal(err)
	}
}

// running waits until the device has exactly one task and its row records it.
func (e *env) running(dev string, within time.Duration) (domain.ObservedTask, domain.Device) {
	e.t.Helper()
	var task domain.ObservedTask
	var row domain.Device
	testkit.Eventually(e.t, within, 50*time.Millisecond, "one task for "+dev+", recorded in its row", func() bool {
		ts := e.tasks(dev)
		if len(ts) != 1 {
			return false
		}
		task = ts[0]
		var found bool
		row, found = e.row(dev)
		return found && row.Task != nil && row.Task.ID == task.ID
	})
	return task, row
}

// tasks lists the running local tasks of a device.
func (e *env) tasks(dev string) []domain.ObservedTask {
	e.t.Helper()
	all, err := e.svc.local.List(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []domain.ObservedTask
	for _, o := range all {
		if o.Device == dev {
			out = append(out, o)
		}
	}
	return out
}

func (e *env) row(dev string) (domain.Device, bool) {
	e.t.Helper()
	d, found, err := e.rows.Get(context.Background(), dev)
	if err != nil {
		e.t.Fatal(err)
	}
	return d, found
}

// drained waits until every message of the queue has been handled.
func (e *env) drained(url string) {
	e.t.Helper()
	testkit.Eventually(e.t, 20*time.Second, 50*time.Millisecond, "queue drained", func() bool {
		out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			e.t.Fatal(err)
		}
		return out.Attributes["ApproximateNumberOfMessages"] == "0" && out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
	})
}

// received collects what arrives on a queue (raw SNS delivery) for a while,
// decoded by event type.
func (e *env) received(url string, within time.Duration, until func(map[string][]proto.Message) bool) map[string][]proto.Message {
	e.t.Helper()
	got := map[string][]proto.Message{}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && !until(got) {
		out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, m := range out.Messages {
			typ := aws.ToString(m.MessageAttributes[messaging.AttrEventType].StringValue)
			var ev proto.Message
			switch typ {
			case "mediagw.events.v1.Alert":
				ev = &eventsv1.Alert{}
			case "mediagw.events.v1.RecordingTaskFailed":
				ev = &eventsv1.RecordingTaskFailed{}
			default:
				continue
			}
			if err := messaging.Decode([]byte(aws.ToString(m.Body)), ev); err != nil {
				e.t.Fatalf("decode %s: %v", typ, err)
			}
			got[typ] = append(got[typ], ev)
			_, _ = e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		}
	}
	return got
}

// deadLettered returns the dead_letter_reason of up to n messages of a dead-letter queue.
func (e *env) deadLettered(url string, n int, within time.Duration) []string {
	e.t.Helper()
	var reasons []string
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && len(reasons) < n {
		out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"}, VisibilityTimeout: 60})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, m := range out.Messages {
			reasons = append(reasons, aws.ToString(m.MessageAttributes[messaging.AttrDeadLetterReason].StringValue))
		}
	}
	return reasons
}
