// Package domain is the device-watcher's domain: what is known of each
// camera attached to one gateway and of the gateway itself (reachable or
// not, its credentials rejected or not), which changes to announce when
// the gateway shows something new (the Tracker), the lease that makes one
// instance the watcher of a gateway, and the errors the stores report.
//
// It does no I/O and reads no clock: times are passed in. Observations
// (from polls of the device list and from the gateway's event stream
// alike) go in; Changes come out; a Change becomes the known state only
// when the caller commits it, after storing it. Until then it is proposed
// again on every call to Changes, so a change that failed to store is
// retried by the next observation or tick.
package domain

import (
	"slices"
	"strings"
	"time"
)

// Status is the announced state of a camera.
type Status string

// Announced states. Deleted exists only between storing a deletion and
// announcing it (the rows are then removed).
const (
	Online  Status = "online"
	Offline Status = "offline"
	Deleted Status = "deleted"
)

// Channel is one video channel of a camera and its main-stream URL
// (without credentials).
type Channel struct {
	ID       int
	MediaURL string
}

// Device is the announced (stored) state of a camera.
type Device struct {
	Index    string
	Name     string
	Status   Status
	Channels []Channel // ascending by ID
	// FirstSeen is when the watcher first announced the camera.
	FirstSeen time.Time
	// LastChange is when the last announced change happened at the gateway.
	LastChange time.Time
	// OfflineSince is when the camera was first seen offline (Status Offline).
	OfflineSince time.Time
	// Version increases with every stored change (conditional writes).
	Version int64
}

// Gateway is the announced state of the gateway itself.
type Gateway struct {
	Reachable bool
	// Since is when the gateway stopped answering (when !Reachable).
	Since  time.Time
	Reason string
	// Login is the announced login standing.
	Login Login
	// LastChange is when the last announced change happened.
	LastChange time.Time
	Version    int64
}

// Login is the gateway's announced login standing.
type Login struct {
	// Rejected: the watcher sends no login to the gateway (its password was
	// rejected, or the login budget refuses logins) until the password's
	// parameter changes or the budget allows a login again.
	Rejected bool
	// Since is when logins stopped (Rejected) or worked again.
	Since time.Time
	// Refusal says why (Rejected).
	Refusal LoginRefusal
	// Credential is the credential the gateway accepted (not Rejected; ""
	// when never announced).
	Credential string
}

// LoginRefusal is why logins to a gateway stopped. It names the password
// by its parameter and version, never by its value.
type LoginRefusal struct {
	// Reason: "credentials-rejected", "budget-spent" or "locked" (the
	// login budget's reasons).
	Reason string
	// Credential is "<parameter>@<version>".
	Credential string
	// Until is when a login may be possible again; zero when only a new
	// version of the parameter helps.
	Until time.Time
	// FailedLogins: failed or unanswered logins in the budget's window.
	FailedLogins int
	// Detail says it for people.
	Detail string
}

// SplitCredential splits "<parameter>@<version>" (for logs).
func SplitCredential(c string) (parameter, version string) {
	if i := strings.LastIndexByte(c, '@'); i >= 0 {
		return c[:i], c[i+1:]
	}
	return c, ""
}

// Source says which detection path made a change visible.
type Source string

// Detection paths.
const (
	SourcePoll   Source = "poll"
	SourceStream Source = "stream"
)

// Sighting is one observation of a camera on the gateway.
type Sighting struct {
	Index  string
	Name   string
	Online bool
	// Channels are the camera's channels with their media URLs, fetched
	// with this sighting; nil when they were not fetched.
	Channels []Channel
	// At is the watcher's clock when the observation was made; it orders
	// observations of one camera from both paths.
	At time.Time
	// GatewayTime is when the gateway says the change happened (event
	// stream); zero when unknown.
	GatewayTime time.Time
	Source      Source
}

// ParseStatus maps a status reported by the gateway to online (true) or
// not; ok is false for a status the watcher does not know.
func ParseStatus(s string) (online, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "online":
		return true, true
	case "offline", "sleep":
		// A sleeping camera does not stream: for recording it is offline.
		return false, true
	}
	return false, false
}

// Kind is what a Change announces.
type Kind string

// Kinds of Change.
const (
	KindDeviceOnline       Kind = "device_online"
	KindDeviceOffline      Kind = "device_offline"
	KindDeviceDeleted      Kind = "device_deleted"
	KindGatewayUnreachable Kind = "gateway_unreachable"
	KindGatewayReachable   Kind = "gateway_reachable"
	// KindGatewayCredentialsRejected: logins to the gateway stopped.
	KindGatewayCredentialsRejected Kind = "gateway_credentials_rejected"
	// KindGatewayCredentialsAccepted: logins work again.
	KindGatewayCredentialsAccepted Kind = "gateway_credentials_accepted"
)

// IsDevice reports whether the change is about a camera.
func (k Kind) IsDevice() bool {
	return k == KindDeviceOnline || k == KindDeviceOffline || k == KindDeviceDeleted
}

// Change is one transition to store, then announce.
type Change struct {
	Kind      Kind
	GatewayID string
	// Device is the camera's state after the change (device kinds). For a
	// deletion its Status is Deleted and its Channels the last known.
	Device Device
	// Previous is the state before (nil for a camera never announced).
	Previous *Device
	// Gateway is the gateway's state after the change (gateway kinds).
	Gateway Gateway
	// PreviousGateway is the gateway's state before (gateway kinds).
	PreviousGateway Gateway
	// UnreachableFor is how long the gateway did not answer (reachable).
	UnreachableFor time.Duration
	// OccurredAt is when the change happened at the gateway.
	OccurredAt time.Time
	// DetectableAt is from when the change could be known: the gateway's
	// event time, or the observation, or for offline the end of the
	// hysteresis. Detection latency is measured from it.
	DetectableAt time.Time
	Source       Source
	// EventID identifies the announcement; the caller assigns it before
	// storing so that a re-publication after a crash carries the same id.
	EventID string
}

// SortChannels returns the channels ordered by ID without duplicates (the
// first of equal IDs wins).
func SortChannels(chs []Channel) []Channel {
	out := slices.Clone(chs)
	slices.SortStableFunc(out, func(a, b Channel) int { return a.ID - b.ID })
	return slices.CompactFunc(out, func(a, b Channel) bool { return a.ID == b.ID })
}

func sameChannels(a, b []Channel) bool { return slices.Equal(a, b) }

// Counts is the number of channels in each state, for metrics.
type Counts struct {
	Online int
	// Suspect channels are announced online but seen offline, within the hysteresis.
	Suspect int
	Offline int
}
