// Package isapi is the configurator's adapter to a gateway's HTTP API:
// it speaks through mediagw/pkg/isapi, logs in only through the shared
// login budget (one client per credential, whose every login is admitted
// and recorded by the budget's gate), converts to and from the domain's
// settings, and classifies every error as transient, permanent, a rejected
// password, a lockout or a login the budget refused (domain.OpError).
package isapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	isapiclient "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/pkg/redact"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
)

// DefaultUser is the gateway's admin user.
const DefaultUser = "admin"

// Dialer opens a Gateway; one per run.
type Dialer struct {
	User string
	// Timeout bounds each request (default isapiclient.DefaultTimeout).
	Timeout time.Duration
	// Budget is the shared login budget every login goes through (required).
	Budget *loginbudget.Budget
	// Secrets, when set, is the process's registry of secrets: the clients
	// register the passwords they are given and redact what the gateway
	// echoes with it.
	Secrets *redact.Secrets
}

// Dial returns a Gateway for the gateway's id (its login budget) and base
// URL (see domain.BaseURL). It sends nothing.
func (d Dialer) Dial(gatewayID, baseURL string) (*Gateway, error) {
	if d.Budget == nil {
		return nil, errors.New("configurator: no login budget: every login must go through it")
	}
	user := d.User
	if user == "" {
		user = DefaultUser
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = isapiclient.DefaultTimeout
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	g := &Gateway{
		id:      gatewayID,
		base:    baseURL,
		user:    user,
		timeout: timeout,
		budget:  d.Budget,
		secrets: d.Secrets,
		tr:      tr,
		hc:      &http.Client{Transport: tr},
		// Probes must open a new connection each time: a kept-alive one
		// would hide that the gateway went down for its reboot.
		probe: &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: http.ProxyFromEnvironment}, Timeout: timeout},
	}
	if _, err := isapiclient.New(baseURL, user, ""); err != nil {
		return nil, err
	}
	return g, nil
}

// Open is Dial as an app.Dialer.
func (d Dialer) Open(gatewayID, baseURL string) (app.Gateway, error) {
	g, err := d.Dial(gatewayID, baseURL)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// Gateway is one run's connection to a gateway. It is not safe for
// concurrent use; runs are sequential per gateway.
type Gateway struct {
	id      string
	base    string
	user    string
	timeout time.Duration
	budget  *loginbudget.Budget
	secrets *redact.Secrets
	tr      *http.Transport
	hc      *http.Client
	probe   *http.Client
	// api is the client of the credential the gateway accepted last (nil
	// before a login and after a password change).
	api *isapiclient.Client

	// The last answers read, edited and written back so that fields this
	// package does not know survive a write.
	info    *isapiclient.DeviceInfo
	clock   *isapiclient.TimeSettings
	content *isapiclient.MgmtPortMaps
	device  *isapiclient.DevPortMaps
}

// Close releases idle connections.
func (g *Gateway) Close() {
	g.tr.CloseIdleConnections()
	g.probe.CloseIdleConnections()
}

// User is the user the gateway is logged into as.
func (g *Gateway) User() string { return g.user }

// newClient is a client of one credential: its logins go through the
// budget's gate for that credential.
func (g *Gateway) newClient(password string, cred loginbudget.Credential) (*isapiclient.Client, error) {
	opts := []isapiclient.Option{isapiclient.WithHTTPClient(g.hc), isapiclient.WithTimeout(g.timeout),
		isapiclient.WithGatewayName(g.id), isapiclient.WithLoginGate(g.budget.ISAPIGate(g.id, cred))}
	if g.secrets != nil {
		opts = append(opts, isapiclient.WithSecrets(g.secrets))
	}
	return isapiclient.New(g.base, g.user, password, opts...)
}

// Probe asks the gateway, without credentials, whether it answers. It costs
// no login attempt. A 401 carrying lock fields is a lockout.
func (g *Gateway) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/ISAPI/System/status?format=json", nil)
	if err != nil {
		return &domain.OpError{Op: "probe", Kind: domain.KindPermanent, Err: err}
	}
	resp, err := g.probe.Do(req)
	if err != nil {
		return &domain.OpError{Op: "probe", Kind: domain.KindTransient, Err: fmt.Errorf("the gateway did not answer: %w", err)}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		if rs, ok := isapiclient.ParseResponseStatus(body); ok && rs.Locked() {
			return &domain.OpError{Op: "probe", Kind: domain.KindLocked, LockRemaining: lockLeft(rs),
				Err: fmt.Errorf("the gateway locks this client out after failed logins (%s left)", lockLeft(rs))}
		}
	case resp.StatusCode >= 500:
		return &domain.OpError{Op: "probe", Kind: domain.KindTransient, Err: fmt.Errorf("the gateway answered HTTP %d", resp.StatusCode)}
	}
	return nil
}

