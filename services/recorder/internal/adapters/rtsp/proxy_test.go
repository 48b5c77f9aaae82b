package rtsp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icholy/digest"

	"mediagw/pkg/loginbudget"
	rtspmsg "mediagw/pkg/rtsp"
	"mediagw/services/recorder/internal/app"
)

const (
	testUser = "admin"
	testPass = "s3cret-Pa55"
	realm    = "IP Camera(test)"
)

// fakeGateway is a minimal RTSP server with Digest (qop=auth) or Basic
// authentication that records what it was sent.
type fakeGateway struct {
	t         *testing.T
	ln        net.Listener
	basicOnly bool
	password  string
	frames    [][]byte // sent after PLAY
	// A refused request that carried credentials gets no answer: with
	// lost401 the connection is closed, with late401 it is left open.
	lost401, late401 bool

	mu       sync.Mutex
	requests []*rtspmsg.Message
	authOK   map[string]int // method -> authorised requests
	fromCli  [][]byte
	nonce    int
	current  string // the nonce the gateway accepts now
	stale    bool   // the last refusal was for an outdated nonce only
}

func newFakeGateway(t *testing.T) *fakeGateway {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{t: t, ln: ln, password: testPass, authOK: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go g.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return g
}

func (g *fakeGateway) base() string { return "rtsp://" + g.ln.Addr().String() }

func (g *fakeGateway) challenges() []string {
	g.mu.Lock()
	stale := g.stale
	if g.current == "" || stale {
		g.nonce++
		g.current = fmt.Sprintf("nonce%d", g.nonce)
	}
	n := g.current
	g.mu.Unlock()
	if g.basicOnly {
		return []string{fmt.Sprintf(`Basic realm="%s"`, realm)}
	}
	return []string{
		fmt.Sprintf(`Digest realm="%s", nonce="%s", qop="auth", algorithm=MD5, stale=%v`, realm, n, stale),
		fmt.Sprintf(`Basic realm="%s"`, realm),
	}
}

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// authorised checks an Authorization header independently of the proxy's code.
func (g *fakeGateway) authorised(method, uri, h string) bool {
	if rest, ok := strings.CutPrefix(h, "Basic "); ok {
		return rest == base64.StdEncoding.EncodeToString([]byte(testUser+":"+g.password))
	}
	if g.basicOnly {
		return false
	}
	c, err := digest.ParseCredentials(h)
	if err != nil || c.Username != testUser || c.Realm != realm || c.URI != uri || c.QOP != "auth" {
		return false
	}
	ha1 := md5hex(testUser + ":" + realm + ":" + g.password)
	ha2 := md5hex(method + ":" + uri)
	ok := c.Response == md5hex(fmt.Sprintf("%s:%s:%08x:%s:auth:%s", ha1, c.Nonce, c.Nc, c.Cnonce, ha2))
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stale = ok && c.Nonce != g.current
	return ok && !g.stale
}

// expireNonce makes the gateway refuse the current nonce as stale.
func (g *fakeGateway) expireNonce() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.current = "expired"
}

