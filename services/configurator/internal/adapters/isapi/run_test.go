// The configurator's run (app.Configurator) through this adapter against a
// simulated gateway: what the gateway sees of it (failed logins, lockouts,
// PUTs, reboots) is the point, so these tests count on the simulator's
// side. The rules themselves are tested with in-memory fakes in internal/app.
package isapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	isapiclient "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/services/configurator/internal/adapters/isapi"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

const (
	desiredPassword   = "Mgw-Desired-2026"
	bootstrapPassword = "Factory-Pass1"
	elasticIP         = "203.0.113.10"
	localIP           = "127.0.0.1"
)

// staticParams is a gateway's parameters as SSM would give them, with the
// pending-reboot record kept in memory.
type staticParams domain.Parameters

// memParams is a parameter store in memory.
type memParams struct {
	mu      sync.Mutex
	params  domain.Parameters
	pending string
	conf    *domain.PendingConfiguration
}

func (p *memParams) SetPendingConfiguration(_ context.Context, pc domain.PendingConfiguration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conf = &pc
	return nil
}

func (p *memParams) ClearPendingConfiguration(context.Context, string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conf = nil
	return nil
}

func (p *memParams) PendingConfigurations(context.Context) ([]domain.PendingConfiguration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conf == nil {
		return nil, nil
	}
	return []domain.PendingConfiguration{*p.conf}, nil
}

func (p *memParams) Parameters(context.Context, string, string) (domain.Parameters, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := domain.Parameters{}
	for k, v := range p.params {
		out[k] = v
	}
	if p.pending != "" {
		out[domain.ParamPendingReboot] = domain.Param{Value: domain.NewSecret(p.pending)}
	}
	if p.conf != nil {
		v, _ := domain.EncodePendingConfiguration(*p.conf)
		out[domain.ParamPendingConfiguration] = domain.Param{Value: domain.NewSecret(v)}
	}
	return out, nil
}

func (p *memParams) SetPendingReboot(_ context.Context, _ string, note string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = note
	return nil
}

func (p *memParams) ClearPendingReboot(context.Context, string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending = ""
	return nil
}

func (p *memParams) pendingReboot() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending != ""
}

const paramPath = "/mediagw/gateways/gw-test-1/"

var desiredCred = loginbudget.CredentialOf(paramPath+domain.ParamPassword, 1)

func seedParams() staticParams {
	p := staticParams{}
	for _, v := range []struct {
		short, value string
		secure       bool
	}{
		{domain.ParamGatewayName, "gw-test-1", false},
		{domain.ParamPassword, desiredPassword, true},
		{domain.ParamBootstrapPassword, bootstrapPassword, true},
		{domain.ParamTimezone, "5.5", false},
		{domain.ParamExternalIP, "198.51.100.1", false},
	} {
		p[v.short] = domain.Param{Value: domain.NewSecret(v.value), Secure: v.secure, Name: paramPath + v.short, Version: 1}
	}
	return p
}

// harness is a simulated gateway and a configurator aimed at it, with a
// login budget in memory, whose log is kept to check that no password
// shows.
type harness struct {
	params *memParams
	sim    *gatewaysim.Server
	budget *loginbudget.Budget
	conf   *app.Configurator
	logs   *testkit.Buffer
	req    app.Request
}

