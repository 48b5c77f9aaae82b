package rtsp

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
)

// rtpFrame is one access unit as received: its packets' timestamp, first
// sequence number and NAL unit types in order.
type rtpFrame struct {
	timestamp uint32
	firstSeq  uint16
	lastSeq   uint16
	nalTypes  []byte
	payloads  [][]byte
}

// readFrame reads packets up to and including the next marker packet.
func readFrame(t *testing.T, c *rtspClient) rtpFrame {
	t.Helper()
	var f rtpFrame
	var depack codecs.H264Packet
	for i := 0; ; i++ {
		p, err := c.readRTP(0)
		if err != nil {
			t.Fatalf("read RTP: %v", err)
		}
		if p.PayloadType != 96 || p.Version != 2 {
			t.Fatalf("RTP packet with version %d payload type %d", p.Version, p.PayloadType)
		}
		if i == 0 {
			f.timestamp, f.firstSeq = p.Timestamp, p.SequenceNumber
		} else {
			if p.Timestamp != f.timestamp {
				t.Fatalf("timestamp changed within a frame without marker: %d then %d", f.timestamp, p.Timestamp)
			}
			if p.SequenceNumber != f.lastSeq+1 {
				t.Fatalf("sequence gap: %d then %d", f.lastSeq, p.SequenceNumber)
			}
		}
		f.lastSeq = p.SequenceNumber
		f.payloads = append(f.payloads, p.Payload)
		annexB, err := depack.Unmarshal(p.Payload)
		if err != nil {
			t.Fatalf("depacketize: %v", err)
		}
		for _, nal := range splitAnnexB(annexB) {
			f.nalTypes = append(f.nalTypes, nal[0]&0x1f)
		}
		if p.Marker {
			return f
		}
	}
}

