package gatewaysim_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"

	rtspmsg "mediagw/pkg/rtsp"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

const statusPath = "/ISAPI/System/status?format=json"

var t0 = time.Date(2024, 1, 22, 3, 0, 0, 0, time.UTC)

// digestGet is one login by a real Digest client: the challenge round trip,
// then one request with credentials. A fresh transport without keep-alive
// per call, so the client neither reuses a challenge (which would make a
// wrong password two failed logins) nor re-sends on a reused connection.
func digestGet(ctx context.Context, url, password string) (*http.Response, []byte, error) {
	c := &http.Client{Transport: &digest.Transport{
		Username: gatewaysimtest.User, Password: password,
		Transport: &http.Transport{DisableKeepAlives: true},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

func mustDigestGet(t *testing.T, url, password string) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := digestGet(t.Context(), url, password)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// checkRecord compares a ledger record with what is expected of it.
func checkRecord(t *testing.T, got gatewaysim.FailedLogin, want gatewaysim.FailedLogin) {
	t.Helper()
	if !got.Time.Equal(want.Time) || got.IP != want.IP || got.Protocol != want.Protocol || got.User != want.User ||
		got.Request != want.Request || got.Locked != want.Locked || got.Locks != want.Locks || got.Answer != want.Answer {
		t.Fatalf("ledger record\n got  %+v\n want %+v", got, want)
	}
}

func ledgerLen(t *testing.T, sim *gatewaysim.Server, want int) gatewaysim.LoginLedger {
	t.Helper()
	l := sim.LoginFailures()
	if len(l) != want {
		t.Fatalf("ledger has %d records, want %d: %+v", len(l), want, l)
	}
	return l
}

func TestLedgerRecordsEveryFailedISAPILogin(t *testing.T) {
	clock := testkit.NewClock(t0)
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithLockout(3, 30*time.Minute), gatewaysimtest.WithClock(clock.Now))
	url := sim.URL() + statusPath
	failed := func(at time.Time) gatewaysim.FailedLogin {
		return gatewaysim.FailedLogin{Time: at, IP: "127.0.0.1", Protocol: gatewaysim.ProtocolISAPI, User: gatewaysimtest.User,
			Request: "GET /ISAPI/System/status", Answer: gatewaysim.AnswerUnauthorized}
	}

	// A right login is not in the ledger, nor is its challenge round trip.
	if resp, _ := mustDigestGet(t, url, gatewaysimtest.Password); resp.StatusCode != 200 {
		t.Fatalf("right password: %d", resp.StatusCode)
	}
	ledgerLen(t, sim, 0)

	// Three wrong passwords 20 minutes apart: the third locks.
	for i := range 3 {
		if resp, _ := mustDigestGet(t, url, "wrong"); resp.StatusCode != 401 {
			t.Fatalf("wrong password %d: %d", i+1, resp.StatusCode)
		}
		want := failed(t0.Add(time.Duration(i) * 20 * time.Minute))
		want.Locks = i == 2
		checkRecord(t, ledgerLen(t, sim, i+1)[i], want)
		clock.Advance(20 * time.Minute)
	}
	// Locked at t0+40m until t0+70m: the right password is refused and
	// recorded as a failed login, but it is not a wrong credential.
	resp, body := mustDigestGet(t, url, gatewaysimtest.Password)
	if resp.StatusCode != 401 || !strings.Contains(string(body), "deviceIsLocked") {
		t.Fatalf("right password while locked: %d %s", resp.StatusCode, body)
	}
	l := ledgerLen(t, sim, 4)
	want := failed(t0.Add(60 * time.Minute))
	want.Locked = true
	checkRecord(t, l[3], want)
	if c := sim.Counters(); c.FailedLogins["127.0.0.1"] != 3 || c.Lockouts["127.0.0.1"] != 1 || len(c.LoginFailures) != 4 {
		t.Fatalf("counters: failed %v, lockouts %v, ledger %d", c.FailedLogins, c.Lockouts, len(c.LoginFailures))
	}
	// Records at t0, t0+20m, t0+40m, t0+60m: two in any 30 minutes, three in 41.
	if n := l.MaxInWindow(30 * time.Minute); n != 2 {
		t.Errorf("MaxInWindow(30m) = %d, want 2", n)
	}
	if n := l.MaxInWindow(41 * time.Minute); n != 3 {
		t.Errorf("MaxInWindow(41m) = %d, want 3", n)
	}
	if n := len(l.ByIP("127.0.0.1").ByProtocol(gatewaysim.ProtocolISAPI).Since(t0.Add(20 * time.Minute))); n != 3 {
		t.Errorf("filtered ledger: %d records, want 3", n)
	}

	// The lock ends on the gateway's clock; the ledger stays until reset.
	clock.Advance(11 * time.Minute)
	if resp, _ := mustDigestGet(t, url, gatewaysimtest.Password); resp.StatusCode != 200 {
		t.Fatalf("after the lock: %d", resp.StatusCode)
	}
	ledgerLen(t, sim, 4)
	sim.ResetCounters()
	ledgerLen(t, sim, 0)
}

func TestLedgerMaxInWindow(t *testing.T) {
	at := func(mins ...int) gatewaysim.LoginLedger {
		var l gatewaysim.LoginLedger
		for _, m := range mins {
			l = append(l, gatewaysim.FailedLogin{Time: t0.Add(time.Duration(m) * time.Minute)})
		}
		return l
	}
	for _, tc := range []struct {
		l    gatewaysim.LoginLedger
		want int
	}{
		{at(), 0},
		{at(5), 1},
		{at(0, 30, 60), 1},        // exactly 30 minutes apart: never in one window
		{at(0, 29, 30, 31), 3},    // 29, 30, 31
		{at(60, 0, 10, 20, 5), 4}, // order does not matter
	} {
		if got := tc.l.MaxInWindow(30 * time.Minute); got != tc.want {
			t.Errorf("MaxInWindow(30m) of %v = %d, want %d", tc.l, got, tc.want)
		}
	}
}

func TestLost401(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithLockout(3, 30*time.Minute),
		gatewaysimtest.WithLoginFaults(gatewaysim.LoginFaults{Lost401: true}))
	url := sim.URL() + statusPath

	// Right logins are answered; so is the challenge round trip (else no
	// credentials would be sent); wrong credentials get no answer.
	if resp, _ := mustDigestGet(t, url, gatewaysimtest.Password); resp.StatusCode != 200 {
		t.Fatalf("right password: %d", resp.StatusCode)
	}
	for i := range 3 {
		if _, _, err := digestGet(t.Context(), url, "wrong"); !errors.Is(err, io.EOF) {
			t.Fatalf("wrong password %d: err %v, want the connection closed without an answer", i+1, err)
		}
	}
	// Lost, yet counted: the third locked the IP, so the right password is
	// now refused, without an answer as well.
	if _, _, err := digestGet(t.Context(), url, gatewaysimtest.Password); !errors.Is(err, io.EOF) {
		t.Fatalf("right password while locked: err %v, want no answer", err)
	}
	l := ledgerLen(t, sim, 4)
	for i, f := range l {
		if f.Answer != gatewaysim.AnswerLost || f.Locks != (i == 2) || f.Locked != (i == 3) {
			t.Errorf("record %d: %+v", i, f)
		}
	}
	if c := sim.Counters(); c.FailedLogins["127.0.0.1"] != 3 || c.Lockouts["127.0.0.1"] != 1 {
		t.Fatalf("failed %v, lockouts %v", c.FailedLogins, c.Lockouts)
	}

	// A PUT with a body is read to the end before the connection is closed.
	req, _ := http.NewRequest(http.MethodPut, sim.URL()+"/ISAPI/System/deviceInfo?format=json",
		strings.NewReader(`{"DeviceInfo":{"deviceName":"x"}}`))
	req.Header.Set("Authorization", basicAuth(gatewaysimtest.User, "wrong"))
	if _, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req); !errors.Is(err, io.EOF) {
		t.Fatalf("PUT: err %v, want no answer", err)
	}
	if f := ledgerLen(t, sim, 5)[4]; f.Request != "PUT /ISAPI/System/deviceInfo" || !f.Locked || f.Answer != gatewaysim.AnswerLost {
		t.Fatalf("PUT record: %+v", f)
	}
}

