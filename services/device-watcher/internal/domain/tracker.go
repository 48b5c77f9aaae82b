package domain

import (
	"maps"
	"slices"
	"time"
)

// TrackerConfig tunes a Tracker.
type TrackerConfig struct {
	GatewayID string
	// OfflineHysteresis: a camera is declared offline only after being seen
	// offline continuously this long.
	OfflineHysteresis time.Duration
	// UnreachableAfter: the gateway is declared unreachable when it has
	// failed to answer for this long without answering in between.
	UnreachableAfter time.Duration
}

// Tracker holds the state of one gateway and its cameras. It is not safe
// for concurrent use: one goroutine owns it.
type Tracker struct {
	cfg     TrackerConfig
	devices map[string]*entry
	gw      Gateway // announced
	contact contact
	login   loginSeen
	// knownAt is the latest time the watcher's view of the gateway was
	// confirmed complete (a successful poll, or the live event stream).
	knownAt time.Time
}

type entry struct {
	announced *Device
	seen      seen
}

// seen is the latest observation of a camera.
type seen struct {
	present bool // observed at least once since the tracker started
	gone    bool // removed from the gateway
	online  bool
	name    string
	at      time.Time // last observation (ordering)
	// changedAt/changedGW: when the observed status last flipped (or the
	// camera appeared or went): the occurrence time of a change.
	changedAt time.Time
	changedGW time.Time
	source    Source
	// channels were fetched at detailsAt, in the current online streak.
	channels  []Channel
	detailsAt time.Time
	// offlineSince is when the current offline streak was first seen; zero
	// when online or when the streak must be observed anew.
	offlineSince   time.Time
	offlineSinceGW time.Time
}

type contact struct {
	lastOK       time.Time
	failingSince time.Time // zero: no failure since lastOK
	reason       string
}

// loginSeen is what the observations say about logging in.
type loginSeen struct {
	refused   *LoginRefusal // nil: logins go on
	refusedAt time.Time     // since when (the current refusal)
	okAt      time.Time     // the latest login the gateway accepted
	okCred    string
	// awaiting: no login is sent until the gateway is configured (see
	// AwaitsConfiguration), since awaitingAt. Not announced.
	awaiting   bool
	awaitingAt time.Time
}

// NewTracker returns a tracker starting from the stored state; a gateway never
// stored is passed as Gateway{Reachable: true}.
func NewTracker(cfg TrackerConfig, devices []Device, gw Gateway) *Tracker {
	t := &Tracker{cfg: cfg, devices: map[string]*entry{}, gw: gw}
	for _, d := range devices {
		if d.Status == Deleted {
			continue
		}
		d := d
		d.Channels = SortChannels(d.Channels)
		t.devices[d.Index] = &entry{announced: &d}
	}
	return t
}

func (t *Tracker) entry(index string) *entry {
	e := t.devices[index]
	if e == nil {
		e = &entry{}
		t.devices[index] = e
	}
	return e
}

// stale reports whether an observation made at `at` is older than what is
// already known of the camera (a poll that started before a stream event).
func (e *entry) stale(at time.Time) bool { return e.seen.present && at.Before(e.seen.at) }

// See records a sighting. A sighting older than the last observation of
// the same camera is ignored.
func (t *Tracker) See(s Sighting) {
	e := t.entry(s.Index)
	if e.stale(s.At) {
		return
	}
	p := &e.seen
	flipped := !p.present || p.gone || p.online != s.Online
	p.present, p.gone, p.at, p.name = true, false, s.At, s.Name
	if flipped {
		p.changedAt, p.changedGW, p.source = s.At, s.GatewayTime, s.Source
		p.channels, p.detailsAt = nil, time.Time{}
	}
	p.online = s.Online
	if s.Online {
		p.offlineSince, p.offlineSinceGW = time.Time{}, time.Time{}
		if s.Channels != nil {
			chs := SortChannels(s.Channels)
			if !flipped && len(p.channels) > 0 && !sameChannels(chs, p.channels) {
				// New channel details while online: a change of its own.
				p.changedAt, p.changedGW, p.source = s.At, s.GatewayTime, s.Source
			}
			p.channels, p.detailsAt = chs, s.At
		}
		return
	}
	if p.offlineSince.IsZero() {
		p.offlineSince, p.offlineSinceGW = s.At, s.GatewayTime
		p.source = s.Source
	}
}

