package app_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/device-watcher/internal/app"
	"mediagw/services/device-watcher/internal/domain"
)

// A gateway awaiting its configuration is not a fault: over many polls
// (five offline hysteresis windows) nothing is stored or announced, the
// gauge says it waits and the credentials one does not. When logins
// resume the gateway is polled at once and its cameras announced; no
// GatewayCredentialsRejected or Accepted ever.
func TestAwaitingConfigurationAnnouncesNothingThenCamerasFlow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway(camera)
		gw.setAwaiting(true)
		st := &fakeStore{}
		pub := newFakePublisher()
		m := &fakeMetrics{}
		_, stop := run(t, app.New(config(), gw, st, newFakeLeases(), pub, m, discard))
		for range 10 {
			<-gw.polls
		}
		synctest.Wait()
		noEvent(t, pub)
		if !m.awaitingConfiguration() || m.credentialsRejected() {
			t.Fatalf("gauges: awaiting %v, credentials rejected %v", m.awaitingConfiguration(), m.credentialsRejected())
		}

		gw.setAwaiting(false)
		synctest.Wait()
		before := time.Now()
		gw.resume <- struct{}{}
		if snap := <-gw.polls; snap.Started.After(before) {
			t.Fatalf("the poll after the resumption started %s later", snap.Started.Sub(before))
		}
		if on, ok := (<-pub.published).(*eventsv1.DeviceOnline); !ok || on.DeviceIndex != camera.Index {
			t.Fatalf("event %v", on)
		}
		for range 3 {
			<-gw.polls
		}
		synctest.Wait()
		noEvent(t, pub)
		if m.awaitingConfiguration() {
			t.Fatal("the gauge still says awaiting the configuration")
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(st.committed) != 1 || st.committed[0].Kind != domain.KindDeviceOnline {
			t.Fatalf("stored %d changes, want the camera online only", len(st.committed))
		}
		gw.mu.Lock()
		defer gw.mu.Unlock()
		if gw.reconfigured != 0 {
			t.Fatalf("Reconfigured called %d times on a lease that notes no configuration", gw.reconfigured)
		}
	})
}

// A camera seen offline just before logins await the configuration (the
// gateway was reset to its factory state) is not reported offline for
// that streak: once logins resume, it needs a whole hysteresis again.
func TestNoOfflineStreakSurvivesTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway(camera)
		pub := newFakePublisher()
		_, stop := run(t, app.New(config(), gw, &fakeStore{}, newFakeLeases(), pub, nil, discard))
		if _, ok := (<-pub.published).(*eventsv1.DeviceOnline); !ok {
			t.Fatal("the camera was not announced first")
		}
		off := camera
		off.Online, off.Channels = false, nil
		gw.setCams(off)
		for snap := <-gw.polls; len(snap.Sightings) == 0 || snap.Sightings[0].Online; snap = <-gw.polls {
		}
		gw.setAwaiting(true)
		for range 10 {
			<-gw.polls
		}
		synctest.Wait()
		noEvent(t, pub)

		gw.setAwaiting(false)
		synctest.Wait()
		resumedAt := time.Now()
		gw.resume <- struct{}{}
		ev, ok := (<-pub.published).(*eventsv1.DeviceOffline)
		if !ok {
			t.Fatalf("event %v, want the camera offline", ev)
		}
		if d := time.Since(resumedAt); d < config().OfflineHysteresis {
			t.Fatalf("offline announced %s after logins resumed, before a whole hysteresis", d)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// A lease that notes a configuration (heard by any instance before) tells
// the gateway before the first poll, so that no login awaits it.
func TestLeaseNotingAConfigurationTellsTheGatewayBeforeTheFirstPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway(camera)
		leases := newFakeLeases()
		leases.configured = time.Now().Add(-time.Hour)
		_, stop := run(t, app.New(config(), gw, &fakeStore{}, leases, newFakePublisher(), nil, discard))
		<-gw.polls
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		gw.mu.Lock()
		defer gw.mu.Unlock()
		if gw.reconfiguredBeforePoll != 1 {
			t.Fatalf("Reconfigured called %d times before the first poll, want 1", gw.reconfiguredBeforePoll)
		}
	})
}

// A noted configuration the gateway could not act on (the parameter store
// or the budget did not answer in time) is acted on at a later renewal,
// not dropped.
func TestANotedConfigurationNotActedOnIsTriedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newFakeGateway(camera)
		gw.reconfigErr = errors.New("budget: context deadline exceeded")
		leases := newFakeLeases()
		leases.configured = time.Now().Add(-time.Hour)
		_, stop := run(t, app.New(config(), gw, &fakeStore{}, leases, newFakePublisher(), nil, discard))
		<-gw.polls
		gw.mu.Lock()
		first := gw.reconfigured
		gw.reconfigErr = nil
		gw.mu.Unlock()
		time.Sleep(leases.Duration()) // fake time: a few renewals
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		gw.mu.Lock()
		defer gw.mu.Unlock()
		if first != 1 || gw.reconfigured != 2 {
			t.Fatalf("Reconfigured called %d times before the error cleared and %d in all, want 1 and 2", first, gw.reconfigured)
		}
	})
}
