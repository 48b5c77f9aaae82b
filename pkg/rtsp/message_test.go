package rtsp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func read(s string, lim Limits) (*Message, error) {
	return Read(bufio.NewReaderSize(strings.NewReader(s), 4096), lim)
}

func TestReadRequestAndResponse(t *testing.T) {
	m, err := read("\r\nDESCRIBE rtsp://h/x RTSP/1.0\r\ncseq: 2\r\nAccept : application/sdp\r\nX: 1\r\nX: 2\r\n\r\n", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.IsResponse() || m.Method != "DESCRIBE" || m.URI != "rtsp://h/x" || m.Proto != "RTSP/1.0" {
		t.Fatalf("request %+v", m)
	}
	if m.Header.Get("CSeq") != "2" || m.Header.Get("accept") != "application/sdp" || strings.Join(m.Header.Values("x"), ",") != "1,2" {
		t.Fatalf("header %q", m.Header)
	}
	if m.Header[0].Name != "cseq" {
		t.Fatalf("field name respelt: %q", m.Header[0].Name)
	}

	m, err = read("RTSP/1.0 401 Unauthorized\r\nCSeq: 3\r\nContent-Length: 4\r\n\r\nbodyNEXT", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !m.IsResponse() || m.Status != 401 || m.Reason != "Unauthorized" || string(m.Body) != "body" {
		t.Fatalf("response %+v", m)
	}
}

func TestWriteRoundTripKeepsOrderAndSpelling(t *testing.T) {
	m := NewRequest("SETUP", "rtsp://h/x/trackID=1")
	m.Header.Add("CSeq", "5")
	m.Header.Add("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")
	m.Header.Add("content-length", "99") // wrong: Write follows the body
	m.Body = []byte("v=0\r\n")
	var b bytes.Buffer
	if err := m.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := "SETUP rtsp://h/x/trackID=1 RTSP/1.0\r\nCSeq: 5\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\ncontent-length: 5\r\n\r\nv=0\r\n"
	if b.String() != want {
		t.Fatalf("wrote %q\nwant  %q", b.String(), want)
	}
	back, err := read(b.String(), Limits{})
	if err != nil || back.Method != "SETUP" || string(back.Body) != "v=0\r\n" || len(back.Header) != 3 {
		t.Fatalf("read back %+v, %v", back, err)
	}

	r := NewResponse(200)
	r.Header.Add("CSeq", "1")
	b.Reset()
	if err := r.Write(&b); err != nil || b.String() != "RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n" {
		t.Fatalf("response %q, %v", b.String(), err)
	}
}

func TestHeaderSetDelClone(t *testing.T) {
	m := NewRequest("PLAY", "rtsp://h/x")
	m.Header = Header{{"cseq", "1"}, {"Authorization", "a"}, {"CSEQ", "2"}}
	c := m.Clone()
	c.Header.Set("CSeq", "9")
	c.Header.Del("authorization")
	if len(c.Header) != 1 || c.Header[0] != (Field{"cseq", "9"}) {
		t.Fatalf("clone after Set/Del: %q", c.Header)
	}
	if m.Header.Get("Authorization") != "a" || len(m.Header) != 3 {
		t.Fatalf("the original changed: %q", m.Header)
	}
	c.Header.Set("Session", "s")
	if c.Header.Get("session") != "s" {
		t.Fatal("Set did not append")
	}
}

func TestReadRefusesBrokenFraming(t *testing.T) {
	for name, in := range map[string]string{
		"garbage":              "GARBAGE\r\n\r\n",
		"HTTP":                 "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"NUL":                  "\x00\x01 \x00 RTSP/1.0\r\n\r\n",
		"field without colon":  "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nBad\r\n\r\n",
		"space in a name":      "OPTIONS * RTSP/1.0\r\nC Seq: 1\r\n\r\n",
		"bad status":           "RTSP/1.0 2x0 OK\r\n\r\n",
		"negative length":      "OPTIONS * RTSP/1.0\r\nContent-Length: -1\r\n\r\n",
		"length over the cap":  "OPTIONS * RTSP/1.0\r\nContent-Length: 11\r\n\r\n",
		"too many fields":      "OPTIONS * RTSP/1.0\r\n" + strings.Repeat("X: y\r\n", 4) + "\r\n",
		"header over the cap":  "OPTIONS * RTSP/1.0\r\nX: " + strings.Repeat("y", 200) + "\r\n\r\n",
		"line over the buffer": "OPTIONS rtsp://h/" + strings.Repeat("a", 5000) + " RTSP/1.0\r\n\r\n",
	} {
		if _, err := read(in, Limits{HeaderBytes: 128, Fields: 3, Body: 10}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestReadEOF(t *testing.T) {
	if _, err := read("", Limits{}); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
	for _, in := range []string{"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n", "OPTIONS * RTS", "OPTIONS * RTSP/1.0\r\nContent-Length: 10\r\n\r\nabc"} {
		if _, err := read(in, Limits{}); err != io.ErrUnexpectedEOF {
			t.Errorf("%q: %v, want io.ErrUnexpectedEOF", in, err)
		}
	}
}

func FuzzRead(f *testing.F) {
	for _, seed := range []string{
		"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
		"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 2\r\n\r\nab",
		"A B C\r\nX: 1\r\nX: 2\r\n\r\n",
		"\r\n\r\nRTSP/1.0 401\r\n\r\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := read(in, Limits{})
		if err != nil {
			return
		}
		if !m.IsResponse() && (m.Method == "" || m.URI == "") {
			t.Fatalf("request without method or URI from %q", in)
		}
		var b bytes.Buffer
		if err := m.Write(&b); err != nil {
			t.Fatal(err)
		}
		again, err := read(b.String(), Limits{})
		if err != nil || again.Method != m.Method || again.URI != m.URI || again.Status != m.Status || !bytes.Equal(again.Body, m.Body) {
			t.Fatalf("%q does not read back: %+v, %v", b.String(), again, err)
		}
	})
}