func TestProtocolDetails(t *testing.T) {
	env := newTestEnv(t)
	c := dialRTSP(t, env.addr)
	url := env.url(camMain)

	resp := c.do("OPTIONS", url)
	if resp.status != 200 || !strings.Contains(resp.get("Public"), "GET_PARAMETER") {
		t.Fatalf("OPTIONS: %d Public=%q", resp.status, resp.get("Public"))
	}

	resp = c.do("DESCRIBE", url)
	if resp.status != 401 {
		t.Fatalf("DESCRIBE without credentials: %d, want 401", resp.status)
	}
	challenge := digestChallenge(t, resp)
	if !regexp.MustCompile(`realm="[^"]+"`).MatchString(challenge) || !regexp.MustCompile(`nonce="[0-9a-f]+"`).MatchString(challenge) {
		t.Errorf("Digest challenge %q lacks realm or nonce", challenge)
	}
	if !strings.Contains(strings.Join(resp.header["www-authenticate"], "\n"), "Basic realm=") {
		t.Errorf("401 does not offer Basic: %v", resp.header["www-authenticate"])
	}

	c.authorize = digestAuthorizer(testUser, "not-the-password", challenge)
	if resp = c.do("DESCRIBE", url); resp.status != 401 {
		t.Fatalf("DESCRIBE with a wrong password: %d, want 401", resp.status)
	}
	c.authorize = digestAuthorizer(testUser, testPassword, challenge)
	resp = c.do("DESCRIBE", url, "Accept: application/sdp")
	if resp.status != 200 || resp.get("Content-Type") != "application/sdp" {
		t.Fatalf("DESCRIBE: %d %q", resp.status, resp.get("Content-Type"))
	}
	if got, want := resp.get("Content-Base"), url+"/"; got != want {
		t.Errorf("Content-Base %q, want %q", got, want)
	}
	checkSDP(t, resp.body)

	resp = c.do("SETUP", url+"/"+trackName, "Transport: RTP/AVP;unicast;client_port=5000-5001")
	if resp.status != 461 {
		t.Fatalf("SETUP over UDP: %d, want 461", resp.status)
	}
	resp = c.do("SETUP", url+"/"+trackName, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	if resp.status != 200 {
		t.Fatalf("SETUP: %d", resp.status)
	}
	if tr := resp.get("Transport"); !strings.HasPrefix(tr, "RTP/AVP/TCP;unicast;interleaved=0-1") {
		t.Errorf("Transport %q", tr)
	}
	session, params, _ := strings.Cut(resp.get("Session"), ";")
	if session == "" || params != "timeout=60" {
		t.Fatalf("Session header %q, want <id>;timeout=60", resp.get("Session"))
	}

	c.session = "wrong-session"
	if resp = c.do("PLAY", url+"/"); resp.status != 454 {
		t.Errorf("PLAY with an unknown session: %d, want 454", resp.status)
	}
	c.session = session
	resp = c.do("PLAY", url+"/")
	if resp.status != 200 {
		t.Fatalf("PLAY: %d", resp.status)
	}
	info := regexp.MustCompile(`^url=(\S+);seq=(\d+);rtptime=(\d+)$`).FindStringSubmatch(resp.get("RTP-Info"))
	if info == nil || info[1] != url+"/"+trackName {
		t.Fatalf("RTP-Info %q", resp.get("RTP-Info"))
	}
	wantSeq, _ := strconv.ParseUint(info[2], 10, 16)
	wantTS, _ := strconv.ParseUint(info[3], 10, 32)

	first := readFrame(t, c)
	if first.firstSeq != uint16(wantSeq) || first.timestamp != uint32(wantTS) {
		t.Errorf("first packet seq=%d ts=%d, RTP-Info promised seq=%d rtptime=%d", first.firstSeq, first.timestamp, wantSeq, wantTS)
	}
	if len(first.nalTypes) < 3 || first.nalTypes[0] != 7 || first.nalTypes[1] != 8 || !bytes.Contains(first.nalTypes, []byte{5}) {
		t.Errorf("first frame NAL types %v, want SPS, PPS, …, IDR", first.nalTypes)
	}

	// RTCP receiver reports (here: junk) on the RTCP channel are ignored.
	if _, err := c.nc.Write(append([]byte{'$', 1, 0, 8}, "\x81\xc9\x00\x01junk"[:8]...)); err != nil {
		t.Fatal(err)
	}
	prev := first
	for range 30 {
		f := readFrame(t, c)
		if f.firstSeq != prev.lastSeq+1 || f.timestamp-prev.timestamp != ticksPerFrame {
			t.Fatalf("frame seq=%d ts=%d after seq=%d ts=%d: want consecutive at 3600 ticks", f.firstSeq, f.timestamp, prev.lastSeq, prev.timestamp)
		}
		prev = f
	}
	checkSenderReport(t, c.rtcp, first)

	if resp = c.do("GET_PARAMETER", url+"/"); resp.status != 200 {
		t.Errorf("GET_PARAMETER keep-alive while playing: %d", resp.status)
	}
	if resp = c.do("OPTIONS", url+"/"); resp.status != 200 {
		t.Errorf("OPTIONS keep-alive while playing: %d", resp.status)
	}
	if resp = c.do("TEARDOWN", url+"/"); resp.status != 200 {
		t.Fatalf("TEARDOWN: %d", resp.status)
	}
	// The writer has stopped before TEARDOWN is answered: nothing follows.
	_ = c.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.br.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
		t.Errorf("data after TEARDOWN: n=%d err=%v", n, err)
	}
}

