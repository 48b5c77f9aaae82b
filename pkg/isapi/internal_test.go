package isapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"mediagw/testsupport/gatewaysim/gatewaysimtest"
)

func TestUnknownPathAndMethodNotSupported(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	c, err := New(sim.URL(), gatewaysimtest.User, gatewaysimtest.Password)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	_, err = c.do(t.Context(), request{method: http.MethodGet, path: "/ISAPI/ContentMgmt/InputProxy/channels"}, nil, &out)
	var se *StatusError
	if !errors.Is(err, ErrNotSupported) || !errors.As(err, &se) || se.HTTPStatus != 403 || se.Status.SubStatusCode != "notSupport" {
		t.Fatalf("unknown path: %v", err)
	}
	_, err = c.do(t.Context(), request{method: http.MethodDelete, path: pathStatus}, nil, nil)
	if !errors.Is(err, ErrNotSupported) || !errors.As(err, &se) || se.Status.SubStatusCode != "methodNotAllowed" {
		t.Fatalf("wrong method: %v", err)
	}
	_, err = c.do(t.Context(), request{method: http.MethodPut, path: pathTime, body: []byte("{not json")}, nil, nil)
	if !errors.Is(err, ErrInvalidFormat) {
		t.Fatalf("bad JSON: %v", err)
	}
}

func TestParseResponseStatus(t *testing.T) {
	cases := []struct {
		body     string
		code     int
		sub      string
		retry    int
		lockLeft int
	}{
		{`{"requestURL":"/ISAPI/x","statusCode":4,"statusString":"Invalid Operation","subStatusCode":"notSupport","errorCode":1073741825}`, 4, "notSupport", -1, -1},
		{`{"ResponseStatus":{"statusCode":"6","subStatusCode":"badParameters","newField":[1,2]}}`, 6, "badParameters", -1, -1},
		{`{"statusCode":4,"subStatusCode":"badAuthorization","lockStatus":"unlock","retryTimes":3,"resLockTime":0}`, 4, "badAuthorization", 3, 0},
		{`<?xml version="1.0" encoding="UTF-8"?>
<ResponseStatus version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<requestURL>/ISAPI/System/status</requestURL><statusCode>3</statusCode><statusString>Device Error</statusString><subStatusCode>deviceError</subStatusCode></ResponseStatus>`, 3, "deviceError", -1, -1},
		{`<ResponseStatus xmlns="http://www.isapi.org/ver20/XMLSchema"><statusCode> 2 </statusCode><subStatusCode>deviceBusy</subStatusCode><retryTimes>1</retryTimes></ResponseStatus>`, 2, "deviceBusy", 1, -1},
		{`<ResponseStatus version="1.0" xmlns="http://www.hikvision.com/ver10/XMLSchema"><statusCode>1</statusCode><subStatusCode>ok</subStatusCode></ResponseStatus>`, 1, "ok", -1, -1},
	}
	for _, tc := range cases {
		rs, ok := ParseResponseStatus([]byte(tc.body))
		if !ok || rs.StatusCode != tc.code || rs.SubStatusCode != tc.sub || rs.RetryTimes != tc.retry || rs.ResLockTime != tc.lockLeft {
			t.Errorf("ParseResponseStatus(%.60q) = %+v, %v", tc.body, rs, ok)
		}
	}
	for _, body := range []string{``, `{}`, `{"DeviceInfo":{}}`, `<html>500</html>`, `<Other><statusCode>1</statusCode></Other>`, `{"statusCode":`, `[1]`} {
		if rs, ok := ParseResponseStatus([]byte(body)); ok {
			t.Errorf("ParseResponseStatus(%q) found %+v", body, rs)
		}
	}
}

func TestPutKeepsUnknownMembers(t *testing.T) {
	in := `{"enabled":false,"futureFlag":"x","PortList":[{"protocol":"HTTP","internalPort":80,"externalPort":0,"portId":7}],"AddrList":[{"externalIPAddress":"0.0.0.0","ipVersion":"v4"}]}`
	var m MgmtPortMaps
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	m.Enabled = true
	m.PortList[0].ExternalPort = 80
	m.AddrList[0].ExternalIPAddress = "198.51.100.1"
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"futureFlag":"x"`, `"portId":7`, `"ipVersion":"v4"`, `"enabled":true`, `"externalPort":80`, `"198.51.100.1"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("re-encoded %s lacks %s", out, want)
		}
	}

	var ts TimeSettings
	if err := json.Unmarshal([]byte(`{"timeMode":"manual","localTime":"2024-01-22T11:47:05+08:00","timeZone":"CST-8:00:00","satelliteInterval":60}`), &ts); err != nil {
		t.Fatal(err)
	}
	ts.Mode, ts.LocalTime = TimeModeNTP, ""
	out, _ = json.Marshal(ts)
	if strings.Contains(string(out), "localTime") || !strings.Contains(string(out), `"satelliteInterval":60`) || !strings.Contains(string(out), `"timeMode":"NTP"`) {
		t.Errorf("time re-encoded as %s", out)
	}

	var dp DevPortMaps
	if err := json.Unmarshal([]byte(`{"enabled":true,"PortList":[{"Single":{"internalPort":7660,"externalPort":0}},{"Range":{"minInternalPort":1,"maxInternalPort":2,"minExternalPort":0,"maxExternalPort":0}}]}`), &dp); err != nil {
		t.Fatal(err)
	}
	dp.PortList[0].Single = nil
	dp.PortList[0].Range = &PortRange{MinInternalPort: 5, MaxInternalPort: 6}
	out, _ = json.Marshal(dp)
	if strings.Contains(string(out), "Single") || strings.Count(string(out), "Range") != 2 {
		t.Errorf("dev port maps re-encoded as %s", out)
	}
}

