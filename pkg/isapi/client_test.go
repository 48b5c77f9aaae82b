package isapi_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mediagw/pkg/hiktz"
	"mediagw/pkg/isapi"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/testkit"
)

const localIP = "127.0.0.1"

func newClient(t *testing.T, sim *gatewaysim.Server, password string, opts ...isapi.Option) *isapi.Client {
	t.Helper()
	c, err := isapi.New(sim.URL(), gatewaysimtest.User, password, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNewRejectsCredentialsInURL(t *testing.T) {
	if _, err := isapi.New("http://admin:secret@127.0.0.1:1", "admin", "secret"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("New with userinfo: err = %v", err)
	}
	if _, err := isapi.New("ftp://x", "a", "b"); err == nil {
		t.Fatal("New accepted a non-http URL")
	}
}

func TestDeviceListPagingAndFilter(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithDevices(7, 2),
		gatewaysimtest.WithConfig(func(c *gatewaysim.Config) { c.MaxResults = 3 }))
	ctx := ctxT(t)
	c := newClient(t, sim, gatewaysimtest.Password)
	devs := sim.Devices()
	if err := sim.SetStatus(devs[1].DevIndex, gatewaysim.StatusOffline); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetStatus(devs[4].DevIndex, gatewaysim.StatusSleep); err != nil {
		t.Fatal(err)
	}

	page, err := c.DeviceList(ctx, isapi.DeviceListQuery{Position: 0, MaxResult: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Devices) != 3 || page.TotalMatches != 7 || !page.More || page.NumOfMatches != 3 {
		t.Fatalf("first page: %d devices, total %d, more %v, num %d", len(page.Devices), page.TotalMatches, page.More, page.NumOfMatches)
	}
	d0 := page.Devices[0]
	if d0.DevIndex != devs[0].DevIndex || d0.Name != devs[0].Name || d0.Status != isapi.DeviceOnline || d0.Channels != 2 || d0.Model == "" || d0.Protocol == "" {
		t.Fatalf("device 0 = %+v, want %+v", d0, devs[0])
	}

	all, err := c.AllDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 7 {
		t.Fatalf("AllDevices: %d devices, want 7", len(all))
	}
	for i, d := range all {
		if d.DevIndex != devs[i].DevIndex {
			t.Fatalf("AllDevices[%d] = %s, want %s (order)", i, d.DevIndex, devs[i].DevIndex)
		}
	}
	if all[1].Status != isapi.DeviceOffline || all[4].Status != isapi.DeviceSleep {
		t.Fatalf("statuses: %s %s", all[1].Status, all[4].Status)
	}

	online, err := c.AllDevices(ctx, isapi.DeviceOnline)
	if err != nil {
		t.Fatal(err)
	}
	if len(online) != 5 {
		t.Fatalf("online: %d, want 5", len(online))
	}
	off, err := c.AllDevices(ctx, isapi.DeviceOffline, isapi.DeviceSleep)
	if err != nil {
		t.Fatal(err)
	}
	if len(off) != 2 || off[0].DevIndex != devs[1].DevIndex || off[1].DevIndex != devs[4].DevIndex {
		t.Fatalf("offline+sleep: %+v", off)
	}

	empty, err := c.DeviceList(ctx, isapi.DeviceListQuery{Position: 100, MaxResult: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Devices) != 0 || empty.TotalMatches != 7 || empty.More {
		t.Fatalf("past the end: %+v", empty)
	}
}

func TestChannelsAndStreamURL(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithDevices(2, 3))
	ctx := ctxT(t)
	c := newClient(t, sim, gatewaysimtest.Password)
	d := sim.Devices()[0]

	chans, err := c.Channels(ctx, d.DevIndex)
	if err != nil {
		t.Fatal(err)
	}
	if len(chans) != 3 || chans[0].ID != 1 || chans[2].ID != 3 || !chans[0].Enabled || chans[0].Name == "" {
		t.Fatalf("channels: %+v", chans)
	}
	if _, err := c.Channels(ctx, "NO-SUCH-DEVICE"); !errors.Is(err, isapi.ErrBadDevIndex) {
		t.Fatalf("unknown devIndex: %v", err)
	}

	main, err := c.StreamURL(ctx, d.DevIndex, 2, isapi.StreamMain)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := c.StreamURL(ctx, d.DevIndex, 2, isapi.StreamSub)
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := "rtsp://"
	if !strings.HasPrefix(main, wantPrefix) || !strings.HasSuffix(main, "/Streaming/Channels/"+d.DevIndex+"/201") ||
		!strings.HasSuffix(sub, "/Streaming/Channels/"+d.DevIndex+"/202") || strings.Contains(main, "@") {
		t.Fatalf("stream URLs: %s %s", main, sub)
	}
	if main != sim.StreamURL(d.DevIndex, 2, false) {
		t.Fatalf("streamMedia %s != simulator StreamURL %s", main, sim.StreamURL(d.DevIndex, 2, false))
	}
	if _, err := c.StreamURL(ctx, d.DevIndex, 9, isapi.StreamMain); !errors.Is(err, isapi.ErrInvalidContent) {
		t.Fatalf("unknown channel: %v", err)
	}
	if err := sim.SetStatus(d.DevIndex, gatewaysim.StatusOffline); err != nil {
		t.Fatal(err)
	}
	_, err = c.StreamURL(ctx, d.DevIndex, 1, isapi.StreamMain)
	var se *isapi.StatusError
	if !errors.Is(err, isapi.ErrDeviceOffline) || !errors.As(err, &se) || se.Status == nil || se.Status.SubStatusCode != "devOffline" {
		t.Fatalf("offline camera: %v", err)
	}
}

func TestDeviceInfoAndName(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	ctx := ctxT(t)
	c := newClient(t, sim, gatewaysimtest.Password)
	info, err := c.DeviceInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.DeviceName != sim.Settings().DeviceName || info.Model == "" || info.DeviceID == "" {
		t.Fatalf("device info: %+v", info)
	}
	rs, err := c.SetDeviceName(ctx, "gw-eu-west-1a-07")
	if err != nil || !rs.OK() {
		t.Fatalf("SetDeviceName: %v %+v", err, rs)
	}
	if got := sim.Settings().DeviceName; got != "gw-eu-west-1a-07" {
		t.Fatalf("simulator name = %q", got)
	}
	if _, err := c.SetDeviceName(ctx, strings.Repeat("x", 65)); !errors.Is(err, isapi.ErrInvalidContent) {
		t.Fatalf("long name: %v", err)
	}
	if got := sim.Counters().Puts["/ISAPI/System/deviceInfo"]; got != 2 {
		t.Fatalf("PUT count = %d, want 2", got)
	}
}

func TestChangePassword(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	ctx := ctxT(t)
	c := newClient(t, sim, gatewaysimtest.Password)

	_, err := c.ChangePassword(ctx, gatewaysimtest.Password)
	var se *isapi.StatusError
	if !errors.As(err, &se) || se.Status.SubStatusCode != "cannotSameAsOldPassword" || !errors.Is(err, isapi.ErrInvalidOperation) {
		t.Fatalf("same as old: %v", err)
	}
	long := "Abcdefgh12345678X"
	_, err = c.ChangePassword(ctx, long)
	if !errors.Is(err, isapi.ErrInvalidContent) || strings.Contains(err.Error(), long) {
		t.Fatalf("17 characters: %v", err)
	}

	const next = "N3w-Secret!"
	rs, err := c.ChangePassword(ctx, next)
	if err != nil || !rs.OK() || rs.RiskyPassword() {
		t.Fatalf("change: %v %+v", err, rs)
	}
	if !sim.CheckPassword(next) {
		t.Fatal("simulator did not take the new password")
	}
	// The client switched at once; the old password is dead on the gateway.
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("after change: %v", err)
	}
	old := newClient(t, sim, gatewaysimtest.Password)
	if _, err := old.Status(ctx); !errors.Is(err, isapi.ErrBadCredentials) {
		t.Fatalf("old password: %v", err)
	}

	rs, err = c.ChangePassword(ctx, "abcdefghij")
	if err != nil || !rs.RiskyPassword() || !sim.CheckPassword("abcdefghij") {
		t.Fatalf("weak password: %v %+v", err, rs)
	}
	if sim.Counters().FailedLogins[localIP] != 1 {
		t.Fatalf("failed logins = %v, want 1 (only the old-password client)", sim.Counters().FailedLogins)
	}
}

func TestWrongPasswordNeverRetried(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	ctx := ctxT(t)
	c := newClient(t, sim, "wrong-password-1")

	for range 20 {
		_, err := c.Status(ctx)
		if !errors.Is(err, isapi.ErrBadCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
		if strings.Contains(err.Error(), "wrong-password-1") {
			t.Fatalf("error message leaks the password: %v", err)
		}
	}
	if n := sim.Counters().FailedLogins[localIP]; n != 1 {
		t.Fatalf("failed logins after a loop of 20 = %d, want 1", n)
	}

	// Concurrent callers with a new wrong password still cost one attempt.
	c.SetCredentials(gatewaysimtest.User, "wrong-password-2")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := c.DeviceInfo(ctx); !errors.Is(err, isapi.ErrBadCredentials) {
					t.Errorf("concurrent wrong password: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if n := sim.Counters().FailedLogins[localIP]; n != 2 {
		t.Fatalf("failed logins after 40 concurrent calls = %d, want 2", n)
	}
	// Going back to the first wrong password does not cost another attempt.
	c.SetCredentials(gatewaysimtest.User, "wrong-password-1")
	_, err := c.Status(ctx)
	var bad *isapi.BadCredentialsError
	if !errors.As(err, &bad) || !bad.FromCache {
		t.Fatalf("known-bad password: %v", err)
	}
	c.SetCredentials(gatewaysimtest.User, gatewaysimtest.Password)
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if n := sim.Counters().FailedLogins[localIP]; n != 2 {
		t.Fatalf("failed logins = %d, want 2", n)
	}
}

func TestLockout(t *testing.T) {
	const lockFor = 30 * time.Minute // the gateway's own, on a clock the test moves
	clock := testkit.NewClock(time.Now())
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithLockout(5, lockFor), gatewaysimtest.WithConfig(func(c *gatewaysim.Config) { c.Now = clock.Now }))
	ctx := ctxT(t)
	c := newClient(t, sim, "wrong-0", isapi.WithClock(clock.Now))
	for i := range 4 {
		c.SetCredentials(gatewaysimtest.User, fmt.Sprintf("wrong-%d", i))
		_, err := c.Status(ctx)
		var bad *isapi.BadCredentialsError
		if !errors.As(err, &bad) || bad.RetryTimes != 4-i {
			t.Fatalf("attempt %d: %v (want %d retries left)", i+1, err, 4-i)
		}
	}
	c.SetCredentials(gatewaysimtest.User, "wrong-4")
	_, err := c.Status(ctx)
	var locked *isapi.LockedError
	if !errors.As(err, &locked) || !locked.PasswordRejected || locked.TimeLeft != lockFor || !errors.Is(err, isapi.ErrBadCredentials) {
		t.Fatalf("5th failure: %v", err)
	}

	// Even the right password is refused while locked.
	good := newClient(t, sim, gatewaysimtest.Password, isapi.WithClock(clock.Now))
	_, err = good.Status(ctx)
	if !errors.As(err, &locked) || locked.PasswordRejected || locked.TimeLeft <= 0 || errors.Is(err, isapi.ErrBadCredentials) {
		t.Fatalf("right password while locked: %v", err)
	}
	// The client remembers the lock and does not knock again.
	before := sim.Counters().Requests["GET /ISAPI/System/status"]
	if _, err := good.Status(ctx); !errors.Is(err, isapi.ErrLocked) {
		t.Fatalf("second call while locked: %v", err)
	}
	if after := sim.Counters().Requests["GET /ISAPI/System/status"]; after != before {
		t.Fatalf("client sent a request while it knew it was locked (%d -> %d)", before, after)
	}
	if n := sim.Counters().Lockouts[localIP]; n != 1 {
		t.Fatalf("lockouts = %d", n)
	}

	clock.Advance(locked.TimeLeft + 100*time.Millisecond)
	if _, err := good.Status(ctx); err != nil {
		t.Fatalf("after the lock expired: %v", err)
	}
	if n := sim.Counters().FailedLogins[localIP]; n != 5 {
		t.Fatalf("failed logins = %d, want 5", n)
	}
}

func TestStaleNonceIsNotAFailedLogin(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithConfig(func(c *gatewaysim.Config) { c.NonceTTL = 300 * time.Millisecond; c.Now = clock.Now }))
	ctx := ctxT(t)
	c := newClient(t, sim, gatewaysimtest.Password, isapi.WithClock(clock.Now))
	for range 3 {
		if _, err := c.Status(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(400 * time.Millisecond) // past the nonce's lifetime
	}
	if n := sim.Counters().FailedLogins[localIP]; n != 0 {
		t.Fatalf("stale nonces counted as failed logins: %d", n)
	}
	// 1 challenge + 1 request, then each later call: stale answer + retry.
	if n := sim.Counters().Requests["GET /ISAPI/System/status"]; n != 6 {
		t.Fatalf("requests = %d, want 6 (the nonce should have gone stale twice)", n)
	}
}

func TestPortMaps(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	ctx := ctxT(t)
	c := newClient(t, sim, gatewaysimtest.Password)

	m, err := c.ContentPortMaps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.PortList) == 0 || len(m.AddrList) == 0 {
		t.Fatalf("content port maps: %+v", m)
	}
	m.Enabled = true
	for i := range m.PortList {
		m.PortList[i].ExternalPort = m.PortList[i].InternalPort
	}
	m.AddrList[0].ExternalIPAddress = "203.0.113.7"
	rs, err := c.SetContentPortMaps(ctx, m)
	if err != nil || !rs.RebootRequired() {
		t.Fatalf("PUT contentMgmt: %v %+v", err, rs)
	}
	set := sim.Settings()
	if !set.ContentPortMaps.Enabled || set.ContentPortMaps.AddrList[0].ExternalIPAddress != "203.0.113.7" || !set.RebootRequired {
		t.Fatalf("simulator content port maps: %+v", set.ContentPortMaps)
	}
	for _, p := range set.ContentPortMaps.PortList {
		if p.ExternalPort != p.InternalPort {
			t.Fatalf("port %+v not mapped 1:1", p)
		}
	}
	m.AddrList[0].ExternalIPAddress = "not-an-ip"
	if _, err := c.SetContentPortMaps(ctx, m); !errors.Is(err, isapi.ErrInvalidContent) {
		t.Fatalf("bad IP: %v", err)
	}

	d, err := c.DevicePortMaps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var singles, ranges int
	for i, p := range d.PortList {
		switch {
		case p.Single != nil:
			singles++
			d.PortList[i].Single.ExternalPort = p.Single.InternalPort
		case p.Range != nil:
			ranges++
			r := d.PortList[i].Range
			r.MinExternalPort, r.MaxExternalPort = r.MinInternalPort, r.MaxInternalPort
		}
	}
	if singles == 0 || ranges == 0 {
		t.Fatalf("device port maps: %+v", d)
	}
	d.Enabled = true
	if rs, err := c.SetDevicePortMaps(ctx, d); err != nil || !rs.RebootRequired() {
		t.Fatalf("PUT devMgmt: %v %+v", err, rs)
	}
	got := sim.Settings().DevicePortMaps
	if !got.Enabled || got.PortList[0].Single.ExternalPort != got.PortList[0].Single.InternalPort {
		t.Fatalf("simulator device port maps: %+v", got)
	}
	d.PortList[0].Single.ExternalPort = 70000
	if _, err := c.SetDevicePortMaps(ctx, d); !errors.Is(err, isapi.ErrInvalidContent) {
		t.Fatalf("bad port: %v", err)
	}
}

func TestTime(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	ctx := ctxT(t)
	c := newClient(t, sim, gatewaysimtest.Password)
	ts, err := c.Time(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ts.Mode != isapi.TimeModeManual || ts.TimeZone != "CST-8:00:00" || !strings.HasSuffix(ts.LocalTime, "+08:00") {
		t.Fatalf("factory time: %+v", ts)
	}
	lt, err := ts.Local()
	if err != nil || time.Since(lt).Abs() > 5*time.Second {
		t.Fatalf("local time %v: %v", lt, err)
	}

	ts.Mode, ts.TimeZone, ts.LocalTime = isapi.TimeModeNTP, hiktz.Format(-5*time.Hour), ""
	if rs, err := c.SetTime(ctx, ts); err != nil || !rs.OK() {
		t.Fatalf("SetTime: %v", err)
	}
	ts, err = c.Time(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if off, _ := ts.UTCOffset(); ts.Mode != "NTP" || ts.TimeZone != "CST+5:00:00" || off != -5*time.Hour || !strings.HasSuffix(ts.LocalTime, "-05:00") {
		t.Fatalf("after SetTime: %+v", ts)
	}
	if set := sim.Settings(); set.TimeMode != "NTP" || set.TimeZone != "CST+5:00:00" {
		t.Fatalf("simulator time settings: %+v", set)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, off := st.CurrentDeviceTime.Zone(); off != -5*3600 {
		t.Fatalf("currentDeviceTime %v not in UTC-5", st.CurrentDeviceTime)
	}
	ts.TimeZone = "nonsense"
	if _, err := c.SetTime(ctx, ts); !errors.Is(err, isapi.ErrInvalidContent) {
		t.Fatalf("bad zone: %v", err)
	}
}

func TestRebootDowntime(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithConfig(func(c *gatewaysim.Config) { c.RebootDowntime = time.Second; c.Now = clock.Now }))
	ctx := ctxT(t)
	c := newClient(t, sim, gatewaysimtest.Password, isapi.WithTimeout(2*time.Second), isapi.WithClock(clock.Now))
	clock.Advance(1100 * time.Millisecond) // an uptime of more than a second
	st, err := c.Status(ctx)
	if err != nil || st.UpTime < time.Second {
		t.Fatalf("status before reboot: %+v %v", st, err)
	}
	if rs, err := c.Reboot(ctx); err != nil || !rs.OK() {
		t.Fatalf("reboot: %v", err)
	}
	refused := false
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, err := c.Status(ctx)
		if err == nil {
			if refused {
				break
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Logf("during reboot: %v", err) // a connection cut mid-request
		} else {
			refused = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !refused {
		t.Fatal("the gateway never refused connections during the reboot")
	}
	st, err = c.Status(ctx)
	if err != nil {
		t.Fatalf("after reboot: %v", err)
	}
	if st.UpTime >= time.Second {
		t.Fatalf("uptime after reboot = %s, want reset", st.UpTime)
	}
	if n := sim.Counters().Reboots; n != 1 {
		t.Fatalf("reboots = %d", n)
	}
	// The reboot invalidated the cached nonce: a stale answer, not a failed login.
	if n := sim.Counters().FailedLogins[localIP]; n != 0 {
		t.Fatalf("failed logins after reboot = %d", n)
	}
}

func TestInjectedFaults(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	ctx := ctxT(t)
	c := newClient(t, sim, gatewaysimtest.Password, isapi.WithTimeout(time.Second))
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	inject := func(f gatewaysim.Fault) {
		t.Helper()
		if f.Count == 0 {
			f.Count = 1
		}
		if f.Path == "" {
			f.Path = "/ISAPI/System/status"
		}
		if _, err := sim.InjectFault(f); err != nil {
			t.Fatal(err)
		}
	}
	var se *isapi.StatusError
	cases := []struct {
		name  string
		fault gatewaysim.Fault
		check func(error) bool
	}{
		{"latency beyond timeout", gatewaysim.Fault{Kind: gatewaysim.FaultLatency, Latency: 1500 * time.Millisecond},
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{"latency within timeout", gatewaysim.Fault{Kind: gatewaysim.FaultLatency, Latency: 200 * time.Millisecond},
			func(err error) bool { return err == nil }},
		{"500", gatewaysim.Fault{Kind: gatewaysim.FaultHTTPStatus},
			func(err error) bool {
				return errors.Is(err, isapi.ErrDeviceError) && errors.As(err, &se) && se.HTTPStatus == 500 && se.Status == nil
			}},
		{"503", gatewaysim.Fault{Kind: gatewaysim.FaultHTTPStatus, HTTPStatus: 503},
			func(err error) bool { return errors.Is(err, isapi.ErrBusy) }},
		{"200 with error status", gatewaysim.Fault{Kind: gatewaysim.FaultErrorStatus, StatusCode: 2},
			func(err error) bool {
				return errors.Is(err, isapi.ErrBusy) && errors.As(err, &se) && se.HTTPStatus == 200 && se.Status.StatusCode == 2
			}},
		{"xml status", gatewaysim.Fault{Kind: gatewaysim.FaultXMLStatus, StatusCode: 4, SubStatusCode: "notSupport"},
			func(err error) bool {
				return errors.Is(err, isapi.ErrNotSupported) && errors.As(err, &se) && se.HTTPStatus == 403 && se.Status.SubStatusCode == "notSupport"
			}},
		{"malformed", gatewaysim.Fault{Kind: gatewaysim.FaultMalformed},
			func(err error) bool { return errors.Is(err, isapi.ErrMalformedResponse) }},
		{"truncated", gatewaysim.Fault{Kind: gatewaysim.FaultTruncated},
			func(err error) bool { return errors.Is(err, isapi.ErrMalformedResponse) }},
		// One drop is one error: the client's requests carry credentials,
		// and net/http must not re-send them on a new connection.
		{"drop", gatewaysim.Fault{Kind: gatewaysim.FaultDrop},
			func(err error) bool { return err != nil && !errors.Is(err, isapi.ErrBadCredentials) }},
	}
	for _, tc := range cases {
		inject(tc.fault)
		_, err := c.Status(ctx)
		if !tc.check(err) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		// The fault is used up: the next request is healthy again.
		if _, err := c.Status(ctx); err != nil {
			t.Errorf("%s: request after the fault: %v", tc.name, err)
		}
	}
	// Writes see faults too: a PUT answered 200 + deviceError is an error.
	inject(gatewaysim.Fault{Path: "/ISAPI/System/*", Method: "PUT", Kind: gatewaysim.FaultErrorStatus})
	if _, err := c.SetDeviceName(ctx, "x1"); !errors.Is(err, isapi.ErrDeviceError) {
		t.Errorf("PUT with 200+error: %v", err)
	}
	if n := sim.Counters().FailedLogins[localIP]; n != 0 {
		t.Fatalf("faults caused failed logins: %d", n)
	}
	if len(sim.Faults()) != 0 {
		t.Fatalf("faults left: %+v", sim.Faults())
	}
}

// A password refused before the change that installs it must be usable
// afterwards: the refusal is about the old state of the gateway.
func TestPasswordRefusedBeforeChangeWorksAfterIt(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	ctx := ctxT(t)
	const desired = "Desired-Pass9"
	c := newClient(t, sim, desired)
	if _, err := c.Status(ctx); !errors.Is(err, isapi.ErrBadCredentials) {
		t.Fatalf("desired password before the change: %v", err)
	}
	c.SetCredentials(gatewaysimtest.User, gatewaysimtest.Password)
	if _, err := c.ChangePassword(ctx, desired); err != nil {
		t.Fatal(err)
	}
	c.SetCredentials(gatewaysimtest.User, desired)
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("desired password after the change: %v", err)
	}
	if n := sim.Counters().FailedLogins[localIP]; n != 1 {
		t.Fatalf("failed logins = %d, want 1", n)
	}
}