// checkSenderReport checks the RTCP sender report that follows the first
// frame: it maps that frame's RTP timestamp to the current wall-clock time.
func checkSenderReport(t *testing.T, rtcp [][]byte, first rtpFrame) {
	t.Helper()
	if len(rtcp) == 0 {
		t.Fatal("no RTCP sender report received")
	}
	sr := rtcp[0]
	if len(sr) != 28 || sr[0] != 0x80 || sr[1] != 200 || binary.BigEndian.Uint16(sr[2:]) != 6 {
		t.Fatalf("not an RTCP sender report: % x", sr)
	}
	if ts := binary.BigEndian.Uint32(sr[16:]); ts != first.timestamp {
		t.Errorf("sender report RTP time %d, want the first frame's %d", ts, first.timestamp)
	}
	if n := binary.BigEndian.Uint32(sr[20:]); int(n) != len(first.payloads) {
		t.Errorf("sender report packet count %d, want %d", n, len(first.payloads))
	}
	ntp := binary.BigEndian.Uint64(sr[8:])
	wall := time.Unix(int64(ntp>>32)-ntpEpochOffset, int64((ntp&0xffffffff)*uint64(time.Second)>>32))
	if d := time.Since(wall); d < -5*time.Second || d > 5*time.Second {
		t.Errorf("sender report wall time %v is %v away from now", wall, d)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func checkSDP(t *testing.T, body []byte) {
	t.Helper()
	var desc sdp.SessionDescription
	if err := desc.Unmarshal(body); err != nil {
		t.Fatalf("SDP: %v\n%s", err, body)
	}
	if len(desc.MediaDescriptions) != 1 {
		t.Fatalf("SDP has %d media, want 1", len(desc.MediaDescriptions))
	}
	md := desc.MediaDescriptions[0]
	if md.MediaName.Media != "video" || strings.Join(md.MediaName.Formats, " ") != "96" {
		t.Errorf("SDP media %+v", md.MediaName)
	}
	if v, _ := md.Attribute("rtpmap"); v != "96 H264/90000" {
		t.Errorf("rtpmap %q", v)
	}
	if v, _ := md.Attribute("control"); v != trackName {
		t.Errorf("control %q", v)
	}
	fmtp, _ := md.Attribute("fmtp")
	if !strings.HasPrefix(fmtp, "96 ") || !strings.Contains(fmtp, "packetization-mode=1") {
		t.Errorf("fmtp %q", fmtp)
	}
	m := regexp.MustCompile(`sprop-parameter-sets=([^,;]+),([^,;]+)`).FindStringSubmatch(fmtp)
	if m == nil {
		t.Fatalf("fmtp %q lacks sprop-parameter-sets", fmtp)
	}
	for i, want := range []byte{7, 8} {
		nal, err := base64.StdEncoding.DecodeString(m[i+1])
		if err != nil || len(nal) == 0 || nal[0]&0x1f != want {
			t.Errorf("sprop-parameter-sets[%d] = %q: not a NAL unit of type %d", i, m[i+1], want)
		}
	}
	sps, _ := base64.StdEncoding.DecodeString(m[1])
	if w, h, err := spsResolution(sps); err != nil || w != 1280 || h != 720 {
		t.Errorf("SPS describes %dx%d (%v), want 1280x720", w, h, err)
	}
}

func TestBasicAuthAndPasswordChange(t *testing.T) {
	env := newTestEnv(t)
	url := env.url(camMain)
	c := dialRTSP(t, env.addr)
	c.authorize = basicAuthorizer(testUser, testPassword)
	if resp := c.do("DESCRIBE", url); resp.status != 200 {
		t.Fatalf("DESCRIBE with Basic: %d", resp.status)
	}
	c.authorize = basicAuthorizer(testUser, "wrong")
	if resp := c.do("DESCRIBE", url); resp.status != 401 {
		t.Fatalf("DESCRIBE with wrong Basic: %d", resp.status)
	}

	// Digest with the old password stops working at once after a change.
	resp := c.do("DESCRIBE", url)
	oldDigest := digestAuthorizer(testUser, testPassword, digestChallenge(t, resp))
	newDigest := digestAuthorizer(testUser, "N3w-secret", digestChallenge(t, resp))
	c.authorize = oldDigest
	if resp := c.do("DESCRIBE", url); resp.status != 200 {
		t.Fatalf("DESCRIBE with Digest: %d", resp.status)
	}
	env.mu.Lock()
	env.password = "N3w-secret"
	env.mu.Unlock()
	if resp := c.do("DESCRIBE", url); resp.status != 401 {
		t.Errorf("DESCRIBE with the old password after a change: %d, want 401", resp.status)
	}
	c.authorize = newDigest
	if resp := c.do("DESCRIBE", url); resp.status != 200 {
		t.Errorf("DESCRIBE with the new password: %d, want 200", resp.status)
	}
}

func TestLateJoinerStartsAtLiveKeyframe(t *testing.T) {
	t.Parallel() // mostly waits on the live clock
	env := newTestEnv(t)
	a, _ := playSession(t, env, camMain)
	aFirst := readFrame(t, a)
	// Let the source run past its first keyframe, so the next client cannot
	// start where the first one did.
	received := map[uint32][][]byte{aFirst.timestamp: aFirst.payloads}
	var last rtpFrame
	for range 30 {
		last = readFrame(t, a)
		received[last.timestamp] = last.payloads
	}

	b, resp := playSession(t, env, camMain)
	rtptime, _ := strconv.ParseUint(regexp.MustCompile(`rtptime=(\d+)`).FindStringSubmatch(resp.get("RTP-Info"))[1], 10, 32)
	bFirst := readFrame(t, b)
	if bFirst.timestamp != uint32(rtptime) {
		t.Errorf("late joiner's first timestamp %d, RTP-Info said %d", bFirst.timestamp, rtptime)
	}
	if bFirst.nalTypes[0] != 7 || !bytes.Contains(bFirst.nalTypes, []byte{5}) {
		t.Errorf("late joiner starts with NAL types %v, want SPS … IDR", bFirst.nalTypes)
	}
	// Live position: after what the first client had seen when the second
	// joined, and no more than one GOP later.
	ahead := int64(bFirst.timestamp - last.timestamp)
	if ahead <= 0 || ahead > int64(gopFrames+5)*ticksPerFrame {
		t.Errorf("late joiner starts %d ticks after the first client's latest frame, want within (0, one GOP]", ahead)
	}
	// Both clients see the same picture at the same timestamp.
	for ts := last.timestamp; ts != bFirst.timestamp; {
		f := readFrame(t, a)
		received[f.timestamp] = f.payloads
		ts = f.timestamp
	}
	if !equalPayloads(received[bFirst.timestamp], bFirst.payloads) {
		t.Errorf("the two clients received different frames at timestamp %d", bFirst.timestamp)
	}
}

func equalPayloads(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// The loop wraps seamlessly: the frame after the clip's last one is its
// first keyframe, with the timestamp still advancing by one frame.
func TestLoopWrapKeepsTimestampsRunning(t *testing.T) {
	t.Parallel() // mostly waits on the live clock
	var loopFrames int64
	env := newTestEnv(t, func(s *Server) {
		loopFrames = int64(len(s.clips[mainStream].frames))
		// Place the camera 3 s before the end of the loop.
		now := s.clock.frameAt(time.Now())
		s.cameraOffset = func(string) int64 { return ((loopFrames-3*frameRate-now)%loopFrames + loopFrames) % loopFrames }
	})
	// A decoder plays through the wrap without complaint: it starts at the
	// keyframe 2 s before the wrap and decodes 4 s.
	decoder := ffmpegDecode(t, env.urlWithCredentials(camMain, testPassword), 4)

	c, _ := playSession(t, env, camMain)
	clipFrames := env.srv.clips[mainStream].frames
	prev := readFrame(t, c)
	wrapped := false
	for i := 1; i <= 2*frameRate && !wrapped; i++ {
		f := readFrame(t, c)
		if f.timestamp-prev.timestamp != ticksPerFrame {
			t.Fatalf("timestamp step %d at frame %d, want %d", f.timestamp-prev.timestamp, i, ticksPerFrame)
		}
		wrapped = equalPayloads(f.payloads, payloadsOf(clipFrames[0])) && equalPayloads(prev.payloads, payloadsOf(clipFrames[loopFrames-1]))
		prev = f
	}
	if !wrapped {
		t.Fatalf("did not see the loop wrap from the clip's last frame to its first")
	}

	if err := decoder.wait(t, 30*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v; stderr: %s", err, decoder.stderr.String())
	}
	if n := progressFrames(decoder.stdout.String()); n < 4*frameRate-1 {
		t.Errorf("ffmpeg decoded %d frames across the wrap, want %d", n, 4*frameRate)
	}
	if errs := strings.TrimSpace(decoder.stderr.String()); errs != "" {
		t.Errorf("ffmpeg reported errors across the loop wrap: %s", errs)
	}
}

func payloadsOf(f clipFrame) [][]byte { return f.payloads }
