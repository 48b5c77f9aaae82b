// Package rtsp is the recorder's credential-injecting RTSP relay
// (app.Relays).
//
// ffmpeg's RTSP demuxer takes credentials only inside the URL, where `ps`
// and ffmpeg's own log lines would show them. So ffmpeg connects to this
// relay on 127.0.0.1 with a credential-free URL; the relay opens the
// connection to the gateway, rewrites request URIs to the gateway's and
// logs in for ffmpeg. Interleaved `$` frames pass through untouched in both
// directions. ffmpeg never learns the password. Messages are read and
// written with mediagw/pkg/rtsp. The in-process recorder connects in memory
// (Proxy.Dial) and, once the stream plays, reads the gateway's connection
// itself (memConn) instead of through a copy; the session still handles
// the gateway's messages (keep-alive answers, stale nonces, refusals).
//
// Logging in never risks the gateway's lockout beyond the login budget:
// per connection there is one login, admitted by Config.Login (the budget)
// after the gateway's challenge and before the first request that carries
// credentials; that one request is never sent again. Its answer is
// reported: accepted (anything but a 401), rejected (a 401), unanswered
// (the connection ended or LoginTimeout passed after it was written) or
// not sent. A refused or rejected login ends the connection. Only Digest is
// answered: a gateway that offers Basic alone is refused (it would get the
// password in clear text). Once accepted, every later request carries a
// fresh Digest (keep-alives included); a stale nonce is answered again,
// once; any other 401 is reported (Login.Refused: a failed login at the
// gateway all the same) and ends the connection.
package rtsp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mediagw/pkg/loginbudget"
	rtspmsg "mediagw/pkg/rtsp"
	"mediagw/services/recorder/internal/app"
)

// Config configures a Proxy.
type Config struct {
	// Gateway is the gateway's id, for errors and logs.
	Gateway string
	// Upstream is the gateway's stream URL without credentials,
	// e.g. rtsp://gw:554/Streaming/Channels/101.
	Upstream string
	// Login admits the login of a connection (see app.RelaySpec.Login);
	// nil means the stream needs no credentials.
	Login func(ctx context.Context) (*app.Login, error)
	// AuthFailed hears why a connection ended over authentication the
	// relay will not do (Basic only, no usable challenge).
	AuthFailed func(err error)
	// Playing is called with the arrival time of the first media frame
	// after a successful PLAY on each connection.
	Playing func(firstFrame time.Time)
	// DialTimeout bounds connecting to the gateway; default 10 s.
	DialTimeout time.Duration
	// LoginTimeout bounds the wait for the answer to a login; past it the
	// connection is closed and the login is unanswered. Default 15 s.
	LoginTimeout time.Duration
	Logger       *slog.Logger
}

// Proxy listens on a loopback port and relays each accepted connection to
// the upstream.
type Proxy struct {
	cfg       Config
	log       *slog.Logger
	ln        net.Listener
	localBase string // rtsp://127.0.0.1:<port>
	upBase    string // rtsp://<host[:port]> as configured
	local     string // the URL ffmpeg is given
	received  atomic.Uint64

	mu       sync.Mutex
	closed   bool
	sessions map[*session]struct{}
	wg       sync.WaitGroup
}

// Listen validates the configuration, binds 127.0.0.1 on a free port and
// starts accepting.
func Listen(cfg Config) (*Proxy, error) {
	u, err := url.Parse(cfg.Upstream)
	if err != nil {
		return nil, errors.New("rtsp relay: upstream is not a URL")
	}
	if u.Scheme != "rtsp" || u.Host == "" {
		return nil, errors.New("rtsp relay: upstream must be rtsp://host[:port]/path")
	}
	if u.User != nil {
		return nil, errors.New("rtsp relay: upstream URL must not carry credentials")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = 15 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("rtsp relay: listen: %w", err)
	}
	p := &Proxy{
		cfg:       cfg,
		log:       log,
		ln:        ln,
		localBase: "rtsp://" + ln.Addr().String(),
		upBase:    "rtsp://" + u.Host,
		sessions:  map[*session]struct{}{},
	}
	p.local = p.localBase + strings.TrimPrefix(cfg.Upstream, p.upBase)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// URL is the credential-free loopback URL to give ffmpeg.
func (p *Proxy) URL() string { return p.local }

// ReceivedBytes counts the media bytes relayed from the gateway.
func (p *Proxy) ReceivedBytes() uint64 { return p.received.Load() }

// Close stops accepting, drops live connections and waits for them.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for s := range p.sessions {
		s.close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Error("rtsp proxy accept", "err", err)
			}
			return
		}
		if !p.serve(c) {
			return
		}
	}
}

