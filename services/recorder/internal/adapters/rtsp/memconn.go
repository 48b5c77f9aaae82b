package rtsp

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	rtspmsg "mediagw/pkg/rtsp"
)

// errHandedOver ends the relay's reading of the gateway: the in-memory
// client reads it from now on.
var errHandedOver = errors.New("rtsp relay: reading handed over to the client")

// memConn is the in-process client's end of a relayed session (Proxy.Dial).
// Requests go to the relay through a pipe, as from any client, and so do
// its answers until the stream plays. Then the relay hands over its reader
// of the gateway's connection: the client's reads take media straight
// from it, without the relay's goroutine, copy and pipe in between, and
// gateway messages (answers to keep-alives) are still handled by the
// session (credentials, stale nonces, a refusal ends it) on the way.
type memConn struct {
	req  net.Conn // to the relay: requests
	resp net.Conn // from the relay until the hand-over
	s    *session

	handed chan struct{} // closed when r is set
	r      *bufio.Reader // the relay's reader of the gateway, after the hand-over
	// deadline is the read deadline (Unix ns, 0 for none) for reads after
	// the hand-over (batchedReader honours it).
	deadline atomic.Int64

	// the reading goroutine's state
	pulling   bool
	frameLeft int    // bytes of the interleaved frame being passed on
	out       []byte // a gateway message for the client, not yet read
	outBuf    bytes.Buffer
	end       error // the session ended after out
}

var _ net.Conn = (*memConn)(nil)

// handOver gives the client the relay's reader of the gateway (r over
// br); from now on the client's read deadline bounds its waits.
func (m *memConn) handOver(r *bufio.Reader, br *batchedReader) {
	br.limit = &m.deadline
	m.r = r
	close(m.handed)
	// The client reads this pipe's end to EOF, then reads r.
	m.s.toClient.Close()
}

func (m *memConn) Read(p []byte) (int, error) {
	if !m.pulling {
		n, err := m.resp.Read(p)
		if err == nil || n > 0 {
			return n, nil
		}
		if !errors.Is(err, io.EOF) {
			return 0, err
		}
		select {
		case <-m.handed:
			m.pulling = true
		default:
			return 0, err
		}
	}
	return m.pull(p)
}

// pull fills p with what the gateway sent: interleaved frames as they
// came, messages after the session looked at them. It blocks only while
// it has nothing.
func (m *memConn) pull(p []byte) (int, error) {
	r, s := m.r, m.s
	n := 0
	for n < len(p) {
		if len(m.out) > 0 {
			k := copy(p[n:], m.out)
			m.out = m.out[k:]
			n += k
			continue
		}
		if m.end != nil {
			if n > 0 {
				return n, nil
			}
			return 0, m.end
		}
		if m.frameLeft == 0 {
			if n > 0 && r.Buffered() < 4 {
				break
			}
			b, err := r.Peek(1)
			if err != nil {
				return m.fail(n, err)
			}
			if b[0] != '$' {
				if n > 0 {
					break // a message is read only when nothing else is there
				}
				msg, err := rtspmsg.Read(r, rtspmsg.Limits{})
				if err != nil {
					return m.fail(n, err)
				}
				forward, end := s.onUpstreamMessage(msg)
				if forward {
					m.outBuf.Reset()
					if err := msg.Write(&m.outBuf); err != nil {
						return m.fail(n, err)
					}
					m.out = m.outBuf.Bytes()
				}
				if end != nil {
					m.end = end
					if !isClosed(end) {
						s.p.log.Warn("rtsp proxy: from gateway", "err", end)
					}
					s.close()
				}
				continue
			}
			h, err := r.Peek(4)
			if err != nil {
				return m.fail(n, err)
			}
			m.frameLeft = 4 + (int(h[2])<<8 | int(h[3]))
			s.p.received.Add(uint64(m.frameLeft))
			s.notePlaying()
		}
		if r.Buffered() == 0 {
			if n > 0 {
				break
			}
			if _, err := r.Peek(1); err != nil {
				return m.fail(n, err)
			}
		}
		k := min(m.frameLeft, r.Buffered(), len(p)-n)
		b, _ := r.Peek(k)
		copy(p[n:], b)
		r.Discard(k)
		n += k
		m.frameLeft -= k
	}
	return n, nil
}

// fail returns what was read before a read error; the error ends the
// session unless it is the client's own deadline.
func (m *memConn) fail(n int, err error) (int, error) {
	if n > 0 {
		return n, nil // the error comes again on the next read
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, err
	}
	if !isClosed(err) {
		m.s.p.log.Warn("rtsp proxy: from gateway", "err", err)
	}
	m.s.close()
	if errors.Is(err, net.ErrClosed) {
		err = io.EOF // closed under the client: it sees the end of the stream
	}
	return 0, err
}

func (m *memConn) Write(p []byte) (int, error) { return m.req.Write(p) }

// Close ends the client's side; the relay ends the session on it.
func (m *memConn) Close() error {
	m.resp.Close()
	return m.req.Close()
}

func (m *memConn) LocalAddr() net.Addr  { return m.req.LocalAddr() }
func (m *memConn) RemoteAddr() net.Addr { return m.req.RemoteAddr() }

func (m *memConn) SetDeadline(t time.Time) error {
	if err := m.SetReadDeadline(t); err != nil {
		return err
	}
	return m.req.SetWriteDeadline(t)
}

func (m *memConn) SetReadDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	m.deadline.Store(ns)
	select {
	case <-m.handed: // the pipe is done with
		return nil
	default:
	}
	if err := m.resp.SetReadDeadline(t); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return err
	}
	return nil
}

func (m *memConn) SetWriteDeadline(t time.Time) error { return m.req.SetWriteDeadline(t) }
