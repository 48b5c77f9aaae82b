package gatewaysim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"mediagw/testsupport/gatewaysim/rtsp"
)

// mediaServer is what the gateway needs of its RTSP server.
type mediaServer interface {
	Serve(ln net.Listener) error
	Drop(path string)
	Close() error
}

// Server is a running simulated gateway.
type Server struct {
	cfg    Config
	log    *slog.Logger
	st     *state
	auth   *authenticator
	faults *faultSet
	// loginFaults is read by every ISAPI and RTSP request (never nil after Start).
	loginFaults atomic.Pointer[LoginFaults]
	router      map[string]route
	gatewayID   string
	mac         string

	httpAddr  string // actual address, kept across reboots
	rtspAddr  string
	adminAddr string
	media     mediaServer
	admin     *http.Server

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	httpSrv   *http.Server
	rtspLn    net.Listener
	rebooting bool
	up        chan struct{} // closed while the gateway answers
	flappers  map[string]context.CancelFunc
	// hung is non-nil while the gateway software hangs (Hang); it is
	// closed when the hang ends (Unhang, a reboot, a replacement, Close).
	hung       chan struct{}
	instanceID string // the simulated machine (Replace gives a new one)
}

// now is the simulated gateway's clock (Config.Now).
func (s *Server) now() time.Time { return s.cfg.Now() }

// Start listens and serves a simulated gateway until Close or ctx ends.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.LoginFaults.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		auth:      newAuthenticator(cfg),
		faults:    &faultSet{},
		gatewayID: strings.ToUpper(uuid.NewString()),
		flappers:  map[string]context.CancelFunc{},
		up:        make(chan struct{}),
	}
	s.instanceID = newInstanceID()
	mac := make([]byte, 6)
	_, _ = rand.Read(mac)
	mac[0] = 0xbc // a Hikvision OUI prefix byte; cosmetic
	s.mac = net.HardwareAddr(mac).String()
	lf := cfg.LoginFaults
	s.loginFaults.Store(&lf)
	s.router = s.routes()
	s.ctx, s.cancel = context.WithCancel(context.Background())

	fail := func(err error) (*Server, error) {
		s.shutdown()
		return nil, err
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fail(fmt.Errorf("gatewaysim: http listen: %w", err))
	}
	s.httpAddr = httpLn.Addr().String()
	httpPort, rtspPort := portOf(s.httpAddr), 554
	var rtspLn net.Listener
	if cfg.RTSPAddr != "" {
		rtspLn, err = net.Listen("tcp", cfg.RTSPAddr)
		if err != nil {
			httpLn.Close()
			return fail(fmt.Errorf("gatewaysim: rtsp listen: %w", err))
		}
		s.rtspAddr = rtspLn.Addr().String()
		rtspPort = portOf(s.rtspAddr)
	}
	s.st = newState(cfg, httpPort, rtspPort, s.now())
	for i := 0; i < cfg.Devices; i++ {
		if _, err := s.st.addDevice(DeviceSpec{Channels: cfg.ChannelsPerDevice}, s.now()); err != nil {
			httpLn.Close()
			if rtspLn != nil {
				rtspLn.Close()
			}
			return fail(err)
		}
	}
	if rtspLn != nil {
		media, err := rtsp.NewServer(rtsp.Config{
			Credentials:  s.st.credentials,
			Available:    s.streamAvailable,
			Login:        s.rtspLogin,
			MediaDir:     cfg.MediaDir,
			Media:        cfg.Media,
			MediaOptions: cfg.MediaOptions,
			Logger:       cfg.Logger.With("component", "rtsp"),
		})
		if err != nil {
			httpLn.Close()
			rtspLn.Close()
			return fail(fmt.Errorf("gatewaysim: rtsp: %w", err))
		}
		s.media = media
	}
	if cfg.AdminAddr != "" {
		adminLn, err := listenLoopback(cfg.AdminAddr)
		if err != nil {
			httpLn.Close()
			if rtspLn != nil {
				rtspLn.Close()
			}
			return fail(err)
		}
		s.adminAddr = adminLn.Addr().String()
		s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second}
		s.goServe(func() { _ = s.admin.Serve(adminLn) })
	}
	s.mu.Lock()
	s.bootLocked(httpLn, rtspLn)
	s.mu.Unlock()

	if cfg.Scenario != nil {
		sc := cfg.Scenario
		s.goServe(func() {
			if err := s.RunScenario(s.ctx, sc); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Error("scenario", "err", err)
			}
		})
	}
	if ctx != nil && ctx.Done() != nil {
		s.goServe(func() {
			select {
			case <-ctx.Done():
				go s.Close()
			case <-s.ctx.Done():
			}
		})
	}
	s.log.Info("gateway simulator started", "http", s.URL(), "rtsp", s.rtspAddr, "admin", s.adminAddr,
		"devices", cfg.Devices, "channelsPerDevice", cfg.ChannelsPerDevice)
	return s, nil
}