func lockLeft(rs *isapiclient.ResponseStatus) time.Duration {
	if rs.ResLockTime > 0 {
		return time.Duration(rs.ResLockTime) * time.Second
	}
	return 0
}

// Login tries one password, with a client of its own credential, with
// one authenticated request admitted by the login budget. Any answer but
// a 401 means the gateway accepted it, even an error answer (the request
// got past authentication), so only a rejected password, a lockout, a
// refusal of the budget or no answer at all is an error here. What
// follows uses the client of the last password accepted.
func (g *Gateway) Login(ctx context.Context, password domain.Secret, cred loginbudget.Credential) error {
	api, err := g.newClient(password.Reveal(), cred)
	if err != nil {
		return &domain.OpError{Op: "login", Kind: domain.KindPermanent, Err: err}
	}
	info, err := api.DeviceInfo(ctx)
	var se *isapiclient.StatusError
	var me *isapiclient.MalformedResponseError
	switch {
	case err == nil:
		g.info = info
	case errors.As(err, &se) && se.HTTPStatus != http.StatusUnauthorized, errors.As(err, &me):
	default:
		return classify("login", err)
	}
	g.api = api
	return nil
}

// ChangePassword changes the admin password from the one Login accepted.
// It is not retried: if the answer is lost nobody knows which password the
// gateway has. After it, Login with the new password (a client gated for
// its credential) before anything else: the old client's gate would
// record what happens to the new password against the old credential.
func (g *Gateway) ChangePassword(ctx context.Context, newPassword domain.Secret) error {
	if g.api == nil {
		return &domain.OpError{Op: "change password", Kind: domain.KindPermanent, Err: errors.New("not logged in")}
	}
	api := g.api
	g.api = nil
	if _, err := api.ChangePassword(ctx, newPassword.Reveal()); err != nil {
		return classify("change password", err)
	}
	return nil
}

func (g *Gateway) loggedIn(op string) error {
	if g.api == nil {
		return &domain.OpError{Op: op, Kind: domain.KindPermanent, Err: errors.New("not logged in")}
	}
	return nil
}

// Read reads one setting into cur.
func (g *Gateway) Read(ctx context.Context, s domain.Setting, cur *domain.Current) error {
	op := "read " + string(s)
	if err := g.loggedIn(op); err != nil {
		return err
	}
	switch s {
	case domain.SettingName:
		info, err := g.api.DeviceInfo(ctx)
		if err != nil {
			return classify(op, err)
		}
		g.info, cur.Name = info, info.DeviceName
	case domain.SettingTime:
		t, err := g.api.Time(ctx)
		if err != nil {
			return classify(op, err)
		}
		g.clock = t
		cur.Time = domain.TimeSettings{Mode: t.Mode, Zone: t.TimeZone}
		if lt, err := t.Local(); err == nil {
			cur.Time.Clock = lt
		}
	case domain.SettingContentPortMaps:
		m, err := g.api.ContentPortMaps(ctx)
		if err != nil {
			return classify(op, err)
		}
		g.content, cur.Content = m, contentFromAPI(m)
	case domain.SettingDevicePortMaps:
		m, err := g.api.DevicePortMaps(ctx)
		if err != nil {
			return classify(op, err)
		}
		g.device, cur.Device = m, deviceFromAPI(m)
	default:
		return &domain.OpError{Op: op, Kind: domain.KindPermanent, Err: errors.New("unknown setting")}
	}
	return nil
}

