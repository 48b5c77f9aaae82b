package domain

import (
	"slices"
	"time"
)

// Action is what a signal says about its key.
type Action int

const (
	// Raise: the thing is broken (opens the incident, or confirms it).
	Raise Action = iota + 1
	// Clear: the thing works again (resolves the incident).
	Clear
	// Running: a camera's recording task runs (resolves once it has run
	// for Policy.Stable without failing).
	Running
	// Note: something mediagw did (a recovery step); recorded in the open
	// incident, else in the key's last (resolved) one; it opens one only
	// on a key that never had an incident.
	Note
	// GaveUp: automatic recovery stopped; people must act (its own mail).
	GaveUp
)

// Signal is one fact from an event, a health check or a recovery step,
// addressed to the incident of its key.
type Signal struct {
	// ID makes a redelivered signal a no-op (an event id).
	ID      string
	At      time.Time
	Kind    Kind
	Gateway string
	Device  string
	Action  Action
	Title   string
	Detail  string
	// Camera is a camera the incident affects (gateway incidents list them).
	Camera    string
	Exit      *Exit
	Step      *Step
	CrashLoop bool
}

// Key is the key of what the signal is about.
func (s Signal) Key() string { return KeyOf(s.Kind, s.Gateway, s.Device) }

// KeyOf names what is broken: gateway/gw-1, config/gw-1, camera/<device>, …
// A camera's key is its device index alone (unique across gateways, and
// all an ECS task state change tells).
func KeyOf(kind Kind, gateway, device string) string {
	switch kind {
	case KindCamera:
		return string(kind) + "/" + device
	default:
		return string(kind) + "/" + gateway
	}
}

// Policy holds the timings of the incident rules.
type Policy struct {
	// Hold delays the opening mail of a kind; a camera's waits so that a
	// gateway outage that explains it can absorb it, and a flap that
	// clears within the hold sends nothing.
	Hold map[Kind]time.Duration
	// Stable: a camera task running this long without failing resolves
	// the camera's incident.
	Stable time.Duration
	// AlertQuiet: an alert not repeated for this long resolves.
	AlertQuiet time.Duration
	// Settle delays the resolved mail so that the segments recorded
	// since recording resumed are in S3 when the footage missed is counted.
	Settle time.Duration
}

// DefaultPolicy are the defaults of the settings.
func DefaultPolicy() Policy {
	return Policy{Hold: map[Kind]time.Duration{KindCamera: 2 * time.Minute, KindConfig: time.Minute},
		Stable: 2 * time.Minute, AlertQuiet: time.Hour, Settle: 45 * time.Second}
}

func (p Policy) hold(k Kind) time.Duration { return p.Hold[k] }

// Apply applies s to cur (the key's incident, zero if it has none) at now
// and returns the new incident and whether anything changed. It is
// deterministic: the same signal applied twice changes nothing the second
// time, and an opening or clearing signal older than the incident's newest
// such signal is late and ignored.
func Apply(cur Incident, s Signal, now time.Time, p Policy) (Incident, bool) {
	if cur.seen(s.ID) {
		return cur, false
	}
	n := cur.clone()
	if n.Key == "" {
		n.Key, n.Kind, n.Gateway, n.Device = s.Key(), s.Kind, s.Gateway, s.Device
	}
	if n.Gateway == "" {
		n.Gateway = s.Gateway // a camera's gateway, once an event names it
	}
	n.remember(s.ID)
	late := !n.SignalAt.IsZero() && s.At.Before(n.SignalAt)

	switch s.Action {
	case Raise, Note, GaveUp:
		if !n.Open() {
			if late && s.Action == Raise {
				return n, true // the key cleared after this happened
			}
			if s.Action == Note && n.State == StateResolved {
				// What mediagw did, told after the incident resolved (the
				// recovery step that brought the gateway back ends just
				// after GatewayReachable resolved it): it belongs to that
				// incident. Opening a new one would mail an outage that is
				// over and drop the resolved mail still owed.
				n.addCamera(s.Camera)
				if s.Step != nil {
					n.AddStep(*s.Step)
				}
				return n, true
			}
			if n.owesResolvedMail() {
				// Failed again before its resolved mail went out (within
				// the settle time): the same incident continues. A new one
				// would mail a second opening and drop the resolved mail
				// owed; this way the one resolved mail covers it all.
				n.reopen(s)
			} else {
				n.open(s, now, p)
			}
		}
		n.confirm(s, now, p)
		if s.Action == GaveUp {
			n.addMail(MailGaveUp, now)
		}
	case Clear:
		if !n.Open() {
			if s.At.After(n.SignalAt) {
				n.SignalAt = s.At // remembered: an older Raise delivered late opens nothing
			}
			return n, true
		}
		if late || s.At.Before(n.Opened) {
			return n, true
		}
		n.SignalAt = s.At
		n.resolve(s.At, s.Detail, now.Add(p.Settle))
	case Running:
		if n.Open() && n.Kind == KindCamera && !late && !s.At.Before(n.lastExit()) {
			n.AutoResolveAt = s.At.Add(p.Stable)
		}
	}
	return n, true
}