func readParts(t testing.TB, stream, boundary string) ([]string, error) {
	pr := newPartReader(strings.NewReader(stream), boundary)
	var parts []string
	for {
		p, err := pr.next()
		if err != nil {
			return parts, err
		}
		parts = append(parts, string(p))
	}
}

func TestPartReaderFramings(t *testing.T) {
	withLength := "--b\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}\r\n--b\r\nContent-Length: 3\r\n\r\n[1]\r\n"
	parts, err := readParts(t, withLength, "b")
	if !errors.Is(err, io.EOF) || len(parts) != 2 || parts[1] != "[1]" {
		t.Fatalf("with Content-Length: %q %v", parts, err)
	}
	noLength := "preamble\r\n--b\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\r\n--b\r\n\r\n{\"b\":\n2}\r\n--b--\r\n"
	parts, err = readParts(t, noLength, "b")
	if !errors.Is(err, io.EOF) || len(parts) != 2 || parts[0] != `{"a":1}` || parts[1] != "{\"b\":\n2}" {
		t.Fatalf("without Content-Length: %q %v", parts, err)
	}
	parts, err = readParts(t, "--xyz\r\n\r\nA\r\n--xyz\r\n\r\nB\r\n--xyz--", "")
	if !errors.Is(err, io.EOF) || len(parts) != 2 || parts[1] != "B" {
		t.Fatalf("learned boundary: %q %v", parts, err)
	}
	_, err = readParts(t, "--b\r\nContent-Length: 100\r\n\r\n{\"eventType\"", "b")
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated part: %v", err)
	}
}

func TestStreamPartParsing(t *testing.T) {
	ev, hb, _, err := parseStreamPart([]byte(`{"eventType":"deviceMgmt","dateTime":"2024-01-22T11:47:05+08:00","DeviceMgmtEvent":{"seq":"9","type":"offline","devIndex":"A-1","devStatus":"offline","extra":true}}`))
	if err != nil || hb || ev.Seq != 9 || ev.Type != EventOffline || ev.DevIndex != "A-1" || ev.Time.IsZero() {
		t.Fatalf("event: %+v %v %v", ev, hb, err)
	}
	if _, hb, _, err := parseStreamPart([]byte(`{"eventType":"heartBeat"}`)); err != nil || !hb {
		t.Fatalf("heartbeat: %v %v", hb, err)
	}
	for _, bad := range []string{`{"DeviceMgmtEvent":{"type":"added"}}`, `{"eventType":"videoloss"}`, `nope`, `{"DeviceMgmtEvent":{"type":"added","devIndex":"x","seq":{}}}`} {
		if _, _, _, err := parseStreamPart([]byte(bad)); err == nil {
			t.Errorf("parseStreamPart(%q) accepted", bad)
		}
	}
}

func TestSubscriptionAcceptsNDJSONAndErrorStatus(t *testing.T) {
	busy := make(chan bool, 1)
	busy <- false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if <-busy {
			_, _ = io.WriteString(w, `{"statusCode":2,"subStatusCode":"deviceBusy"}`)
			return
		}
		busy <- true
		_, _ = io.WriteString(w, "{\"eventType\":\"heartbeat\"}\n{\"eventType\":\"deviceMgmt\",\"DeviceMgmtEvent\":{\"type\":\"added\",\"devIndex\":\"X1\"}}\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c, err := New(srv.URL, "admin", "pw")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ch := c.SubscribeDeviceMgmt(ctx, SubscribeOptions{HeartbeatTimeout: 200 * time.Millisecond, InitialBackoff: 10 * time.Millisecond})
	defer func() {
		cancel()
		for range ch {
		}
	}()
	var kinds []StreamKind
	for m := range ch {
		kinds = append(kinds, m.Kind)
		if m.Kind == KindEvent && m.Event.DevIndex != "X1" {
			t.Fatalf("event %+v", m.Event)
		}
		if m.Kind == KindDisconnected && errors.Is(m.Err, ErrBusy) {
			break
		}
		if len(kinds) > 10 {
			break
		}
	}
	want := []StreamKind{KindConnected, KindHeartbeat, KindEvent, KindHeartbeatTimeout, KindDisconnected, KindDisconnected}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
}
