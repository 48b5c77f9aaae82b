// Package isapi is a typed client for the HTTP API (ISAPI, JSON flavour) of
// a Hikvision media gateway: attached devices, media URLs, the device
// management event stream and the gateway's own settings.
//
// Authentication is HTTP Digest (github.com/icholy/digest computes the
// responses). The gateway locks its account for half an hour after 5
// failed logins, so the client is careful with every request that carries
// a password:
//   - it never sends a password the gateway has rejected again: once a
//     request with a password got a 401, every later request with the same
//     user and password fails with ErrBadCredentials without touching the
//     network, until SetCredentials gives another one;
//   - while the current credentials are not yet accepted, requests are
//     serialised so that concurrent callers cannot spend several attempts
//     at once, and each login goes through the LoginGate, if one is set
//     (WithLoginGate), which may refuse it and hears how it ended;
//   - a request with credentials is sent exactly once: it is built so that
//     net/http's Transport cannot re-send it on a reused connection that
//     failed after writing (it re-sends only replayable requests), and the
//     client follows no redirects;
//   - Basic authentication is used only over https: a gateway that offers
//     only Basic over plain HTTP gets nothing (*InsecureAuthError).
//
// Errors are classified from both the HTTP status and the ResponseStatus
// body (the gateway sometimes answers HTTP 200 with an error status): test
// them with errors.Is against the Err* sentinels or errors.As against
// *StatusError, *BadCredentialsError, *LockedError, *MalformedResponseError,
// *InsecureAuthError. A write is proven only by a ResponseStatus: an empty
// or other 2xx answer to a PUT or POST is a *MalformedResponseError.
// Error messages never quote a gateway's body (only status tokens of a
// safe shape) and never contain the password: what the gateway echoes is
// redacted (pkg/redact) before it is kept in an error's fields.
package isapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icholy/digest"

	"mediagw/pkg/redact"
)

// DefaultTimeout bounds each request unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

const maxResponseBody = 8 << 20

