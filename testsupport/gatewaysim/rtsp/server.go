// Package rtsp is the gateway simulator's RTSP server: it re-serves each
// simulated camera as a live H.264 stream, optionally with an AAC track
// (Config.MediaOptions), as a Hikvision media gateway does.
//
// It implements the small part of RTSP 1.0 that clients of a camera use:
// OPTIONS, DESCRIBE, SETUP with interleaved TCP transport (UDP is refused
// with 461, so clients fall back to TCP), PLAY, GET_PARAMETER/SET_PARAMETER
// keep-alives and TEARDOWN, with Digest (MD5) or Basic authentication
// against the gateway's current admin credentials; Config.Login lets the
// gateway decide each login (lockout, login faults).
//
// The video is a test pattern with a running clock, rendered once with
// ffmpeg into Config.MediaDir: main streams (…01) are 1280x720, sub streams
// (…02) 640x360 (MediaOptions.FullHD: main 1920x1080 at ~4 Mbit/s), both
// 25 fps with a keyframe every 2 s and a 30 s loop. Each
// camera plays it on its own live clock; a client joining later starts at
// the next keyframe of the live position, with RTP timestamps that keep
// increasing across loop wraps.
package rtsp

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// Config configures a Server.
type Config struct {
	// Credentials returns the gateway's current admin credentials. It is
	// called for every authenticated request, so a password change takes
	// effect at once (for new requests; playing sessions continue).
	Credentials func() (user, password string)
	// Available reports whether the stream at a URL path is served now
	// (device exists, is online, has the channel). The path is the stream's
	// path without track suffix or query, e.g. /Streaming/Channels/<devIndex>/101.
	Available func(path string) bool
	// MediaDir caches the generated H.264 media; created if missing. Use a
	// persistent directory: rendering takes a few seconds of CPU.
	MediaDir string
	// Media, if set, is streamed instead of loading MediaDir: many servers
	// in one process (simulated gateways in a benchmark) then share one copy
	// of the clips (about 13 MB) instead of holding one each.
	Media *Media
	// MediaOptions chooses what is loaded from MediaDir (ignored with
	// Media): 1080p main streams, an AAC track. The zero value is 720p
	// main streams without audio.
	MediaOptions MediaOptions
	// Login, if set, is the gateway's account policy (lockout, failed-login
	// ledger, login faults): it sees every request that needs
	// authentication, with what the credentials check found, and decides
	// the answer. Nil: the current credentials pass, anything else gets a
	// 401 at once.
	Login  func(LoginAttempt) LoginDecision
	Logger *slog.Logger
}

// LoginAttempt is one request that needs authentication (DESCRIBE, SETUP,
// PLAY), as the credentials check saw it. It never holds the password.
type LoginAttempt struct {
	RemoteIP string // the client's IP address
	Method   string
	Path     string // the stream path, without user info or query ("" if unparsable)
	// Presented is true when the request carried an Authorization header;
	// a request without one is the challenge round trip, not a login.
	Presented bool
	Scheme    string // "digest", "basic", or the scheme given, lower case
	User      string // the user name in the credentials ("" if none could be read)
	Valid     bool   // the credentials are the current ones
}

// LoginDecision is how a LoginAttempt is answered.
type LoginDecision struct {
	Allow bool // serve the request
	// Refused requests are answered 401, unless Drop. Delay holds the
	// answer back (or the close, with Drop) this long; BasicOnly makes the
	// 401 offer only Basic.
	Delay     time.Duration
	Drop      bool // close the connection without an answer
	BasicOnly bool
}

// Server serves RTSP. Create it with NewServer.
type Server struct {
	cfg   Config
	log   *slog.Logger
	auth  *authenticator
	clips [2]*clip   // indexed by mainStream, subStream
	audio *audioClip // nil: streams have no audio track
	clock liveClock

	// Tunables; tests change them before Serve.
	cameraOffset   func(streamPath string) int64
	sessionTimeout time.Duration // announced in the Session header; idle limit before PLAY
	writeTimeout   time.Duration // per frame written to a client
	queueFrames    int           // per-client queue; a client this far behind is dropped

	done      chan struct{} // closed by Close
	wg        sync.WaitGroup
	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	sources   map[string]*source
}

