package gatewaysim

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"
)

type authOutcome int

const (
	authOK        authOutcome = iota
	authChallenge             // no credentials: plain challenge, not a failed login
	authStale                 // right password, expired/unknown nonce: stale=TRUE, not a failed login
	authFailed                // wrong credentials: counted
	authLocked                // source IP locked: credentials not even checked
)

// authVerdict is what the authenticator decided, with the lock fields for the
// 401 body.
type authVerdict struct {
	outcome     authOutcome
	locked      bool // the IP is locked after this request
	retryTimes  int
	resLockTime int // seconds
}

// authenticator checks Digest (and optionally Basic) credentials and keeps the
// per-source-IP lockout. Nonces are stateless (timestamp + HMAC) so any nc
// and nonce reuse within NonceTTL is accepted; a reboot changes the key, which
// makes every earlier nonce stale.
type authenticator struct {
	realm      string
	threshold  int
	lockFor    time.Duration
	nonceTTL   time.Duration
	allowBasic bool

	mu  sync.Mutex
	key []byte
	ips map[string]*ipAuth
}

type ipAuth struct {
	failures    int // consecutive failures since the last success or lock
	lockedUntil time.Time
}

func newAuthenticator(cfg Config) *authenticator {
	a := &authenticator{
		realm:      cfg.Realm,
		threshold:  cfg.LockoutThreshold,
		lockFor:    cfg.LockoutDuration,
		nonceTTL:   cfg.NonceTTL,
		allowBasic: cfg.AllowBasic,
	}
	a.reset()
	return a
}

// reset forgets locks and nonces, as a reboot does.
func (a *authenticator) reset() {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.key = key
	a.ips = map[string]*ipAuth{}
}

func (a *authenticator) unlock(ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ip == "" {
		a.ips = map[string]*ipAuth{}
		return
	}
	delete(a.ips, ip)
}

func (a *authenticator) nonce(now time.Time) string {
	a.mu.Lock()
	key := a.key
	a.mu.Unlock()
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(now.UnixNano()))
	m := hmac.New(sha256.New, key)
	m.Write(ts[:])
	return hex.EncodeToString(ts[:]) + hex.EncodeToString(m.Sum(nil)[:12])
}

func (a *authenticator) nonceFresh(nonce string, now time.Time) bool {
	raw, err := hex.DecodeString(nonce)
	if err != nil || len(raw) != 20 {
		return false
	}
	a.mu.Lock()
	key := a.key
	a.mu.Unlock()
	m := hmac.New(sha256.New, key)
	m.Write(raw[:8])
	if !hmac.Equal(m.Sum(nil)[:12], raw[8:]) {
		return false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(raw[:8])))
	return now.Sub(issued) < a.nonceTTL && !issued.After(now.Add(time.Second))
}

// challenge is the WWW-Authenticate value in Hikvision's format.
func (a *authenticator) challenge(now time.Time, stale bool) string {
	s := "FALSE"
	if stale {
		s = "TRUE"
	}
	return fmt.Sprintf(`Digest qop="auth", realm=%q, nonce=%q, stale="%s"`, a.realm, a.nonce(now), s)
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// credentials checks r's Authorization header against the current
// credentials. It returns authOK, authChallenge (none given), authStale or
// authFailed, and the user name the credentials carry. basicOnly accepts
// Basic alone.
func (a *authenticator) credentials(r *http.Request, user, password string, basicOnly bool, now time.Time) (authOutcome, string) {
	header := r.Header.Get("Authorization")
	switch {
	case header == "":
		return authChallenge, ""
	case len(header) > 6 && strings.EqualFold(header[:6], "Basic "):
		u, p, okb := r.BasicAuth()
		if !okb {
			return authFailed, ""
		}
		if (a.allowBasic || basicOnly) && subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1 && subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1 {
			return authOK, u
		}
		return authFailed, u
	case digest.IsDigest(header):
		cred, err := digest.ParseCredentials(header)
		if err != nil {
			return authFailed, ""
		}
		if basicOnly {
			return authFailed, cred.Username
		}
		return a.checkDigest(r, cred, user, password, now), cred.Username
	default:
		return authFailed, ""
	}
}

// settle applies the source IP's lockout to the outcome of a credentials
// check: a locked IP is refused whatever it sent; a failure counts toward
// the lock, a success resets the count.
func (a *authenticator) settle(ip string, outcome authOutcome, now time.Time) authVerdict {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.ips[ip]
	if st != nil && now.Before(st.lockedUntil) {
		return authVerdict{outcome: authLocked, locked: true, resLockTime: ceilSeconds(st.lockedUntil.Sub(now))}
	}
	if st == nil {
		st = &ipAuth{}
		a.ips[ip] = st
	}
	switch outcome {
	case authOK:
		st.failures = 0
		return authVerdict{outcome: authOK}
	case authFailed:
		st.failures++
		if st.failures >= a.threshold {
			st.failures = 0
			st.lockedUntil = now.Add(a.lockFor)
			return authVerdict{outcome: authFailed, locked: true, resLockTime: ceilSeconds(a.lockFor)}
		}
		return authVerdict{outcome: authFailed, retryTimes: a.threshold - st.failures}
	default:
		return authVerdict{outcome: outcome, retryTimes: a.threshold - st.failures}
	}
}

func (a *authenticator) checkDigest(r *http.Request, cred *digest.Credentials, user, password string, now time.Time) authOutcome {
	if cred.Username != user || cred.Realm != a.realm {
		return authFailed
	}
	if alg := strings.ToUpper(cred.Algorithm); alg != "" && alg != "MD5" {
		return authFailed
	}
	// The digest covers the URI the client claims; it must be this request's.
	if cred.URI != r.RequestURI && cred.URI != r.URL.Path {
		return authFailed
	}
	chal := &digest.Challenge{Realm: a.realm, Nonce: cred.Nonce, Opaque: cred.Opaque}
	if cred.QOP != "" {
		chal.QOP = []string{cred.QOP}
	}
	want, err := digest.Digest(chal, digest.Options{
		Method: r.Method, URI: cred.URI, Count: cred.Nc, Cnonce: cred.Cnonce,
		Username: user, Password: password,
	})
	if err != nil || subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(cred.Response))) != 1 {
		return authFailed
	}
	if !a.nonceFresh(cred.Nonce, now) {
		return authStale
	}
	return authOK
}

func ceilSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// writeUnauthorized answers 401 with a fresh challenge and a ResponseStatus
// body carrying lockStatus, retryTimes and resLockTime; with the login
// faults NoLockFields without a body, with BasicOnly challenging Basic alone.
func (a *authenticator) writeUnauthorized(w http.ResponseWriter, r *http.Request, v authVerdict, lf LoginFaults, now time.Time) {
	basic := fmt.Sprintf("Basic realm=%q", a.realm)
	if lf.BasicOnly {
		w.Header().Set("WWW-Authenticate", basic)
	} else {
		w.Header().Set("WWW-Authenticate", a.challenge(now, v.outcome == authStale))
		if a.allowBasic {
			w.Header().Add("WWW-Authenticate", basic)
		}
	}
	if lf.NoLockFields {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	sub := "badAuthorization"
	if v.outcome == authLocked {
		sub = "deviceIsLocked"
	}
	rs := newStatus(r, codeInvalidOperation, sub, "")
	rs.LockStatus = "unlock"
	if v.locked {
		rs.LockStatus = "lock"
	}
	retry, lockLeft := v.retryTimes, v.resLockTime
	rs.RetryTimes, rs.ResLockTime = &retry, &lockLeft
	writeStatus(w, r, http.StatusUnauthorized, rs)
}