// Dial opens a relayed connection in memory, for a client in this process
// (the in-process recorder): the same session as a loopback connection
// gets (one budgeted login, URI rewriting), without a socket. Requests use
// URL()'s URIs. Once the stream plays, the client reads the gateway's
// connection itself (memConn): media is no longer copied through the relay.
func (p *Proxy) Dial() (net.Conn, error) {
	reqMine, reqTheirs := net.Pipe()
	respMine, respTheirs := net.Pipe()
	m := &memConn{req: reqMine, resp: respMine, handed: make(chan struct{})}
	if !p.serveSession(reqTheirs, respTheirs, m) {
		reqMine.Close()
		respMine.Close()
		return nil, net.ErrClosed
	}
	return m, nil
}

// serve runs a session for the client connection c; false once the proxy
// is closed (c is closed then).
func (p *Proxy) serve(c net.Conn) bool { return p.serveSession(c, c, nil) }

// serveSession runs a session reading the client's requests from c and
// writing to it through toClient; with mem, the reading of the gateway's
// connection is handed over to mem once the stream plays.
func (p *Proxy) serveSession(c, toClient net.Conn, mem *memConn) bool {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{p: p, client: c, toClient: toClient, mem: mem, ctx: ctx, cancel: cancel, pending: map[string]*pending{}}
	if mem != nil {
		mem.s = s
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		toClient.Close()
		cancel()
		return false
	}
	p.sessions[s] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		s.run()
		p.mu.Lock()
		delete(p.sessions, s)
		p.mu.Unlock()
	}()
	return true
}

// rewriteURI turns a URI ffmpeg sent (on the loopback base) into the
// gateway's; URIs already on another base (from Content-Base) pass as they are.
func (p *Proxy) rewriteURI(uri string) string {
	if rest, ok := strings.CutPrefix(uri, p.localBase); ok {
		return p.upBase + rest
	}
	return uri
}

// pending is a request sent upstream and not yet answered.
type pending struct {
	clientSeq string
	req       *rtspmsg.Message // as ffmpeg sent it (URI rewritten), without Authorization
	method    string
	uri       string
	authed    bool // it carried credentials
	login     bool // it is the login: the first request that carried them
	restale   bool // it was sent again after a stale nonce (once only)
}

type session struct {
	p        *Proxy
	client   net.Conn // requests (and RTCP) from the client
	toClient net.Conn // answers and media to it: client itself, but for memConn
	mem      *memConn // the in-memory client, which takes over reading once playing
	upstream net.Conn
	// reportedPlaying: Config.Playing was told (by whoever reads the gateway).
	reportedPlaying bool
	// ctx ends with the session (a login waiting for the budget gives up).
	ctx    context.Context
	cancel context.CancelFunc

	upMu sync.Mutex // serialises writes to the gateway
	upW  *bufio.Writer

	mu      sync.Mutex
	pending map[string]*pending // by upstream CSeq
	seq     int
	playing bool
	// auth holds the credentials of the session's one login, once the
	// budget admitted it; accepted once the gateway took them: only then
	// do further requests carry them.
	auth     *authState
	accepted bool
	admitted *app.Login // the accepted login, told when a later request is refused
	// login is the login in flight: sent (or being sent) and not answered.
	login        *app.Login
	loginWritten bool // some of its bytes reached the connection
	loginTimer   *time.Timer

	ended     bool // close ran
	closeOnce sync.Once
}

