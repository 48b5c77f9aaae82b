package domain

// The recovery ladder's rules: from one health check, what was already
// tried within the recovery budget, and the time passed in, which rung to
// try next, or none, or to give up. No AWS, no clock but the one passed in.

import (
	"fmt"
	"slices"
	"time"
)

// APIState is what a health check learned of a gateway's ISAPI.
type APIState string

const (
	// APIOK: the device status was read.
	APIOK APIState = "ok"
	// APISick: the gateway answered, with an error (busy, device error,
	// 5xx, a malformed body): its software is up but unwell, so an ISAPI
	// reboot can be asked for.
	APISick APIState = "sick"
	// APISilent: no answer (refused, reset, timed out): only the instance
	// can be acted on.
	APISilent APIState = "silent"
	// APIUnknown: no request was sent or its answer says nothing of the
	// gateway's health (the login budget refused the login, the password
	// was rejected, no password to read). Never a reason to act: the
	// configurator and people handle credentials.
	APIUnknown APIState = "unknown"
)

// RecoveryHealth is what the ladder needs of one health check.
type RecoveryHealth struct {
	API APIState
	// InstanceImpaired: the instance's status checks fail (EC2 says
	// impaired, or the instance is not running). False when fine or unknown.
	InstanceImpaired bool
}

// Healthy says whether nothing needs doing: the API answers and the
// instance is not known to be impaired.
func (h RecoveryHealth) Healthy() bool { return h.API == APIOK && !h.InstanceImpaired }

// RecoveryAction is the next thing the ladder does.
type RecoveryAction string

const (
	RecoveryNone        RecoveryAction = "none"         // healthy, or nothing known to act on
	RecoveryISAPIReboot RecoveryAction = "isapi-reboot" // rung 1
	RecoveryEC2Reboot   RecoveryAction = "ec2-reboot"   // rung 2
	RecoveryReplace     RecoveryAction = "replace"      // rung 3
	RecoveryGiveUp      RecoveryAction = "give-up"      // budget spent: tell people, once
	RecoveryGivenUp     RecoveryAction = "given-up"     // already told within the window: do nothing
)

// RecoveryBudget bounds the ladder: within any Window, at most this many
// attempts of each rung. A rung's attempts are counted when they start, so
// a sentinel that dies mid-step has spent it.
type RecoveryBudget struct {
	Window          time.Duration
	ISAPIReboots    int
	EC2Reboots      int
	Replacements    int
	StepWaitISAPI   time.Duration // how long a rung may take to bring the API back
	StepWaitEC2     time.Duration
	StepWaitReplace time.Duration
}

// DefaultRecoveryBudget: each rung once per 6 hours.
func DefaultRecoveryBudget() RecoveryBudget {
	return RecoveryBudget{Window: 6 * time.Hour, ISAPIReboots: 1, EC2Reboots: 1, Replacements: 1,
		StepWaitISAPI: 3 * time.Minute, StepWaitEC2: 6 * time.Minute, StepWaitReplace: 20 * time.Minute}
}

// Validate says what is wrong with b.
func (b RecoveryBudget) Validate() error {
	if b.Window <= 0 {
		return fmt.Errorf("recovery budget window must be positive, got %s", b.Window)
	}
	if b.ISAPIReboots < 0 || b.EC2Reboots < 0 || b.Replacements < 0 {
		return fmt.Errorf("recovery budget counts must not be negative")
	}
	if b.StepWaitISAPI <= 0 || b.StepWaitEC2 <= 0 || b.StepWaitReplace <= 0 {
		return fmt.Errorf("recovery step waits must be positive")
	}
	return nil
}

// StepWait is how long the rung may take, its own call and the wait for the
// gateway to answer again included.
func (b RecoveryBudget) StepWait(a RecoveryAction) time.Duration {
	switch a {
	case RecoveryISAPIReboot:
		return b.StepWaitISAPI
	case RecoveryEC2Reboot:
		return b.StepWaitEC2
	case RecoveryReplace:
		return b.StepWaitReplace
	}
	return 0
}

func (b RecoveryBudget) allowed(a RecoveryAction) int {
	switch a {
	case RecoveryISAPIReboot:
		return b.ISAPIReboots
	case RecoveryEC2Reboot:
		return b.EC2Reboots
	case RecoveryReplace:
		return b.Replacements
	}
	return 0
}

// RecoveryAttempt is one rung started.
type RecoveryAttempt struct {
	Action  RecoveryAction `json:"action"`
	Started time.Time      `json:"started"`
	Outcome string         `json:"outcome,omitempty"` // empty while running (or when its sentinel died)
}

// Replacement is a replacement under way: once a new instance exists it is
// remembered so that the next try, by any sentinel, continues it rather
// than starting another.
type Replacement struct {
	OldInstanceID string `json:"old_instance_id"`
	NewInstanceID string `json:"new_instance_id,omitempty"`
	ImageID       string `json:"image_id,omitempty"`
	ElasticIP     string `json:"elastic_ip,omitempty"`
	Address       string `json:"address,omitempty"`
}

