package inproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	rtspmsg "mediagw/pkg/rtsp"
)

// client is one RTSP session over TCP with interleaved media (RFC 2326
// §10.12). It speaks to the recorder's relay (adapters/rtsp), which logs
// in to the gateway through the login budget; the client itself never
// holds credentials.
type client struct {
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration // a read waiting longer than this ends the session (stall)

	wmu            sync.Mutex // requests are written by the reader and the keep-alive
	cseq           int
	session        string
	sessionTimeout time.Duration
	public         string
}

// ErrStatus is an RTSP answer other than 200.
type statusError struct {
	method string
	status int
	reason string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("rtsp %s: %d %s", e.method, e.status, e.reason)
}

// deadlineReader sets a read deadline before each read, so a stalled
// stream ends the session within the timeout.
type deadlineReader struct {
	c       net.Conn
	timeout time.Duration
}

func (d deadlineReader) Read(p []byte) (int, error) {
	if err := d.c.SetReadDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	return d.c.Read(p)
}

func newClient(conn net.Conn, timeout time.Duration) *client {
	return &client{
		conn:    conn,
		r:       bufio.NewReaderSize(deadlineReader{conn, timeout}, 32<<10),
		timeout: timeout,
	}
}

func (c *client) send(method, uri string, h rtspmsg.Header) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.cseq++
	m := rtspmsg.NewRequest(method, uri)
	m.Header = append(m.Header, h...)
	m.Header.Set("CSeq", strconv.Itoa(c.cseq))
	m.Header.Set("User-Agent", "mediagw-recorder")
	if c.session != "" {
		m.Header.Set("Session", c.session)
	}
	if err := c.conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	if err := m.Write(c.conn); err != nil {
		return 0, fmt.Errorf("rtsp %s: %w", method, err)
	}
	return c.cseq, nil
}

// do sends a request and reads its answer, skipping interleaved frames
// that arrive in between.
func (c *client) do(method, uri string, h rtspmsg.Header) (*rtspmsg.Message, error) {
	seq, err := c.send(method, uri, h)
	if err != nil {
		return nil, err
	}
	for {
		ch, _, m, err := c.read()
		if err != nil {
			return nil, fmt.Errorf("rtsp %s: %w", method, err)
		}
		if ch >= 0 || m == nil || !m.IsResponse() {
			continue
		}
		if m.Header.Get("CSeq") != strconv.Itoa(seq) {
			continue
		}
		if m.Status != 200 {
			return m, &statusError{method, m.Status, m.Reason}
		}
		return m, nil
	}
}

// read returns the next interleaved frame (channel ≥ 0, payload valid
// until the next read) or RTSP message (channel −1).
func (c *client) read() (int, []byte, *rtspmsg.Message, error) {
	b, err := c.r.Peek(1)
	if err != nil {
		return 0, nil, nil, err
	}
	if b[0] == '$' {
		h, err := c.r.Peek(4)
		if err != nil {
			return 0, nil, nil, err
		}
		n := int(h[2])<<8 | int(h[3])
		ch := int(h[1])
		if _, err := c.r.Discard(4); err != nil {
			return 0, nil, nil, err
		}
		if n > c.r.Size() {
			// Larger than the buffer: cannot be a real RTP packet over TCP
			// from a camera; skip it.
			_, err := c.r.Discard(n)
			return ch, nil, nil, err
		}
		p, err := c.r.Peek(n)
		if err != nil {
			return 0, nil, nil, err
		}
		c.r.Discard(n)
		return ch, p, nil, nil
	}
	m, err := rtspmsg.Read(c.r, rtspmsg.Limits{Body: 256 << 10})
	if err != nil {
		return 0, nil, nil, err
	}
	return -1, nil, m, nil
}

// describe returns the tracks and the base URL of their controls.
func (c *client) describe(uri string) ([]track, string, error) {
	if m, err := c.do("OPTIONS", uri, nil); err == nil {
		c.public = m.Header.Get("Public")
	} else if errors.Is(err, io.EOF) || isNetErr(err) {
		return nil, "", err
	}
	m, err := c.do("DESCRIBE", uri, rtspmsg.Header{{Name: "Accept", Value: "application/sdp"}})
	if err != nil {
		return nil, "", err
	}
	tracks, err := parseSDP(m.Body)
	if err != nil {
		return nil, "", err
	}
	base := m.Header.Get("Content-Base")
	if base == "" {
		base = m.Header.Get("Content-Location")
	}
	if base == "" {
		base = uri
	}
	return tracks, base, nil
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// controlURL resolves a track's control attribute against the base.
func controlURL(base, control string) string {
	switch {
	case control == "" || control == "*":
		return base
	case strings.HasPrefix(control, "rtsp://"):
		return control
	case strings.HasSuffix(base, "/"):
		return base + control
	}
	return base + "/" + control
}

// setup sets up a track on interleaved channels 2i, 2i+1.
func (c *client) setup(base string, t track, i int) error {
	transport := fmt.Sprintf("RTP/AVP/TCP;unicast;interleaved=%d-%d", 2*i, 2*i+1)
	m, err := c.do("SETUP", controlURL(base, t.control), rtspmsg.Header{{Name: "Transport", Value: transport}})
	if err != nil {
		return err
	}
	if s := m.Header.Get("Session"); s != "" && c.session == "" {
		id, params, _ := strings.Cut(s, ";")
		c.session = strings.TrimSpace(id)
		for _, p := range strings.Split(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "timeout="); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					c.sessionTimeout = time.Duration(n) * time.Second
				}
			}
		}
	}
	if tr := m.Header.Get("Transport"); tr != "" && !strings.Contains(tr, fmt.Sprintf("interleaved=%d-%d", 2*i, 2*i+1)) {
		return fmt.Errorf("rtsp SETUP: the server chose other channels (%s)", tr)
	}
	return nil
}

// play starts the stream and returns the RTP-Info rtptime of each control URL.
func (c *client) play(base string) (map[string]uint32, error) {
	m, err := c.do("PLAY", base, rtspmsg.Header{{Name: "Range", Value: "npt=0.000-"}})
	if err != nil {
		return nil, err
	}
	info := map[string]uint32{}
	for _, item := range strings.Split(m.Header.Get("RTP-Info"), ",") {
		var u string
		var ts uint32
		var has bool
		for _, p := range strings.Split(item, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			switch k {
			case "url":
				u = v
			case "rtptime":
				if n, err := strconv.ParseUint(v, 10, 32); err == nil {
					ts, has = uint32(n), true
				}
			}
		}
		if u != "" && has {
			info[u] = ts
		}
	}
	return info, nil
}

// keepAlive sends a request now and then, which servers need to keep a
// TCP session (GET_PARAMETER when offered, else OPTIONS). The answers are
// read (and ignored) by the frame loop.
func (c *client) keepAlive(uri string, stop <-chan struct{}) {
	every := c.sessionTimeout / 2
	if every <= 0 {
		every = 30 * time.Second
	}
	method := "OPTIONS"
	if strings.Contains(c.public, "GET_PARAMETER") {
		method = "GET_PARAMETER"
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := c.send(method, uri, nil); err != nil {
				return
			}
		}
	}
}

// teardown ends the session politely; the connection is closed after.
func (c *client) teardown(uri string) {
	c.send("TEARDOWN", uri, nil)
}
