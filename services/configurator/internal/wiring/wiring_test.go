package wiring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"google.golang.org/protobuf/proto"

	"mediagw/deploy/provision"
	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/pkg/messaging"
	"mediagw/pkg/redact"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	"mediagw/services/configurator/internal/ports/cli"
	"mediagw/services/configurator/internal/wiring"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/servicetest"
	"mediagw/testsupport/testkit"
)

func TestMain(m *testing.M) {
	if os.Getenv("CONFIGURATOR_TEST_MAIN") == "1" {
		// The commands as cmd/configurator runs them.
		code, ok := cli.Main(os.Args[1:], os.Stdout, os.Stderr, wiring.Commands())
		if !ok {
			code = 2
		}
		os.Exit(code)
	}
	os.Exit(awstest.Main(m))
}

// The local values of topology.json for gateway gw-local.
const (
	gatewayID         = "gw-local"
	desiredPassword   = "Mgw-Local-2026"
	bootstrapPassword = "Factory-Pass1"
	elasticIP         = "203.0.113.10"
	localIP           = "127.0.0.1"
)

// env is the real topology on the emulator with unique names, a queue that
// sees every gateway event, and a simulated gateway.
type env struct {
	aws     aws.Config
	res     provision.Resources
	sqs     *sqs.Client
	sim     *gatewaysim.Server
	allURL  string // every event of the gateway events topic
	logs    *testkit.Buffer
	mu      sync.Mutex
	bodies  []string // every event body read, for the secrets check
	runtime *service.Runtime
	// extraSecrets are more passwords the logs and events must not show.
	extraSecrets []string
	// budgetAhead moves the service's login-budget clock forward (the
	// budget's window is 30 minutes).
	budgetAhead atomic.Int64
}

func newEnv(t *testing.T, gatewayPassword string, simOpts ...gatewaysimtest.Option) *env {
	t.Helper()
	cfg := awstest.Config(t)
	ctx := context.Background()
	res, err := provision.Apply(ctx, cfg, topology.Default(), provision.Options{
		Prefix: awstest.Name("cfg") + "-", LocalParameters: true, Only: []string{"topics", "queues", "parameters", "tables"},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{aws: cfg, res: res, sqs: sqs.NewFromConfig(cfg), logs: &testkit.Buffer{}}
	e.putParameter(t, "Timezone", "5.5", ssmtypes.ParameterTypeString)
	e.allURL = e.subscribeAll(t)
	simOpts = append([]gatewaysimtest.Option{gatewaysimtest.WithConfig(func(c *gatewaysim.Config) {
		c.AdminPassword = gatewayPassword
		c.RebootDowntime = time.Second
	})}, simOpts...)
	e.sim = gatewaysimtest.Start(t, simOpts...)
	t.Cleanup(func() {
		text := e.logs.String()
		e.mu.Lock()
		text += strings.Join(e.bodies, "\n")
		e.mu.Unlock()
		// In any encoding pkg/redact knows (JSON-escaped, URL, base64...).
		pws := redact.New()
		pws.Add(desiredPassword, bootstrapPassword, gatewayPassword)
		pws.Add(e.extraSecrets...)
		if pws.String(text) != text {
			t.Errorf("a password appears in the logs or events:\n%s", text)
		}
	})
	return e
}

// failedLogins is the number of failed logins in the simulator's own ledger.
func (e *env) failedLogins() int { return len(e.sim.LoginFailures()) }

// logins is the number of requests that carried credentials to the
// gateway's deviceInfo (every login of the configurator is one; the
// unauthenticated probe is another path).
func (e *env) logins() int { return e.sim.Counters().Requests["GET "+gatewaysim.PathDeviceInfo] }

func (e *env) putParameter(t *testing.T, name, value string, typ ssmtypes.ParameterType) {
	t.Helper()
	_, err := ssm.NewFromConfig(e.aws).PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(e.res.ParameterRoot + "/gateways/" + gatewayID + "/" + name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
}

// subscribeAll subscribes a new queue to the gateway events topic, unfiltered.
func (e *env) subscribeAll(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	q, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(awstest.Name("cfg-all"))})
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sns.NewFromConfig(e.aws).Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: aws.String(e.res.Topics["mediagw-gateway-events"]), Protocol: aws.String("sqs"),
		Endpoint: aws.String(a.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]), Attributes: map[string]string{"RawMessageDelivery": "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(q.QueueUrl)
}

// serve runs the wired service until the test ends; tweak, if any,
// changes its settings.
func (e *env) serve(t *testing.T, tweak ...func(*wiring.Settings)) {
	t.Helper()
	q := e.res.Queues["mediagw-configurator-gateway-events"]
	s := wiring.Settings{
		Run: wiring.Run{
			ParameterRoot:  e.res.ParameterRoot,
			GatewayTimeout: 2 * time.Second, RetryInitial: 20 * time.Millisecond, RetryMaxElapsed: 500 * time.Millisecond,
			RebootTimeout: 15 * time.Second, LoginBudgetTable: e.res.Tables[wiring.LoginBudgetTable],
			BudgetOptions: []loginbudget.Option{loginbudget.WithClock(func() time.Time {
				return time.Now().Add(time.Duration(e.budgetAhead.Load()))
			})},
		},
		Queue:       &service.Queue{Name: wiring.QueueName, URL: q.URL, DLQURL: q.DLQURL, MaxReceiveCount: q.MaxReceiveCount},
		Topic:       &service.Topic{Name: wiring.TopicName, ARN: e.res.Topics[wiring.TopicName]},
		Concurrency: 4, CredentialRecheck: 300 * time.Millisecond,
		ReceiveWait: time.Second, VisibilityTimeout: 10 * time.Second, RedeliveryBase: time.Second, RedeliveryMax: time.Second,
	}
	for _, f := range tweak {
		f(&s)
	}
	e.runtime = service.NewRuntime(wiring.Name, slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), e.aws)
	servicetest.Start(t, e.runtime, func(ctx context.Context, rt *service.Runtime) error { return wiring.Build(ctx, rt, s) }, 30*time.Second)
}

