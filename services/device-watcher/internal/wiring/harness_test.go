package wiring_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"mediagw/deploy/provision"
	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/loginbudget"
	lbddb "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/messaging"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	"mediagw/services/device-watcher/internal/wiring"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/servicetest"
	"mediagw/testsupport/testkit"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// harness is one isolated topology on the emulator (unique names), with
// collectors on the queues the real consumers of the watcher's events read.
type harness struct {
	t      *testing.T
	aws    aws.Config
	env    map[string]string
	ddb    *dynamodb.Client
	ssm    *ssm.Client
	device *collector // task-manager's device-events queue
	gw     *collector // health-sentinel's queue (gateway unreachable/reachable, credentials rejected/accepted)

	mu    sync.Mutex
	procs []*watcherProc // every watcher started, stopped ones included
}

// The event types each collector's queue receives from the watchers.
var (
	deviceTypes  = []string{"DeviceOnline", "DeviceOffline", "DeviceDeleted"}
	gatewayTypes = []string{"GatewayUnreachable", "GatewayReachable", "GatewayCredentialsRejected", "GatewayCredentialsAccepted"}
)

func newHarness(t *testing.T) *harness {
	t.Helper()
	cfg := awstest.Config(t)
	res, err := provision.Apply(context.Background(), cfg, topology.Default(), provision.Options{
		Prefix: awstest.Name("dw") + "-", Only: []string{"topics", "queues", "rules", "tables", "parameters"},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, aws: cfg, env: res.Env(), ddb: dynamodb.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg)}
	h.device = collect(t, sqs.NewFromConfig(cfg), res.Queues["mediagw-task-manager-device-events"].URL)
	h.gw = collect(t, sqs.NewFromConfig(cfg), res.Queues["mediagw-health-sentinel-events"].URL)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("device events received:%s\ngateway events received:%s", h.device.summary(), h.gw.summary())
		}
	})
	return h
}

// setPassword stores a gateway's password where the watcher reads it and
// returns the credential the login budget knows it by.
func (h *harness) setPassword(gatewayID, password string) loginbudget.Credential {
	h.t.Helper()
	out, err := h.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(h.param(gatewayID)),
		Type: ssmtypes.ParameterTypeSecureString, Value: aws.String(password), Overwrite: aws.Bool(true),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return loginbudget.CredentialOf(h.param(gatewayID), out.Version)
}

// param is the parameter of a gateway's password.
func (h *harness) param(gatewayID string) string {
	return h.env["PARAMETER_ROOT"] + "/gateways/" + gatewayID + "/Password"
}

// budget is a handle on the login budget the watchers share (as another
// component's: the configurator's Forget, an operator's look).
func (h *harness) budget() *loginbudget.Budget {
	return loginbudget.New(lbddb.New(h.ddb, h.env["LOGIN_BUDGET_TABLE"]), "test")
}

// watcherProc is a running device-watcher (the real wiring, in process).
type watcherProc struct {
	rt   *service.Runtime
	logs *testkit.Buffer
	stop func()
}

