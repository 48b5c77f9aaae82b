package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"mediagw/pkg/loginbudget"
	"mediagw/pkg/redact"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
	"mediagw/testsupport/loginbudgettest"
	"mediagw/testsupport/testkit"
)

const (
	desiredPassword   = "Mgw-Desired-2026"
	bootstrapPassword = "Factory-Pass1"
	elasticIP         = "203.0.113.10"
)

// journal is what the fakes saw, in order, shared by the gateway and the
// parameter store so that tests can check the order of their calls.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, fmt.Sprintf(format, args...))
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

// index is the position of the first entry with the prefix, or -1.
func (j *journal) index(prefix string) int {
	for i, e := range j.all() {
		if strings.HasPrefix(e, prefix) {
			return i
		}
	}
	return -1
}

// fakeParams is a parameter store in memory (one gateway's parameters).
type fakeParams struct {
	j       *journal
	mu      sync.Mutex
	params  domain.Parameters
	pending string
	conf    map[string]domain.PendingConfiguration // PendingConfiguration by gateway
	err     error                                  // returned by Parameters when set
	reads   int
}

func (p *fakeParams) Parameters(_ context.Context, gatewayID, _ string) (domain.Parameters, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads++
	p.j.add("params read")
	if p.err != nil {
		return nil, p.err
	}
	out := domain.Parameters{}
	for k, v := range p.params {
		out[k] = v
	}
	if p.pending != "" {
		out[domain.ParamPendingReboot] = domain.Param{Value: domain.NewSecret(p.pending)}
	}
	if pc, ok := p.conf[gatewayID]; ok {
		v, err := domain.EncodePendingConfiguration(pc)
		if err != nil {
			return nil, err
		}
		out[domain.ParamPendingConfiguration] = domain.Param{Value: domain.NewSecret(v)}
	}
	return out, nil
}

// put stores a new version of a parameter, as PutParameter with Overwrite.
func (p *fakeParams) put(short, value string, secure bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.params[short]
	p.params[short] = domain.Param{Value: domain.NewSecret(value), Secure: secure, Name: paramPath + short, Version: old.Version + 1}
}

func (p *fakeParams) SetPendingConfiguration(_ context.Context, pc domain.PendingConfiguration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.j.add("params set pending configuration")
	if p.conf == nil {
		p.conf = map[string]domain.PendingConfiguration{}
	}
	p.conf[pc.GatewayID] = pc
	return nil
}

func (p *fakeParams) ClearPendingConfiguration(_ context.Context, gatewayID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.j.add("params clear pending configuration")
	delete(p.conf, gatewayID)
	return nil
}

func (p *fakeParams) PendingConfigurations(context.Context) ([]domain.PendingConfiguration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []domain.PendingConfiguration
	for _, pc := range p.conf {
		out = append(out, pc)
	}
	return out, nil
}

// pendingConfiguration is the gateway's record, if any.
func (p *fakeParams) pendingConfiguration(gatewayID string) (domain.PendingConfiguration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc, ok := p.conf[gatewayID]
	return pc, ok
}

func (p *fakeParams) SetPendingReboot(_ context.Context, _ string, note string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.j.add("params set pending reboot")
	p.pending = note
	return nil
}

func (p *fakeParams) ClearPendingReboot(context.Context, string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.j.add("params clear pending reboot")
	p.pending = ""
	return nil
}

func (p *fakeParams) pendingReboot() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending != ""
}

// paramPath is where the fakes' parameters are, as SSM names them.
const paramPath = "/mediagw/gateways/gw-test-1/"

// Credentials of the seeded passwords.
var (
	desiredCred   = loginbudget.CredentialOf(paramPath+domain.ParamPassword, 1)
	bootstrapCred = loginbudget.CredentialOf(paramPath+domain.ParamBootstrapPassword, 1)
)

