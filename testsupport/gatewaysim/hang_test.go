package gatewaysim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"mediagw/pkg/isapi"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
)

func client(t *testing.T, sim *gatewaysim.Server) *isapi.Client {
	t.Helper()
	c, err := isapi.New(sim.URL(), gatewaysimtest.User, gatewaysimtest.Password, isapi.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHangEndsWithAReboot(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithAdmin(), gatewaysimtest.WithDevices(2, 1))
	c := client(t, sim)
	ctx := t.Context()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	devices := sim.Devices()

	var health map[string]any
	if code := admin(t, sim, "POST", "/admin/hang", "", nil); code != 204 {
		t.Fatalf("hang: %d", code)
	}
	admin(t, sim, "GET", "/admin/healthz", "", &health)
	if health["hung"] != true {
		t.Fatalf("healthz while hung: %v", health)
	}
	// Asked while hung: no answer within the client's timeout.
	if _, err := c.Status(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("status while hung: %v, want a timeout", err)
	}
	// A reboot through the admin API ends the hang; the cameras are back.
	if code := admin(t, sim, "POST", "/admin/reboot", `{"downtime":"100ms"}`, nil); code != 202 {
		t.Fatalf("reboot: %d", code)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sim.WaitUp(wctx); err != nil {
		t.Fatal(err)
	}
	after, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("status after the reboot: %v", err)
	}
	if after.UpTime >= st.UpTime+time.Minute || sim.Hung() {
		t.Fatalf("after the reboot: uptime %s, hung %v", after.UpTime, sim.Hung())
	}
	if got := sim.Devices(); len(got) != len(devices) || got[0].Status != gatewaysim.StatusOnline {
		t.Fatalf("devices after the reboot: %+v", got)
	}
	// Unhang without a reboot answers what hangs.
	sim.Hang()
	done := make(chan error, 1)
	slow, _ := isapi.New(sim.URL(), gatewaysimtest.User, gatewaysimtest.Password, isapi.WithTimeout(10*time.Second))
	key := "GET " + gatewaysim.PathStatus
	seen := sim.Counters().Requests[key]
	go func() { _, err := slow.Status(ctx); done <- err }()
	// Lifted only once the request is held (counted on arrival).
	for sim.Counters().Requests[key] == seen {
		select {
		case err := <-done:
			t.Fatalf("answered while hung: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	admin(t, sim, "DELETE", "/admin/hang", "", nil)
	if err := <-done; err != nil {
		t.Fatalf("a request held by the hang, after Unhang: %v", err)
	}
}

func TestReplaceGivesANewMachineWithTheSameGateway(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithAdmin(), gatewaysimtest.WithDevices(2, 1))
	c := client(t, sim)
	ctx := t.Context()
	old := sim.InstanceID()
	if _, err := sim.InjectFault(gatewaysim.Fault{Path: "*", Kind: gatewaysim.FaultHTTPStatus, HTTPStatus: 500}); err != nil {
		t.Fatal(err)
	}
	sim.Hang()
	devices := sim.Devices()
	var out struct {
		InstanceID string `json:"instanceId"`
	}
	if code := admin(t, sim, "POST", "/admin/replace", `{"downtime":"100ms"}`, &out); code != 202 || out.InstanceID == "" || out.InstanceID == old {
		t.Fatalf("replace: %d %+v (old %s)", code, out, old)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sim.WaitUp(wctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("status on the new machine: %v (faults and hang must be gone)", err)
	}
	var health map[string]any
	admin(t, sim, "GET", "/admin/healthz", "", &health)
	if health["instanceId"] != out.InstanceID || health["hung"] != false {
		t.Fatalf("healthz after replace: %v", health)
	}
	if got := sim.Devices(); len(got) != len(devices) || got[0].DevIndex != devices[0].DevIndex {
		t.Fatalf("devices after the replacement: %+v, want %+v", got, devices)
	}
}
