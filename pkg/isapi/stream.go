package isapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// EventType is the kind of a device-management event.
type EventType string

// Event types of the subscribeDeviceMgmt stream.
const (
	EventAdded   EventType = "added"
	EventRemoved EventType = "removed"
	EventOnline  EventType = "online"
	EventOffline EventType = "offline"
	EventSleep   EventType = "sleep"
)

// DeviceEvent is a device added, removed or changing status.
type DeviceEvent struct {
	Seq      uint64 // gateway's sequence number, 0 when absent
	Type     EventType
	DevIndex string
	DevName  string
	Status   DeviceStatus
	Time     time.Time // gateway's clock; zero when absent or unparsable
}

// maxPartSize bounds one stream part; anything larger is refused.
const maxPartSize = 1 << 20

// errNotAMessage marks parts that are valid JSON but carry nothing usable.
var errNotAMessage = errors.New("not a device-management event or heartbeat")

// parseStreamPart decodes one part of the event stream. It returns the
// event, or heartbeat=true with its time.
func parseStreamPart(body []byte) (ev *DeviceEvent, heartbeat bool, at time.Time, err error) {
	var w struct {
		EventType       string `json:"eventType"`
		DateTime        string `json:"dateTime"`
		DeviceMgmtEvent *struct {
			Seq       *flexInt `json:"seq"`
			Type      string   `json:"type"`
			DevIndex  string   `json:"devIndex"`
			DevName   string   `json:"devName"`
			DevStatus string   `json:"devStatus"`
		} `json:"DeviceMgmtEvent"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, false, time.Time{}, err
	}
	if t, perr := time.Parse(time.RFC3339, w.DateTime); perr == nil {
		at = t
	}
	if e := w.DeviceMgmtEvent; e != nil {
		if e.Type == "" || e.DevIndex == "" {
			return nil, false, at, errors.New("DeviceMgmtEvent without type or devIndex")
		}
		ev = &DeviceEvent{Type: EventType(e.Type), DevIndex: e.DevIndex, DevName: e.DevName, Status: DeviceStatus(e.DevStatus), Time: at}
		if e.Seq != nil && e.Seq.Int() > 0 {
			ev.Seq = uint64(e.Seq.Int())
		}
		return ev, false, at, nil
	}
	if strings.EqualFold(w.EventType, "heartbeat") {
		return nil, true, at, nil
	}
	return nil, false, at, errNotAMessage
}

// partReader reads Hikvision's endless multipart/mixed stream. It uses each
// part's Content-Length when given, so a part is delivered as soon as it
// arrives (a reader that waits for the next boundary would lag one part
// behind), and falls back to scanning for the boundary otherwise.
type partReader struct {
	br       *bufio.Reader
	delim    string // "--" + boundary; empty: learn it from the first delimiter line
	pending  bool   // a delimiter line was consumed by the previous part
	finished bool
}

func newPartReader(r io.Reader, boundary string) *partReader {
	p := &partReader{br: bufio.NewReaderSize(r, 64<<10)}
	if boundary != "" {
		p.delim = "--" + boundary
	}
	return p
}

func (p *partReader) line() (string, error) {
	b, err := p.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errors.New("stream line longer than 64 KiB")
	}
	if err != nil && (len(b) == 0 || !errors.Is(err, io.EOF)) {
		return "", err
	}
	// A last line without newline counts; the next read reports io.EOF.
	return strings.TrimRight(string(b), "\r\n \t"), nil
}

func (p *partReader) isDelim(l string) (delim, final bool) {
	if p.delim == "" {
		if strings.HasPrefix(l, "--") && len(l) > 2 && !strings.HasSuffix(l[2:], "--") {
			p.delim = l
			return true, false
		}
		return false, false
	}
	if l == p.delim {
		return true, false
	}
	return l == p.delim+"--", l == p.delim+"--"
}

// next returns the body of the next part, io.EOF at a closing delimiter or
// a clean end between parts.
func (p *partReader) next() ([]byte, error) {
	if p.finished {
		return nil, io.EOF
	}
	if !p.pending {
		skipped := 0
		for {
			l, err := p.line()
			if err != nil {
				return nil, err
			}
			if d, final := p.isDelim(l); d || final {
				if final {
					p.finished = true
					return nil, io.EOF
				}
				break
			}
			if skipped += len(l); skipped > maxPartSize {
				return nil, errors.New("no part delimiter in the stream")
			}
		}
	}
	p.pending = false
	length := -1
	for n := 0; ; n++ {
		l, err := p.line()
		if err != nil {
			return nil, unexpected(err)
		}
		if l == "" {
			break
		}
		if n > 64 {
			return nil, errors.New("too many part headers")
		}
		name, value, found := strings.Cut(l, ":")
		if found && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			v, err := strconv.Atoi(strings.TrimSpace(value))
			if err != nil || v < 0 || v > maxPartSize {
				return nil, errors.New("bad part Content-Length") // its value stays out of messages
			}
			length = v
		}
	}
	if length >= 0 {
		body := make([]byte, length)
		if _, err := io.ReadFull(p.br, body); err != nil {
			return nil, unexpected(err)
		}
		return body, nil
	}
	var body bytes.Buffer
	for {
		l, err := p.br.ReadSlice('\n')
		lastLine := errors.Is(err, io.EOF) && len(l) > 0
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !lastLine {
			return nil, unexpected(err)
		}
		if d, final := p.isDelim(strings.TrimRight(string(l), "\r\n \t")); (d || final) && !errors.Is(err, bufio.ErrBufferFull) {
			p.pending, p.finished = !final, final
			return bytes.TrimRight(body.Bytes(), "\r\n"), nil
		}
		if body.Len()+len(l) > maxPartSize {
			return nil, errors.New("stream part larger than 1 MiB")
		}
		body.Write(l)
		if lastLine {
			return nil, io.ErrUnexpectedEOF
		}
	}
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
