package rtsp

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/icholy/digest"
)

var errNoChallenge = errors.New("no usable WWW-Authenticate challenge")

// authState answers one server's challenge for every later request: the
// Digest response is recomputed per request (method, URI, nonce count), so
// keep-alives after PLAY are authorised as well.
type authState struct {
	user, password string
	basic          bool
	chal           *digest.Challenge
	count          int
}

// newAuthState picks Digest when offered (the password never crosses the
// wire), Basic only when that is all the server accepts.
func newAuthState(challenges []string, user, password string) (*authState, error) {
	var basic bool
	for _, c := range challenges {
		if digest.IsDigest(c) {
			chal, err := digest.ParseChallenge(c)
			if err != nil || !digest.CanDigest(chal) {
				continue
			}
			return &authState{user: user, password: password, chal: chal}, nil
		}
		if scheme, _, _ := strings.Cut(strings.TrimSpace(c), " "); strings.EqualFold(scheme, "Basic") {
			basic = true
		}
	}
	if basic {
		return &authState{user: user, password: password, basic: true}, nil
	}
	return nil, errNoChallenge
}

// nonce is the Digest nonce in use ("" for Basic).
func (a *authState) nonce() string {
	if a.chal == nil {
		return ""
	}
	return a.chal.Nonce
}

// stale reports whether the challenge says only the nonce expired.
func stale(challenges []string) bool {
	for _, c := range challenges {
		if digest.IsDigest(c) {
			if chal, err := digest.ParseChallenge(c); err == nil && chal.Stale {
				return true
			}
		}
	}
	return false
}

// header is the Authorization value for one request.
func (a *authState) header(method, uri string) (string, error) {
	if a.basic {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(a.user+":"+a.password)), nil
	}
	a.count++
	cred, err := digest.Digest(a.chal, digest.Options{Method: method, URI: uri, Count: a.count, Username: a.user, Password: a.password})
	if err != nil {
		// The error names the algorithm or qop, never the credentials.
		return "", fmt.Errorf("digest: %w", err)
	}
	return cred.String(), nil
}
