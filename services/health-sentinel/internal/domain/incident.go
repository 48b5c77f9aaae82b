// Package domain is what an incident is and the rules it obeys: which
// signal opens, updates or resolves which incident, when its mails are due,
// and the storm limit. No AWS, no clock but the times passed in.
package domain

import (
	"errors"
	"slices"
	"time"
)

// Sentinel errors of the incident store.
var (
	// ErrConflict: the incident changed since it was read (version check).
	ErrConflict = errors.New("incident changed concurrently")
)

// Kind is what is broken.
type Kind string

const (
	KindGateway     Kind = "gateway"     // the gateway's API or instance is down: one incident for all its cameras
	KindConfig      Kind = "config"      // the configurator cannot apply the gateway's settings
	KindCredentials Kind = "credentials" // the gateway rejects the admin password
	KindCamera      Kind = "camera"      // one camera's recording task keeps failing
	KindAlert       Kind = "alert"       // an Alert event without a camera
)

// State of an incident.
type State string

const (
	// StateNone is a key with no incident: a clearing signal seen first,
	// kept so that an older opening signal delivered late is ignored.
	StateNone     State = ""
	StateOpen     State = "open"
	StateResolved State = "resolved"
)

// Mail kinds and states.
const (
	MailOpened   = "opened"
	MailGaveUp   = "gave-up"
	MailResolved = "resolved"

	MailPending   = "pending"
	MailClaimed   = "claimed"   // being sent; never sent a second time, even after a crash
	MailSent      = "sent"      //
	MailCancelled = "cancelled" // the incident resolved or merged before it was due
	MailDigested  = "digested"  // over the storm limit: goes into the gateway's next digest
)

// Mail is one mail an incident owes or has sent.
type Mail struct {
	Kind   string    `json:"kind"`
	State  string    `json:"state"`
	DueAt  time.Time `json:"due_at"`
	SentAt time.Time `json:"sent_at,omitzero"`
}

// Step is one thing mediagw did about the incident (a task restart, a
// recovery step and its outcome), in the order done.
type Step struct {
	At      time.Time `json:"at"`
	What    string    `json:"what"`
	Outcome string    `json:"outcome,omitempty"`
}

// Exit is a recording task's exit.
type Exit struct {
	TaskID    string    `json:"task_id"`
	Code      int32     `json:"code"`
	At        time.Time `json:"at"`
	LogStream string    `json:"log_stream,omitempty"`
}

// Summary is a resolved incident kept in its key's history.
type Summary struct {
	ID       string    `json:"id"`
	Title    string    `json:"title"`
	Opened   time.Time `json:"opened"`
	Resolved time.Time `json:"resolved"`
	Missed   string    `json:"missed,omitempty"`
}

// Incident is the current (or last) incident of one key, with its history.
type Incident struct {
	Key     string `json:"key"`
	Kind    Kind   `json:"kind"`
	Gateway string `json:"gateway,omitempty"`
	Device  string `json:"device,omitempty"`

	State    State     `json:"state"`
	ID       string    `json:"id,omitempty"`
	Title    string    `json:"title,omitempty"`  // what is wrong, short
	Detail   string    `json:"detail,omitempty"` // the latest reason given
	Opened   time.Time `json:"opened,omitzero"`
	Resolved time.Time `json:"resolved,omitzero"`
	// ClearedBy says what resolved it.
	ClearedBy string `json:"cleared_by,omitempty"`
	// SignalAt is when the newest signal that opened, confirmed or cleared
	// the incident happened; an opening or clearing signal older than it
	// is late and changes nothing.
	SignalAt time.Time `json:"signal_at,omitzero"`
	// AutoResolveAt resolves the incident without a clearing event (a
	// camera whose task has run long enough; an alert gone quiet).
	AutoResolveAt time.Time `json:"auto_resolve_at,omitzero"`
	// MergedInto is the gateway incident a camera incident was folded into.
	MergedInto string `json:"merged_into,omitempty"`

	Cameras []string `json:"cameras,omitempty"`
	Steps   []Step   `json:"steps,omitempty"`
	Exits   []Exit   `json:"exits,omitempty"`
	Mails   []Mail   `json:"mails,omitempty"`
	// Missed is the footage missed, filled when it resolves.
	Missed string `json:"missed,omitempty"`
	// CrashLoop: the task-manager gave up restarting the camera's task.
	CrashLoop bool `json:"crash_loop,omitempty"`

	// Seen are the ids of the last signals applied: a redelivery is a no-op.
	Seen    []string  `json:"seen,omitempty"`
	History []Summary `json:"history,omitempty"`
	Version int64     `json:"-"`
}

