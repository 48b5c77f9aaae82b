package gatewaysim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"

	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
)

// rawGet sends one GET with the given Authorization header.
func rawGet(t *testing.T, url, auth string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func challengeOf(t *testing.T, resp *http.Response) *digest.Challenge {
	t.Helper()
	h := resp.Header.Get("WWW-Authenticate")
	if !strings.Contains(h, `qop="auth"`) || !strings.Contains(h, `stale="FALSE"`) && !strings.Contains(h, `stale="TRUE"`) {
		t.Fatalf("challenge header %q", h)
	}
	chal, err := digest.ParseChallenge(h)
	if err != nil {
		t.Fatal(err)
	}
	return chal
}

func authHeader(t *testing.T, chal *digest.Challenge, method, uri, user, password string, nc int) string {
	t.Helper()
	cred, err := digest.Digest(chal, digest.Options{Method: method, URI: uri, Count: nc, Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return cred.String()
}

type lockBody struct {
	StatusCode    int    `json:"statusCode"`
	SubStatusCode string `json:"subStatusCode"`
	LockStatus    string `json:"lockStatus"`
	RetryTimes    *int   `json:"retryTimes"`
	ResLockTime   *int   `json:"resLockTime"`
}

func TestDigestWireBehaviour(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithLockout(3, time.Minute))
	const uri = "/ISAPI/System/status?format=json"
	url := sim.URL() + uri

	resp, body := rawGet(t, url, "")
	if resp.StatusCode != 401 {
		t.Fatalf("no credentials: %d", resp.StatusCode)
	}
	var lb lockBody
	if err := json.Unmarshal(body, &lb); err != nil || lb.StatusCode != 4 || lb.SubStatusCode != "badAuthorization" || lb.LockStatus != "unlock" || *lb.RetryTimes != 3 {
		t.Fatalf("challenge body %s: %v", body, err)
	}
	chal := challengeOf(t, resp)
	if chal.Realm != gatewaysim.DefaultRealm {
		t.Fatalf("realm %q", chal.Realm)
	}

	// The same nonce works with increasing nc, and also when nc repeats.
	for _, nc := range []int{1, 2, 2, 1} {
		resp, _ := rawGet(t, url, authHeader(t, chal, "GET", uri, gatewaysimtest.User, gatewaysimtest.Password, nc))
		if resp.StatusCode != 200 {
			t.Fatalf("nc %d: %d", nc, resp.StatusCode)
		}
	}
	// A digest computed for another URI is refused.
	resp, _ = rawGet(t, url, authHeader(t, chal, "GET", "/ISAPI/System/time?format=json", gatewaysimtest.User, gatewaysimtest.Password, 3))
	if resp.StatusCode != 401 {
		t.Fatalf("digest for another URI: %d", resp.StatusCode)
	}
	// Basic is off by default.
	resp, _ = rawGet(t, url, "Basic YWRtaW46U2ltLVBhc3N3MHJk")
	if resp.StatusCode != 401 {
		t.Fatalf("Basic accepted although disabled: %d", resp.StatusCode)
	}
	// The third failure locks the IP; the answer says so.
	resp, body = rawGet(t, url, authHeader(t, chal, "GET", uri, gatewaysimtest.User, "wrong", 4))
	if err := json.Unmarshal(body, &lb); err != nil || resp.StatusCode != 401 || lb.SubStatusCode != "badAuthorization" || lb.LockStatus != "lock" || *lb.RetryTimes != 0 || *lb.ResLockTime != 60 {
		t.Fatalf("third failure: %d %s", resp.StatusCode, body)
	}
	// Locked, even for the right password.
	resp, body = rawGet(t, url, authHeader(t, chal, "GET", uri, gatewaysimtest.User, gatewaysimtest.Password, 4))
	if err := json.Unmarshal(body, &lb); err != nil || resp.StatusCode != 401 || lb.SubStatusCode != "deviceIsLocked" || lb.LockStatus != "lock" || *lb.RetryTimes != 0 || *lb.ResLockTime < 59 {
		t.Fatalf("locked: %d %s", resp.StatusCode, body)
	}
	if c := sim.Counters(); c.FailedLogins["127.0.0.1"] != 3 || c.Lockouts["127.0.0.1"] != 1 {
		t.Fatalf("failed logins %v, lockouts %v", c.FailedLogins, c.Lockouts)
	}
	sim.Unlock("")
	resp, _ = rawGet(t, url, authHeader(t, chal, "GET", uri, gatewaysimtest.User, gatewaysimtest.Password, 5))
	if resp.StatusCode != 200 {
		t.Fatalf("after unlock: %d", resp.StatusCode)
	}

	// Without format=json the error body is XML.
	resp, body = rawGet(t, sim.URL()+"/ISAPI/System/status", "")
	if resp.StatusCode != 401 || !strings.Contains(string(body), "<ResponseStatus") || !strings.Contains(string(body), "hikvision.com") {
		t.Fatalf("XML 401: %d %s", resp.StatusCode, body)
	}
}
