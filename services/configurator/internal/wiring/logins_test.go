package wiring_test

// The scenarios of issue 10 ("Never lock a gateway out"), one test per
// row, against the real simulator and the real login budget on the
// emulator's DynamoDB: each asserts the failed logins from the
// simulator's own ledger (gatewaysim.Server.LoginFailures).

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/configurator/internal/wiring"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

// unknownPassword is the gateway's password in these scenarios: in
// neither parameter.
const unknownPassword = "Someone-Else-9"

// applyResult is what `configurator apply` prints.
type applyResult struct {
	Result      string `json:"result"`
	Step        string `json:"step"`
	Reason      string `json:"reason"`
	Retryable   bool   `json:"retryable"`
	Credentials *struct {
		Reason       string `json:"reason"`
		Credential   string `json:"credential"`
		Until        string `json:"until"`
		FailedLogins int    `json:"failed_logins"`
	} `json:"credentials"`
}

// apply runs `configurator apply` for the simulated gateway, as the binary.
func apply(t *testing.T, e *env) (applyResult, int) {
	t.Helper()
	out, errOut, code := runMain(t, e, "apply", "--gateway-id", gatewayID, "--address", e.sim.HTTPAddr(), "--elastic-ip", elasticIP)
	var r applyResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("apply printed no JSON (exit %d): %v\n%s\n%s", code, err, out, errOut)
	}
	return r, code
}

func (e *env) param(name string) string {
	return e.res.ParameterRoot + "/gateways/" + gatewayID + "/" + name
}

// collect reads every event arriving on the queue at url until done says
// it has what it waits for.
func collect(t *testing.T, e *env, url string, within time.Duration, done func([]proto.Message) bool) []proto.Message {
	t.Helper()
	var evs []proto.Message
	deadline := time.Now().Add(within)
	for !done(evs) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s; events %v; log:\n%s", within, evs, e.logs.String())
		}
		evs = append(evs, receive(t, e, url, 10)...)
	}
	return evs
}