// Client talks to one gateway. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	name      string // the gateway, in error messages
	hc        *http.Client
	timeout   time.Duration
	now       func() time.Time
	loginGate LoginGate
	secrets   *redact.Secrets

	// gate admits one request at a time while the credentials are
	// unconfirmed, so a wrong password costs one failed login, not N.
	gate chan struct{}

	mu          sync.Mutex
	user        string
	password    string
	gen         uint64 // bumps on every credential change
	verified    bool   // the gateway accepted (user, password) of gen
	salt        []byte
	rejected    map[[32]byte]struct{}
	chal        *digest.Challenge
	nc          int
	basic       bool
	lockedUntil time.Time
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (its Timeout should be 0: the
// event stream is long-lived; per-request timeouts come from WithTimeout).
// The client uses a copy that follows no redirects: a redirect would send
// the credentials a second time.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTimeout sets the per-request timeout (default DefaultTimeout). For
// the event stream it bounds the time to the response headers.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithClock sets the clock the client remembers a lockout by (default
// time.Now).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithGatewayName names the gateway in error messages (default: the base
// URL's host), e.g. its gateway id.
func WithGatewayName(name string) Option { return func(c *Client) { c.name = name } }

// WithSecrets makes the client register every password it is given (New,
// SetCredentials, ChangePassword) in s, and redact what the gateway
// echoes with it; by default the client keeps a registry of its own.
// Passing the service's registry (service.Runtime.Secrets) keeps the
// passwords out of its logs too.
func WithSecrets(s *redact.Secrets) Option { return func(c *Client) { c.secrets = s } }

// New returns a client for the gateway at baseURL (e.g. http://10.0.0.5:80).
func New(baseURL, user, password string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("isapi: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("isapi: base URL %q: want http(s)://host[:port]", u.Redacted())
	}
	if u.User != nil {
		return nil, errors.New("isapi: base URL must not carry credentials; pass them to New")
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	c := &Client{
		base:     u,
		name:     u.Host,
		hc:       &http.Client{},
		timeout:  DefaultTimeout,
		now:      time.Now,
		gate:     make(chan struct{}, 1),
		user:     user,
		password: password,
		salt:     salt,
		rejected: map[[32]byte]struct{}{},
	}
	for _, o := range opts {
		o(c)
	}
	if c.secrets == nil {
		c.secrets = redact.New()
	}
	c.secrets.Add(password)
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// SetCredentials switches to other credentials. A password the gateway
// rejected earlier stays refused. On a client made WithLoginGate it
// returns ErrCredentialsBound and changes nothing, unless the credentials
// are the ones it has.
func (c *Client) SetCredentials(user, password string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if user == c.user && password == c.password {
		return nil
	}
	if c.loginGate != nil {
		return fmt.Errorf("isapi: gateway %s: %w: make a new client for other credentials", c.name, ErrCredentialsBound)
	}
	c.secrets.Add(password)
	c.user, c.password = user, password
	c.gen++
	c.verified = false
	return nil
}

// User is the user name the client authenticates as.
func (c *Client) User() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// BaseURL is the gateway's base URL.
func (c *Client) BaseURL() string { return c.base.String() }

func (c *Client) credKey(user, password string) [32]byte {
	h := sha256.New()
	h.Write(c.salt)
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

type creds struct {
	user, password string
	gen            uint64
	verified       bool
}

// admit checks the local refusals (rejected password, known lockout).
func (c *Client) admit() (creds, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cr := creds{user: c.user, password: c.password, gen: c.gen, verified: c.verified}
	if _, bad := c.rejected[c.credKey(cr.user, cr.password)]; bad {
		return cr, &BadCredentialsError{User: cr.user, RetryTimes: -1, FromCache: true}
	}
	if left := c.lockedUntil.Sub(c.now()); left > 0 {
		return cr, &LockedError{TimeLeft: left, FromCache: true}
	}
	return cr, nil
}

// request is one ISAPI call before authentication.
type request struct {
	method string
	path   string
	query  url.Values
	body   []byte
}

func (r request) url(base *url.URL) string {
	u := *base
	u.Path = base.Path + r.path
	q := url.Values{}
	for k, v := range r.query {
		q[k] = v
	}
	q.Set("format", "json")
	u.RawQuery = q.Encode()
	return u.String()
}

// emptyBody is the body of a credential-carrying request without one
// whose method net/http would otherwise consider replayable (GET): a Body
// other than http.NoBody with no GetBody makes it non-replayable, so the
// Transport never re-sends it. The Transport probes such a body before
// writing, finds it empty and sends neither a body nor chunked framing.
type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }

// newRequest builds one HTTP request for r. A request with credentials
// (withAuth) is made non-replayable: net/http re-sends a replayable
// request (GET/HEAD, or one whose body it can rewind with GetBody) when a
// reused keep-alive connection fails after writing it, which would be a
// second login with one call (see Request.isReplayable and
// persistConn.shouldRetryRequest). PUT, POST and DELETE without a body
// are not replayable anyway.
func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, r.url(c.base), nil)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	}
	req.Header.Set("Accept", "application/json, application/xml;q=0.9, */*;q=0.5")
	return req, nil
}

