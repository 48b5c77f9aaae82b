// Package cli is the configurator's operator port: the one-shot commands
// `configurator provision` (publish GatewayProvisioned for the service)
// and `configurator apply` (configure one gateway now, print the result as
// JSON), and `configurator help`. Their settings are bound like the
// service's (pkg/service: env var or the flag of the same name).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"mediagw/pkg/gatewayid"
	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/pkg/redact"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
)

// Summary is the configurator's one-line description.
const Summary = "applies gateway settings through ISAPI, on GatewayProvisioned and GatewayRecovered events"

// gatewayEventsTopic is where provision publishes, and apply --publish.
const gatewayEventsTopic = "mediagw-gateway-events"

// Wiring is what the commands get from internal/wiring.
type Wiring struct {
	// Name is the service's name in logs.
	Name string
	// DeclareRun declares on c the settings a run shares with the service
	// (PARAMETER_ROOT, GATEWAY_USER, GATEWAY_TIMEOUT, LOGIN_BUDGET_TABLE,
	// ...) and returns, for after c.Parse, what builds the run, which
	// registers every password it reads in secrets; its error is the AWS
	// configuration's.
	DeclareRun func(c *service.Config) func(ctx context.Context, log *slog.Logger, secrets *redact.Secrets) (app.Configurer, error)
	// Publisher returns a publisher to topic t; its error is the AWS configuration's.
	Publisher func(ctx context.Context, t *service.Topic, log *slog.Logger) (app.EventPublisher, error)
}

// Main runs the command args[0] names and returns its exit code; ok is
// false when args name no command (then the binary runs the service).
func Main(args []string, stdout, stderr io.Writer, w Wiring) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	var cmd func(ctx context.Context, args []string, stdout, stderr io.Writer, w Wiring) int
	switch args[0] {
	case "provision":
		cmd = provision
	case "apply":
		cmd = apply
	case "help":
		fmt.Fprintf(stdout, "configurator — %s\n\nUsage:\n  configurator [--flags]            run the service (--help lists its settings)\n"+
			"  configurator provision --help     publish GatewayProvisioned for a gateway\n"+
			"  configurator apply --help         configure one gateway now and print the result\n", Summary)
		return 0, true
	default:
		return 0, false
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return cmd(ctx, args[1:], stdout, stderr, w), true
}

// gatewayFlags are what both commands take about the gateway.
type gatewayFlags struct {
	id, address, elasticIP, bootstrapParameter *string
}

func declareGateway(c *service.Config) gatewayFlags {
	return gatewayFlags{
		id:        c.String("GATEWAY_ID", "", "the gateway's id (its parameters are under <PARAMETER_ROOT>/gateways/<id>/)", service.Required()),
		address:   c.String("ADDRESS", "", "host:port of the gateway's HTTP API", service.Required()),
		elasticIP: c.String("ELASTIC_IP", "", "the gateway's Elastic IP (default: its ExternalIP parameter)"),
		bootstrapParameter: c.String("BOOTSTRAP_PASSWORD_PARAMETER", "",
			"SSM SecureString parameter with the bootstrap password (default: <PARAMETER_ROOT>/gateways/<id>/BootstrapPassword)"),
	}
}

func (g gatewayFlags) check() error {
	var errs []error
	if _, err := gatewayid.Parse(*g.id); err != nil {
		errs = append(errs, err)
	}
	if *g.address != "" {
		if _, err := domain.BaseURL(*g.address); err != nil {
			errs = append(errs, err)
		}
	}
	if ip := *g.elasticIP; ip != "" && (net.ParseIP(ip) == nil || net.ParseIP(ip).To4() == nil) {
		errs = append(errs, fmt.Errorf("elastic IP %q is not an IPv4 address", ip))
	}
	return errors.Join(errs...)
}

// parse parses the command's settings, check among them; ok false means
// exit with code (0 after --help or --check-settings, 2 on bad usage).
func parse(c *service.Config, args []string, stdout, stderr io.Writer, name string, check func() error) (code int, ok bool) {
	c.Validate(check)
	if err := c.Parse(args, stdout); err != nil {
		if errors.Is(err, service.ErrHelp) {
			return 0, false
		}
		fmt.Fprintf(stderr, "configurator %s: %v\n", name, err)
		return 2, false
	}
	return 0, true
}

// logger writes JSON logs to stderr at LOG_LEVEL, as the service does,
// redacting what is registered in secrets (nil: nothing).
func logger(c *service.Config, stderr io.Writer, name string, secrets *redact.Secrets) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(*c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	l := service.NewLogger(stderr, level, name)
	if secrets == nil {
		return l
	}
	return slog.New(secrets.Handler(l.Handler()))
}