func TestLate401(t *testing.T) {
	clock := testkit.NewClock(t0)
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithClock(clock.Now),
		gatewaysimtest.WithLoginFaults(gatewaysim.LoginFaults{Late401: time.Hour}))
	url := sim.URL() + statusPath

	// The challenge round trip and right logins are not held back.
	if resp, _ := mustDigestGet(t, url, gatewaysimtest.Password); resp.StatusCode != 200 {
		t.Fatalf("right password: %d", resp.StatusCode)
	}
	// A client that gives up before the late 401 has still spent a login:
	// it is recorded when the request arrives.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, _, err := digestGet(ctx, url, "wrong"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wrong password, late answer: err %v, want the client's timeout", err)
	}
	checkRecord(t, ledgerLen(t, sim, 1)[0], gatewaysim.FailedLogin{Time: t0, IP: "127.0.0.1", Protocol: gatewaysim.ProtocolISAPI,
		User: gatewaysimtest.User, Request: "GET /ISAPI/System/status", Answer: gatewaysim.AnswerLate})

	// The answer does come, with the lock fields, after the delay.
	const delay = 300 * time.Millisecond
	if err := sim.SetLoginFaults(gatewaysim.LoginFaults{Late401: delay}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, body := mustDigestGet(t, url, "wrong")
	if took := time.Since(start); took < delay || resp.StatusCode != 401 || !strings.Contains(string(body), `"retryTimes"`) {
		t.Fatalf("late 401: %d %s after %v, want 401 with lock fields after %v", resp.StatusCode, body, took, delay)
	}
	if c := sim.Counters(); c.FailedLogins["127.0.0.1"] != 2 || len(c.LoginFailures) != 2 {
		t.Fatalf("failed %v, ledger %+v", c.FailedLogins, c.LoginFailures)
	}
}

