package rtsp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
)

const (
	maxHeaderLines = 64
	maxBodyBytes   = 64 << 10
)

// errMalformed marks input that breaks RTSP framing; the connection cannot
// be resynchronised and is answered with 400 and closed.
var errMalformed = errors.New("malformed RTSP request")

type request struct {
	method string
	uri    string
	header map[string]string // lower-case names; repeated headers joined with ", "
	body   []byte
}

func (r *request) get(name string) string { return r.header[strings.ToLower(name)] }

// readRequest reads one request. The reader's buffer size bounds each line.
func readRequest(br *bufio.Reader) (*request, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, err
	}
	parts := strings.Fields(line)
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: bad request line", errMalformed)
	}
	req := &request{method: parts[0], uri: parts[1], header: make(map[string]string)}
	if !strings.HasPrefix(parts[2], "RTSP/") {
		return nil, fmt.Errorf("%w: not RTSP", errMalformed)
	}
	for i := 0; ; i++ {
		if i > maxHeaderLines {
			return nil, fmt.Errorf("%w: too many header lines", errMalformed)
		}
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%w: bad header line", errMalformed)
		}
		value = strings.TrimSpace(value)
		if prev, dup := req.header[name]; dup {
			value = prev + ", " + value
		}
		req.header[name] = value
	}
	if cl := req.get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 || n > maxBodyBytes {
			return nil, fmt.Errorf("%w: bad Content-Length", errMalformed)
		}
		req.body = make([]byte, n)
		if _, err := io.ReadFull(br, req.body); err != nil {
			return nil, err
		}
	}
	if parts[2] != "RTSP/1.0" {
		return req, errVersion
	}
	return req, nil
}

var errVersion = errors.New("unsupported RTSP version")

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%w: line too long", errMalformed)
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	line = bytes.TrimRight(line, "\r\n")
	if bytes.ContainsAny(line, "\x00") {
		return "", fmt.Errorf("%w: NUL byte", errMalformed)
	}
	return string(line), nil
}

type response struct {
	status int
	header map[string][]string
	body   []byte
}

func newResponse(status int) *response {
	return &response{status: status, header: make(map[string][]string)}
}

func (r *response) set(name, value string) *response {
	r.header[name] = []string{value}
	return r
}

func (r *response) add(name, value string) *response {
	r.header[name] = append(r.header[name], value)
	return r
}

// writeTo serialises the response; cseq is echoed as RTSP requires ("" if
// the request had none or could not be parsed).
func (r *response) writeTo(w io.Writer, cseq string) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "RTSP/1.0 %d %s\r\n", r.status, statusText(r.status))
	if cseq != "" {
		fmt.Fprintf(&b, "CSeq: %s\r\n", cseq)
	}
	names := make([]string, 0, len(r.header))
	for name := range r.header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range r.header[name] {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	if len(r.body) > 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
	}
	b.WriteString("\r\n")
	b.Write(r.body)
	_, err := w.Write(b.Bytes())
	return err
}

func statusText(code int) string {
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

// trackName is the control attribute of the (single) video track; SETUP
// addresses the stream URL with this appended.
const trackName = "trackID=1"

// requestTarget splits a request-URI into the stream path and whether it
// addresses the track rather than the presentation. Query strings (some
// clients add ?transportmode=unicast) and user info are ignored.
func requestTarget(uri string) (streamPath string, track bool, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", false, fmt.Errorf("%w: bad URI", errMalformed)
	}
	p := u.Path
	if p == "" || p[0] != '/' {
		return "", false, fmt.Errorf("%w: URI has no absolute path", errMalformed)
	}
	p = path.Clean(p)
	if base := path.Base(p); base == trackName {
		p, track = path.Dir(p), true
	}
	return p, track, nil
}

// streamKind picks the clip from the path's last segment,
// <channel>0<stream>: stream 1 is the main stream, 2 the sub stream.
func streamKind(streamPath string) (kind int, ok bool) {
	seg := path.Base(streamPath)
	if len(seg) < 3 || seg[len(seg)-2] != '0' {
		return 0, false
	}
	for _, c := range seg {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	switch seg[len(seg)-1] {
	case '1':
		return mainStream, true
	case '2':
		return subStream, true
	}
	return 0, false
}

const (
	mainStream = iota
	subStream
)

// transportSpec is the accepted part of a SETUP Transport header.
type transportSpec struct {
	rtpChannel, rtcpChannel int
}

// parseTransport picks the first interleaved TCP transport the client
// offers. ok is false if it only offers something else (UDP, multicast).
func parseTransport(header string) (t transportSpec, ok bool) {
	for _, spec := range strings.Split(header, ",") {
		fields := strings.Split(strings.TrimSpace(spec), ";")
		if !strings.EqualFold(fields[0], "RTP/AVP/TCP") {
			continue
		}
		t = transportSpec{rtpChannel: 0, rtcpChannel: 1}
		valid := true
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			switch strings.ToLower(k) {
			case "interleaved":
				a, b, pair := strings.Cut(v, "-")
				lo, err1 := strconv.Atoi(a)
				hi := lo + 1
				var err2 error
				if pair {
					hi, err2 = strconv.Atoi(b)
				}
				if err1 != nil || err2 != nil || lo < 0 || lo > 255 || hi < 0 || hi > 255 || lo == hi {
					valid = false
				}
				t.rtpChannel, t.rtcpChannel = lo, hi
			case "multicast":
				valid = false
			case "mode":
				if m := strings.Trim(strings.ToLower(v), `"`); m != "" && m != "play" {
					valid = false
				}
			}
		}
		if valid {
			return t, true
		}
	}
	return transportSpec{}, false
}