func newHarness(t *testing.T, gatewayPassword string, params staticParams, tweak func(*app.Options), simOpts ...gatewaysimtest.Option) *harness {
	t.Helper()
	simOpts = append([]gatewaysimtest.Option{gatewaysimtest.WithConfig(func(c *gatewaysim.Config) {
		c.AdminPassword = gatewayPassword
		c.RebootDowntime = time.Second
	})}, simOpts...)
	sim := gatewaysimtest.Start(t, simOpts...)
	logs := &testkit.Buffer{}
	opt := app.Options{
		RetryInitial: 20 * time.Millisecond, RetryMaxElapsed: time.Second, RebootTimeout: 15 * time.Second, LockWaitMax: -1,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tweak != nil {
		tweak(&opt)
	}
	budget := isapi.NewMemBudget()
	dialer := isapi.Dialer{Timeout: 2 * time.Second, Budget: budget}
	store := &memParams{params: domain.Parameters(params)}
	conf := app.New(store, dialer.Open, budget, opt)
	h := &harness{params: store, sim: sim, budget: budget, conf: conf, logs: logs,
		req: app.Request{GatewayID: "gw-test-1", Address: sim.HTTPAddr(), ElasticIP: elasticIP}}
	t.Cleanup(func() {
		for _, pw := range []string{desiredPassword, bootstrapPassword, gatewayPassword} {
			if strings.Contains(logs.String(), pw) {
				t.Errorf("a password appears in the log:\n%s", logs.String())
			}
		}
	})
	return h
}

// accepted records in the budget that the gateway accepted cred (as
// another component's login would).
func (h *harness) accepted(t *testing.T, cred loginbudget.Credential) {
	t.Helper()
	a, err := h.budget.Begin(t.Context(), h.req.GatewayID, cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Finish(t.Context(), loginbudget.Accepted, 0); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) configure(t *testing.T) (domain.Result, *domain.Failure) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, fail := h.conf.Configure(ctx, h.req)
	if fail != nil {
		for _, pw := range []string{desiredPassword, bootstrapPassword} {
			if strings.Contains(fail.Reason, pw) || strings.Contains(fail.Error(), pw) {
				t.Fatalf("a password appears in the failure: %v", fail)
			}
		}
	}
	return res, fail
}

func totalPuts(c gatewaysim.Counters) int {
	n := 0
	for _, v := range c.Puts {
		n += v
	}
	return n
}

func totalRequests(c gatewaysim.Counters) int {
	n := 0
	for _, v := range c.Requests {
		n += v
	}
	return n
}

func changedNames(res domain.Result) string {
	var s []string
	for _, c := range res.Changed {
		s = append(s, string(c))
	}
	return strings.Join(s, ",")
}

func assertConfigured(t *testing.T, sim *gatewaysim.Server) {
	t.Helper()
	if !sim.CheckPassword(desiredPassword) {
		t.Error("the gateway does not have the desired password")
	}
	set := sim.Settings()
	if set.DeviceName != "gw-test-1" || set.TimeMode != "NTP" || set.TimeZone != "CST-5:30:00" {
		t.Errorf("settings: name %q, time %s %s", set.DeviceName, set.TimeMode, set.TimeZone)
	}
	cm := set.ContentPortMaps
	if !cm.Enabled || len(cm.AddrList) != 1 || cm.AddrList[0].ExternalIPAddress != elasticIP {
		t.Errorf("platform port mapping: %+v", cm)
	}
	for _, p := range cm.PortList {
		if p.ExternalPort != p.InternalPort {
			t.Errorf("platform port %d mapped to %d", p.InternalPort, p.ExternalPort)
		}
	}
	dm := set.DevicePortMaps
	if !dm.Enabled || len(dm.PortList) == 0 {
		t.Errorf("device port mapping: %+v", dm)
	}
	for _, p := range dm.PortList {
		switch {
		case p.Single != nil && p.Single.ExternalPort != p.Single.InternalPort:
			t.Errorf("device port %d mapped to %d", p.Single.InternalPort, p.Single.ExternalPort)
		case p.Range != nil && (p.Range.MinExternalPort != p.Range.MinInternalPort || p.Range.MaxExternalPort != p.Range.MaxInternalPort):
			t.Errorf("device range mapped wrong: %+v", *p.Range)
		}
	}
	if set.RebootRequired {
		t.Error("the gateway still waits for a reboot")
	}
}

func TestFactoryGatewayConfiguredThenIdempotent(t *testing.T) {
	h := newHarness(t, bootstrapPassword, seedParams(), nil)
	res, fail := h.configure(t)
	if fail != nil {
		t.Fatalf("first run failed: %v\nlog:\n%s", fail, h.logs.String())
	}
	if got := changedNames(res); got != "password,name,time,portmap.contentMgmt,portmap.devMgmt" || !res.Rebooted {
		t.Fatalf("changed %s, rebooted %v", got, res.Rebooted)
	}
	assertConfigured(t, h.sim)
	c := h.sim.Counters()
	if c.Reboots != 1 {
		t.Fatalf("reboots = %d, want 1", c.Reboots)
	}
	if n := len(h.sim.LoginFailures()); n != 0 {
		t.Fatalf("failed logins = %d, want 0 (the bootstrap password tried first on a gateway nobody logged in to)", n)
	}
	for _, p := range []string{gatewaysim.PathUsers, gatewaysim.PathDeviceInfo, gatewaysim.PathTime, gatewaysim.PathContentPortMaps, gatewaysim.PathDevicePortMaps, gatewaysim.PathReboot} {
		if c.Puts[p] != 1 {
			t.Errorf("PUT %s %d times, want 1", p, c.Puts[p])
		}
	}

	h.sim.ResetCounters()
	res, fail = h.configure(t)
	if fail != nil {
		t.Fatalf("second run failed: %v", fail)
	}
	c = h.sim.Counters()
	if len(res.Changed) != 0 || res.Rebooted || totalPuts(c) != 0 || c.Reboots != 0 || c.FailedLogins[localIP] != 0 {
		t.Fatalf("second run: changed %v rebooted %v, puts %v, reboots %d, failed logins %d",
			res.Changed, res.Rebooted, c.Puts, c.Reboots, c.FailedLogins[localIP])
	}
}

// A run that changed the password, proved it, and crashed before
// reporting left the gateway with the desired password and factory
// settings, and the login budget with the desired credential accepted:
// the next run tries it first. (Had it crashed before proving it, the
// bootstrap credential would be the accepted one: one failed login.)
func TestPasswordAlreadyChanged(t *testing.T) {
	h := newHarness(t, desiredPassword, seedParams(), nil)
	h.accepted(t, desiredCred)
	res, fail := h.configure(t)
	if fail != nil {
		t.Fatal(fail)
	}
	if got := changedNames(res); got != "name,time,portmap.contentMgmt,portmap.devMgmt" {
		t.Fatalf("changed %s", got)
	}
	c := h.sim.Counters()
	if c.FailedLogins[localIP] != 0 || c.Puts[gatewaysim.PathUsers] != 0 {
		t.Fatalf("failed logins %d, password PUTs %d", c.FailedLogins[localIP], c.Puts[gatewaysim.PathUsers])
	}
	assertConfigured(t, h.sim)
}

func TestWrongBootstrapPasswordFailsWithoutLockingOut(t *testing.T) {
	h := newHarness(t, "Someone-Else-9", seedParams(), nil)
	for range 3 {
		_, fail := h.configure(t)
		if fail == nil || fail.Step != domain.StepLogin || fail.Retryable || fail.Credentials == nil ||
			fail.Credentials.Reason != domain.CredentialsRejected || !strings.Contains(fail.Reason, "no password to log in with") {
			t.Fatalf("failure = %+v", fail)
		}
	}
	c := h.sim.Counters()
	if n := len(h.sim.LoginFailures()); n != 2 {
		t.Fatalf("failed logins = %d, want 2", n)
	}
	if c.Lockouts[localIP] != 0 || totalPuts(c) != 0 {
		t.Fatalf("lockouts %d, puts %v", c.Lockouts[localIP], c.Puts)
	}
}

// With only one failed login left before the lock, the second candidate
// is not tried.
func TestStopsBeforeTriggeringTheLock(t *testing.T) {
	h := newHarness(t, "Someone-Else-9", seedParams(), nil, gatewaysimtest.WithLockout(2, 30*time.Minute))
	_, fail := h.configure(t)
	if fail == nil || fail.Step != domain.StepLogin || fail.Retryable || !strings.Contains(fail.Reason, "only 1 more") {
		t.Fatalf("failure = %+v", fail)
	}
	c := h.sim.Counters()
	if c.FailedLogins[localIP] != 1 || c.Lockouts[localIP] != 0 {
		t.Fatalf("failed logins %d, lockouts %d", c.FailedLogins[localIP], c.Lockouts[localIP])
	}
}

// lock makes the simulator lock 127.0.0.1 out with one wrong login.
func lock(t *testing.T, sim *gatewaysim.Server) {
	t.Helper()
	c, err := isapiclient.New(sim.URL(), gatewaysimtest.User, "Wrong-Pass-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(t.Context()); !errors.Is(err, isapiclient.ErrLocked) {
		t.Fatalf("the simulator did not lock: %v", err)
	}
	sim.ResetCounters()
}

func TestLockedGatewayStopsAtOnce(t *testing.T) {
	h := newHarness(t, bootstrapPassword, seedParams(), nil, gatewaysimtest.WithLockout(1, 30*time.Minute))
	lock(t, h.sim)
	_, fail := h.configure(t)
	if fail == nil || fail.Step != domain.StepLogin || fail.Retryable {
		t.Fatalf("failure = %+v", fail)
	}
	if fail.LockRemaining < 29*time.Minute || fail.LockRemaining > 30*time.Minute || !strings.Contains(fail.Reason, "lock") {
		t.Fatalf("lock remaining %s, reason %q", fail.LockRemaining, fail.Reason)
	}
	c := h.sim.Counters()
	if n := totalRequests(c); n != 1 || c.FailedLogins[localIP] != 0 {
		t.Fatalf("requests while locked = %d (%v), failed logins %d; want the one probe", n, c.Requests, c.FailedLogins[localIP])
	}
}

func TestShortLockIsWaitedOut(t *testing.T) {
	// The gateway has the desired password, and the budget knows it: with
	// a threshold of one, a rejected bootstrap attempt would lock it again.
	h := newHarness(t, desiredPassword, seedParams(), func(o *app.Options) { o.LockWaitMax = 5 * time.Second },
		gatewaysimtest.WithLockout(1, time.Second))
	h.accepted(t, desiredCred)
	lock(t, h.sim)
	start := time.Now()
	res, fail := h.configure(t)
	if fail != nil {
		t.Fatalf("%v\nlog:\n%s", fail, h.logs.String())
	}
	if time.Since(start) < time.Second || !res.Rebooted {
		t.Fatalf("did not wait for the lock (%s) or did not configure (%+v)", time.Since(start), res)
	}
	assertConfigured(t, h.sim)
}

func TestSlowGatewayIsReported(t *testing.T) {
	h := newHarness(t, bootstrapPassword, seedParams(), nil)
	dialer := isapi.Dialer{Timeout: 200 * time.Millisecond, Budget: h.budget}
	h.conf = app.New(h.params, dialer.Open, h.budget,
		app.Options{RetryInitial: 20 * time.Millisecond, RetryMaxElapsed: 300 * time.Millisecond,
			Logger: slog.New(slog.NewJSONHandler(h.logs, nil))})
	if _, err := h.sim.InjectFault(gatewaysim.Fault{Kind: gatewaysim.FaultLatency, Latency: time.Second}); err != nil {
		t.Fatal(err)
	}
	_, fail := h.configure(t)
	if fail == nil || fail.Step != domain.StepConnect || !fail.Retryable || !strings.Contains(fail.Reason, "did not answer") ||
		!strings.Contains(fail.Reason, "deadline exceeded") || !strings.Contains(fail.Reason, "gave up after") {
		t.Fatalf("failure = %+v", fail)
	}
	if c := h.sim.Counters(); c.FailedLogins[localIP] != 0 || c.Authorized[("GET "+gatewaysim.PathDeviceInfo)] != 0 {
		t.Fatalf("a login was attempted against an unresponsive gateway: %+v", c)
	}
}

func TestErrorStatusIsReported(t *testing.T) {
	for _, tc := range []struct {
		name      string
		code      int
		retryable bool
		wantPuts  func(int) bool
	}{
		{"device error is retried then reported retryable", 3, true, func(n int) bool { return n >= 2 }},
		{"invalid content is reported at once", 6, false, func(n int) bool { return n == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, desiredPassword, seedParams(), func(o *app.Options) { o.RetryMaxElapsed = 300 * time.Millisecond })
			if _, err := h.sim.InjectFault(gatewaysim.Fault{Kind: gatewaysim.FaultErrorStatus, Method: "PUT", Path: gatewaysim.PathTime, StatusCode: tc.code}); err != nil {
				t.Fatal(err)
			}
			res, fail := h.configure(t)
			if fail == nil || fail.Step != string(domain.SettingTime) || fail.Retryable != tc.retryable ||
				!strings.Contains(fail.Reason, "HTTP 200") || !strings.Contains(fail.Reason, "statusCode") {
				t.Fatalf("failure = %+v", fail)
			}
			if got := changedNames(res); got != "name" {
				t.Fatalf("changed before the failure: %s", got)
			}
			if n := h.sim.Counters().Puts[gatewaysim.PathTime]; !tc.wantPuts(n) {
				t.Fatalf("PUT time %d times", n)
			}
			if h.sim.Counters().Reboots != 0 {
				t.Fatal("rebooted after a failure")
			}
		})
	}
}