func seedParams() domain.Parameters {
	p := domain.Parameters{}
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

// fakeGateway is a gateway in memory with the rules the configurator must
// respect: it counts failed logins and locks after too many, forgets the
// login on reboot, and applies what is written (unless told otherwise).
// Its clock is time.Now, which is the bubble's under synctest.
type fakeGateway struct {
	j  *journal
	mu sync.Mutex

	password     string
	maxFailed    int           // failed logins before the lock (0: never locks)
	lockFor      time.Duration // how long a lock lasts
	lockedUntil  time.Time
	failedLogins int
	bootTime     time.Time
	downProbes   int // probes that get no answer (after a reboot)
	// rebootDown is how many probes a reboot leaves unanswered (default 2).
	rebootDown int
	cur        domain.Current

	// budget is the shared login budget every Login goes through, as the
	// ISAPI adapter's gate does.
	budget *loginbudget.Budget
	id     string // the gateway id the run dialled

	// Faults.
	unreachable     bool           // no answer at all
	lost401         bool           // a failed login gets no answer (still counted)
	noLockFields    bool           // a 401 says nothing of attempts left
	changeLost      bool           // the password change is done but its answer lost
	readBackWrong   domain.Setting // a write of it is accepted but not kept
	loseOnReboot    domain.Setting // a reboot resets it to its factory value
	loginErrText    string         // a login answers with this error (permanent)
	requests        int            // requests that reached the gateway
	dials           int            // connections opened
	loggedInSession map[*fakeConn]bool
}

func factory() domain.Current {
	return domain.Current{
		Name: "Media Gateway",
		Time: domain.TimeSettings{Mode: domain.TimeModeManual, Zone: "CST-8:00:00"},
		Content: domain.ContentPortMaps{
			Ports: []domain.Port{
				{Protocol: "HTTP", InternalMin: 80, InternalMax: 80},
				{Protocol: "RTSP", InternalMin: 554, InternalMax: 554},
			},
			ExternalIPs: []string{"0.0.0.0"},
		},
		Device: domain.DevicePortMaps{Ports: []domain.Port{
			{Protocol: "ISUP", InternalMin: 7660, InternalMax: 7660},
			{Protocol: "ISUPStream", Range: true, InternalMin: 7662, InternalMax: 7700},
		}},
	}
}

func newFakeGateway(j *journal, password string, budget *loginbudget.Budget) *fakeGateway {
	return &fakeGateway{j: j, password: password, maxFailed: 5, lockFor: 30 * time.Minute, rebootDown: 2, budget: budget,
		bootTime: time.Now().Add(-time.Hour), cur: factory(), loggedInSession: map[*fakeConn]bool{}}
}

func (g *fakeGateway) dial(gatewayID, _ string) (app.Gateway, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dials++
	g.id = gatewayID
	return &fakeConn{g: g}, nil
}

func (g *fakeGateway) counts() (requests, failedLogins, dials int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests, g.failedLogins, g.dials
}

func (g *fakeGateway) settings() domain.Current {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur
}

// lock locks the gateway for d from now.
func (g *fakeGateway) lock(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lockedUntil = time.Now().Add(d)
}

func (g *fakeGateway) lockedErr(op string) error {
	left := time.Until(g.lockedUntil)
	return &domain.OpError{Op: op, Kind: domain.KindLocked, LockRemaining: left, AttemptsLeft: -1,
		Err: fmt.Errorf("locked for %s", left.Round(time.Second))}
}

// fakeConn is one run's connection.
type fakeConn struct{ g *fakeGateway }

// enter counts a request; it fails when the gateway does not answer.
func (c *fakeConn) enter(op string) error {
	g := c.g
	if g.unreachable {
		return &domain.OpError{Op: op, Kind: domain.KindTransient, Err: errors.New("the gateway did not answer")}
	}
	g.requests++
	return nil
}

func (c *fakeConn) authorized(op string) error {
	g := c.g
	if err := c.enter(op); err != nil {
		return err
	}
	if time.Now().Before(g.lockedUntil) {
		return g.lockedErr(op)
	}
	if !g.loggedInSession[c] {
		return &domain.OpError{Op: op, Kind: domain.KindRejected, AttemptsLeft: -1, Err: errors.New("not logged in")}
	}
	return nil
}

func (c *fakeConn) Probe(context.Context) error {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.downProbes > 0 {
		g.downProbes--
		return &domain.OpError{Op: "probe", Kind: domain.KindTransient, Err: errors.New("rebooting")}
	}
	if err := c.enter("probe"); err != nil {
		return err
	}
	g.j.add("gateway probe")
	if time.Now().Before(g.lockedUntil) {
		return g.lockedErr("probe")
	}
	return nil
}

// Login is one login through the budget, as the adapter's gated client
// makes it: admitted (recorded as pending) before it is sent, finished with
// what the gateway answered.
func (c *fakeConn) Login(ctx context.Context, pw domain.Secret, cred loginbudget.Credential) error {
	g := c.g
	a, err := g.budget.Begin(ctx, g.id, cred)
	if err != nil {
		g.j.add("gateway login %s refused", label(pw))
		if errors.Is(err, loginbudget.ErrRefused) {
			return &domain.OpError{Op: "login", Kind: domain.KindRefused, Err: err}
		}
		return &domain.OpError{Op: "login", Kind: domain.KindTransient, Err: err}
	}
	res, lockLeft, err := c.login(pw)
	_ = a.Finish(ctx, res, lockLeft)
	return err
}

func (c *fakeConn) login(pw domain.Secret) (loginbudget.Result, time.Duration, error) {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := c.enter("login"); err != nil {
		return loginbudget.NotSent, 0, err
	}
	g.j.add("gateway login %s", label(pw))
	if g.loginErrText != "" {
		return loginbudget.Accepted, 0, &domain.OpError{Op: "login", Kind: domain.KindPermanent, Err: errors.New(g.loginErrText)}
	}
	if time.Now().Before(g.lockedUntil) {
		return loginbudget.Locked, time.Until(g.lockedUntil), g.lockedErr("login")
	}
	if pw.Reveal() == g.password {
		g.loggedInSession[c] = true
		return loginbudget.Accepted, 0, nil
	}
	g.failedLogins++
	left := g.maxFailed - g.failedLogins
	if g.maxFailed > 0 && left <= 0 {
		g.lockedUntil = time.Now().Add(g.lockFor)
	}
	switch {
	case g.lost401:
		return loginbudget.Unanswered, 0, &domain.OpError{Op: "login", Kind: domain.KindTransient, Err: errors.New("connection closed before an answer")}
	case g.noLockFields:
		return loginbudget.Rejected, 0, &domain.OpError{Op: "login", Kind: domain.KindRejected, AttemptsLeft: -1, Err: errors.New("bad password")}
	case g.maxFailed > 0 && left <= 0:
		return loginbudget.Locked, g.lockFor, g.lockedErr("login")
	}
	return loginbudget.Rejected, 0, &domain.OpError{Op: "login", Kind: domain.KindRejected, AttemptsLeft: left, Err: errors.New("bad password")}
}

// label names a password the test knows without showing it.
func label(pw domain.Secret) string {
	switch pw.Reveal() {
	case desiredPassword:
		return "desired"
	case bootstrapPassword:
		return "bootstrap"
	}
	return "other"
}

func (c *fakeConn) ChangePassword(_ context.Context, pw domain.Secret) error {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := c.authorized("change password"); err != nil {
		return err
	}
	g.j.add("gateway change password to %s", label(pw))
	g.password = pw.Reveal()
	if g.changeLost {
		return &domain.OpError{Op: "change password", Kind: domain.KindTransient, Err: errors.New("connection reset")}
	}
	return nil
}

func (c *fakeConn) Read(_ context.Context, s domain.Setting, into *domain.Current) error {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := c.authorized("read " + string(s)); err != nil {
		return err
	}
	switch s {
	case domain.SettingName:
		into.Name = g.cur.Name
	case domain.SettingTime:
		into.Time = g.cur.Time
	case domain.SettingContentPortMaps:
		into.Content = g.cur.Content
	case domain.SettingDevicePortMaps:
		into.Device = g.cur.Device
	}
	return nil
}

func (c *fakeConn) Write(_ context.Context, s domain.Setting, t domain.Target) (bool, error) {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := c.authorized("write " + string(s)); err != nil {
		return false, err
	}
	g.j.add("gateway write %s", s)
	if s == g.readBackWrong {
		return false, nil
	}
	switch s {
	case domain.SettingName:
		g.cur.Name = t.Name
	case domain.SettingTime:
		g.cur.Time = domain.TimeSettings{Mode: t.Time.Mode, Zone: t.Time.Zone}
	case domain.SettingContentPortMaps:
		g.cur.Content = t.Content
	case domain.SettingDevicePortMaps:
		g.cur.Device = t.Device
	}
	return false, nil
}

func (c *fakeConn) Reboot(context.Context) error {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := c.authorized("reboot"); err != nil {
		return err
	}
	g.j.add("gateway reboot")
	g.bootTime = time.Now()
	g.downProbes = g.rebootDown
	g.lockedUntil = time.Time{}
	f := factory()
	switch g.loseOnReboot {
	case domain.SettingName:
		g.cur.Name = f.Name
	case domain.SettingTime:
		g.cur.Time = f.Time
	}
	return nil
}

func (c *fakeConn) Uptime(context.Context) (time.Duration, error) {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := c.authorized("read status"); err != nil {
		return 0, err
	}
	return time.Since(g.bootTime), nil
}

func (c *fakeConn) Close() {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	delete(c.g.loggedInSession, c)
}

// fakeMetrics records what the run reports.
type fakeMetrics struct {
	mu      sync.Mutex
	results []string
	changed []domain.Setting
	reboots int
	logins  []string // password/outcome
	// rejected is the credentials-rejected gauge.
	rejected map[string]bool
}

func (m *fakeMetrics) RunFinished(result string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.results = append(m.results, result)
}

func (m *fakeMetrics) SettingChanged(s domain.Setting) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.changed = append(m.changed, s)
}

