// Package isapi is a typed client for the HTTP API (ISAPI, JSON flavour) of
// a Hikvision media gateway: attached devices, media URLs, the device
// management event stream and the gateway's own settings.
//
// Authentication is HTTP Digest (github.com/icholy/digest computes the
// responses). The gateway locks a source IP out for half an hour after 5
// failed logins, so the Client never sends a password the gateway has
// rejected again: once a request with a password got a 401, every later
// request with the same user and password fails with ErrBadCredentials
// without touching the network, until SetCredentials gives another one.
// While the current credentials are not yet confirmed, requests are
// serialised so that concurrent callers cannot spend several attempts at
// once.
//
// Errors are classified from both the HTTP status and the ResponseStatus
// body (the gateway sometimes answers HTTP 200 with an error status): test
// them with errors.Is against the Err* sentinels or errors.As against
// *StatusError, *BadCredentialsError, *LockedError, *MalformedResponseError.
// No error message contains the password.
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
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"
)

// DefaultTimeout bounds each request unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

const maxResponseBody = 8 << 20

// Client talks to one gateway. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	hc      *http.Client
	timeout time.Duration
	now     func() time.Time

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
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTimeout sets the per-request timeout (default DefaultTimeout). For
// the event stream it bounds the time to the response headers.
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithClock sets the clock the client remembers a lockout by (default
// time.Now).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

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
	return c, nil
}

// SetCredentials switches to other credentials. A password the gateway
// rejected earlier stays refused.
func (c *Client) SetCredentials(user, password string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if user == c.user && password == c.password {
		return
	}
	c.user, c.password = user, password
	c.gen++
	c.verified = false
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
	staleRetried := false
	for attempt := 0; attempt < 3; attempt++ {
		req, err := http.NewRequestWithContext(ctx, r.method, r.url(c.base), bytes.NewReader(r.body))
		if err != nil {
			return nil, fmt.Errorf("isapi: %s %s: %w", r.method, r.path, err)
		}
		if r.body != nil {
			req.Header.Set("Content-Type", "application/json; charset=UTF-8")
		}
		req.Header.Set("Accept", "application/json, application/xml;q=0.9, */*;q=0.5")
		sentAuth, err := c.authorize(req, cr)
		if err != nil {
			return nil, fmt.Errorf("isapi: %s %s: %w", r.method, r.path, err)
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("isapi: %s %s: %w", r.method, r.path, err)
		}
		if resp.StatusCode != http.StatusUnauthorized {
			c.markVerified(cr)
			return resp, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		rs, _ := ParseResponseStatus(body)
		chal, basic := findChallenge(resp.Header)
		c.saveChallenge(chal, basic)

		if rs != nil && rs.Locked() {
			rejected := sentAuth && rs.SubStatusCode == "badAuthorization"
			return nil, c.locked(cr, rs, rejected)
		}
		switch {
		case chal == nil && !basic:
			return nil, &StatusError{Method: r.method, Path: r.path, HTTPStatus: http.StatusUnauthorized, Status: rs}
		case !sentAuth:
			continue // the normal challenge round trip
		case chal != nil && chal.Stale:
			// Right password, expired nonce: not a failed login.
			if staleRetried {
				return nil, &StatusError{Method: r.method, Path: r.path, HTTPStatus: http.StatusUnauthorized, Status: rs}
			}
			staleRetried = true
			continue
		}
		return nil, c.reject(cr, rs)
	}
	return nil, &StatusError{Method: r.method, Path: r.path, HTTPStatus: http.StatusUnauthorized}
}

// authorize adds the Authorization header from the cached challenge.
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
	var left time.Duration
	if rs.ResLockTime > 0 {
		left = time.Duration(rs.ResLockTime) * time.Second
	}
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

// do sends a JSON request and decodes a JSON payload into out (nil for
// writes, which answer a ResponseStatus).
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
	if hasStatus {
		c.redact(rs)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{Method: r.method, Path: r.path, HTTPStatus: resp.StatusCode, Status: rs}
	}
	if hasStatus && !rs.OK() {
		return nil, &StatusError{Method: r.method, Path: r.path, HTTPStatus: resp.StatusCode, Status: rs}
	}
	if out == nil {
		switch {
		case hasStatus:
			return rs, nil
		case len(bytes.TrimSpace(body)) == 0:
			return &ResponseStatus{StatusCode: StatusOK, SubStatusCode: "ok", RetryTimes: -1, ResLockTime: -1}, nil
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

// redact keeps the password out of anything the gateway echoed.
func (c *Client) redact(rs *ResponseStatus) {
	c.mu.Lock()
	pw := c.password
	c.mu.Unlock()
	if len(pw) < 3 {
		return
	}
	rs.ErrorMsg = strings.ReplaceAll(rs.ErrorMsg, pw, "***")
	rs.RequestURL = strings.ReplaceAll(rs.RequestURL, pw, "***")
	rs.StatusString = strings.ReplaceAll(rs.StatusString, pw, "***")
	rs.SubStatusCode = strings.ReplaceAll(rs.SubStatusCode, pw, "***")
}