func (s *session) close() {
	s.closeOnce.Do(func() {
		s.client.Close()
		s.toClient.Close()
		s.mu.Lock() // Proxy.Close calls this under p.mu: lock order p.mu, s.mu
		up := s.upstream
		s.ended = true
		s.mu.Unlock()
		if up != nil {
			up.Close()
		}
		// Last: whoever the end of ctx wakes finds the connections closed.
		s.cancel()
	})
}

func (s *session) run() {
	defer s.endLogin()
	defer s.close()
	d := net.Dialer{Timeout: s.p.cfg.DialTimeout}
	up, err := d.Dial("tcp", strings.TrimPrefix(s.p.upBase, "rtsp://")+defaultPort(s.p.upBase))
	if err != nil {
		s.p.log.Warn("rtsp proxy: gateway unreachable", "err", err)
		return
	}
	s.p.mu.Lock()
	s.mu.Lock()
	closed := s.p.closed || s.ended // the proxy, or ffmpeg, went away while dialling
	s.upstream = up
	s.mu.Unlock()
	s.p.mu.Unlock()
	if closed {
		up.Close()
		return
	}
	s.upW = bufio.NewWriterSize(up, 16<<10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.close()
		if err := s.fromClient(); err != nil && !isClosed(err) {
			s.p.log.Warn("rtsp proxy: from ffmpeg", "err", err)
		}
	}()
	err = s.fromUpstream()
	if errors.Is(err, errHandedOver) {
		// The in-memory client reads the gateway now; the session lasts
		// as long as its requests do (or until the client's reads end it).
		<-done
		return
	}
	if err != nil && !isClosed(err) {
		s.p.log.Warn("rtsp proxy: from gateway", "err", err)
	}
	s.close()
	<-done
}

func defaultPort(base string) string {
	host := strings.TrimPrefix(base, "rtsp://")
	if _, _, err := net.SplitHostPort(host); err == nil {
		return ""
	}
	return ":554"
}

