package inproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"mediagw/services/recorder/internal/app"
	"mediagw/services/recorder/internal/domain"
)

const (
	tsOffset     = 126000 // 1.4 s: keeps decoding times positive (as ffmpeg's muxer does)
	reorderDepth = 3      // pictures a stream may reorder (B-frames, pyramids)
	// A jump of the stream's clock between pictures of more than this (or
	// of eight frame durations, for slow streams), or backwards, ends the
	// segment: a segment holds one stretch of the source's clock, never
	// frames squeezed or stretched across a gap.
	maxJump = 90000
	// Audio frames held at most (about 13 s of 48 kHz AAC): until video
	// catches up, or the sender reports place the audio.
	maxAudioHeld = 600
)

// errNotCopyable: the stream has media the in-process path cannot copy
// into MPEG-TS (G.711 audio, MJPEG…): ffmpeg must transcode it.
var errNotCopyable = errors.New("stream needs transcoding")

// Capture is one in-process run (app.Capture): an RTSP session whose
// video (H.264/H.265) and AAC audio are written into MPEG-TS segments.
type Capture struct {
	spec   app.CaptureSpec
	log    *slog.Logger
	c      *client
	base   string
	tracks []*trackState
	video  *trackState
	audio  *trackState

	listed   chan app.Listed
	done     chan struct{}
	err      error
	stopping atomic.Bool
	stopOnce sync.Once

	mu     sync.Mutex
	anchor time.Time // wall time of stream time 0 from an RTCP sender report
	hasSR  bool

	// run state (the reading goroutine only)
	originSet   bool
	haveOrigin  bool
	origin      int64     // 90 kHz time of stream time 0
	arrival0    time.Time // arrival of the first packet
	reo         *reorder
	seg         *tsFile
	prev        *tsFile // cut, waiting for audio to pass its end
	prevStart   int64
	prevEnd     int64
	segStart    int64
	boundary    time.Time // the segment ends at the first keyframe at or after it
	maxPTS      int64
	lastVPTS    int64
	haveV       bool
	seq         int
	audioQ      []vframe
	apes        []byte  // AAC frames gathered for one PES packet
	apesPTS     int64   // of the first
	apesFile    *tsFile // the file they go to
	audioSynced bool
	emitted     []vframe
}

type trackState struct {
	t       track
	ch      int
	clock   int64
	base    int64 // RTP time (unwrapped) of stream 90 kHz time 0
	hasBase bool
	rtpInfo uint32
	hasInfo bool
	vdep    *videoDepack
	adep    *aacDepack
	srWall  time.Time // latest sender report
	srRTP   int64
	hasSR   bool
}

func (ts *trackState) unwrap(t uint32) int64 {
	if ts.vdep != nil {
		return ts.vdep.ts.unwrap(t)
	}
	return ts.adep.ts.unwrap(t)
}

func (ts *trackState) to90k(t int64) int64 { return (t - ts.base) * 90000 / ts.clock }

// lastTS is the unwrapped RTP time of the track's latest packet.
func (ts *trackState) lastTS() int64 {
	if ts.vdep != nil {
		return ts.vdep.ts.last
	}
	return ts.adep.ts.last
}