func TestMalformedAnswerIsReported(t *testing.T) {
	h := newHarness(t, desiredPassword, seedParams(), func(o *app.Options) { o.RetryMaxElapsed = 300 * time.Millisecond })
	if _, err := h.sim.InjectFault(gatewaysim.Fault{Kind: gatewaysim.FaultMalformed, Method: "GET", Path: gatewaysim.PathContentPortMaps}); err != nil {
		t.Fatal(err)
	}
	_, fail := h.configure(t)
	if fail == nil || fail.Step != string(domain.SettingContentPortMaps) || !strings.Contains(fail.Reason, "malformed") {
		t.Fatalf("failure = %+v", fail)
	}
}

func TestTransientFaultIsRetriedWithinTheRun(t *testing.T) {
	h := newHarness(t, desiredPassword, seedParams(), nil)
	if _, err := h.sim.InjectFault(gatewaysim.Fault{Kind: gatewaysim.FaultHTTPStatus, HTTPStatus: 503, Method: "PUT", Path: gatewaysim.PathDeviceInfo, Count: 2}); err != nil {
		t.Fatal(err)
	}
	if _, fail := h.configure(t); fail != nil {
		t.Fatal(fail)
	}
	if n := h.sim.Counters().Puts[gatewaysim.PathDeviceInfo]; n != 3 {
		t.Fatalf("PUT deviceInfo %d times, want 3", n)
	}
	assertConfigured(t, h.sim)
}