// isClosed reports the ordinary ways a connection ends (ffmpeg exiting
// resets its side), which are not worth a warning.
func isClosed(err error) bool {
	if errors.Is(err, errEnded) {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// frameBuffer holds the largest interleaved frame: '$', channel, 16-bit length.
const frameBuffer = 4 + 65535 + 1024

// fromClient relays ffmpeg's requests (rewritten, authorised) and its
// interleaved RTCP frames to the gateway.
func (s *session) fromClient() error {
	r := bufio.NewReaderSize(s.client, 16<<10)
	for {
		b, err := r.Peek(1)
		if err != nil {
			return err
		}
		if b[0] == '$' {
			frame, err := peekFrame(r)
			if err != nil {
				return err
			}
			if err := s.toUpstream(func(w *bufio.Writer) error { _, err := w.Write(frame); return err }); err != nil {
				return err
			}
			r.Discard(len(frame))
			continue
		}
		m, err := rtspmsg.Read(r, rtspmsg.Limits{})
		if err != nil {
			return err
		}
		if m.IsResponse() { // to a request the gateway made
			if err := s.toUpstream(func(w *bufio.Writer) error { return m.Write(w) }); err != nil {
				return err
			}
			continue
		}
		if err := s.forwardRequest(m); err != nil {
			return err
		}
	}
}

func (s *session) forwardRequest(m *rtspmsg.Message) error {
	m.URI = s.p.rewriteURI(m.URI)
	m.Header.Del("Authorization")
	pr := &pending{clientSeq: m.Header.Get("CSeq"), req: m, method: m.Method, uri: m.URI}
	return s.send(pr)
}

// send numbers a request with our own CSeq (so that sending it again is a
// new request to the gateway), adds credentials once the gateway has
// accepted them on this connection, and writes it upstream.
func (s *session) send(pr *pending) error {
	s.mu.Lock()
	s.seq++
	seq := strconv.Itoa(s.seq)
	out := pr.req.Clone()
	out.Header.Set("CSeq", seq)
	pr.authed = false
	if s.accepted {
		h, err := s.auth.header(pr.method, pr.uri)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		out.Header.Set("Authorization", h)
		pr.authed = true
	}
	s.pending[seq] = pr
	s.mu.Unlock()
	return s.toUpstream(func(w *bufio.Writer) error { return out.Write(w) })
}

// sendLogin sends pr with the credentials of the admitted login and
// notes whether any of it reached the connection (else the login was not
// sent at all).
func (s *session) sendLogin(pr *pending) error {
	s.mu.Lock()
	s.seq++
	seq := strconv.Itoa(s.seq)
	out := pr.req.Clone()
	out.Header.Set("CSeq", seq)
	h, err := s.auth.header(pr.method, pr.uri)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	out.Header.Set("Authorization", h)
	pr.authed, pr.login = true, true
	s.pending[seq] = pr
	s.mu.Unlock()
	var buf bytes.Buffer
	if err := out.Write(&buf); err != nil {
		return err
	}
	s.upMu.Lock()
	defer s.upMu.Unlock()
	if err := s.upW.Flush(); err != nil { // what ffmpeg sent before could not go out
		return err
	}
	n, err := s.upstream.Write(buf.Bytes())
	if n > 0 {
		s.mu.Lock()
		s.loginWritten = true
		s.mu.Unlock()
	}
	return err
}

func (s *session) toUpstream(write func(*bufio.Writer) error) error {
	s.upMu.Lock()
	defer s.upMu.Unlock()
	if err := write(s.upW); err != nil {
		return err
	}
	return s.upW.Flush()
}

// peekFrame returns a whole interleaved frame without consuming it.
func peekFrame(r *bufio.Reader) ([]byte, error) {
	h, err := r.Peek(4)
	if err != nil {
		return nil, err
	}
	return r.Peek(4 + (int(h[2])<<8 | int(h[3])))
}

// fromUpstream relays the gateway's responses (answering 401s itself) and
// media frames to ffmpeg. Frames are batched: the writer is flushed only
// when no more input is buffered, so a burst costs one write.
func (s *session) fromUpstream() error {
	br := &batchedReader{c: s.upstream}
	r := bufio.NewReaderSize(br, readBuffer)
	w := bufio.NewWriterSize(s.toClient, 64<<10)
	for {
		if r.Buffered() < 4 && w.Buffered() > 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
		b, err := r.Peek(1)
		if err != nil {
			return err
		}
		if b[0] == '$' {
			h, err := r.Peek(4)
			if err != nil {
				return err
			}
			n := 4 + (int(h[2])<<8 | int(h[3]))
			if r.Buffered() < n && w.Buffered() > 0 {
				if err := w.Flush(); err != nil {
					return err
				}
			}
			frame, err := r.Peek(n)
			if err != nil {
				return err
			}
			s.notePlaying()
			if _, err := w.Write(frame); err != nil {
				return err
			}
			r.Discard(n)
			s.p.received.Add(uint64(n))
			continue
		}
		m, err := rtspmsg.Read(r, rtspmsg.Limits{})
		if err != nil {
			return err
		}
		forward, end := s.onUpstreamMessage(m)
		if forward {
			if err := m.Write(w); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
		if end != nil {
			return end
		}
		if s.mem != nil && s.isPlaying() {
			// Everything before was written (net.Pipe hands each byte to
			// the reader before Write returns): the client goes on from r.
			if err := w.Flush(); err != nil {
				return err
			}
			s.mem.handOver(r, br)
			return errHandedOver
		}
	}
}

// notePlaying tells Config.Playing the arrival of the first media frame
// after PLAY was answered.
func (s *session) notePlaying() {
	if s.reportedPlaying || !s.isPlaying() {
		return
	}
	s.reportedPlaying = true
	if s.p.cfg.Playing != nil {
		s.p.cfg.Playing(time.Now())
	}
	// Batched after the first second: the arrivals of the first frame (the
	// run's time anchor) and of each track's first packets (which place a
	// track without RTP-Info or sender reports) are taken unbatched.
	s.mu.Lock()
	up := s.upstream
	s.mu.Unlock()
	time.AfterFunc(batchAfter, func() { batchReads(up) }) // a closed connection ignores it
}

func (s *session) isPlaying() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.playing
}

// errEnded ends a session on purpose (a refused or rejected login).
var errEnded = errors.New("rtsp relay: session ended")

// onUpstreamMessage handles a response (or a gateway request), says
// whether to pass it on to ffmpeg, and returns an error when the session
// must end after that (errEnded, or a failed write to the gateway).
func (s *session) onUpstreamMessage(m *rtspmsg.Message) (forward bool, end error) {
	if !m.IsResponse() {
		return true, nil
	}
	seq := m.Header.Get("CSeq")
	s.mu.Lock()
	pr := s.pending[seq]
	delete(s.pending, seq)
	s.mu.Unlock()
	if pr == nil {
		return true, nil
	}
	switch {
	case pr.login:
		return s.loginAnswered(pr, m)
	case m.Status != 401:
	case pr.authed:
		// A request riding on the accepted login: an expired nonce is
		// answered again, once; any other refusal ends the session (the
		// next one logs in through the budget), never a re-send.
		if stale(m.Header.Values("WWW-Authenticate")) {
			if chal, err := digestChallenge(m.Header.Values("WWW-Authenticate")); err == nil && !pr.restale {
				s.mu.Lock()
				s.auth.renew(chal)
				s.mu.Unlock()
				pr.restale = true
				return false, s.send(pr)
			}
			// Stale again: no failed login, but no loop either.
			s.reply(pr, m)
			return true, errEnded
		}
		s.p.log.Warn("rtsp relay: the gateway refused credentials it had accepted on this connection; ending it", "gateway", s.p.cfg.Gateway, "method", pr.method)
		s.mu.Lock()
		admitted := s.admitted
		s.mu.Unlock()
		if admitted != nil && admitted.Refused != nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Second)
			admitted.Refused(ctx)
			cancel()
		}
		s.reply(pr, m)
		return true, errEnded
	case s.p.cfg.Login != nil:
		return s.challenged(pr, m)
	}
	s.reply(pr, m)
	return true, nil
}

