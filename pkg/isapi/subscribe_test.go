package isapi_test

import (
	"context"
	"testing"
	"time"

	"mediagw/pkg/isapi"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
)

// streamT reads a subscription and skips heartbeats unless asked for.
type streamT struct {
	t  *testing.T
	ch <-chan isapi.StreamMessage
}

func subscribe(t *testing.T, c *isapi.Client, opts isapi.SubscribeOptions) *streamT {
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.SubscribeDeviceMgmt(ctx, opts)
	t.Cleanup(func() {
		cancel()
		for range ch { // wait for the reader goroutine to finish
		}
	})
	return &streamT{t: t, ch: ch}
}

func (s *streamT) next(skip ...isapi.StreamKind) isapi.StreamMessage {
	s.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, open := <-s.ch:
			if !open {
				s.t.Fatal("stream closed")
			}
			skipped := false
			for _, k := range skip {
				if m.Kind == k {
					skipped = true
				}
			}
			if !skipped {
				return m
			}
		case <-timeout:
			s.t.Fatal("no stream message within 10s")
		}
	}
}

func (s *streamT) want(kind isapi.StreamKind, skip ...isapi.StreamKind) isapi.StreamMessage {
	s.t.Helper()
	m := s.next(skip...)
	if m.Kind != kind {
		s.t.Fatalf("got %s (%+v, err %v), want %s", m.Kind, m.Event, m.Err, kind)
	}
	return m
}

func (s *streamT) wantEvent(typ isapi.EventType, devIndex string) *isapi.DeviceEvent {
	s.t.Helper()
	m := s.want(isapi.KindEvent, isapi.KindHeartbeat)
	if m.Event.Type != typ || m.Event.DevIndex != devIndex {
		s.t.Fatalf("event %+v, want %s of %s", m.Event, typ, devIndex)
	}
	return m.Event
}