func (m *fakeMetrics) RebootRequested() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reboots++
}

func (m *fakeMetrics) LoginAttempt(password, outcome string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logins = append(m.logins, password+"/"+outcome)
}

func (m *fakeMetrics) CredentialsRejected(gatewayID string, rejected bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rejected == nil {
		m.rejected = map[string]bool{}
	}
	if rejected {
		m.rejected[gatewayID] = true
	} else {
		delete(m.rejected, gatewayID)
	}
}

func (m *fakeMetrics) isRejected(gatewayID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rejected[gatewayID]
}

// fixture is a configurator on the fakes and the login budget (in
// memory), with a log checked for passwords.
type fixture struct {
	j       *journal
	gw      *fakeGateway
	params  *fakeParams
	metrics *fakeMetrics
	budget  *loginbudget.Budget
	secrets *redact.Secrets
	logs    *testkit.Buffer
	conf    *app.Configurator
	req     app.Request
}

func newFixture(t *testing.T, gatewayPassword string, tweak func(*app.Options)) *fixture {
	t.Helper()
	j := &journal{}
	budget := loginbudget.New(loginbudgettest.NewStore(), app.Component)
	f := &fixture{j: j, gw: newFakeGateway(j, gatewayPassword, budget), params: &fakeParams{j: j, params: seedParams()},
		metrics: &fakeMetrics{}, budget: budget, secrets: redact.New(), logs: &testkit.Buffer{}}
	opt := app.Options{
		RetryInitial: 20 * time.Millisecond, RetryMaxElapsed: time.Second, RebootTimeout: time.Minute, LockWaitMax: -1,
		Logger:  slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: f.metrics, Secrets: f.secrets,
	}
	if tweak != nil {
		tweak(&opt)
	}
	f.conf = app.New(f.params, f.gw.dial, budget, opt)
	f.req = app.Request{GatewayID: "gw-test-1", Address: "127.0.0.1:80", ElasticIP: elasticIP}
	t.Cleanup(func() {
		for _, pw := range []string{desiredPassword, bootstrapPassword, gatewayPassword} {
			if strings.Contains(f.logs.String(), pw) {
				t.Errorf("a password appears in the log:\n%s", f.logs.String())
			}
		}
	})
	return f
}

// ledger is the gateway's login budget.
func (f *fixture) ledger(t *testing.T) loginbudget.Ledger {
	t.Helper()
	l, err := f.budget.Ledger(t.Context(), f.req.GatewayID)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (f *fixture) configure(t *testing.T) (domain.Result, *domain.Failure) {
	t.Helper()
	res, fail := f.conf.Configure(t.Context(), f.req)
	if fail != nil {
		for _, pw := range []string{desiredPassword, bootstrapPassword} {
			if strings.Contains(fail.Reason, pw) || strings.Contains(fail.Error(), pw) {
				t.Fatalf("a password appears in the failure: %v", fail)
			}
		}
	}
	return res, fail
}

func changedNames(res domain.Result) string {
	var s []string
	for _, c := range res.Changed {
		s = append(s, string(c))
	}
	return strings.Join(s, ",")
}