func (e *env) publish(t *testing.T, ev proto.Message) {
	t.Helper()
	pub := messaging.NewPublisher(sns.NewFromConfig(e.aws), messaging.PublisherConfig{Source: "test",
		Routes: topology.Default().Routes(map[string]string{"mediagw-gateway-events": e.res.Topics["mediagw-gateway-events"]})})
	if err := pub.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

func (e *env) provisioned() *eventsv1.GatewayProvisioned {
	return &eventsv1.GatewayProvisioned{GatewayId: gatewayID, Address: e.sim.HTTPAddr(), ElasticIp: elasticIP, InstanceId: "i-0123456789",
		BootstrapPasswordParameter: e.res.ParameterRoot + "/gateways/" + gatewayID + "/BootstrapPassword"}
}

// next waits for the next event of type T on the queue; events of other
// types before it are taken off and dropped. One message at a time, so
// that what follows T stays on the queue.
func next[T proto.Message](t *testing.T, e *env, queueURL string, within time.Duration) T {
	t.Helper()
	var zero T
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, ev := range receive(t, e, queueURL, 1) {
			if v, ok := ev.(T); ok {
				return v
			}
		}
	}
	t.Fatalf("no %s within %s; log:\n%s", messaging.EventType(zero), within, e.logs.String())
	return zero
}

// noMore waits until the configurator's queue holds no message, visible,
// in flight or delayed: the event was deleted (or dead-lettered), so it
// cannot be delivered again and no later run can happen. Whatever its runs
// published went out before the deletion (the emulator fans out within
// Publish), so a receive that does not wait then shows whether another T
// came to queueURL.
func noMore[T proto.Message](t *testing.T, e *env, queueURL string) {
	t.Helper()
	q := e.res.Queues["mediagw-configurator-gateway-events"]
	counts := []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, "the event deleted from the configurator's queue", func() bool {
		a, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL), AttributeNames: counts})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range counts {
			if a.Attributes[string(n)] != "0" {
				return false
			}
		}
		return true
	})
	var zero T
	want := messaging.EventType(zero)
	out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out.Messages {
		e.mu.Lock()
		e.bodies = append(e.bodies, aws.ToString(m.Body))
		e.mu.Unlock()
		if aws.ToString(m.MessageAttributes[messaging.AttrEventType].StringValue) == want {
			t.Fatalf("unexpected %s: %s", want, aws.ToString(m.Body))
		}
	}
}

func sentinelQueue(e *env) string { return e.res.Queues["mediagw-health-sentinel-events"].URL }

func totalPuts(c gatewaysim.Counters) int {
	n := 0
	for _, v := range c.Puts {
		n += v
	}
	return n
}