func TestBadDesiredPasswordNeverTouchesTheGateway(t *testing.T) {
	p := seedParams()
	p[domain.ParamPassword] = domain.Param{Value: domain.NewSecret("alllowercase"), Secure: true}
	h := newHarness(t, bootstrapPassword, p, nil)
	_, fail := h.configure(t)
	if fail == nil || fail.Step != domain.StepParameters || fail.Retryable || !strings.Contains(fail.Reason, "character class") {
		t.Fatalf("failure = %+v", fail)
	}
	if n := totalRequests(h.sim.Counters()); n != 0 {
		t.Fatalf("%d requests to the gateway", n)
	}
}

func TestGatewayThatDoesNotComeBack(t *testing.T) {
	h := newHarness(t, desiredPassword, seedParams(), func(o *app.Options) { o.RebootTimeout = 500 * time.Millisecond },
		gatewaysimtest.WithConfig(func(c *gatewaysim.Config) { c.RebootDowntime = 2 * time.Second }))
	_, fail := h.configure(t)
	if fail == nil || fail.Step != domain.StepReboot || !fail.Retryable || !strings.Contains(fail.Reason, "did not come back") {
		t.Fatalf("failure = %+v", fail)
	}
	_ = h.sim.WaitUp(t.Context())
}

// Two runs for one gateway at once (a duplicate delivery) run one after
// the other: one password change, no rejected login beyond the first.
func TestConcurrentRunsOnOneGateway(t *testing.T) {
	h := newHarness(t, bootstrapPassword, seedParams(), nil)
	var wg sync.WaitGroup
	fails := make([]*domain.Failure, 2)
	for i := range fails {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, fails[i] = h.conf.Configure(t.Context(), h.req)
		}()
	}
	wg.Wait()
	for _, f := range fails {
		if f != nil {
			t.Fatal(f)
		}
	}
	c := h.sim.Counters()
	if c.Puts[gatewaysim.PathUsers] != 1 || c.Reboots != 1 || c.FailedLogins[localIP] != 0 {
		t.Fatalf("password PUTs %d, reboots %d, failed logins %d", c.Puts[gatewaysim.PathUsers], c.Reboots, c.FailedLogins[localIP])
	}
}

func TestUnreachableGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	budget := isapi.NewMemBudget()
	dialer := isapi.Dialer{Timeout: 500 * time.Millisecond, Budget: budget}
	conf := app.New(&memParams{params: domain.Parameters(seedParams())}, dialer.Open, budget,
		app.Options{RetryInitial: 20 * time.Millisecond, RetryMaxElapsed: 300 * time.Millisecond})
	_, fail := conf.Configure(t.Context(), app.Request{GatewayID: "gw-x", Address: addr})
	if fail == nil || fail.Step != domain.StepConnect || !fail.Retryable || !strings.Contains(fail.Reason, "refused") {
		t.Fatalf("failure = %+v", fail)
	}
}

// A reboot that fails is owed: the next run finds the settings as desired
// but reboots all the same, and only then forgets it.
func TestFailedRebootIsDoneByTheNextRun(t *testing.T) {
	h := newHarness(t, desiredPassword, seedParams(), func(o *app.Options) { o.RetryMaxElapsed = 300 * time.Millisecond })
	f, err := h.sim.InjectFault(gatewaysim.Fault{Kind: gatewaysim.FaultHTTPStatus, HTTPStatus: 503, Method: "PUT", Path: gatewaysim.PathReboot})
	if err != nil {
		t.Fatal(err)
	}
	res, fail := h.configure(t)
	if fail == nil || fail.Step != domain.StepReboot || !fail.Retryable || !strings.Contains(fail.Reason, "503") {
		t.Fatalf("failure = %+v", fail)
	}
	if len(res.Changed) != 4 || h.sim.Counters().Reboots != 0 || !h.params.pendingReboot() {
		t.Fatalf("changed %v, reboots %d, pending %v", res.Changed, h.sim.Counters().Reboots, h.params.pendingReboot())
	}
	h.sim.ClearFault(f.ID)
	h.sim.ResetCounters()
	res, fail = h.configure(t)
	if fail != nil {
		t.Fatal(fail)
	}
	if len(res.Changed) != 0 || !res.Rebooted || h.sim.Counters().Reboots != 1 || h.params.pendingReboot() {
		t.Fatalf("second run: %+v, reboots %d, pending %v", res, h.sim.Counters().Reboots, h.params.pendingReboot())
	}
	assertConfigured(t, h.sim)
	h.sim.ResetCounters()
	if res, fail = h.configure(t); fail != nil || res.Rebooted || h.sim.Counters().Reboots != 0 {
		t.Fatalf("third run: %+v %v", res, fail)
	}
}