func setBody(req *http.Request, body []byte, withAuth bool) {
	switch {
	case len(body) > 0:
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		if !withAuth {
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
	case withAuth && (req.Method == http.MethodGet || req.Method == http.MethodHead):
		req.Body = emptyBody{}
	}
}

// send performs an authenticated request and returns any non-401 response
// with its body open. 401s become *BadCredentialsError or *LockedError.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	cr, err := c.admit()
	if err != nil {
		return nil, err
	}
	if !cr.verified {
		select {
		case c.gate <- struct{}{}:
			defer func() { <-c.gate }()
		case <-ctx.Done():
			return nil, fmt.Errorf("isapi: %s %s: %w", r.method, r.path, ctx.Err())
		}
		// Another caller may have settled these credentials meanwhile.
		if cr, err = c.admit(); err != nil {
			return nil, err
		}
	}
	// The login attempt the gate admitted, if any; whatever way send
	// ends, it is finished once (a path that forgot would leave the gate
	// believing in a login still in flight). credsWritten: a request with
	// the credentials was, or may have been, written, so a missing answer
	// may have been a failed login on the gateway's side. httptrace's
	// WroteRequest can come after Do returned (a write cut short by the
	// context), so a connection obtained for the request (GotConn, called
	// before Do writes) counts as written too: the safe side.
	var (
		att          *attempt
		wrote        atomic.Bool
		gotConn      atomic.Bool
		credsWritten bool
	)
	defer func() {
		o := LoginOutcome{Result: LoginNotSent}
		if credsWritten {
			o.Result = LoginUnanswered
		}
		att.finish(ctx, o)
	}()
	trace := &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { gotConn.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) { wrote.Store(true) },
	}
	tctx := httptrace.WithClientTrace(ctx, trace)

	staleRetried := false
	for range 3 {
		req, err := c.newRequest(tctx, r)
		if err != nil {
			return nil, fmt.Errorf("isapi: %s %s: %w", r.method, r.path, err)
		}
		sentAuth, err := c.authorize(req, cr)
		if err != nil {
			var insecure *InsecureAuthError
			if errors.As(err, &insecure) {
				insecure.Method, insecure.Path = r.method, r.path
				return nil, err
			}
			return nil, fmt.Errorf("isapi: %s %s: %w", r.method, r.path, err)
		}
		setBody(req, r.body, sentAuth)
		// A login starts with its first request, the unauthenticated
		// challenge round trip included, so that a refused login sends
		// nothing at all.
		if !cr.verified && c.loginGate != nil && att == nil {
			a, err := c.loginGate.BeginLogin(ctx)
			if err != nil {
				return nil, fmt.Errorf("isapi: %s %s: %w", r.method, r.path, err)
			}
			att = &attempt{a: a}
		}
		wrote.Store(false)
		gotConn.Store(false)
		resp, err := c.hc.Do(req)
		if sentAuth && (wrote.Load() || gotConn.Load()) {
			credsWritten = true
		}
		if err != nil {
			return nil, fmt.Errorf("isapi: %s %s: %w", r.method, r.path, err)
		}
		if resp.StatusCode != http.StatusUnauthorized {
			if !sentAuth {
				// Answered without credentials: nothing was tried.
				att.finish(ctx, LoginOutcome{Result: LoginNotSent})
				return resp, nil
			}
			c.markVerified(cr)
			att.finish(ctx, LoginOutcome{Result: LoginAccepted})
			return resp, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		rs, _ := ParseResponseStatus(body)
		chal, basic := findChallenge(resp.Header)
		c.saveChallenge(chal, basic)

		// What the gateway said about these credentials, told to the gate:
		// to the attempt when one is open, else to the observer.
		tell := func(o LoginOutcome) {
			switch {
			case att != nil:
				att.finish(ctx, o)
			case c.loginGate != nil && (sentAuth || o.Result == LoginLocked):
				c.observe(ctx, o)
			}
		}
		if rs != nil && rs.Locked() {
			rejected := sentAuth && rs.SubStatusCode == "badAuthorization"
			lerr := c.locked(cr, rs, rejected)
			tell(LoginOutcome{Result: LoginLocked, LockLeft: lockLeft(rs)})
			return nil, lerr
		}
		switch {
		case !sentAuth && chal == nil && !basic:
			// A 401 with no way to log in offered.
			return nil, c.statusError(r, http.StatusUnauthorized, rs)
		case !sentAuth:
			continue // the normal challenge round trip
		case chal != nil && chal.Stale:
			// Right password, expired nonce: not a failed login. The one
			// retry belongs to the same attempt.
			if staleRetried {
				// Stale twice: no verdict on the password; counted as
				// unknown, the safe side.
				att.finish(ctx, LoginOutcome{Result: LoginUnanswered})
				return nil, c.statusError(r, http.StatusUnauthorized, rs)
			}
			staleRetried = true
			continue
		}
		// A 401 to a request with the credentials (with a new challenge or
		// none) is a failed login, whatever else it says.
		tell(LoginOutcome{Result: LoginRejected})
		return nil, c.reject(cr, rs)
	}
	return nil, &StatusError{Method: r.method, Path: r.path, HTTPStatus: http.StatusUnauthorized}
}

// lockLeft is what a lock answer says is left of the lock (0: unknown).
func lockLeft(rs *ResponseStatus) time.Duration {
	if rs.ResLockTime > 0 {
		return time.Duration(rs.ResLockTime) * time.Second
	}
	return 0
}

// authorize adds the Authorization header from the cached challenge. It
// refuses Basic over plain HTTP.
func (c *Client) authorize(req *http.Request, cr creds) (bool, error) {
	c.mu.Lock()
	chal, basic := c.chal, c.basic
	c.nc++
	nc := c.nc
	c.mu.Unlock()
	switch {
	case chal != nil:
		cred, err := digest.Digest(chal, digest.Options{
			Method: req.Method, URI: req.URL.RequestURI(), Count: nc,
			Username: cr.user, Password: cr.password,
		})
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", cred.String())
		return true, nil
	case basic:
		if req.URL.Scheme != "https" {
			return false, &InsecureAuthError{Gateway: c.name}
		}
		req.SetBasicAuth(cr.user, cr.password)
		return true, nil
	}
	return false, nil
}