// reply prepares the gateway's answer to pr for ffmpeg.
func (s *session) reply(pr *pending, m *rtspmsg.Message) {
	m.Header.Set("CSeq", pr.clientSeq)
	if pr.method == "PLAY" && m.Status == 200 {
		s.mu.Lock()
		s.playing = true
		s.mu.Unlock()
	}
}

// mediaBatch is how much media the kernel gathers before the relay is
// woken to read it (SO_RCVLOWAT), once the stream plays. A camera's
// packets arrive a few hundred a second; reading each on its own (a
// syscall and a wake-up of the client each) was most of the recorder's
// CPU. 256 KiB is about half a second of a 4 Mbit/s stream (in the
// benchmark 16 KiB cost 1.7 times the CPU, 64 KiB 1.3 times, 128 KiB 1.1
// times, in wake-ups; the relay's reader holds ~320 KiB per stream). Less
// than that (an answer to a keep-alive, the last packets before a stall, a
// slow stream) is read after batchWait at the latest (batchedReader); the
// end of a connection wakes the reader whatever is there; the in-memory
// client's read deadline (the stall timeout) is honoured, one moved
// earlier during a read (Stop) within batchWait. Recording needs no lower
// latency: the stall timeout (seconds) is far above it.
const (
	mediaBatch = 256 << 10
	batchWait  = time.Second
	batchAfter = time.Second // after the first media frame
	// readBuffer holds a batch and a frame begun before it.
	readBuffer = mediaBatch + frameBuffer
)

// batchedReader reads a connection that may have a receive low-water
// mark: a read that waited batchWait for it is tried again at once, which
// takes whatever has arrived (a non-blocking read ignores the mark). With
// limit (the in-memory client's read deadline, Unix ns, 0 for none) a read
// past it fails with os.ErrDeadlineExceeded.
type batchedReader struct {
	c     net.Conn
	limit *atomic.Int64
}

func (b *batchedReader) Read(p []byte) (int, error) {
	for {
		wait := time.Now().Add(batchWait)
		if b.limit != nil {
			if ns := b.limit.Load(); ns != 0 {
				lim := time.Unix(0, ns)
				if !time.Now().Before(lim) {
					return 0, os.ErrDeadlineExceeded
				}
				if lim.Before(wait) {
					wait = lim
				}
			}
		}
		if err := b.c.SetReadDeadline(wait); err != nil {
			return 0, err
		}
		n, err := b.c.Read(p)
		var ne net.Error
		if n == 0 && errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		return n, err
	}
}