// start runs the service with the harness's resources and the given
// gateways ("id=url") and extra flags; t.Cleanup stops it.
func (h *harness) start(instance string, gateways []string, flags ...string) *watcherProc {
	h.t.Helper()
	cfg := service.NewConfig(wiring.Name, "device-watcher under test", "127.0.0.1:0")
	settings := wiring.Declare(cfg)
	args := []string{
		"--gateways=" + strings.Join(gateways, ","),
		"--device-events-topic-arn=" + h.env["DEVICE_EVENTS_TOPIC_ARN"],
		"--gateway-events-topic-arn=" + h.env["GATEWAY_EVENTS_TOPIC_ARN"],
		"--device-media-url-table=" + h.env["DEVICE_MEDIA_URL_TABLE"],
		"--leases-table=" + h.env["LEASES_TABLE"],
		"--login-budget-table=" + h.env["LOGIN_BUDGET_TABLE"],
		"--parameter-root=" + h.env["PARAMETER_ROOT"],
		"--instance-id=" + instance,
		"--poll-interval=1s", "--offline-hysteresis=2s", "--unreachable-after=500ms",
		"--lease-duration=3s", "--stream-heartbeat-timeout=3s", "--gateway-timeout=2s",
	}
	if err := cfg.Parse(append(args, flags...), io.Discard); err != nil {
		h.t.Fatalf("config: %v", err)
	}
	logs := &testkit.Buffer{}
	rt := service.NewRuntime(wiring.Name, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), h.aws)
	stop := servicetest.Start(h.t, rt, func(ctx context.Context, rt *service.Runtime) error { return wiring.Build(ctx, rt, settings()) }, 20*time.Second)
	p := &watcherProc{rt: rt, logs: logs}
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			if err := stop(); err != nil {
				h.t.Errorf("watcher %s: %v", instance, err)
			}
		})
	}
	h.t.Cleanup(func() {
		p.stop()
		if h.t.Failed() {
			h.t.Logf("logs of watcher %s:\n%s", instance, tail(logs.String(), 60))
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// metric returns the value of a counter or gauge with the given labels
// (a subset match), summed over matching series; for a histogram, its
// number of samples.
func (p *watcherProc) metric(name string, labels map[string]string) float64 {
	return metricValue(p.rt.Metrics, name, labels)
}

// polls is the number of polls of gw the watcher has applied: each counted
// once its changes were stored and announced, and the next poll starts
// only after that (see app.Session).
func (p *watcherProc) polls(gw string) int {
	return int(p.metric("mediagw_device_watcher_poll_duration_seconds", map[string]string{"gateway": gw}))
}

// waitPolls waits until the watcher has applied at least n polls of gw.
func (p *watcherProc) waitPolls(t *testing.T, gw string, n int) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, 20*time.Millisecond, fmt.Sprintf("%d polls of %s applied", n, gw), func() bool { return p.polls(gw) >= n })
}

// settled returns once the watcher p has applied two more polls of gw than
// when it was called — the second started after the first was applied, so
// after the call: a whole observation of the gateway made since — and the
// queues hold every event the harness's watchers published. A check that
// something did not happen, made after it, is bounded by that observation
// instead of a sleep.
func (h *harness) settled(p *watcherProc, gw string) {
	h.t.Helper()
	p.waitPolls(h.t, gw, p.polls(gw)+2)
	h.caughtUp()
}

// published is the number of events of the given types (short names) the
// harness's watchers published.
func (h *harness) published(types ...string) int {
	h.mu.Lock()
	procs := append([]*watcherProc(nil), h.procs...)
	h.mu.Unlock()
	n := 0
	for _, p := range procs {
		for _, typ := range types {
			n += int(p.metric("mediagw_device_watcher_events_total", map[string]string{"event_type": "mediagw.events.v1." + typ}))
		}
	}
	return n
}

// caughtUp waits until the collectors received every event the harness's
// watchers published so far.
func (h *harness) caughtUp() {
	h.t.Helper()
	testkit.Eventually(h.t, 30*time.Second, 20*time.Millisecond, "every published event received from the queues", func() bool {
		return len(h.device.of("", "")) >= h.published(deviceTypes...) && len(h.gw.of("", "")) >= h.published(gatewayTypes...)
	})
}

func metricValue(reg *prometheus.Registry, name string, labels map[string]string) float64 {
	mfs, _ := reg.Gather()
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// received is one event taken from a queue.
type received struct {
	Type    string
	ID      string
	Event   proto.Message
	Arrived time.Time
}

// Device is the device index of a device event, "" otherwise.
func (r received) Device() string {
	switch e := r.Event.(type) {
	case *eventsv1.DeviceOnline:
		return e.DeviceIndex
	case *eventsv1.DeviceOffline:
		return e.DeviceIndex
	case *eventsv1.DeviceDeleted:
		return e.DeviceIndex
	}
	return ""
}

// collector drains a queue into a list, deleting what it read.
type collector struct {
	mu     sync.Mutex
	events []received
	bad    []string
}

func collect(t *testing.T, client *sqs.Client, url string) *collector {
	c := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
				MessageAttributeNames: []string{"All"},
			})
			if err != nil {
				select { // the emulator is busy: ask again shortly
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			for _, m := range out.Messages {
				c.add(m)
				_, _ = client.DeleteMessage(context.WithoutCancel(ctx), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func (c *collector) add(m sqstypes.Message) {
	typ := ""
	if a, ok := m.MessageAttributes[messaging.AttrEventType]; ok {
		typ = aws.ToString(a.StringValue)
	}
	var ev proto.Message
	switch typ {
	case "mediagw.events.v1.DeviceOnline":
		ev = &eventsv1.DeviceOnline{}
	case "mediagw.events.v1.DeviceOffline":
		ev = &eventsv1.DeviceOffline{}
	case "mediagw.events.v1.DeviceDeleted":
		ev = &eventsv1.DeviceDeleted{}
	case "mediagw.events.v1.GatewayUnreachable":
		ev = &eventsv1.GatewayUnreachable{}
	case "mediagw.events.v1.GatewayReachable":
		ev = &eventsv1.GatewayReachable{}
	case "mediagw.events.v1.GatewayCredentialsRejected":
		ev = &eventsv1.GatewayCredentialsRejected{}
	case "mediagw.events.v1.GatewayCredentialsAccepted":
		ev = &eventsv1.GatewayCredentialsAccepted{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev == nil || messaging.Decode([]byte(aws.ToString(m.Body)), ev) != nil {
		c.bad = append(c.bad, typ+": "+aws.ToString(m.Body))
		return
	}
	c.events = append(c.events, received{Type: typ, ID: messaging.Meta(ev).GetId(), Event: ev, Arrived: time.Now()})
}

func (c *collector) all() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.events...)
}

// of returns the events of type typ (short name, e.g. "DeviceOnline"; ""
// for every type the collector decoded) about device (any device when "").
func (c *collector) of(typ, device string) []received {
	var out []received
	for _, r := range c.all() {
		if (typ == "" || r.Type == "mediagw.events.v1."+typ) && (device == "" || r.Device() == device) {
			out = append(out, r)
		}
	}
	return out
}

// wait waits until n events of typ about device arrived and returns them;
// within is a failure bound only.
func (c *collector) wait(t *testing.T, typ, device string, n int, within time.Duration) []received {
	t.Helper()
	testkit.Eventually(t, within, 20*time.Millisecond, fmt.Sprintf("%d %s event(s) for %q", n, typ, device), func() bool {
		return len(c.of(typ, device)) >= n
	})
	return c.of(typ, device)
}

func (c *collector) summary() string {
	var b bytes.Buffer
	for _, r := range c.all() {
		fmt.Fprintf(&b, "\n  %s %s id=%s", strings.TrimPrefix(r.Type, "mediagw.events.v1."), r.Device(), r.ID)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.bad {
		fmt.Fprintf(&b, "\n  undecodable: %s", s)
	}
	return b.String()
}

// row is a deviceMediaURL row as the test reads it.
type row struct {
	Channel  string
	Gateway  string
	Status   string
	MediaURL string
	Version  string
	Pending  bool
}

func (h *harness) rows(device string) []row {
	h.t.Helper()
	out, err := h.ddb.Query(context.Background(), &dynamodb.QueryInput{
		TableName:                 aws.String(h.env["DEVICE_MEDIA_URL_TABLE"]),
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("device_index = :d"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":d": &ddbtypes.AttributeValueMemberS{Value: device}},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	var rows []row
	for _, it := range out.Items {
		s := func(k string) string {
			if v, ok := it[k].(*ddbtypes.AttributeValueMemberS); ok {
				return v.Value
			}
			if v, ok := it[k].(*ddbtypes.AttributeValueMemberN); ok {
				return v.Value
			}
			return ""
		}
		_, pending := it["pending"]
		rows = append(rows, row{Channel: s("channel"), Gateway: s("gateway_id"), Status: s("status"), MediaURL: s("media_url"), Version: s("version"), Pending: pending})
	}
	return rows
}

// waitRows waits until the device has n rows all in status, not pending;
// within is a failure bound only (0: check once).
func (h *harness) waitRows(device string, n int, status string, within time.Duration) []row {
	h.t.Helper()
	var rows []row
	defer func() {
		if h.t.Failed() {
			h.t.Logf("device %s rows: %+v", device, rows)
		}
	}()
	testkit.Eventually(h.t, within, 20*time.Millisecond, fmt.Sprintf("device %s: %d rows %s", device, n, status), func() bool {
		rows = h.rows(device)
		ok := len(rows) == n
		for _, r := range rows {
			ok = ok && r.Status == status && !r.Pending
		}
		return ok
	})
	return rows
}
