package rtsp

import (
	"io"
	"sync"
	"testing"
	"time"
)

// loginPolicy is a Config.Login that records what it is asked and answers
// with the decision the test sets; by default it allows valid credentials.
type loginPolicy struct {
	mu       sync.Mutex
	attempts []LoginAttempt
	decide   func(LoginAttempt) LoginDecision
}

func (p *loginPolicy) login(at LoginAttempt) LoginDecision {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attempts = append(p.attempts, at)
	if p.decide != nil {
		return p.decide(at)
	}
	return LoginDecision{Allow: at.Valid}
}

func (p *loginPolicy) set(decide func(LoginAttempt) LoginDecision) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.decide = decide
}

func (p *loginPolicy) last(t *testing.T) LoginAttempt {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.attempts) == 0 {
		t.Fatal("the login policy was not asked")
	}
	return p.attempts[len(p.attempts)-1]
}

func TestLoginPolicyDecides(t *testing.T) {
	policy := &loginPolicy{}
	env := newTestEnvWith(t, func(c *Config) { c.Login = policy.login })
	url := env.url(camMain)
	c := dialRTSP(t, env.addr)

	// The challenge round trip: no credentials, both schemes offered.
	resp := c.do("DESCRIBE", url)
	if resp.status != 401 || len(resp.header["www-authenticate"]) != 2 {
		t.Fatalf("no credentials: %d %v", resp.status, resp.header)
	}
	if at := policy.last(t); at.Presented || at.Valid || at.Method != "DESCRIBE" || at.Path != camMain || at.RemoteIP != "127.0.0.1" {
		t.Fatalf("attempt without credentials: %+v", at)
	}
	chal := digestChallenge(t, resp)

	// A wrong password: the policy sees who tried, never the password.
	c.authorize = digestAuthorizer(testUser, "wrong", chal)
	if resp = c.do("DESCRIBE", url); resp.status != 401 {
		t.Fatalf("wrong password: %d", resp.status)
	}
	if at := policy.last(t); !at.Presented || at.Valid || at.Scheme != "digest" || at.User != testUser {
		t.Fatalf("wrong password attempt: %+v", at)
	}

	// Right credentials refused by the policy (a locked IP), offering Basic only.
	policy.set(func(LoginAttempt) LoginDecision { return LoginDecision{BasicOnly: true} })
	c.authorize = digestAuthorizer(testUser, testPassword, chal)
	resp = c.do("DESCRIBE", url)
	if ch := resp.header["www-authenticate"]; resp.status != 401 || len(ch) != 1 || ch[0] != `Basic realm="`+realm+`"` {
		t.Fatalf("refused by the policy: %d %v", resp.status, resp.header)
	}
	if at := policy.last(t); !at.Valid {
		t.Fatalf("right password not seen as valid: %+v", at)
	}

	// Basic credentials are read too.
	policy.set(nil)
	c.authorize = basicAuthorizer(testUser, testPassword)
	if resp = c.do("DESCRIBE", url); resp.status != 200 {
		t.Fatalf("Basic: %d", resp.status)
	}
	if at := policy.last(t); !at.Valid || at.Scheme != "basic" || at.User != testUser {
		t.Fatalf("Basic attempt: %+v", at)
	}
}

func TestLoginPolicyDelaysOrDropsTheAnswer(t *testing.T) {
	policy := &loginPolicy{}
	env := newTestEnvWith(t, func(c *Config) { c.Login = policy.login })
	url := env.url(camMain)

	// Delay: the 401 comes, but not before the delay.
	const delay = 200 * time.Millisecond
	policy.set(func(LoginAttempt) LoginDecision { return LoginDecision{Delay: delay} })
	c := dialRTSP(t, env.addr)
	c.authorize = basicAuthorizer(testUser, "wrong")
	start := time.Now()
	if resp := c.do("DESCRIBE", url); resp.status != 401 {
		t.Fatalf("delayed: %d", resp.status)
	}
	if took := time.Since(start); took < delay {
		t.Fatalf("the 401 came after %v, want at least %v", took, delay)
	}
	// The connection stays usable.
	if resp := c.do("OPTIONS", url); resp.status != 200 {
		t.Fatalf("OPTIONS after a late 401: %d", resp.status)
	}

	// Drop: the request is read, then the connection is closed without a byte.
	policy.set(func(LoginAttempt) LoginDecision { return LoginDecision{Drop: true} })
	c = dialRTSP(t, env.addr)
	c.authorize = basicAuthorizer(testUser, "wrong")
	c.send("DESCRIBE", url)
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c.br)
	if len(b) != 0 || err != nil {
		t.Fatalf("dropped: read %q, %v; want EOF without data", b, err)
	}
}
