package isapi

import (
	"encoding/json"
	"strings"
	"testing"
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
			_ = (&StatusError{Method: "GET", Path: "/", HTTPStatus: 200, Status: rs}).Error()
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