func TestNoLockFields(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithLockout(2, 30*time.Minute),
		gatewaysimtest.WithLoginFaults(gatewaysim.LoginFaults{NoLockFields: true}))
	url := sim.URL() + statusPath

	// Every 401 is bare: the challenge, wrong passwords, the locking one,
	// and the right password while locked.
	resp, body := rawGet(t, url, "")
	if resp.StatusCode != 401 || len(body) != 0 || resp.ContentLength != 0 {
		t.Fatalf("challenge: %d %q", resp.StatusCode, body)
	}
	challengeOf(t, resp)
	for i, password := range []string{"wrong", "wrong", gatewaysimtest.Password} {
		resp, body := mustDigestGet(t, url, password)
		if resp.StatusCode != 401 || len(body) != 0 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Digest ") {
			t.Fatalf("login %d: %d %q %v", i+1, resp.StatusCode, body, resp.Header)
		}
	}
	// The gateway locked all the same.
	l := ledgerLen(t, sim, 3)
	if !l[1].Locks || !l[2].Locked {
		t.Fatalf("ledger: %+v", l)
	}
	if c := sim.Counters(); c.Lockouts["127.0.0.1"] != 1 {
		t.Fatalf("lockouts %v", c.Lockouts)
	}
}

func TestBasicOnly(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithLoginFaults(gatewaysim.LoginFaults{BasicOnly: true}))
	url := sim.URL() + statusPath

	resp, _ := rawGet(t, url, "")
	if ch := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 401 || len(ch) != 1 || ch[0] != `Basic realm="`+gatewaysim.DefaultRealm+`"` {
		t.Fatalf("challenge: %d %v", resp.StatusCode, ch)
	}
	// A Digest client cannot answer it and sends no credentials.
	if _, _, err := digestGet(t.Context(), url, gatewaysimtest.Password); err == nil {
		t.Fatal("a Digest client answered a Basic-only challenge")
	}
	ledgerLen(t, sim, 0)

	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth(gatewaysimtest.User, gatewaysimtest.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("Basic, right password: %d", resp.StatusCode)
	}
	if resp, _ := rawGet(t, url, basicAuth(gatewaysimtest.User, "wrong")); resp.StatusCode != 401 {
		t.Fatalf("Basic, wrong password: %d", resp.StatusCode)
	}
	// Digest credentials (say, computed for a nonce of earlier) are refused
	// and counted, even with the right password.
	chal := &digest.Challenge{Realm: gatewaysim.DefaultRealm, Nonce: "00112233445566778899aabbccddeeff00112233", QOP: []string{"auth"}}
	if resp, _ := rawGet(t, url, authHeader(t, chal, "GET", statusPath, gatewaysimtest.User, gatewaysimtest.Password, 1)); resp.StatusCode != 401 {
		t.Fatalf("Digest: %d", resp.StatusCode)
	}
	l := ledgerLen(t, sim, 2)
	if l[0].User != gatewaysimtest.User || l[1].User != gatewaysimtest.User || sim.Counters().FailedLogins["127.0.0.1"] != 2 {
		t.Fatalf("ledger %+v", l)
	}
}

