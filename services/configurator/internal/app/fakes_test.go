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

	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
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

// fakeParams is a parameter store in memory.
type fakeParams struct {
	j       *journal
	mu      sync.Mutex
	params  domain.Parameters
	pending string
	err     error // returned by Parameters when set
	reads   int
}

func (p *fakeParams) Parameters(context.Context, string, string) (domain.Parameters, error) {
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
	return out, nil
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

func seedParams() domain.Parameters {
	return domain.Parameters{
		domain.ParamGatewayName:       {Value: domain.NewSecret("gw-test-1")},
		domain.ParamPassword:          {Value: domain.NewSecret(desiredPassword), Secure: true},
		domain.ParamBootstrapPassword: {Value: domain.NewSecret(bootstrapPassword), Secure: true},
		domain.ParamTimezone:          {Value: domain.NewSecret("5.5")},
		domain.ParamExternalIP:        {Value: domain.NewSecret("198.51.100.1")},
	}
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

	// Faults.
	unreachable     bool           // no answer at all
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

func newFakeGateway(j *journal, password string) *fakeGateway {
	return &fakeGateway{j: j, password: password, maxFailed: 5, lockFor: 30 * time.Minute, rebootDown: 2,
		bootTime: time.Now().Add(-time.Hour), cur: factory(), loggedInSession: map[*fakeConn]bool{}}
}

func (g *fakeGateway) dial(string) (app.Gateway, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dials++
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

func (c *fakeConn) Login(_ context.Context, pw domain.Secret) error {
	g := c.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := c.enter("login"); err != nil {
		return err
	}
	g.j.add("gateway login %s", label(pw))
	if g.loginErrText != "" {
		return &domain.OpError{Op: "login", Kind: domain.KindPermanent, Err: errors.New(g.loginErrText)}
	}
	if time.Now().Before(g.lockedUntil) {
		return g.lockedErr("login")
	}
	if pw.Reveal() == g.password {
		g.loggedInSession[c] = true
		return nil
	}
	g.failedLogins++
	left := g.maxFailed - g.failedLogins
	if g.maxFailed > 0 && left <= 0 {
		g.lockedUntil = time.Now().Add(g.lockFor)
		return g.lockedErr("login")
	}
	return &domain.OpError{Op: "login", Kind: domain.KindRejected, AttemptsLeft: left, Err: errors.New("bad password")}
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

// fixture is a configurator on the fakes, with a log checked for passwords.
type fixture struct {
	j       *journal
	gw      *fakeGateway
	params  *fakeParams
	metrics *fakeMetrics
	logs    *testkit.Buffer
	conf    *app.Configurator
	req     app.Request
}

func newFixture(t *testing.T, gatewayPassword string, tweak func(*app.Options)) *fixture {
	t.Helper()
	j := &journal{}
	f := &fixture{j: j, gw: newFakeGateway(j, gatewayPassword), params: &fakeParams{j: j, params: seedParams()},
		metrics: &fakeMetrics{}, logs: &testkit.Buffer{}}
	opt := app.Options{
		RetryInitial: 20 * time.Millisecond, RetryMaxElapsed: time.Second, RebootTimeout: time.Minute, LockWaitMax: -1,
		Logger:  slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: f.metrics,
	}
	if tweak != nil {
		tweak(&opt)
	}
	f.conf = app.New(f.params, f.gw.dial, opt)
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
