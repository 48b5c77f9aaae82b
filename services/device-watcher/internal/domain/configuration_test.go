package domain

import (
	"testing"
	"time"
)

// A login waits for the configuration only when all three hold: the
// gateway may be factory-fresh (a bootstrap password exists), nobody said
// it was configured, and the credential is not the one the gateway last
// accepted.
func TestAwaitsConfiguration(t *testing.T) {
	const cur, old = "/mediagw/gateways/gw-1/Password@2", "/mediagw/gateways/gw-1/Password@1"
	for _, c := range []struct {
		name string
		f    LoginFacts
		want bool
	}{
		{"fresh gateway, nothing accepted", LoginFacts{Credential: cur, Bootstrap: true}, true},
		{"another credential accepted (the bootstrap one)", LoginFacts{Credential: cur, Accepted: "/mediagw/gateways/gw-1/BootstrapPassword@1", Bootstrap: true}, true},
		{"an older version accepted", LoginFacts{Credential: cur, Accepted: old, Bootstrap: true}, true},
		{"this credential accepted", LoginFacts{Credential: cur, Accepted: cur, Bootstrap: true}, false},
		{"configured", LoginFacts{Credential: cur, Configured: true, Bootstrap: true}, false},
		{"no bootstrap password", LoginFacts{Credential: cur}, false},
		{"no bootstrap password, another accepted", LoginFacts{Credential: cur, Accepted: old}, false},
		{"empty credential never matches an empty ledger", LoginFacts{Bootstrap: true}, true},
	} {
		if got := AwaitsConfiguration(c.f); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// Awaiting the configuration announces nothing, however long it lasts; an
// offline streak seen before it does not survive it; the first accepted
// login ends it, silently too, and a camera still offline then needs a
// full hysteresis.
func TestAwaitingConfigurationIsSilentAndEndsWithALogin(t *testing.T) {
	tr := newTracker()
	commitAll(tr, poll(tr, 0, Sighting{Index: "A", Online: true, Channels: chans(1)}))
	poll(tr, time.Second, Sighting{Index: "A", Online: false}) // an offline streak starts

	for i := 2; i < 600; i += 10 {
		tr.AwaitingConfiguration(at(time.Duration(i) * time.Second))
		if cs := tr.Changes(at(time.Duration(i) * time.Second)); len(cs) != 0 {
			t.Fatalf("at %ds: %v", i, kinds(cs))
		}
	}
	if !tr.IsAwaitingConfiguration() || tr.Gateway().Login.Rejected || !tr.Gateway().Reachable {
		t.Fatalf("awaiting %v, gateway %+v", tr.IsAwaitingConfiguration(), tr.Gateway())
	}

	tr.LoggedIn(at(10*time.Minute), "/mediagw/gateways/gw-1/Password@1")
	if tr.IsAwaitingConfiguration() {
		t.Fatal("still awaiting after an accepted login")
	}
	wantKinds(t, poll(tr, 10*time.Minute, Sighting{Index: "A", Online: false}))
	wantKinds(t, poll(tr, 10*time.Minute+hyst-time.Second, Sighting{Index: "A", Online: false}))
	wantKinds(t, poll(tr, 10*time.Minute+hyst, Sighting{Index: "A", Online: false}), KindDeviceOffline)
}

// The standing's observations are ordered like the other login ones: an
// awaiting seen before an accepted login is out of date, a login older
// than the awaiting does not end it, and a refusal after it replaces it.
func TestAwaitingConfigurationObservationsAreOrdered(t *testing.T) {
	tr := newTracker()
	tr.LoggedIn(at(5*time.Second), "/p@1")
	tr.AwaitingConfiguration(at(4 * time.Second)) // a poll that finished earlier
	if tr.IsAwaitingConfiguration() {
		t.Fatal("an out-of-date observation started the standing")
	}
	tr.AwaitingConfiguration(at(6 * time.Second))
	tr.LoggedIn(at(5*time.Second), "/p@1")
	if !tr.IsAwaitingConfiguration() {
		t.Fatal("an older login ended the standing")
	}
	tr.LoginRefused(at(7*time.Second), refusal)
	if tr.IsAwaitingConfiguration() {
		t.Fatal("still awaiting after a refusal")
	}
	wantKinds(t, tr.Changes(at(7*time.Second)), KindGatewayCredentialsRejected)
}
