// Package wiring builds the device-watcher from its settings: the
// adapters (ISAPI, SSM, DynamoDB, SNS, Prometheus), the shared login
// budget every login to a gateway goes through, one app.Watcher per
// configured gateway, each registered on the runtime as a part, and the
// consumer of GatewayConfigured events when its queue is configured.
// cmd/device-watcher and the component tests call it.
package wiring

import (
	"context"
	"fmt"
	"os"
	"time"

	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"

	"mediagw/pkg/gatewayid"
	hik "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	lbddb "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/messaging"
	"mediagw/pkg/service"
	"mediagw/services/device-watcher/internal/adapters/dynamodb"
	"mediagw/services/device-watcher/internal/adapters/isapi"
	"mediagw/services/device-watcher/internal/adapters/prometheus"
	"mediagw/services/device-watcher/internal/adapters/sns"
	"mediagw/services/device-watcher/internal/adapters/ssm"
	"mediagw/services/device-watcher/internal/app"
	sqsport "mediagw/services/device-watcher/internal/ports/sqs"
)

// Name is the service's name (event source, logs).
const Name = "device-watcher"

// LoginBudgetTable is the topology's table of the shared login budget
// (LOGIN_BUDGET_TABLE).
const LoginBudgetTable = "mediagw-login-budget"

// GatewayEventsQueue is the topology's queue of the GatewayConfigured
// events the watcher consumes.
const GatewayEventsQueue = "mediagw-device-watcher-gateway-events"

// Gateway is one gateway to watch (an entry of GATEWAYS).
type Gateway = gatewayid.Endpoint

// Settings are the device-watcher's settings.
type Settings struct {
	Gateways          []Gateway
	GatewayUser       string
	PollInterval      time.Duration
	OfflineHysteresis time.Duration
	UnreachableAfter  time.Duration
	DetailsRefresh    time.Duration
	Subscribe         bool
	HeartbeatTimeout  time.Duration
	GatewayTimeout    time.Duration
	PasswordRecheck   time.Duration
	LeaseDuration     time.Duration
	InstanceID        string
	DeviceEvents      service.Topic
	GatewayEvents     service.Topic
	DeviceTable       string
	LeaseTable        string
	LoginBudgetTable  string
	ParameterRoot     string
	// GatewayConfigured events (optional: URL "" when not configured).
	GatewayConfigured service.Queue
}

// Declare declares every setting on c; call the returned function after c
// is parsed.
func Declare(c *service.Config) func() Settings {
	// positive checks the setting *d will point to once declared.
	positive := func(d **time.Duration) service.Option {
		return service.Check(func() error {
			if **d <= 0 {
				return fmt.Errorf("must be positive, got %s", **d)
			}
			return nil
		})
	}
	var gateways []Gateway
	var rawGateways *[]string
	rawGateways = c.List("GATEWAYS", "", "gateways to watch, comma-separated <gateway-id>=<http base URL>, e.g. gw-1=http://10.0.0.5:80",
		service.Check(func() error {
			var err error
			gateways, err = gatewayid.ParseEndpoints(*rawGateways)
			return err
		}))
	user := c.String("GATEWAY_USER", "admin", "user the watcher logs in to the gateways as")
	var pollInterval, gatewayTimeout, leaseDuration, recheck *time.Duration
	pollInterval = c.Duration("POLL_INTERVAL", 10*time.Second, "how often each gateway's device list is polled (safety net and reconciliation)",
		positive(&pollInterval))
	hysteresis := c.Duration("OFFLINE_HYSTERESIS", 30*time.Second, "a camera is declared offline after being seen offline continuously this long")
	unreachable := c.Duration("UNREACHABLE_AFTER", 10*time.Second, "a gateway is declared unreachable after failing to answer this long")
	details := c.Duration("DETAILS_REFRESH", 10*time.Minute, "channels and media URLs of online cameras are read again after this long (0: only on change)")
	subscribe := c.Bool("SUBSCRIBE", true, "follow the gateway's device-management event stream for immediate detection")
	heartbeat := c.Duration("STREAM_HEARTBEAT_TIMEOUT", 30*time.Second, "event stream silence after which it is reconnected")
	gatewayTimeout = c.Duration("GATEWAY_TIMEOUT", 10*time.Second, "timeout of each request to a gateway",
		positive(&gatewayTimeout))
	recheck = c.Duration("PASSWORD_RECHECK", 10*time.Second, "while a gateway's credentials are rejected (or the login budget refuses logins), or it awaits its configuration, how often its password parameter's version and the login budget (and its BootstrapPassword parameter) are looked at; a new version, or the budget allowing the password again, resumes logins at once",
		positive(&recheck))
	leaseDuration = c.Duration("LEASE_DURATION", 30*time.Second, "lease on a gateway; another instance takes over this long after a crash",
		positive(&leaseDuration))
	host, _ := os.Hostname()
	instance := c.String("INSTANCE_ID", fmt.Sprintf("%s-%d", host, os.Getpid()), "this instance's name in the leases")
	deviceEvents := c.Topic("mediagw-device-events")
	gatewayEvents := c.Topic("mediagw-gateway-events")
	deviceTable := c.Table("deviceMediaURL")
	leaseTable := c.Table("mediagw-leases")
	budgetTable := c.Table(LoginBudgetTable)
	root := c.String("PARAMETER_ROOT", "", "SSM path under which <root>/gateways/<id>/Password is read", service.Required())
	configured := c.OptionalQueue(GatewayEventsQueue)
	return func() Settings {
		return Settings{
			Gateways: gateways, GatewayUser: *user,
			PollInterval: *pollInterval, OfflineHysteresis: *hysteresis, UnreachableAfter: *unreachable,
			DetailsRefresh: *details, Subscribe: *subscribe, HeartbeatTimeout: *heartbeat, GatewayTimeout: *gatewayTimeout,
			PasswordRecheck: *recheck, LeaseDuration: *leaseDuration, InstanceID: *instance,
			DeviceEvents: *deviceEvents, GatewayEvents: *gatewayEvents, DeviceTable: *deviceTable, LeaseTable: *leaseTable,
			LoginBudgetTable: *budgetTable,
			ParameterRoot:    *root, GatewayConfigured: *configured,
		}
	}
}