// receive takes up to max events off the queue at url (waiting up to a
// second for the first), keeps their bodies for the secrets check, and
// decodes them.
func receive(t *testing.T, e *env, url string, max int32) []proto.Message {
	t.Helper()
	out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(url), MaxNumberOfMessages: max, WaitTimeSeconds: 1, MessageAttributeNames: []string{"All"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var evs []proto.Message
	for _, m := range out.Messages {
		_, _ = e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		body := aws.ToString(m.Body)
		e.mu.Lock()
		e.bodies = append(e.bodies, body)
		e.mu.Unlock()
		typ := aws.ToString(m.MessageAttributes[messaging.AttrEventType].StringValue)
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ))
		if err != nil {
			t.Fatalf("event type %q: %v", typ, err)
		}
		ev := mt.New().Interface()
		if err := messaging.Decode([]byte(body), ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// find is the first event of type T among evs that ok accepts.
func find[T proto.Message](evs []proto.Message, ok func(T) bool) (T, bool) {
	for _, ev := range evs {
		if v, is := ev.(T); is && ok(v) {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func every[T proto.Message](T) bool { return true }

// waitLog waits until the log, from byte offset from on, has a line with
// every part.
func waitLog(t *testing.T, e *env, from int, what string, parts ...string) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, 50*time.Millisecond, what, func() bool {
		for _, line := range strings.Split(e.logs.String()[from:], "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		return false
	})
}

// sum adds the samples of a counter with a label of that value.
func sum(t *testing.T, e *env, name, labelValue string) float64 {
	t.Helper()
	mfs, err := e.runtime.Metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == labelValue {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// gauge reads one sample of a gauge in the service's registry.
func gauge(t *testing.T, e *env, name, labelValue string) (float64, bool) {
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
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// Row (a): `configurator apply` run 5 times, the gateway's password in
// neither parameter: 2 failed logins in all, none after the first run,
// and every result says credentials-rejected. Row (e), after it: the
// right password as a new version of the parameter, and the service
// configures the gateway without any new event, once the login budget
// admits it.
func TestApplyNeverLocksTheGatewayThenTheServiceResumes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, unknownPassword)
	var loginsAfterFirst int
	for i := range 5 {
		r, code := apply(t, e)
		if code != 1 || r.Result != "failed" || r.Step != "login" || r.Retryable || r.Credentials == nil ||
			r.Credentials.Reason != "credentials-rejected" || r.Credentials.Credential != e.param("Password")+"@1" {
			t.Fatalf("run %d: exit %d, %+v", i+1, code, r)
		}
		if n := e.failedLogins(); n != 2 {
			t.Fatalf("after run %d the gateway saw %d failed logins, want 2: %+v", i+1, n, e.sim.LoginFailures())
		}
		switch i {
		case 0:
			loginsAfterFirst = e.logins()
			for _, want := range []string{"the gateway rejected the bootstrap password (" + e.param("BootstrapPassword") + "@1)",
				"the gateway rejected the desired password (" + e.param("Password") + "@1)",
				"Put the gateway's current admin password into " + e.param("Password")} {
				if !strings.Contains(r.Reason, want) {
					t.Fatalf("run 1: the reason does not say %q: %s", want, r.Reason)
				}
			}
		default:
			if e.logins() != loginsAfterFirst {
				t.Fatalf("run %d sent a login", i+1)
			}
			if !strings.Contains(r.Reason, "the desired password ("+e.param("Password")+"@1) was not tried: the gateway rejected the password") {
				t.Fatalf("run %d: reason %s", i+1, r.Reason)
			}
		}
	}
	if e.sim.Counters().Lockouts[localIP] != 0 {
		t.Fatal("the gateway locked")
	}
	if _, err := ssm.NewFromConfig(e.aws).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(e.param("PendingConfiguration"))}); err != nil {
		t.Fatalf("no pending configuration recorded: %v", err)
	}

	// (e) The service finds the pending configuration; the right password
	// comes as version 2 of the parameter.
	e.serve(t)
	e.putParameter(t, "Password", unknownPassword, ssmtypes.ParameterTypeSecureString)
	// Two failed logins in the last 30 minutes: the budget admits no login
	// yet, not even of the new version, and the service sends none.
	waitLog(t, e, 0, "the recheck sees version 2 and waits for the budget", "pending configuration waits", e.param("Password")+"@2", "2 failed or unanswered logins")
	if e.logins() != loginsAfterFirst {
		t.Fatal("a login within the spent budget")
	}
	if v, ok := gauge(t, e, "mediagw_configurator_credentials_rejected", gatewayID); !ok || v != 1 {
		t.Fatalf("credentials_rejected gauge %v %v", v, ok)
	}
	// The budget's window passes (its clock moves on): at the next
	// recheck, without any new event, the service configures the gateway.
	e.budgetAhead.Store(int64(31 * time.Minute))
	evs := collect(t, e, e.allURL, 60*time.Second, func(evs []proto.Message) bool {
		_, c := find(evs, every[*eventsv1.GatewayConfigured])
		_, a := find(evs, every[*eventsv1.GatewayCredentialsAccepted])
		return c && a
	})
	conf, _ := find(evs, every[*eventsv1.GatewayConfigured])
	acc, _ := find(evs, every[*eventsv1.GatewayCredentialsAccepted])
	if strings.Join(conf.GetChanged(), ",") != "name,time,portmap.contentMgmt,portmap.devMgmt" || !conf.GetRebooted() ||
		acc.GetComponent() != "configurator" || acc.GetCredential() != e.param("Password")+"@2" || acc.GetGatewayId() != gatewayID {
		t.Fatalf("GatewayConfigured %v, GatewayCredentialsAccepted %v", conf, acc)
	}
	if n := e.failedLogins(); n != 2 {
		t.Fatalf("failed logins %d, want 2", n)
	}
	if set := e.sim.Settings(); set.DeviceName != "mediagw-local" {
		t.Fatalf("not configured: %+v", set)
	}
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, "the gauge cleared", func() bool {
		_, ok := gauge(t, e, "mediagw_configurator_credentials_rejected", gatewayID)
		return !ok
	})
	if _, err := ssm.NewFromConfig(e.aws).GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(e.param("PendingConfiguration"))}); err == nil {
		t.Fatal("the pending configuration is left")
	}
}

