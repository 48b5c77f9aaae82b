package rtsp

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"
)

const publicMethods = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER"

// conn is one client connection. Its reader goroutine (serve) handles
// requests and owns the session state; while playing, a writer goroutine
// sends the media. Both write through w under wmu.
type conn struct {
	srv *Server
	nc  net.Conn
	br  *bufio.Reader
	log *slog.Logger

	wmu sync.Mutex
	w   *bufio.Writer

	// Session state, owned by serve. streamPath is also read by Drop, so
	// it is written under srv.mu.
	session    string
	streamPath string
	kind       int
	transports [3]*transportSpec // by track (trackVideo, trackAudio); nil: not set up
	play       *playback
}

// playback is a playing session's subscription and writer goroutine.
type playback struct {
	src  *source
	sub  *subscriber
	stop chan struct{} // closed to end the writer
	done chan struct{} // closed by the writer when it ends
}

// sendBuffer bounds what the kernel buffers for a client (Linux doubles
// it). Without a bound, loopback autotuning buffers megabytes, many seconds
// of video, before a stalled client is noticed.
const sendBuffer = 256 << 10

func newConn(s *Server, nc net.Conn) *conn {
	if tcp, ok := nc.(*net.TCPConn); ok {
		_ = tcp.SetWriteBuffer(sendBuffer)
	}
	return &conn{
		srv: s,
		nc:  nc,
		br:  bufio.NewReaderSize(nc, 8<<10), // its size bounds a request line
		w:   bufio.NewWriterSize(nc, 64<<10),
		log: s.log.With("remote", nc.RemoteAddr().String()),
	}
}

func (c *conn) serve() {
	defer func() {
		_ = c.nc.Close() // first: unblocks a writer stuck on a stalled client
		c.stopPlayback()
	}()
	c.log.Debug("rtsp connection opened")
	for {
		// An idle client that is not playing is disconnected after the session
		// timeout. A playing one is not: a client may legitimately only read;
		// a dead one is detected when writes to it fail or stall.
		deadline := time.Time{}
		if c.play == nil {
			deadline = time.Now().Add(c.srv.sessionTimeout)
		}
		if err := c.nc.SetReadDeadline(deadline); err != nil {
			return
		}
		first, err := c.br.Peek(1)
		if err != nil {
			c.logEnd(err)
			return
		}
		if first[0] == '$' {
			if err := c.skipInterleaved(); err != nil {
				c.logEnd(err)
				return
			}
			continue
		}
		req, err := readRequest(c.br)
		switch {
		case errors.Is(err, errMalformed):
			c.log.Debug("rtsp bad request", "err", err)
			_ = c.reply(newResponse(400), "")
			return
		case errors.Is(err, errVersion):
			if c.reply(newResponse(505), req.get("CSeq")) != nil {
				return
			}
			continue
		case err != nil:
			c.logEnd(err)
			return
		}
		if err := c.handle(req); err != nil {
			c.logEnd(err)
			return
		}
	}
}

func (c *conn) logEnd(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		c.log.Debug("rtsp connection closed")
		return
	}
	c.log.Debug("rtsp connection ended", "err", err)
}

// skipInterleaved discards a binary frame the client sends on the
// connection: RTCP receiver reports on the RTCP channel, ignored.
func (c *conn) skipInterleaved() error {
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return err
	}
	_, err := c.br.Discard(int(binary.BigEndian.Uint16(hdr[2:])))
	return err
}

func (c *conn) reply(resp *response, cseq string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.srv.writeTimeout)); err != nil {
		return err
	}
	if err := resp.writeTo(c.w, cseq); err != nil {
		return err
	}
	return c.w.Flush()
}

// handle answers one request; an error means the connection is unusable.
func (c *conn) handle(req *request) error {
	cseq := req.get("CSeq")
	if cseq == "" {
		return c.reply(newResponse(400), "")
	}
	var resp *response
	var afterReply func()
	switch req.method {
	case "OPTIONS":
		resp = newResponse(200).set("Public", publicMethods)
	case "DESCRIBE":
		resp = c.describe(req)
	case "SETUP":
		resp = c.setup(req)
	case "PLAY":
		resp, afterReply = c.playRequest(req)
	case "TEARDOWN":
		resp = c.teardown(req)
	case "GET_PARAMETER", "SET_PARAMETER":
		resp = c.keepAlive(req)
	case "ANNOUNCE", "RECORD", "PAUSE", "REDIRECT":
		resp = newResponse(405).set("Allow", publicMethods)
	default:
		resp = newResponse(501)
	}
	if err := c.holdBack(resp); err != nil {
		return err
	}
	if err := c.reply(resp, cseq); err != nil {
		return err
	}
	if afterReply != nil {
		afterReply()
	}
	return nil
}