// Gone records that the camera was removed from the gateway.
func (t *Tracker) Gone(index string, at, gatewayTime time.Time, src Source) {
	e := t.entry(index)
	if e.stale(at) {
		return
	}
	p := &e.seen
	if !p.gone || !p.present {
		p.changedAt, p.changedGW, p.source = at, gatewayTime, src
	}
	p.present, p.gone, p.at, p.online = true, true, at, false
	p.channels, p.offlineSince = nil, time.Time{}
}

// Confirmed records that the watcher's view of the gateway was complete and
// current at `at`: a successful poll, or the event stream alive.
func (t *Tracker) Confirmed(at time.Time) {
	if at.After(t.knownAt) {
		t.knownAt = at
	}
	t.Reached(at)
}

// Reached records that the gateway answered at `at`.
func (t *Tracker) Reached(at time.Time) {
	if at.After(t.contact.lastOK) {
		t.contact.lastOK = at
	}
	if !t.contact.failingSince.IsZero() && !at.Before(t.contact.failingSince) {
		t.contact.failingSince, t.contact.reason = time.Time{}, ""
	}
}

// Unreached records that the gateway could not be reached at `at`.
func (t *Tracker) Unreached(at time.Time, reason string) {
	if t.contact.failingSince.IsZero() && at.After(t.contact.lastOK) {
		t.contact.failingSince = at
	}
	if !t.contact.failingSince.IsZero() {
		t.contact.reason = reason
	}
}

// LoginRefused records that logins to the gateway are stopped at `at`
// (the gateway rejected the password, or the login budget refuses logins).
// An observation older than the last accepted login is ignored.
func (t *Tracker) LoginRefused(at time.Time, r LoginRefusal) {
	l := &t.login
	if at.Before(l.okAt) {
		return
	}
	if l.refused == nil {
		l.refusedAt = at
		// The cameras are not watched while logins are stopped (nor are
		// they known to be down): an offline streak must be observed anew,
		// in full, once logins work again.
		t.dropOfflineStreaks()
	}
	l.refused = &r
	if l.awaiting && !at.Before(l.awaitingAt) {
		l.awaiting = false
	}
}

// AwaitingConfiguration records that at `at` no login was sent because
// the gateway may still have its factory password and is not configured
// yet (AwaitsConfiguration). It is the normal start of a new gateway, not
// a fault: nothing is announced. As while logins are stopped, the cameras
// are neither confirmed nor doubted, and an offline streak must be
// observed anew once logins work. A later login, accepted or refused,
// ends it; an observation older than the last accepted login is ignored.
func (t *Tracker) AwaitingConfiguration(at time.Time) {
	l := &t.login
	if at.Before(l.okAt) {
		return
	}
	if !l.awaiting {
		l.awaiting, l.awaitingAt = true, at
		t.dropOfflineStreaks()
	}
}

// IsAwaitingConfiguration reports whether logins wait for the gateway's
// configuration (for the gauge).
func (t *Tracker) IsAwaitingConfiguration() bool { return t.login.awaiting }

func (t *Tracker) dropOfflineStreaks() {
	for _, e := range t.devices {
		e.seen.offlineSince, e.seen.offlineSinceGW = time.Time{}, time.Time{}
	}
}

// LoggedIn records that the gateway accepted credential cred at `at`.
func (t *Tracker) LoggedIn(at time.Time, cred string) {
	l := &t.login
	if !at.Before(l.okAt) {
		l.okAt, l.okCred = at, cred
	}
	if l.refused != nil && !at.Before(l.refusedAt) {
		l.refused = nil
	}
	if l.awaiting && !at.Before(l.awaitingAt) {
		l.awaiting = false
	}
}

// Changes returns the transitions that the observations so far call for,
// gateway changes first, then cameras in devIndex order. It changes nothing:
// Commit adopts a change once it is stored. There is at most one gateway
// change (each is computed from the announced gateway state); once it is
// committed, the next call returns the next one.
func (t *Tracker) Changes(now time.Time) []Change {
	var out []Change
	if c, ok := t.gatewayChange(now); ok {
		out = append(out, c)
	}
	for _, idx := range slices.Sorted(maps.Keys(t.devices)) {
		if c, ok := t.deviceChange(idx, t.devices[idx]); ok {
			out = append(out, c)
		}
	}
	return out
}

