package isapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/icholy/digest"

	"mediagw/pkg/isapi"
)

// authServer is a gateway reduced to its login: HTTP Digest with one
// password, a 401 with badAuthorization for a wrong one, and a hook that
// takes over requests carrying credentials (to lose or delay answers).
type authServer struct {
	password  string
	basicOnly bool
	// onAuthorized, when set, handles a request with credentials; it
	// returns false to let the server answer as usual.
	onAuthorized func(w http.ResponseWriter, r *http.Request) bool
	// onChallenge, when set, runs before an unauthenticated request is
	// answered with the challenge.
	onChallenge func(w http.ResponseWriter, r *http.Request)
	// answer, when set, is the body of an authorised request (default: a
	// status or a ResponseStatus).
	answer func(r *http.Request) (status int, body string)

	mu         sync.Mutex
	plain      int      // requests without credentials
	authorized []string // "METHOD path remote" of requests with credentials
	failed     int
	bodies     []string // bodies of requests with credentials
	framing    []string // Transfer-Encoding and Content-Length of requests with credentials
}

const realm = "test-gateway"

func (s *authServer) challenge(w http.ResponseWriter) {
	if s.basicOnly {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	} else {
		w.Header().Set("WWW-Authenticate", `Digest realm="`+realm+`", qop="auth", nonce="abc123", stale="FALSE"`)
	}
}

