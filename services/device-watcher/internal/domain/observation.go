package domain

import "time"

// Snapshot is the result of one poll of a gateway's device list.
type Snapshot struct {
	Started, Finished time.Time
	// Sightings of the listed cameras whose status made sense.
	Sightings []Sighting
	// Gone are known cameras that the gateway confirmed it no longer has.
	Gone []string
	// Err: the device list could not be read; nothing above is valid.
	Err error
	// Unreachable: Err means the gateway did not answer at all (as opposed
	// to answering badly): the connection failed or timed out.
	Unreachable bool
	// NothingSent: Err came before anything reached the gateway (logins
	// stopped, no password): it says nothing about the gateway.
	NothingSent bool
	// Refused: logins to the gateway are stopped (Err is why).
	Refused *LoginRefusal
	// AwaitingConfiguration: no login was sent because the gateway awaits
	// its configuration (AwaitsConfiguration; Err says so, NothingSent).
	AwaitingConfiguration bool
	// LoggedIn is the credential the gateway accepted for this poll ("":
	// it did not, or it was not asked).
	LoggedIn string
}

// UpdateKind says what a StreamUpdate reports.
type UpdateKind int

// Kinds of StreamUpdate.
const (
	// UpdateConnected: the stream is (re)connected; events may have been
	// missed before it: poll to resynchronise.
	UpdateConnected UpdateKind = iota + 1
	// UpdateAlive: a heartbeat.
	UpdateAlive
	// UpdateDevice: a camera changed (Sighting, or Gone with Index).
	UpdateDevice
	// UpdateLost: an event could not be understood and may be lost: poll.
	UpdateLost
	// UpdateDown: the stream dropped or could not be opened (Err); with
	// Refused, because logins to the gateway are stopped; with
	// AwaitingConfiguration, because the gateway awaits its configuration.
	UpdateDown
)

// StreamUpdate is one observation from the gateway's event stream.
type StreamUpdate struct {
	Kind UpdateKind
	// At is the watcher's clock when the message arrived.
	At       time.Time
	Sighting *Sighting
	// Gone: the camera Index was removed at GatewayTime.
	Gone        bool
	Index       string
	GatewayTime time.Time
	Err         error
	// Unreachable: Err means the gateway did not answer at all.
	Unreachable bool
	// Refused (UpdateDown): logins to the gateway are stopped.
	Refused *LoginRefusal
	// AwaitingConfiguration (UpdateDown): no login is sent until the
	// gateway is configured.
	AwaitingConfiguration bool
	// Credential (UpdateConnected) is the credential the gateway accepted.
	Credential string
}
