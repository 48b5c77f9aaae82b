// Package isapi is the health-sentinel's adapter to a gateway's ISAPI
// (recovery.API): the device status read by the health check, and the
// reboot of the first rung, over the client of mediagw/pkg/isapi whose
// every login goes through the shared login budget (mediagw/pkg/loginbudget).
//
// The sentinel never spends a login on a password nobody saw work: it logs
// in only with the credential (password parameter and version) the
// budget's ledger says the gateway last accepted (the configurator and the
// device-watcher log in all the time, so it is known). Otherwise, and
// whenever the budget refuses, it only asks whether the API answers at
// all, without credentials, and reports the API's health as unknown (the
// ladder never acts on that) or silent.
package isapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	hik "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/pkg/redact"
	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
)

// Budget is the shared login budget (*loginbudget.Budget).
type Budget interface {
	ISAPIGate(gatewayID string, cred loginbudget.Credential) hik.LoginGate
	Ledger(ctx context.Context, gatewayID string) (loginbudget.Ledger, error)
}

// Passwords reads a gateway's admin password and its parameter's version.
type Passwords interface {
	ParameterName(gatewayID string) string
	Password(ctx context.Context, gatewayID string) (string, int64, error)
}

// Options tune the adapter.
type Options struct {
	User    string        // default admin
	Timeout time.Duration // each request (default hik.DefaultTimeout)
	Secrets *redact.Secrets
	Now     func() time.Time
	Logger  *slog.Logger
}

// API implements recovery.API for the gateways at their base URLs.
type API struct {
	urls      map[string]string
	passwords Passwords
	budget    Budget
	opt       Options
	plain     *http.Client

	mu      sync.Mutex
	clients map[string]entry
}

type entry struct {
	cl   *hik.Client
	cred loginbudget.Credential
}