// start connects, describes and plays; the run goes on in the background.
func start(spec app.CaptureSpec, log *slog.Logger) (*Capture, error) {
	conn, err := dial(spec)
	if err != nil {
		return nil, err
	}
	to := spec.RTSPTimeout
	if to <= 0 {
		to = 5 * time.Second
	}
	k := &Capture{spec: spec, log: log, c: newClient(conn, to), listed: make(chan app.Listed, 16), done: make(chan struct{}), reo: newReorder(reorderDepth)}
	conn2 := conn
	ok := false
	defer func() {
		if !ok {
			conn2.Close()
		}
	}()
	tracks, base, err := k.c.describe(spec.Input)
	if err != nil {
		return nil, err
	}
	k.base = base
	for _, t := range tracks {
		switch {
		case t.media == "video" && k.video == nil && (t.encoding == "H264" || t.encoding == "H265"):
			k.video = &trackState{t: t, vdep: newVideoDepack(t)}
		case t.media == "video" && k.video == nil:
			return nil, fmt.Errorf("%w: video %s", errNotCopyable, t.encoding)
		case t.media == "audio" && k.audio == nil:
			cfg, err := t.aac()
			if err != nil {
				return nil, fmt.Errorf("%w: audio %s (%v)", errNotCopyable, t.encoding, err)
			}
			k.audio = &trackState{t: t, adep: &aacDepack{cfg: cfg}}
		}
	}
	if k.video == nil {
		return nil, fmt.Errorf("%w: no video track", errNotCopyable)
	}
	for i, ts := range []*trackState{k.video, k.audio} {
		if ts == nil {
			continue
		}
		ts.ch = 2 * i
		ts.clock = int64(ts.t.clockRate)
		if ts.clock <= 0 {
			ts.clock = 90000
		}
		if err := k.c.setup(base, ts.t, i); err != nil {
			return nil, err
		}
		k.tracks = append(k.tracks, ts)
	}
	info, err := k.c.play(base)
	if err != nil {
		return nil, err
	}
	for _, ts := range k.tracks {
		ts.rtpInfo, ts.hasInfo = rtpInfoFor(info, controlURL(base, ts.t.control), len(k.tracks))
	}
	ok = true
	go k.run()
	return k, nil
}

func dial(spec app.CaptureSpec) (net.Conn, error) {
	if spec.Dial != nil {
		return spec.Dial()
	}
	u, err := url.Parse(spec.Input)
	if err != nil || u.Scheme != "rtsp" {
		return nil, errors.New("rtsp: input is not an rtsp:// URL")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "554")
	}
	c, err := net.DialTimeout("tcp", host, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("rtsp: %w", err)
	}
	return c, nil
}

// Pid is the recorder's own: there is no child process.
func (k *Capture) Pid() int { return 0 }

func (k *Capture) Listed() <-chan app.Listed { return k.listed }
func (k *Capture) Done() <-chan struct{}     { return k.done }
func (k *Capture) Err() error                { return k.err }

// Codec is the video codec as the S3 metadata names it.
func (k *Capture) Codec() string {
	if k.video.t.encoding == "H265" {
		return "hevc"
	}
	return "h264"
}

// FirstPacket: entries carry true starts already.
func (k *Capture) FirstPacket(string) (float64, bool) { return 0, false }

// Anchor is the wall time of stream time 0 from the camera's RTCP sender
// reports, once one arrived.
func (k *Capture) Anchor() (time.Time, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.anchor, k.hasSR
}

// Stop ends the run: the segment being written ends at the last picture
// and is listed. The connection is closed after grace at the latest.
func (k *Capture) Stop(grace time.Duration) {
	k.stopOnce.Do(func() {
		k.stopping.Store(true)
		k.c.conn.SetReadDeadline(time.Now())
		t := time.AfterFunc(grace, func() { k.c.conn.Close() })
		go func() { <-k.done; t.Stop() }()
	})
}

func (k *Capture) run() {
	defer close(k.done)
	defer close(k.listed)
	stopKA := make(chan struct{})
	go k.c.keepAlive(k.base, stopKA)
	err := k.loop()
	close(stopKA)
	k.flush()
	if k.stopping.Load() {
		err = nil
		k.c.teardown(k.base)
	}
	k.c.conn.Close()
	k.err = err
}

func (k *Capture) loop() error {
	var pkt rtp.Packet
	for {
		ch, payload, _, err := k.c.read()
		if err != nil {
			if k.stopping.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("rtsp: no data for %s: %w", k.c.timeout, err)
			}
			return fmt.Errorf("rtsp: %w", err)
		}
		if k.stopping.Load() {
			return nil
		}
		if ch < 0 || payload == nil {
			continue
		}
		var ts *trackState
		for _, t := range k.tracks {
			if ch == t.ch || ch == t.ch+1 {
				ts = t
			}
		}
		if ts == nil {
			continue
		}
		now := time.Now()
		if ch == ts.ch+1 {
			k.rtcp(ts, payload)
			continue
		}
		if err := pkt.Unmarshal(payload); err != nil {
			continue
		}
		if err := k.packet(ts, &pkt, now); err != nil {
			return err
		}
	}
}