func (s *authServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h := r.Header.Get("Authorization")
	if h == "" {
		s.mu.Lock()
		s.plain++
		s.mu.Unlock()
		s.mu.Lock()
		hook := s.onChallenge
		s.mu.Unlock()
		if hook != nil {
			hook(w, r)
		}
		s.challenge(w)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	s.authorized = append(s.authorized, r.Method+" "+r.URL.Path+" "+r.RemoteAddr)
	s.bodies = append(s.bodies, string(body))
	s.framing = append(s.framing, fmt.Sprintf("te=%v cl=%d", r.TransferEncoding, r.ContentLength))
	s.mu.Unlock()
	if s.onAuthorized != nil && s.onAuthorized(w, r) {
		return
	}
	if !s.check(r, h) {
		s.mu.Lock()
		s.failed++
		s.mu.Unlock()
		s.challenge(w)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"statusCode":4,"statusString":"Invalid Operation","subStatusCode":"badAuthorization"}`)
		return
	}
	status, answer := http.StatusOK, `{"statusCode":1,"statusString":"OK","subStatusCode":"ok"}`
	if r.Method == http.MethodGet {
		answer = `{"DeviceStatus":{"deviceUpTime":42}}`
	}
	s.mu.Lock()
	custom := s.answer
	s.mu.Unlock()
	if custom != nil {
		status, answer = custom(r)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (s *authServer) check(r *http.Request, h string) bool {
	s.mu.Lock()
	password := s.password
	s.mu.Unlock()
	if s.basicOnly {
		_, pw, ok := r.BasicAuth()
		return ok && pw == password
	}
	cred, err := digest.ParseCredentials(h)
	if err != nil {
		return false
	}
	want, err := digest.Digest(&digest.Challenge{Realm: realm, Nonce: "abc123", QOP: []string{"auth"}}, digest.Options{
		Method: r.Method, URI: cred.URI, Count: cred.Nc, Cnonce: cred.Cnonce, Username: cred.Username, Password: password,
	})
	return err == nil && want.Response == cred.Response
}

func (s *authServer) counts() (plain, authorized, failed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plain, len(s.authorized), s.failed
}

func (s *authServer) start(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv
}

// fakeGate records what the client tells it.
type fakeGate struct {
	mu       sync.Mutex
	refuse   error
	onBegin  func()
	begins   int
	open     int
	maxOpen  int
	results  []isapi.LoginResult
	lockLeft []time.Duration
	observed []isapi.LoginResult
	ctxErrs  []error // of Finish's context
	doubles  int     // Finish called twice on one attempt
}

func (g *fakeGate) BeginLogin(ctx context.Context) (isapi.LoginAttempt, error) {
	g.mu.Lock()
	g.begins++
	if g.refuse != nil {
		g.mu.Unlock()
		return nil, g.refuse
	}
	g.open++
	g.maxOpen = max(g.maxOpen, g.open)
	hook := g.onBegin
	g.mu.Unlock()
	if hook != nil {
		hook()
	}
	return &fakeAttempt{g: g}, nil
}

func (g *fakeGate) ObserveLogin(ctx context.Context, o isapi.LoginOutcome) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.observed = append(g.observed, o.Result)
}

type fakeAttempt struct {
	g    *fakeGate
	done bool
}

func (a *fakeAttempt) Finish(ctx context.Context, o isapi.LoginOutcome) {
	g := a.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if a.done {
		g.doubles++
		return
	}
	a.done = true
	g.open--
	g.results = append(g.results, o.Result)
	g.lockLeft = append(g.lockLeft, o.LockLeft)
	g.ctxErrs = append(g.ctxErrs, ctx.Err())
}

// check asserts the gate saw begins logins, each finished once, with want.
func (g *fakeGate) check(t *testing.T, begins int, want ...isapi.LoginResult) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.begins != begins || fmt.Sprint(g.results) != fmt.Sprint(want) || g.doubles != 0 || g.open != 0 {
		t.Fatalf("gate: %d begins, results %v, %d double finishes, %d open; want %d begins, results %v",
			g.begins, g.results, g.doubles, g.open, begins, want)
	}
	for i, err := range g.ctxErrs {
		if err != nil {
			t.Fatalf("Finish %d got a context already done: %v", i, err)
		}
	}
}

func newGated(t *testing.T, url, password string, g isapi.LoginGate, opts ...isapi.Option) *isapi.Client {
	t.Helper()
	c, err := isapi.New(url, "admin", password, append([]isapi.Option{isapi.WithLoginGate(g)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGateWrongPasswordIsOneRejectedLogin(t *testing.T) {
	s := &authServer{password: "right-password"}
	srv := s.start(t)
	g := &fakeGate{}
	c := newGated(t, srv.URL, "wrong-password", g)
	for range 3 {
		if _, err := c.Status(t.Context()); !errors.Is(err, isapi.ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	g.check(t, 1, isapi.LoginRejected)
	if _, authorized, failed := s.counts(); authorized != 1 || failed != 1 {
		t.Fatalf("server saw %d requests with credentials, %d failed; want 1, 1", authorized, failed)
	}
}

func TestGateAcceptedLoginThenRides(t *testing.T) {
	s := &authServer{password: "right-password"}
	srv := s.start(t)
	g := &fakeGate{}
	c := newGated(t, srv.URL, "right-password", g)
	for range 5 {
		if st, err := c.Status(t.Context()); err != nil || st.UpTime != 42*time.Second {
			t.Fatalf("status: %+v %v", st, err)
		}
	}
	if _, err := c.Reboot(t.Context()); err != nil {
		t.Fatal(err)
	}
	g.check(t, 1, isapi.LoginAccepted)
	if plain, authorized, _ := s.counts(); plain != 1 || authorized != 6 {
		t.Fatalf("server saw %d challenges and %d authorised requests, want 1 and 6", plain, authorized)
	}
	// A client with a gate is bound to its credentials.
	if err := c.SetCredentials("admin", "other"); !errors.Is(err, isapi.ErrCredentialsBound) {
		t.Fatalf("SetCredentials on a gated client: %v", err)
	}
	if err := c.SetCredentials("admin", "right-password"); err != nil {
		t.Fatalf("SetCredentials with the same credentials: %v", err)
	}
}

// hijackAndClose reads the request (the server already did) and closes the
// connection without a word.
func hijackAndClose(w http.ResponseWriter, _ *http.Request) bool {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
	return true
}

func TestGateLostAnswerIsUnanswered(t *testing.T) {
	s := &authServer{password: "pw-123456", onAuthorized: hijackAndClose}
	srv := s.start(t)
	g := &fakeGate{}
	c := newGated(t, srv.URL, "pw-123456", g)
	if _, err := c.Status(t.Context()); err == nil {
		t.Fatal("no error for a lost answer")
	}
	g.check(t, 1, isapi.LoginUnanswered)
	if _, authorized, _ := s.counts(); authorized != 1 {
		t.Fatalf("server saw %d requests with credentials, want exactly 1 (no re-send)", authorized)
	}
	// Not a rejection: the next call is a new login, again through the gate.
	if _, err := c.Status(t.Context()); err == nil || errors.Is(err, isapi.ErrBadCredentials) {
		t.Fatalf("second call: %v", err)
	}
	g.check(t, 2, isapi.LoginUnanswered, isapi.LoginUnanswered)
}

func TestGateLateAnswerIsUnanswered(t *testing.T) {
	s := &authServer{password: "pw-123456", onAuthorized: func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done() // the answer comes after the client gave up
		return true
	}}
	srv := s.start(t)
	g := &fakeGate{}
	c := newGated(t, srv.URL, "pw-123456", g, isapi.WithTimeout(200*time.Millisecond))
	_, err := c.Status(t.Context())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("late answer: %v", err)
	}
	g.check(t, 1, isapi.LoginUnanswered) // and Finish's context was not the expired one
}

func TestGateDialRefusedIsNotSent(t *testing.T) {
	s := &authServer{password: "pw-123456", onChallenge: func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Connection", "close") // the login needs a new connection
	}}
	srv := s.start(t)
	var mu sync.Mutex
	dials := 0
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dials++
		n := dials
		mu.Unlock()
		if n > 1 {
			return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	g := &fakeGate{}
	c := newGated(t, srv.URL, "pw-123456", g, isapi.WithHTTPClient(&http.Client{Transport: tr}))
	if _, err := c.Status(t.Context()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial refused: %v", err)
	}
	g.check(t, 1, isapi.LoginNotSent)
	if plain, authorized, _ := s.counts(); plain != 1 || authorized != 0 {
		t.Fatalf("server saw %d challenges and %d authorised requests, want 1 and 0", plain, authorized)
	}
}

func TestGateContextEndedBeforeWritingIsNotSent(t *testing.T) {
	s := &authServer{password: "pw-123456"}
	srv := s.start(t)
	ctx, cancel := context.WithCancel(t.Context())
	g := &fakeGate{onBegin: cancel} // the caller gives up while the gate admits
	c := newGated(t, srv.URL, "pw-123456", g)
	if _, err := c.Status(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	g.check(t, 1, isapi.LoginNotSent)
	if plain, authorized, _ := s.counts(); plain+authorized != 0 {
		t.Fatalf("server saw %d requests", plain+authorized)
	}
}

type refusal struct{ why string }

func (r *refusal) Error() string { return "budget spent: " + r.why }

func TestGateRefusalSendsNothing(t *testing.T) {
	s := &authServer{password: "pw-123456"}
	srv := s.start(t)
	refused := &refusal{why: "2 failed logins in 30m"}
	g := &fakeGate{refuse: refused}
	c := newGated(t, srv.URL, "pw-123456", g)
	_, err := c.Status(t.Context())
	var r *refusal
	if !errors.Is(err, refused) || !errors.As(err, &r) || r.why != refused.why {
		t.Fatalf("refused login: %v", err)
	}
	if plain, authorized, _ := s.counts(); plain+authorized != 0 {
		t.Fatalf("server saw %d requests after a refusal", plain+authorized)
	}
	g.check(t, 1)
}

func TestGateOneLoginAtATime(t *testing.T) {
	// Every login loses its answer, so every caller needs one of its own:
	// they must come one after the other, never two in flight.
	s := &authServer{password: "pw-123456", onAuthorized: hijackAndClose}
	srv := s.start(t)
	g := &fakeGate{}
	c := newGated(t, srv.URL, "pw-123456", g)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.DeviceInfo(t.Context()); err == nil {
				t.Error("no error for a lost answer")
			}
		})
	}
	wg.Wait()
	g.mu.Lock()
	begins, maxOpen := g.begins, g.maxOpen
	g.mu.Unlock()
	if begins != 8 || maxOpen != 1 {
		t.Fatalf("%d logins, at most %d at once; want 8, 1", begins, maxOpen)
	}
	if _, authorized, _ := s.counts(); authorized != 8 {
		t.Fatalf("server saw %d requests with credentials, want 8", authorized)
	}

	// With a wrong password, concurrent callers cost one login in all.
	s2 := &authServer{password: "right"}
	srv2 := s2.start(t)
	g2 := &fakeGate{}
	c2 := newGated(t, srv2.URL, "wrong-password", g2)
	for range 8 {
		wg.Go(func() {
			if _, err := c2.DeviceInfo(t.Context()); !errors.Is(err, isapi.ErrBadCredentials) {
				t.Errorf("wrong password: %v", err)
			}
		})
	}
	wg.Wait()
	g2.check(t, 1, isapi.LoginRejected)
}

func TestGateLockedAnswer(t *testing.T) {
	s := &authServer{password: "right", onAuthorized: func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"statusCode":4,"subStatusCode":"badAuthorization","lockStatus":"lock","retryTimes":0,"resLockTime":1800}`)
		return true
	}}
	srv := s.start(t)
	g := &fakeGate{}
	c := newGated(t, srv.URL, "wrong-password", g)
	_, err := c.Status(t.Context())
	var locked *isapi.LockedError
	if !errors.As(err, &locked) || !locked.PasswordRejected {
		t.Fatalf("locked: %v", err)
	}
	g.check(t, 1, isapi.LoginLocked)
	if g.lockLeft[0] != 30*time.Minute {
		t.Fatalf("lock left %s", g.lockLeft[0])
	}
}

