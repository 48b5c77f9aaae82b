package domain

import (
	"slices"
	"time"
)

// Policy shapes restarts of dying tasks.
type Policy struct {
	// RestartInitial is the wait before the first restart; it doubles per
	// failure in the streak up to RestartMax.
	RestartInitial time.Duration
	RestartMax     time.Duration
	// MaxFailures within FailureWindow make the manager give up: it alerts
	// and waits GiveUpCooldown before trying again.
	MaxFailures    int
	FailureWindow  time.Duration
	GiveUpCooldown time.Duration
	// LaunchGrace is how long a launch intent may stay unconfirmed, and how
	// young a task may be and still be missing from the launcher's list,
	// before the manager acts on it.
	LaunchGrace time.Duration
}

// DefaultPolicy is the production policy.
func DefaultPolicy() Policy {
	return Policy{
		RestartInitial: 2 * time.Second, RestartMax: 5 * time.Minute,
		MaxFailures: 5, FailureWindow: 10 * time.Minute, GiveUpCooldown: 30 * time.Minute,
		LaunchGrace: 2 * time.Minute,
	}
}

// Delay is the wait before the restart after the n-th failure of a streak.
func (p Policy) Delay(n int) time.Duration {
	d := p.RestartInitial
	for i := 1; i < n && d < p.RestartMax; i++ {
		d *= 2
	}
	return min(d, p.RestartMax)
}

// StepKind is what a device needs next.
type StepKind int

// Steps.
const (
	StepNone   StepKind = iota
	StepStart           // launch a task
	StepStop            // stop Task
	StepDelete          // remove the row
	StepWait            // nothing until Until, then plan again
)

func (k StepKind) String() string {
	return [...]string{"none", "start", "stop", "delete", "wait"}[k]
}

// Step is the next action for a device.
type Step struct {
	Kind   StepKind
	Task   *Task     // for StepStop
	Until  time.Time // for StepWait
	Reason string    // why, for StepStop (the task's stopped reason) and logs
}

// Plan says what the device needs now.
func Plan(d Device, now time.Time, p Policy) Step {
	switch d.Want {
	case WantRecord:
		switch {
		case d.Task != nil && d.Status == StatusStopping:
			return Step{Kind: StepStop, Task: d.Task, Reason: d.LastReason}
		case d.Task != nil && !slices.Equal(d.Task.Channels, ChannelNumbers(d.Channels)):
			return Step{Kind: StepStop, Task: d.Task, Reason: "channels changed; replacing the task"}
		case d.Task != nil:
			return Step{Kind: StepNone}
		case d.Status == StatusStarting && now.Before(d.TokenAt.Add(p.LaunchGrace)):
			// Another worker is launching; its confirmation or the grace decides.
			return Step{Kind: StepWait, Until: d.TokenAt.Add(p.LaunchGrace)}
		case (d.Status == StatusBackoff || d.Status == StatusGaveUp) && now.Before(d.NextAttempt):
			return Step{Kind: StepWait, Until: d.NextAttempt}
		case len(d.Channels) == 0:
			return Step{Kind: StepNone, Reason: "no channels to record"}
		default:
			return Step{Kind: StepStart}
		}
	case WantStop, WantDelete:
		if d.Task != nil {
			reason := "device offline"
			if d.Want == WantDelete {
				reason = "device deleted"
			}
			return Step{Kind: StepStop, Task: d.Task, Reason: reason}
		}
		if d.Want == WantDelete {
			return Step{Kind: StepDelete}
		}
	}
	return Step{Kind: StepNone}
}

// BeginStart stores the intent to launch a task named by token.
func BeginStart(d Device, token string, now time.Time) Device {
	d.Status, d.Token, d.TokenAt, d.Task = StatusStarting, token, now, nil
	return d
}

// Launched records the task the launcher started for token. It returns
// false when the device has moved on (another launch, a stop): the task is
// then an orphan and must be stopped.
func Launched(d Device, token string, t Task) (Device, bool) {
	if d.Task != nil && d.Task.ID == t.ID {
		return d, true // recorded already (by reconciliation's adoption)
	}
	if d.Token != token || d.Task != nil || d.Status != StatusStarting {
		return d, false
	}
	d.Task = &t
	d.Status = StatusRunning
	return d, true
}

// BeginStop marks the device's task as being stopped on purpose.
func BeginStop(d Device, reason string) Device {
	if d.Task != nil {
		d.Status = StatusStopping
		d.LastReason = reason
	}
	return d
}

// StopRequested records that the launcher accepted the stop of taskID: the
// task is no longer the device's, and its final state change is expected.
func StopRequested(d Device, taskID string) (Device, bool) {
	if d.Task == nil || d.Task.ID != taskID {
		return d, false
	}
	d.Task, d.Status, d.Token = nil, StatusIdle, ""
	return d, true
}

// TaskEnd is a task's final state change.
type TaskEnd struct {
	TaskID   string
	ExitCode int32 // -1 unknown
	Reason   string
	// Expected is set for ends that say nothing about the task's health
	// (the manager itself shut down): restart at once, count no failure.
	Expected bool
}

// Outcome is what a task end meant.
type Outcome struct {
	Kind     OutcomeKind
	Failures int       // failures in the streak, this one included
	RetryAt  time.Time // when the next start is due (Failed)
	GaveUp   bool      // this failure made the manager give up: alert
}

// OutcomeKind classifies a task end.
type OutcomeKind int

// Outcome kinds.
const (
	// NotCurrent: the task is not (or no longer) the device's; nothing changes.
	NotCurrent OutcomeKind = iota
	// Expected: the task was being stopped, or was not wanted any more.
	Expected
	// Failed: the task died on its own while the device should record.
	Failed
)

// TaskEnded applies a task's end. Ends of tasks other than the device's
// current one (late events of replaced tasks, duplicates) change nothing.
func TaskEnded(d Device, e TaskEnd, now time.Time, p Policy) (Device, Outcome) {
	if d.Task == nil || d.Task.ID != e.TaskID {
		return d, Outcome{Kind: NotCurrent}
	}
	d.LastExit, d.LastReason = e.ExitCode, e.Reason
	if d.Status == StatusStopping || d.Want != WantRecord || e.Expected {
		d.Task, d.Status, d.Token = nil, StatusIdle, ""
		return d, Outcome{Kind: Expected}
	}
	return fail(d, now, p)
}

// LaunchFailed records that the launcher refused to start the task named
// by token; it counts as a failure of the streak.
func LaunchFailed(d Device, token, reason string, now time.Time, p Policy) (Device, Outcome, bool) {
	if d.Token != token || d.Task != nil || d.Status != StatusStarting {
		return d, Outcome{Kind: NotCurrent}, false
	}
	d.LastExit, d.LastReason = -1, reason
	d, o := fail(d, now, p)
	return d, o, true
}

func fail(d Device, now time.Time, p Policy) (Device, Outcome) {
	d.Task, d.Token = nil, ""
	kept := d.Failures[:0:0]
	for _, f := range d.Failures {
		if now.Sub(f) < p.FailureWindow {
			kept = append(kept, f)
		}
	}
	d.Failures = append(kept, now)
	n := len(d.Failures)
	if n >= p.MaxFailures {
		d.Status, d.NextAttempt = StatusGaveUp, now.Add(p.GiveUpCooldown)
		return d, Outcome{Kind: Failed, Failures: n, RetryAt: d.NextAttempt, GaveUp: true}
	}
	d.Status, d.NextAttempt = StatusBackoff, now.Add(p.Delay(n))
	return d, Outcome{Kind: Failed, Failures: n, RetryAt: d.NextAttempt}
}
