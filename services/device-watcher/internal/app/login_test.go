package app_test

import (
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/device-watcher/internal/app"
	"mediagw/services/device-watcher/internal/domain"
)

var rejected = domain.LoginRefusal{Reason: "credentials-rejected", Credential: "/mediagw/gateways/gw-1/Password@1", FailedLogins: 1,
	Detail: "the gateway rejected the password of /mediagw/gateways/gw-1/Password@1; it is not tried again until the parameter changes"}

// Logins stop: GatewayCredentialsRejected is announced once, the gauge
// says so, and over many polls (longer than the offline hysteresis) no
// camera is reported offline or deleted. When logins resume the gateway
// is polled at once, and its first accepted login announces
// GatewayCredentialsAccepted, once.
func TestCredentialsRejectedOnceAcceptedOnceNoCameraDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway(camera)
		st := &fakeStore{}
		pub := newFakePublisher()
		m := &fakeMetrics{}
		_, stop := run(t, app.New(config(), gw, st, newFakeLeases(), pub, m, discard))
		if _, ok := (<-pub.published).(*eventsv1.DeviceOnline); !ok {
			t.Fatal("the camera was not announced first")
		}

		gw.setRefused(&rejected, "")
		ev := (<-pub.published).(*eventsv1.GatewayCredentialsRejected)
		if ev.GatewayId != "gw-1" || ev.Component != "device-watcher" || ev.Reason != rejected.Reason || ev.Credential != rejected.Credential ||
			ev.FailedLogins != 1 || ev.Detail != rejected.Detail || ev.Until != nil || ev.Meta.GetId() == "" {
			t.Fatalf("event %v", ev)
		}
		// Ten refused polls, five times the hysteresis.
		for range 10 {
			<-gw.polls
		}
		synctest.Wait()
		noEvent(t, pub)
		if !m.credentialsRejected() {
			t.Fatal("the gauge does not say credentials-rejected")
		}

		// Logins resume (a new version): polled at once, not at the tick.
		gw.setRefused(nil, "/mediagw/gateways/gw-1/Password@2")
		synctest.Wait()
		before := time.Now()
		gw.resume <- struct{}{}
		if snap := <-gw.polls; snap.Started.After(before) {
			t.Fatalf("the poll after the resumption started %s later", snap.Started.Sub(before))
		}
		acc := (<-pub.published).(*eventsv1.GatewayCredentialsAccepted)
		if acc.GatewayId != "gw-1" || acc.Component != "device-watcher" || acc.Credential != "/mediagw/gateways/gw-1/Password@2" {
			t.Fatalf("event %v", acc)
		}
		for range 3 {
			<-gw.polls
		}
		synctest.Wait()
		noEvent(t, pub)
		if m.credentialsRejected() {
			t.Fatal("the gauge still says credentials-rejected")
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		var got []domain.Kind
		for _, c := range st.committed {
			got = append(got, c.Kind)
		}
		if len(got) != 3 || got[1] != domain.KindGatewayCredentialsRejected || got[2] != domain.KindGatewayCredentialsAccepted {
			t.Fatalf("stored %v", got)
		}
	})
}

func noEvent(t *testing.T, pub *fakePublisher) {
	t.Helper()
	select {
	case ev := <-pub.published:
		t.Fatalf("unexpected %s: %v", app.EventType(ev), proto.Message(ev))
	default:
	}
}
