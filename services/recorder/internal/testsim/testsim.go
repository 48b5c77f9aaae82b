// Package testsim starts the gateway simulator's RTSP server for the
// recorder's tests, with streams that can be switched off and on.
package testsim

import (
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/rtsp"
)

// Credentials the simulated gateway accepts.
const (
	User     = "admin"
	Password = "Rtsp-Secret-42"
)

// Sim is a running RTSP server.
type Sim struct {
	srv  *rtsp.Server
	addr string

	mu   sync.Mutex
	down map[string]bool
}

// Start serves on a loopback port until the test ends. Streams exist for
// any device name; each plays 1280x720 H.264 at 25 fps with a 2 s GOP.
func Start(t testing.TB) *Sim {
	t.Helper()
	return StartWith(t, rtsp.MediaOptions{})
}

// StartWith is Start with other media: rtsp.MediaOptions{FullHD: true,
// Audio: true} is a camera's usual main stream, 1920x1080 H.264 at about
// 4 Mbit/s with AAC, what the benchmark records.
func StartWith(t testing.TB, media rtsp.MediaOptions) *Sim {
	t.Helper()
	s := &Sim{down: map[string]bool{}}
	srv, err := rtsp.NewServer(rtsp.Config{
		Credentials: func() (string, string) { return User, Password },
		Available: func(p string) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return !s.down[p]
		},
		MediaDir:     gatewaysim.DefaultMediaDir(),
		MediaOptions: media,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.srv, s.addr = srv, ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return s
}

// StreamPath is the path of a device's main stream.
func StreamPath(device string) string { return path.Join("/Streaming/Channels", device, "101") }

// URL is the credential-free URL of a device's main stream.
func (s *Sim) URL(device string) string { return "rtsp://" + s.addr + StreamPath(device) }

// URLWithCredentials is URL with the user and password in it, for
// third-party clients (ffmpeg) in tests; the recorder never gets one.
func (s *Sim) URLWithCredentials(device string) string {
	return "rtsp://" + User + ":" + Password + "@" + s.addr + StreamPath(device)
}

// SetAvailable switches a stream off (dropping its clients at once) or on.
func (s *Sim) SetAvailable(p string, up bool) {
	s.mu.Lock()
	s.down[p] = !up
	s.mu.Unlock()
	if !up {
		s.srv.Drop(p)
	}
}

// FFmpegChildren returns the pids of parent's ffmpeg child processes, read
// from /proc (the tests check that ffmpeg starts, restarts and dies with
// its recorder).
func FFmpegChildren(parent int) []int {
	des, _ := os.ReadDir("/proc")
	var out []int
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", de.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(ffmpeg") {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(parent) {
			out = append(out, pid)
		}
	}
	return out
}
