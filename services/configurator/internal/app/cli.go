package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"google.golang.org/protobuf/proto"

	"mediagw/pkg/gatewayid"
	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/pkg/service"
	"mediagw/services/configurator/internal/configurator"
	"mediagw/services/configurator/internal/domain"
)

const summary = "applies gateway settings through ISAPI, on GatewayProvisioned and GatewayRecovered events"

// Main is the configurator binary: no command runs the service;
// "provision" and "apply" are one-shot operator commands. It returns the
// exit code.
func Main() int {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "provision":
			return command(os.Args[2:], os.Stdout, os.Stderr, provision)
		case "apply":
			return command(os.Args[2:], os.Stdout, os.Stderr, apply)
		case "help":
			fmt.Fprintf(os.Stdout, "configurator — %s\n\nUsage:\n  configurator [--flags]            run the service (--help lists its settings)\n"+
				"  configurator provision --help     publish GatewayProvisioned for a gateway\n"+
				"  configurator apply --help         configure one gateway now and print the result\n", summary)
			return 0
		}
	}
	cfg := service.NewConfig(Name, summary+" (commands: provision, apply; see `configurator help`)", ":9101")
	get := Declare(cfg)
	return service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error { return Serve(ctx, rt, get()) })
}

// commandFunc is a one-shot command; it returns the exit code.
type commandFunc func(ctx context.Context, args []string, stdout, stderr io.Writer, loadAWS func(context.Context) (aws.Config, error)) int

func command(args []string, stdout, stderr io.Writer, f commandFunc) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return f(ctx, args, stdout, stderr, func(ctx context.Context) (aws.Config, error) { return awsconfig.LoadDefaultConfig(ctx) })
}

// gatewayFlags are what both commands take about the gateway.
type gatewayFlags struct {
	id, address, elasticIP, bootstrapParameter *string
}

func declareGateway(c *service.Config, addressRequired bool) gatewayFlags {
	var addrOpts []service.Option
	if addressRequired {
		addrOpts = append(addrOpts, service.Required())
	}
	return gatewayFlags{
		id:        c.String("GATEWAY_ID", "", "the gateway's id (its parameters are under <PARAMETER_ROOT>/gateways/<id>/)", service.Required()),
		address:   c.String("ADDRESS", "", "host:port of the gateway's HTTP API", addrOpts...),
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

func parse(c *service.Config, args []string, stdout, stderr io.Writer, name string, check func() error) (slog.Level, int, bool) {
	if err := c.Parse(args, stdout); err != nil {
		if errors.Is(err, service.ErrHelp) {
			return 0, 0, false
		}
		fmt.Fprintf(stderr, "configurator %s: %v\n", name, err)
		return 0, 2, false
	}
	if err := check(); err != nil {
		fmt.Fprintf(stderr, "configurator %s: %v\n", name, err)
		return 0, 2, false
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	return level, 0, true
}

// provision publishes GatewayProvisioned, for the service to configure the gateway.
func provision(ctx context.Context, args []string, stdout, stderr io.Writer, loadAWS func(context.Context) (aws.Config, error)) int {
	c := service.NewConfig("configurator provision", "publishes GatewayProvisioned for a gateway; the configurator service then configures it", ":0")
	topic := c.String("GATEWAY_EVENTS_TOPIC_ARN", "", "SNS topic of gateway events", service.Required())
	root := c.String("PARAMETER_ROOT", "/mediagw", "SSM parameter root")
	instance := c.String("INSTANCE_ID", "", "the gateway's EC2 instance id (informational)")
	gw := declareGateway(c, true)
	level, code, ok := parse(c, args, stdout, stderr, "provision", gw.check)
	if !ok {
		return code
	}
	log := service.NewLogger(stderr, level, Name)
	bp := *gw.bootstrapParameter
	if bp == "" {
		bp = "/" + strings.Trim(*root, "/") + "/gateways/" + *gw.id + "/" + domain.ParamBootstrapPassword
	}
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "configurator provision: aws configuration: %v\n", err)
		return 1
	}
	ev := &eventsv1.GatewayProvisioned{GatewayId: *gw.id, Address: *gw.address, ElasticIp: *gw.elasticIP,
		BootstrapPasswordParameter: bp, InstanceId: *instance}
	if err := newPublisher(awsCfg, *topic, log, nil).Publish(ctx, ev); err != nil {
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
	Published     bool     `json:"published,omitempty"`
}

// apply configures one gateway now and prints the result as JSON.
func apply(ctx context.Context, args []string, stdout, stderr io.Writer, loadAWS func(context.Context) (aws.Config, error)) int {
	c := service.NewConfig("configurator apply", "configures one gateway now and prints the result as JSON; exit 0 configured, 1 failed", ":0")
	settings := declareSettings(c, false)
	publish := c.Bool("PUBLISH", false, "also publish the result event (needs GATEWAY_EVENTS_TOPIC_ARN)")
	gw := declareGateway(c, true)
	level, code, ok := parse(c, bareBoolFlags(args, "publish"), stdout, stderr, "apply", func() error {
		err := gw.check()
		if *publish && settings().GatewayEventsTopicARN == "" {
			err = errors.Join(err, errors.New("--publish needs GATEWAY_EVENTS_TOPIC_ARN"))
		}
		return err
	})
	if !ok {
		return code
	}
	s := settings()
	log := service.NewLogger(stderr, level, Name)
	awsCfg, err := loadAWS(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "configurator apply: aws configuration: %v\n", err)
		return 1
	}
	req := configurator.Request{GatewayID: *gw.id, Address: *gw.address, ElasticIP: *gw.elasticIP, BootstrapParameter: *gw.bootstrapParameter}
	res, fail := NewConfigurator(awsCfg, s, log, nil).Configure(ctx, req)
	out := applyOutput{GatewayID: req.GatewayID, Result: "configured", Rebooted: res.Rebooted, Took: res.Took.Round(1e6).String()}
	for _, ch := range res.Changed {
		out.Changed = append(out.Changed, string(ch))
	}
	if fail != nil {
		out.Result, out.Step, out.Reason, out.Retryable = "failed", fail.Step, fail.Reason, fail.Retryable
		if fail.LockRemaining > 0 {
			out.LockRemaining = fail.LockRemaining.String()
		}
	}
	if *publish {
		var ev proto.Message = ConfiguredEvent(req.GatewayID, res)
		if fail != nil {
			ev = FailedEvent(req.GatewayID, fail)
		}
		err := newPublisher(awsCfg, s.GatewayEventsTopicARN, log, nil).Publish(ctx, ev)
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

// bareBoolFlags lets "--name" stand for "--name=true": service.Config's
// boolean flags take a value.
func bareBoolFlags(args []string, names ...string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		for _, n := range names {
			if a == "--"+n || a == "-"+n {
				a = "--" + n + "=true"
			}
		}
		out = append(out, a)
	}
	return out
}
