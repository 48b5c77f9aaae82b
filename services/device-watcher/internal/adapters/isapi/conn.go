// Package isapi is the device-watcher's adapter to a Hikvision media
// gateway (app.Gateway): polls of the device list with channel details, and
// the device-management event stream, both turned into the domain's
// observations, over the ISAPI client of mediagw/pkg/isapi, whose every
// login goes through the shared login budget (mediagw/pkg/loginbudget).
package isapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hik "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/pkg/redact"
	"mediagw/services/device-watcher/internal/app"
	"mediagw/services/device-watcher/internal/domain"
)

// Budget is the shared login budget (*loginbudget.Budget).
type Budget interface {
	// ISAPIGate is the gate a client of one credential logs in through.
	ISAPIGate(gatewayID string, cred loginbudget.Credential) hik.LoginGate
	// Check says, without recording anything, whether a login with cred
	// would be admitted now: nil, or a *loginbudget.RefusedError.
	Check(ctx context.Context, gatewayID string, cred loginbudget.Credential) error
	// Ledger is the gateway's ledger as stored (the credential it last
	// accepted).
	Ledger(ctx context.Context, gatewayID string) (loginbudget.Ledger, error)
}

// Options tune a Conn.
type Options struct {
	// Timeout bounds each request (default hik.DefaultTimeout).
	Timeout time.Duration
	// Recheck: while logins are stopped or await the gateway's
	// configuration, how often the password's version, the login budget
	// (and the bootstrap password) are looked at (default 10 s); also the
	// wait of the event stream after the password could not be read.
	Recheck time.Duration
	// Stream tunes the event stream (heartbeat timeout, reconnect backoff).
	Stream hik.SubscribeOptions
	// Secrets is the process's registry of secrets: every password read is
	// registered, so that no log or error shows it (may be nil).
	Secrets *redact.Secrets
	// OnError counts gateway errors by operation and kind (may be nil).
	OnError func(op, kind string)
	Logger  *slog.Logger
}

// Conn is the ISAPI connection to one gateway. It reads the password and
// its parameter's version when first needed (the credential the login
// budget knows it by) and makes one client per credential, whose logins
// go through the budget. When the gateway rejects the password or the
// budget refuses a login, logins stop: polls and the event stream send
// nothing until WatchLogins (or Reconfigured) finds a new version of the
// parameter or the budget allowing the credential again. A rejected
// password is never tried again on a timer.
//
// Before a client logs in with a credential the budget's ledger has not
// seen the gateway accept, the Conn applies domain.AwaitsConfiguration: a
// gateway with a BootstrapPassword parameter that nobody said was
// configured may still have its factory password, and is not logged in
// to until it is configured (Reconfigured), the ledger shows the
// credential accepted, or the bootstrap parameter is gone; polls and the
// event stream send nothing meanwhile, and WatchLogins looks every
// Recheck.
type Conn struct {
	id, baseURL, user string
	passwords         app.Passwords
	budget            Budget
	opt               Options

	// configured: the gateway was configured (Reconfigured was called):
	// no login awaits its configuration any more.
	configured atomic.Bool

	mu      sync.Mutex
	client  *hik.Client
	cred    loginbudget.Credential // of client
	changed chan struct{}          // closed (and renewed) when the client is replaced or logins stop or wait
	stop    *stop                  // nil: logins go on
	wait    *awaiting              // nil: no login awaits the gateway's configuration
}

// awaiting is a login held back until the gateway is configured.
type awaiting struct {
	cred loginbudget.Credential // the credential the login would carry
	err  *AwaitingConfigurationError
}

// AwaitingConfigurationError is what a request meets while logins await
// the gateway's configuration: nothing was sent.
type AwaitingConfigurationError struct {
	Gateway    string
	Credential loginbudget.Credential
}