// Row (b): the same with firmware whose 401 carries no lock fields: 2
// failed logins, and the reason says the gateway rejected the password or
// is locked. The desired password has < and &, which must not leak
// JSON-escaped anywhere (newEnv checks every encoding).
func TestApplyNeverLocksAGatewayWithoutLockFields(t *testing.T) {
	t.Parallel()
	const desired = "Mgw<Local&2026"
	e := newEnv(t, unknownPassword, gatewaysimtest.WithLoginFaults(gatewaysim.LoginFaults{NoLockFields: true}))
	e.extraSecrets = append(e.extraSecrets, desired)
	e.putParameter(t, "Password", desired, ssmtypes.ParameterTypeSecureString)
	for i := range 5 {
		r, code := apply(t, e)
		if code != 1 || r.Step != "login" || r.Credentials == nil || r.Credentials.Reason != "credentials-rejected" {
			t.Fatalf("run %d: exit %d, %+v", i+1, code, r)
		}
		if i == 0 && (!strings.Contains(r.Reason, "it rejected the password or is locked (this firmware does not say which)") ||
			!strings.Contains(r.Reason, "the gateway was locked: put it again as a new version once the lock has ended")) {
			t.Fatalf("run 1: %s", r.Reason)
		}
		if n := e.failedLogins(); n != 2 {
			t.Fatalf("after run %d the gateway saw %d failed logins, want 2", i+1, n)
		}
	}
}

// Rows (c) and (d): the service, one GatewayProvisioned, and answers to
// failed logins that are lost or come after the client's timeout: at most
// 2 failed logins over all redeliveries; then the event is not
// dead-lettered but reported (GatewayConfigurationFailed and
// GatewayCredentialsRejected), and the recheck sends nothing more.
func TestServiceLostLoginAnswersAreBoundedByTheBudget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		faults  gatewaysim.LoginFaults
		timeout time.Duration
	}{
		{"lost 401", gatewaysim.LoginFaults{Lost401: true}, 2 * time.Second},
		{"late 401", gatewaysim.LoginFaults{Late401: 1500 * time.Millisecond}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The bootstrap password (Factory-Pass1) is wrong too.
			e := newEnv(t, unknownPassword, gatewaysimtest.WithLoginFaults(tc.faults))
			e.serve(t, func(s *wiring.Settings) { s.GatewayTimeout = tc.timeout })
			e.publish(t, e.provisioned())

			final := func(f *eventsv1.GatewayConfigurationFailed) bool { return !f.GetRetryable() }
			evs := collect(t, e, sentinelQueue(e), 60*time.Second, func(evs []proto.Message) bool {
				_, f := find(evs, final)
				_, r := find(evs, every[*eventsv1.GatewayCredentialsRejected])
				return f && r
			})
			failed, _ := find(evs, final)
			rej, _ := find(evs, every[*eventsv1.GatewayCredentialsRejected])
			if failed.GetStep() != "login" || !strings.Contains(failed.GetReason(), "2 failed or unanswered logins in the last 30m0s") {
				t.Fatalf("GatewayConfigurationFailed %v", failed)
			}
			if rej.GetReason() != "budget-spent" || rej.GetComponent() != "configurator" || rej.GetFailedLogins() != 2 ||
				rej.GetCredential() != e.param("Password")+"@1" || rej.GetUntil() == nil {
				t.Fatalf("GatewayCredentialsRejected %v", rej)
			}
			if _, ok := find(evs, func(f *eventsv1.GatewayConfigurationFailed) bool {
				return f.GetRetryable() && strings.Contains(f.GetReason(), "no answer to the login with the bootstrap password")
			}); !ok {
				t.Fatalf("no retryable failure for the unanswered login: %v", evs)
			}
			if n := e.failedLogins(); n != 2 {
				t.Fatalf("the gateway saw %d failed logins, want 2: %+v", n, e.sim.LoginFailures())
			}
			// Reported and done: deleted, not dead-lettered.
			noMore[*eventsv1.GatewayConfigurationFailed](t, e, sentinelQueue(e))
			if left := receiveAll(t, e, e.res.Queues["mediagw-configurator-gateway-events"].DLQURL); len(left) != 0 {
				t.Fatalf("dead-lettered: %v", left)
			}
			// The recheck looks and sends nothing.
			before := e.logins()
			waitLog(t, e, len(e.logs.String()), "the recheck waits for the budget", "pending configuration waits", "2 failed or unanswered logins")
			if e.logins() != before || e.failedLogins() != 2 {
				t.Fatalf("a login after the budget was spent: %d failed", e.failedLogins())
			}
			if v, ok := gauge(t, e, "mediagw_configurator_credentials_rejected", gatewayID); !ok || v != 1 {
				t.Fatalf("credentials_rejected gauge %v %v", v, ok)
			}
			if n := sum(t, e, "mediagw_configurator_login_attempts_total", "refused"); n < 2 {
				t.Fatalf("refused logins counted %v", n)
			}
		})
	}
}
