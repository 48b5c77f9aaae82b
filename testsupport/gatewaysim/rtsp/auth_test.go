package rtsp

import (
	"fmt"
	"strings"
	"testing"

	"github.com/icholy/digest"
)

func newTestAuthenticator(t *testing.T) *authenticator {
	t.Helper()
	a, err := newAuthenticator(func() (string, string) { return testUser, testPassword })
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func challengeNonce(a *authenticator) string {
	c, err := digest.ParseChallenge(a.challenges(false)[0])
	if err != nil {
		panic(err)
	}
	return c.Nonce
}

func TestDigestVariants(t *testing.T) {
	a := newTestAuthenticator(t)
	nonce := challengeNonce(a)
	uri := "rtsp://127.0.0.1:8554" + camMain
	ha1 := md5hexTest(testUser + ":" + realm + ":" + testPassword)
	ha2 := md5hexTest("DESCRIBE:" + uri)
	plain := md5hexTest(ha1 + ":" + nonce + ":" + ha2)
	withQop := md5hexTest(ha1 + ":" + nonce + ":00000001:abc:auth:" + ha2)
	foreign := challengeNonce(newTestAuthenticator(t))

	header := func(extra string) string {
		return fmt.Sprintf(`Digest username="%s", realm="%s", uri="%s", %s`, testUser, realm, uri, extra)
	}
	for _, tc := range []struct {
		name   string
		header string
		ok     bool
	}{
		{"RFC 2069", header(fmt.Sprintf(`nonce="%s", response="%s"`, nonce, plain)), true},
		{"upper-case response, MD5 named", header(fmt.Sprintf(`nonce="%s", response="%s", algorithm=MD5`, nonce, strings.ToUpper(plain))), true},
		{"qop=auth", header(fmt.Sprintf(`nonce="%s", qop=auth, nc=00000001, cnonce="abc", response="%s"`, nonce, withQop)), true},
		{"qop=auth-int", header(fmt.Sprintf(`nonce="%s", qop=auth-int, nc=00000001, cnonce="abc", response="%s"`, nonce, withQop)), false},
		{"other algorithm", header(fmt.Sprintf(`nonce="%s", response="%s", algorithm=SHA-256`, nonce, plain)), false},
		{"nonce of another server", header(fmt.Sprintf(`nonce="%s", response="%s"`, foreign, md5hexTest(ha1+":"+foreign+":"+ha2))), false},
		{"forged nonce", header(fmt.Sprintf(`nonce="%s", response="%s"`, "00", md5hexTest(ha1+":00:"+ha2))), false},
		{"other method", header(fmt.Sprintf(`nonce="%s", response="%s"`, nonce, md5hexTest(ha1+":"+nonce+":"+md5hexTest("SETUP:"+uri)))), false},
		{"no response", header(fmt.Sprintf(`nonce="%s"`, nonce)), false},
	} {
		if got := a.authorized("DESCRIBE", tc.header); got != tc.ok {
			t.Errorf("%s: authorized = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

// The server reads Authorization with icholy/digest: quoted values with
// escapes and commas, spaces around separators.
func TestParseAuthParams(t *testing.T) {
	got, err := digest.ParseCredentials(`Digest username="ad\"min", realm="a, b", nonce=abc, qop=auth ,nc=00000001`)
	if err != nil {
		t.Fatal(err)
	}
	want := digest.Credentials{Username: `ad"min`, Realm: "a, b", Nonce: "abc", QOP: "auth", Nc: 1}
	if *got != want {
		t.Errorf("got %+v, want %+v", *got, want)
	}
}