// Row (f) of issue 10: provisioning a factory-fresh gateway (its password
// is the bootstrap one) costs no failed login.
func TestServiceConfiguresFactoryGatewayThenChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bootstrapPassword)
	e.serve(t)
	e.publish(t, e.provisioned())

	ev := next[*eventsv1.GatewayConfigured](t, e, e.allURL, 30*time.Second)
	if ev.GetGatewayId() != gatewayID || strings.Join(ev.GetChanged(), ",") != "password,name,time,portmap.contentMgmt,portmap.devMgmt" ||
		!ev.GetRebooted() || ev.GetTook().AsDuration() <= 0 || ev.GetMeta().GetSource() != wiring.Name {
		t.Fatalf("GatewayConfigured = %v", ev)
	}
	set := e.sim.Settings()
	if !e.sim.CheckPassword(desiredPassword) || set.DeviceName != "mediagw-local" || set.TimeMode != "NTP" || set.TimeZone != "CST-5:30:00" {
		t.Fatalf("gateway: password changed %v, name %q, time %s %s", e.sim.CheckPassword(desiredPassword), set.DeviceName, set.TimeMode, set.TimeZone)
	}
	if cm := set.ContentPortMaps; !cm.Enabled || len(cm.AddrList) != 1 || cm.AddrList[0].ExternalIPAddress != elasticIP {
		t.Fatalf("platform port mapping = %+v", cm)
	}
	for _, p := range set.ContentPortMaps.PortList {
		if p.ExternalPort != p.InternalPort {
			t.Fatalf("platform port %d → %d", p.InternalPort, p.ExternalPort)
		}
	}
	if dm := set.DevicePortMaps; !dm.Enabled {
		t.Fatalf("device port mapping = %+v", dm)
	}
	for _, p := range set.DevicePortMaps.PortList {
		if p.Single != nil && p.Single.ExternalPort != p.Single.InternalPort || p.Range != nil && p.Range.MinExternalPort != p.Range.MinInternalPort {
			t.Fatalf("device port mapping entry %+v %+v", p.Single, p.Range)
		}
	}
	c := e.sim.Counters()
	if c.Reboots != 1 || e.failedLogins() != 0 {
		t.Fatalf("reboots %d, failed logins %v", c.Reboots, e.sim.LoginFailures())
	}
	_, err := ssm.NewFromConfig(e.aws).GetParameter(context.Background(), &ssm.GetParameterInput{
		Name: aws.String(e.res.ParameterRoot + "/gateways/" + gatewayID + "/PendingReboot")})
	var nf *ssmtypes.ParameterNotFound
	if !errors.As(err, &nf) {
		t.Fatalf("the pending-reboot record is left after a verified reboot: %v", err)
	}

	// A replacement instance announcement for a gateway that is configured:
	// nothing to write, no reboot.
	e.sim.ResetCounters()
	e.publish(t, &eventsv1.GatewayRecovered{GatewayId: gatewayID, Address: e.sim.HTTPAddr(), ElasticIp: elasticIP, InstanceId: "i-2", PreviousInstanceId: "i-0123456789"})
	ev = next[*eventsv1.GatewayConfigured](t, e, e.allURL, 30*time.Second)
	c = e.sim.Counters()
	if len(ev.GetChanged()) != 0 || ev.GetRebooted() || totalPuts(c) != 0 || c.Reboots != 0 || e.failedLogins() != 0 {
		t.Fatalf("second run: %v; puts %v, reboots %d, failed logins %v", ev, c.Puts, c.Reboots, e.sim.LoginFailures())
	}
	if n := counter(t, e, "mediagw_configurator_runs_total", "configured"); n != 2 {
		t.Fatalf("runs_total{configured} = %v", n)
	}
}