func (g *fakeGateway) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	for {
		b, err := r.Peek(1)
		if err != nil {
			return
		}
		if b[0] == '$' {
			f, err := peekFrame(r)
			if err != nil {
				return
			}
			g.mu.Lock()
			g.fromCli = append(g.fromCli, append([]byte(nil), f...))
			g.mu.Unlock()
			r.Discard(len(f))
			continue
		}
		m, err := rtspmsg.Read(r, rtspmsg.Limits{})
		if err != nil {
			return
		}
		g.mu.Lock()
		g.requests = append(g.requests, m)
		g.mu.Unlock()
		method, uri := m.Method, m.URI
		resp := rtspmsg.NewResponse(200)
		resp.Header.Add("CSeq", m.Header.Get("CSeq"))
		if !strings.HasPrefix(uri, g.base()) {
			resp.Status, resp.Reason = 400, "Bad Request"
		} else if !g.authorised(method, uri, m.Header.Get("Authorization")) {
			if m.Header.Get("Authorization") != "" && g.lost401 {
				return
			}
			if m.Header.Get("Authorization") != "" && g.late401 {
				continue
			}
			resp.Status, resp.Reason = 401, "Unauthorized"
			for _, ch := range g.challenges() {
				resp.Header.Add("WWW-Authenticate", ch)
			}
		} else {
			g.mu.Lock()
			g.authOK[method]++
			g.mu.Unlock()
			switch method {
			case "DESCRIBE":
				resp.Header.Add("Content-Base", uri+"/")
				resp.Header.Add("Content-Type", "application/sdp")
				resp.Body = []byte("v=0\r\nm=video 0 RTP/AVP 96\r\na=control:trackID=1\r\n")
			case "SETUP":
				resp.Header.Add("Session", "12345;timeout=60")
				resp.Header.Add("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")
			}
		}
		resp.Write(w)
		if method == "PLAY" && resp.Status == 200 {
			for _, f := range g.frames {
				w.Write(f)
			}
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// withCredentials counts the requests that carried an Authorization header.
func (g *fakeGateway) withCredentials() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, r := range g.requests {
		if r.Header.Get("Authorization") != "" {
			n++
		}
	}
	return n
}

func (g *fakeGateway) authorisedCount(method string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.authOK[method]
}

// client plays ffmpeg's part against the proxy.
type client struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	seq int
}