func TestSubscriptionReportsChangesInOrder(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithDevices(1, 1))
	c := newClient(t, sim, gatewaysimtest.Password)
	s := subscribe(t, c, isapi.SubscribeOptions{HeartbeatTimeout: 3 * time.Second})
	s.want(isapi.KindConnected)
	hb := s.want(isapi.KindHeartbeat)
	if time.Since(hb.Time).Abs() > 5*time.Second {
		t.Fatalf("heartbeat time %v", hb.Time)
	}

	d, err := sim.AddDevice(gatewaysim.DeviceSpec{Name: "Lobby", Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.SetStatus(d.DevIndex, gatewaysim.StatusOffline); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetStatus(d.DevIndex, gatewaysim.StatusOnline); err != nil {
		t.Fatal(err)
	}
	if err := sim.SetStatus(d.DevIndex, gatewaysim.StatusSleep); err != nil {
		t.Fatal(err)
	}
	if err := sim.DeleteDevice(d.DevIndex); err != nil {
		t.Fatal(err)
	}
	added := s.wantEvent(isapi.EventAdded, d.DevIndex)
	if added.DevName != "Lobby" || added.Status != isapi.DeviceOnline || added.Seq == 0 || added.Time.IsZero() {
		t.Fatalf("added event: %+v", added)
	}
	off := s.wantEvent(isapi.EventOffline, d.DevIndex)
	on := s.wantEvent(isapi.EventOnline, d.DevIndex)
	s.wantEvent(isapi.EventSleep, d.DevIndex)
	removed := s.wantEvent(isapi.EventRemoved, d.DevIndex)
	if !(added.Seq < off.Seq && off.Seq < on.Seq && on.Seq < removed.Seq) {
		t.Fatalf("sequence numbers out of order: %d %d %d %d", added.Seq, off.Seq, on.Seq, removed.Seq)
	}
	// Heartbeats keep coming (every 500 ms in gatewaysimtest).
	s.want(isapi.KindHeartbeat)
	s.want(isapi.KindHeartbeat)
}

func TestSubscriptionReconnects(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithDevices(1, 1))
	c := newClient(t, sim, gatewaysimtest.Password)
	s := subscribe(t, c, isapi.SubscribeOptions{InitialBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	s.want(isapi.KindConnected)
	dev := sim.Devices()[0]

	// Cut by the gateway (e.g. a slow reader dropped): reconnect.
	if n := sim.DropSubscribers(); n != 1 {
		t.Fatalf("dropped %d subscribers", n)
	}
	if m := s.want(isapi.KindDisconnected, isapi.KindHeartbeat); m.Err == nil || m.RetryIn <= 0 {
		t.Fatalf("disconnect message: %+v", m)
	}
	s.want(isapi.KindConnected)
	if err := sim.SetStatus(dev.DevIndex, gatewaysim.StatusOffline); err != nil {
		t.Fatal(err)
	}
	s.wantEvent(isapi.EventOffline, dev.DevIndex)

	// A malformed part is reported and skipped; the stream goes on.
	if _, err := sim.InjectFault(gatewaysim.Fault{Path: "/ISAPI/Event/*", Kind: gatewaysim.FaultMalformed, Count: 1}); err != nil {
		t.Fatal(err)
	}
	sim.DropSubscribers()
	s.want(isapi.KindDisconnected, isapi.KindHeartbeat)
	s.want(isapi.KindConnected)
	s.want(isapi.KindMalformed, isapi.KindHeartbeat)
	if err := sim.SetStatus(dev.DevIndex, gatewaysim.StatusOnline); err != nil {
		t.Fatal(err)
	}
	s.wantEvent(isapi.EventOnline, dev.DevIndex)

	// A truncated part ends that connection; the reader comes back.
	if _, err := sim.InjectFault(gatewaysim.Fault{Path: "/ISAPI/Event/*", Kind: gatewaysim.FaultTruncated, Count: 1}); err != nil {
		t.Fatal(err)
	}
	sim.DropSubscribers()
	s.want(isapi.KindDisconnected, isapi.KindHeartbeat)
	s.want(isapi.KindConnected)
	s.want(isapi.KindDisconnected, isapi.KindHeartbeat)
	s.want(isapi.KindConnected)

	// A 503 on subscribe is a failed attempt, retried.
	if _, err := sim.InjectFault(gatewaysim.Fault{Path: "/ISAPI/Event/*", Kind: gatewaysim.FaultHTTPStatus, HTTPStatus: 503, Count: 1}); err != nil {
		t.Fatal(err)
	}
	sim.DropSubscribers()
	s.want(isapi.KindDisconnected, isapi.KindHeartbeat)
	if m := s.want(isapi.KindDisconnected); m.Err == nil {
		t.Fatal("503 not reported")
	}
	s.want(isapi.KindConnected)

	// A reboot: refused for a while, then back.
	sim.Reboot(700 * time.Millisecond)
	s.want(isapi.KindDisconnected, isapi.KindHeartbeat)
	var refusals int
	for {
		m := s.next(isapi.KindHeartbeat)
		if m.Kind == isapi.KindConnected {
			break
		}
		if m.Kind != isapi.KindDisconnected {
			t.Fatalf("during reboot: %s", m.Kind)
		}
		refusals++
	}
	if refusals == 0 {
		t.Fatal("no failed reconnect during the reboot downtime")
	}
	if err := sim.DeleteDevice(dev.DevIndex); err != nil {
		t.Fatal(err)
	}
	s.wantEvent(isapi.EventRemoved, dev.DevIndex)
}

func TestSubscriptionHeartbeatTimeout(t *testing.T) {
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithConfig(func(c *gatewaysim.Config) { c.HeartbeatInterval = 2 * time.Second }))
	c := newClient(t, sim, gatewaysimtest.Password)
	s := subscribe(t, c, isapi.SubscribeOptions{HeartbeatTimeout: 300 * time.Millisecond, InitialBackoff: 50 * time.Millisecond})
	s.want(isapi.KindConnected)
	s.want(isapi.KindHeartbeat)
	if m := s.want(isapi.KindHeartbeatTimeout); m.Err != isapi.ErrHeartbeatTimeout {
		t.Fatalf("timeout message: %+v", m)
	}
	s.want(isapi.KindDisconnected)
	s.want(isapi.KindConnected)
}

func TestSubscriptionWithWrongPasswordCostsOneLogin(t *testing.T) {
	sim := gatewaysimtest.Start(t)
	c := newClient(t, sim, "not-the-password")
	s := subscribe(t, c, isapi.SubscribeOptions{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	for range 10 {
		m := s.want(isapi.KindDisconnected)
		if m.Err == nil {
			t.Fatal("no error")
		}
	}
	if n := sim.Counters().FailedLogins[localIP]; n != 1 {
		t.Fatalf("failed logins = %d, want 1", n)
	}
	c.SetCredentials(gatewaysimtest.User, gatewaysimtest.Password)
	s.want(isapi.KindConnected, isapi.KindDisconnected)
}
