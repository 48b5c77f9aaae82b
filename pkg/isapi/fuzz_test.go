package isapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The decoders below face whatever a gateway (or something pretending to
// be one) sends. Seeds live in testdata/fuzz/<FuzzName>/; run e.g.
// go test -run '^$' -fuzz FuzzParseResponseStatus -fuzztime 30s ./isapi/

func FuzzParseResponseStatus(f *testing.F) {
	f.Add([]byte(`{"statusCode":4,"subStatusCode":"badAuthorization","retryTimes":"3","resLockTime":0}`))
	f.Add([]byte(`<ResponseStatus xmlns="urn:x"><statusCode>2</statusCode></ResponseStatus>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rs, ok := ParseResponseStatus(body)
		if ok && rs == nil {
			t.Fatal("ok without status")
		}
		if ok {
			checkFormats(t, &StatusError{Method: "GET", Path: "/", HTTPStatus: 200, Status: rs}, "")
			_ = rs.OK() || rs.Locked()
		}
	})
}

func FuzzDeviceList(f *testing.F) {
	f.Add([]byte(`{"SearchResult":{"responseStatusStrg":"MORE","numOfMatches":1,"totalMatches":"9","MatchList":[{"Device":{"devIndex":"A","devStatus":"online","videoChannelNum":"2"}}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var w wireDeviceList
		if json.Unmarshal(body, &w) != nil {
			return
		}
		p, err := w.page()
		if err != nil {
			return
		}
		for _, d := range p.Devices {
			if d.DevIndex == "" {
				t.Fatal("device without devIndex returned")
			}
		}
	})
}

func FuzzStreamPart(f *testing.F) {
	f.Add([]byte(`{"eventType":"deviceMgmt","dateTime":"2024-01-22T11:47:05+08:00","DeviceMgmtEvent":{"seq":3,"type":"added","devIndex":"X"}}`))
	f.Add([]byte(`{"eventType":"heartbeat"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, hb, _, err := parseStreamPart(body)
		if err == nil && !hb && (ev == nil || ev.DevIndex == "" || ev.Type == "") {
			t.Fatalf("accepted an empty event: %+v", ev)
		}
		if err != nil {
			checkFormats(t, fmt.Errorf("isapi: event stream part: %w", safeError{err}), "")
		}
	})
}

func FuzzPartReader(f *testing.F) {
	f.Add("--MIME_boundary\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}\r\n", "MIME_boundary")
	f.Add("--b\r\n\r\nx\r\n--b--", "")
	f.Fuzz(func(t *testing.T, stream, boundary string) {
		pr := newPartReader(strings.NewReader(stream), boundary)
		for i := 0; ; i++ {
			p, err := pr.next()
			if err != nil {
				return
			}
			if len(p) > maxPartSize {
				t.Fatalf("part of %d bytes", len(p))
			}
			if i > len(stream) {
				t.Fatal("more parts than input bytes")
			}
		}
	})
}

func FuzzPortMapsRoundTrip(f *testing.F) {
	f.Add([]byte(`{"enabled":true,"PortList":[{"internalPort":80,"externalPort":"80","x":1}],"AddrList":[{"externalIPAddress":"1.2.3.4"}]}`), []byte(`{"PortList":[{"Single":{"internalPort":7660}},{"Range":{"minInternalPort":1}}]}`))
	f.Fuzz(func(t *testing.T, mgmt, dev []byte) {
		var m MgmtPortMaps
		if json.Unmarshal(mgmt, &m) == nil {
			out, err := json.Marshal(m)
			if err != nil {
				t.Fatalf("re-encode %q: %v", mgmt, err)
			}
			var again MgmtPortMaps
			if err := json.Unmarshal(out, &again); err != nil {
				t.Fatalf("re-decode %q: %v", out, err)
			}
		}
		var d DevPortMaps
		if json.Unmarshal(dev, &d) == nil {
			if _, err := json.Marshal(d); err != nil {
				t.Fatalf("re-encode %q: %v", dev, err)
			}
		}
	})
}

// fuzzPassword is what the canned gateway echoes wherever a body says {pw}.
const fuzzPassword = `S3cr<t&"pw`

// cannedTransport answers every request with the same status, headers
// and body, as a gateway (or something pretending to be one) might.
type cannedTransport struct {
	status      int
	ctype, auth string
	body        []byte
}

func (ct *cannedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	h := http.Header{}
	if ct.ctype != "" {
		h.Set("Content-Type", ct.ctype)
	}
	if ct.auth != "" {
		h.Set("WWW-Authenticate", ct.auth)
	}
	pwJSON, _ := json.Marshal(fuzzPassword)
	body := bytes.ReplaceAll(ct.body, []byte("{pw}"), pwJSON[1:len(pwJSON)-1])
	body = bytes.ReplaceAll(body, []byte("{rawpw}"), []byte(fuzzPassword))
	return &http.Response{StatusCode: ct.status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: -1, Request: req}, nil
}

// checkFormats fails when err's text, in any verb, shows a formatting
// fault or holds the password.
func checkFormats(t *testing.T, err error, pw string) {
	t.Helper()
	if err == nil {
		return
	}
	text := fmt.Sprintf("%v|%+v|%s|%q|%#v", err, err, err, err, err) + err.Error()
	if strings.Contains(fmt.Sprintf("%v|%s|%q", err, err, err), "%!") {
		t.Fatalf("error formats badly: %s", text)
	}
	if pw != "" {
		pwJSON, _ := json.Marshal(pw)
		for _, enc := range []string{pw, string(pwJSON[1 : len(pwJSON)-1]), `S3cr`} {
			if strings.Contains(fmt.Sprintf("%v", err), enc) {
				t.Fatalf("error holds the password (%q): %v", enc, err)
			}
		}
	}
}

// FuzzClientErrors: whatever a gateway answers, every error the client
// returns formats without "%!" (a panicking Error method, a bad verb) and
// without the password the gateway may echo.
func FuzzClientErrors(f *testing.F) {
	f.Add(uint16(200), "application/json", "", []byte(`{"DeviceStatus":{"deviceUpTime":"abc"}}`))
	f.Add(uint16(200), "application/json", "", []byte(`{"statusCode":6,"subStatusCode":"{pw}","errorMsg":"{pw}","statusString":"{rawpw}"}`))
	f.Add(uint16(400), "application/xml", "", []byte(`<ResponseStatus><statusCode>4</statusCode><subStatusCode>{rawpw}</subStatusCode></ResponseStatus>`))
	f.Add(uint16(401), "application/json", `Digest realm="x", qop="auth", nonce="n"`, []byte(`{"statusCode":4,"subStatusCode":"badAuthorization","lockStatus":"lock","resLockTime":"x"}`))
	f.Add(uint16(401), "", `Basic realm="x"`, []byte(``))
	f.Add(uint16(200), "text/html; charset=\"{pw}\"", "", []byte(`{"SearchResult":{"MatchList":[{"Device":{"devIndex":"{pw}","videoChannelNum":true}}]}}`))
	f.Add(uint16(200), "multipart/mixed; boundary=b", "", []byte("--b\r\nContent-Length: {pw}\r\n\r\n{}"))
	f.Add(uint16(200), "application/json", "", []byte(`{"Time":{"localTime":"{pw}"},"ChannelInfo":{"VideoChannel":[{"Channel":{"id":"x","enabled":"{pw}"}}]}}`))
	f.Fuzz(func(t *testing.T, status uint16, ctype, auth string, body []byte) {
		ct := &cannedTransport{status: 200 + int(status)%400, ctype: ctype, auth: auth, body: body}
		c, err := New("http://gw.invalid", "admin", fuzzPassword, WithHTTPClient(&http.Client{Transport: ct}))
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		var errs []error
		add := func(_ any, err error) { errs = append(errs, err) }
		add(c.DeviceInfo(ctx))
		add(c.Status(ctx))
		add(c.Time(ctx))
		if ts, err := c.Time(ctx); err == nil {
			_, lerr := ts.Local()
			errs = append(errs, lerr)
			add(ts.UTCOffset())
		}
		add(c.ContentPortMaps(ctx))
		add(c.DevicePortMaps(ctx))
		add(c.DeviceList(ctx, DeviceListQuery{}))
		add(c.Channels(ctx, "D1"))
		add(c.StreamURL(ctx, "D1", 1, StreamMain))
		add(c.SetDeviceName(ctx, "gw"))
		add(c.SetTime(ctx, &TimeSettings{Mode: TimeModeNTP}))
		add(c.Reboot(ctx))
		add(c.ChangePassword(ctx, "N3w-"+fuzzPassword))
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, serr := c.streamOnce(sctx, SubscribeOptions{HeartbeatTimeout: time.Minute}, func(m StreamMessage) bool {
			errs = append(errs, m.Err)
			return true
		})
		cancel()
		errs = append(errs, serr)
		for _, err := range errs {
			checkFormats(t, err, fuzzPassword)
		}
	})
}
