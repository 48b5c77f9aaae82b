package rtsp

import (
	"context"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"mediagw/testsupport/testkit"
)

// expectEOF reads (and discards) until the server closes the connection.
func expectEOF(t *testing.T, c *rtspClient, timeout time.Duration) {
	t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	if _, err := io.Copy(io.Discard, c.br); err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

func TestDropDisconnectsClientsAndOfflineFailsFast(t *testing.T) {
	t.Parallel() // mostly waits on the live clock
	env := newTestEnv(t)
	decoder := startProc(t, "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-rtsp_transport", "tcp",
		"-i", env.urlWithCredentials(camMain, testPassword), "-t", "60", "-f", "null", "-progress", "pipe:1", "-nostats", "-")
	goClient, _ := playSession(t, env, camMain)
	subClient, _ := playSession(t, env, camSub) // same camera, other stream: not dropped
	readFrame(t, goClient)
	readFrame(t, subClient)
	testkit.Eventually(t, 15*time.Second, 20*time.Millisecond, "ffmpeg to decode frames", func() bool { return progressFrames(decoder.stdout.String()) > 0 })

	env.setOffline(camMain, true)
	env.srv.Drop(camMain)
	if err := decoder.wait(t, 5*time.Second); err != nil && !isExit(err) {
		t.Fatalf("ffmpeg: %v", err)
	}
	expectEOF(t, goClient, 5*time.Second)
	for range 2 * frameRate {
		readFrame(t, subClient)
	}

	// The offline camera's URL fails at once, for ffprobe too.
	c := dialRTSP(t, env.addr)
	c.authorize = basicAuthorizer(testUser, testPassword)
	if resp := c.do("DESCRIBE", env.url(camMain)); resp.status != 404 {
		t.Fatalf("DESCRIBE of an offline camera: %d, want 404", resp.status)
	}
	probe := startProc(t, "ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-show_streams", env.urlWithCredentials(camMain, testPassword))
	if err := probe.wait(t, 5*time.Second); !isExit(err) || !strings.Contains(probe.stderr.String(), "404") {
		t.Errorf("ffprobe of an offline camera: err=%v stderr=%s, want a 404 failure", err, probe.stderr.String())
	}

	// Back online: served again.
	env.setOffline(camMain, false)
	again, _ := playSession(t, env, camMain)
	readFrame(t, again)

	// Dropping a device's prefix drops all its streams.
	env.setOffline(camMain, true)
	env.setOffline(camSub, true)
	env.srv.Drop("/Streaming/Channels/3f2a9c1e-0001")
	expectEOF(t, again, 5*time.Second)
	expectEOF(t, subClient, 5*time.Second)
}

// A client that stops reading is dropped; the others keep receiving every
// frame meanwhile.
func TestSlowClientDoesNotStallOthers(t *testing.T) {
	t.Parallel() // mostly waits on the live clock
	env := newTestEnv(t, func(s *Server) { s.queueFrames = 10 })
	fast, _ := playSession(t, env, camMain)

	// The slow client's tiny receive window makes the server's buffers fill.
	dialer := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	nc, err := dialer.DialContext(context.Background(), "tcp", env.addr)
	if err != nil {
		t.Fatal(err)
	}
	slow := newRTSPClient(t, nc)
	slow.authorize = basicAuthorizer(testUser, testPassword)
	resp := slow.do("SETUP", env.url(camMain)+"/"+trackName, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	if resp.status != 200 {
		t.Fatalf("SETUP: %d", resp.status)
	}
	slow.session, _, _ = strings.Cut(resp.get("Session"), ";")
	if resp := slow.do("PLAY", env.url(camMain)+"/"); resp.status != 200 {
		t.Fatalf("PLAY: %d", resp.status)
	}

	// Until the slow client is dropped, the fast one gets every frame in time.
	prev := readFrame(t, fast)
	for frames := 0; ; frames++ {
		if subscribers(env.srv, camMain) < 2 {
			if frames < frameRate {
				t.Errorf("slow client dropped after only %d frames", frames)
			}
			expectEOF(t, slow, 5*time.Second)
			return
		}
		if frames > 30*frameRate {
			t.Fatal("slow client was not dropped within 30 s")
		}
		f := readFrame(t, fast)
		if f.timestamp-prev.timestamp != ticksPerFrame || f.firstSeq != prev.lastSeq+1 {
			t.Fatalf("fast client missed frames: ts %d→%d seq %d→%d", prev.timestamp, f.timestamp, prev.lastSeq, f.firstSeq)
		}
		prev = f
	}
}

// subscribers counts the playing clients of a stream.
func subscribers(s *Server, path string) int {
	s.mu.Lock()
	src := s.sources[path]
	s.mu.Unlock()
	if src == nil {
		return 0
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	return len(src.subs)
}