func (t *Tracker) gatewayChange(now time.Time) (Change, bool) {
	g, c := t.gw, t.contact
	switch {
	case g.Reachable && !c.failingSince.IsZero() && now.Sub(c.failingSince) >= t.cfg.UnreachableAfter:
		after := Gateway{Reachable: false, Since: c.failingSince, Reason: c.reason, Login: g.Login, LastChange: c.failingSince, Version: g.Version + 1}
		return Change{Kind: KindGatewayUnreachable, GatewayID: t.cfg.GatewayID, Gateway: after, PreviousGateway: g,
			OccurredAt: c.failingSince, DetectableAt: c.failingSince.Add(t.cfg.UnreachableAfter)}, true
	case !g.Reachable && c.failingSince.IsZero() && c.lastOK.After(g.Since):
		after := Gateway{Reachable: true, Login: g.Login, LastChange: c.lastOK, Version: g.Version + 1}
		return Change{Kind: KindGatewayReachable, GatewayID: t.cfg.GatewayID, Gateway: after, PreviousGateway: g,
			UnreachableFor: c.lastOK.Sub(g.Since), OccurredAt: c.lastOK, DetectableAt: c.lastOK}, true
	}
	return t.loginChange()
}

// loginChange is the transition of the login standing the observations
// call for: into credentials-rejected on a refusal, out of it on a login
// the gateway accepted since.
func (t *Tracker) loginChange() (Change, bool) {
	g, l := t.gw, t.login
	switch {
	case !g.Login.Rejected && l.refused != nil:
		after := g
		after.Login = Login{Rejected: true, Since: l.refusedAt, Refusal: *l.refused}
		after.LastChange, after.Version = l.refusedAt, g.Version+1
		return Change{Kind: KindGatewayCredentialsRejected, GatewayID: t.cfg.GatewayID, Gateway: after, PreviousGateway: g,
			OccurredAt: l.refusedAt, DetectableAt: l.refusedAt}, true
	case g.Login.Rejected && l.refused == nil && l.okAt.After(g.Login.Since):
		after := g
		after.Login = Login{Since: l.okAt, Credential: l.okCred}
		after.LastChange, after.Version = l.okAt, g.Version+1
		return Change{Kind: KindGatewayCredentialsAccepted, GatewayID: t.cfg.GatewayID, Gateway: after, PreviousGateway: g,
			OccurredAt: l.okAt, DetectableAt: l.okAt}, true
	}
	return Change{}, false
}

// occurred prefers the gateway's own time of a change.
func occurred(local, gateway time.Time) time.Time {
	if !gateway.IsZero() {
		return gateway
	}
	return local
}

func (t *Tracker) deviceChange(idx string, e *entry) (Change, bool) {
	a, s := e.announced, e.seen
	if !s.present {
		return Change{}, false
	}
	base := func(kind Kind, after Device, at, detectable time.Time) Change {
		if a != nil {
			prev := *a
			after.FirstSeen, after.Version = a.FirstSeen, a.Version+1
			// Announcements of one camera never go back in time.
			if at.Before(a.LastChange) {
				at = a.LastChange
			}
			return Change{Kind: kind, GatewayID: t.cfg.GatewayID, Device: withChange(after, at), Previous: &prev,
				OccurredAt: at, DetectableAt: detectable, Source: s.source}
		}
		after.FirstSeen, after.Version = at, 1
		return Change{Kind: kind, GatewayID: t.cfg.GatewayID, Device: withChange(after, at),
			OccurredAt: at, DetectableAt: detectable, Source: s.source}
	}
	switch {
	case s.gone:
		if a == nil {
			return Change{}, false
		}
		after := *a
		after.Status, after.OfflineSince = Deleted, time.Time{}
		at := occurred(s.changedAt, s.changedGW)
		return base(KindDeviceDeleted, after, at, at), true

	case s.online:
		if len(s.channels) == 0 {
			return Change{}, false // details not known yet: wait for them
		}
		if a != nil && a.Status == Online && sameChannels(a.Channels, s.channels) {
			return Change{}, false
		}
		name := s.name
		if name == "" && a != nil {
			name = a.Name
		}
		after := Device{Index: idx, Name: name, Status: Online, Channels: slices.Clone(s.channels)}
		at := occurred(s.changedAt, s.changedGW)
		return base(KindDeviceOnline, after, at, at), true

	default: // seen offline
		if a == nil || a.Status != Online || s.offlineSince.IsZero() {
			return Change{}, false
		}
		if t.knownAt.Sub(s.offlineSince) < t.cfg.OfflineHysteresis {
			return Change{}, false
		}
		since := occurred(s.offlineSince, s.offlineSinceGW)
		after := *a
		after.Status, after.OfflineSince = Offline, since
		return base(KindDeviceOffline, after, since, since.Add(t.cfg.OfflineHysteresis)), true
	}
}