// counter reads one sample of a counter in the service's registry.
func counter(t *testing.T, e *env, name, labelValue string) float64 {
	t.Helper()
	mfs, err := e.runtime.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == labelValue {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestServiceReportsWrongBootstrapPasswordOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "Someone-Else-9")
	e.serve(t)
	e.publish(t, e.provisioned())

	ev := next[*eventsv1.GatewayConfigurationFailed](t, e, sentinelQueue(e), 30*time.Second)
	if ev.GetGatewayId() != gatewayID || ev.GetStep() != "login" || ev.GetRetryable() || !strings.Contains(ev.GetReason(), "no password to log in with") {
		t.Fatalf("GatewayConfigurationFailed = %v", ev)
	}
	if rej := next[*eventsv1.GatewayCredentialsRejected](t, e, sentinelQueue(e), 10*time.Second); rej.GetReason() != "credentials-rejected" {
		t.Fatalf("GatewayCredentialsRejected = %v", rej)
	}
	if n := e.failedLogins(); n != 2 {
		t.Fatalf("failed logins = %d, want 2", n)
	}
	// Reported and done: not redelivered, not dead-lettered, no new attempt.
	noMore[*eventsv1.GatewayConfigurationFailed](t, e, sentinelQueue(e))
	if n := counter(t, e, "mediagw_configurator_runs_total", "failed_permanent"); n != 1 {
		t.Fatalf("runs_total{failed_permanent} = %v, want 1", n)
	}
	if n := e.failedLogins(); n != 2 {
		t.Fatalf("failed logins after a while = %d", n)
	}
	q := e.res.Queues["mediagw-configurator-gateway-events"]
	if left := receiveAll(t, e, q.DLQURL); len(left) != 0 {
		t.Fatalf("dead-lettered: %v", left)
	}
}

func TestServiceReportsLockout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bootstrapPassword, gatewaysimtest.WithLockout(1, 30*time.Minute))
	c, err := isapi.New(e.sim.URL(), gatewaysimtest.User, "Wrong-Pass-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(t.Context()); err == nil {
		t.Fatal("no lock")
	}
	e.sim.ResetCounters()
	e.serve(t)
	e.publish(t, e.provisioned())

	ev := next[*eventsv1.GatewayConfigurationFailed](t, e, sentinelQueue(e), 30*time.Second)
	left := ev.GetLockRemaining().AsDuration()
	if ev.GetStep() != "login" || ev.GetRetryable() || left < 29*time.Minute || left > 30*time.Minute || !strings.Contains(ev.GetReason(), "lock") {
		t.Fatalf("GatewayConfigurationFailed = %v", ev)
	}
	noMore[*eventsv1.GatewayConfigurationFailed](t, e, sentinelQueue(e))
	cs := e.sim.Counters()
	n := 0
	for _, v := range cs.Requests {
		n += v
	}
	if n != 1 || cs.FailedLogins[localIP] != 0 {
		t.Fatalf("requests to the locked gateway: %v, failed logins %d; want the one probe", cs.Requests, cs.FailedLogins[localIP])
	}
	if counter(t, e, "mediagw_configurator_runs_total", "locked") != 1 {
		t.Fatal("runs_total{locked} not counted")
	}
}

// A slow gateway fails the run with a retryable failure; SQS brings the
// message back and, once the gateway answers in time, the run succeeds.
func TestServiceRetriesSlowGatewayByRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bootstrapPassword)
	fault, err := e.sim.InjectFault(gatewaysim.Fault{Kind: gatewaysim.FaultLatency, Latency: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.serve(t)
	e.publish(t, e.provisioned())

	ev := next[*eventsv1.GatewayConfigurationFailed](t, e, sentinelQueue(e), 30*time.Second)
	if ev.GetStep() != "connect" || !ev.GetRetryable() || !strings.Contains(ev.GetReason(), "did not answer") {
		t.Fatalf("GatewayConfigurationFailed = %v", ev)
	}
	e.sim.ClearFault(fault.ID)
	done := next[*eventsv1.GatewayConfigured](t, e, e.allURL, 30*time.Second)
	if !done.GetRebooted() || !e.sim.CheckPassword(desiredPassword) {
		t.Fatalf("after redelivery: %v", done)
	}
}

func TestServiceReportsErrorStatus(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bootstrapPassword)
	if _, err := e.sim.InjectFault(gatewaysim.Fault{Kind: gatewaysim.FaultErrorStatus, Method: "PUT", Path: gatewaysim.PathContentPortMaps,
		StatusCode: 6, SubStatusCode: "badPort"}); err != nil {
		t.Fatal(err)
	}
	e.serve(t)
	e.publish(t, e.provisioned())
	ev := next[*eventsv1.GatewayConfigurationFailed](t, e, sentinelQueue(e), 30*time.Second)
	if ev.GetStep() != "portmap.contentMgmt" || ev.GetRetryable() || !strings.Contains(ev.GetReason(), "HTTP 200") || !strings.Contains(ev.GetReason(), "badPort") {
		t.Fatalf("GatewayConfigurationFailed = %v", ev)
	}
	if c := e.sim.Counters(); c.Reboots != 0 || c.Puts[gatewaysim.PathContentPortMaps] != 1 {
		t.Fatalf("reboots %d, PUT contentMgmt %d", c.Reboots, c.Puts[gatewaysim.PathContentPortMaps])
	}
}