// provision publishes GatewayProvisioned, for the service to configure the gateway.
func provision(ctx context.Context, args []string, stdout, stderr io.Writer, w Wiring) int {
	c := service.NewCommandConfig("configurator provision", "publishes GatewayProvisioned for a gateway; the configurator service then configures it")
	topic := c.Topic(gatewayEventsTopic)
	root := c.String("PARAMETER_ROOT", "/mediagw", "SSM parameter root")
	instance := c.String("INSTANCE_ID", "", "the gateway's EC2 instance id (informational)")
	gw := declareGateway(c)
	if code, ok := parse(c, args, stdout, stderr, "provision", gw.check); !ok {
		return code
	}
	log := logger(c, stderr, w.Name, nil)
	bp := *gw.bootstrapParameter
	if bp == "" {
		bp = "/" + strings.Trim(*root, "/") + "/gateways/" + *gw.id + "/" + domain.ParamBootstrapPassword
	}
	pub, err := w.Publisher(ctx, topic, log)
	if err != nil {
		fmt.Fprintf(stderr, "configurator provision: aws configuration: %v\n", err)
		return 1
	}
	ev := &eventsv1.GatewayProvisioned{GatewayId: *gw.id, Address: *gw.address, ElasticIp: *gw.elasticIP,
		BootstrapPasswordParameter: bp, InstanceId: *instance}
	if err := pub.Publish(ctx, ev); err != nil {
		fmt.Fprintf(stderr, "configurator provision: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "published %s %s for gateway %s\n", messaging.EventType(ev), ev.GetMeta().GetId(), *gw.id)
	return 0
}

// applyOutput is what apply prints.
type applyOutput struct {
	GatewayID     string   `json:"gateway_id"`
	Result        string   `json:"result"`
	Changed       []string `json:"changed,omitempty"`
	Rebooted      bool     `json:"rebooted,omitempty"`
	Took          string   `json:"took"`
	Step          string   `json:"step,omitempty"`
	Reason        string   `json:"reason,omitempty"`
	Retryable     bool     `json:"retryable,omitempty"`
	LockRemaining string   `json:"lock_remaining,omitempty"`
	// Credentials is set when no password could be logged in with.
	Credentials *credentialsOutput `json:"credentials,omitempty"`
	// CredentialsAccepted: the run ended a configuration pending on its
	// credentials; the credential the gateway accepted.
	CredentialsAccepted string `json:"credentials_accepted,omitempty"`
	Published           bool   `json:"published,omitempty"`
}

// credentialsOutput is a domain.CredentialsRejection as apply prints it.
type credentialsOutput struct {
	Reason       string `json:"reason"`
	Credential   string `json:"credential"`
	Until        string `json:"until,omitempty"`
	FailedLogins int    `json:"failed_logins"`
}

// apply configures one gateway now and prints the result as JSON.
func apply(ctx context.Context, args []string, stdout, stderr io.Writer, w Wiring) int {
	c := service.NewCommandConfig("configurator apply", "configures one gateway now and prints the result as JSON; exit 0 configured, 1 failed")
	// Not c.Topic: the topic is needed only with --publish.
	topicARN := c.String(topology.EnvName(gatewayEventsTopic, "TOPIC_ARN"), "", "SNS topic of gateway events (results are published there)")
	build := w.DeclareRun(c)
	publish := c.Bool("PUBLISH", false, "also publish the result event (needs GATEWAY_EVENTS_TOPIC_ARN)")
	gw := declareGateway(c)
	code, ok := parse(c, args, stdout, stderr, "apply", func() error {
		err := gw.check()
		if *publish && *topicARN == "" {
			err = errors.Join(err, errors.New("--publish needs GATEWAY_EVENTS_TOPIC_ARN"))
		}
		return err
	})
	if !ok {
		return code
	}
	secrets := redact.New()
	log := logger(c, stderr, w.Name, secrets)
	conf, err := build(ctx, log, secrets)
	if err != nil {
		fmt.Fprintf(stderr, "configurator apply: aws configuration: %v\n", err)
		return 1
	}
	req := app.Request{GatewayID: *gw.id, Address: *gw.address, ElasticIP: *gw.elasticIP, BootstrapParameter: *gw.bootstrapParameter}
	res, fail := conf.Configure(ctx, req)
	out := applyOutput{GatewayID: req.GatewayID, Result: "configured", Rebooted: res.Rebooted, Took: res.Took.Round(1e6).String(),
		CredentialsAccepted: res.CredentialsAccepted}
	for _, ch := range res.Changed {
		out.Changed = append(out.Changed, string(ch))
	}
	if fail != nil {
		out.Result, out.Step, out.Reason, out.Retryable = "failed", fail.Step, fail.Reason, fail.Retryable
		if fail.LockRemaining > 0 {
			out.LockRemaining = fail.LockRemaining.String()
		}
		if cr := fail.Credentials; cr != nil {
			out.Credentials = &credentialsOutput{Reason: cr.Reason, Credential: cr.Credential, FailedLogins: cr.FailedLogins}
			if !cr.Until.IsZero() {
				out.Credentials.Until = cr.Until.UTC().Format(time.RFC3339)
			}
		}
	}
	if *publish {
		pub, err := w.Publisher(ctx, &service.Topic{Name: gatewayEventsTopic, ARN: *topicARN}, log)
		for _, ev := range app.Events(req.GatewayID, res, fail) {
			if err == nil {
				err = pub.Publish(ctx, ev)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "configurator apply: publish the result: %v\n", err)
		} else {
			out.Published = true
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
	if fail != nil {
		return 1
	}
	return 0
}