// errDropped ends a connection whose request gets no answer (a login fault).
var errDropped = errors.New("request dropped without an answer")

// holdBack waits out resp's delay; with drop it then fails, so that the
// connection is closed without the answer.
func (c *conn) holdBack(resp *response) error {
	if resp.delay > 0 {
		t := time.NewTimer(resp.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.srv.done:
			return net.ErrClosed
		}
	}
	if resp.drop {
		return errDropped
	}
	return nil
}

// target resolves the request's stream and track and checks
// authentication; resp is non-nil if the request must be answered with it
// instead.
func (c *conn) target(req *request) (streamPath string, kind, track int, resp *response) {
	if resp := c.authenticate(req); resp != nil {
		return "", 0, 0, resp
	}
	streamPath, track, err := requestTarget(req.uri)
	if err != nil {
		return "", 0, 0, newResponse(400)
	}
	kind, ok := streamKind(streamPath)
	if !ok {
		return "", 0, 0, newResponse(404)
	}
	return streamPath, kind, track, nil
}

// authenticate checks the request's credentials and asks Config.Login, if
// set, how to answer; it returns nil when the request may be served.
func (c *conn) authenticate(req *request) *response {
	at := c.srv.auth.attempt(req.method, req.get("Authorization"))
	dec := LoginDecision{Allow: at.Valid}
	if c.srv.cfg.Login != nil {
		at.Method = req.method
		if host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String()); err == nil {
			at.RemoteIP = host
		}
		if p, _, err := requestTarget(req.uri); err == nil {
			at.Path = p
		}
		dec = c.srv.cfg.Login(at)
	}
	if dec.Allow {
		return nil
	}
	c.log.Debug("rtsp authentication failed", "method", req.method, "presented", at.Presented)
	resp := newResponse(401)
	for _, ch := range c.srv.auth.challenges(dec.BasicOnly) {
		resp.add("WWW-Authenticate", ch)
	}
	resp.delay, resp.drop = dec.Delay, dec.Drop
	return resp
}

func (c *conn) describe(req *request) *response {
	streamPath, kind, _, resp := c.target(req)
	if resp != nil {
		return resp
	}
	if !c.srv.cfg.Available(streamPath) {
		return newResponse(404)
	}
	base := c.contentBase(req.uri, streamPath)
	body, err := describeSDP(c.srv.clips[kind], c.srv.audio, c.nc.LocalAddr())
	if err != nil {
		c.log.Error("rtsp describe", "err", err)
		return newResponse(500)
	}
	resp = newResponse(200).set("Content-Type", "application/sdp").set("Content-Base", base)
	resp.body = body
	return resp
}

// contentBase is the stream URL with a trailing slash, against which the
// client resolves the track's control attribute; it never carries user info.
func (c *conn) contentBase(uri, streamPath string) string {
	u, err := url.Parse(uri)
	host := ""
	if err == nil {
		host = u.Host
	}
	if host == "" {
		host = c.nc.LocalAddr().String()
	}
	return (&url.URL{Scheme: "rtsp", Host: host, Path: streamPath + "/"}).String()
}

func (c *conn) setup(req *request) *response {
	streamPath, kind, track, resp := c.target(req)
	if resp != nil {
		return resp
	}
	if c.play != nil {
		return newResponse(455)
	}
	if id := sessionID(req); id != "" && id != c.session {
		return newResponse(454)
	}
	if track == 0 {
		track = trackVideo // SETUP of the presentation: its one required track
	}
	if track == trackAudio && c.srv.audio == nil {
		return newResponse(404)
	}
	// One stream per session: a second track must be of the same stream.
	if c.session != "" && c.streamPath != "" && c.streamPath != streamPath {
		return newResponse(459)
	}
	t, ok := parseTransport(req.get("Transport"))
	if !ok {
		return newResponse(461)
	}
	for other, ot := range c.transports {
		if ot != nil && other != track && (ot.rtpChannel == t.rtpChannel || ot.rtpChannel == t.rtcpChannel ||
			ot.rtcpChannel == t.rtpChannel || ot.rtcpChannel == t.rtcpChannel) {
			return newResponse(461) // the tracks' interleaved channels must differ
		}
	}
	// Registered before the availability check so a concurrent Drop either
	// sees this client or happens before the check (which then fails).
	c.setStreamPath(streamPath)
	if !c.srv.cfg.Available(streamPath) {
		c.setStreamPath("")
		return newResponse(404)
	}
	if c.session == "" {
		c.session = newSessionID()
	}
	c.kind, c.transports[track] = kind, &t
	src := c.srv.source(streamPath, kind)
	ssrc := src.ssrc
	if track == trackAudio {
		ssrc = src.audioSSRC
	}
	return newResponse(200).
		set("Transport", fmt.Sprintf("RTP/AVP/TCP;unicast;interleaved=%d-%d;ssrc=%08X;mode=play", t.rtpChannel, t.rtcpChannel, ssrc)).
		set("Session", c.sessionHeader())
}