// rtspConn is a raw RTSP client connection.
type rtspConn struct {
	t    *testing.T
	nc   net.Conn
	br   *bufio.Reader
	cseq int
}

func dialRTSP(t *testing.T, sim *gatewaysim.Server) *rtspConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", sim.RTSPAddr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rtspConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// describe sends DESCRIBE with the given Authorization ("" for none) and
// reads the answer.
func (c *rtspConn) describe(uri, authorization string) (*rtspmsg.Message, error) {
	c.t.Helper()
	c.cseq++
	req := fmt.Sprintf("DESCRIBE %s RTSP/1.0\r\nCSeq: %d\r\nAccept: application/sdp\r\n", uri, c.cseq)
	if authorization != "" {
		req += "Authorization: " + authorization + "\r\n"
	}
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.nc, req+"\r\n"); err != nil {
		c.t.Fatal(err)
	}
	return rtspmsg.Read(c.br, rtspmsg.Limits{})
}

func (c *rtspConn) mustDescribe(uri, authorization string) *rtspmsg.Message {
	c.t.Helper()
	m, err := c.describe(uri, authorization)
	if err != nil {
		c.t.Fatalf("DESCRIBE: %v", err)
	}
	return m
}

// rtspDigest answers the Digest challenge of a 401 with icholy/digest, as
// the recorder's relay does.
func rtspDigest(t *testing.T, m *rtspmsg.Message, uri, password string) string {
	t.Helper()
	for _, h := range m.Header.Values("WWW-Authenticate") {
		if !digest.IsDigest(h) {
			continue
		}
		chal, err := digest.ParseChallenge(h)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := digest.Digest(chal, digest.Options{Method: "DESCRIBE", URI: uri, Username: gatewaysimtest.User, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return cred.String()
	}
	t.Fatalf("no Digest challenge in %v", m.Header)
	return ""
}

func TestRTSPLoginsShareTheLockoutAndLedger(t *testing.T) {
	clock := testkit.NewClock(t0)
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithRTSP(), gatewaysimtest.WithLockout(3, 30*time.Minute),
		gatewaysimtest.WithClock(clock.Now))
	dev := sim.Devices()[0].DevIndex
	uri := sim.StreamURL(dev, 1, false)
	streamPath := gatewaysim.StreamPath(dev, 1, false)
	c := dialRTSP(t, sim)

	// The challenge round trip is not a failed login.
	chal := c.mustDescribe(uri, "")
	if chal.Status != 401 {
		t.Fatalf("no credentials: %d", chal.Status)
	}
	ledgerLen(t, sim, 0)

	// 1: RTSP, wrong Digest.
	if m := c.mustDescribe(uri, rtspDigest(t, chal, uri, "wrong")); m.Status != 401 {
		t.Fatalf("wrong Digest: %d", m.Status)
	}
	checkRecord(t, ledgerLen(t, sim, 1)[0], gatewaysim.FailedLogin{Time: t0, IP: "127.0.0.1", Protocol: gatewaysim.ProtocolRTSP,
		User: gatewaysimtest.User, Request: "DESCRIBE " + streamPath, Answer: gatewaysim.AnswerUnauthorized})
	// 2: ISAPI counts on from there.
	clock.Advance(time.Minute)
	resp, body := mustDigestGet(t, sim.URL()+statusPath, "wrong")
	var lb lockBody
	if err := json.Unmarshal(body, &lb); err != nil || resp.StatusCode != 401 || lb.RetryTimes == nil || *lb.RetryTimes != 1 {
		t.Fatalf("ISAPI after an RTSP failure: %d %s", resp.StatusCode, body)
	}
	// 3: RTSP, wrong Basic: locks the IP for both.
	clock.Advance(time.Minute)
	if m := c.mustDescribe(uri, basicAuth(gatewaysimtest.User, "wrong")); m.Status != 401 {
		t.Fatalf("wrong Basic: %d", m.Status)
	}
	// Locked: the right password fails on RTSP and on ISAPI.
	if m := c.mustDescribe(uri, rtspDigest(t, chal, uri, gatewaysimtest.Password)); m.Status != 401 {
		t.Fatalf("right Digest while locked: %d", m.Status)
	}
	if resp, body := mustDigestGet(t, sim.URL()+statusPath, gatewaysimtest.Password); resp.StatusCode != 401 || !strings.Contains(string(body), "deviceIsLocked") {
		t.Fatalf("ISAPI while locked by RTSP: %d %s", resp.StatusCode, body)
	}
	l := ledgerLen(t, sim, 5)
	protos := []string{"rtsp", "isapi", "rtsp", "rtsp", "isapi"}
	for i, f := range l {
		if f.Protocol != protos[i] || f.Locks != (i == 2) || f.Locked != (i >= 3) || f.IP != "127.0.0.1" {
			t.Errorf("record %d: %+v", i, f)
		}
	}
	if n := l.ByProtocol(gatewaysim.ProtocolRTSP).CountByIP()["127.0.0.1"]; n != 3 {
		t.Errorf("RTSP records: %d, want 3", n)
	}
	if c := sim.Counters(); c.FailedLogins["127.0.0.1"] != 3 || c.Lockouts["127.0.0.1"] != 1 {
		t.Fatalf("failed %v, lockouts %v", c.FailedLogins, c.Lockouts)
	}

	// Once the lock has passed the stream is served again.
	clock.Advance(30 * time.Minute)
	if m := c.mustDescribe(uri, rtspDigest(t, chal, uri, gatewaysimtest.Password)); m.Status != 200 {
		t.Fatalf("after the lock: %d", m.Status)
	}
	ledgerLen(t, sim, 5)
}

func TestRTSPLoginFaults(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithRTSP())
	uri := sim.StreamURL(sim.Devices()[0].DevIndex, 1, false)
	setFaults := func(t *testing.T, f gatewaysim.LoginFaults) {
		t.Helper()
		if err := sim.SetLoginFaults(f); err != nil {
			t.Fatal(err)
		}
		sim.ResetCounters()
		sim.Unlock("")
	}

	t.Run("lost", func(t *testing.T) {
		setFaults(t, gatewaysim.LoginFaults{Lost401: true})
		c := dialRTSP(t, sim)
		chal := c.mustDescribe(uri, "") // the challenge is answered
		if chal.Status != 401 {
			t.Fatalf("no credentials: %d", chal.Status)
		}
		if m, err := c.describe(uri, rtspDigest(t, chal, uri, "wrong")); !errors.Is(err, io.EOF) {
			t.Fatalf("wrong password: %v %v, want the connection closed without an answer", m, err)
		}
		if f := ledgerLen(t, sim, 1)[0]; f.Protocol != gatewaysim.ProtocolRTSP || f.Answer != gatewaysim.AnswerLost {
			t.Fatalf("record %+v", f)
		}
	})
	t.Run("late", func(t *testing.T) {
		// The challenge round trip and right logins are not held back.
		setFaults(t, gatewaysim.LoginFaults{Late401: time.Hour})
		c := dialRTSP(t, sim)
		chal := c.mustDescribe(uri, "")
		if chal.Status != 401 {
			t.Fatalf("challenge: %d", chal.Status)
		}
		if m := c.mustDescribe(uri, rtspDigest(t, chal, uri, gatewaysimtest.Password)); m.Status != 200 {
			t.Fatalf("right password: %d", m.Status)
		}
		const delay = 300 * time.Millisecond
		setFaults(t, gatewaysim.LoginFaults{Late401: delay})
		start := time.Now()
		if m := c.mustDescribe(uri, basicAuth(gatewaysimtest.User, "wrong")); m.Status != 401 || time.Since(start) < delay {
			t.Fatalf("wrong password: %d after %v, want 401 after %v", m.Status, time.Since(start), delay)
		}
		if f := ledgerLen(t, sim, 1)[0]; f.Answer != gatewaysim.AnswerLate {
			t.Fatalf("record %+v", f)
		}
	})
	t.Run("basic only", func(t *testing.T) {
		setFaults(t, gatewaysim.LoginFaults{})
		c := dialRTSP(t, sim)
		digestChal := c.mustDescribe(uri, "") // a nonce from before
		setFaults(t, gatewaysim.LoginFaults{BasicOnly: true})
		chal := c.mustDescribe(uri, "")
		if ch := chal.Header.Values("WWW-Authenticate"); chal.Status != 401 || len(ch) != 1 || !strings.HasPrefix(ch[0], "Basic ") {
			t.Fatalf("challenge: %d %v", chal.Status, ch)
		}
		// Digest fails and counts, even with the right password.
		if m := c.mustDescribe(uri, rtspDigest(t, digestChal, uri, gatewaysimtest.Password)); m.Status != 401 {
			t.Fatalf("Digest: %d", m.Status)
		}
		if m := c.mustDescribe(uri, basicAuth(gatewaysimtest.User, gatewaysimtest.Password)); m.Status != 200 {
			t.Fatalf("Basic: %d", m.Status)
		}
		if f := ledgerLen(t, sim, 1)[0]; f.User != gatewaysimtest.User || f.Protocol != gatewaysim.ProtocolRTSP {
			t.Fatalf("record %+v", f)
		}
	})
}