// rtcp reads sender reports: the wall time of an RTP time. The video's
// places stream time 0 on the wall clock; with both tracks' reports and
// no RTP-Info, the audio is placed against the video by them.
func (k *Capture) rtcp(ts *trackState, b []byte) {
	for len(b) >= 4 {
		n := 4 * (int(binary.BigEndian.Uint16(b[2:4])) + 1)
		if n > len(b) {
			return
		}
		if b[1] == 200 && n >= 28 {
			sec := binary.BigEndian.Uint32(b[8:12])
			frac := binary.BigEndian.Uint32(b[12:16])
			ts.srWall = time.Unix(int64(sec)-2208988800, int64(frac)*1e9>>32)
			ts.srRTP, ts.hasSR = ts.unwrap(binary.BigEndian.Uint32(b[16:20])), true
			if ts == k.video {
				k.videoSR()
			}
			k.syncAudio()
		}
		b = b[n:]
	}
}

func (k *Capture) videoSR() {
	v := k.video
	if !k.haveOrigin || !v.hasBase {
		return
	}
	stream := v.to90k(v.srRTP) - k.origin
	anchor := v.srWall.Add(-time.Duration(stream) * time.Second / 90000)
	k.mu.Lock()
	defer k.mu.Unlock()
	// A camera clock far from ours is not trusted: arrival times place the stream.
	if d := anchor.Sub(k.arrival0); d > -5*time.Second && d < 5*time.Second {
		k.anchor, k.hasSR = anchor, true
	} else if !k.hasSR {
		k.log.Debug("rtcp sender report far from our clock: ignored", "offset", d.String())
	}
}

// syncAudio places the audio track against the video by their sender
// reports when the server sent no RTP-Info (done once).
func (k *Capture) syncAudio() {
	a, v := k.audio, k.video
	if a == nil || a.hasInfo || k.audioSynced || !a.hasSR || !v.hasSR || !a.hasBase || !v.hasBase {
		return
	}
	k.audioSynced = true
	// The video's RTP time at the instant of the audio's report.
	vAt := v.srRTP + int64(a.srWall.Sub(v.srWall).Seconds()*float64(v.clock))
	base := a.srRTP - v.to90k(vAt)*a.clock/90000
	shift := (a.base - base) * 90000 / a.clock
	a.base = base
	for i := range k.audioQ {
		k.audioQ[i].pts += shift
	}
	k.log.Debug("audio placed by sender reports", "moved_ms", shift/90)
}

