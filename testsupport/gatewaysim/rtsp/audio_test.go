package rtsp

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
)

func withAudio(c *Config) { c.MediaOptions = MediaOptions{Audio: true} }

// A client that sets up both tracks gets H.264 on its first channel pair
// and RFC 3640 AAC on its second: one AU per packet behind a 16-bit AU
// header, timestamps 1024 apart from RTP-Info's rtptime on, and sender
// reports that put both tracks on one wall clock.
func TestAudioTrackProtocol(t *testing.T) {
	env := newTestEnvWith(t, withAudio)
	c := dialRTSP(t, env.addr)
	url := env.url(camMain)
	resp := c.do("DESCRIBE", url)
	c.authorize = digestAuthorizer(testUser, testPassword, digestChallenge(t, resp))
	if resp = c.do("DESCRIBE", url); resp.status != 200 {
		t.Fatalf("DESCRIBE: %d", resp.status)
	}
	var desc sdp.SessionDescription
	if err := desc.Unmarshal(resp.body); err != nil {
		t.Fatal(err)
	}
	if len(desc.MediaDescriptions) != 2 || desc.MediaDescriptions[1].MediaName.Media != "audio" {
		t.Fatalf("SDP media: %s", resp.body)
	}
	am := desc.MediaDescriptions[1]
	if v, _ := am.Attribute("rtpmap"); v != "97 MPEG4-GENERIC/16000/1" {
		t.Errorf("audio rtpmap %q", v)
	}
	// AAC-LC (2), 16 kHz (index 8), mono: 00010 1000 0001 000.
	if v, _ := am.Attribute("fmtp"); !strings.Contains(v, "mode=AAC-hbr;config=1408;sizelength=13;indexlength=3;indexdeltalength=3") {
		t.Errorf("audio fmtp %q", v)
	}
	if v, _ := am.Attribute("control"); v != audioTrackName {
		t.Errorf("audio control %q", v)
	}

	if resp = c.do("SETUP", url+"/"+trackName, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"); resp.status != 200 {
		t.Fatalf("SETUP video: %d", resp.status)
	}
	c.session, _, _ = strings.Cut(resp.get("Session"), ";")
	if resp = c.do("SETUP", url+"/"+audioTrackName, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1"); resp.status != 461 {
		t.Errorf("SETUP audio on the video's channels: %d, want 461", resp.status)
	}
	if resp = c.do("SETUP", url+"/"+audioTrackName, "Transport: RTP/AVP/TCP;unicast;interleaved=2-3"); resp.status != 200 {
		t.Fatalf("SETUP audio: %d", resp.status)
	}
	if resp = c.do("PLAY", url+"/"); resp.status != 200 {
		t.Fatalf("PLAY: %d", resp.status)
	}
	infos := strings.Split(resp.get("RTP-Info"), ",")
	if len(infos) != 2 || !strings.HasPrefix(infos[1], "url="+url+"/"+audioTrackName+";") {
		t.Fatalf("RTP-Info %q", resp.get("RTP-Info"))
	}
	audioTime := rtpInfoField(t, infos[1], "rtptime")
	audioSeq := rtpInfoField(t, infos[1], "seq")

	// Read until 10 audio packets and a sender report of each track came.
	type report struct {
		ntp time.Time
		rtp uint32
	}
	reports := map[byte]report{}
	var audioTS []uint32
	var firstVideoTS uint32
	videoSeen := false
	deadline := time.Now().Add(15 * time.Second)
	for (len(audioTS) < 10 || len(reports) < 2) && time.Now().Before(deadline) {
		ch, data, err := c.readInterleaved()
		if err != nil {
			t.Fatal(err)
		}
		switch ch {
		case 0:
			if !videoSeen {
				firstVideoTS, videoSeen = binary.BigEndian.Uint32(data[4:]), true
			}
		case 2:
			if pt := data[1] & 0x7f; pt != payloadTypeAudio || data[1]&0x80 == 0 {
				t.Fatalf("audio packet: payload type %d, marker %v", pt, data[1]&0x80 != 0)
			}
			if len(audioTS) == 0 && uint64(binary.BigEndian.Uint16(data[2:])) != audioSeq {
				t.Errorf("first audio seq %d, RTP-Info says %d", binary.BigEndian.Uint16(data[2:]), audioSeq)
			}
			payload := data[12:]
			size := int(binary.BigEndian.Uint16(payload[2:]) >> 3)
			if binary.BigEndian.Uint16(payload) != 16 || size != len(payload)-4 || size == 0 {
				t.Fatalf("AU header %x for %d bytes", payload[:4], len(payload)-4)
			}
			audioTS = append(audioTS, binary.BigEndian.Uint32(data[4:]))
		case 1, 3:
			if data[1] != 200 {
				t.Fatalf("RTCP packet type %d on channel %d", data[1], ch)
			}
			secs, frac := binary.BigEndian.Uint32(data[8:]), binary.BigEndian.Uint32(data[12:])
			ns := int64(secs-ntpEpochOffset)*int64(time.Second) + int64(uint64(frac)*uint64(time.Second)>>32)
			reports[ch] = report{time.Unix(0, ns), binary.BigEndian.Uint32(data[16:])}
		}
	}
	if len(audioTS) < 10 || len(reports) < 2 {
		t.Fatalf("got %d audio packets and sender reports on channels %v", len(audioTS), reports)
	}
	if uint64(audioTS[0]) != audioTime {
		t.Errorf("first audio timestamp %d, RTP-Info says %d", audioTS[0], audioTime)
	}
	for i := 1; i < len(audioTS); i++ {
		if audioTS[i]-audioTS[i-1] != samplesPerAAC {
			t.Fatalf("audio timestamps %v: not 1024 apart", audioTS)
		}
	}
	// By the sender reports, audio starts with the first video frame (the
	// first AAC frame at or after it: within one AAC frame).
	v, a := reports[1], reports[3]
	videoAt := v.ntp.Add(time.Duration(int32(firstVideoTS-v.rtp)) * time.Second / clockRate)
	audioAt := a.ntp.Add(time.Duration(int32(audioTS[0]-a.rtp)) * time.Second / audioRate)
	if d := audioAt.Sub(videoAt); d < 0 || d >= audioFrameDuration {
		t.Errorf("first audio frame %v after the first video frame, want within [0, %v)", d, audioFrameDuration)
	}
}