// RecoveryState is what is kept of a gateway's recovery between tries
// (stored on its lease).
type RecoveryState struct {
	Attempts    []RecoveryAttempt `json:"attempts,omitempty"`
	Replacement *Replacement      `json:"replacement,omitempty"`
	// GaveUpAt: when people were told the budget was spent; they are not
	// told again within the window.
	GaveUpAt time.Time `json:"gave_up_at,omitzero"`
}

// Prune forgets attempts (and a give-up) older than the window: the budget
// refills as they age out.
func (s *RecoveryState) Prune(now time.Time, b RecoveryBudget) {
	s.Attempts = slices.DeleteFunc(s.Attempts, func(a RecoveryAttempt) bool { return now.Sub(a.Started) >= b.Window })
	if !s.GaveUpAt.IsZero() && now.Sub(s.GaveUpAt) >= b.Window {
		s.GaveUpAt = time.Time{}
	}
}

// Count is how many attempts of a are within the window at now.
func (s RecoveryState) Count(a RecoveryAction, now time.Time, b RecoveryBudget) int {
	n := 0
	for _, at := range s.Attempts {
		if at.Action == a && now.Sub(at.Started) < b.Window {
			n++
		}
	}
	return n
}

// Active says whether a recovery is under way or was in the recent past
// unfinished: a replacement under way or an attempt without outcome.
func (s RecoveryState) Active() bool {
	if s.Replacement != nil {
		return true
	}
	for _, a := range s.Attempts {
		if a.Outcome == "" {
			return true
		}
	}
	return false
}

// ReplacementStale says whether the replacement under way started longer
// ago than twice its step wait: its sentinels keep dying or stalling, so it
// is not continued again (people are told when the budget is spent); its
// instances are left for them to look at.
func (s RecoveryState) ReplacementStale(now time.Time, b RecoveryBudget) bool {
	if s.Replacement == nil {
		return false
	}
	var last time.Time
	for _, a := range s.Attempts {
		if a.Action == RecoveryReplace && a.Started.After(last) {
			last = a.Started
		}
	}
	return last.IsZero() || now.Sub(last) > 2*b.StepWaitReplace
}

// NextRecoveryAction decides the next rung for health h, given the state
// (not yet pruned is fine) at now. The reason says why, for the incident.
//
// Rules: a replacement under way is continued (leaving it half done
// leaves two instances or an unbound address) unless it is stale. Healthy, or nothing known to
// act on (API unknown and the instance fine): none. Otherwise the lowest
// rung that applies and has budget left: the ISAPI reboot only when the API
// answers sick (a silent API cannot take the request); the EC2 reboot; the
// replacement. A rung is not retried before the ones above it are spent:
// the ladder only goes up within a window. Nothing left: give up, once per
// window.
func NextRecoveryAction(h RecoveryHealth, s RecoveryState, b RecoveryBudget, now time.Time) (RecoveryAction, string) {
	if s.Replacement != nil && !s.ReplacementStale(now, b) {
		return RecoveryReplace, "a replacement is under way: continuing it"
	}
	if h.Healthy() {
		return RecoveryNone, "healthy"
	}
	if h.API == APIUnknown && !h.InstanceImpaired {
		return RecoveryNone, "the API's health is unknown (no login possible) and the instance is fine: nothing to act on"
	}
	// The highest rung tried within the window: the ladder does not go
	// back down until the window has passed.
	floor := 0
	rungs := []RecoveryAction{RecoveryISAPIReboot, RecoveryEC2Reboot, RecoveryReplace}
	for i, r := range rungs {
		if s.Count(r, now, b) > 0 {
			floor = i
		}
	}
	for _, r := range rungs[floor:] {
		if r == RecoveryISAPIReboot && h.API != APISick {
			continue
		}
		if s.Count(r, now, b) < b.allowed(r) {
			return r, reasonFor(r, h)
		}
	}
	if !s.GaveUpAt.IsZero() && now.Sub(s.GaveUpAt) < b.Window {
		return RecoveryGivenUp, "the recovery budget is spent and people were told"
	}
	return RecoveryGiveUp, fmt.Sprintf("the recovery budget is spent (%d ISAPI reboot(s), %d EC2 reboot(s), %d replacement(s) in %s) and the gateway is still unhealthy (API %s, instance impaired %t)",
		s.Count(RecoveryISAPIReboot, now, b), s.Count(RecoveryEC2Reboot, now, b), s.Count(RecoveryReplace, now, b), b.Window, h.API, h.InstanceImpaired)
}

func reasonFor(r RecoveryAction, h RecoveryHealth) string {
	switch r {
	case RecoveryISAPIReboot:
		return "the API answers but is unwell: rebooting the gateway software through ISAPI"
	case RecoveryEC2Reboot:
		if h.InstanceImpaired {
			return "the instance's status checks fail: rebooting the instance"
		}
		return fmt.Sprintf("the API is %s: rebooting the instance", h.API)
	default:
		return "reboots did not bring the gateway back: replacing the instance from its newest healthy snapshot"
	}
}
