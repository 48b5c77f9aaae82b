package domain

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func budget() RecoveryBudget { return DefaultRecoveryBudget() }

func TestLadderClimbsAndGivesUpOnce(t *testing.T) {
	b := budget()
	sick := RecoveryHealth{API: APISick}
	var s RecoveryState
	now := t0
	want := []RecoveryAction{RecoveryISAPIReboot, RecoveryEC2Reboot, RecoveryReplace, RecoveryGiveUp}
	for _, w := range want {
		got, reason := NextRecoveryAction(sick, s, b, now)
		if got != w {
			t.Fatalf("at %s: %s (%s), want %s", now, got, reason, w)
		}
		if reason == "" {
			t.Fatalf("%s without a reason", got)
		}
		if got == RecoveryGiveUp {
			s.GaveUpAt = now
		} else {
			s.Attempts = append(s.Attempts, RecoveryAttempt{Action: got, Started: now, Outcome: "failed"})
		}
		now = now.Add(10 * time.Minute)
	}
	if got, _ := NextRecoveryAction(sick, s, b, now); got != RecoveryGivenUp {
		t.Fatalf("after giving up: %s, want %s (people are told once)", got, RecoveryGivenUp)
	}
	// The window passes: the budget is whole again and the ladder starts at the bottom.
	later := t0.Add(b.Window + time.Hour)
	s.Prune(later, b)
	if len(s.Attempts) != 0 || !s.GaveUpAt.IsZero() {
		t.Fatalf("prune kept %+v", s)
	}
	if got, _ := NextRecoveryAction(sick, s, b, later); got != RecoveryISAPIReboot {
		t.Fatalf("after the window: %s, want %s", got, RecoveryISAPIReboot)
	}
}

func TestSilentAPISkipsTheISAPIReboot(t *testing.T) {
	got, _ := NextRecoveryAction(RecoveryHealth{API: APISilent}, RecoveryState{}, budget(), t0)
	if got != RecoveryEC2Reboot {
		t.Fatalf("silent API: %s, want %s", got, RecoveryEC2Reboot)
	}
	got, _ = NextRecoveryAction(RecoveryHealth{API: APIOK, InstanceImpaired: true}, RecoveryState{}, budget(), t0)
	if got != RecoveryEC2Reboot {
		t.Fatalf("impaired instance: %s, want %s", got, RecoveryEC2Reboot)
	}
}

func TestNoActionWhenHealthyOrUnknown(t *testing.T) {
	for _, h := range []RecoveryHealth{{API: APIOK}, {API: APIUnknown}} {
		if got, _ := NextRecoveryAction(h, RecoveryState{}, budget(), t0); got != RecoveryNone {
			t.Fatalf("%+v: %s, want none", h, got)
		}
	}
	// Unknown API but an impaired instance: the instance is acted on.
	if got, _ := NextRecoveryAction(RecoveryHealth{API: APIUnknown, InstanceImpaired: true}, RecoveryState{}, budget(), t0); got != RecoveryEC2Reboot {
		t.Fatalf("unknown API, impaired instance: %s", got)
	}
}

func TestLadderDoesNotGoBackDownWithinTheWindow(t *testing.T) {
	// An EC2 reboot was tried (the API was silent); now the API answers
	// sick: the ISAPI reboot is below the rung already tried.
	s := RecoveryState{Attempts: []RecoveryAttempt{{Action: RecoveryEC2Reboot, Started: t0, Outcome: "failed"}}}
	if got, _ := NextRecoveryAction(RecoveryHealth{API: APISick}, s, budget(), t0.Add(time.Minute)); got != RecoveryReplace {
		t.Fatalf("got %s, want %s", got, RecoveryReplace)
	}
}

func TestReplacementUnderWayIsContinued(t *testing.T) {
	s := RecoveryState{Replacement: &Replacement{OldInstanceID: "i-old", NewInstanceID: "i-new"},
		Attempts: []RecoveryAttempt{{Action: RecoveryReplace, Started: t0}}}
	// Even healthy (the new instance answers through the address) and even
	// with the budget spent: a half-done replacement is finished.
	if got, _ := NextRecoveryAction(RecoveryHealth{API: APIOK}, s, budget(), t0.Add(time.Minute)); got != RecoveryReplace {
		t.Fatalf("got %s, want %s", got, RecoveryReplace)
	}
	if !s.Active() {
		t.Fatal("a replacement under way is not Active")
	}
}

func TestZeroBudgetGivesUpAtOnce(t *testing.T) {
	b := budget()
	b.ISAPIReboots, b.EC2Reboots, b.Replacements = 0, 0, 0
	if got, _ := NextRecoveryAction(RecoveryHealth{API: APISilent}, RecoveryState{}, b, t0); got != RecoveryGiveUp {
		t.Fatalf("got %s, want give-up", got)
	}
}

func TestBudgetValidate(t *testing.T) {
	if err := budget().Validate(); err != nil {
		t.Fatal(err)
	}
	b := budget()
	b.Window = 0
	if b.Validate() == nil {
		t.Fatal("zero window accepted")
	}
	b = budget()
	b.EC2Reboots = -1
	if b.Validate() == nil {
		t.Fatal("negative count accepted")
	}
}

func TestStaleReplacementIsNotContinued(t *testing.T) {
	b := budget()
	s := RecoveryState{Replacement: &Replacement{OldInstanceID: "i-old"},
		Attempts: []RecoveryAttempt{{Action: RecoveryReplace, Started: t0}}}
	later := t0.Add(2*b.StepWaitReplace + time.Second)
	if !s.ReplacementStale(later, b) {
		t.Fatal("not stale after twice its wait")
	}
	// Budget spent (one replacement in the window): people are told.
	if got, _ := NextRecoveryAction(RecoveryHealth{API: APISilent}, s, b, later); got != RecoveryGiveUp {
		t.Fatalf("got %s, want give-up", got)
	}
}
