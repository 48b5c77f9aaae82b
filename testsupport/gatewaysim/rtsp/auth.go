package rtsp

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// realm is what Hikvision devices announce for RTSP; clients show it to users.
const realm = "IP Camera(gatewaysim)"

// authenticator checks RTSP credentials the way a Hikvision device does:
// Digest (MD5, with or without qop=auth) or Basic. Nonces are stateless: a
// timestamp signed with a per-server key, so the server keeps no per-client
// state and a nonce from another server instance is refused.
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
// first; clients such as ffmpeg pick Digest when offered.
func (a *authenticator) challenges() []string {
	return []string{
		fmt.Sprintf(`Digest realm="%s", nonce="%s", stale="FALSE"`, realm, a.nonce(time.Now())),
		fmt.Sprintf(`Basic realm="%s"`, realm),
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
	scheme, params, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	user, password := a.credentials()
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(params))
		if err != nil {
			return false
		}
		u, p, ok := strings.Cut(string(raw), ":")
		return ok && equal(u, user) && equal(p, password)
	case "digest":
		return a.digestOK(method, parseAuthParams(params), user, password)
	default:
		return false
	}
}

func (a *authenticator) digestOK(method string, p map[string]string, user, password string) bool {
	if alg := p["algorithm"]; alg != "" && !strings.EqualFold(alg, "MD5") {
		return false
	}
	if !equal(p["username"], user) || p["realm"] != realm || !a.validNonce(p["nonce"]) || p["uri"] == "" {
		return false
	}
	ha1 := md5hex(user + ":" + realm + ":" + password)
	// The digest covers the uri parameter as the client sent it; clients
	// differ in whether it matches the request line exactly (credentials,
	// trailing slash), so it is not compared with the request-URI.
	ha2 := md5hex(method + ":" + p["uri"])
	var want string
	switch p["qop"] {
	case "":
		want = md5hex(ha1 + ":" + p["nonce"] + ":" + ha2)
	case "auth":
		want = md5hex(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	default:
		return false
	}
	return equal(strings.ToLower(p["response"]), want)
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// parseAuthParams parses `k=v, k="quoted, value"` lists. Malformed input
// yields whatever pairs could be read; the caller's checks then fail.
func parseAuthParams(s string) map[string]string {
	params := make(map[string]string)
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return params
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return params
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return params // unterminated quote
			}
			val, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		params[key] = val
	}
}