func (c *conn) setStreamPath(p string) {
	c.srv.mu.Lock()
	c.streamPath = p
	c.srv.mu.Unlock()
}

func (c *conn) sessionHeader() string {
	return fmt.Sprintf("%s;timeout=%d", c.session, int(c.srv.sessionTimeout/time.Second))
}

func sessionID(req *request) string {
	id, _, _ := strings.Cut(req.get("Session"), ";")
	return strings.TrimSpace(id)
}

func newSessionID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToUpper(hex.EncodeToString(b[:]))
}

func (c *conn) playRequest(req *request) (*response, func()) {
	streamPath, _, _, resp := c.target(req)
	if resp != nil {
		return resp, nil
	}
	if c.session == "" || sessionID(req) != c.session {
		return newResponse(454), nil
	}
	if streamPath != c.streamPath {
		return newResponse(455), nil
	}
	if c.play != nil {
		return newResponse(200).set("Session", c.sessionHeader()), nil
	}
	if !c.srv.cfg.Available(streamPath) {
		return newResponse(404), nil
	}
	src := c.srv.source(streamPath, c.kind)
	p := &playback{
		src:  src,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	audio := c.transports[trackAudio] != nil
	queue := c.srv.queueFrames
	if audio { // the same time span of AAC frames on top
		queue += (c.srv.queueFrames*audioRate/samplesPerAAC + frameRate - 1) / frameRate
	}
	p.sub = &subscriber{
		video: c.transports[trackVideo] != nil,
		audio: audio,
		queue: make(chan liveFrame, queue),
		overflow: func() {
			c.log.Info("rtsp client too slow, dropped", "path", streamPath)
			_ = c.nc.Close()
		},
	}
	if err := c.srv.play(src, p.sub); err != nil {
		return newResponse(503), nil
	}
	var pws trackWriters
	var info []string
	base := c.contentBase(req.uri, streamPath)
	for track, t := range c.transports {
		if t == nil {
			continue
		}
		var seq [2]byte
		_, _ = rand.Read(seq[:])
		pw := &packetWriter{
			channel:     byte(t.rtpChannel),
			rtcpChannel: byte(t.rtcpChannel),
			ssrc:        src.ssrc,
			payloadType: payloadTypeH264,
			seq:         binary.BigEndian.Uint16(seq[:]),
		}
		name, rtptime := trackName, uint32(p.sub.start*ticksPerFrame)
		if track == trackAudio {
			pw.ssrc, pw.payloadType = src.audioSSRC, payloadTypeAudio
			name, rtptime = audioTrackName, uint32(p.sub.audioStart*samplesPerAAC)
		}
		pws[track] = pw
		info = append(info, fmt.Sprintf("url=%s;seq=%d;rtptime=%d", base+name, pw.seq, rtptime))
	}
	c.play = p
	resp = newResponse(200).
		set("Session", c.sessionHeader()).
		set("Range", "npt=now-").
		set("RTP-Info", strings.Join(info, ","))
	c.log.Info("rtsp play", "path", streamPath, "audio", audio)
	return resp, func() {
		// Started after the PLAY reply is written: media must not precede it.
		if !c.srv.spawn(func() { c.writeLoop(p, &pws) }) {
			close(p.done)
			_ = c.nc.Close()
		}
	}
}

// writeLoop sends the subscribed frames until stopped or a write fails.
func (c *conn) writeLoop(p *playback, pw *trackWriters) {
	defer close(p.done)
	for {
		select {
		case <-p.stop:
			return
		case lf := <-p.sub.queue:
			if err := c.writeFrame(pw, lf); err != nil {
				c.log.Debug("rtsp media write failed", "err", err)
				_ = c.nc.Close() // ends the reader, which cleans up
				return
			}
		}
	}
}

func (c *conn) writeFrame(pws *trackWriters, lf liveFrame) error {
	pw := pws[lf.track]
	if pw == nil {
		return nil // a track the client did not set up (not queued for it)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.srv.writeTimeout)); err != nil {
		return err
	}
	if err := pw.writeFrame(c.w, lf); err != nil {
		return err
	}
	return c.w.Flush()
}

// stopPlayback ends the session's media, if playing, and waits for its writer.
func (c *conn) stopPlayback() {
	if c.play == nil {
		return
	}
	c.play.src.unsubscribe(c.play.sub)
	close(c.play.stop)
	<-c.play.done
	c.play = nil
}

func (c *conn) teardown(req *request) *response {
	if id := sessionID(req); c.session == "" || id != c.session {
		return newResponse(454)
	}
	c.stopPlayback()
	c.session = ""
	c.transports = [3]*transportSpec{}
	c.setStreamPath("")
	return newResponse(200)
}

func (c *conn) keepAlive(req *request) *response {
	id := sessionID(req)
	if id == "" {
		return newResponse(200)
	}
	if id != c.session {
		return newResponse(454)
	}
	return newResponse(200).set("Session", c.sessionHeader())
}

// trackWriters are a playing client's packet writers, by track.
type trackWriters [3]*packetWriter

// packetWriter turns one track's frames into interleaved RTP packets for
// one client, with an RTCP sender report every few seconds so clients can
// map RTP timestamps to wall-clock time, as a camera allows. Each client
// numbers its own packets, so RTP-Info can promise the first sequence
// number before the first packet exists.
type packetWriter struct {
	channel     byte
	rtcpChannel byte
	ssrc        uint32
	payloadType byte
	seq         uint16

	packets, octets uint32    // sent so far, for sender reports
	lastReport      time.Time // frame time of the last sender report
}

const (
	payloadTypeH264      = 96
	senderReportInterval = 5 * time.Second
)

func (pw *packetWriter) writeFrame(w *bufio.Writer, lf liveFrame) error {
	var hdr [4 + 12]byte
	hdr[0] = '$'
	hdr[1] = pw.channel
	hdr[4] = 0x80 // RTP version 2
	binary.BigEndian.PutUint32(hdr[8:], lf.timestamp)
	binary.BigEndian.PutUint32(hdr[12:], pw.ssrc)
	last := len(lf.frame.payloads) - 1
	for i, payload := range lf.frame.payloads {
		binary.BigEndian.PutUint16(hdr[2:], uint16(12+len(payload)))
		hdr[5] = pw.payloadType
		if i == last {
			hdr[5] |= 0x80 // marker: last packet of the access unit (audio: every packet, one AU each)
		}
		binary.BigEndian.PutUint16(hdr[6:], pw.seq)
		pw.seq++
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		if _, err := w.Write(payload); err != nil {
			return err
		}
	}
	pw.packets += uint32(len(lf.frame.payloads))
	pw.octets += uint32(lf.frame.size)
	if lf.at.Sub(pw.lastReport) >= senderReportInterval {
		pw.lastReport = lf.at
		return pw.writeSenderReport(w, lf)
	}
	return nil
}

// ntpEpochOffset is the number of seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

// writeSenderReport writes an RTCP SR (RFC 3550 6.4.1) tying the frame's
// RTP timestamp to its wall-clock time.
func (pw *packetWriter) writeSenderReport(w *bufio.Writer, lf liveFrame) error {
	var sr [4 + 28]byte
	sr[0] = '$'
	sr[1] = pw.rtcpChannel
	binary.BigEndian.PutUint16(sr[2:], 28)
	sr[4] = 0x80                          // version 2, no reception report blocks
	sr[5] = 200                           // SR
	binary.BigEndian.PutUint16(sr[6:], 6) // length in 32-bit words minus one
	binary.BigEndian.PutUint32(sr[8:], pw.ssrc)
	ns := lf.at.UnixNano()
	secs := uint64(ns/int64(time.Second)) + ntpEpochOffset
	frac := uint64(ns%int64(time.Second)) << 32 / uint64(time.Second)
	binary.BigEndian.PutUint64(sr[12:], secs<<32|frac)
	binary.BigEndian.PutUint32(sr[20:], lf.timestamp)
	binary.BigEndian.PutUint32(sr[24:], pw.packets)
	binary.BigEndian.PutUint32(sr[28:], pw.octets)
	_, err := w.Write(sr[:])
	return err
}
