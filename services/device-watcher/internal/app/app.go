// Package app wires the device-watcher: configuration, AWS clients, the
// publisher, and one watcher per configured gateway.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"mediagw/pkg/isapi"
	"mediagw/pkg/messaging"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	"mediagw/services/device-watcher/internal/gateway"
	"mediagw/services/device-watcher/internal/lease"
	"mediagw/services/device-watcher/internal/store"
	"mediagw/services/device-watcher/internal/watcher"
)

// Name is the service's name (event source, lease ids).
const Name = "device-watcher"

// Settings are the service's settings, filled by Config.Parse.
type Settings struct {
	Gateways          *[]string
	GatewayUser       *string
	PollInterval      *time.Duration
	OfflineHysteresis *time.Duration
	UnreachableAfter  *time.Duration
	DetailsRefresh    *time.Duration
	Subscribe         *bool
	HeartbeatTimeout  *time.Duration
	GatewayTimeout    *time.Duration
	PasswordReread    *time.Duration
	PasswordRetrySame *time.Duration
	LeaseDuration     *time.Duration
	InstanceID        *string
	DeviceTopicARN    *string
	GatewayTopicARN   *string
	DeviceTable       *string
	LeaseTable        *string
	ParameterRoot     *string
	// The queue of GatewayConfigured events (optional).
	EventsQueueURL        *string
	EventsDLQURL          *string
	EventsMaxReceiveCount *int
}

// eventsQueue is the topology's queue of the watcher's gateway events.
const eventsQueue = "mediagw-device-watcher-gateway-events"

// NewConfig declares the settings.
func NewConfig() (*service.Config, *Settings) {
	c := service.NewConfig(Name, "tracks every camera channel on every gateway: DynamoDB deviceMediaURL and device/gateway events", ":9102")
	s := &Settings{}
	positive := func(d **time.Duration) service.Option {
		return service.Check(func() error {
			if **d <= 0 {
				return fmt.Errorf("must be positive, got %s", **d)
			}
			return nil
		})
	}
	s.Gateways = c.List("GATEWAYS", "", "gateways to watch, comma-separated <gateway-id>=<http base URL>, e.g. gw-1=http://10.0.0.5:80",
		service.Check(func() error { _, err := ParseGateways(*s.Gateways); return err }))
	s.GatewayUser = c.String("GATEWAY_USER", "admin", "user the watcher logs in to the gateways as")
	s.PollInterval = c.Duration("POLL_INTERVAL", 10*time.Second, "how often each gateway's device list is polled (safety net and reconciliation)",
		positive(&s.PollInterval))
	s.OfflineHysteresis = c.Duration("OFFLINE_HYSTERESIS", 30*time.Second, "a camera is declared offline after being seen offline continuously this long")
	s.UnreachableAfter = c.Duration("UNREACHABLE_AFTER", 10*time.Second, "a gateway is declared unreachable after failing to answer this long")
	s.DetailsRefresh = c.Duration("DETAILS_REFRESH", 10*time.Minute, "channels and media URLs of online cameras are read again after this long (0: only on change)")
	s.Subscribe = c.Bool("SUBSCRIBE", true, "follow the gateway's device-management event stream for immediate detection")
	s.HeartbeatTimeout = c.Duration("STREAM_HEARTBEAT_TIMEOUT", 30*time.Second, "event stream silence after which it is reconnected")
	s.GatewayTimeout = c.Duration("GATEWAY_TIMEOUT", 10*time.Second, "timeout of each request to a gateway", positive(&s.GatewayTimeout))
	s.PasswordReread = c.Duration("PASSWORD_REREAD_AFTER", 30*time.Second, "least time between two reads of a gateway password after authentication failures")
	s.PasswordRetrySame = c.Duration("PASSWORD_RETRY_SAME_AFTER", 10*time.Minute, "a rejected password that is still the configured one is tried again after this long (keep above 6 min: 5 failures in 30 min lock the gateway)")
	s.LeaseDuration = c.Duration("LEASE_DURATION", 30*time.Second, "lease on a gateway; another instance takes over this long after a crash", positive(&s.LeaseDuration))
	host, _ := os.Hostname()
	s.InstanceID = c.String("INSTANCE_ID", fmt.Sprintf("%s-%d", host, os.Getpid()), "this instance's name in the leases")
	s.DeviceTopicARN = c.String(topology.EnvName("mediagw-device-events", "TOPIC_ARN"), "", "SNS topic of device events", service.Required())
	s.GatewayTopicARN = c.String(topology.EnvName("mediagw-gateway-events", "TOPIC_ARN"), "", "SNS topic of gateway events", service.Required())
	s.DeviceTable = c.String(topology.EnvName("deviceMediaURL", "TABLE"), "", "DynamoDB table of camera channels", service.Required())
	s.LeaseTable = c.String(topology.EnvName("mediagw-leases", "TABLE"), "", "DynamoDB table of leases (and each gateway's state item)", service.Required())
	s.ParameterRoot = c.String("PARAMETER_ROOT", "", "SSM path under which <root>/gateways/<id>/Password is read", service.Required())
	s.EventsQueueURL = c.String(topology.EnvName(eventsQueue, "QUEUE_URL"), "",
		"SQS queue of GatewayConfigured events: a reconfigured gateway's password is tried at once (empty: a rejected password waits for PASSWORD_RETRY_SAME_AFTER)")
	s.EventsDLQURL = c.String(topology.EnvName(eventsQueue, "DLQ_URL"), "", "its dead-letter queue")
	s.EventsMaxReceiveCount = c.Int(topology.EnvName(eventsQueue, "MAX_RECEIVE_COUNT"), 5, "deliveries before a failing message is dead-lettered")
	return c, s
}

