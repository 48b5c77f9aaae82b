package wiring

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"mediagw/services/recorder/internal/adapters/prometheus"
	"mediagw/services/recorder/internal/domain"
	"mediagw/services/recorder/internal/testsim"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/testkit"
)

// Two channels of a simulated gateway into S3: valid H.264 segments of the
// target length, continuous, with metadata; the password never reaches
// ffmpeg's command line, environment or the logs.
func TestRecordsContinuousSegmentsIntoS3(t *testing.T) {
	t.Parallel()
	testRecordsContinuous(t, "inproc")
}

// The same with ffmpeg as the engine.
func TestRecordsContinuousSegmentsIntoS3WithFFmpeg(t *testing.T) {
	t.Parallel()
	testRecordsContinuous(t, "ffmpeg")
}

func testRecordsContinuous(t *testing.T, engine string) {
	s := testsim.Start(t)
	h := newHarness(t, s, "cam-a", "cam-b")
	h.s.Engine = engine
	stop := h.start(h.store())

	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, "5 segments per channel in S3", func() bool {
		return len(h.segments("1")) >= 5 && len(h.segments("2")) >= 5
	})
	var pids []int
	if engine == "ffmpeg" {
		pids = testsim.FFmpegChildren(os.Getpid())
		if len(pids) < 2 {
			t.Fatalf("found %d ffmpeg children, want one per channel", len(pids))
		}
	}
	for _, pid := range pids {
		for _, f := range []string{"cmdline", "environ"} {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + f)
			if err != nil {
				continue // a test in parallel may have just stopped its ffmpeg
			}
			if strings.Contains(string(b), testsim.Password) {
				t.Errorf("password visible in /proc/%d/%s", pid, f)
			}
			if f == "cmdline" && !strings.Contains(string(b), "rtsp://127.0.0.1:") {
				t.Errorf("ffmpeg %d does not read from the loopback proxy: %q", pid, b)
			}
		}
	}
	if err, took := stop(); err != nil || took > h.stopTimeout {
		t.Fatalf("stop: %v after %v", err, took)
	}

	for _, ch := range []string{"1", "2"} {
		objs := h.segments(ch)
		checkContinuous(t, objs)
		for i, o := range objs {
			if i > 0 && i < len(objs)-1 { // the first and the one cut by the stop are short
				if d := o.seg.Duration - testSegment; d < -gop || d > gop {
					t.Errorf("channel %s segment %d lasts %v, want %v within one GOP", ch, i, o.seg.Duration, testSegment)
				}
			}
			if i > 2 && i != len(objs)-1 {
				continue // probing every file would be slow; the rest are alike
			}
			path, meta := h.download(o.key)
			codec, dur := probe(t, path)
			if codec != "h264" {
				t.Errorf("%s: codec %q", o.key, codec)
			}
			if d := dur - o.seg.Duration; d < -2*frame || d > 2*frame {
				t.Errorf("%s: ffprobe reads %v, the key says %v", o.key, dur, o.seg.Duration)
			}
			if meta["codec"] != "h264" || meta["start"] != o.seg.Start.UTC().Format(time.RFC3339Nano) ||
				meta["end"] != o.seg.End().UTC().Format(time.RFC3339Nano) || meta["duration-ms"] != strconv.FormatInt(o.seg.Duration.Milliseconds(), 10) {
				t.Errorf("%s: metadata %v", o.key, meta)
			}
		}
		// Keys are wall-clock times: the last segment ended around now.
		last := objs[len(objs)-1].seg.End()
		if d := time.Since(last); d < -time.Second || d > 15*time.Second {
			t.Errorf("channel %s: last segment ended %v ago", ch, d)
		}
		if got := testutil.ToFloat64(h.m.Restarts.WithLabelValues(ch, "exited")); got != 0 {
			t.Errorf("channel %s: %v restarts on a healthy stream", ch, got)
		}
		if w, u := testutil.ToFloat64(h.m.SegmentsWritten.WithLabelValues(ch)), testutil.ToFloat64(h.m.SegmentsUploaded.WithLabelValues(ch)); w != u || int(u) != len(objs) {
			t.Errorf("channel %s: written %v uploaded %v objects %d", ch, w, u, len(objs))
		}
	}
	if testutil.ToFloat64(h.m.SpoolSegments) != 0 {
		t.Error("spool not empty after a clean stop")
	}
	if strings.Contains(h.logs.String(), testsim.Password) {
		t.Error("password in the logs")
	}
}