// NewServer validates cfg and loads the media, rendering it with ffmpeg
// first if MediaDir does not have it yet (a few seconds; safe when several
// processes start at once).
func NewServer(cfg Config) (*Server, error) {
	if cfg.Credentials == nil || cfg.Available == nil {
		return nil, errors.New("rtsp: Config.Credentials and Config.Available are required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	media := cfg.Media
	if media == nil {
		if cfg.MediaDir == "" {
			return nil, errors.New("rtsp: Config.MediaDir or Config.Media is required")
		}
		var err error
		if media, err = LoadMediaOptions(cfg.MediaDir, cfg.MediaOptions); err != nil {
			return nil, err
		}
	}
	auth, err := newAuthenticator(cfg.Credentials)
	if err != nil {
		return nil, fmt.Errorf("rtsp: %w", err)
	}
	return &Server{
		cfg:            cfg,
		log:            logger,
		auth:           auth,
		clips:          media.clips,
		audio:          media.audio,
		clock:          newLiveClock(time.Now()),
		cameraOffset:   cameraOffset,
		sessionTimeout: 60 * time.Second,
		writeTimeout:   10 * time.Second,
		queueFrames:    2 * frameRate,
		done:           make(chan struct{}),
		listeners:      make(map[net.Listener]struct{}),
		conns:          make(map[*conn]struct{}),
		sources:        make(map[string]*source),
	}, nil
}

// Serve accepts connections on ln until ln or the server is closed, then
// returns nil. Connections outlive Serve until Close.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.isClosed() {
				return nil
			}
			// Out of file descriptors and the like: wait and retry, as net/http does.
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("rtsp accept", "err", err, "retry_in", backoff)
				select {
				case <-time.After(backoff):
				case <-s.done:
				}
				continue
			}
			return fmt.Errorf("rtsp: accept: %w", err)
		}
		backoff = 0
		c := newConn(s, nc)
		if !s.track(c) {
			_ = nc.Close()
			return nil
		}
	}
}

// track registers c and starts its goroutine, unless the server is closed.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	return true
}

// spawn runs f in a goroutine that Close waits for, unless the server is closed.
func (s *Server) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Drop disconnects, right away, every client set up on path or on a stream
// below it (Drop("/Streaming/Channels/<devIndex>") drops all of a device's
// channels). Call it after Available reports false for the path, so
// clients cannot come straight back.
func (s *Server) Drop(path string) {
	path = strings.TrimSuffix(path, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	dropped := 0
	for c := range s.conns {
		if p := c.streamPath; p != "" && (p == path || strings.HasPrefix(p, path+"/")) {
			_ = c.nc.Close()
			dropped++
		}
	}
	if dropped > 0 {
		s.log.Info("rtsp clients dropped", "path", path, "clients", dropped)
	}
}

// Close stops accepting, disconnects every client and waits for all the
// server's goroutines to end. Serve calls then return nil.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	close(s.done)
	var errs []error
	for ln := range s.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for c := range s.conns {
		_ = c.nc.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rtsp: close: %w", err)
	}
	return nil
}

// source returns the live source of a stream path, creating it on first use.
func (s *Server) source(streamPath string, kind int) *source {
	s.mu.Lock()
	defer s.mu.Unlock()
	src, ok := s.sources[streamPath]
	if !ok {
		var ssrc [8]byte
		_, _ = rand.Read(ssrc[:])
		src = &source{
			clip:      s.clips[kind],
			audio:     s.audio,
			clock:     s.clock,
			offset:    s.cameraOffset(streamPath),
			ssrc:      binary.BigEndian.Uint32(ssrc[:4]),
			audioSSRC: binary.BigEndian.Uint32(ssrc[4:]),
			subs:      make(map[*subscriber]struct{}),
		}
		s.sources[streamPath] = src
	}
	return src
}

// play subscribes sub to src, starting the source's sender if it is idle.
func (s *Server) play(src *source, sub *subscriber) error {
	if src.subscribe(sub, s.clock.frameAt(time.Now())+src.offset) {
		if !s.spawn(func() { src.runSender(s.done) }) {
			src.unsubscribe(sub)
			src.mu.Lock()
			src.running = false
			src.mu.Unlock()
			return errors.New("server closed")
		}
	}
	return nil
}