// Build wires the service on rt: one part per gateway (its watcher), and
// the consumer of GatewayConfigured when its queue is configured. With no
// gateway the service has nothing to do and stays up, ready.
func Build(_ context.Context, rt *service.Runtime, s Settings) error {
	log := rt.Logger
	ddb := awsddb.NewFromConfig(rt.AWS)
	pub := sns.NewPublisher(messaging.TopicPublisher(rt, &s.DeviceEvents, &s.GatewayEvents))
	store := dynamodb.NewStore(ddb, dynamodb.Config{DeviceTable: s.DeviceTable, LeaseTable: s.LeaseTable}, rt.Metrics)
	leases := dynamodb.NewLeases(ddb, s.LeaseTable, s.InstanceID, s.LeaseDuration)
	metrics := prometheus.NewMetrics(rt.Metrics)
	passwords := ssm.NewPasswords(awsssm.NewFromConfig(rt.AWS), s.ParameterRoot)
	budget := loginbudget.New(dynamodb.LoginBudgetStore(lbddb.New(ddb, s.LoginBudgetTable)), app.Component,
		loginbudget.WithObserver(metrics), loginbudget.WithLogger(log))

	if len(s.Gateways) == 0 {
		log.Warn("no gateways configured (GATEWAYS): nothing to watch")
	}
	var watchers []*app.Watcher
	for _, g := range s.Gateways {
		conn := isapi.NewConn(g.ID.String(), g.URL, s.GatewayUser, passwords, budget, isapi.Options{
			Timeout: s.GatewayTimeout, Recheck: s.PasswordRecheck,
			Stream:  hik.SubscribeOptions{HeartbeatTimeout: s.HeartbeatTimeout},
			Secrets: rt.Secrets(), OnError: metrics.GatewayError(g.ID.String()), Logger: log,
		})
		w := app.New(app.Config{
			GatewayID: g.ID, PollInterval: s.PollInterval, OfflineHysteresis: s.OfflineHysteresis,
			UnreachableAfter: s.UnreachableAfter, DetailsRefresh: s.DetailsRefresh, Subscribe: s.Subscribe,
		}, conn, store, leases, pub, metrics, log)
		watchers = append(watchers, w)
		rt.Go("watch "+g.ID.String(), w.Run)
	}
	if s.GatewayConfigured.URL == "" {
		log.Warn("no queue of gateway events (DEVICE_WATCHER_GATEWAY_EVENTS_QUEUE_URL): reconfigured gateways are not heard of; " +
			"stopped logins resume only when PASSWORD_RECHECK finds a new password version or the login budget allowing the password")
	} else {
		messaging.Consume(rt, &s.GatewayConfigured, sqsport.Handler(app.NewWatchers(log, watchers...)))
	}
	log.Info("watching", "gateways", len(s.Gateways), "instance_id", s.InstanceID, "subscribe", s.Subscribe,
		"poll_interval", s.PollInterval.String(), "offline_hysteresis", s.OfflineHysteresis.String(),
		"hears_reconfigurations", s.GatewayConfigured.URL != "")
	return nil
}
