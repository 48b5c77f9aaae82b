package rtsp

import (
	"bufio"
	"strings"
	"testing"

	"github.com/icholy/digest"
)

// The parsers see untrusted input from the network; none may panic.

func FuzzReadRequest(f *testing.F) {
	for _, seed := range []string{
		"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
		"DESCRIBE rtsp://h/Streaming/Channels/1/101 RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\n\r\n",
		"GET_PARAMETER rtsp://h/ RTSP/1.0\r\nCSeq: 3\r\nContent-Length: 4\r\n\r\nabcd",
		"SETUP rtsp://h/x/trackID=1 RTSP/2.0\r\nCSeq: 4\r\nTransport: RTP/AVP/TCP;interleaved=0-1\r\n\r\n",
		"A B C\r\nX: 1\r\nX: 2\r\n\r\n",
		"\x00\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		req, err := readRequest(bufio.NewReaderSize(strings.NewReader(input), 4096))
		if err == nil && (req.method == "" || req.uri == "") {
			t.Errorf("accepted a request without method or URI: %q", input)
		}
	})
}

func FuzzRequestFields(f *testing.F) {
	for _, seed := range []string{
		"rtsp://127.0.0.1:8554/Streaming/Channels/3f2a/101/trackID=1?transportmode=unicast",
		"RTP/AVP/TCP;unicast;interleaved=0-1,RTP/AVP;unicast;client_port=1-2",
		`Digest username="admin", realm="IP Camera(gatewaysim)", nonce="00", uri="rtsp://h/", response="x"`,
		"Basic YWRtaW46eA==",
		"/Streaming/Channels/1/0",
	} {
		f.Add(seed)
	}
	a, err := newAuthenticator(func() (string, string) { return "admin", "x" })
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, _, err := requestTarget(s); err == nil {
			if !strings.HasPrefix(p, "/") {
				t.Errorf("requestTarget(%q) = %q, not absolute", s, p)
			}
			streamKind(p)
		}
		if tr, ok := parseTransport(s); ok && (tr.rtpChannel < 0 || tr.rtpChannel > 255 || tr.rtcpChannel < 0 || tr.rtcpChannel > 255) {
			t.Errorf("parseTransport(%q) = %+v", s, tr)
		}
		_, _ = digest.ParseCredentials("Digest " + s)
		a.authorized("DESCRIBE", s)
	})
}

func FuzzParseClip(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 1, 0x65, 0x88, 0x84})
	f.Add([]byte{0, 0, 1, 0x67, 0x64, 0, 0x1f, 0xff, 0xff, 0, 0, 1, 0x68, 0, 0, 1, 0x65, 0x80, 0, 0, 1, 0x41, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseClip(data)
		if err == nil && (len(c.frames) == 0 || !c.frames[0].key) {
			t.Errorf("parseClip accepted a clip without a leading keyframe")
		}
	})
}