func receiveAll(t *testing.T, e *env, url string) []string {
	t.Helper()
	out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range out.Messages {
		bodies = append(bodies, aws.ToString(m.Body))
	}
	return bodies
}

// runMain runs the configurator binary (this test binary re-executed).
func runMain(t *testing.T, e *env, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CONFIGURATOR_TEST_MAIN=1",
		"AWS_ENDPOINT_URL="+awstest.Endpoint(t), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"GATEWAY_EVENTS_TOPIC_ARN="+e.res.Topics["mediagw-gateway-events"], "PARAMETER_ROOT="+e.res.ParameterRoot,
		"LOGIN_BUDGET_TABLE="+e.res.Tables[wiring.LoginBudgetTable], "GATEWAY_TIMEOUT=2s", "GATEWAY_REBOOT_TIMEOUT=15s")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		t.Fatalf("run %v: %v", args, err)
	}
	e.logs.Write(errOut.Bytes())
	e.logs.Write(out.Bytes())
	return out.String(), errOut.String(), code
}

func TestProvisionCommandPublishesForTheService(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bootstrapPassword)
	e.serve(t)
	out, errOut, code := runMain(t, e, "provision", "--gateway-id", gatewayID, "--address", e.sim.HTTPAddr(), "--elastic-ip", elasticIP)
	if code != 0 || !strings.Contains(out, "published mediagw.events.v1.GatewayProvisioned") {
		t.Fatalf("provision: exit %d\n%s\n%s", code, out, errOut)
	}
	ev := next[*eventsv1.GatewayConfigured](t, e, e.allURL, 30*time.Second)
	if !ev.GetRebooted() || len(ev.GetChanged()) != 5 || !e.sim.CheckPassword(desiredPassword) {
		t.Fatalf("GatewayConfigured = %v", ev)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"provision", "--help"}, 0, "--bootstrap-password-parameter"},
		{[]string{"provision", "--address", "10.0.0.5:80"}, 2, "GATEWAY_ID: required"},
		{[]string{"provision", "--gateway-id", "../etc", "--address", "10.0.0.5:80"}, 2, "gateway id"},
		{[]string{"provision", "--gateway-id", "gw", "--address", "ftp://x"}, 2, "gateway address"},
		{[]string{"apply", "--gateway-id", "gw"}, 2, "ADDRESS: required"},
		{[]string{"help"}, 0, "configurator provision"},
	} {
		out, errOut, code := runMain(t, e, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
}

func TestApplyCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, bootstrapPassword)
	type result struct {
		Result    string   `json:"result"`
		Changed   []string `json:"changed"`
		Rebooted  bool     `json:"rebooted"`
		Published bool     `json:"published"`
		Step      string   `json:"step"`
		Reason    string   `json:"reason"`
	}
	apply := func(extra ...string) (result, int) {
		t.Helper()
		args := append([]string{"apply", "--gateway-id", gatewayID, "--address", e.sim.HTTPAddr(), "--elastic-ip", elasticIP}, extra...)
		out, errOut, code := runMain(t, e, args...)
		var r result
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("apply printed no JSON (exit %d): %v\n%s\n%s", code, err, out, errOut)
		}
		return r, code
	}
	r, code := apply("--publish")
	if code != 0 || r.Result != "configured" || len(r.Changed) != 5 || !r.Rebooted || !r.Published {
		t.Fatalf("first apply: exit %d, %+v", code, r)
	}
	if ev := next[*eventsv1.GatewayConfigured](t, e, e.allURL, 10*time.Second); len(ev.GetChanged()) != 5 {
		t.Fatalf("published %v", ev)
	}
	e.sim.ResetCounters()
	r, code = apply()
	if code != 0 || r.Result != "configured" || len(r.Changed) != 0 || r.Rebooted || totalPuts(e.sim.Counters()) != 0 {
		t.Fatalf("second apply: exit %d, %+v, puts %v", code, r, e.sim.Counters().Puts)
	}

	e.putParameter(t, "Timezone", "east", ssmtypes.ParameterTypeString)
	r, code = apply()
	if code != 1 || r.Result != "failed" || r.Step != "parameters" || !strings.Contains(r.Reason, "Timezone") {
		t.Fatalf("bad parameter: exit %d, %+v", code, r)
	}
}
