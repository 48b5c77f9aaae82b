package rtsp

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

const (
	camMain = "/Streaming/Channels/3f2a9c1e-0001/101"
	camSub  = "/Streaming/Channels/3f2a9c1e-0001/102"
)

func TestFFprobeReportsH264Stream(t *testing.T) {
	t.Parallel() // mostly waits on the live clock
	env := newTestEnv(t)
	for _, tc := range []struct {
		name          string
		path          string
		transport     []string
		width, height int
	}{
		{"main", camMain, []string{"-rtsp_transport", "tcp"}, 1280, 720},
		{"sub", camSub, []string{"-rtsp_transport", "tcp"}, 640, 360},
		// ffmpeg tries UDP first, gets 461 and falls back to TCP.
		{"default transport", camMain, nil, 1280, 720},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-v", "error"}, tc.transport...)
			args = append(args, "-show_entries", "stream=codec_name,width,height,r_frame_rate", "-of", "json",
				env.urlWithCredentials(tc.path, testPassword))
			p := startProc(t, "ffprobe", args...)
			if err := p.wait(t, 30*time.Second); err != nil {
				t.Fatalf("ffprobe: %v; stderr: %s", err, p.stderr.String())
			}
			var out struct {
				Streams []struct {
					CodecName  string `json:"codec_name"`
					Width      int    `json:"width"`
					Height     int    `json:"height"`
					RFrameRate string `json:"r_frame_rate"`
				} `json:"streams"`
			}
			if err := json.Unmarshal([]byte(p.stdout.String()), &out); err != nil {
				t.Fatalf("ffprobe output: %v: %s", err, p.stdout.String())
			}
			if len(out.Streams) != 1 {
				t.Fatalf("ffprobe found %d streams, want 1: %s", len(out.Streams), p.stdout.String())
			}
			s := out.Streams[0]
			if s.CodecName != "h264" || s.Width != tc.width || s.Height != tc.height || s.RFrameRate != "25/1" {
				t.Errorf("stream = %+v, want h264 %dx%d at 25/1", s, tc.width, tc.height)
			}
			for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
				// The refused UDP SETUP is logged as an error, then ffmpeg falls back.
				if line != "" && !(tc.transport == nil && strings.Contains(line, "461 Unsupported Transport")) {
					t.Errorf("ffprobe reported an error: %s", line)
				}
			}
		})
	}
}

func TestFFprobeWrongPasswordFails(t *testing.T) {
	env := newTestEnv(t)
	p := startProc(t, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_streams",
		env.urlWithCredentials(camMain, "wrong"))
	err := p.wait(t, 30*time.Second)
	if !isExit(err) {
		t.Fatalf("ffprobe with a wrong password: err = %v, want a failure exit", err)
	}
	if !strings.Contains(p.stderr.String(), "401") {
		t.Errorf("ffprobe stderr does not mention 401: %s", p.stderr.String())
	}
}

// ffmpegFrames plays url for the given media duration, decoding every frame,
// and returns the number of frames decoded and anything ffmpeg reported at
// error level.
func ffmpegDecode(t *testing.T, url string, seconds int) *proc {
	t.Helper()
	return startProc(t, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-rtsp_transport", "tcp",
		"-i", url, "-t", fmt.Sprint(seconds), "-f", "null", "-progress", "pipe:1", "-nostats", "-")
}

// progressFrames returns the last frame count ffmpeg's -progress output reports.
func progressFrames(progress string) int {
	frames := 0
	for _, line := range strings.Split(progress, "\n") {
		if v, ok := strings.CutPrefix(line, "frame="); ok {
			_, _ = fmt.Sscan(v, &frames)
		}
	}
	return frames
}

func TestTwoClientsDecodeAllFrames(t *testing.T) {
	t.Parallel() // mostly waits on the live clock
	env := newTestEnv(t)
	url := env.urlWithCredentials(camMain, testPassword)
	procs := []*proc{ffmpegDecode(t, url, 3), ffmpegDecode(t, url, 3)}
	for i, p := range procs {
		if err := p.wait(t, 30*time.Second); err != nil {
			t.Fatalf("ffmpeg %d: %v; stderr: %s", i, err, p.stderr.String())
		}
		// 3 s at 25 fps; one frame of slack for how ffmpeg cuts at -t.
		if n := progressFrames(p.stdout.String()); n < 74 {
			t.Errorf("ffmpeg %d decoded %d frames, want 75", i, n)
		}
		if errs := strings.TrimSpace(p.stderr.String()); errs != "" {
			t.Errorf("ffmpeg %d reported errors: %s", i, errs)
		}
	}
}
