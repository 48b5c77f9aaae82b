package recorder

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"mediagw/pkg/gatewaysim"
	"mediagw/pkg/gatewaysim/rtsp"
)

const (
	simUser     = "admin"
	simPassword = "Rtsp-Secret-42"
)

// sim is the gateway simulator's RTSP server with streams that can be
// switched off and on.
type sim struct {
	srv  *rtsp.Server
	addr string

	mu   sync.Mutex
	down map[string]bool
}

func startSim(t testing.TB) *sim {
	t.Helper()
	s := &sim{down: map[string]bool{}}
	srv, err := rtsp.NewServer(rtsp.Config{
		Credentials: func() (string, string) { return simUser, simPassword },
		Available: func(path string) bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return !s.down[path]
		},
		MediaDir: gatewaysim.DefaultMediaDir(),
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
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

// path is the stream path of a device's main stream.
func streamPath(device string) string { return filepath.Join("/Streaming/Channels", device, "101") }

func (s *sim) url(device string) string { return "rtsp://" + s.addr + streamPath(device) }

// setAvailable switches a stream off (dropping its clients) or on.
func (s *sim) setAvailable(path string, up bool) {
	s.mu.Lock()
	s.down[path] = !up
	s.mu.Unlock()
	if !up {
		s.srv.Drop(path)
	}
}
