package rtsp

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"mediagw/testsupport/testkit"
)

// rawExchange sends raw bytes on a new connection and returns the status
// code and CSeq of the first response (0 and "" if the server sent none).
func rawExchange(t *testing.T, addr, input string) (status int, cseq string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, input); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, ""
	}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		t.Fatalf("bad status line %q", line)
	}
	status, _ = strconv.Atoi(fields[1])
	for {
		h, err := br.ReadString('\n')
		if err != nil || strings.TrimSpace(h) == "" {
			return status, cseq
		}
		if v, ok := strings.CutPrefix(h, "CSeq:"); ok {
			cseq = strings.TrimSpace(v)
		}
	}
}

func TestMalformedRequestsGetErrorsNotPanics(t *testing.T) {
	env := newTestEnv(t)
	auth := "Authorization: Basic YWRtaW46UGFzc3cwcmQh\r\n" // admin:Passw0rd!
	for _, tc := range []struct {
		name   string
		input  string
		status int
	}{
		{"garbage line", "GARBAGE\r\n\r\n", 400},
		{"binary", "\x00\x01\x02\xff\xfe \x00 RTSP/1.0\r\n\r\n", 400},
		{"header without colon", "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nBadHeader\r\n\r\n", 400},
		{"line too long", "OPTIONS rtsp://h/" + strings.Repeat("a", 20000) + " RTSP/1.0\r\nCSeq: 1\r\n\r\n", 400},
		{"too many headers", "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n" + strings.Repeat("X-A: b\r\n", 100) + "\r\n", 400},
		{"negative Content-Length", "GET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: -5\r\n\r\n", 400},
		{"huge Content-Length", "GET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999999\r\n\r\n", 400},
		{"HTTP", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"missing CSeq", "OPTIONS * RTSP/1.0\r\n\r\n", 400},
		{"RTSP 2.0", "OPTIONS * RTSP/2.0\r\nCSeq: 7\r\n\r\n", 505},
		{"unknown method", "FROB * RTSP/1.0\r\nCSeq: 2\r\n\r\n", 501},
		{"record", "RECORD rtsp://h/x RTSP/1.0\r\nCSeq: 2\r\n\r\n", 405},
		{"bad URI", "DESCRIBE rtsp://%zz/ RTSP/1.0\r\nCSeq: 3\r\n" + auth + "\r\n", 400},
		{"relative URI", "DESCRIBE Streaming/Channels/1/101 RTSP/1.0\r\nCSeq: 3\r\n" + auth + "\r\n", 400},
		{"unknown stream", "DESCRIBE rtsp://h/Streaming/Channels/x/105 RTSP/1.0\r\nCSeq: 3\r\n" + auth + "\r\n", 404},
		{"not a channel", "DESCRIBE rtsp://h/ISAPI/System/status RTSP/1.0\r\nCSeq: 3\r\n" + auth + "\r\n", 404},
		{"path outside the gateway", "DESCRIBE rtsp://h/other/101 RTSP/1.0\r\nCSeq: 3\r\n" + auth + "\r\n", 404},
		{"bad interleaved channels", "SETUP rtsp://h" + camMain + "/trackID=1 RTSP/1.0\r\nCSeq: 4\r\n" + auth + "Transport: RTP/AVP/TCP;interleaved=a-b\r\n\r\n", 461},
		{"multicast", "SETUP rtsp://h" + camMain + " RTSP/1.0\r\nCSeq: 4\r\n" + auth + "Transport: RTP/AVP;multicast\r\n\r\n", 461},
		{"no Transport", "SETUP rtsp://h" + camMain + " RTSP/1.0\r\nCSeq: 4\r\n" + auth + "\r\n", 461},
		{"PLAY before SETUP", "PLAY rtsp://h" + camMain + " RTSP/1.0\r\nCSeq: 5\r\n" + auth + "Session: 1234\r\n\r\n", 454},
		{"TEARDOWN without session", "TEARDOWN rtsp://h" + camMain + " RTSP/1.0\r\nCSeq: 5\r\n\r\n", 454},
		{"truncated digest", "DESCRIBE rtsp://h" + camMain + " RTSP/1.0\r\nCSeq: 6\r\nAuthorization: Digest username=\"admin\", realm=\"\r\n\r\n", 401},
		{"bad basic", "DESCRIBE rtsp://h" + camMain + " RTSP/1.0\r\nCSeq: 6\r\nAuthorization: Basic !!!\r\n\r\n", 401},
		{"unknown scheme", "DESCRIBE rtsp://h" + camMain + " RTSP/1.0\r\nCSeq: 6\r\nAuthorization: Bearer x\r\n\r\n", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _ := rawExchange(t, env.addr, tc.input)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
		})
	}
	// Inputs that end mid-request or mid-frame: the server just hangs up.
	for _, input := range []string{"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n", "$\x01\xff\xffshort", "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 10\r\n\r\nabc"} {
		nc, err := net.Dial("tcp", env.addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(nc, input)
		_ = nc.Close()
	}
	// Still serving, and echoing CSeq.
	if status, cseq := rawExchange(t, env.addr, "OPTIONS * RTSP/1.0\r\nCSeq: 42\r\n\r\n"); status != 200 || cseq != "42" {
		t.Errorf("OPTIONS after bad input: %d CSeq %q", status, cseq)
	}
}

func TestVanishingClientsFreeEverything(t *testing.T) {
	baseline := runtime.NumGoroutine()
	env := newTestEnv(t)
	a, _ := playSession(t, env, camMain)
	b, _ := playSession(t, env, camMain)
	c, _ := playSession(t, env, camSub)
	readFrame(t, a)
	readFrame(t, b)
	readFrame(t, c)

	_ = a.nc.Close() // vanishes mid-stream, no TEARDOWN
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, "the vanished client to be unsubscribed", func() bool { return subscribers(env.srv, camMain) == 1 })
	for range 10 {
		readFrame(t, b) // the other client of the source is unaffected
	}
	_ = b.nc.Close()
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, "the idle source's sender to stop", func() bool {
		src := env.srv.sources[camMain]
		src.mu.Lock()
		defer src.mu.Unlock()
		return !src.running
	})

	// Close disconnects the client still playing and waits for every goroutine.
	if err := env.srv.Close(); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, c, 5*time.Second)
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, "goroutines to end", func() bool { return runtime.NumGoroutine() <= baseline })
}
