package rtsp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	rtspmsg "mediagw/pkg/rtsp"
)

// limits bound one request: a client has no business sending more.
var limits = rtspmsg.Limits{Fields: 64, Body: 64 << 10}

// errMalformed marks input that breaks RTSP framing; the connection cannot
// be resynchronised and is answered with 400 and closed.
var errMalformed = rtspmsg.ErrMalformed

type request struct {
	method string
	uri    string
	header rtspmsg.Header
	body   []byte
}

// get is a header's value; repeated fields are joined with ", ".
func (r *request) get(name string) string { return strings.Join(r.header.Values(name), ", ") }

// readRequest reads one request with mediagw/pkg/rtsp. The reader's buffer
// size bounds each line. A request of another RTSP version is returned with
// errVersion, so that it can be answered (with its CSeq).
func readRequest(br *bufio.Reader) (*request, error) {
	m, err := rtspmsg.Read(br, limits)
	if err != nil {
		return nil, err
	}
	if m.IsResponse() {
		return nil, fmt.Errorf("%w: a response where a request was expected", errMalformed)
	}
	req := &request{method: m.Method, uri: m.URI, header: m.Header, body: m.Body}
	if m.Proto != "RTSP/1.0" {
		return req, errVersion
	}
	return req, nil
}

var errVersion = errors.New("unsupported RTSP version")

type response struct {
	status int
	header rtspmsg.Header
	body   []byte
	// Set by the account policy on a refused login: the answer waits delay,
	// and with drop is never sent (the connection is closed instead).
	delay time.Duration
	drop  bool
}

func newResponse(status int) *response {
	return &response{status: status}
}

func (r *response) set(name, value string) *response {
	r.header.Set(name, value)
	return r
}

func (r *response) add(name, value string) *response {
	r.header.Add(name, value)
	return r
}

// writeTo serialises the response; cseq is echoed first, as RTSP requires
// ("" if the request had none or could not be parsed).
func (r *response) writeTo(w io.Writer, cseq string) error {
	m := rtspmsg.NewResponse(r.status)
	if cseq != "" {
		m.Header.Add("CSeq", cseq)
	}
	m.Header = append(m.Header, r.header...)
	m.Body = r.body
	return m.Write(w)
}

// trackName and audioTrackName are the control attributes of the video and
// the audio track; SETUP addresses the stream URL with one appended.
const (
	trackName      = "trackID=1"
	audioTrackName = "trackID=2"
)

// Tracks, as requestTarget names them; the presentation (no track suffix)
// is 0.
const (
	trackVideo = 1
	trackAudio = 2
)

// requestTarget splits a request-URI into the stream path and the track it
// addresses (0: the presentation). Query strings (some clients add
// ?transportmode=unicast) and user info are ignored.
func requestTarget(uri string) (streamPath string, track int, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", 0, fmt.Errorf("%w: bad URI", errMalformed)
	}
	p := u.Path
	if p == "" || p[0] != '/' {
		return "", 0, fmt.Errorf("%w: URI has no absolute path", errMalformed)
	}
	p = path.Clean(p)
	switch path.Base(p) {
	case trackName:
		p, track = path.Dir(p), trackVideo
	case audioTrackName:
		p, track = path.Dir(p), trackAudio
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