func dial(t *testing.T, p *Proxy) *client {
	t.Helper()
	host := strings.TrimPrefix(p.localBase, "rtsp://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, r: bufio.NewReaderSize(c, frameBuffer)}
}

func (c *client) do(method, uri string) *rtspmsg.Message {
	c.t.Helper()
	c.seq++
	m := rtspmsg.NewRequest(method, uri)
	m.Header = rtspmsg.Header{{Name: "CSeq", Value: fmt.Sprint(c.seq)}, {Name: "User-Agent", Value: "Lavf59"}}
	if err := m.Write(c.c); err != nil {
		c.t.Fatal(err)
	}
	resp, err := rtspmsg.Read(c.r, rtspmsg.Limits{})
	if err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	if got := resp.Header.Get("CSeq"); got != fmt.Sprint(c.seq) {
		c.t.Fatalf("%s: response CSeq %q, want the client's %d", method, got, c.seq)
	}
	return resp
}

func startProxy(t *testing.T, cfg Config) *Proxy {
	t.Helper()
	p, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// logins is the login budget's part: it admits every login (or refuses
// with err) and records what each came to.
type logins struct {
	mu      sync.Mutex
	err     error
	begun   int
	refused int
	results []loginbudget.Result
	done    chan loginbudget.Result
}

func newLogins() *logins { return &logins{done: make(chan loginbudget.Result, 16)} }

func (l *logins) login(context.Context) (*app.Login, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	l.begun++
	return &app.Login{User: testUser, Password: testPass, Refused: func(context.Context) {
		l.mu.Lock()
		l.refused++
		l.mu.Unlock()
	}, Finish: func(_ context.Context, r loginbudget.Result) {
		l.mu.Lock()
		l.results = append(l.results, r)
		l.mu.Unlock()
		l.done <- r
	}}, nil
}

func (l *logins) got() (int, []loginbudget.Result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.begun, append([]loginbudget.Result(nil), l.results...)
}

// next waits for the next finished login.
func (l *logins) next(t *testing.T) loginbudget.Result {
	t.Helper()
	select {
	case r := <-l.done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no login finished")
		return ""
	}
}

// expectClosed asserts that the relay closed the client's connection.
func (c *client) expectClosed() {
	c.t.Helper()
	if _, err := c.r.ReadByte(); err == nil {
		c.t.Fatal("the relay kept the connection open")
	}
}

func frame(ch byte, payload string) []byte {
	return append([]byte{'$', ch, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

func TestDigestSessionWithFramesAndKeepAlive(t *testing.T) {
	testDigestSession(t, dial)
}

// The in-process recorder's connection (Dial, in memory) gets the same
// session as ffmpeg's loopback one.
func TestDigestSessionInMemory(t *testing.T) {
	testDigestSession(t, dialMemory)
}

func dialMemory(t *testing.T, p *Proxy) *client {
	t.Helper()
	c, err := p.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, r: bufio.NewReaderSize(c, frameBuffer)}
}

func testDigestSession(t *testing.T, dial func(*testing.T, *Proxy) *client) {
	g := newFakeGateway(t)
	big := strings.Repeat("x", 60000)
	g.frames = [][]byte{frame(0, "first"), frame(1, "rtcp"), frame(0, big)}
	var playing atomic.Int32
	var firstAt atomic.Int64
	l := newLogins()
	p := startProxy(t, Config{
		Upstream: g.base() + "/Streaming/Channels/101?transportmode=unicast",
		Login:    l.login,
		Playing:  func(at time.Time) { playing.Add(1); firstAt.Store(at.UnixNano()) },
	})
	if strings.Contains(p.URL(), g.base()) || !strings.HasSuffix(p.URL(), "/Streaming/Channels/101?transportmode=unicast") {
		t.Fatalf("proxy URL %q", p.URL())
	}
	c := dial(t, p)
	for _, method := range []string{"OPTIONS", "DESCRIBE"} {
		if r := c.do(method, p.URL()); r.Status != 200 {
			t.Fatalf("%s = %d %s", method, r.Status, r.Reason)
		}
	}
	// The gateway's Content-Base comes back unchanged; ffmpeg then uses it
	// on this connection and the proxy passes it on.
	if r := c.do("SETUP", g.base()+"/Streaming/Channels/101?transportmode=unicast/trackID=1"); r.Status != 200 {
		t.Fatalf("SETUP = %d", r.Status)
	}
	before := time.Now()
	if r := c.do("PLAY", p.URL()); r.Status != 200 {
		t.Fatalf("PLAY = %d", r.Status)
	}
	for i, want := range g.frames {
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c.r, got); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d altered", i)
		}
	}
	if playing.Load() != 1 || time.Unix(0, firstAt.Load()).Before(before) {
		t.Fatalf("Playing called %d times at %v", playing.Load(), time.Unix(0, firstAt.Load()))
	}
	if got, want := p.ReceivedBytes(), uint64(len(g.frames[0])+len(g.frames[1])+len(g.frames[2])); got != want {
		t.Fatalf("ReceivedBytes = %d, want %d", got, want)
	}
	// RTCP from the client reaches the gateway; keep-alives are authorised.
	c.c.Write(frame(1, "receiver report"))
	if r := c.do("GET_PARAMETER", p.URL()); r.Status != 200 {
		t.Fatalf("GET_PARAMETER = %d", r.Status)
	}
	for _, m := range []string{"OPTIONS", "DESCRIBE", "SETUP", "PLAY", "GET_PARAMETER"} {
		if g.authorisedCount(m) != 1 {
			t.Errorf("%s authorised %d times at the gateway, want 1", m, g.authorisedCount(m))
		}
	}
	// One login (the first OPTIONS after the challenge), accepted; the
	// rest rode on it.
	if begun, res := l.got(); begun != 1 || !slices.Equal(res, []loginbudget.Result{loginbudget.Accepted}) {
		t.Errorf("logins %d, results %v; want one, accepted", begun, res)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.fromCli) != 1 || !bytes.Equal(g.fromCli[0], frame(1, "receiver report")) {
		t.Errorf("gateway got client frames %q", g.fromCli)
	}
	for _, r := range g.requests {
		if strings.Contains(r.Header.Get("Authorization"), testPass) {
			t.Errorf("password sent in clear with Digest on offer: %s %s", r.Method, r.URI)
		}
	}
}

func TestStaleNonceIsAnsweredAgain(t *testing.T) {
	g := newFakeGateway(t)
	l := newLogins()
	p := startProxy(t, Config{Upstream: g.base() + "/x", Login: l.login})
	c := dial(t, p)
	if r := c.do("DESCRIBE", p.URL()); r.Status != 200 {
		t.Fatalf("DESCRIBE = %d", r.Status)
	}
	g.expireNonce()
	if r := c.do("GET_PARAMETER", p.URL()); r.Status != 200 {
		t.Fatalf("GET_PARAMETER after the nonce expired = %d", r.Status)
	}
	if r := c.do("GET_PARAMETER", p.URL()); r.Status != 200 || g.authorisedCount("GET_PARAMETER") != 2 {
		t.Fatalf("second GET_PARAMETER = %d", r.Status)
	}
	l.mu.Lock()
	refused := l.refused
	l.mu.Unlock()
	if begun, res := l.got(); begun != 1 || !slices.Equal(res, []loginbudget.Result{loginbudget.Accepted}) || refused != 0 {
		t.Fatalf("logins %d %v, refusals %d: a stale nonce is no new login and no rejection", begun, res, refused)
	}
}

// A gateway that offers only Basic would get the password in clear text:
// the relay refuses, naming the gateway, sends no credentials and asks the
// budget for no login.
func TestBasicOnlyGatewayIsRefused(t *testing.T) {
	g := newFakeGateway(t)
	g.basicOnly = true
	l := newLogins()
	failed := make(chan error, 1)
	p := startProxy(t, Config{Gateway: "gw-basic", Upstream: g.base() + "/Streaming/Channels/101", Login: l.login,
		AuthFailed: func(err error) { failed <- err }})
	c := dial(t, p)
	if r := c.do("DESCRIBE", p.URL()); r.Status != 401 {
		t.Fatalf("DESCRIBE = %d, want the gateway's 401", r.Status)
	}
	c.expectClosed()
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "gw-basic") || !strings.Contains(err.Error(), "Basic") || strings.Contains(err.Error(), testPass) {
			t.Errorf("error %q: want it to name the gateway and Basic, without the password", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AuthFailed not called")
	}
	if begun, _ := l.got(); begun != 0 || g.withCredentials() != 0 {
		t.Fatalf("%d logins, %d requests with credentials; want none", begun, g.withCredentials())
	}
}

// A wrong password: one request with credentials, reported rejected; the
// 401 goes to ffmpeg and the connection ends (the next one logs in
// through the budget again, which refuses a rejected password).
func TestWrongPasswordIsRejectedOnceAndEndsTheSession(t *testing.T) {
	g := newFakeGateway(t)
	g.password = "changed"
	l := newLogins()
	p := startProxy(t, Config{Upstream: g.base() + "/Streaming/Channels/101", Login: l.login})
	c := dial(t, p)
	if r := c.do("DESCRIBE", p.URL()); r.Status != 401 {
		t.Fatalf("DESCRIBE with a wrong password = %d, want 401", r.Status)
	}
	c.expectClosed()
	if r := l.next(t); r != loginbudget.Rejected {
		t.Fatalf("login came to %s, want rejected", r)
	}
	if begun, _ := l.got(); begun != 1 || g.withCredentials() != 1 {
		t.Fatalf("%d logins, %d requests with credentials; want exactly one of each", begun, g.withCredentials())
	}
}

// The budget refuses: nothing with credentials is sent, the gateway's 401
// goes to ffmpeg and the connection ends.
func TestRefusedLoginSendsNothing(t *testing.T) {
	g := newFakeGateway(t)
	l := newLogins()
	l.err = &loginbudget.RefusedError{Gateway: "gw", Refusal: loginbudget.Refusal{Reason: loginbudget.ReasonRejected}}
	p := startProxy(t, Config{Upstream: g.base() + "/x", Login: l.login})
	c := dial(t, p)
	if r := c.do("OPTIONS", p.URL()); r.Status != 401 {
		t.Fatalf("OPTIONS = %d, want the gateway's 401", r.Status)
	}
	c.expectClosed()
	if g.withCredentials() != 0 {
		t.Fatalf("%d requests with credentials after a refusal", g.withCredentials())
	}
}

// The gateway reads the login and closes the connection: the login is
// unanswered (it counts) and is not sent again.
func TestLostAnswerIsUnansweredAndNotResent(t *testing.T) {
	g := newFakeGateway(t)
	g.password, g.lost401 = "changed", true
	l := newLogins()
	p := startProxy(t, Config{Upstream: g.base() + "/x", Login: l.login})
	c := dial(t, p)
	c.seq++
	m := rtspmsg.NewRequest("DESCRIBE", p.URL())
	m.Header = rtspmsg.Header{{Name: "CSeq", Value: "1"}}
	if err := m.Write(c.c); err != nil {
		t.Fatal(err)
	}
	if r := l.next(t); r != loginbudget.Unanswered {
		t.Fatalf("login came to %s, want unanswered", r)
	}
	c.expectClosed()
	if begun, _ := l.got(); begun != 1 || g.withCredentials() != 1 {
		t.Fatalf("%d logins, %d requests with credentials; want one of each", begun, g.withCredentials())
	}
}

// No answer in LoginTimeout: the relay closes the connection and the login
// is unanswered.
func TestLoginTimeoutIsUnanswered(t *testing.T) {
	g := newFakeGateway(t)
	g.password, g.late401 = "changed", true
	l := newLogins()
	p := startProxy(t, Config{Upstream: g.base() + "/x", Login: l.login, LoginTimeout: 200 * time.Millisecond})
	c := dial(t, p)
	m := rtspmsg.NewRequest("DESCRIBE", p.URL())
	m.Header = rtspmsg.Header{{Name: "CSeq", Value: "1"}}
	if err := m.Write(c.c); err != nil {
		t.Fatal(err)
	}
	if r := l.next(t); r != loginbudget.Unanswered {
		t.Fatalf("login came to %s, want unanswered", r)
	}
	c.expectClosed()
	if g.withCredentials() != 1 {
		t.Fatalf("%d requests with credentials, want 1", g.withCredentials())
	}
}

// ffmpeg gives up while the budget admits the login: the admitted login
// is reported as not sent, and nothing reached the gateway.
func TestLoginAfterTheClientLeftIsNotSent(t *testing.T) {
	g := newFakeGateway(t)
	l := newLogins()
	var c *client
	p := startProxy(t, Config{Upstream: g.base() + "/x", Login: func(ctx context.Context) (*app.Login, error) {
		c.c.Close()
		<-ctx.Done() // the session noticed
		return l.login(ctx)
	}})
	c = dial(t, p)
	m := rtspmsg.NewRequest("DESCRIBE", p.URL())
	m.Header = rtspmsg.Header{{Name: "CSeq", Value: "1"}}
	if err := m.Write(c.c); err != nil {
		t.Fatal(err)
	}
	if r := l.next(t); r != loginbudget.NotSent {
		t.Fatalf("login came to %s, want not-sent", r)
	}
	if g.withCredentials() != 0 {
		t.Fatalf("%d requests with credentials reached the gateway", g.withCredentials())
	}
}

// The gateway refuses credentials it had accepted on the connection (its
// password changed): reported (a failed login all the same), no re-send, no
// new login on this connection; the 401 goes to ffmpeg and the connection
// ends.
func TestRefusalAfterAcceptanceEndsTheSession(t *testing.T) {
	g := newFakeGateway(t)
	l := newLogins()
	p := startProxy(t, Config{Upstream: g.base() + "/x", Login: l.login})
	c := dial(t, p)
	if r := c.do("DESCRIBE", p.URL()); r.Status != 200 {
		t.Fatalf("DESCRIBE = %d", r.Status)
	}
	g.mu.Lock()
	g.password = "rotated"
	g.mu.Unlock()
	before := g.withCredentials()
	if r := c.do("GET_PARAMETER", p.URL()); r.Status != 401 {
		t.Fatalf("GET_PARAMETER = %d, want 401", r.Status)
	}
	c.expectClosed()
	if begun, _ := l.got(); begun != 1 || g.withCredentials() != before+1 {
		t.Fatalf("%d logins, %d more requests with credentials; want no new login and no re-send", begun, g.withCredentials()-before)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refused != 1 {
		t.Fatalf("the refusal was reported %d times, want once", l.refused)
	}
}

func TestGatewayDownClosesClient(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	p := startProxy(t, Config{Upstream: "rtsp://" + addr + "/x", Login: newLogins().login})
	c := dial(t, p)
	if _, err := c.r.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("read from proxy with the gateway down = %v, want EOF", err)
	}
}

func TestListenRejectsBadUpstream(t *testing.T) {
	for _, u := range []string{"http://h/x", "rtsp:///x", "rtsp://admin:" + testPass + "@h/x", "::"} {
		_, err := Listen(Config{Upstream: u})
		if err == nil {
			t.Errorf("Listen(%q) accepted", u)
			continue
		}
		if strings.Contains(err.Error(), testPass) {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestCloseEndsSessions(t *testing.T) {
	g := newFakeGateway(t)
	p, err := Listen(Config{Upstream: g.base() + "/x", Login: newLogins().login})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	c.do("OPTIONS", p.URL())
	m := dialMemory(t, p)
	m.do("OPTIONS", p.URL())
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("client connection still open after Close")
	}
	if _, err := m.r.ReadByte(); err == nil {
		t.Fatal("in-memory connection still open after Close")
	}
	if _, err := p.Dial(); err == nil {
		t.Fatal("Dial after Close succeeded")
	}
}

// Once the stream plays, the in-memory client reads the gateway's
// connection itself: the session still answers a stale nonce once, its
// read deadline still times a read out (and the session goes on), and a
// refusal of the accepted credentials still reaches the client and ends
// the session.
func TestInMemoryClientAfterPlay(t *testing.T) {
	g := newFakeGateway(t)
	g.frames = [][]byte{frame(0, "first"), frame(0, strings.Repeat("y", 40000))}
	l := newLogins()
	p := startProxy(t, Config{Upstream: g.base() + "/x", Login: l.login})
	c := dialMemory(t, p)
	for _, m := range []string{"DESCRIBE", "SETUP", "PLAY"} {
		if r := c.do(m, p.URL()); r.Status != 200 {
			t.Fatalf("%s = %d", m, r.Status)
		}
	}
	for i, want := range g.frames {
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c.r, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	g.expireNonce()
	if r := c.do("GET_PARAMETER", p.URL()); r.Status != 200 {
		t.Fatalf("GET_PARAMETER after the nonce expired = %d", r.Status)
	}
	c.c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if _, err := c.r.ReadByte(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline = %v, want a timeout", err)
	}
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if r := c.do("GET_PARAMETER", p.URL()); r.Status != 200 {
		t.Fatalf("GET_PARAMETER after a timed-out read = %d", r.Status)
	}
	g.mu.Lock()
	g.password = "rotated"
	g.mu.Unlock()
	if r := c.do("GET_PARAMETER", p.URL()); r.Status != 401 {
		t.Fatalf("GET_PARAMETER = %d, want 401", r.Status)
	}
	c.expectClosed()
	l.mu.Lock()
	refused := l.refused
	l.mu.Unlock()
	if begun, res := l.got(); begun != 1 || !slices.Equal(res, []loginbudget.Result{loginbudget.Accepted}) || refused != 1 {
		t.Fatalf("logins %d %v, refusals %d; want one accepted login, one refusal reported", begun, res, refused)
	}
}