// open starts a new incident on the key; a resolved one goes to history.
func (i *Incident) open(s Signal, now time.Time, p Policy) {
	if i.State == StateResolved && i.ID != "" {
		i.History = append([]Summary{{ID: i.ID, Title: i.Title, Opened: i.Opened, Resolved: i.Resolved, Missed: i.Missed}}, i.History...)
		if len(i.History) > maxHistory {
			i.History = i.History[:maxHistory]
		}
	}
	title := s.Title
	if title == "" {
		title = defaultTitle(s.Kind)
	}
	*i = Incident{Key: i.Key, Kind: i.Kind, Gateway: i.Gateway, Device: i.Device, Seen: i.Seen, History: i.History, Version: i.Version,
		State: StateOpen, ID: i.Key + "@" + s.At.UTC().Format(time.RFC3339), Title: title, Opened: s.At, SignalAt: s.At}
	hold := p.hold(s.Kind)
	if s.CrashLoop || s.Action == GaveUp {
		hold = 0
	}
	i.addMail(MailOpened, now.Add(hold))
}

// reopen continues a resolved incident whose resolved mail is still owed:
// that mail is withdrawn (the next resolution owes it again, with the
// whole duration), the opening mail is not owed again.
func (i *Incident) reopen(s Signal) {
	i.Mails = slices.DeleteFunc(i.Mails, func(m Mail) bool { return m.Kind == MailResolved && m.State == MailPending })
	i.AddStep(Step{At: s.At, What: "failed again at " + s.At.UTC().Format("15:04:05") + ", " +
		round(s.At.Sub(i.Resolved)).String() + " after it cleared (" + orDash(i.ClearedBy) + "): the same incident continues"})
	i.State, i.Resolved, i.ClearedBy, i.Missed = StateOpen, time.Time{}, "", ""
	if s.Title != "" {
		i.Title = s.Title
	}
}

// confirm records what s adds to the open incident.
func (i *Incident) confirm(s Signal, now time.Time, p Policy) {
	if s.At.After(i.SignalAt) && s.Action == Raise {
		i.SignalAt = s.At
	}
	if s.Detail != "" && s.Action != Note {
		i.Detail = s.Detail
	}
	i.addCamera(s.Camera)
	if s.Kind == KindCamera {
		i.addCamera(s.Device)
	}
	if s.Exit != nil {
		i.addExit(*s.Exit)
		if !s.Exit.At.Before(i.AutoResolveAt.Add(-p.Stable)) {
			i.AutoResolveAt = time.Time{} // failed again: not running stably
		}
	}
	if s.Step != nil {
		i.AddStep(*s.Step)
	}
	if s.CrashLoop && !i.CrashLoop {
		i.CrashLoop = true
		// The camera was held back for a gateway outage to explain it; a
		// crash loop the task-manager gave up on is worth a mail now.
		if m := i.Mail(MailOpened); m != nil && m.State == MailPending {
			m.DueAt = now
		}
	}
	if s.Kind == KindAlert {
		i.AutoResolveAt = s.At.Add(p.AlertQuiet)
	}
}

// resolve closes the incident at; a resolved mail is owed only if the
// opening mail went out — a flap within the hold sends nothing at all.
func (i *Incident) resolve(at time.Time, by string, mailAt time.Time) {
	i.State, i.Resolved, i.ClearedBy, i.AutoResolveAt = StateResolved, at, by, time.Time{}
	gone := i.openMailGone()
	i.cancelPending()
	if gone {
		i.addMail(MailResolved, mailAt)
	}
}

// Resolve resolves an open incident without a clearing event (auto-resolve,
// or merged into a gateway incident when mergedInto is set); a resolved
// mail is due at mailAt. An incident whose opening mail went out is never
// merged silently: it resolves and owes its resolved mail.
func (i *Incident) Resolve(at time.Time, by, mergedInto string, mailAt time.Time) {
	if !i.Open() {
		return
	}
	if mergedInto != "" && !i.openMailGone() {
		i.MergedInto = mergedInto
		i.State, i.Resolved, i.ClearedBy = StateResolved, at, by
		i.cancelPending() // the gateway incident's mails tell it
		return
	}
	i.resolve(at, by, mailAt)
}

func (i *Incident) lastExit() time.Time {
	var t time.Time
	for _, e := range i.Exits {
		if e.At.After(t) {
			t = e.At
		}
	}
	return t
}

func (i Incident) clone() Incident {
	i.Cameras = slices.Clone(i.Cameras)
	i.Steps = slices.Clone(i.Steps)
	i.Exits = slices.Clone(i.Exits)
	i.Mails = slices.Clone(i.Mails)
	i.Seen = slices.Clone(i.Seen)
	i.History = slices.Clone(i.History)
	return i
}

func defaultTitle(k Kind) string {
	switch k {
	case KindGateway:
		return "gateway down"
	case KindConfig:
		return "settings cannot be applied"
	case KindCredentials:
		return "admin password rejected"
	case KindCamera:
		return "recording keeps failing"
	default:
		return "alert"
	}
}