// Write sets one setting to the target, editing what Read got last. It
// reports whether the gateway said the change needs a reboot.
func (g *Gateway) Write(ctx context.Context, s domain.Setting, t domain.Target) (rebootRequired bool, err error) {
	op := "write " + string(s)
	if err := g.loggedIn(op); err != nil {
		return false, err
	}
	if !g.haveRead(s) {
		if err := g.Read(ctx, s, &domain.Current{}); err != nil {
			return false, err
		}
	}
	var rs *isapiclient.ResponseStatus
	switch s {
	case domain.SettingName:
		g.info.DeviceName = t.Name
		rs, err = g.api.PutDeviceInfo(ctx, g.info)
	case domain.SettingTime:
		g.clock.Mode, g.clock.TimeZone, g.clock.LocalTime = t.Time.Mode, t.Time.Zone, ""
		if t.Time.Mode == domain.TimeModeManual && !t.Time.Clock.IsZero() {
			g.clock.LocalTime = t.Time.Clock.Format(time.RFC3339)
		}
		rs, err = g.api.SetTime(ctx, g.clock)
	case domain.SettingContentPortMaps:
		contentToAPI(g.content, t.Content)
		rs, err = g.api.SetContentPortMaps(ctx, g.content)
	case domain.SettingDevicePortMaps:
		deviceToAPI(g.device, t.Device)
		rs, err = g.api.SetDevicePortMaps(ctx, g.device)
	}
	// What was edited is not what the gateway has: read again before the next write.
	g.forget(s)
	if err != nil {
		return false, classify(op, err)
	}
	return rs != nil && rs.RebootRequired(), nil
}

func (g *Gateway) haveRead(s domain.Setting) bool {
	switch s {
	case domain.SettingName:
		return g.info != nil
	case domain.SettingTime:
		return g.clock != nil
	case domain.SettingContentPortMaps:
		return g.content != nil
	case domain.SettingDevicePortMaps:
		return g.device != nil
	}
	return false
}

func (g *Gateway) forget(s domain.Setting) {
	switch s {
	case domain.SettingName:
		g.info = nil
	case domain.SettingTime:
		g.clock = nil
	case domain.SettingContentPortMaps:
		g.content = nil
	case domain.SettingDevicePortMaps:
		g.device = nil
	}
}

// Reboot asks the gateway to restart.
func (g *Gateway) Reboot(ctx context.Context) error {
	if err := g.loggedIn("reboot"); err != nil {
		return err
	}
	_, err := g.api.Reboot(ctx)
	return classify("reboot", err)
}

// Uptime is the time since the gateway's last boot.
func (g *Gateway) Uptime(ctx context.Context) (time.Duration, error) {
	if err := g.loggedIn("read status"); err != nil {
		return 0, err
	}
	st, err := g.api.Status(ctx)
	if err != nil {
		return 0, classify("read status", err)
	}
	return st.UpTime, nil
}

