package gatewaysim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

func admin(t *testing.T, sim *gatewaysim.Server, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, sim.AdminURL()+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

func TestAdminAPI(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithAdmin(), gatewaysimtest.WithDevices(1, 1))

	var d gatewaysim.Device
	if code := admin(t, sim, "POST", "/admin/devices", `{"name":"Dock","channels":3}`, &d); code != 201 || d.DevIndex == "" || len(d.Channels) != 3 {
		t.Fatalf("add: %d %+v", code, d)
	}
	var list []gatewaysim.Device
	admin(t, sim, "GET", "/admin/devices", "", &list)
	if len(list) != 2 || list[1].Name != "Dock" {
		t.Fatalf("list: %+v", list)
	}
	if code := admin(t, sim, "PUT", "/admin/devices/"+d.DevIndex+"/status", `{"status":"offline"}`, &d); code != 200 || d.Status != gatewaysim.StatusOffline {
		t.Fatalf("status: %d %+v", code, d)
	}
	if code := admin(t, sim, "PUT", "/admin/devices/"+d.DevIndex+"/status", `{"status":"dancing"}`, nil); code != 400 {
		t.Fatalf("bad status: %d", code)
	}
	if code := admin(t, sim, "PUT", "/admin/devices/nope/status", `{"status":"online"}`, nil); code != 404 {
		t.Fatalf("unknown device: %d", code)
	}
	if code := admin(t, sim, "POST", "/admin/devices", `{"devIndex":"`+d.DevIndex+`"}`, nil); code != 409 {
		t.Fatalf("duplicate devIndex: %d", code)
	}

	// Flap: online/offline toggles every 50 ms until stopped.
	if code := admin(t, sim, "PUT", "/admin/devices/"+d.DevIndex+"/flap", `{"period":"50ms"}`, nil); code != 204 {
		t.Fatalf("flap: %d", code)
	}
	seen := map[gatewaysim.DeviceStatus]bool{}
	testkit.Eventually(t, 5*time.Second, 5*time.Millisecond, "the flapping device to be seen both online and offline", func() bool {
		got, _ := sim.Device(d.DevIndex)
		seen[got.Status] = true
		return seen[gatewaysim.StatusOnline] && seen[gatewaysim.StatusOffline]
	})
	admin(t, sim, "PUT", "/admin/devices/"+d.DevIndex+"/flap", `{"period":0}`, nil)

	var f gatewaysim.Fault
	if code := admin(t, sim, "POST", "/admin/faults", `{"path":"/ISAPI/System/*","kind":"latency","latency":"20ms","count":2}`, &f); code != 201 || f.ID == "" || f.Latency != 20*time.Millisecond || f.Remaining != 2 {
		t.Fatalf("fault: %d %+v", code, f)
	}
	if code := admin(t, sim, "POST", "/admin/faults", `{"kind":"explode"}`, nil); code != 400 {
		t.Fatalf("bad fault kind: %d", code)
	}
	var faults []gatewaysim.Fault
	admin(t, sim, "GET", "/admin/faults", "", &faults)
	if len(faults) != 1 {
		t.Fatalf("faults: %+v", faults)
	}
	if code := admin(t, sim, "DELETE", "/admin/faults/"+f.ID, "", nil); code != 204 || len(sim.Faults()) != 0 {
		t.Fatalf("clear fault: %d", code)
	}

	var match map[string]bool
	admin(t, sim, "POST", "/admin/password/check", `{"password":"`+gatewaysimtest.Password+`"}`, &match)
	if !match["match"] {
		t.Fatal("password check failed for the right password")
	}
	var settings map[string]any
	admin(t, sim, "GET", "/admin/settings", "", &settings)
	if settings["timeZone"] != "CST-8:00:00" || settings["deviceName"] == "" {
		t.Fatalf("settings: %v", settings)
	}
	if bytes.Contains(mustJSON(t, settings), []byte(gatewaysimtest.Password)) {
		t.Fatal("settings leak the password")
	}

	var counters gatewaysim.Counters
	admin(t, sim, "GET", "/admin/counters", "", &counters)
	if counters.FailedLogins == nil || counters.Requests == nil {
		t.Fatalf("counters: %+v", counters)
	}

	if code := admin(t, sim, "POST", "/admin/scenario", `{"steps":[{"at":"0s","action":"deleteDevice","device":"Dock"}]}`, nil); code != 202 {
		t.Fatalf("scenario: %d", code)
	}
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, "the scenario to delete Dock", func() bool { _, found := sim.Device(d.DevIndex); return !found })
	if code := admin(t, sim, "POST", "/admin/scenario", `{"steps":[{"action":"fly"}]}`, nil); code != 400 {
		t.Fatalf("bad scenario: %d", code)
	}

	if code := admin(t, sim, "POST", "/admin/reboot", `{"downtime":"200ms"}`, nil); code != 202 {
		t.Fatalf("reboot: %d", code)
	}
	var health map[string]any
	admin(t, sim, "GET", "/admin/healthz", "", &health)
	if health["rebooting"] != true {
		t.Fatalf("health during reboot: %v", health)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := sim.WaitUp(ctx); err != nil {
		t.Fatal(err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAdminMustBeLoopback(t *testing.T) {
	_, err := gatewaysim.Start(t.Context(), gatewaysim.Config{
		HTTPAddr: "127.0.0.1:0", AdminAddr: "0.0.0.0:0", AdminUser: "admin", AdminPassword: "x",
	})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("admin on 0.0.0.0: %v", err)
	}
}

func TestScenarioFile(t *testing.T) {
	yaml := `
steps:
  - {at: 0s, action: addDevice, name: Lobby, channels: 2}
  - at: 50ms
    action: setStatus
    device: Lobby
    status: offline
  - {at: 0.1, action: injectFault, fault: {path: /ISAPI/System/status, kind: httpStatus, httpStatus: 503, count: 2}}
  - {at: 100ms, action: setPassword, password: Other-Pass1}
  - {at: 120ms, action: deleteDevice, device: "Camera 001"}
`
	sc, err := gatewaysim.ParseScenario([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Steps) != 5 || sc.Steps[2].At != 100*time.Millisecond || sc.Steps[2].Fault.HTTPStatus != 503 {
		t.Fatalf("parsed: %+v", sc.Steps)
	}
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithDevices(1, 1), gatewaysimtest.WithConfig(func(c *gatewaysim.Config) { c.Scenario = sc }))
	testkit.Eventually(t, 5*time.Second, 10*time.Millisecond, "the scenario's password change and device changes", func() bool {
		return sim.CheckPassword("Other-Pass1") && len(sim.Devices()) == 1
	})
	devs := sim.Devices()
	if devs[0].Name != "Lobby" || devs[0].Status != gatewaysim.StatusOffline || len(sim.Faults()) != 1 {
		t.Fatalf("after scenario: %+v, faults %+v", devs, sim.Faults())
	}

	for _, bad := range []string{
		`{"steps":[{"action":"setStatus","device":"x","status":"melting"}]}`,
		`{"steps":[{"action":"deleteDevice"}]}`,
		`{"steps":[{"at":"soon","action":"reboot"}]}`,
		`{"steps":[{"action":"reboot","dwontime":"1s"}]}`,
		"steps:\n  - action: injectFault\n    fault: {kind: latency}\n",
		"steps: [",
	} {
		if _, err := gatewaysim.ParseScenario([]byte(bad)); err == nil {
			t.Errorf("accepted scenario %q", bad)
		}
	}
	// A step naming a missing device fails, the others still run.
	sc, _ = gatewaysim.ParseScenario([]byte(`{"steps":[{"action":"deleteDevice","device":"ghost"},{"action":"addDevice","name":"After"}]}`))
	if err := sim.RunScenario(t.Context(), sc); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("RunScenario: %v", err)
	}
	if len(sim.Devices()) != 2 {
		t.Fatalf("devices: %+v", sim.Devices())
	}
}

func TestStreamPath(t *testing.T) {
	if p := gatewaysim.StreamPath("AB-12", 3, true); p != "/Streaming/Channels/AB-12/302" {
		t.Fatalf("StreamPath = %s", p)
	}
}

func TestBasicAuthWhenEnabled(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithConfig(func(c *gatewaysim.Config) { c.AllowBasic = true }))
	req, _ := http.NewRequest("GET", sim.URL()+"/ISAPI/System/status?format=json", nil)
	req.SetBasicAuth(gatewaysimtest.User, gatewaysimtest.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("Basic: %d", resp.StatusCode)
	}
}