func withChange(d Device, at time.Time) Device {
	d.LastChange = at
	return d
}

// Commit adopts a stored change as the known state.
func (t *Tracker) Commit(c Change) {
	switch c.Kind {
	case KindGatewayCredentialsRejected, KindGatewayCredentialsAccepted:
		t.gw = c.Gateway
		return
	case KindGatewayUnreachable, KindGatewayReachable:
		t.gw = c.Gateway
		if !c.Gateway.Reachable {
			// Cameras are not watched while the gateway is away: an offline
			// streak must be observed anew, in full, once it answers.
			for _, e := range t.devices {
				e.seen.offlineSince, e.seen.offlineSinceGW = time.Time{}, time.Time{}
			}
		}
		return
	}
	e := t.entry(c.Device.Index)
	if c.Kind == KindDeviceDeleted {
		e.announced = nil
		return
	}
	d := c.Device
	d.Channels = slices.Clone(d.Channels)
	e.announced = &d
}

// Reset replaces what is known of a camera with the stored state (nil: not
// stored), after a conditional write found the store ahead of the tracker.
func (t *Tracker) Reset(index string, d *Device) {
	e := t.entry(index)
	if d == nil || d.Status == Deleted {
		e.announced = nil
		return
	}
	cp := *d
	cp.Channels = SortChannels(d.Channels)
	e.announced = &cp
}

// ResetGateway replaces the gateway's state with the stored one.
func (t *Tracker) ResetGateway(g Gateway) { t.gw = g }

// Gateway returns the gateway's announced state.
func (t *Tracker) Gateway() Gateway { return t.gw }

// Devices returns the announced cameras in devIndex order.
func (t *Tracker) Devices() []Device {
	var out []Device
	for _, idx := range slices.Sorted(maps.Keys(t.devices)) {
		if a := t.devices[idx].announced; a != nil {
			d := *a
			d.Channels = slices.Clone(a.Channels)
			out = append(out, d)
		}
	}
	return out
}

// Known is what a poll needs to know of a camera.
type Known struct {
	Announced Status // "" when not announced
	Channels  int    // announced channels
	// DetailsFresh: channels and media URLs were fetched during the current
	// online streak, within the refresh interval.
	DetailsFresh bool
}

// Known returns, for every camera announced or seen, what a poll needs to
// decide which details to fetch and which absences to confirm.
func (t *Tracker) Known(now time.Time, refresh time.Duration) map[string]Known {
	out := make(map[string]Known, len(t.devices))
	for idx, e := range t.devices {
		var k Known
		if a := e.announced; a != nil {
			k.Announced, k.Channels = a.Status, len(a.Channels)
		}
		s := e.seen
		k.DetailsFresh = s.present && s.online && len(s.channels) > 0 && !s.detailsAt.IsZero() &&
			(refresh <= 0 || now.Sub(s.detailsAt) < refresh)
		if k.Announced == "" && !(s.present && !s.gone) {
			continue
		}
		out[idx] = k
	}
	return out
}

// Counts returns the number of announced channels in each state.
func (t *Tracker) Counts() Counts {
	var c Counts
	for _, e := range t.devices {
		a := e.announced
		if a == nil {
			continue
		}
		n := len(a.Channels)
		switch {
		case a.Status == Online && e.seen.present && !e.seen.online && !e.seen.gone:
			c.Suspect += n
		case a.Status == Online:
			c.Online += n
		case a.Status == Offline:
			c.Offline += n
		}
	}
	return c
}