// classify wraps an isapi error with its kind.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	oe := &domain.OpError{Op: op, Err: err, AttemptsLeft: -1}
	var locked *isapiclient.LockedError
	var bad *isapiclient.BadCredentialsError
	switch {
	case errors.Is(err, loginbudget.ErrRefused):
		// Nothing was sent: it cost nothing.
		oe.Kind = domain.KindRefused
	case errors.As(err, &locked):
		oe.Kind, oe.LockRemaining = domain.KindLocked, locked.TimeLeft
	case errors.As(err, &bad):
		oe.Kind, oe.AttemptsLeft = domain.KindRejected, bad.RetryTimes
	case errors.Is(err, isapiclient.ErrLocked):
		oe.Kind = domain.KindLocked
	case errors.Is(err, isapiclient.ErrBadCredentials):
		oe.Kind = domain.KindRejected
	case errors.Is(err, isapiclient.ErrBusy), errors.Is(err, isapiclient.ErrDeviceError), errors.Is(err, isapiclient.ErrMalformedResponse):
		// Malformed covers truncated answers and firmware glitches; a
		// gateway that never answers sensibly ends as a retryable failure
		// and, after the queue's retries, in the dead-letter queue.
		oe.Kind = domain.KindTransient
	case errors.Is(err, isapiclient.ErrInsecureAuth), errors.Is(err, isapiclient.ErrCredentialsBound):
		// Basic over plain HTTP is refused every time: retrying cannot help.
		oe.Kind = domain.KindPermanent
	case errors.Is(err, isapiclient.ErrNotSupported), errors.Is(err, isapiclient.ErrInvalidOperation),
		errors.Is(err, isapiclient.ErrInvalidFormat), errors.Is(err, isapiclient.ErrInvalidContent),
		errors.Is(err, isapiclient.ErrDeviceOffline), errors.Is(err, isapiclient.ErrBadDevIndex):
		oe.Kind = domain.KindPermanent
	default:
		// No answer: connection refused or reset, timeout.
		oe.Kind = domain.KindTransient
	}
	return oe
}

func contentFromAPI(m *isapiclient.MgmtPortMaps) domain.ContentPortMaps {
	out := domain.ContentPortMaps{Enabled: m.Enabled}
	for _, p := range m.PortList {
		out.Ports = append(out.Ports, domain.Port{Protocol: p.Protocol, InternalMin: p.InternalPort, InternalMax: p.InternalPort,
			ExternalMin: p.ExternalPort, ExternalMax: p.ExternalPort})
	}
	for _, a := range m.AddrList {
		out.ExternalIPs = append(out.ExternalIPs, a.ExternalIPAddress)
	}
	return out
}

func contentToAPI(m *isapiclient.MgmtPortMaps, t domain.ContentPortMaps) {
	m.Enabled = t.Enabled
	for i := range m.PortList {
		if i < len(t.Ports) {
			m.PortList[i].ExternalPort = t.Ports[i].ExternalMin
		}
	}
	addrs := make([]isapiclient.MgmtAddr, len(t.ExternalIPs))
	for i, ip := range t.ExternalIPs {
		if i < len(m.AddrList) {
			addrs[i] = m.AddrList[i] // keeps its unknown fields
		}
		addrs[i].ExternalIPAddress = ip
	}
	m.AddrList = addrs
}

func deviceFromAPI(m *isapiclient.DevPortMaps) domain.DevicePortMaps {
	out := domain.DevicePortMaps{Enabled: m.Enabled}
	for _, p := range m.PortList {
		switch {
		case p.Single != nil:
			s := p.Single
			out.Ports = append(out.Ports, domain.Port{Protocol: s.Protocol, InternalMin: s.InternalPort, InternalMax: s.InternalPort,
				ExternalMin: s.ExternalPort, ExternalMax: s.ExternalPort})
		case p.Range != nil:
			r := p.Range
			out.Ports = append(out.Ports, domain.Port{Protocol: r.Protocol, Range: true, InternalMin: r.MinInternalPort, InternalMax: r.MaxInternalPort,
				ExternalMin: r.MinExternalPort, ExternalMax: r.MaxExternalPort})
		default:
			// An entry of a kind this package does not know: kept as is
			// (all zero maps to zero, so it never differs).
			out.Ports = append(out.Ports, domain.Port{})
		}
	}
	return out
}

func deviceToAPI(m *isapiclient.DevPortMaps, t domain.DevicePortMaps) {
	m.Enabled = t.Enabled
	for i := range m.PortList {
		if i >= len(t.Ports) {
			break
		}
		switch p := &m.PortList[i]; {
		case p.Single != nil:
			p.Single.ExternalPort = t.Ports[i].ExternalMin
		case p.Range != nil:
			p.Range.MinExternalPort, p.Range.MaxExternalPort = t.Ports[i].ExternalMin, t.Ports[i].ExternalMax
		}
	}
}
