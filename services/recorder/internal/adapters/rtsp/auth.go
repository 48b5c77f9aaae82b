package rtsp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/icholy/digest"
)

var (
	errNoChallenge = errors.New("no usable WWW-Authenticate challenge")
	// errBasicOnly: the gateway offers Basic and no usable Digest; Basic
	// would put the password on the wire in clear text, so it is refused.
	errBasicOnly = errors.New("only Basic authentication offered")
)

// authState answers one server's challenge for every request of a
// connection: the Digest response is recomputed per request (method, URI,
// nonce count), so keep-alives after PLAY are authorised as well.
type authState struct {
	user, password string
	chal           *digest.Challenge
	count          int
}

// digestChallenge picks the Digest challenge of a 401; without a usable
// one it says whether Basic alone was offered (errBasicOnly).
func digestChallenge(challenges []string) (*digest.Challenge, error) {
	var basic bool
	for _, c := range challenges {
		if digest.IsDigest(c) {
			chal, err := digest.ParseChallenge(c)
			if err != nil || !digest.CanDigest(chal) {
				continue
			}
			return chal, nil
		}
		if scheme, _, _ := strings.Cut(strings.TrimSpace(c), " "); strings.EqualFold(scheme, "Basic") {
			basic = true
		}
	}
	if basic {
		return nil, errBasicOnly
	}
	return nil, errNoChallenge
}

// renew takes the gateway's new nonce (after a stale one).
func (a *authState) renew(chal *digest.Challenge) {
	a.chal, a.count = chal, 0
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
	a.count++
	cred, err := digest.Digest(a.chal, digest.Options{Method: method, URI: uri, Count: a.count, Username: a.user, Password: a.password})
	if err != nil {
		// The error names the algorithm or qop, never the credentials.
		return "", fmt.Errorf("digest: %w", err)
	}
	return cred.String(), nil
}