func TestLoginFaultsAndLedgerOverAdmin(t *testing.T) {
	clock := testkit.NewClock(t0)
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithAdmin(), gatewaysimtest.WithClock(clock.Now))

	var lf gatewaysim.LoginFaults
	if code := admin(t, sim, "PUT", "/admin/login-faults", `{"lost401":true,"late401":"1.5s","noLockFields":true,"basicOnly":true}`, &lf); code != 200 ||
		lf != (gatewaysim.LoginFaults{Lost401: true, Late401: 1500 * time.Millisecond, NoLockFields: true, BasicOnly: true}) {
		t.Fatalf("PUT: %d %+v", code, lf)
	}
	if sim.LoginFaults() != lf {
		t.Fatalf("in force: %+v", sim.LoginFaults())
	}
	var raw map[string]any
	admin(t, sim, "GET", "/admin/login-faults", "", &raw)
	if raw["late401"] != "1.5s" || raw["lost401"] != true {
		t.Fatalf("GET: %v", raw)
	}
	if code := admin(t, sim, "PUT", "/admin/login-faults", `{"late401":"-1s"}`, nil); code != 400 {
		t.Fatalf("negative delay: %d", code)
	}
	if code := admin(t, sim, "PUT", "/admin/login-faults", `{"lost":true}`, nil); code != 200 {
		t.Fatalf("unknown field: %d", code) // ignored, like every admin body
	}
	if sim.LoginFaults() != (gatewaysim.LoginFaults{}) {
		t.Fatalf("a PUT replaces all faults: %+v", sim.LoginFaults())
	}
	if code := admin(t, sim, "PUT", "/admin/login-faults", `{"late401":2}`, &lf); code != 200 || lf.Late401 != 2*time.Second {
		t.Fatalf("seconds: %d %+v", code, lf)
	}
	if code := admin(t, sim, "DELETE", "/admin/login-faults", "", nil); code != 204 || sim.LoginFaults() != (gatewaysim.LoginFaults{}) {
		t.Fatalf("DELETE: %d %+v", code, sim.LoginFaults())
	}

	// Two wrong passwords 40 minutes apart, then the ledger over the API.
	url := sim.URL() + statusPath
	mustDigestGet(t, url, "wrong")
	clock.Advance(40 * time.Minute)
	mustDigestGet(t, url, "wrong")
	type ledgerAnswer struct {
		Total       int                      `json:"total"`
		ByIP        map[string]int           `json:"byIP"`
		Window      string                   `json:"window"`
		MaxInWindow *int                     `json:"maxInWindow"`
		Records     []gatewaysim.FailedLogin `json:"records"`
	}
	var got ledgerAnswer
	if code := admin(t, sim, "GET", "/admin/login-failures?window=30m", "", &got); code != 200 || got.Total != 2 || got.ByIP["127.0.0.1"] != 2 ||
		got.Window != "30m0s" || got.MaxInWindow == nil || *got.MaxInWindow != 1 || len(got.Records) != 2 {
		t.Fatalf("ledger: %d %+v", code, got)
	}
	checkRecord(t, got.Records[1], gatewaysim.FailedLogin{Time: t0.Add(40 * time.Minute), IP: "127.0.0.1", Protocol: gatewaysim.ProtocolISAPI,
		User: gatewaysimtest.User, Request: "GET /ISAPI/System/status", Answer: gatewaysim.AnswerUnauthorized})
	got = ledgerAnswer{}
	if admin(t, sim, "GET", "/admin/login-failures?window=3600&since="+t0.Add(time.Minute).Format(time.RFC3339), "", &got); got.Total != 1 || *got.MaxInWindow != 1 {
		t.Fatalf("since: %+v", got)
	}
	got = ledgerAnswer{}
	if admin(t, sim, "GET", "/admin/login-failures?protocol=rtsp", "", &got); got.Total != 0 || got.Records == nil || got.MaxInWindow != nil {
		t.Fatalf("rtsp: %+v", got)
	}
	for _, q := range []string{"window=soon", "window=0", "since=yesterday"} {
		if code := admin(t, sim, "GET", "/admin/login-failures?"+q, "", nil); code != 400 {
			t.Errorf("%s: %d", q, code)
		}
	}
	var c gatewaysim.Counters
	admin(t, sim, "GET", "/admin/counters", "", &c)
	if len(c.LoginFailures) != 2 || c.FailedLogins["127.0.0.1"] != 2 {
		t.Fatalf("counters: %+v", c)
	}
	admin(t, sim, "DELETE", "/admin/counters", "", nil)
	got = ledgerAnswer{}
	if admin(t, sim, "GET", "/admin/login-failures", "", &got); got.Total != 0 {
		t.Fatalf("after reset: %+v", got)
	}
}