// Gateway is one gateway to watch.
type Gateway struct {
	ID  string
	URL string
}

var gatewayID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)

// ParseGateways reads GATEWAYS entries "<id>=<http base URL>".
func ParseGateways(entries []string) ([]Gateway, error) {
	var out []Gateway
	seen := map[string]bool{}
	for _, e := range entries {
		id, raw, ok := strings.Cut(e, "=")
		id, raw = strings.TrimSpace(id), strings.TrimSpace(raw)
		if !ok || !gatewayID.MatchString(id) {
			return nil, fmt.Errorf("%q: want <gateway-id>=<http base URL> with an id of letters, digits, '.', '_' or '-'", e)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The URL is not repeated: it might carry a password.
			return nil, fmt.Errorf("gateway %s: not an http(s)://host[:port] URL", id)
		}
		if u.User != nil {
			return nil, fmt.Errorf("gateway %s: the URL must not carry credentials (the password comes from SSM)", id)
		}
		if seen[id] {
			return nil, fmt.Errorf("gateway %s listed twice", id)
		}
		seen[id] = true
		out = append(out, Gateway{ID: id, URL: raw})
	}
	return out, nil
}

// Run watches every configured gateway until ctx ends.
func Run(ctx context.Context, rt *service.Runtime, s *Settings) error {
	gws, err := ParseGateways(*s.Gateways)
	if err != nil {
		return err
	}
	log := rt.Logger
	ddb := dynamodb.NewFromConfig(rt.AWS)
	mm := messaging.NewMetrics(rt.Metrics)
	pub := messaging.NewPublisher(sns.NewFromConfig(rt.AWS), messaging.PublisherConfig{
		Source: Name,
		Routes: topology.Default().Routes(map[string]string{
			"mediagw-device-events": *s.DeviceTopicARN, "mediagw-gateway-events": *s.GatewayTopicARN,
		}),
		Logger:  log,
		Metrics: mm,
	})
	st := store.New(ddb, store.Config{DeviceTable: *s.DeviceTable, LeaseTable: *s.LeaseTable}, rt.Metrics)
	leases := lease.NewManager(ddb, *s.LeaseTable, *s.InstanceID, *s.LeaseDuration)
	metrics := watcher.NewMetrics(rt.Metrics)
	passwords := gateway.NewSSMPasswords(ssm.NewFromConfig(rt.AWS), *s.ParameterRoot)

	if len(gws) == 0 {
		log.Warn("no gateways configured (GATEWAYS): nothing to watch")
	}
	var wg sync.WaitGroup
	watchers := map[string]reconfigurable{}
	for _, g := range gws {
		conn := gateway.NewConn(g.ID, g.URL, *s.GatewayUser, passwords, gateway.Options{
			Timeout: *s.GatewayTimeout, RereadAfter: *s.PasswordReread, RetrySameAfter: *s.PasswordRetrySame,
			OnError: metrics.GatewayError(g.ID), Logger: log,
		})
		w := watcher.New(watcher.Config{
			GatewayID: g.ID, PollInterval: *s.PollInterval, OfflineHysteresis: *s.OfflineHysteresis,
			UnreachableAfter: *s.UnreachableAfter, DetailsRefresh: *s.DetailsRefresh, Subscribe: *s.Subscribe,
			Stream: isapi.SubscribeOptions{HeartbeatTimeout: *s.HeartbeatTimeout},
		}, conn, st, leases, pub, metrics, log)
		watchers[g.ID] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("watcher stopped", "gateway_id", g.ID, "err", err)
			}
		}()
	}
	if *s.EventsQueueURL == "" {
		log.Warn("no queue of gateway events (" + topology.EnvName(eventsQueue, "QUEUE_URL") + "): reconfigured gateways are not heard of; " +
			"a password a gateway rejected before its configuration is tried again only after PASSWORD_RETRY_SAME_AFTER")
	} else {
		router := messaging.NewRouter()
		newReconfigurations(watchers, log).register(router)
		consumer := messaging.NewConsumer(sqs.NewFromConfig(rt.AWS), messaging.ConsumerConfig{
			Queue: strings.TrimPrefix(eventsQueue, "mediagw-"), QueueURL: *s.EventsQueueURL,
			DeadLetterQueueURL: *s.EventsDLQURL, MaxReceiveCount: *s.EventsMaxReceiveCount,
			Logger: log, Metrics: mm,
		}, router.Handle)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := consumer.Run(ctx); err != nil {
				log.Error("gateway events consumer stopped", "err", err)
			}
		}()
	}
	log.Info("watching", "gateways", len(gws), "instance_id", *s.InstanceID, "subscribe", *s.Subscribe,
		"poll_interval", s.PollInterval.String(), "offline_hysteresis", s.OfflineHysteresis.String(),
		"hears_reconfigurations", *s.EventsQueueURL != "")
	rt.SetReady(true)
	<-ctx.Done() // also with no gateway: the process stays up, ready
	wg.Wait()
	return nil
}
