// Package rtsp is the recorder's credential-injecting RTSP relay
// (app.Relays).
//
// ffmpeg's RTSP demuxer takes credentials only inside the URL, where `ps`
// and ffmpeg's own log lines would show them. So ffmpeg connects to this
// relay on 127.0.0.1 with a credential-free URL; the relay opens the
// connection to the gateway, rewrites request URIs to the gateway's, answers
// the gateway's 401 challenge (Digest preferred, Basic if that is all it
// offers) and adds an Authorization header to every later request, keep-
// alives included. Interleaved `$` frames pass through untouched in both
// directions. ffmpeg never learns the password. Messages are read and
// written with mediagw/pkg/rtsp.
package rtsp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	rtspmsg "mediagw/pkg/rtsp"
)

// Config configures a Proxy.
type Config struct {
	// Upstream is the gateway's stream URL without credentials,
	// e.g. rtsp://gw:554/Streaming/Channels/101.
	Upstream string
	// Credentials returns the user name and password to answer challenges
	// with. It is called when the gateway first asks for them on each
	// connection. Nil means the stream needs none.
	Credentials func(ctx context.Context) (user, password string, err error)
	// AuthRejected is called when the gateway refused the credentials (so
	// the caller can fetch them again before the next connection).
	AuthRejected func()
	// Playing is called with the arrival time of the first media frame
	// after a successful PLAY on each connection.
	Playing func(firstFrame time.Time)
	// DialTimeout bounds connecting to the gateway; default 10 s.
	DialTimeout time.Duration
	Logger      *slog.Logger
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
		s := &session{p: p, client: c, pending: map[string]*pending{}}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
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
	}
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
	req       *rtspmsg.Message // as sent, without Authorization
	method    string
	uri       string
	authNonce string // nonce it was authorised with; "" if none
	authed    bool
	retries   int
}

type session struct {
	p        *Proxy
	client   net.Conn
	upstream net.Conn

	upMu sync.Mutex // serialises writes to the gateway
	upW  *bufio.Writer

	mu      sync.Mutex
	auth    *authState
	pending map[string]*pending // by upstream CSeq
	seq     int
	playing bool

	closeOnce sync.Once
}

func (s *session) close() {
	s.closeOnce.Do(func() {
		s.client.Close()
		if s.upstream != nil {
			s.upstream.Close()
		}
	})
}

func (s *session) run() {
	defer s.close()
	d := net.Dialer{Timeout: s.p.cfg.DialTimeout}
	up, err := d.Dial("tcp", strings.TrimPrefix(s.p.upBase, "rtsp://")+defaultPort(s.p.upBase))
	if err != nil {
		s.p.log.Warn("rtsp proxy: gateway unreachable", "err", err)
		return
	}
	s.p.mu.Lock()
	closed := s.p.closed
	s.upstream = up
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
	if err := s.fromUpstream(); err != nil && !isClosed(err) {
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
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
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

// send numbers a request with our own CSeq (so a retry is a new request to
// the gateway), authorises it if we know how, and writes it upstream.
func (s *session) send(pr *pending) error {
	s.mu.Lock()
	s.seq++
	seq := strconv.Itoa(s.seq)
	out := pr.req.Clone()
	out.Header.Set("CSeq", seq)
	pr.authed, pr.authNonce = false, ""
	if s.auth != nil {
		h, err := s.auth.header(pr.method, pr.uri)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		out.Header.Set("Authorization", h)
		pr.authed, pr.authNonce = true, s.auth.nonce()
	}
	s.pending[seq] = pr
	s.mu.Unlock()
	return s.toUpstream(func(w *bufio.Writer) error { return out.Write(w) })
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
	r := bufio.NewReaderSize(s.upstream, frameBuffer)
	w := bufio.NewWriterSize(s.client, 64<<10)
	first := true
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
			if first {
				s.mu.Lock()
				playing := s.playing
				s.mu.Unlock()
				if playing {
					first = false
					if s.p.cfg.Playing != nil {
						s.p.cfg.Playing(time.Now())
					}
				}
			}
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
		forward, err := s.onUpstreamMessage(m)
		if err != nil {
			return err
		}
		if forward {
			if err := m.Write(w); err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// onUpstreamMessage handles a response (or a gateway request) and says
// whether to pass it on to ffmpeg.
func (s *session) onUpstreamMessage(m *rtspmsg.Message) (bool, error) {
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
	if m.Status == 401 && s.p.cfg.Credentials != nil {
		retry, err := s.answerChallenge(pr, m.Header.Values("WWW-Authenticate"))
		if err != nil {
			return false, err
		}
		if retry {
			return false, s.send(pr)
		}
	}
	m.Header.Set("CSeq", pr.clientSeq)
	if pr.method == "PLAY" && m.Status == 200 {
		s.mu.Lock()
		s.playing = true
		s.mu.Unlock()
	}
	return true, nil
}

// answerChallenge decides whether a 401 is worth a retry with (new)
// credentials: always when the request went without them, once more when
// the gateway issued a new nonce, never when the same credentials were
// refused for the same nonce: then the password is wrong.
func (s *session) answerChallenge(pr *pending, challenges []string) (bool, error) {
	if pr.retries >= 2 {
		s.rejected()
		return false, nil
	}
	if pr.authed && !stale(challenges) {
		fresh, err := newAuthState(challenges, "", "")
		if err != nil || fresh.basic || fresh.nonce() == pr.authNonce {
			s.rejected()
			return false, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	user, password, err := s.p.cfg.Credentials(ctx)
	if err != nil {
		s.p.log.Warn("rtsp proxy: credentials unavailable", "err", err)
		return false, nil
	}
	a, err := newAuthState(challenges, user, password)
	if err != nil {
		s.p.log.Warn("rtsp proxy: gateway asks for authentication the proxy cannot give", "err", err)
		return false, nil
	}
	s.mu.Lock()
	s.auth = a
	s.mu.Unlock()
	pr.retries++
	return true, nil
}

func (s *session) rejected() {
	s.p.log.Warn("rtsp proxy: gateway refused the credentials")
	if s.p.cfg.AuthRejected != nil {
		s.p.cfg.AuthRejected()
	}
}
