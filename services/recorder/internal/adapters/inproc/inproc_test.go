package inproc_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"mediagw/pkg/loginbudget"
	"mediagw/services/recorder/internal/adapters/ffmpeg"
	"mediagw/services/recorder/internal/adapters/inproc"
	rtspadapter "mediagw/services/recorder/internal/adapters/rtsp"
	"mediagw/services/recorder/internal/app"
	"mediagw/services/recorder/internal/domain"
	"mediagw/services/recorder/internal/testsim"
)

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// relay opens the channel relay the recorder uses, logging in with the
// simulator's credentials when asked.
func relay(t *testing.T, upstream string) *rtspadapter.Proxy {
	t.Helper()
	p, err := rtspadapter.Listen(rtspadapter.Config{
		Gateway: "gw", Upstream: upstream,
		Login: func(ctx context.Context) (*app.Login, error) {
			return &app.Login{User: testsim.User, Password: testsim.Password,
				Finish: func(context.Context, loginbudget.Result) {}, Refused: func(context.Context) {}}, nil
		},
		Logger: logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func spec(t *testing.T, p *rtspadapter.Proxy, seg time.Duration) app.CaptureSpec {
	return app.CaptureSpec{
		Input: p.URL(), Dial: p.Dial, RTSPTimeout: 5 * time.Second, Dir: testDir(t), Prefix: "run_",
		SegmentLength: seg, Container: domain.MPEGTS,
	}
}

// collect waits for n listed segments.
func collect(t *testing.T, c app.Capture, n int) []app.Listed {
	t.Helper()
	var got []app.Listed
	timeout := time.After(time.Duration(n)*5*time.Second + 30*time.Second)
	for len(got) < n {
		select {
		case e, ok := <-c.Listed():
			if !ok {
				t.Fatalf("run ended after %d segments: %v", len(got), c.Err())
			}
			got = append(got, e)
		case <-timeout:
			t.Fatalf("only %d segments listed", len(got))
		}
	}
	return got
}

func probe(t *testing.T, path string) testsim.Probe {
	t.Helper()
	out, err := testsim.FFprobe(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	var p testsim.Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func num(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }

// checkSegments: contiguous to the frame by their entries, every stream
// ffprobe reads present, the video's length and frame rate as listed.
func checkSegments(t *testing.T, got []app.Listed, codec string, audio bool, anyAudio bool) {
	t.Helper()
	const fps = 25.0
	for i, e := range got {
		if i > 0 && e.Start != got[i-1].End {
			t.Errorf("segment %d starts at %.6f, the previous ended at %.6f", i, e.Start, got[i-1].End)
		}
		p := probe(t, e.Path)
		t.Logf("segment %d: %.3f–%.3f %+v", i, e.Start, e.End, p)
		var video, aud bool
		for _, s := range p.Streams {
			switch s.CodecType {
			case "video":
				video = true
				if s.CodecName != codec {
					t.Errorf("segment %d: video %s, want %s", i, s.CodecName, codec)
				}
				frames := num(s.Frames)
				listed := e.End - e.Start
				if math.Abs(frames/fps-listed) > 1.5/fps {
					t.Errorf("segment %d: %v frames for %.3f s listed", i, frames, listed)
				}
				if d := num(s.Duration); d > 0 && math.Abs(d-listed) > 1.5/fps {
					t.Errorf("segment %d: ffprobe's video duration %.3f, listed %.3f", i, d, listed)
				}
			case "audio":
				aud = true
				if s.CodecName != "aac" {
					t.Errorf("segment %d: audio %s", i, s.CodecName)
				}
				// AAC frames are 1024 samples: as many as fit the segment, give or take one.
				frame := 1024 / num(s.Rate)
				if d := num(s.Frames)*frame - (e.End - e.Start); !anyAudio && math.Abs(d) > 1.5*frame {
					t.Errorf("segment %d: %s audio frames at %s Hz for %.3f s listed", i, s.Frames, s.Rate, e.End-e.Start)
				}
			}
		}
		if !video || (aud != audio && !anyAudio) {
			t.Errorf("segment %d: video %v audio %v (want audio %v): %+v", i, video, aud, audio, p)
		}
	}
}

func TestSimulatorH264(t *testing.T) {
	sim := testsim.Start(t)
	p := relay(t, sim.URL("cam1"))
	sg := inproc.New(ffmpeg.Segmenter{})
	c, err := sg.Start(spec(t, p, 2*time.Second), logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Codec() != "h264" {
		t.Errorf("codec %q", c.Codec())
	}
	got := collect(t, c, 4)
	// The simulator sends RTCP sender reports with its (our) clock: stream
	// time 0 is placed by them, near the first packet's arrival.
	if at, ok := c.(app.Anchored).Anchor(); !ok {
		t.Error("no time anchor from the sender reports")
	} else if d := time.Since(at) - time.Duration(got[len(got)-1].End*float64(time.Second)); d < -time.Second || d > time.Second {
		t.Errorf("sender-report anchor %v is %v off the stream's progress", at, d)
	}
	c.Stop(5 * time.Second)
	for e := range c.Listed() {
		got = append(got, e)
	}
	<-c.Done()
	if err := c.Err(); err != nil {
		t.Errorf("stopped run: %v", err)
	}
	checkSegments(t, got[1:], "h264", false, false) // the first starts whenever the first keyframe came
}

func TestFFmpegPublishedH265WithBFramesAndAAC(t *testing.T) {
	push := testsim.StartPush(t)
	push.Publish(t, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=50:min-keyint=50:scenecut=0:bframes=3:open-gop=0:log-level=error",
		"-c:a", "aac", "-b:a", "64k")
	p := relay(t, push.URL())
	sg := inproc.New(ffmpeg.Segmenter{})
	c, err := sg.Start(spec(t, p, 2*time.Second), logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.Codec() != "hevc" {
		t.Errorf("codec %q", c.Codec())
	}
	// The bridge sends no RTP-Info: the audio is placed by the sender
	// reports ffmpeg sends every 5 s, and held until then.
	got := collect(t, c, 6)
	c.Stop(5 * time.Second)
	<-c.Done()
	checkSegments(t, got[1:3], "hevc", false, true)
	checkSegments(t, got[3:], "hevc", true, false)
}

func testDir(t *testing.T) string {
	if d := os.Getenv("INPROC_KEEP"); d != "" {
		os.MkdirAll(d, 0o755)
		return d
	}
	return t.TempDir()
}

// G.711 audio cannot be copied into MPEG-TS: the channel is recorded by
// ffmpeg, which encodes it to AAC (and copies the H.264).
func TestG711IsTranscodedByFFmpeg(t *testing.T) {
	push := testsim.StartPush(t)
	push.Publish(t, "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0",
		"-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1")
	p := relay(t, push.URL())
	sg := inproc.New(ffmpeg.Segmenter{})
	c, err := sg.Start(spec(t, p, 2*time.Second), logger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*ffmpeg.Process); !ok {
		t.Fatalf("capture %T, want ffmpeg's", c)
	}
	got := collect(t, c, 3)
	c.Stop(5 * time.Second)
	<-c.Done()
	for i, e := range got[1:] {
		var video, audio string
		for _, s := range probe(t, e.Path).Streams {
			switch s.CodecType {
			case "video":
				video = s.CodecName
			case "audio":
				audio = s.CodecName
			}
		}
		if video != "h264" || audio != "aac" {
			t.Errorf("segment %d: video %q audio %q, want h264 and aac", i+1, video, audio)
		}
	}
}

// behindFreezer is the simulator's stream of device behind a Freezer.
func behindFreezer(t *testing.T, sim *testsim.Sim, device string) (*testsim.Freezer, string) {
	u, err := url.Parse(sim.URL(device))
	if err != nil {
		t.Fatal(err)
	}
	f := testsim.StartFreezer(t, u.Host)
	u.Host = f.Addr()
	return f, u.String()
}

// A stall shorter than the RTSP timeout: the frames held back arrive in a
// burst and keep their own times (never squeezed); where the stream's
// clock jumped (the server dropped what it could not send), the segment
// ends and a new one starts. Every segment keeps the stream's frame rate
// (within 10 %) and the run goes on.
func TestShortStallKeepsTheFrameRate(t *testing.T) {
	sim := testsim.Start(t)
	frz, up := behindFreezer(t, sim, "cam-stall")
	p := relay(t, up)
	c, err := inproc.New(ffmpeg.Segmenter{}).Start(spec(t, p, 2*time.Second), logger(t))
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, c, 2)
	frz.Freeze()
	time.AfterFunc(3500*time.Millisecond, frz.Thaw) // the scenario: a 3.5 s stall (the simulator drops a client stalled much longer)
	got = append(got, collect(t, c, 4)...)
	c.Stop(5 * time.Second)
	for e := range c.Listed() {
		got = append(got, e)
	}
	<-c.Done()
	if err := c.Err(); err != nil {
		t.Fatalf("the run ended: %v", err)
	}
	if gaps := checkRate(t, got); gaps > 0 {
		t.Errorf("%d gaps: the frames held back belong where they were", gaps)
	}
}

// A stall longer than the RTSP timeout ends the run within it (the
// supervisor then starts another), listing what it recorded.
func TestLongStallEndsTheRunWithinTheTimeout(t *testing.T) {
	sim := testsim.Start(t)
	frz, up := behindFreezer(t, sim, "cam-dead")
	p := relay(t, up)
	sp := spec(t, p, 2*time.Second)
	sp.RTSPTimeout = 2 * time.Second
	c, err := inproc.New(ffmpeg.Segmenter{}).Start(sp, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	collect(t, c, 1)
	frz.Freeze()
	frozeAt := time.Now()
	listed := 0
	for range c.Listed() {
		listed++
	}
	<-c.Done()
	took := time.Since(frozeAt)
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "no data") {
		t.Errorf("run ended with %v, want a stall", err)
	}
	// The relay and the pipe may hold a little data; the timeout counts
	// from the last byte.
	if took > 2*sp.RTSPTimeout+time.Second {
		t.Errorf("stall noticed after %v, timeout %v", took, sp.RTSPTimeout)
	}
	if listed != 1 {
		t.Errorf("%d segments listed at the stall, want the one being written", listed)
	}
}

// checkRate checks each segment's frame rate (within 10 % of 25 fps, the
// stop's short one aside) and returns the number of gaps between them;
// segments never overlap.
func checkRate(t *testing.T, got []app.Listed) int {
	t.Helper()
	gaps := 0
	for i, e := range got {
		if i > 0 && e.Start != got[i-1].End {
			gaps++
			if e.Start < got[i-1].End {
				t.Errorf("segment %d starts at %.3f, before the previous end %.3f", i, e.Start, got[i-1].End)
			}
		}
		listed := e.End - e.Start
		if i == len(got)-1 && listed < 0.5 {
			continue // the stop's
		}
		frames := 0.0
		for _, s := range probe(t, e.Path).Streams {
			if s.CodecType == "video" {
				frames = num(s.Frames)
			}
		}
		t.Logf("segment %d: %.3f–%.3f, %v frames", i, e.Start, e.End, frames)
		if rate := frames / listed; math.Abs(rate-25)/25 > 0.1 {
			t.Errorf("segment %d: %v frames in %.3f s = %.1f fps, stream 25 fps", i, frames, listed, rate)
		}
	}
	return gaps
}

// The server drops what it cannot send during a stall: after it, the
// stream's clock has jumped. The segment ends at its last picture, the
// next starts at the next keyframe after the stall, and both keep the
// frame rate. The packets come from Debian's ffmpeg.
func TestStallWithDroppedFramesStartsANewSegment(t *testing.T) {
	push := testsim.StartPush(t)
	push.Publish(t, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k")
	p := relay(t, push.URL())
	c, err := inproc.New(ffmpeg.Segmenter{}).Start(spec(t, p, 2*time.Second), logger(t))
	if err != nil {
		t.Fatal(err)
	}
	got := collect(t, c, 2)
	push.Drop(true)
	time.AfterFunc(3*time.Second, func() { push.Drop(false) }) // the scenario: 3 s of frames lost
	got = append(got, collect(t, c, 4)...)
	c.Stop(5 * time.Second)
	for e := range c.Listed() {
		got = append(got, e)
	}
	<-c.Done()
	if gaps := checkRate(t, got); gaps != 1 {
		t.Errorf("%d gaps, want the stall's", gaps)
	}
}
