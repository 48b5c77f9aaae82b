package simgateway_test

import (
	"context"
	"testing"
	"time"

	"mediagw/services/health-sentinel/internal/adapters/simgateway"
	"mediagw/services/health-sentinel/internal/domain"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
)

func TestRebootAndReplaceTheSimulatedMachine(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithAdmin(), gatewaysimtest.WithDevices(2, 1))
	s := simgateway.New(sim.AdminURL(), simgateway.Options{Poll: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	sim.Hang()
	st, err := s.Status(ctx, "gw-local")
	if err != nil || st.InstanceID != sim.InstanceID() || st.OK == nil || !*st.OK {
		t.Fatalf("status %+v %v", st, err)
	}
	id, err := s.Reboot(ctx, "gw-local")
	if err != nil || id != sim.InstanceID() {
		t.Fatalf("reboot: %s %v", id, err)
	}
	if err := sim.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
	if sim.Hung() || sim.Counters().Reboots != 1 {
		t.Fatalf("after the reboot: hung %v, reboots %d", sim.Hung(), sim.Counters().Reboots)
	}

	old := sim.InstanceID()
	var saved []domain.Replacement
	save := func(r domain.Replacement) error { saved = append(saved, r); return nil }
	r, err := s.Replace(ctx, "gw-local", "", nil, save)
	if err != nil {
		t.Fatal(err)
	}
	if r.OldInstanceID != old || r.NewInstanceID == old || r.NewInstanceID != sim.InstanceID() || len(saved) != 1 {
		t.Fatalf("replacement %+v, saved %+v, sim %s", r, saved, sim.InstanceID())
	}
	// Continued with what was saved: nothing is replaced again.
	again, err := s.Replace(ctx, "gw-local", "", &r, save)
	if err != nil || again.NewInstanceID != r.NewInstanceID || len(saved) != 1 || sim.InstanceID() != r.NewInstanceID {
		t.Fatalf("again: %+v %v, saved %d", again, err, len(saved))
	}
	if err := s.Retire(ctx, "gw-local", r); err != nil {
		t.Fatal(err)
	}
	if got := sim.Devices(); len(got) != 2 {
		t.Fatalf("cameras after the replacement: %d", len(got))
	}
}

func TestStatusFailsWhenTheSimulatorIsGone(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithAdmin())
	url := sim.AdminURL()
	_ = sim.Close()
	if _, err := simgateway.New(url, simgateway.Options{Timeout: time.Second}).Status(t.Context(), "gw"); err == nil {
		t.Fatal("no error from a simulator that is gone")
	}
}