func batchReads(c net.Conn) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		// Best effort: without it reads are only smaller.
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, mediaBatch)
	})
}

// challenged answers the gateway's 401 to a request without credentials:
// the one login of the session, if the challenge is Digest and the budget
// admits it. Otherwise the 401 goes to ffmpeg and the session ends,
// nothing sent.
func (s *session) challenged(pr *pending, m *rtspmsg.Message) (bool, error) {
	s.mu.Lock()
	admitted := s.auth != nil
	s.mu.Unlock()
	if admitted { // a request that overtook the login in flight
		s.reply(pr, m)
		return true, errEnded
	}
	chal, err := digestChallenge(m.Header.Values("WWW-Authenticate"))
	if err != nil {
		if errors.Is(err, errBasicOnly) {
			err = fmt.Errorf("gateway %s offers only Basic authentication on RTSP, which sends the password in clear text: refused, no credentials sent", s.p.cfg.Gateway)
		} else {
			err = fmt.Errorf("gateway %s: RTSP authentication the relay cannot answer, no credentials sent: %w", s.p.cfg.Gateway, err)
		}
		if s.p.cfg.AuthFailed != nil {
			s.p.cfg.AuthFailed(err)
		}
		s.reply(pr, m)
		return true, errEnded
	}
	login, err := s.p.cfg.Login(s.ctx)
	if err != nil {
		s.p.log.Debug("rtsp relay: login not attempted", "err", err)
		s.reply(pr, m)
		return true, errEnded
	}
	s.mu.Lock()
	s.auth = &authState{user: login.User, password: login.Password, chal: chal}
	s.login = login
	// An answer that does not come in time is as good as lost: the
	// session ends and the login counts as unanswered.
	s.loginTimer = time.AfterFunc(s.p.cfg.LoginTimeout, s.close)
	s.mu.Unlock()
	return false, s.sendLogin(pr)
}

// loginAnswered reports the answer to the login request: a 401 (unless the
// nonce was merely stale) is a rejection, anything else acceptance.
func (s *session) loginAnswered(pr *pending, m *rtspmsg.Message) (bool, error) {
	s.mu.Lock()
	login := s.login
	s.login = nil
	if s.loginTimer != nil {
		s.loginTimer.Stop()
	}
	s.mu.Unlock()
	pr.login = false
	ctx := context.WithoutCancel(s.ctx)
	challenges := m.Header.Values("WWW-Authenticate")
	if m.Status == 401 && !stale(challenges) {
		s.p.log.Warn("rtsp relay: the gateway rejected the password", "gateway", s.p.cfg.Gateway)
		login.Finish(ctx, loginbudget.Rejected)
		s.reply(pr, m)
		return true, errEnded
	}
	login.Finish(ctx, loginbudget.Accepted)
	s.mu.Lock()
	s.accepted, s.admitted = true, login
	s.mu.Unlock()
	if m.Status == 401 {
		// Stale: the gateway took the digest, only its nonce had expired;
		// the request is answered again once, riding on the login.
		if chal, err := digestChallenge(challenges); err == nil {
			s.mu.Lock()
			s.auth.renew(chal)
			s.mu.Unlock()
			pr.restale = true
			return false, s.send(pr)
		}
	}
	s.reply(pr, m)
	return true, nil
}

// endLogin reports a login still in flight when the session ends: its
// answer is lost (unanswered) if anything of it was written, else it was
// not sent.
func (s *session) endLogin() {
	s.mu.Lock()
	login, written := s.login, s.loginWritten
	s.login = nil
	if s.loginTimer != nil {
		s.loginTimer.Stop()
	}
	s.mu.Unlock()
	if login == nil {
		return
	}
	r := loginbudget.NotSent
	if written {
		r = loginbudget.Unanswered
		s.p.log.Warn("rtsp relay: the login got no answer; it counts as failed and is not sent again", "gateway", s.p.cfg.Gateway)
	}
	login.Finish(context.WithoutCancel(s.ctx), r)
}