// findChallenge prefers Digest; basic reports a Basic-only gateway.
func findChallenge(h http.Header) (*digest.Challenge, bool) {
	chal, err := digest.FindChallenge(h)
	if err == nil && digest.CanDigest(chal) {
		return chal, false
	}
	for _, v := range h.Values("WWW-Authenticate") {
		if len(v) >= 5 && strings.EqualFold(v[:5], "Basic") {
			return nil, true
		}
	}
	return nil, false
}

func (c *Client) saveChallenge(chal *digest.Challenge, basic bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if chal != nil {
		c.chal, c.nc, c.basic = chal, 0, false
	} else if basic {
		c.chal, c.basic = nil, true
	}
}

func (c *Client) markVerified(cr creds) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == cr.gen {
		c.verified = true
	}
}

func (c *Client) reject(cr creds, rs *ResponseStatus) error {
	c.mu.Lock()
	c.rejected[c.credKey(cr.user, cr.password)] = struct{}{}
	if c.gen == cr.gen {
		c.verified = false
	}
	c.mu.Unlock()
	retry := -1
	if rs != nil {
		retry = rs.RetryTimes
	}
	return &BadCredentialsError{User: cr.user, RetryTimes: retry}
}

func (c *Client) locked(cr creds, rs *ResponseStatus, passwordRejected bool) error {
	left := lockLeft(rs)
	c.mu.Lock()
	if left > 0 {
		c.lockedUntil = c.now().Add(left)
	}
	if passwordRejected {
		c.rejected[c.credKey(cr.user, cr.password)] = struct{}{}
		if c.gen == cr.gen {
			c.verified = false
		}
	}
	c.mu.Unlock()
	return &LockedError{TimeLeft: left, PasswordRejected: passwordRejected}
}

// withTimeout applies the per-request timeout unless ctx ends sooner.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// statusError is the error for an error answer, its texts redacted.
func (c *Client) statusError(r request, httpStatus int, rs *ResponseStatus) *StatusError {
	if rs != nil {
		c.redact(rs)
	}
	return &StatusError{Method: r.method, Path: r.path, HTTPStatus: httpStatus, Status: rs}
}

// do sends a JSON request and decodes a JSON payload into out (nil for
// writes, which must answer a ResponseStatus).
func (c *Client) do(ctx context.Context, r request, in, out any) (*ResponseStatus, error) {
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("isapi: %s %s: encode: %w", r.method, r.path, err)
		}
		r.body = b
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	ctype := resp.Header.Get("Content-Type")
	malformed := func(err error) error {
		return &MalformedResponseError{Method: r.method, Path: r.path, HTTPStatus: resp.StatusCode, ContentType: ctype, Err: err}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("isapi: %s %s: %w", r.method, r.path, ctx.Err())
		}
		return nil, malformed(fmt.Errorf("reading body: %w", err))
	}
	rs, hasStatus := ParseResponseStatus(body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, c.statusError(r, resp.StatusCode, rs)
	}
	if hasStatus && !rs.OK() {
		return nil, c.statusError(r, resp.StatusCode, rs)
	}
	if out == nil {
		// A write is proven by the gateway's ResponseStatus; an empty 200
		// (a proxy, a firmware fault) says nothing about the change.
		switch {
		case hasStatus:
			c.redact(rs)
			return rs, nil
		case len(bytes.TrimSpace(body)) == 0:
			return nil, malformed(errors.New("an empty answer where a ResponseStatus was expected"))
		}
		return nil, malformed(errors.New("no ResponseStatus in the answer"))
	}
	if hasStatus {
		return nil, malformed(errors.New("a ResponseStatus where a payload was expected"))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, malformed(err)
	}
	return nil, nil
}

// redact keeps the client's passwords out of anything the gateway echoed.
func (c *Client) redact(rs *ResponseStatus) {
	rs.ErrorMsg = c.secrets.String(rs.ErrorMsg)
	rs.RequestURL = c.secrets.String(rs.RequestURL)
	rs.StatusString = c.secrets.String(rs.StatusString)
	rs.SubStatusCode = c.secrets.String(rs.SubStatusCode)
	rs.LockStatus = c.secrets.String(rs.LockStatus)
}
