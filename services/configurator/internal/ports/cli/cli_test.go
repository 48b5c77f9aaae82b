package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/redact"
	"mediagw/pkg/service"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
	"mediagw/services/configurator/internal/ports/cli"
)

// fakes stand for what internal/wiring builds (SSM, ISAPI, SNS).
type fakes struct {
	req       app.Request
	res       domain.Result
	fail      *domain.Failure
	published []proto.Message
	topicARN  string
	secret    string // a password the run reads
	log       *slog.Logger
}

func (f *fakes) Configure(_ context.Context, req app.Request) (domain.Result, *domain.Failure) {
	f.req = req
	if f.secret != "" {
		f.log.Info("read a password", "value", f.secret)
	}
	return f.res, f.fail
}

func (f *fakes) Publish(_ context.Context, ev proto.Message) error {
	f.published = append(f.published, ev)
	return nil
}

func (f *fakes) wiring() cli.Wiring {
	return cli.Wiring{
		Name: "configurator",
		DeclareRun: func(c *service.Config) func(context.Context, *slog.Logger, *redact.Secrets) (app.Configurer, error) {
			c.String("PARAMETER_ROOT", "/mediagw", "SSM parameter root")
			return func(_ context.Context, log *slog.Logger, secrets *redact.Secrets) (app.Configurer, error) {
				// As the run registers the SecureStrings it reads.
				secrets.Add(f.secret)
				f.log = log
				return f, nil
			}
		},
		Publisher: func(_ context.Context, t *service.Topic, _ *slog.Logger) (app.EventPublisher, error) {
			f.topicARN = t.ARN
			return f, nil
		},
	}
}

func run(t *testing.T, f *fakes, args ...string) (stdout, stderr string, code int, ok bool) {
	t.Helper()
	var out, errOut bytes.Buffer
	code, ok = cli.Main(args, &out, &errOut, f.wiring())
	return out.String(), errOut.String(), code, ok
}

func TestNoCommandRunsTheService(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"--log-level=debug"}} {
		if _, _, _, ok := run(t, &fakes{}, args...); ok {
			t.Errorf("%v taken for a command", args)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Setenv("GATEWAY_EVENTS_TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:gw")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"provision", "--help"}, 0, "--bootstrap-password-parameter"},
		{[]string{"provision", "--address", "10.0.0.5:80"}, 2, "GATEWAY_ID: required"},
		{[]string{"provision", "--gateway-id", "../etc", "--address", "10.0.0.5:80"}, 2, "gateway id"},
		{[]string{"provision", "--gateway-id", "site:1", "--address", "10.0.0.5:80"}, 2, "gateway id"},
		{[]string{"provision", "--gateway-id", "gw", "--address", "ftp://x"}, 2, "gateway address"},
		{[]string{"provision", "--gateway-id", "gw", "--address", "10.0.0.5:80", "--elastic-ip", "::1"}, 2, "not an IPv4 address"},
		{[]string{"apply", "--gateway-id", "gw"}, 2, "ADDRESS: required"},
		{[]string{"help"}, 0, "configurator provision"},
	} {
		out, errOut, code, ok := run(t, &fakes{}, tc.args...)
		if !ok || code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s%s", tc.args, code, tc.code, tc.want, out, errOut)
		}
	}
}

func TestProvisionPublishesWithTheDefaultBootstrapParameter(t *testing.T) {
	t.Setenv("GATEWAY_EVENTS_TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:gw")
	t.Setenv("PARAMETER_ROOT", "/test/")
	f := &fakes{}
	out, errOut, code, _ := run(t, f, "provision", "--gateway-id", "gw-7", "--address", "10.0.3.7:80", "--elastic-ip", "198.51.100.7", "--instance-id", "i-1")
	if code != 0 || !strings.Contains(out, "published mediagw.events.v1.GatewayProvisioned") || !strings.Contains(out, "for gateway gw-7") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	ev, ok := f.published[0].(*eventsv1.GatewayProvisioned)
	if len(f.published) != 1 || !ok || f.topicARN != "arn:aws:sns:us-east-1:000000000000:gw" || ev.GetGatewayId() != "gw-7" || ev.GetAddress() != "10.0.3.7:80" ||
		ev.GetElasticIp() != "198.51.100.7" || ev.GetInstanceId() != "i-1" || ev.GetBootstrapPasswordParameter() != "/test/gateways/gw-7/BootstrapPassword" {
		t.Fatalf("published %v to %s", f.published, f.topicARN)
	}
}

