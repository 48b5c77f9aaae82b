package rtsp

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/icholy/digest"
	"github.com/pion/rtp"

	rtspmsg "mediagw/pkg/rtsp"
	"mediagw/testsupport/testkit"
)

// mediaDir is shared by the package's tests so the media is rendered once
// per test run.
var mediaDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gatewaysim-rtsp-media-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	mediaDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const (
	testUser     = "admin"
	testPassword = "Passw0rd!"
)

// testEnv is a running server whose credentials and stream availability the
// test controls, as the simulator does.
type testEnv struct {
	srv  *Server
	addr string

	mu       sync.Mutex
	password string
	offline  map[string]bool
}

func newTestEnv(t *testing.T, tune ...func(*Server)) *testEnv {
	t.Helper()
	return newTestEnvWith(t, nil, tune...)
}

// newTestEnvWith is newTestEnv with a chance to change the Config first.
func newTestEnvWith(t *testing.T, configure func(*Config), tune ...func(*Server)) *testEnv {
	t.Helper()
	env := &testEnv{password: testPassword, offline: make(map[string]bool)}
	cfg := Config{
		Credentials: func() (string, string) {
			env.mu.Lock()
			defer env.mu.Unlock()
			return testUser, env.password
		},
		Available: func(path string) bool {
			env.mu.Lock()
			defer env.mu.Unlock()
			return strings.HasPrefix(path, "/Streaming/Channels/") && !env.offline[path]
		},
		MediaDir: mediaDir,
		Logger:   slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	for _, f := range tune {
		f(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	env.srv, env.addr = srv, ln.Addr().String()
	return env
}

func (e *testEnv) setOffline(path string, offline bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offline[path] = offline
}

func (e *testEnv) url(path string) string {
	return "rtsp://" + e.addr + path
}

func (e *testEnv) urlWithCredentials(path, password string) string {
	return "rtsp://" + testUser + ":" + password + "@" + e.addr + path
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// rtspClient is a minimal RTSP client speaking the wire protocol directly,
// so tests see exactly what the server sends.
type rtspClient struct {
	t    *testing.T
	nc   net.Conn
	br   *bufio.Reader
	cseq int
	// authorize, if set, returns the Authorization header for a request.
	authorize func(method, uri string) string
	session   string
	// rtcp collects the packets received on channel 1 while reading RTP.
	rtcp [][]byte
}

type rtspResponse struct {
	status int
	header map[string][]string // lower-case names
	body   []byte
}

func (r *rtspResponse) get(name string) string {
	if v := r.header[strings.ToLower(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func dialRTSP(t *testing.T, addr string) *rtspClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return newRTSPClient(t, nc)
}

func newRTSPClient(t *testing.T, nc net.Conn) *rtspClient {
	t.Cleanup(func() { _ = nc.Close() })
	return &rtspClient{t: t, nc: nc, br: bufio.NewReaderSize(nc, 256<<10)}
}

func (c *rtspClient) send(method, uri string, header ...string) {
	c.t.Helper()
	c.cseq++
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s RTSP/1.0\r\nCSeq: %d\r\n", method, uri, c.cseq)
	if c.authorize != nil {
		fmt.Fprintf(&b, "Authorization: %s\r\n", c.authorize(method, uri))
	}
	if c.session != "" {
		fmt.Fprintf(&b, "Session: %s\r\n", c.session)
	}
	for _, h := range header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.nc, b.String()); err != nil {
		c.t.Fatalf("%s: write: %v", method, err)
	}
}

// do sends a request and returns its response, skipping interleaved media.
func (c *rtspClient) do(method, uri string, header ...string) *rtspResponse {
	c.t.Helper()
	c.send(method, uri, header...)
	resp, err := c.readResponse()
	if err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	if got := resp.get("CSeq"); got != strconv.Itoa(c.cseq) {
		c.t.Fatalf("%s: CSeq %q, want %d", method, got, c.cseq)
	}
	return resp
}

func (c *rtspClient) readResponse() (*rtspResponse, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		first, err := c.br.Peek(1)
		if err != nil {
			return nil, err
		}
		if first[0] != '$' {
			break
		}
		if _, _, err := c.readInterleaved(); err != nil {
			return nil, err
		}
	}
	m, err := rtspmsg.Read(c.br, rtspmsg.Limits{})
	if err != nil {
		return nil, err
	}
	if !m.IsResponse() || m.Proto != "RTSP/1.0" {
		return nil, fmt.Errorf("not an RTSP/1.0 response: %s %s %s", m.Method, m.URI, m.Proto)
	}
	resp := &rtspResponse{status: m.Status, header: make(map[string][]string), body: m.Body}
	for _, f := range m.Header {
		k := strings.ToLower(f.Name)
		resp.header[k] = append(resp.header[k], f.Value)
	}
	return resp, nil
}

func (c *rtspClient) readInterleaved() (channel byte, data []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return 0, nil, err
	}
	if hdr[0] != '$' {
		return 0, nil, fmt.Errorf("expected interleaved frame, got %q", hdr[:])
	}
	data = make([]byte, binary.BigEndian.Uint16(hdr[2:]))
	_, err = io.ReadFull(c.br, data)
	return hdr[1], data, err
}

// readRTP reads the next RTP packet on the given channel.
func (c *rtspClient) readRTP(channel byte) (*rtp.Packet, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		first, err := c.br.Peek(1)
		if err != nil {
			return nil, err
		}
		if first[0] != '$' {
			return nil, fmt.Errorf("unexpected non-interleaved data %q", first)
		}
		ch, data, err := c.readInterleaved()
		if err != nil {
			return nil, err
		}
		if ch != channel {
			if ch == 1 {
				c.rtcp = append(c.rtcp, data)
			}
			continue
		}
		var p rtp.Packet
		if err := p.Unmarshal(data); err != nil {
			return nil, err
		}
		return &p, nil
	}
}

// digestAuthorizer answers a challenge (RFC 2069 style), computing the
// response by hand: independently of the server's code.
func digestAuthorizer(user, password string, challenge string) func(method, uri string) string {
	chal, err := digest.ParseChallenge(challenge)
	if err != nil {
		panic(err)
	}
	return func(method, uri string) string {
		ha1 := md5hexTest(user + ":" + chal.Realm + ":" + password)
		ha2 := md5hexTest(method + ":" + uri)
		resp := md5hexTest(ha1 + ":" + chal.Nonce + ":" + ha2)
		return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s"`,
			user, chal.Realm, chal.Nonce, uri, resp)
	}
}

func basicAuthorizer(user, password string) func(method, uri string) string {
	return func(string, string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	}
}

func md5hexTest(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// digestChallenge returns the Digest challenge of a 401.
func digestChallenge(t *testing.T, resp *rtspResponse) string {
	t.Helper()
	for _, v := range resp.header["www-authenticate"] {
		if strings.HasPrefix(v, "Digest ") {
			return v
		}
	}
	t.Fatalf("401 without Digest challenge: %v", resp.header)
	return ""
}

// playSession runs OPTIONS … PLAY with Digest authentication and returns the
// PLAY response.
func playSession(t *testing.T, env *testEnv, path string) (*rtspClient, *rtspResponse) {
	t.Helper()
	c := dialRTSP(t, env.addr)
	url := env.url(path)
	resp := c.do("DESCRIBE", url, "Accept: application/sdp")
	if resp.status != 401 {
		t.Fatalf("DESCRIBE without credentials: %d, want 401", resp.status)
	}
	c.authorize = digestAuthorizer(testUser, testPassword, digestChallenge(t, resp))
	if resp = c.do("DESCRIBE", url, "Accept: application/sdp"); resp.status != 200 {
		t.Fatalf("DESCRIBE: %d", resp.status)
	}
	resp = c.do("SETUP", url+"/"+trackName, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	if resp.status != 200 {
		t.Fatalf("SETUP: %d", resp.status)
	}
	c.session, _, _ = strings.Cut(resp.get("Session"), ";")
	if resp = c.do("PLAY", url+"/"); resp.status != 200 {
		t.Fatalf("PLAY: %d", resp.status)
	}
	return c, resp
}

// proc is a process the test started; cleanup kills and reaps it.
type proc struct {
	cmd    *exec.Cmd
	stdout testkit.Buffer
	stderr testkit.Buffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid after done
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &proc{cmd: exec.CommandContext(ctx, name, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// wait waits for the process to exit, failing the test after timeout.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s did not exit within %v; stderr: %s", p.cmd.Path, timeout, p.stderr.String())
		return nil
	}
}

func isExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee)
}
