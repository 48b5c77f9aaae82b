package wiring_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/loginbudget"
	"mediagw/pkg/messaging"
	"mediagw/pkg/topology"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

const (
	factoryPassword = "Factory-Passw0rd"
	desiredPassword = "Desired-Passw0rd"
)

// queueFlags point a watcher at the harness's queue of gateway events.
func (h *harness) queueFlags() []string {
	return []string{
		"--device-watcher-gateway-events-queue-url=" + h.env["DEVICE_WATCHER_GATEWAY_EVENTS_QUEUE_URL"],
		"--device-watcher-gateway-events-dlq-url=" + h.env["DEVICE_WATCHER_GATEWAY_EVENTS_DLQ_URL"],
		"--device-watcher-gateway-events-max-receive-count=" + h.env["DEVICE_WATCHER_GATEWAY_EVENTS_MAX_RECEIVE_COUNT"],
	}
}

// configured publishes GatewayConfigured through the real gateway events
// topic, as the configurator does, after it told the login budget that the
// gateway has the parameter's current password now (Forget).
func (h *harness) configured(gatewayID string, cred loginbudget.Credential, changed ...string) {
	h.t.Helper()
	if cred != "" {
		if err := h.budget().Forget(context.Background(), gatewayID, cred); err != nil {
			h.t.Fatal(err)
		}
	}
	pub := messaging.NewPublisher(sns.NewFromConfig(h.aws), messaging.PublisherConfig{
		Source: "configurator",
		Routes: topology.Default().Routes(map[string]string{"mediagw-gateway-events": h.env["GATEWAY_EVENTS_TOPIC_ARN"]}),
	})
	if err := pub.Publish(context.Background(), &eventsv1.GatewayConfigured{GatewayId: gatewayID, Changed: changed}); err != nil {
		h.t.Fatal(err)
	}
}

// factoryGateway starts a simulated gateway that still has its factory
// password while the parameter store already holds the desired one (whose
// credential it returns).
func (h *harness) factoryGateway(gatewayID string) (*gatewaysim.Server, loginbudget.Credential) {
	h.t.Helper()
	s := gatewaysimtest.Start(h.t, gatewaysimtest.WithDevices(1, 1))
	if err := s.SetPassword(factoryPassword); err != nil {
		h.t.Fatal(err)
	}
	return s, h.setPassword(gatewayID, desiredPassword)
}

func failedLogins(s *gatewaysim.Server) int { return len(s.LoginFailures()) }

// rejectedOnce waits until the watcher w stopped logging in to the gateway
// (announced credentials-rejected), and checks it spent one login attempt
// over a few more polls and announced no camera.
func rejectedOnce(t *testing.T, h *harness, w *watcherProc, s *gatewaysim.Server, gatewayID string) {
	t.Helper()
	h.gw.wait(t, "GatewayCredentialsRejected", "", 1, patience)
	w.waitPolls(t, gatewayID, w.polls(gatewayID)+3)
	if n := failedLogins(s); n != 1 {
		t.Fatalf("%d failed logins at the gateway, want 1", n)
	}
	none(t, h.device, "DeviceOnline", "")
}

const gatewayConfigured = "mediagw.events.v1.GatewayConfigured"

// The configurator installs the desired password a few seconds after the
// watcher tried it, and tells the login budget: its GatewayConfigured makes
// the watcher look at once (not at its next PASSWORD_RECHECK, an hour here)
// and log in again, without a second failed login.
func TestReconfiguredGatewayIsWatchedAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s, cred := h.factoryGateway("gw-c")
	w := h.start("dw-1", []string{"gw-c=" + s.URL()}, append(h.queueFlags(), "--password-recheck=1h")...)
	rejectedOnce(t, h, w, s, "gw-c")

	if err := s.SetPassword(desiredPassword); err != nil { // the configurator's work
		t.Fatal(err)
	}
	h.configured("gw-c", cred, "password", "name")
	dev := s.Devices()[0].DevIndex
	h.device.wait(t, "DeviceOnline", dev, 1, patience)
	h.gw.wait(t, "GatewayCredentialsAccepted", "", 1, patience)
	h.waitRows(dev, 1, "online", patience)
	testkit.Eventually(t, patience, 50*time.Millisecond, "event stream subscribed again", func() bool { return s.Counters().Subscribers == 1 })
	if n := failedLogins(s); n != 1 {
		t.Fatalf("%d failed logins at the gateway, want 1", n)
	}
	if got := w.metric("mediagw_messages_handled_total", map[string]string{"event_type": gatewayConfigured}); got != 1 {
		t.Fatalf("%v GatewayConfigured handled, want 1", got)
	}
	for _, secret := range []string{factoryPassword, desiredPassword} {
		if strings.Contains(w.logs.String(), secret) {
			t.Fatal("a password appears in the logs")
		}
	}
}

// With several instances the event reaches one of them, not necessarily
// the holder of the gateway's lease: it is noted on the lease and the
// holder acts on it at its next renewal.
func TestReconfigurationHeardByAnotherInstanceReachesTheHolder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s, cred := h.factoryGateway("gw-d")
	gws := []string{"gw-d=" + s.URL()}
	holder := h.start("dw-1", gws, "--password-recheck=1h") // does not consume the queue
	rejectedOnce(t, h, holder, s, "gw-d")
	listener := h.start("dw-2", gws, append(h.queueFlags(), "--password-recheck=1h")...)

	if err := s.SetPassword(desiredPassword); err != nil {
		t.Fatal(err)
	}
	h.configured("gw-d", cred, "password")
	testkit.Eventually(t, patience, 50*time.Millisecond, "GatewayConfigured handled by the instance without the lease", func() bool {
		return listener.metric("mediagw_messages_handled_total", map[string]string{"event_type": gatewayConfigured}) == 1
	})
	// The holder hears of it with its next renewal (every second: 3 s leases).
	h.device.wait(t, "DeviceOnline", s.Devices()[0].DevIndex, 1, patience)
	if holder.metric("mediagw_device_watcher_lease_held", map[string]string{"gateway": "gw-d"}) != 1 ||
		listener.metric("mediagw_device_watcher_lease_held", map[string]string{"gateway": "gw-d"}) != 0 {
		t.Fatal("the lease changed hands; the holder was meant to hear of the configuration through it")
	}
	if n := failedLogins(s); n != 1 {
		t.Fatalf("%d failed logins at the gateway, want 1", n)
	}
}

// GatewayConfigured about a gateway this instance does not watch is
// acknowledged: not an error, not retried, not dead-lettered.
func TestGatewayConfiguredForAnUnwatchedGatewayIsAcknowledged(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.sim("gw-e", 1, 1)
	w := h.start("dw-1", []string{"gw-e=" + s.URL()}, h.queueFlags()...)
	h.configured("gw-elsewhere", "", "password")
	testkit.Eventually(t, patience, 50*time.Millisecond, "GatewayConfigured handled", func() bool {
		return w.metric("mediagw_messages_handled_total", map[string]string{"event_type": gatewayConfigured}) == 1
	})
	if f, d := w.metric("mediagw_messages_failed_total", nil), w.metric("mediagw_messages_dead_lettered_total", nil); f != 0 || d != 0 {
		t.Fatalf("%v failed, %v dead-lettered, want none", f, d)
	}
}
