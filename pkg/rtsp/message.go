// Package rtsp reads and writes RTSP/1.0 messages (RFC 2326): requests and
// responses with their header fields in their original order and spelling
// (some cameras are picky about "CSeq"), and a body of Content-Length
// bytes. It is the one RTSP parser of mediagw: the recorder's relay and the
// gateway simulator's server both use it. Standard library only.
//
// Interleaved binary data (`$`, channel, 16-bit length) is not a message:
// callers peek at the first byte and handle frames themselves.
package rtsp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrMalformed marks input that breaks RTSP framing: the connection cannot
// be resynchronised.
var ErrMalformed = errors.New("malformed RTSP message")

// Field is one header field.
type Field struct{ Name, Value string }

// Header is a message's fields in order; names compare case-insensitively.
type Header []Field

// Get is the value of the first field of that name ("" if none).
func (h Header) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Values are the values of every field of that name, in order.
func (h Header) Values(name string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// Set replaces the first field of that name (keeping its spelling) or
// appends one, and removes any others.
func (h *Header) Set(name, value string) {
	done := false
	out := (*h)[:0]
	for _, f := range *h {
		if strings.EqualFold(f.Name, name) {
			if done {
				continue
			}
			f.Value, done = value, true
		}
		out = append(out, f)
	}
	*h = out
	if !done {
		*h = append(*h, Field{name, value})
	}
}

// Add appends a field.
func (h *Header) Add(name, value string) { *h = append(*h, Field{name, value}) }

// Del removes every field of that name.
func (h *Header) Del(name string) {
	out := (*h)[:0]
	for _, f := range *h {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	*h = out
}

// Message is an RTSP request (Method, URI, Proto) or response (Proto,
// Status, Reason).
type Message struct {
	Method string // request
	URI    string // request
	Proto  string // "RTSP/1.0"
	Status int    // response: 100…999; 0 for a request
	Reason string // response
	Header Header
	Body   []byte
}

// NewRequest returns an RTSP/1.0 request without fields.
func NewRequest(method, uri string) *Message {
	return &Message{Method: method, URI: uri, Proto: "RTSP/1.0"}
}

// NewResponse returns an RTSP/1.0 response with the standard reason phrase.
func NewResponse(status int) *Message {
	return &Message{Proto: "RTSP/1.0", Status: status, Reason: StatusText(status)}
}

// IsResponse tells a response from a request.
func (m *Message) IsResponse() bool { return m.Status != 0 }

// Clone copies the message; the body is shared.
func (m *Message) Clone() *Message {
	c := *m
	c.Header = append(Header(nil), m.Header...)
	return &c
}

// Write serialises the message. Content-Length always follows the body:
// it is set (in place of any given) when there is a body and written as 0
// when a field claims one that is not there.
func (m *Message) Write(w io.Writer) error {
	var b bytes.Buffer
	if m.IsResponse() {
		b.WriteString(m.Proto)
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(m.Status))
		if m.Reason != "" {
			b.WriteByte(' ')
			b.WriteString(m.Reason)
		}
	} else {
		b.WriteString(m.Method + " " + m.URI + " " + m.Proto)
	}
	b.WriteString("\r\n")
	length := false
	for _, f := range m.Header {
		v := f.Value
		if strings.EqualFold(f.Name, "Content-Length") {
			if length {
				continue
			}
			length, v = true, strconv.Itoa(len(m.Body))
		}
		b.WriteString(f.Name + ": " + v + "\r\n")
	}
	if !length && len(m.Body) > 0 {
		b.WriteString("Content-Length: " + strconv.Itoa(len(m.Body)) + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(m.Body)
	_, err := w.Write(b.Bytes())
	return err
}

// Limits bound what Read buffers for one message, so a broken peer cannot
// make it buffer without end. Zero fields take the defaults. A single line
// is also bounded by the reader's buffer size.
type Limits struct {
	HeaderBytes int // start line and fields; default 64 KiB
	Fields      int // default 100
	Body        int // default 1 MiB
}

func (l Limits) withDefaults() Limits {
	if l.HeaderBytes <= 0 {
		l.HeaderBytes = 64 << 10
	}
	if l.Fields <= 0 {
		l.Fields = 100
	}
	if l.Body <= 0 {
		l.Body = 1 << 20
	}
	return l
}

// Read reads one message: start line, header fields, blank line,
// Content-Length bytes of body. Empty lines before the start line are
// skipped. Broken framing yields an error matching ErrMalformed; a stream
// that ends before the first byte of a message io.EOF, within one
// io.ErrUnexpectedEOF. The protocol version is not checked beyond "RTSP/".
func Read(r *bufio.Reader, lim Limits) (*Message, error) {
	lim = lim.withDefaults()
	total := 0
	started := false
	line := func() (string, error) {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("%w: line too long", ErrMalformed)
		}
		if err != nil {
			if errors.Is(err, io.EOF) && (started || len(b) > 0) {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		if total += len(b); total > lim.HeaderBytes {
			return "", fmt.Errorf("%w: header too long", ErrMalformed)
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return "", fmt.Errorf("%w: NUL byte", ErrMalformed)
		}
		return string(bytes.TrimRight(b, "\r\n")), nil
	}
	var start string
	for start == "" {
		s, err := line()
		if err != nil {
			return nil, err
		}
		start = s
	}
	started = true
	m, err := parseStartLine(start)
	if err != nil {
		return nil, err
	}
	for {
		s, err := line()
		if err != nil {
			return nil, err
		}
		if s == "" {
			break
		}
		name, value, ok := strings.Cut(s, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: header field %q", ErrMalformed, s)
		}
		if len(m.Header) >= lim.Fields {
			return nil, fmt.Errorf("%w: too many header fields", ErrMalformed)
		}
		m.Header = append(m.Header, Field{name, strings.TrimSpace(value)})
	}
	if cl := m.Header.Get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > lim.Body {
			return nil, fmt.Errorf("%w: Content-Length %q", ErrMalformed, cl)
		}
		m.Body = make([]byte, n)
		if _, err := io.ReadFull(r, m.Body); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return m, nil
}

// parseStartLine reads "RTSP/1.0 200 OK" or "DESCRIBE rtsp://… RTSP/1.0".
func parseStartLine(s string) (*Message, error) {
	if rest, ok := strings.CutPrefix(s, "RTSP/"); ok {
		proto, rest, _ := strings.Cut(rest, " ")
		code, reason, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
		n, err := strconv.Atoi(code)
		if proto == "" || err != nil || len(code) != 3 || n < 100 {
			return nil, fmt.Errorf("%w: status line %q", ErrMalformed, s)
		}
		return &Message{Proto: "RTSP/" + proto, Status: n, Reason: strings.TrimSpace(reason)}, nil
	}
	f := strings.Fields(s)
	if len(f) != 3 || !strings.HasPrefix(f[2], "RTSP/") {
		return nil, fmt.Errorf("%w: request line %q", ErrMalformed, s)
	}
	return &Message{Method: f[0], URI: f[1], Proto: f[2]}, nil
}

// StatusText is the reason phrase of the status codes mediagw sends.
func StatusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 454:
		return "Session Not Found"
	case 455:
		return "Method Not Valid in This State"
	case 459:
		return "Aggregate Operation Not Allowed"
	case 461:
		return "Unsupported Transport"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "RTSP Version Not Supported"
	default:
		return "Status " + strconv.Itoa(code)
	}
}