func (k *Capture) packet(ts *trackState, p *rtp.Packet, now time.Time) error {
	if !k.originSet {
		k.originSet, k.arrival0 = true, now
	}
	var frames []frame
	if ts.vdep != nil {
		if f := ts.vdep.push(p); f != nil {
			frames = append(frames, *f)
		}
	} else {
		fs, err := ts.adep.push(p)
		if err != nil {
			k.log.Debug("audio packet dropped", "err", err)
		}
		frames = fs
	}
	if !ts.hasBase {
		first := ts.lastTS()
		ts.hasBase = true
		if ts.hasInfo {
			ts.base = first - int64(int32(uint32(first)-ts.rtpInfo))
		} else {
			// Without RTP-Info, the first packet is placed by its arrival.
			ts.base = first - int64(now.Sub(k.arrival0).Seconds()*float64(ts.clock))
		}
	}
	if !k.haveOrigin {
		// Stream time 0 is the first packet of the session: the relay
		// reports that packet's arrival as the run's time anchor.
		k.origin, k.haveOrigin = ts.to90k(ts.lastTS()), true
	}
	for _, f := range frames {
		t := ts.to90k(f.ts) - k.origin
		if ts == k.video {
			// Frames late after a stall keep their own times (never
			// squeezed); a jump of the clock (frames lost in a stall, a
			// source restarted) ends the segment.
			if limit := max(maxJump, 8*k.reo.dur); k.haveV && (t-k.lastVPTS > limit || t-k.lastVPTS < -limit) {
				k.log.Warn("stream clock jumped: a new segment starts at the next keyframe", "by_seconds", float64(t-k.lastVPTS)/90000)
				if err := k.discontinuity(); err != nil {
					return err
				}
			}
			k.lastVPTS, k.haveV = t, true
			k.emitted = k.reo.push(vframe{pts: t, key: f.key, data: f.data}, k.emitted[:0])
			for _, v := range k.emitted {
				err := k.writeVideo(v)
				k.video.vdep.put(v.data) // written (or dropped): the buffer is free again
				if err != nil {
					return err
				}
			}
			continue
		}
		k.audioQ = append(k.audioQ, vframe{pts: t, data: f.data})
		if len(k.audioQ) > maxAudioHeld { // no video to follow: do not hold audio forever
			if err := k.writeAudioBefore(k.audioQ[len(k.audioQ)-1].pts + 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeVideo writes a picture in decoding order, cutting segments at
// keyframes: the first keyframe at or after each wall-clock multiple of
// the segment length ends one segment and starts the next, at that
// keyframe's presentation time, so one segment's end is the next one's
// start exactly.
func (k *Capture) writeVideo(v vframe) error {
	if k.seg != nil && v.key && !k.wall(v.pts).Before(k.boundary) {
		if err := k.writeAudioBefore(v.pts); err != nil {
			return err
		}
		if err := k.closeSegment(v.pts, false); err != nil {
			return err
		}
	}
	if k.seg == nil {
		if !v.key {
			return nil // a segment starts at a keyframe
		}
		if err := k.openSegment(v.pts); err != nil {
			return err
		}
	}
	if err := k.writeAudioBefore(v.dts); err != nil {
		return err
	}
	if k.prev != nil && v.dts-k.segStart > 90000 {
		// No audio past the cut for a second: list the segment anyway.
		if err := k.listPrev(); err != nil {
			return err
		}
	}
	if v.pts < k.segStart {
		return nil // a leading picture of an open GOP: it belongs before the cut
	}
	if v.pts > k.maxPTS {
		k.maxPTS = v.pts
	}
	return k.seg.writeVideo(v.data, v.pts+tsOffset, v.dts+tsOffset, v.key)
}

// writeAudioBefore writes the queued audio frames that start before t
// into the current segment (audio before the first segment is dropped).
func (k *Capture) writeAudioBefore(t int64) error {
	if a := k.audio; a != nil && !a.hasInfo && !k.audioSynced {
		if len(k.audioQ) < maxAudioHeld {
			return nil // until the sender reports place it
		}
		k.audioSynced = true
		k.log.Warn("no RTP-Info and no sender reports: audio placed by its arrival")
	}
	n := 0
	for _, a := range k.audioQ {
		if a.pts >= t {
			break
		}
		n++
		var f *tsFile
		switch {
		case k.seg != nil && a.pts >= k.segStart:
			if err := k.listPrev(); err != nil { // the audio has passed the cut
				return err
			}
			f = k.seg
		case k.prev != nil && a.pts >= k.prevStart:
			f = k.prev // audio that arrived after the picture that cut its segment
		default:
			continue // before the first segment
		}
		if err := k.addAudio(f, a); err != nil {
			return err
		}
	}
	k.audioQ = append(k.audioQ[:0], k.audioQ[n:]...)
	return nil
}

// audioPES is how much AAC one PES packet gathers (as ffmpeg's muxer
// does): a PES per AAC frame cost more than the frames' bytes.
const audioPES = 2900

// addAudio adds an ADTS frame to the PES packet being gathered for f,
// writing the packet when it is full or goes to another file.
func (k *Capture) addAudio(f *tsFile, a vframe) error {
	if k.apesFile != f || len(k.apes)+len(a.data) > audioPES {
		if err := k.flushAudio(); err != nil {
			return err
		}
	}
	if len(k.apes) == 0 {
		k.apesFile, k.apesPTS = f, a.pts
	}
	k.apes = append(k.apes, a.data...)
	return nil
}

func (k *Capture) flushAudio() error {
	if len(k.apes) == 0 {
		return nil
	}
	err := k.apesFile.writeAudio(k.apes, k.apesPTS+tsOffset)
	k.apes, k.apesFile = k.apes[:0], nil
	return err
}

// wall is the wall-clock time of a stream time.
func (k *Capture) wall(t int64) time.Time {
	k.mu.Lock()
	base := k.arrival0
	if k.hasSR {
		base = k.anchor
	}
	k.mu.Unlock()
	return base.Add(time.Duration(t) * time.Second / 90000)
}

func (k *Capture) openSegment(start int64) error {
	k.seq++
	path := filepath.Join(k.spec.Dir, fmt.Sprintf("%s%06d.ts", k.spec.Prefix, k.seq))
	f, err := createTS(path, k.video.t.encoding == "H265", k.audio != nil)
	if err != nil {
		return err
	}
	k.seg, k.segStart, k.maxPTS = f, start, start
	l := k.spec.SegmentLength
	if l <= 0 {
		l = 30 * time.Second
	}
	k.boundary = k.wall(start).Truncate(l).Add(l)
	return nil
}

// closeSegment ends the segment at end (stream time). With audio it
// stays open (as prev) until the audio passes end, so audio that arrives
// after the picture that cut it still lands in it; then it is listed.
func (k *Capture) closeSegment(end int64, final bool) error {
	if err := k.listPrev(); err != nil {
		return err
	}
	k.prev, k.prevStart, k.prevEnd = k.seg, k.segStart, end
	k.seg = nil
	if k.audio == nil || final {
		return k.listPrev()
	}
	return nil
}

// listPrev closes the previous segment and lists it.
func (k *Capture) listPrev() error {
	f := k.prev
	if f == nil {
		return nil
	}
	k.prev = nil
	if k.apesFile == f {
		if err := k.flushAudio(); err != nil {
			return err
		}
	}
	if err := f.close(); err != nil {
		return err
	}
	k.listed <- app.Listed{
		ListEntry: domain.ListEntry{File: f.path, Start: float64(k.prevStart) / 90000, End: float64(k.prevEnd) / 90000},
		Path:      f.path,
		Seen:      time.Now(),
	}
	return nil
}

// discontinuity ends the current segment after its last picture; the
// next starts at a keyframe.
func (k *Capture) discontinuity() error {
	k.emitted = k.reo.flush(k.emitted[:0])
	for _, v := range k.emitted {
		err := k.writeVideo(v)
		k.video.vdep.put(v.data) // written (or dropped): the buffer is free again
		if err != nil {
			return err
		}
	}
	k.reo.reset()
	if k.seg == nil {
		return k.listPrev()
	}
	end := k.maxPTS + k.reo.dur
	if err := k.writeAudioBefore(end); err != nil {
		return err
	}
	k.audioQ = k.audioQ[:0]
	return k.closeSegment(end, true)
}

// flush ends the run's last segment.
func (k *Capture) flush() {
	if err := k.discontinuity(); err != nil {
		k.log.Error("closing the last segment", "err", err)
		for _, f := range []*tsFile{k.prev, k.seg} {
			if f != nil {
				f.close()
			}
		}
		k.prev, k.seg = nil, nil
	}
}

// rtpInfoFor finds a track's RTP-Info entry: by its URL, else by the
// URL's last segment (servers spell the base differently: with or without
// a trailing slash, another host name), else the only entry of a session
// with one track.
func rtpInfoFor(info map[string]uint32, trackURL string, tracks int) (uint32, bool) {
	if v, ok := info[trackURL]; ok {
		return v, true
	}
	last := func(u string) string { return u[strings.LastIndex(strings.TrimSuffix(u, "/"), "/")+1:] }
	found, n := uint32(0), 0
	for u, v := range info {
		if last(u) == last(trackURL) {
			found, n = v, n+1
		}
	}
	if n == 1 {
		return found, true
	}
	if tracks == 1 && len(info) == 1 {
		for _, v := range info {
			return v, true
		}
	}
	return 0, false
}
