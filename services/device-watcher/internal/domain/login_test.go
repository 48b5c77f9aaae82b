package domain

import (
	"testing"
	"time"
)

var refusal = LoginRefusal{Reason: "credentials-rejected", Credential: "/mediagw/gateways/gw-1/Password@2",
	FailedLogins: 1, Detail: "the gateway rejected the password of /mediagw/gateways/gw-1/Password@2"}

// Logins stop: one rejection is announced however often the refusal is
// seen; the cameras are neither confirmed nor doubted meanwhile, so none
// goes offline; an accepted login ends the standing, once.
func TestCredentialsRejectedThenAccepted(t *testing.T) {
	tr := newTracker()
	commitAll(tr, poll(tr, 0, Sighting{Index: "A", Online: true, Channels: chans(1)}))
	// Seen offline once, just before logins stop.
	poll(tr, time.Second, Sighting{Index: "A", Online: false})

	tr.LoginRefused(at(2*time.Second), refusal)
	cs := tr.Changes(at(2 * time.Second))
	wantKinds(t, cs, KindGatewayCredentialsRejected)
	c := cs[0]
	if l := c.Gateway.Login; !l.Rejected || !l.Since.Equal(at(2*time.Second)) || l.Refusal != refusal ||
		!c.Gateway.Reachable || c.Gateway.Version != 1 || c.PreviousGateway.Login.Rejected || !c.OccurredAt.Equal(at(2*time.Second)) {
		t.Fatalf("change %+v", c)
	}
	tr.Commit(c)
	// Refused again and again, for minutes, for another reason too: the
	// standing holds, nothing more is announced, no camera goes offline.
	for i := 3; i < 600; i += 10 {
		r := refusal
		if i > 300 {
			r.Reason = "budget-spent"
		}
		tr.LoginRefused(at(time.Duration(i)*time.Second), r)
		if cs := tr.Changes(at(time.Duration(i) * time.Second)); len(cs) != 0 {
			t.Fatalf("at %ds: %v", i, kinds(cs))
		}
	}
	if !tr.Gateway().Login.Rejected || tr.Counts().Suspect != 1 {
		t.Fatalf("gateway %+v, counts %+v", tr.Gateway(), tr.Counts())
	}

	// A new version is accepted: the standing ends; the camera still
	// offline is a new streak, a full hysteresis from now.
	tr.LoggedIn(at(10*time.Minute), "/mediagw/gateways/gw-1/Password@3")
	cs = poll(tr, 10*time.Minute, Sighting{Index: "A", Online: false})
	wantKinds(t, cs, KindGatewayCredentialsAccepted)
	c = cs[0]
	if l := c.Gateway.Login; l.Rejected || l.Credential != "/mediagw/gateways/gw-1/Password@3" || !l.Since.Equal(at(10*time.Minute)) || c.Gateway.Version != 2 {
		t.Fatalf("change %+v", c)
	}
	tr.Commit(c)
	wantKinds(t, poll(tr, 10*time.Minute+hyst-time.Second, Sighting{Index: "A", Online: false}))
	wantKinds(t, poll(tr, 10*time.Minute+hyst, Sighting{Index: "A", Online: false}), KindDeviceOffline)
}

// A refusal seen before a login the gateway accepted is out of date; one
// after it holds. Neither announces anything while logins work.
func TestLoginObservationsAreOrdered(t *testing.T) {
	tr := newTracker()
	tr.LoggedIn(at(5*time.Second), "/p@1")
	tr.LoginRefused(at(4*time.Second), refusal) // a poll that finished earlier
	wantKinds(t, tr.Changes(at(5*time.Second)))
	tr.LoginRefused(at(6*time.Second), refusal)
	tr.LoggedIn(at(5*time.Second), "/p@1") // an older success does not end it
	wantKinds(t, tr.Changes(at(6*time.Second)), KindGatewayCredentialsRejected)
}

// A watcher that starts with the standing stored announces nothing while
// logins are still refused, and the acceptance at the first login.
func TestStoredRejectionAnnouncesOnlyTheAcceptance(t *testing.T) {
	stored := Gateway{Reachable: true, Version: 4, Login: Login{Rejected: true, Since: t0, Refusal: refusal}}
	tr := NewTracker(TrackerConfig{GatewayID: "gw-1", OfflineHysteresis: hyst, UnreachableAfter: 10 * time.Second}, nil, stored)
	tr.LoginRefused(at(time.Minute), refusal)
	wantKinds(t, tr.Changes(at(time.Minute)))
	tr.LoggedIn(at(2*time.Minute), "/mediagw/gateways/gw-1/Password@3")
	cs := tr.Changes(at(2 * time.Minute))
	wantKinds(t, cs, KindGatewayCredentialsAccepted)
	if cs[0].Gateway.Version != 5 || !cs[0].Gateway.Reachable {
		t.Fatalf("%+v", cs[0])
	}
}

// Reachability and the login standing are one state: an unreachable
// gateway whose logins also stopped announces one change at a time, each
// keeping the other's part.
func TestUnreachableAndRejectedOneChangeAtATime(t *testing.T) {
	tr := newTracker()
	tr.Unreached(at(0), "connection closed")
	tr.LoginRefused(at(time.Second), refusal)
	cs := tr.Changes(at(20 * time.Second))
	wantKinds(t, cs, KindGatewayUnreachable)
	tr.Commit(cs[0])
	cs = tr.Changes(at(20 * time.Second))
	wantKinds(t, cs, KindGatewayCredentialsRejected)
	if cs[0].Gateway.Reachable || cs[0].Gateway.Reason != "connection closed" || cs[0].Gateway.Version != 2 {
		t.Fatalf("%+v", cs[0])
	}
	tr.Commit(cs[0])
	// It answers and accepts a login: reachable first, keeping the
	// standing, then accepted.
	tr.Reached(at(time.Minute))
	tr.LoggedIn(at(time.Minute), "/p@3")
	cs = tr.Changes(at(time.Minute))
	wantKinds(t, cs, KindGatewayReachable)
	if !cs[0].Gateway.Login.Rejected {
		t.Fatalf("reachable dropped the login standing: %+v", cs[0])
	}
	tr.Commit(cs[0])
	wantKinds(t, tr.Changes(at(time.Minute)), KindGatewayCredentialsAccepted)
}

func TestSplitCredential(t *testing.T) {
	if p, v := SplitCredential("/mediagw/gateways/gw@1/Password@12"); p != "/mediagw/gateways/gw@1/Password" || v != "12" {
		t.Fatalf("%q %q", p, v)
	}
}
