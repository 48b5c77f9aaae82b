package wiring_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/pkg/loginbudget"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/testkit"
)

// setBootstrap stores a gateway's factory password where the configurator
// reads it (BootstrapPassword): the gateway may still be factory-fresh.
func (h *harness) setBootstrap(gatewayID, password string) {
	h.t.Helper()
	_, err := h.ssm.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(h.env["PARAMETER_ROOT"] + "/gateways/" + gatewayID + "/BootstrapPassword"),
		Type: ssmtypes.ParameterTypeSecureString, Value: aws.String(password), Overwrite: aws.Bool(true),
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func awaitingConfiguration(p *watcherProc, gw string) float64 {
	return p.metric("mediagw_device_watcher_gateway_awaiting_configuration", map[string]string{"gateway": gw})
}

func requestsTo(s *gatewaysim.Server) int {
	n := 0
	for _, c := range s.Counters().Requests {
		n += c
	}
	return n
}

// awaitsConfiguration checks that the watcher w waits for the
// configuration of the factory-fresh gateway s: the gauge says so and,
// over a few polls, nothing at all is sent to the gateway (no failed
// login), nothing is announced, and one info line (no error) says why.
func awaitsConfiguration(t *testing.T, h *harness, w *watcherProc, s *gatewaysim.Server, gatewayID string) {
	t.Helper()
	testkit.Eventually(t, patience, 20*time.Millisecond, "the awaiting-configuration gauge", func() bool { return awaitingConfiguration(w, gatewayID) == 1 })
	h.settled(w, gatewayID)
	w.waitPolls(t, gatewayID, w.polls(gatewayID)+3)
	if n := failedLogins(s); n != 0 {
		t.Fatalf("%d failed logins at the gateway while awaiting its configuration: %+v", n, s.LoginFailures())
	}
	if n := requestsTo(s); n != 0 {
		t.Fatalf("%d requests sent to the gateway while awaiting its configuration: %v", n, s.Counters().Requests)
	}
	none(t, h.gw, "", "")
	none(t, h.device, "", "")
	if credentialsRejected(w, gatewayID) != 0 {
		t.Fatal("the credentials-rejected gauge is set")
	}
	logs := w.logs.String()
	if n := strings.Count(logs, "gateway awaits its configuration"); n != 1 {
		t.Fatalf("%d log lines say the gateway awaits its configuration, want 1", n)
	}
	if strings.Contains(logs, `"level":"ERROR"`) {
		t.Fatal("an error was logged while the gateway awaits its configuration")
	}
}

// resumedWithoutAFailedLogin checks, once the configuration was made
// known, that the cameras flow, the event stream subscribes, and the
// gateway still saw no failed login; no login standing was announced.
func resumedWithoutAFailedLogin(t *testing.T, h *harness, w *watcherProc, s *gatewaysim.Server, gatewayID string) {
	t.Helper()
	dev := s.Devices()[0].DevIndex
	h.device.wait(t, "DeviceOnline", dev, 1, patience)
	h.waitRows(dev, 1, "online", patience)
	testkit.Eventually(t, patience, 50*time.Millisecond, "event stream subscribed", func() bool { return s.Counters().Subscribers == 1 })
	h.settled(w, gatewayID)
	if n := failedLogins(s); n != 0 {
		t.Fatalf("%d failed logins at the gateway, want 0: %+v", n, s.LoginFailures())
	}
	onlyOne(t, h.device, "DeviceOnline", dev)
	none(t, h.gw, "GatewayCredentialsRejected", "")
	none(t, h.gw, "GatewayCredentialsAccepted", "")
	if awaitingConfiguration(w, gatewayID) != 0 {
		t.Fatal("the awaiting-configuration gauge is still set")
	}
	noSecret(t, h, w, factoryPassword, desiredPassword)
}

// A fresh gateway (factory password, a BootstrapPassword parameter) is
// not logged in to before the configurator configured it: no failed
// login, no GatewayCredentialsRejected. The configurator installs the
// desired password, tells the budget and publishes GatewayConfigured: the
// watcher logs in at once (not at its next PASSWORD_RECHECK, an hour
// here) and the cameras flow, still without a failed login.
func TestFactoryFreshGatewayIsLoggedInToOnceConfigured(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s, cred := h.factoryGateway("gw-f")
	h.setBootstrap("gw-f", factoryPassword)
	w := h.start("dw-1", []string{"gw-f=" + s.URL()}, append(h.queueFlags(), "--password-recheck=1h")...)
	awaitsConfiguration(t, h, w, s, "gw-f")

	if err := s.SetPassword(desiredPassword); err != nil { // the configurator's work
		t.Fatal(err)
	}
	h.configured("gw-f", cred, "password", "name")
	resumedWithoutAFailedLogin(t, h, w, s, "gw-f")
}

// Without GatewayConfigured (no queue), the wait ends at the next
// PASSWORD_RECHECK after another component (the configurator, verifying)
// logged in with the current password: the budget's ledger shows it
// accepted.
func TestFactoryFreshGatewayIsLoggedInToOnceTheLedgerShowsThePasswordAccepted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s, cred := h.factoryGateway("gw-g")
	h.setBootstrap("gw-g", factoryPassword)
	w := h.start("dw-1", []string{"gw-g=" + s.URL()}, "--password-recheck=1s")
	awaitsConfiguration(t, h, w, s, "gw-g")

	if err := s.SetPassword(desiredPassword); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := h.budget().Begin(ctx, "gw-g", cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Finish(ctx, loginbudget.Accepted, 0); err != nil {
		t.Fatal(err)
	}
	resumedWithoutAFailedLogin(t, h, w, s, "gw-g")
}
