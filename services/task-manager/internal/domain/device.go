// Package domain is the task-manager's model of one device's recording: what
// is wanted (from device events and the deviceMediaURL table), which task is
// running for it, and how a dying task is restarted. It has no AWS in it;
// every function is a pure state transition the adapters store with a
// conditional write on Version.
//
// One device has at most one recording task, carrying all of the device's
// online channels (the recorder records several channels per process); a
// task may carry several devices of a gateway (packing, placement.go), each
// device's row naming it.
package domain

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Channel is one camera channel of a device and its live stream.
type Channel struct {
	Number   int32
	MediaURL string // rtsp://host[:port]/path, never with credentials
}

// Want is what should happen to a device's recording.
type Want string

// Wants.
const (
	WantNone   Want = ""
	WantRecord Want = "record" // online: one task records its channels
	WantStop   Want = "stop"   // offline: no task
	WantDelete Want = "delete" // deleted: no task, then the row goes
)

// Status is where the device's task is in its life.
type Status string

// Statuses.
const (
	StatusIdle     Status = "idle"     // no task
	StatusStarting Status = "starting" // launch intent stored (Token), task not confirmed yet
	StatusRunning  Status = "running"  // the launcher accepted the task
	StatusStopping Status = "stopping" // stop requested, not confirmed
	StatusBackoff  Status = "backoff"  // the task died; restart at NextAttempt
	StatusGaveUp   Status = "gave_up"  // died too often; alerted; next try at NextAttempt
)

// Task is the recording task that belongs to a device.
type Task struct {
	ID       string  // ECS task ARN or local:<id>
	Launcher string  // "ecs" or "local"
	Channels []int32 // this device's channels on the task
	// Pack lists every device the task records (this one included) when it
	// carries more than one; nil for a task of its own.
	Pack      []string
	StartedAt time.Time
}

// Device is the task-manager's whole state for one device: one row of the
// ip-camera table.
type Device struct {
	Index    string
	Gateway  string
	Channels []Channel // channels to record, sorted by number

	Want Want
	// WantAt is when the fact behind Want happened at its source (the
	// event's occurred_at, or the table's last_change). An older fact never
	// undoes a newer one.
	WantAt time.Time

	Status Status
	// Token names the current launch: written before the launcher is asked,
	// carried by the task (tags, environment), so a task whose token is not
	// the device's current one is known to be an orphan.
	Token   string
	TokenAt time.Time
	Task    *Task

	// Failures are the times the task died on its own within the policy's
	// window; the streak that decides backoff and giving up.
	Failures    []time.Time
	NextAttempt time.Time
	LastExit    int32 // exit code of the last task that ended; -1 unknown
	LastReason  string

	// Version is the stored row's version (0: not stored). Every write is
	// conditional on it.
	Version   int64
	UpdatedAt time.Time
}

// Desire is one fact about what a device should be doing, from an event or
// from the deviceMediaURL table.
type Desire struct {
	Device   string
	Gateway  string
	Want     Want
	At       time.Time
	Channels []Channel // for WantRecord
}

// ApplyDesire records a newer fact about the device. It returns false (and
// d unchanged) when the fact is not newer than what the device already
// knows: duplicates and late, reordered events change nothing.
func ApplyDesire(d Device, in Desire) (Device, bool) {
	fresh := d.Version == 0 && d.WantAt.IsZero()
	if !fresh && !in.At.After(d.WantAt) {
		return d, false
	}
	if d.Index == "" {
		d.Index = in.Device
	}
	if in.Gateway != "" {
		d.Gateway = in.Gateway
	}
	if d.Status == "" {
		d.Status = StatusIdle
	}
	// A device that comes (back) online gets a fresh restart streak, also
	// after the manager gave up on it.
	if in.Want == WantRecord && (d.Want != WantRecord || d.Status == StatusGaveUp) {
		d.Failures = nil
		d.NextAttempt = time.Time{}
		if d.Status == StatusBackoff || d.Status == StatusGaveUp {
			d.Status = StatusIdle
		}
	}
	d.Want, d.WantAt = in.Want, in.At
	if in.Want == WantRecord {
		d.Channels = SortChannels(in.Channels)
	}
	return d, true
}

// SortChannels returns the channels ordered by number, one per number.
func SortChannels(chs []Channel) []Channel {
	out := slices.Clone(chs)
	slices.SortStableFunc(out, func(a, b Channel) int { return int(a.Number) - int(b.Number) })
	return slices.CompactFunc(out, func(a, b Channel) bool { return a.Number == b.Number })
}

// ChannelNumbers lists the channels' numbers in order.
func ChannelNumbers(chs []Channel) []int32 {
	out := make([]int32, len(chs))
	for i, c := range chs {
		out[i] = c.Number
	}
	return out
}

// CleanMediaURL checks that a media URL is an RTSP URL and removes any
// credentials from it, so they can never reach a task's settings. It
// reports whether it removed some; the error never repeats the URL, which
// may hold a password.
func CleanMediaURL(raw string) (clean string, hadCredentials bool, err error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", false, fmt.Errorf("media URL does not parse")
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return "", false, fmt.Errorf("media URL scheme %q is not rtsp", u.Scheme)
	}
	if u.Host == "" {
		return "", false, fmt.Errorf("media URL has no host")
	}
	if u.User != nil {
		u.User = nil
		hadCredentials = true
	}
	return u.String(), hadCredentials, nil
}
