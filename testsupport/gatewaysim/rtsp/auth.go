package rtsp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/icholy/digest"
)

// realm is what Hikvision devices announce for RTSP; clients show it to users.
const realm = "IP Camera(gatewaysim)"

// authenticator checks RTSP credentials the way a Hikvision device does:
// Digest (MD5, with or without qop=auth) or Basic. Nonces are stateless: a
// timestamp signed with a per-server key, so the server keeps no per-client
// state and a nonce from another server instance is refused. The Digest
// response is computed with github.com/icholy/digest, the library the
// recorder's relay answers challenges with.
type authenticator struct {
	key         [32]byte
	credentials func() (user, password string)
}

func newAuthenticator(credentials func() (string, string)) (*authenticator, error) {
	a := &authenticator{credentials: credentials}
	if _, err := rand.Read(a.key[:]); err != nil {
		return nil, fmt.Errorf("nonce key: %w", err)
	}
	return a, nil
}

// challenges returns the WWW-Authenticate header values of a 401, strongest
// first; clients such as ffmpeg pick Digest when offered. basicOnly offers
// Basic alone, as some firmware does.
func (a *authenticator) challenges(basicOnly bool) []string {
	basic := fmt.Sprintf(`Basic realm="%s"`, realm)
	if basicOnly {
		return []string{basic}
	}
	return []string{
		fmt.Sprintf(`Digest realm="%s", nonce="%s", stale="FALSE"`, realm, a.nonce(time.Now())),
		basic,
	}
}

func (a *authenticator) nonce(now time.Time) string {
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(now.UnixNano()))
	return hex.EncodeToString(ts[:]) + hex.EncodeToString(a.sign(ts[:]))
}

func (a *authenticator) sign(b []byte) []byte {
	m := hmac.New(sha256.New, a.key[:])
	m.Write(b)
	return m.Sum(nil)[:16]
}

func (a *authenticator) validNonce(nonce string) bool {
	raw, err := hex.DecodeString(nonce)
	if err != nil || len(raw) != 8+16 {
		return false
	}
	return hmac.Equal(raw[8:], a.sign(raw[:8]))
}

// authorized reports whether the Authorization header value carries the
// current credentials for a request with the given method.
func (a *authenticator) authorized(method, authorization string) bool {
	return a.attempt(method, authorization).Valid
}

// attempt checks the Authorization header value of a request with the given
// method and says what it carried (RemoteIP, Method and Path are the
// caller's to fill).
func (a *authenticator) attempt(method, authorization string) LoginAttempt {
	authorization = strings.TrimSpace(authorization)
	if authorization == "" {
		return LoginAttempt{}
	}
	scheme, params, _ := strings.Cut(authorization, " ")
	at := LoginAttempt{Presented: true, Scheme: strings.ToLower(scheme)}
	user, password := a.credentials()
	switch at.Scheme {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(params))
		if err != nil {
			return at
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if ok {
			at.User = u
			at.Valid = equal(u, user) && equal(p, password)
		}
	case "digest":
		if c, err := digest.ParseCredentials(authorization); err == nil {
			at.User = c.Username
		}
		at.Valid = a.digestOK(method, authorization, user, password)
	}
	return at
}

func (a *authenticator) digestOK(method, authorization, user, password string) bool {
	c, err := digest.ParseCredentials(strings.TrimSpace(authorization))
	if err != nil {
		return false
	}
	if c.Algorithm != "" && !strings.EqualFold(c.Algorithm, "MD5") {
		return false
	}
	if !equal(c.Username, user) || c.Realm != realm || !a.validNonce(c.Nonce) || c.URI == "" || c.Response == "" {
		return false
	}
	// The challenge this answers: ours, with the qop the client chose
	// (none, RFC 2069, or auth).
	chal := &digest.Challenge{Realm: realm, Nonce: c.Nonce, Algorithm: c.Algorithm}
	switch c.QOP {
	case "":
	case "auth":
		if c.Cnonce == "" || c.Nc == 0 {
			return false
		}
		chal.QOP = []string{"auth"}
	default:
		return false
	}
	// The digest covers the uri parameter as the client sent it; clients
	// differ in whether it matches the request line exactly (credentials,
	// trailing slash), so it is not compared with the request-URI.
	want, err := digest.Digest(chal, digest.Options{
		Method: method, URI: c.URI, Username: user, Password: password, Cnonce: c.Cnonce, Count: c.Nc,
	})
	if err != nil {
		return false
	}
	return equal(strings.ToLower(c.Response), want.Response)
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