// One recorder carries the cameras of two devices of a gateway (packing):
// each device's segments go under its own key and spool directory,
// continuous, with its own device in the metadata.
func TestRecordsChannelsOfSeveralDevices(t *testing.T) {
	t.Parallel()
	s := testsim.Start(t)
	h := newHarness(t, s, "cam-p1")
	other := awstest.Name("dev")
	h.s.Channels = append(h.s.Channels, domain.Channel{ID: other + "/1", URL: s.URL("cam-p2")})
	stop := h.start(h.store())
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, "3 segments per device in S3", func() bool {
		return len(h.segments("1")) >= 3 && len(h.segments(other+"/1")) >= 3
	})
	if err, _ := stop(); err != nil {
		t.Fatal(err)
	}
	for ch, dev := range map[string]string{"1": h.s.Device, other + "/1": other} {
		objs := h.segments(ch)
		checkContinuous(t, objs)
		_, meta := h.download(objs[1].key)
		if objs[1].seg.Device != dev || objs[1].seg.Channel != "1" || meta["device"] != dev || meta["channel"] != "1" {
			t.Errorf("%s: %s with metadata %v, want device %s channel 1", ch, objs[1].key, meta, dev)
		}
		if _, err := os.Stat(filepath.Join(h.s.SpoolDir, h.s.Gateway.String(), dev, "1", ".lock")); err != nil {
			t.Errorf("%s: spool directory: %v", ch, err)
		}
	}
}

// The camera goes away (the gateway answers 404) long enough to count as
// failing, and comes back: recording resumes within 10 s, the channel is
// healed at its first segment, nothing is placed in the outage.
func TestRestartsWhenTheStreamComesBack(t *testing.T) {
	t.Parallel()
	s := testsim.Start(t)
	h := newHarness(t, s, "cam-drop")
	path := testsim.StreamPath("cam-drop")
	testComesBack(t, h, func() { s.SetAvailable(path, false) }, func() { s.SetAvailable(path, true) })
}

// The same against a third-party source: Debian's ffmpeg publishing H.265
// with B-frames and AAC to an RTSP server, killed (the server drops its
// players and answers 404) and started again.
func TestRestartsWhenAThirdPartySourceRestarts(t *testing.T) {
	t.Parallel()
	push := testsim.StartPush(t)
	args := []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=50:min-keyint=50:scenecut=0:bframes=3:open-gop=0:log-level=error", "-c:a", "aac"}
	push.Publish(t, args...)
	h := newHarness(t, testsim.Start(t))
	h.s.Channels = []domain.Channel{{ID: "1", URL: push.URL()}}
	testComesBack(t, h, push.StopFFmpeg, func() { push.Publish(t, args...) })
}