func (e *AwaitingConfigurationError) Error() string {
	return fmt.Sprintf("gateway %s: no login: the gateway may still have its factory password (it has a BootstrapPassword parameter) "+
		"and is not configured yet; %s is not tried before it is", e.Gateway, e.Credential)
}

// stop is why logins are stopped.
type stop struct {
	cred    loginbudget.Credential
	refusal domain.LoginRefusal
	err     *LoginsStoppedError
}

// LoginsStoppedError is what a request meets while logins to the gateway
// are stopped: nothing was sent. It matches loginbudget.ErrRefused.
type LoginsStoppedError struct {
	Gateway string
	Refusal domain.LoginRefusal
}

func (e *LoginsStoppedError) Error() string {
	return fmt.Sprintf("gateway %s: no login: logins are stopped (%s): %s", e.Gateway, e.Refusal.Reason, e.Refusal.Detail)
}

// Is matches loginbudget.ErrRefused.
func (e *LoginsStoppedError) Is(target error) bool { return target == loginbudget.ErrRefused }

// NewConn returns a connection to the gateway at baseURL; nothing is sent
// yet.
func NewConn(id, baseURL, user string, passwords app.Passwords, budget Budget, opt Options) *Conn {
	if opt.Recheck <= 0 {
		opt.Recheck = 10 * time.Second
	}
	if opt.Timeout <= 0 {
		opt.Timeout = hik.DefaultTimeout
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Conn{id: id, baseURL: baseURL, user: user, passwords: passwords, budget: budget, opt: opt,
		changed: make(chan struct{})}
}

// ID is the gateway id.
func (c *Conn) ID() string { return c.id }

// credential names version of the gateway's password parameter.
func (c *Conn) credential(version int64) loginbudget.Credential {
	return loginbudget.CredentialOf(c.passwords.ParameterName(c.id), version)
}

// current returns the client and its credential, creating it on first
// use, and a channel closed when it is replaced or logins stop. While
// logins are stopped it returns the *LoginsStoppedError.
func (c *Conn) current(ctx context.Context) (*hik.Client, loginbudget.Credential, <-chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != nil {
		return nil, "", c.changed, c.stop.err
	}
	if c.wait != nil {
		return nil, "", c.changed, c.wait.err
	}
	if c.client != nil {
		return c.client, c.cred, c.changed, nil
	}
	pw, version, err := c.passwords.Password(ctx, c.id, false)
	if err != nil {
		return nil, "", c.changed, fmt.Errorf("gateway %s: %w: %w", c.id, errPassword, err)
	}
	// The first login of this Conn: the gateway may be factory-fresh.
	if _, wait, err := c.awaitsConfiguration(ctx, c.credential(version)); err != nil || wait {
		if err == nil {
			c.awaitLocked(c.credential(version))
			err = c.wait.err
		}
		return nil, "", c.changed, err
	}
	cl, cred, err := c.newClient(pw, version)
	if err != nil {
		return nil, "", c.changed, err
	}
	c.replaceLocked(cl, cred)
	return cl, cred, c.changed, nil
}

// newClient makes the client of one credential, its logins through the
// budget.
func (c *Conn) newClient(pw string, version int64) (*hik.Client, loginbudget.Credential, error) {
	c.opt.Secrets.Add(pw)
	cred := c.credential(version)
	cl, err := hik.New(c.baseURL, c.user, pw, hik.WithTimeout(c.opt.Timeout), hik.WithGatewayName(c.id),
		hik.WithSecrets(c.opt.Secrets), hik.WithLoginGate(budgetGate{c.budget.ISAPIGate(c.id, cred)}))
	if err != nil {
		return nil, "", fmt.Errorf("gateway %s: %w", c.id, err)
	}
	return cl, cred, nil
}

// replaceLocked makes cl (of cred) the client, logins going on, and tells
// whoever holds the old one (the event stream). c.mu must be held.
func (c *Conn) replaceLocked(cl *hik.Client, cred loginbudget.Credential) {
	c.client, c.cred, c.stop, c.wait = cl, cred, nil, nil
	c.signalLocked()
}

// awaitsConfiguration applies domain.AwaitsConfiguration to a login with
// cred. It reads only what can decide it, the cheapest first: nothing
// once the gateway is known configured, then the login budget's ledger,
// then whether the BootstrapPassword parameter exists (not its value).
func (c *Conn) awaitsConfiguration(ctx context.Context, cred loginbudget.Credential) (domain.LoginFacts, bool, error) {
	f := domain.LoginFacts{Credential: string(cred), Configured: c.configured.Load()}
	if f.Configured {
		return f, false, nil
	}
	l, err := c.budget.Ledger(ctx, c.id)
	if err != nil {
		return f, false, fmt.Errorf("gateway %s: %w: %w", c.id, errLoginBudget, err)
	}
	f.Accepted = string(l.Accepted)
	if f.Accepted == f.Credential {
		return f, false, nil
	}
	if f.Bootstrap, err = c.passwords.BootstrapExists(ctx, c.id); err != nil {
		return f, false, fmt.Errorf("gateway %s: %w: %w", c.id, errPassword, err)
	}
	return f, domain.AwaitsConfiguration(f), nil
}

// awaitLocked holds logins back until the gateway is configured (a login
// with cred would be the next); logins stopped before end there, since
// what follows is the wait. Entering the standing is logged once, and
// told to the event stream and WatchLogins. c.mu must be held.
func (c *Conn) awaitLocked(cred loginbudget.Credential) {
	w := &awaiting{cred: cred, err: &AwaitingConfigurationError{Gateway: c.id, Credential: cred}}
	entering := c.wait == nil
	c.wait, c.stop = w, nil
	if !entering {
		return // a new version of the password, still waiting
	}
	c.signalLocked()
	param, version := domain.SplitCredential(string(cred))
	c.opt.Logger.Info("gateway awaits its configuration: no login until the configurator has configured it "+
		"(it has a BootstrapPassword parameter, so it may still have its factory password, which would reject the configured one)",
		"gateway_id", c.id, "parameter", param, "version", version)
}

func (c *Conn) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// stopped is the refusal logins are stopped by (nil: they go on).
func (c *Conn) stopped() *domain.LoginRefusal {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop == nil {
		return nil
	}
	r := c.stop.refusal
	return &r
}

// report counts and logs an error of op that client cl met; a rejected
// password, a lock or a refusal of the budget stops logins.
func (c *Conn) report(ctx context.Context, op string, cl *hik.Client, cred loginbudget.Credential, err error) {
	kind := ErrorKind(err)
	if c.opt.OnError != nil {
		c.opt.OnError(op, kind)
	}
	c.opt.Logger.Warn("gateway error", "gateway_id", c.id, "op", op, "kind", kind, "err", err)
	switch kind {
	case KindBadCredentials, KindLocked, KindLoginRefused:
		c.stopLogins(ctx, cl, cred, err)
	}
}

// stopLogins stops logins after client cl (of cred) met err, unless cl
// is no longer the client (a new one may log in) or they are stopped.
func (c *Conn) stopLogins(ctx context.Context, cl *hik.Client, cred loginbudget.Credential, err error) {
	c.mu.Lock()
	current := c.client == cl && c.stop == nil
	c.mu.Unlock()
	if !current {
		return
	}
	var re *loginbudget.RefusedError
	if !errors.As(err, &re) {
		// The gateway answered; the gate recorded its verdict in the
		// budget, whose refusal says it best (failed logins, until when).
		if cerr := c.budget.Check(ctx, c.id, cred); !errors.As(cerr, &re) || re.Reason == loginbudget.ReasonBusy {
			reason := loginbudget.ReasonRejected
			if errors.Is(err, hik.ErrLocked) {
				reason = loginbudget.ReasonLocked
			}
			re = &loginbudget.RefusedError{Gateway: c.id, Refusal: loginbudget.Refusal{Reason: reason, Credential: cred}}
		}
	}
	r := refusalOf(re)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != cl || c.stop != nil {
		return
	}
	c.stop = &stop{cred: cred, refusal: r, err: &LoginsStoppedError{Gateway: c.id, Refusal: r}}
	c.signalLocked()
	param, version := domain.SplitCredential(r.Credential)
	c.opt.Logger.Warn("logins to the gateway stopped: nothing is sent to it until the password parameter has a new version or the login budget allows a login",
		"gateway_id", c.id, "parameter", param, "version", version, "reason", r.Reason, "detail", r.Detail)
}

func refusalOf(re *loginbudget.RefusedError) domain.LoginRefusal {
	return domain.LoginRefusal{Reason: string(re.Reason), Credential: string(re.Credential), Until: re.Until,
		FailedLogins: re.Failures, Detail: re.Refusal.String()}
}

// WatchLogins looks, while logins are stopped or await the gateway's
// configuration, every Recheck (and at once when it starts) at the
// password's version, the login budget and the bootstrap password, and
// resumes logins when they allow; each resumption is sent on resumed.
func (c *Conn) WatchLogins(ctx context.Context, resumed chan<- struct{}) {
	first := true
	for {
		c.mu.Lock()
		blocked, changed := c.stop != nil || c.wait != nil, c.changed
		c.mu.Unlock()
		var (
			t    *time.Timer
			tick <-chan time.Time
		)
		if blocked {
			wait := c.opt.Recheck
			if first {
				wait = 0
			}
			t = time.NewTimer(wait)
			tick = t.C
		}
		first = false
		select {
		case <-ctx.Done():
			stopTimer(t)
			return
		case <-changed:
			stopTimer(t)
			continue
		case <-tick:
		}
		ok, err := c.recheck(ctx)
		if err != nil && ctx.Err() == nil {
			c.opt.Logger.Warn("looking at the gateway's password and login budget failed; looking again later", "gateway_id", c.id, "err", err)
		}
		if ok {
			select {
			case resumed <- struct{}{}:
			default: // one pending is enough
			}
		}
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// recheck resumes stopped logins with a new client when the password's
// parameter has a new version, or when the budget allows the credential
// again (the configurator set the gateway's password to it, or the lock
// ended), unless the login must await the gateway's configuration; and
// logins that await it when it no longer must (the gateway was
// configured, the ledger shows the credential accepted, the bootstrap
// parameter is gone). It reports whether they resumed.
func (c *Conn) recheck(ctx context.Context) (bool, error) {
	c.mu.Lock()
	st, wt := c.stop, c.wait
	c.mu.Unlock()
	if st == nil && wt == nil {
		return false, nil
	}
	version, err := c.passwords.Version(ctx, c.id)
	if err != nil {
		return false, fmt.Errorf("gateway %s: %w: %w", c.id, errPassword, err)
	}
	cred := c.credential(version)
	held := wt.credOr(st) // the credential of the last password read
	why := "the password parameter has a new version"
	if st != nil && cred == st.cred {
		err := c.budget.Check(ctx, c.id, st.cred)
		var re *loginbudget.RefusedError
		switch {
		case errors.As(err, &re) && re.Reason == loginbudget.ReasonBusy:
			return false, nil // others are logging in: look again later
		case errors.As(err, &re):
			// Still refused, perhaps for another reason now.
			r := refusalOf(re)
			c.mu.Lock()
			if c.stop == st {
				st.refusal, st.err = r, &LoginsStoppedError{Gateway: c.id, Refusal: r}
			}
			c.mu.Unlock()
			return false, nil
		case err != nil:
			return false, err
		}
		why = "the login budget allows the password again"
	}
	f, wait, err := c.awaitsConfiguration(ctx, cred)
	if err != nil {
		return false, err
	}
	if wait {
		c.mu.Lock()
		// Reconfigured may have been called since the facts were read:
		// then it resumes logins, and they must not wait.
		if c.stop == st && c.wait == wt && !c.configured.Load() {
			c.awaitLocked(cred)
		}
		c.mu.Unlock()
		return false, nil
	}
	if wt != nil {
		switch {
		case f.Configured:
			why = "the gateway was configured"
		case f.Accepted == f.Credential:
			why = "the login budget saw the gateway accept the password"
		default:
			why = "the gateway has no BootstrapPassword parameter"
		}
	}
	// The value and its version from one read: the credential names what
	// is sent.
	pw, version, err := c.passwords.Password(ctx, c.id, cred != held)
	if err != nil {
		return false, fmt.Errorf("gateway %s: %w: %w", c.id, errPassword, err)
	}
	if c.credential(version) != cred {
		return false, nil // the parameter changed since: look again
	}
	// Even for the same credential, a new client: the old one refuses
	// the password it saw rejected.
	cl, cred, err := c.newClient(pw, version)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stop != st || c.wait != wt {
		return false, nil // resumed meanwhile
	}
	c.replaceLocked(cl, cred)
	param, v := domain.SplitCredential(string(cred))
	c.opt.Logger.Info("logins to the gateway resume", "gateway_id", c.id, "parameter", param, "version", v, "why", why)
	return true, nil
}

// credOr is the credential a wait holds back, else the one logins were
// stopped with.
func (w *awaiting) credOr(st *stop) loginbudget.Credential {
	if w != nil {
		return w.cred
	}
	return st.cred
}

// Reconfigured looks at once at the password's version and the login
// budget (the configurator may have changed the gateway's password to
// the parameter's current version and told the budget so): from now on
// no login awaits the gateway's configuration, and logins that did
// resume; stopped logins resume if they may; a client with an older
// version than the parameter's is replaced before it meets the changed
// password. A failure to read the parameter is returned (the event is
// retried).
func (c *Conn) Reconfigured(ctx context.Context) error {
	c.configured.Store(true)
	c.mu.Lock()
	st, wt, cl, cred := c.stop, c.wait, c.client, c.cred
	c.mu.Unlock()
	if st != nil || wt != nil {
		_, err := c.recheck(ctx)
		return err
	}
	if cl == nil {
		return nil // the first request reads the password
	}
	version, err := c.passwords.Version(ctx, c.id)
	if err != nil {
		return fmt.Errorf("gateway %s: %w: %w", c.id, errPassword, err)
	}
	if c.credential(version) == cred {
		return nil
	}
	pw, version, err := c.passwords.Password(ctx, c.id, true)
	if err != nil {
		return fmt.Errorf("gateway %s: %w: %w", c.id, errPassword, err)
	}
	ncl, ncred, err := c.newClient(pw, version)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == cl && c.stop == nil && c.wait == nil {
		c.replaceLocked(ncl, ncred)
		param, v := domain.SplitCredential(string(ncred))
		c.opt.Logger.Info("gateway reconfigured with a new version of its password; using it", "gateway_id", c.id, "parameter", param, "version", v)
	}
	return nil
}

// budgetGate is the budget's gate, its failures to admit a login other
// than refusals marked errLoginBudget: the gateway was not asked, so they
// say nothing about it (a wait for other logins that ran out of time is
// not a timeout of the gateway).
type budgetGate struct{ g hik.LoginGate }

func (b budgetGate) BeginLogin(ctx context.Context) (hik.LoginAttempt, error) {
	a, err := b.g.BeginLogin(ctx)
	if err != nil && !errors.Is(err, loginbudget.ErrRefused) {
		return nil, fmt.Errorf("%w: %w", errLoginBudget, err)
	}
	return a, err
}

// ObserveLogin passes the gateway's verdicts outside a login on to the
// budget (hik.LoginObserver).
func (b budgetGate) ObserveLogin(ctx context.Context, o hik.LoginOutcome) {
	if obs, ok := b.g.(hik.LoginObserver); ok {
		obs.ObserveLogin(ctx, o)
	}
}

var errLoginBudget = errors.New("login budget")

// Error kinds, as counted in metrics.
const (
	KindUnreachable    = "unreachable"
	KindTimeout        = "timeout"
	KindBadCredentials = "bad_credentials"
	KindLocked         = "locked"
	KindLoginRefused   = "login_refused" // the login budget refused: nothing sent
	KindLoginBudget    = "login_budget"  // the login budget could not be read or written: nothing sent
	KindInsecureAuth   = "insecure_auth" // Basic over plain HTTP refused: no password sent
	KindMalformed      = "malformed"
	KindUnknownStatus  = "unknown_status"
	KindBadMediaURL    = "bad_media_url"
	KindBusy           = "busy"
	KindDeviceError    = "device_error"
	KindNotSupported   = "not_supported"
	KindDeviceOffline  = "device_offline"
	KindBadDevIndex    = "bad_dev_index"
	KindRefused        = "refused"
	KindConfig         = "config"
	KindOther          = "other"
)

// KindAwaitingConfiguration: no login before the gateway is configured,
// nothing sent. A standing, not a fault: never counted as an error.
const KindAwaitingConfiguration = "awaiting_configuration"

// ErrorKind classifies an error of the isapi client.
func ErrorKind(err error) string {
	var (
		bad         *hik.BadCredentialsError
		locked      *hik.LockedError
		malformed   *hik.MalformedResponseError
		status      *hik.StatusError
		badURL      *BadMediaURLError
		unknown     *UnknownStatusError
		awaitingErr *AwaitingConfigurationError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &badURL):
		return KindBadMediaURL
	case errors.As(err, &unknown):
		return KindUnknownStatus
	case errors.As(err, &awaitingErr):
		return KindAwaitingConfiguration
	case errors.Is(err, loginbudget.ErrRefused):
		return KindLoginRefused
	case errors.Is(err, errLoginBudget):
		return KindLoginBudget
	case errors.Is(err, hik.ErrInsecureAuth):
		return KindInsecureAuth
	case errors.As(err, &locked):
		return KindLocked
	case errors.As(err, &bad):
		return KindBadCredentials
	case errors.As(err, &malformed) || errors.Is(err, hik.ErrMalformedResponse):
		return KindMalformed
	case errors.Is(err, hik.ErrHeartbeatTimeout):
		return KindTimeout
	case errors.Is(err, hik.ErrDeviceOffline):
		return KindDeviceOffline
	case errors.Is(err, hik.ErrBadDevIndex):
		return KindBadDevIndex
	case errors.Is(err, hik.ErrBusy):
		return KindBusy
	case errors.Is(err, hik.ErrNotSupported):
		return KindNotSupported
	case errors.As(err, &status) && errors.Is(err, hik.ErrDeviceError):
		return KindDeviceError
	case errors.As(err, &status):
		return KindRefused
	case errors.Is(err, errPassword):
		return KindConfig
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case isTransport(err):
		return KindUnreachable
	}
	return KindOther
}

var errPassword = errors.New("no gateway password")

func isTransport(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// Unreachable reports whether err means the gateway did not answer at all
// (as opposed to answering badly): the connection failed or timed out.
func Unreachable(err error) bool {
	switch ErrorKind(err) {
	case KindUnreachable, KindTimeout:
		return true
	}
	return false
}

// nothingSent reports whether err came before anything reached the
// gateway: it says nothing about the gateway.
func nothingSent(err error) bool {
	switch ErrorKind(err) {
	case KindLoginRefused, KindLoginBudget, KindConfig, KindAwaitingConfiguration:
		return true
	}
	return false
}

var _ app.Gateway = (*Conn)(nil)