func portOf(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	var n int
	_, _ = fmt.Sscan(p, &n)
	return n
}

// listenLoopback refuses to expose the unauthenticated admin API beyond
// the machine.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("gatewaysim: admin address %q: %w", addr, err)
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("gatewaysim: admin address %q must be a loopback address", addr)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("gatewaysim: admin listen: %w", err)
	}
	return ln, nil
}

func (s *Server) goServe(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// bootLocked starts serving on the given listeners. s.mu must be held.
func (s *Server) bootLocked(httpLn, rtspLn net.Listener) {
	s.httpSrv = &http.Server{
		Handler:           http.HandlerFunc(s.serveISAPI),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	srv := s.httpSrv
	s.goServe(func() { _ = srv.Serve(httpLn) })
	s.rtspLn = rtspLn
	if rtspLn != nil && s.media != nil {
		media := s.media
		s.goServe(func() { _ = media.Serve(rtspLn) })
	}
	s.rebooting = false
	close(s.up)
}

// URL is the gateway's HTTP base URL, e.g. http://127.0.0.1:18080.
func (s *Server) URL() string { return "http://" + s.httpAddr }

// HTTPAddr is the ISAPI listen address (host:port).
func (s *Server) HTTPAddr() string { return s.httpAddr }

// AdminURL is the admin endpoint's base URL, or "" when disabled.
func (s *Server) AdminURL() string {
	if s.adminAddr == "" {
		return ""
	}
	return "http://" + s.adminAddr
}

// RTSPAddr is the RTSP listen address (host:port), or "" when disabled.
func (s *Server) RTSPAddr() string { return s.rtspAddr }

// StreamURL is the rtsp:// URL of a channel, as streamMedia answers it to a
// client that reached the gateway on its listen address.
func (s *Server) StreamURL(devIndex string, channel int, sub bool) string {
	r := &http.Request{Host: s.httpAddr}
	return "rtsp://" + s.rtspHostPort(r) + StreamPath(devIndex, channel, sub)
}

// rtspLogin puts an RTSP request that needs authentication through the
// same account policy as ISAPI: one lockout and ledger per source IP, and
// the login faults.
func (s *Server) rtspLogin(at rtsp.LoginAttempt) rtsp.LoginDecision {
	now := s.now()
	lf := s.LoginFaults()
	outcome := authFailed
	switch {
	case !at.Presented:
		outcome = authChallenge
	case lf.BasicOnly && at.Scheme != "basic":
	case at.Valid:
		outcome = authOK
	}
	v, failed := s.login(loginAttempt{
		ip: at.RemoteIP, protocol: ProtocolRTSP, user: at.User, request: at.Method + " " + at.Path,
		presented: at.Presented, outcome: outcome,
	}, lf, now)
	if v.outcome == authOK {
		return rtsp.LoginDecision{Allow: true}
	}
	d := rtsp.LoginDecision{BasicOnly: lf.BasicOnly}
	if failed {
		d.Delay, d.Drop = lf.Late401, lf.Lost401
	}
	return d
}

// streamAvailable tells the RTSP server whether a path is served now.
func (s *Server) streamAvailable(p string) bool {
	devIndex, channel, _, okp := parseStreamPath(p)
	if !okp {
		return false
	}
	s.mu.Lock()
	down := s.rebooting || s.closed || s.hung != nil
	s.mu.Unlock()
	if down {
		return false
	}
	d, found := s.st.device(devIndex)
	return found && d.Status == StatusOnline && d.hasChannel(channel)
}

// dropStreams disconnects RTSP clients of every stream of d.
func (s *Server) dropStreams(d Device) {
	if s.media == nil {
		return
	}
	for _, c := range d.Channels {
		s.media.Drop(StreamPath(d.DevIndex, c.ID, false))
		s.media.Drop(StreamPath(d.DevIndex, c.ID, true))
	}
}

// Close stops everything the server started and waits for it.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.shutdown()
	s.log.Info("gateway simulator stopped")
	return nil
}

func (s *Server) shutdown() {
	s.cancel()
	s.mu.Lock()
	srv, ln := s.httpSrv, s.rtspLn
	s.httpSrv, s.rtspLn = nil, nil
	s.unhangLocked()
	s.mu.Unlock()
	if s.st != nil {
		s.st.broker.dropAll()
	}
	if srv != nil {
		_ = srv.Close()
	}
	if ln != nil {
		_ = ln.Close()
	}
	if s.media != nil {
		_ = s.media.Close()
	}
	if s.admin != nil {
		_ = s.admin.Close()
	}
	s.wg.Wait()
}

// Reboot takes the gateway down for downtime (Config.RebootDowntime if 0):
// HTTP and RTSP connections are cut and refused, event streams end, locks
// and nonces are forgotten, then it listens again on the same ports with
// uptime starting at 0. It returns at once; WaitUp waits for the return.
func (s *Server) Reboot(downtime time.Duration) {
	s.startReboot(downtime, 0)
}

func (s *Server) startReboot(downtime, delay time.Duration) {
	if downtime <= 0 {
		downtime = s.cfg.RebootDowntime
	}
	s.mu.Lock()
	if s.closed || s.rebooting {
		s.mu.Unlock()
		return
	}
	s.rebooting = true
	s.up = make(chan struct{})
	s.mu.Unlock()
	s.st.update(func(st *state) { st.counters.Reboots++ })
	s.goServe(func() { s.reboot(downtime, delay) })
}

func (s *Server) reboot(downtime, delay time.Duration) {
	select {
	case <-time.After(delay):
	case <-s.ctx.Done():
		return
	}
	s.log.Info("gateway rebooting", "downtime", downtime)
	s.mu.Lock()
	srv, ln := s.httpSrv, s.rtspLn
	s.httpSrv, s.rtspLn = nil, nil
	s.unhangLocked() // a reboot ends a hang
	s.mu.Unlock()
	s.st.broker.dropAll()
	if srv != nil {
		_ = srv.Close()
	}
	if ln != nil {
		_ = ln.Close()
	}
	for _, d := range s.st.deviceList() {
		s.dropStreams(d)
	}
	s.auth.reset()

	select {
	case <-time.After(downtime):
	case <-s.ctx.Done():
		return
	}
	httpLn, rtspLn, err := s.relisten()
	if err != nil {
		return // closed meanwhile
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		httpLn.Close()
		if rtspLn != nil {
			rtspLn.Close()
		}
		return
	}
	s.st.update(func(st *state) {
		st.settings.BootTime = s.now()
		st.settings.RebootRequired = false
	})
	s.bootLocked(httpLn, rtspLn)
	s.log.Info("gateway back up")
}

// relisten binds the same addresses again, retrying while the ports are
// still held (TIME_WAIT, a slow close) until Close.
func (s *Server) relisten() (net.Listener, net.Listener, error) {
	for {
		httpLn, err := net.Listen("tcp", s.httpAddr)
		if err == nil {
			if s.rtspAddr == "" {
				return httpLn, nil, nil
			}
			rtspLn, err := net.Listen("tcp", s.rtspAddr)
			if err == nil {
				return httpLn, rtspLn, nil
			}
			httpLn.Close()
		}
		s.log.Warn("gateway cannot listen again yet", "err", err)
		select {
		case <-time.After(100 * time.Millisecond):
		case <-s.ctx.Done():
			return nil, nil, s.ctx.Err()
		}
	}
}

// WaitUp blocks until the gateway answers (after a reboot) or ctx ends.
func (s *Server) WaitUp(ctx context.Context) error {
	s.mu.Lock()
	up := s.up
	s.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Uptime is how long the gateway has been up since its last (re)boot.
func (s *Server) Uptime() time.Duration {
	return s.now().Sub(s.st.snapshotSettings().BootTime)
}