// Limits on what an incident keeps.
const (
	maxSeen    = 64
	maxSteps   = 40
	maxExits   = 5
	maxHistory = 10
	maxCameras = 256
)

// Open reports whether the incident is open.
func (i *Incident) Open() bool { return i.State == StateOpen }

// Mail returns the mail of kind, or nil.
func (i *Incident) Mail(kind string) *Mail {
	for k := range i.Mails {
		if i.Mails[k].Kind == kind {
			return &i.Mails[k]
		}
	}
	return nil
}

// DueMails are the pending mails due at now.
func (i *Incident) DueMails(now time.Time) []string {
	var out []string
	for _, m := range i.Mails {
		if m.State == MailPending && !m.DueAt.After(now) {
			out = append(out, m.Kind)
		}
	}
	return out
}

// NextDue is when the next pending mail falls due (zero if none).
func (i *Incident) NextDue() time.Time {
	var t time.Time
	for _, m := range i.Mails {
		if m.State == MailPending && (t.IsZero() || m.DueAt.Before(t)) {
			t = m.DueAt
		}
	}
	return t
}

// addMail owes a mail of kind, due at due; a mail of that kind already
// owed or sent for this incident is not owed twice.
func (i *Incident) addMail(kind string, due time.Time) {
	if m := i.Mail(kind); m != nil {
		if m.State == MailPending && due.Before(m.DueAt) {
			m.DueAt = due
		}
		return
	}
	i.Mails = append(i.Mails, Mail{Kind: kind, State: MailPending, DueAt: due})
}

// cancelPending cancels every mail not yet claimed.
func (i *Incident) cancelPending() {
	for k := range i.Mails {
		if i.Mails[k].State == MailPending {
			i.Mails[k].State = MailCancelled
		}
	}
}

// openMailGone says the opening mail went out (or was claimed, or went
// into a digest): then the resolution is worth a mail too.
func (i *Incident) openMailGone() bool {
	m := i.Mail(MailOpened)
	return m != nil && (m.State == MailSent || m.State == MailClaimed || m.State == MailDigested)
}

// owesResolvedMail says the incident resolved and its resolved mail has
// not gone out yet (pending: claimed, sent or digested ones have).
func (i *Incident) owesResolvedMail() bool {
	m := i.Mail(MailResolved)
	return i.State == StateResolved && m != nil && m.State == MailPending
}

func (i *Incident) seen(id string) bool { return id != "" && slices.Contains(i.Seen, id) }

func (i *Incident) remember(id string) {
	if id == "" {
		return
	}
	i.Seen = append(i.Seen, id)
	if len(i.Seen) > maxSeen {
		i.Seen = i.Seen[len(i.Seen)-maxSeen:]
	}
}

// AddStep records something mediagw did.
func (i *Incident) AddStep(s Step) {
	i.Steps = append(i.Steps, s)
	if len(i.Steps) > maxSteps {
		i.Steps = i.Steps[len(i.Steps)-maxSteps:]
	}
}

// AddCamera lists a camera the incident affects.
func (i *Incident) AddCamera(dev string) { i.addCamera(dev) }

func (i *Incident) addCamera(dev string) {
	if dev == "" || slices.Contains(i.Cameras, dev) || len(i.Cameras) >= maxCameras {
		return
	}
	i.Cameras = append(i.Cameras, dev)
	slices.Sort(i.Cameras)
}

func (i *Incident) addExit(e Exit) {
	for k := range i.Exits {
		if i.Exits[k].TaskID == e.TaskID && e.TaskID != "" {
			if e.LogStream != "" {
				i.Exits[k].LogStream = e.LogStream
			}
			return
		}
	}
	i.Exits = append(i.Exits, e)
	slices.SortFunc(i.Exits, func(a, b Exit) int { return a.At.Compare(b.At) })
	if len(i.Exits) > maxExits {
		i.Exits = i.Exits[len(i.Exits)-maxExits:]
	}
}

// Duration is how long the incident lasted (until now while open).
func (i *Incident) Duration(now time.Time) time.Duration {
	end := i.Resolved
	if end.IsZero() {
		end = now
	}
	return end.Sub(i.Opened)
}