func TestGateHearsRejectionOfAnAcceptedPassword(t *testing.T) {
	s := &authServer{password: "first-password"}
	srv := s.start(t)
	g := &fakeGate{}
	c := newGated(t, srv.URL, "first-password", g)
	if _, err := c.Status(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.password = "changed-behind-our-back"
	s.mu.Unlock()
	if _, err := c.Status(t.Context()); !errors.Is(err, isapi.ErrBadCredentials) {
		t.Fatalf("after the change: %v", err)
	}
	g.check(t, 1, isapi.LoginAccepted)
	g.mu.Lock()
	defer g.mu.Unlock()
	if fmt.Sprint(g.observed) != fmt.Sprint([]isapi.LoginResult{isapi.LoginRejected}) {
		t.Fatalf("observed %v, want [rejected]", g.observed)
	}
}

// TestCredentialRequestsAreNeverResent: net/http re-sends a replayable
// request when a reused keep-alive connection fails after writing it. A
// request with credentials must reach the gateway once.
func TestCredentialRequestsAreNeverResent(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(*isapi.Client) error
	}{
		{"GET", func(c *isapi.Client) error { _, err := c.Status(t.Context()); return err }},
		{"PUT without body", func(c *isapi.Client) error { _, err := c.Reboot(t.Context()); return err }},
		{"PUT with body", func(c *isapi.Client) error {
			_, err := c.SetTime(t.Context(), &isapi.TimeSettings{Mode: isapi.TimeModeNTP, TimeZone: "CST-8:00:00"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &authServer{password: "pw-123456", onAuthorized: hijackAndClose}
			srv := s.start(t)
			var challengeAddr string // under s.mu
			s.onChallenge = func(_ http.ResponseWriter, r *http.Request) {
				s.mu.Lock()
				challengeAddr = r.RemoteAddr
				s.mu.Unlock()
			}
			c, err := isapi.New(srv.URL, "admin", "pw-123456")
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.call(c); err == nil {
				t.Fatal("no error for a lost answer")
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if len(s.authorized) != 1 {
				t.Fatalf("server saw %d requests with credentials, want 1: %v", len(s.authorized), s.authorized)
			}
			// The test means something only if the request rode on the
			// challenge's kept-alive connection (the case net/http retries).
			if !strings.HasSuffix(s.authorized[0], " "+challengeAddr) {
				t.Fatalf("the authorised request came on a new connection (%s, challenge from %s)", s.authorized[0], challengeAddr)
			}
		})
	}
}

func TestCredentialRequestFraming(t *testing.T) {
	s := &authServer{password: "pw-123456"}
	srv := s.start(t)
	c, err := isapi.New(srv.URL, "admin", "pw-123456")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reboot(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetTime(t.Context(), &isapi.TimeSettings{Mode: isapi.TimeModeNTP, TimeZone: "CST-8:00:00"}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.framing[0] != "te=[] cl=0" || s.bodies[0] != "" {
		t.Errorf("GET: %s, body %q (want no body, no chunked encoding)", s.framing[0], s.bodies[0])
	}
	if s.framing[1] != "te=[] cl=0" || s.bodies[1] != "" {
		t.Errorf("PUT without body: %s, body %q", s.framing[1], s.bodies[1])
	}
	if want := fmt.Sprintf("te=[] cl=%d", len(s.bodies[2])); s.framing[2] != want || !strings.Contains(s.bodies[2], `"timeMode":"NTP"`) {
		t.Errorf("PUT with body: %s, body %q", s.framing[2], s.bodies[2])
	}
}

func TestBasicOverPlainHTTPIsRefused(t *testing.T) {
	s := &authServer{password: "pw-123456", basicOnly: true}
	srv := s.start(t)
	g := &fakeGate{}
	c := newGated(t, srv.URL, "pw-123456", g, isapi.WithGatewayName("gw-7"))
	for range 2 {
		_, err := c.Status(t.Context())
		var insecure *isapi.InsecureAuthError
		if !errors.Is(err, isapi.ErrInsecureAuth) || !errors.As(err, &insecure) || insecure.Gateway != "gw-7" ||
			!strings.Contains(err.Error(), "gw-7") || strings.Contains(err.Error(), "%!") {
			t.Fatalf("Basic over http: %v", err)
		}
	}
	if plain, authorized, _ := s.counts(); plain != 1 || authorized != 0 {
		t.Fatalf("server saw %d challenges and %d requests with credentials; want 1 and 0", plain, authorized)
	}
	// The second call knows the gateway wants Basic: it does not even begin a login.
	g.check(t, 1, isapi.LoginNotSent)

	// Without a name, the error names the host.
	c2, _ := isapi.New(srv.URL, "admin", "pw-123456")
	if _, err := c2.Status(t.Context()); !errors.Is(err, isapi.ErrInsecureAuth) || !strings.Contains(err.Error(), strings.TrimPrefix(srv.URL, "http://")) {
		t.Fatalf("unnamed: %v", err)
	}
}

func TestBasicOverHTTPSIsAllowed(t *testing.T) {
	s := &authServer{password: "pw-123456", basicOnly: true}
	srv := httptest.NewTLSServer(s)
	t.Cleanup(srv.Close)
	c, err := isapi.New(srv.URL, "admin", "pw-123456", isapi.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(t.Context()); err != nil {
		t.Fatalf("Basic over https: %v", err)
	}
	if _, authorized, failed := s.counts(); authorized != 1 || failed != 0 {
		t.Fatalf("server saw %d requests with credentials, %d failed", authorized, failed)
	}
}

func TestWritesMustBeProven(t *testing.T) {
	for _, body := range []string{"", "  \n", `{"DeviceInfo":{}}`, "<html>ok</html>"} {
		s := &authServer{password: "pw-123456", answer: func(r *http.Request) (int, string) {
			if r.Method == http.MethodGet {
				return http.StatusOK, `{"DeviceStatus":{"deviceUpTime":42}}`
			}
			return http.StatusOK, body
		}}
		srv := s.start(t)
		c, _ := isapi.New(srv.URL, "admin", "pw-123456")
		_, err := c.Reboot(t.Context())
		var me *isapi.MalformedResponseError
		if !errors.Is(err, isapi.ErrMalformedResponse) || !errors.As(err, &me) || me.HTTPStatus != 200 {
			t.Errorf("reboot answered %q: %v", body, err)
		}
		_, err = c.SetTime(t.Context(), &isapi.TimeSettings{Mode: isapi.TimeModeNTP})
		if !errors.Is(err, isapi.ErrMalformedResponse) {
			t.Errorf("PUT time answered %q: %v", body, err)
		}
	}
}

func TestErrorsNeverQuoteTheGateway(t *testing.T) {
	const pw = `Pa<ss&"word1`
	echo := `{"requestURL":"/ISAPI/Security/users?password=Pa%3Css%26%22word1","statusCode":6,` +
		`"statusString":"Invalid Content","subStatusCode":"badParameters",` +
		`"errorMsg":"bad value Pa\u003css\u0026\"word1 in {\"password\":\"Pa\u003css\u0026\\\"word1\"}"}`
	s := &authServer{password: pw, answer: func(*http.Request) (int, string) { return http.StatusBadRequest, echo }}
	srv := s.start(t)
	c, _ := isapi.New(srv.URL, "admin", pw)
	_, err := c.Reboot(t.Context())
	var se *isapi.StatusError
	if !errors.As(err, &se) || !errors.Is(err, isapi.ErrInvalidContent) {
		t.Fatalf("error answer: %v", err)
	}
	if got, want := err.Error(), "isapi: PUT /ISAPI/System/reboot: HTTP 400, statusCode 6 (Invalid Content) badParameters"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	for _, field := range []string{se.Status.ErrorMsg, se.Status.RequestURL} {
		if strings.Contains(field, "Pa<ss") || strings.Contains(field, `Pa\u003css`) || strings.Contains(field, "Pa%3Css") || !strings.Contains(field, "[redacted]") {
			t.Fatalf("a field keeps the password: %q", field)
		}
	}
	// Tokens that do not look like status tokens are left out.
	s.mu.Lock()
	s.answer = func(*http.Request) (int, string) {
		return http.StatusOK, `{"statusCode":4,"statusString":"<script>","subStatusCode":"` + strings.Repeat("x", 65) + `"}`
	}
	s.mu.Unlock()
	_, err = c.Reboot(t.Context())
	if got, want := fmt.Sprint(err), "isapi: PUT /ISAPI/System/reboot: HTTP 200, statusCode 4"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestUnparsableUptimeFormatsSafely(t *testing.T) {
	for _, body := range []string{
		`{"DeviceStatus":{"deviceUpTime":"abc"}}`,
		`{"DeviceStatus":{"deviceUpTime":1e999}}`,
		`{"DeviceStatus":{"deviceUpTime":{"x":1}}}`,
		`{"DeviceStatus":{"deviceUpTime":5,"CPUList":[{"CPU":{"cpuUtilization":"12345678901234"}}]}}`,
	} {
		s := &authServer{password: "pw-123456", answer: func(*http.Request) (int, string) { return http.StatusOK, body }}
		srv := s.start(t)
		c, _ := isapi.New(srv.URL, "admin", "pw-123456")
		_, err := c.Status(t.Context())
		text := fmt.Sprintf("%v %+v %s", err, err, err)
		if !errors.Is(err, isapi.ErrMalformedResponse) || strings.Contains(text, "%!") || strings.Contains(text, "PANIC") ||
			strings.Contains(text, "abc") || strings.Contains(text, "12345678901234") {
			t.Errorf("%s: %s", body, text)
		}
	}
}
