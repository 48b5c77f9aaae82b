package app_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/loginbudget"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
)

// resumer is a Resumer on the fixture, publishing to pub.
func (f *fixture) resumer(pub *recordingPublisher) *app.Resumer {
	return app.NewResumer(f.conf, app.NewReporter(f.conf, pub), 15*time.Second)
}

func eventTypes(evs []proto.Message) string {
	var names []string
	for _, ev := range evs {
		names = append(names, string(ev.ProtoReflect().Descriptor().Name()))
	}
	return strings.Join(names, ",")
}

// A configuration pending on a rejected password waits without a login;
// a new version of the parameter resumes it at the next look.
func TestResumeOnANewParameterVersion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const actual = "Gw-Actual-2026"
		f := newFixture(t, actual, nil)
		delete(f.params.params, domain.ParamBootstrapPassword)
		pub := &recordingPublisher{}
		if err := app.NewReporter(f.conf, pub).ConfigureAndReport(t.Context(), f.req); err != nil {
			t.Fatalf("a reported credentials failure is done: %v", err)
		}
		if got := eventTypes(pub.events); got != "GatewayConfigurationFailed,GatewayCredentialsRejected" {
			t.Fatalf("events %s", got)
		}
		rej := pub.events[1].(*eventsv1.GatewayCredentialsRejected)
		if rej.GetComponent() != "configurator" || rej.GetReason() != "credentials-rejected" || rej.GetCredential() != string(desiredCred) ||
			rej.GetUntil() != nil || rej.GetFailedLogins() != 1 || rej.GetDetail() == "" {
			t.Fatalf("GatewayCredentialsRejected %v", rej)
		}
		pc, ok := f.params.pendingConfiguration(f.req.GatewayID)
		if !ok || pc.Address != f.req.Address || pc.ElasticIP != elasticIP || !f.metrics.isRejected(f.req.GatewayID) {
			t.Fatalf("pending %+v %v", pc, ok)
		}

		pub.events = nil
		r := f.resumer(pub)
		for range 3 {
			time.Sleep(15 * time.Second)
			if err := r.Resume(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if got := loginsOf(f.j); len(got) != 1 || len(pub.events) != 0 {
			t.Fatalf("a blind re-run: logins %v, events %v", got, pub.events)
		}

		f.params.put(domain.ParamPassword, actual, true)
		if err := r.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := eventTypes(pub.events); got != "GatewayConfigured,GatewayCredentialsAccepted" {
			t.Fatalf("events %s", got)
		}
		acc := pub.events[1].(*eventsv1.GatewayCredentialsAccepted)
		if acc.GetComponent() != "configurator" || acc.GetCredential() != string(loginbudget.CredentialOf(paramPath+"Password", 2)) {
			t.Fatalf("GatewayCredentialsAccepted %v", acc)
		}
		if _, ok := f.params.pendingConfiguration(f.req.GatewayID); ok || f.metrics.isRejected(f.req.GatewayID) {
			t.Fatal("still pending after the resumed run")
		}
		if _, failed, _ := f.gw.counts(); failed != 1 {
			t.Fatalf("failed logins %d", failed)
		}
		// Done: nothing left to resume.
		pub.events = nil
		if err := r.Resume(t.Context()); err != nil || len(pub.events) != 0 {
			t.Fatalf("%v %v", err, pub.events)
		}
	})
}

// With the budget spent (both passwords rejected), a new version waits
// for the end of the budget's window: no login before.
func TestResumeWaitsForTheBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const actual = "Gw-Actual-2026"
		f := newFixture(t, actual, nil)
		pub := &recordingPublisher{}
		rep := app.NewReporter(f.conf, pub)
		failedAt := time.Now()
		if err := rep.ConfigureAndReport(t.Context(), f.req); err != nil {
			t.Fatal(err)
		}
		f.params.put(domain.ParamPassword, actual, true)
		_, fail := f.configure(t)
		if fail == nil || fail.Credentials == nil || fail.Credentials.Reason != domain.CredentialsBudget ||
			!strings.Contains(fail.Reason, "No login before "+time.Now().Add(30*time.Minute).UTC().Format(time.RFC3339)) {
			t.Fatalf("with a new version in the spent budget: %+v", fail)
		}
		pub.events = nil
		r := app.NewResumer(f.conf, rep, 15*time.Second)
		for time.Since(failedAt) < 30*time.Minute-15*time.Second {
			time.Sleep(15 * time.Second)
			if err := r.Resume(t.Context()); err != nil {
				t.Fatal(err)
			}
			if len(pub.events) != 0 {
				t.Fatalf("resumed %s after the failures, within the budget's window: %v", time.Since(failedAt), pub.events)
			}
		}
		if _, failed, _ := f.gw.counts(); failed != 2 || len(loginsOf(f.j)) != 4 {
			t.Fatalf("logins within the window: %v", loginsOf(f.j))
		}
		time.Sleep(15 * time.Second)
		if err := r.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := eventTypes(pub.events); got != "GatewayConfigured,GatewayCredentialsAccepted" {
			t.Fatalf("events %s", got)
		}
		if _, failed, _ := f.gw.counts(); failed != 2 {
			t.Fatalf("failed logins %d", failed)
		}
	})
}

// A resumed run that gets in but then fails for a reason that may pass
// stays pending for a retry (backing off), no longer as a credentials
// problem; GatewayCredentialsAccepted is published once.
func TestResumedRunThatFailsIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, desiredPassword, nil)
		f.params.conf = map[string]domain.PendingConfiguration{f.req.GatewayID: {GatewayID: f.req.GatewayID, Address: f.req.Address,
			ElasticIP: elasticIP, Since: time.Now()}}
		f.gw.rebootDown = 1 << 30
		pub := &recordingPublisher{}
		r := f.resumer(pub)
		if err := r.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := eventTypes(pub.events); got != "GatewayConfigurationFailed,GatewayCredentialsAccepted" {
			t.Fatalf("events %s", got)
		}
		pc, ok := f.params.pendingConfiguration(f.req.GatewayID)
		if !ok || !pc.Retry || f.metrics.isRejected(f.req.GatewayID) {
			t.Fatalf("pending %+v %v, gauge %v", pc, ok, f.metrics.isRejected(f.req.GatewayID))
		}
		// Backing off: not at the next look.
		pub.events = nil
		if err := r.Resume(t.Context()); err != nil || len(pub.events) != 0 {
			t.Fatalf("%v %v", err, pub.events)
		}
		f.gw.mu.Lock()
		f.gw.rebootDown, f.gw.downProbes = 0, 0
		f.gw.mu.Unlock()
		time.Sleep(15 * time.Second)
		if err := r.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := eventTypes(pub.events); got != "GatewayConfigured" {
			t.Fatalf("events %s", got)
		}
		if _, ok := f.params.pendingConfiguration(f.req.GatewayID); ok {
			t.Fatal("still pending")
		}
	})
}
