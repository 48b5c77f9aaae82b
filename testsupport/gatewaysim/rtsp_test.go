package gatewaysim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mediagw/pkg/isapi"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

func withCredentials(t *testing.T, raw, password string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(gatewaysimtest.User, password)
	return u.String()
}

// runTool runs ffprobe/ffmpeg with a hard timeout and returns stdout and the error.
func runTool(t *testing.T, timeout time.Duration, name string, args ...string) ([]byte, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return stdout.Bytes(), stderr.String(), err
}

// decodedFrames is the last frame count in ffmpeg's -progress output.
func decodedFrames(progress string) int {
	frames := 0
	for _, line := range strings.Split(progress, "\n") {
		if v, ok := strings.CutPrefix(line, "frame="); ok {
			_, _ = fmt.Sscan(v, &frames)
		}
	}
	return frames
}

func TestRTSPThroughTheGateway(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe is required for this test (apt-get install ffmpeg)")
	}
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithRTSP(), gatewaysimtest.WithDevices(2, 2))
	ctx := t.Context()
	c, err := isapi.New(sim.URL(), gatewaysimtest.User, gatewaysimtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	devs := sim.Devices()
	mainURL, err := c.StreamURL(ctx, devs[0].DevIndex, 2, isapi.StreamMain)
	if err != nil {
		t.Fatal(err)
	}

	// ffprobe on the streamMedia URL reports H.264.
	out, stderr, err := runTool(t, 20*time.Second, "ffprobe", "-v", "error", "-rtsp_transport", "tcp",
		"-show_streams", "-of", "json", withCredentials(t, mainURL, gatewaysimtest.Password))
	if err != nil {
		t.Fatalf("ffprobe: %v: %s", err, stderr)
	}
	var probe struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 || probe.Streams[0].CodecName != "h264" || probe.Streams[0].Width == 0 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}

	// Two clients at once both decode frames.
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, stderr, err := runTool(t, 20*time.Second, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
				"-i", withCredentials(t, mainURL, gatewaysimtest.Password), "-frames:v", "10", "-f", "null", "-")
			if err != nil {
				errs[i] = errors.New(stderr)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("client %d: %v", i, err)
		}
	}

	// A password change applies to RTSP at once.
	if _, err := c.ChangePassword(ctx, "Rtsp-Next-1"); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runTool(t, 10*time.Second, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_streams",
		withCredentials(t, mainURL, gatewaysimtest.Password)); err == nil || !bytes.Contains([]byte(stderr), []byte("401")) {
		t.Fatalf("old password on RTSP: err=%v %s", err, stderr)
	}

	// A playing client is cut when its camera goes offline, and the URL
	// fails from then on (well before the tool's timeout).
	play := exec.CommandContext(ctx, "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
		"-i", withCredentials(t, mainURL, "Rtsp-Next-1"), "-t", "60", "-f", "null", "-progress", "pipe:1", "-nostats", "-")
	var progress testkit.Buffer
	play.Stdout = &progress
	if err := play.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- play.Wait() }()
	t.Cleanup(func() { _ = play.Process.Kill(); <-done })
	// The client is playing once ffmpeg reports a decoded frame.
	testkit.Eventually(t, 20*time.Second, 20*time.Millisecond, "ffmpeg to decode a frame before the camera goes offline", func() bool {
		select {
		case err := <-done:
			done <- err // for the select below and the cleanup
			t.Fatalf("ffmpeg ended before playing: %v", err)
		default:
		}
		return decodedFrames(progress.String()) > 0
	})
	if err := sim.SetStatus(devs[0].DevIndex, gatewaysim.StatusOffline); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("the playing client was not cut when the camera went offline")
	}
	if _, _, err := runTool(t, 10*time.Second, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_streams",
		withCredentials(t, mainURL, "Rtsp-Next-1")); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("offline camera: err = %v, want a prompt failure", err)
	}

	// During a reboot the RTSP port refuses connections; then it is back.
	sim.Reboot(time.Second)
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, "the RTSP port to refuse connections during the reboot", func() bool {
		conn, err := net.DialTimeout("tcp", sim.RTSPAddr(), time.Second)
		if err == nil {
			conn.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sim.WaitUp(wctx); err != nil {
		t.Fatal(err)
	}
	subURL := sim.StreamURL(devs[1].DevIndex, 1, true)
	if _, stderr, err := runTool(t, 20*time.Second, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_streams",
		withCredentials(t, subURL, "Rtsp-Next-1")); err != nil {
		t.Fatalf("after reboot: %v %s", err, stderr)
	}
}