// sharedMediaDir is the simulator's persistent media cache (gatewaysim's
// DefaultMediaDir, which this package cannot import): the 1080p clip takes
// a while to render, so it is rendered once per machine, not per test run.
func sharedMediaDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "mediagw", "gatewaysim-media")
}

func rtpInfoField(t *testing.T, info, name string) uint64 {
	t.Helper()
	for _, f := range strings.Split(info, ";") {
		if k, v, _ := strings.Cut(strings.TrimSpace(f), "="); k == name {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("RTP-Info %s=%q", name, v)
			}
			return n
		}
	}
	t.Fatalf("RTP-Info %q has no %s", info, name)
	return 0
}

// Without audio configured there is no audio track to set up.
func TestNoAudioTrackByDefault(t *testing.T) {
	env := newTestEnv(t)
	c2 := dialRTSP(t, env.addr)
	url := env.url(camMain)
	resp := c2.do("SETUP", url+"/"+audioTrackName, "Transport: RTP/AVP/TCP;unicast;interleaved=2-3")
	c2.authorize = digestAuthorizer(testUser, testPassword, digestChallenge(t, resp))
	if resp = c2.do("SETUP", url+"/"+audioTrackName, "Transport: RTP/AVP/TCP;unicast;interleaved=2-3"); resp.status != 404 {
		t.Errorf("SETUP of an audio track that does not exist: %d, want 404", resp.status)
	}
}

// A third-party client (Debian's ffmpeg) reads the 1080p main stream with
// audio: ffprobe sees H.264 1920x1080 and AAC 16 kHz mono, and ffmpeg
// decodes both for 6 s without an error, at their rates.
func TestFullHDWithAudioDecodesInFFmpeg(t *testing.T) {
	env := newTestEnvWith(t, func(c *Config) {
		c.MediaDir = sharedMediaDir()
		c.MediaOptions = MediaOptions{FullHD: true, Audio: true}
	})
	url := env.urlWithCredentials(camMain, testPassword)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_streams", "-of", "json", url).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Streams []struct {
			CodecName  string `json:"codec_name"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
			SampleRate string `json:"sample_rate"`
			Channels   int    `json:"channels"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatal(err)
	}
	if len(probe.Streams) != 2 {
		t.Fatalf("ffprobe streams: %s", out)
	}
	v, a := probe.Streams[0], probe.Streams[1]
	if v.CodecName != "h264" || v.Width != 1920 || v.Height != 1080 || a.CodecName != "aac" || a.SampleRate != "16000" || a.Channels != 1 {
		t.Errorf("ffprobe streams: %s", out)
	}

	// framecrc prints one line per decoded frame: "stream, dts, pts, duration, size, crc".
	cmd := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", url,
		"-t", "6", "-map", "0", "-f", "framecrc", "-")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffmpeg decode: %v: %s", err, stderr.String())
	}
	frames := map[string]int{}
	for _, line := range strings.Split(string(out), "\n") {
		if s, _, ok := strings.Cut(line, ","); ok && !strings.HasPrefix(line, "#") {
			frames[strings.TrimSpace(s)]++
		}
	}
	// 6 s: 150 video frames, 93.75 AAC frames; allow for where the cut falls.
	if frames["0"] < 140 || frames["0"] > 160 || frames["1"] < 85 || frames["1"] > 100 {
		t.Errorf("decoded frames per stream %v, want about 150 video and 94 audio", frames)
	}
}