func TestProvisionNeedsTheTopic(t *testing.T) {
	t.Setenv("GATEWAY_EVENTS_TOPIC_ARN", "")
	_, errOut, code, _ := run(t, &fakes{}, "provision", "--gateway-id", "gw-7", "--address", "10.0.3.7:80")
	if code != 2 || !strings.Contains(errOut, "GATEWAY_EVENTS_TOPIC_ARN") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestApplyPrintsTheResult(t *testing.T) {
	t.Setenv("GATEWAY_EVENTS_TOPIC_ARN", "")
	f := &fakes{res: domain.Result{Changed: []domain.Setting{domain.SettingName}, Rebooted: true, Took: 1500 * time.Millisecond}}
	out, errOut, code, _ := run(t, f, "apply", "--gateway-id", "gw-7", "--address", "10.0.3.7:80", "--bootstrap-password-parameter", "/mediagw/b")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if got["result"] != "configured" || got["rebooted"] != true || got["took"] != "1.5s" || got["published"] != nil ||
		f.req != (app.Request{GatewayID: "gw-7", Address: "10.0.3.7:80", BootstrapParameter: "/mediagw/b"}) {
		t.Fatalf("printed %s for %+v", out, f.req)
	}

	// --publish without a topic is bad usage; with one, the result is published.
	if _, errOut, code, _ := run(t, f, "apply", "--gateway-id", "gw-7", "--address", "10.0.3.7:80", "--publish"); code != 2 || !strings.Contains(errOut, "--publish needs GATEWAY_EVENTS_TOPIC_ARN") {
		t.Fatalf("--publish without a topic: exit %d %s", code, errOut)
	}
	t.Setenv("GATEWAY_EVENTS_TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:gw")
	f.res, f.fail = domain.Result{}, &domain.Failure{Step: "login", Reason: "locked", LockRemaining: time.Minute, Err: errors.New("locked")}
	out, _, code, _ = run(t, f, "apply", "--gateway-id", "gw-7", "--address", "10.0.3.7:80", "--publish")
	got = nil
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 1 || got["result"] != "failed" || got["step"] != "login" ||
		got["lock_remaining"] != "1m0s" || got["published"] != true {
		t.Fatalf("failed run: exit %d %s", code, out)
	}
	if ev, ok := f.published[0].(*eventsv1.GatewayConfigurationFailed); len(f.published) != 1 || !ok || ev.GetStep() != "login" {
		t.Fatalf("published %v", f.published)
	}
}

// A run that found no password to log in with prints what the budget
// said, publishes both events with --publish, and the command's log
// redacts what the run registered.
func TestApplyPrintsTheCredentialsProblem(t *testing.T) {
	t.Setenv("GATEWAY_EVENTS_TOPIC_ARN", "arn:aws:sns:us-east-1:000000000000:gw")
	until := time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC)
	f := &fakes{secret: "Run-Secret-42", fail: &domain.Failure{Step: "login", Reason: "no password to log in with", Err: domain.ErrNoCredentials,
		Credentials: &domain.CredentialsRejection{Reason: domain.CredentialsBudget, Credential: "/mediagw/gateways/gw-7/Password@3", Until: until, FailedLogins: 2}}}
	out, errOut, code, _ := run(t, f, "apply", "--gateway-id", "gw-7", "--address", "10.0.3.7:80", "--publish")
	var got struct {
		Result      string `json:"result"`
		Credentials struct {
			Reason       string `json:"reason"`
			Credential   string `json:"credential"`
			Until        string `json:"until"`
			FailedLogins int    `json:"failed_logins"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 1 || got.Result != "failed" ||
		got.Credentials.Reason != "budget-spent" || got.Credentials.Credential != "/mediagw/gateways/gw-7/Password@3" ||
		got.Credentials.Until != "2026-05-01T12:30:00Z" || got.Credentials.FailedLogins != 2 {
		t.Fatalf("exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if len(f.published) != 2 {
		t.Fatalf("published %v", f.published)
	}
	if _, ok := f.published[1].(*eventsv1.GatewayCredentialsRejected); !ok {
		t.Fatalf("published %v", f.published)
	}
	if !strings.Contains(errOut, "read a password") || strings.Contains(errOut, f.secret) {
		t.Fatalf("the command's log:\n%s", errOut)
	}
}