// New returns the adapter; urls maps gateway ids to their ISAPI base URLs.
func New(urls map[string]string, passwords Passwords, budget Budget, opt Options) *API {
	if opt.User == "" {
		opt.User = "admin"
	}
	if opt.Timeout <= 0 {
		opt.Timeout = hik.DefaultTimeout
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{urls: urls, passwords: passwords, budget: budget, opt: opt, clients: map[string]entry{},
		plain: &http.Client{Timeout: opt.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var _ recovery.API = (*API)(nil)

// errNoLogin: no login may be spent now (the reason is wrapped); nothing
// was asked of the gateway.
var errNoLogin = fmt.Errorf("no login (%w)", recovery.ErrNotDone)

// client returns the client of the credential the gateway last accepted.
func (a *API) client(ctx context.Context, gw string) (*hik.Client, error) {
	base, ok := a.urls[gw]
	if !ok {
		return nil, fmt.Errorf("gateway %s: no ISAPI URL configured", gw)
	}
	pw, version, err := a.passwords.Password(ctx, gw)
	if err != nil {
		return nil, fmt.Errorf("%w: the password could not be read: %w", errNoLogin, err)
	}
	a.opt.Secrets.Add(pw)
	cred := loginbudget.CredentialOf(a.passwords.ParameterName(gw), version)
	l, err := a.budget.Ledger(ctx, gw)
	if err != nil {
		return nil, fmt.Errorf("%w: the login budget could not be read: %w", errNoLogin, err)
	}
	if l.Accepted != cred {
		return nil, fmt.Errorf("%w: the gateway has not accepted %s yet (it last accepted %q): logging in is the configurator's business",
			errNoLogin, cred, l.Accepted)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.clients[gw]; ok && e.cred == cred {
		return e.cl, nil
	}
	cl, err := hik.New(base, a.opt.User, pw, hik.WithTimeout(a.opt.Timeout), hik.WithGatewayName(gw),
		hik.WithSecrets(a.opt.Secrets), hik.WithLoginGate(a.budget.ISAPIGate(gw, cred)))
	if err != nil {
		return nil, fmt.Errorf("gateway %s: %w", gw, err)
	}
	a.clients[gw] = entry{cl: cl, cred: cred}
	return cl, nil
}

// Probe reads the device status and classifies what it found.
func (a *API) Probe(ctx context.Context, gw string) recovery.Probe {
	cl, err := a.client(ctx, gw)
	if err != nil {
		return a.knock(ctx, gw, err)
	}
	st, err := cl.Status(ctx)
	if err == nil {
		return recovery.Probe{State: domain.APIOK, BootedAt: a.opt.Now().Add(-st.UpTime),
			Detail: fmt.Sprintf("device status read; up %s", st.UpTime.Truncate(time.Second))}
	}
	if errors.Is(err, loginbudget.ErrRefused) {
		return a.knock(ctx, gw, fmt.Errorf("%w: %w", errNoLogin, err))
	}
	return recovery.Probe{State: classify(err), Detail: err.Error()}
}

// classify sorts an ISAPI error: answers that say nothing of the gateway's
// health (credentials, lock, an unsupported path) are unknown; error
// answers are sick; no answer is silent.
func classify(err error) domain.APIState {
	switch {
	case errors.Is(err, hik.ErrBadCredentials), errors.Is(err, hik.ErrLocked), errors.Is(err, hik.ErrInsecureAuth),
		errors.Is(err, hik.ErrNotSupported), errors.Is(err, loginbudget.ErrRefused):
		return domain.APIUnknown
	case errors.Is(err, hik.ErrBusy), errors.Is(err, hik.ErrDeviceError), errors.Is(err, hik.ErrMalformedResponse),
		errors.Is(err, hik.ErrInvalidOperation), errors.Is(err, hik.ErrInvalidFormat), errors.Is(err, hik.ErrInvalidContent):
		return domain.APISick
	}
	var se *hik.StatusError
	if errors.As(err, &se) {
		return domain.APISick
	}
	return domain.APISilent
}

// knock asks, without credentials, whether the API answers at all: any
// HTTP answer (a 401 challenge, normally) means it does, but its health is
// unknown since no login may be spent; no answer is silent.
func (a *API) knock(ctx context.Context, gw string, why error) recovery.Probe {
	base, ok := a.urls[gw]
	if !ok {
		return recovery.Probe{State: domain.APIUnknown, Detail: fmt.Sprintf("gateway %s: no ISAPI URL configured", gw)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/ISAPI/System/status", nil)
	if err != nil {
		return recovery.Probe{State: domain.APIUnknown, Detail: err.Error()}
	}
	resp, err := a.plain.Do(req)
	if err != nil {
		return recovery.Probe{State: domain.APISilent, Detail: fmt.Sprintf("no answer without credentials either: %v (%v)", cause(err), why)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return recovery.Probe{State: domain.APIUnknown, Detail: fmt.Sprintf("the API answers (HTTP %d without credentials) but %v", resp.StatusCode, why)}
}

// cause is a net/http error without the request's URL around it (no
// secret in it, but long and repeated in every detail).
func cause(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// Reboot asks the gateway to restart through ISAPI.
func (a *API) Reboot(ctx context.Context, gw string) error {
	cl, err := a.client(ctx, gw)
	if err != nil {
		return err
	}
	rs, err := cl.Reboot(ctx)
	var se *hik.StatusError
	switch {
	case errors.Is(err, loginbudget.ErrRefused), errors.Is(err, hik.ErrBadCredentials), errors.Is(err, hik.ErrLocked), errors.As(err, &se):
		// Refused before or by the gateway: no reboot is coming.
		return fmt.Errorf("gateway %s: reboot: %w (%w)", gw, err, recovery.ErrNotDone)
	case err != nil:
		return fmt.Errorf("gateway %s: reboot: %w", gw, err)
	case !rs.OK():
		return fmt.Errorf("gateway %s: reboot answered status %d %s (%w)", gw, rs.StatusCode, rs.SubStatusCode, recovery.ErrNotDone)
	}
	a.opt.Logger.InfoContext(ctx, "isapi: reboot accepted", "gateway", gw)
	return nil
}
