package rtspproxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits on one RTSP message, so a broken peer cannot make us buffer
// without end.
const (
	maxHeaderBytes = 64 << 10
	maxHeaders     = 100
	maxBodyBytes   = 1 << 20
)

var errMessage = errors.New("malformed RTSP message")

type field struct{ name, value string }

// message is an RTSP request or response with its header fields in their
// original order and spelling (some cameras are picky about "CSeq").
type message struct {
	line   string
	fields []field
	body   []byte
}

func (m *message) isResponse() bool { return strings.HasPrefix(m.line, "RTSP/") }

// status is a response's status code, 0 for a request or a bad status line.
func (m *message) status() int {
	if !m.isResponse() {
		return 0
	}
	f := strings.Fields(m.line)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// request splits a request line into method, URI and protocol.
func (m *message) request() (method, uri, proto string, err error) {
	f := strings.Fields(m.line)
	if len(f) != 3 {
		return "", "", "", fmt.Errorf("%w: request line %q", errMessage, m.line)
	}
	return f[0], f[1], f[2], nil
}

func (m *message) get(name string) string {
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			return f.value
		}
	}
	return ""
}

func (m *message) values(name string) []string {
	var out []string
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			out = append(out, f.value)
		}
	}
	return out
}

// set replaces the first field of that name (keeping its spelling) or
// appends one, and removes any others.
func (m *message) set(name, value string) {
	done := false
	out := m.fields[:0]
	for _, f := range m.fields {
		if strings.EqualFold(f.name, name) {
			if done {
				continue
			}
			f.value, done = value, true
		}
		out = append(out, f)
	}
	m.fields = out
	if !done {
		m.fields = append(m.fields, field{name, value})
	}
}

func (m *message) del(name string) {
	out := m.fields[:0]
	for _, f := range m.fields {
		if !strings.EqualFold(f.name, name) {
			out = append(out, f)
		}
	}
	m.fields = out
}

func (m *message) clone() *message {
	c := &message{line: m.line, fields: append([]field(nil), m.fields...), body: m.body}
	return c
}

// write serialises the message; Content-Length follows the body.
func (m *message) write(w *bufio.Writer) error {
	if len(m.body) > 0 {
		m.set("Content-Length", strconv.Itoa(len(m.body)))
	}
	w.WriteString(m.line)
	w.WriteString("\r\n")
	for _, f := range m.fields {
		w.WriteString(f.name)
		w.WriteString(": ")
		w.WriteString(f.value)
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	_, err := w.Write(m.body)
	return err
}

// readMessage reads one message: start line, header fields, blank line,
// Content-Length bytes of body.
func readMessage(r *bufio.Reader) (*message, error) {
	var m message
	total := 0
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, fmt.Errorf("%w: header line too long", errMessage)
			}
			return nil, err
		}
		total += len(line)
		if total > maxHeaderBytes {
			return nil, fmt.Errorf("%w: header too long", errMessage)
		}
		s := strings.TrimRight(string(line), "\r\n")
		if m.line == "" {
			if s == "" {
				continue // tolerate stray CRLF between messages
			}
			m.line = s
			continue
		}
		if s == "" {
			break
		}
		name, value, ok := strings.Cut(s, ":")
		if !ok {
			return nil, fmt.Errorf("%w: header field %q", errMessage, s)
		}
		if len(m.fields) >= maxHeaders {
			return nil, fmt.Errorf("%w: too many header fields", errMessage)
		}
		m.fields = append(m.fields, field{strings.TrimSpace(name), strings.TrimSpace(value)})
	}
	if cl := m.get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > maxBodyBytes {
			return nil, fmt.Errorf("%w: Content-Length %q", errMessage, cl)
		}
		m.body = make([]byte, n)
		if _, err := io.ReadFull(r, m.body); err != nil {
			return nil, err
		}
	}
	return &m, nil
}
