package app_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
)

type stubConfigurer struct {
	res  domain.Result
	fail *domain.Failure
	// cancel, when set, is called during the run (a shutdown mid-run).
	cancel context.CancelFunc
}

func (s *stubConfigurer) Configure(context.Context, app.Request) (domain.Result, *domain.Failure) {
	if s.cancel != nil {
		s.cancel()
	}
	return s.res, s.fail
}

type recordingPublisher struct {
	mu     sync.Mutex
	events []proto.Message
	err    error
}

func (p *recordingPublisher) Publish(_ context.Context, ev proto.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.events = append(p.events, ev)
	return nil
}

func TestConfigureAndReport(t *testing.T) {
	configured := domain.Result{Changed: []domain.Setting{domain.SettingName, domain.SettingDevicePortMaps}, Rebooted: true, Took: 3 * time.Second}
	permanent := domain.Failf(domain.StepLogin, false, "the gateway rejected both the desired and the bootstrap password")
	retryable := domain.Failf(domain.StepConnect, true, "the gateway did not answer")
	locked := &domain.Failure{Step: domain.StepLogin, Reason: "locked", LockRemaining: 29 * time.Minute, Err: errors.New("locked")}
	until := time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC)
	noCredentials := &domain.Failure{Step: domain.StepLogin, Reason: "no password to log in with: ...", Err: domain.ErrNoCredentials,
		Credentials: &domain.CredentialsRejection{Reason: domain.CredentialsBudget, Credential: "/mediagw/gateways/gw-7/Password@3", Until: until, FailedLogins: 2}}
	resumed := domain.Result{CredentialsAccepted: "/mediagw/gateways/gw-7/Password@4"}
	down := errors.New("sns down")
	req := app.Request{GatewayID: "gw-7", Address: "10.0.0.7:80"}

	for _, tc := range []struct {
		name      string
		conf      *stubConfigurer
		pubErr    error
		cancelled bool
		wantErr   string // "" nil; else a substring
		final     bool
		check     func(t *testing.T, ev proto.Message)
		more      func(t *testing.T, evs []proto.Message) // when more than one event
	}{
		{name: "no password to log in with is reported twice and done", conf: &stubConfigurer{fail: noCredentials}, more: func(t *testing.T, evs []proto.Message) {
			f, ok := evs[0].(*eventsv1.GatewayConfigurationFailed)
			if len(evs) != 2 || !ok || f.GetRetryable() || f.GetStep() != "login" {
				t.Fatalf("events %v", evs)
			}
			r, ok := evs[1].(*eventsv1.GatewayCredentialsRejected)
			if !ok || r.GetGatewayId() != "gw-7" || r.GetComponent() != "configurator" || r.GetReason() != "budget-spent" ||
				r.GetCredential() != "/mediagw/gateways/gw-7/Password@3" || !r.GetUntil().AsTime().Equal(until) || r.GetFailedLogins() != 2 ||
				r.GetDetail() != noCredentials.Reason {
				t.Fatalf("GatewayCredentialsRejected %v", r)
			}
		}},
		{name: "a resumed configuration is reported with the credential accepted", conf: &stubConfigurer{res: resumed}, more: func(t *testing.T, evs []proto.Message) {
			a, ok := evs[1].(*eventsv1.GatewayCredentialsAccepted)
			if _, c := evs[0].(*eventsv1.GatewayConfigured); len(evs) != 2 || !c || !ok || a.GetCredential() != "/mediagw/gateways/gw-7/Password@4" || a.GetComponent() != "configurator" {
				t.Fatalf("events %v", evs)
			}
		}},
		{name: "configured", conf: &stubConfigurer{res: configured}, check: func(t *testing.T, ev proto.Message) {
			c, ok := ev.(*eventsv1.GatewayConfigured)
			if !ok || c.GetGatewayId() != "gw-7" || strings.Join(c.GetChanged(), ",") != "name,portmap.devMgmt" || !c.GetRebooted() || c.GetTook().AsDuration() != 3*time.Second {
				t.Fatalf("event %v", ev)
			}
		}},
		{name: "permanent failure is reported and done", conf: &stubConfigurer{fail: permanent}, check: func(t *testing.T, ev proto.Message) {
			f, ok := ev.(*eventsv1.GatewayConfigurationFailed)
			if !ok || f.GetStep() != "login" || f.GetRetryable() || f.GetLockRemaining() != nil || !strings.Contains(f.GetReason(), "rejected both") {
				t.Fatalf("event %v", ev)
			}
		}},
		{name: "lockout is reported with the time left", conf: &stubConfigurer{fail: locked}, check: func(t *testing.T, ev proto.Message) {
			f, ok := ev.(*eventsv1.GatewayConfigurationFailed)
			if !ok || f.GetRetryable() || f.GetLockRemaining().AsDuration() != 29*time.Minute {
				t.Fatalf("event %v", ev)
			}
		}},
		{name: "retryable failure is reported and run again", conf: &stubConfigurer{fail: retryable}, wantErr: "configuration failed at connect: the gateway did not answer",
			check: func(t *testing.T, ev proto.Message) {
				if f, ok := ev.(*eventsv1.GatewayConfigurationFailed); !ok || !f.GetRetryable() {
					t.Fatalf("event %v", ev)
				}
			}},
		{name: "configured but not reported runs again", conf: &stubConfigurer{res: configured}, pubErr: down, wantErr: "report configured gw-7: sns down"},
		{name: "retryable failure not reported runs again", conf: &stubConfigurer{fail: retryable}, pubErr: down, wantErr: "report failure of gw-7: sns down"},
		{name: "permanent failure not reported is final", conf: &stubConfigurer{fail: permanent}, pubErr: down, final: true,
			wantErr: "could not report the failure of gw-7 at login (the gateway rejected both the desired and the bootstrap password): sns down"},
		{name: "interrupted run is not reported", conf: &stubConfigurer{fail: retryable}, cancelled: true, wantErr: "configuration of gw-7 interrupted: context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancelled {
				tc.conf.cancel = cancel
			}
			pub := &recordingPublisher{err: tc.pubErr}
			err := app.NewReporter(tc.conf, pub).ConfigureAndReport(ctx, req)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			var fe *app.FinalError
			if errors.As(err, &fe) != tc.final {
				t.Fatalf("final %v, want %v (%v)", !tc.final, tc.final, err)
			}
			if tc.final && !errors.Is(err, down) {
				t.Fatalf("the publisher's error is not wrapped: %v", err)
			}
			if tc.more != nil {
				tc.more(t, pub.events)
			} else if tc.check != nil {
				if len(pub.events) != 1 {
					t.Fatalf("%d events published", len(pub.events))
				}
				tc.check(t, pub.events[0])
			} else if len(pub.events) != 0 {
				t.Fatalf("published %v", pub.events)
			}
		})
	}
}