func testComesBack(t *testing.T, h *harness, down, up func()) {
	// The defaults the settings give: waits from 1 s up to 5 s.
	h.knobs.RestartInitial, h.s.RestartMaxBackoff, h.knobs.FailingAfter = time.Second, 5*time.Second, 3
	stop := h.start(h.store())
	testkit.Eventually(t, 40*time.Second, 100*time.Millisecond, "2 segments", func() bool { return len(h.segments("1")) >= 2 })

	down()
	downAt := time.Now()
	testkit.Eventually(t, 40*time.Second, 100*time.Millisecond, "the channel to count as failing", func() bool {
		return testutil.ToFloat64(h.m.Failing.WithLabelValues("1")) == 1
	})
	// One more run at the capped wait, so that the wait is at its longest.
	runs := testutil.ToFloat64(h.m.Restarts.WithLabelValues("1", "start_failed")) + testutil.ToFloat64(h.m.Restarts.WithLabelValues("1", "exited"))
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, "another run", func() bool {
		return testutil.ToFloat64(h.m.Restarts.WithLabelValues("1", "start_failed"))+testutil.ToFloat64(h.m.Restarts.WithLabelValues("1", "exited")) > runs
	})
	up()
	upAt := time.Now()
	var first object
	testkit.Eventually(t, 40*time.Second, 100*time.Millisecond, "a segment recorded after the stream came back", func() bool {
		for _, o := range h.segments("1") {
			if o.seg.Start.After(upAt.Add(-time.Second)) {
				first = o
				return true
			}
		}
		return false
	})
	t.Logf("first segment after the source came back starts %v after it", first.seg.Start.Sub(upAt))
	if d := first.seg.Start.Sub(upAt); d > 10*time.Second {
		t.Errorf("recording again %v after the source came back, want within 10 s", d)
	}
	if testutil.ToFloat64(h.m.Failing.WithLabelValues("1")) != 0 {
		t.Error("still failing after a segment")
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"msg":"stream recovered"`) {
		t.Error("recovery not logged")
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "stream keeps failing") && !strings.Contains(l, `"wait"`) {
			t.Errorf("failing line without its wait: %s", l)
		}
		if strings.Contains(l, `"wait"`) {
			var w struct{ Wait string }
			if err := json.Unmarshal([]byte(l), &w); err == nil {
				if d, err := time.ParseDuration(w.Wait); err == nil && d > 5*time.Second {
					t.Errorf("waited %v, above the 5 s cap", d)
				}
			}
		}
	}
	if err, _ := stop(); err != nil {
		t.Fatal(err)
	}
	// Nothing is placed in the outage.
	for _, o := range h.segments("1") {
		if o.seg.Start.After(downAt.Add(time.Second)) && o.seg.Start.Before(upAt.Add(-time.Second)) {
			t.Errorf("segment %s starts while the stream was down", o.key)
		}
	}
}

// S3 is unreachable for a while: segments spool and are uploaded in order
// once it is back, none lost (the stream ran all along, so the segments in
// S3 must be one continuous run).
func TestS3OutageLosesNothing(t *testing.T) {
	t.Parallel()
	s := testsim.Start(t)
	h := newHarness(t, s, "cam-s3")
	sw := newTCPSwitch(t, strings.TrimPrefix(awstest.Endpoint(t), "http://"))
	stop := h.start(storeAt(h.aws, h.bucket, "http://"+sw.addr))

	testkit.Eventually(t, 40*time.Second, 100*time.Millisecond, "2 segments", func() bool { return len(h.segments("1")) >= 2 })
	sw.off()
	testkit.Eventually(t, 40*time.Second, 100*time.Millisecond, "3 segments spooled while S3 is down", func() bool {
		return testutil.ToFloat64(h.m.SpoolSegments) >= 3
	})
	if testutil.ToFloat64(h.m.UploadFailures.WithLabelValues("1")) == 0 {
		t.Error("no failed upload counted")
	}
	sw.on(t)
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, "the spool to drain", func() bool { return testutil.ToFloat64(h.m.SpoolSegments) == 0 })
	if err, _ := stop(); err != nil {
		t.Fatal(err)
	}
	objs := h.segments("1")
	checkContinuous(t, objs)
	// 2 before the outage and 3 during it, at least; how many more come
	// before the drain ends depends on the machine's load.
	if w := testutil.ToFloat64(h.m.SegmentsWritten.WithLabelValues("1")); int(w) != len(objs) || len(objs) < 5 {
		t.Errorf("written %v, in S3 %d", w, len(objs))
	}
	if testutil.ToFloat64(h.m.SegmentsDropped.WithLabelValues("1")) != 0 {
		t.Error("segments dropped")
	}
}

// Stopped while S3 is down, the recorder reports the segments it could
// not upload; the next recorder on the same spool uploads them.
func TestSpoolSurvivesARestart(t *testing.T) {
	t.Parallel()
	s := testsim.Start(t)
	h := newHarness(t, s, "cam-spool")
	h.stopTimeout = 3 * time.Second
	stop := h.start(storeAt(h.aws, h.bucket, "http://127.0.0.1:1")) // nothing listens there
	testkit.Eventually(t, 40*time.Second, 100*time.Millisecond, "2 spooled segments", func() bool { return testutil.ToFloat64(h.m.SpoolSegments) >= 2 })
	err, took := stop()
	if !errors.Is(err, domain.ErrSpoolNotEmpty) {
		t.Fatalf("stop with S3 down = %v, want ErrSpoolNotEmpty", err)
	}
	if ExitCode(err) != ExitSpoolNotEmpty {
		t.Errorf("exit code %d for %v, want %d", ExitCode(err), err, ExitSpoolNotEmpty)
	}
	if took > h.stopTimeout+time.Second {
		t.Errorf("stop took %v with a %v budget", took, h.stopTimeout)
	}
	spooled := int(testutil.ToFloat64(h.m.SpoolSegments))

	// The same channel again, now with S3 reachable, on a stream that is
	// gone: only the leftovers can reach S3.
	s.SetAvailable(testsim.StreamPath("cam-spool"), false)
	h2 := *h
	h2.m = nil
	h2.reg = newRegistry()
	h2.stopTimeout = 10 * time.Second
	stop2 := h2.start(h.store())
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, "leftovers in S3", func() bool { return len(h.segments("1")) >= spooled })
	if err, _ := stop2(); err != nil {
		t.Fatal(err)
	}
	objs := h.segments("1")
	if len(objs) != spooled {
		t.Fatalf("%d objects, %d were spooled", len(objs), spooled)
	}
	checkContinuous(t, objs)
}

// Transcoding with a resize into fragmented MP4: segments are still cut on
// the grid (keyframes are forced there) and playable.
func TestTranscodeIntoFragmentedMP4(t *testing.T) {
	t.Parallel()
	s := testsim.Start(t)
	h := newHarness(t, s, "cam-fmp4")
	h.s.Container, h.s.Codec, h.s.Size = domain.FragmentedMP4, "h264", "320x-2"
	stop := h.start(h.store())
	testkit.Eventually(t, 40*time.Second, 100*time.Millisecond, "3 segments", func() bool { return len(h.segments("1")) >= 3 })
	if err, _ := stop(); err != nil {
		t.Fatal(err)
	}
	objs := h.segments("1")
	checkContinuous(t, objs)
	for i, o := range objs {
		if !strings.HasSuffix(o.key, ".mp4") {
			t.Errorf("key %s is not .mp4", o.key)
		}
		if i > 0 && i < len(objs)-1 {
			if d := o.seg.Duration - testSegment; d < -frame || d > frame {
				t.Errorf("segment %d lasts %v; forced keyframes should cut at %v", i, o.seg.Duration, testSegment)
			}
		}
	}
	path, meta := h.download(objs[1].key)
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width:format=format_name", "-of", "default=noprint_wrappers=1", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"codec_name=h264", "width=320", "format_name=mov,mp4"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ffprobe: %s lacks %q", out, want)
		}
	}
	if meta["codec"] != "h264" {
		t.Errorf("metadata codec %q", meta["codec"])
	}
}

// A watchdog shorter than the time to the first segment fires: ffmpeg is
// stopped (closing what it has) and started again.
func TestWatchdogRestartsFFmpeg(t *testing.T) {
	t.Parallel()
	s := testsim.Start(t)
	h := newHarness(t, s, "cam-wd")
	h.s.Watchdog = 2 * time.Second
	stop := h.start(h.store())
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, "a watchdog restart", func() bool {
		return testutil.ToFloat64(h.m.Restarts.WithLabelValues("1", "stalled")) >= 1
	})
	if err, _ := stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(h.logs.String(), "no segment from ffmpeg in time") {
		t.Error("watchdog restart not logged")
	}
}

// Every channel dead for GiveUpAfter: Run returns ErrGaveUp by itself, and
// the failing stream was reported before.
func TestGivesUpWhenEveryChannelIsDead(t *testing.T) {
	t.Parallel()
	s := testsim.Start(t)
	s.SetAvailable(testsim.StreamPath("cam-dead"), false)
	h := newHarness(t, s, "cam-dead")
	h.s.GiveUpAfter = 4 * time.Second
	h.knobs.FailingAfter = 2
	h.s.RestartMaxBackoff = 500 * time.Millisecond
	h.m = prometheus.New(h.reg, h.s.Gateway.String(), h.s.Device)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := h.runtime(ctx, h.store())
	if err != nil {
		t.Fatal(err)
	}
	err = rt.Run(ctx)
	if !errors.Is(err, domain.ErrGaveUp) {
		t.Fatalf("Run = %v, want ErrGaveUp", err)
	}
	if ExitCode(err) != ExitGaveUp {
		t.Errorf("exit code %d for %v", ExitCode(err), err)
	}
	if testutil.ToFloat64(h.m.Failing.WithLabelValues("1")) != 1 || !strings.Contains(h.logs.String(), "stream keeps failing") {
		t.Error("the dead stream was not reported as failing")
	}
}
