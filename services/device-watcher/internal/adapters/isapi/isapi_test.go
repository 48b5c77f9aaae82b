package isapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	hik "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/services/device-watcher/internal/domain"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/loginbudgettest"
)

func TestErrorKind(t *testing.T) {
	for want, err := range map[string]error{
		KindUnreachable:    fmt.Errorf("isapi: POST x: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}),
		KindTimeout:        fmt.Errorf("x: %w", context.DeadlineExceeded),
		KindBadCredentials: &hik.BadCredentialsError{User: "admin"},
		KindLocked:         &hik.LockedError{PasswordRejected: true},
		KindMalformed:      &hik.MalformedResponseError{Err: errors.New("bad")},
		KindUnknownStatus:  fmt.Errorf("d: %w", &UnknownStatusError{Status: "zombie"}),
		KindBadMediaURL:    &BadMediaURLError{},
		KindBusy:           &hik.StatusError{HTTPStatus: 503},
		KindDeviceError:    &hik.StatusError{HTTPStatus: 500},
		KindDeviceOffline:  &hik.StatusError{HTTPStatus: 200, Status: &hik.ResponseStatus{StatusCode: 4, SubStatusCode: "devOffline"}},
		KindConfig:         fmt.Errorf("gw: %w: %w", errPassword, errors.New("no parameter")),
		KindLoginRefused:   fmt.Errorf("isapi: GET x: %w", &loginbudget.RefusedError{Refusal: loginbudget.Refusal{Reason: loginbudget.ReasonBudgetSpent}}),
		KindInsecureAuth:   fmt.Errorf("x: %w", &hik.InsecureAuthError{Gateway: "gw"}),
		// Waiting for other logins ran out of time: no timeout of the gateway.
		KindLoginBudget: fmt.Errorf("isapi: GET x: %w: %w", errLoginBudget, context.DeadlineExceeded),
	} {
		if got := ErrorKind(err); got != want {
			t.Errorf("ErrorKind(%v) = %s, want %s", err, got, want)
		}
	}
	if !Unreachable(fmt.Errorf("x: %w", context.DeadlineExceeded)) || Unreachable(&hik.StatusError{HTTPStatus: 500}) ||
		Unreachable(fmt.Errorf("%w: %w", errLoginBudget, context.DeadlineExceeded)) {
		t.Error("Unreachable misclassifies")
	}
}

func TestCheckMediaURLStripsCredentialsAndRefusesOtherSchemes(t *testing.T) {
	u, err := checkMediaURL("d", 1, "rtsp://admin:secret@10.0.0.5:554/Streaming/Channels/101")
	if err != nil || u != "rtsp://10.0.0.5:554/Streaming/Channels/101" {
		t.Fatalf("%q %v", u, err)
	}
	for _, bad := range []string{"http://10.0.0.5/x", "rtsp:///nohost", "::", ""} {
		if _, err := checkMediaURL("d", 1, bad); ErrorKind(err) != KindBadMediaURL {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

// A known camera missing from the list is gone only when the gateway says
// it has no such devIndex.
func TestPollConfirmsAbsencesAndFetchesOnlyNeededDetails(t *testing.T) {
	s := gatewaysimtest.Start(t, gatewaysimtest.WithDevices(2, 2))
	devs := s.Devices()
	c := NewConn("gw", s.URL(), gatewaysimtest.User, newParams(gatewaysimtest.Password), loginbudget.New(loginbudgettest.NewStore(), "device-watcher"), Options{})
	ctx := context.Background()

	snap := c.Poll(ctx, map[string]domain.Known{
		devs[0].DevIndex: {Announced: domain.Online, Channels: 2, DetailsFresh: true},
		"GHOST":          {Announced: domain.Online, Channels: 1},
		"LISTED-LATER":   {Announced: domain.Offline},
	})
	if snap.Err != nil || len(snap.Sightings) != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
	if snap.Sightings[0].Channels != nil {
		t.Fatalf("details fetched for a camera whose details are fresh: %+v", snap.Sightings[0])
	}
	got := snap.Sightings[1]
	if len(got.Channels) != 2 || got.Channels[1].MediaURL != s.StreamURL(devs[1].DevIndex, 2, false) || !got.Online {
		t.Fatalf("details of the new camera: %+v", got)
	}
	if len(snap.Gone) != 2 {
		t.Fatalf("gone %v, want GHOST and LISTED-LATER", snap.Gone)
	}

	// A list broken by the gateway deletes nothing.
	if _, err := s.InjectFault(gatewaysim.Fault{Path: gatewaysim.PathDeviceList, Kind: gatewaysim.FaultMalformed, Count: 1}); err != nil {
		t.Fatal(err)
	}
	snap = c.Poll(ctx, map[string]domain.Known{devs[0].DevIndex: {Announced: domain.Online}})
	if ErrorKind(snap.Err) != KindMalformed || len(snap.Gone) != 0 || snap.Finished.Before(snap.Started) {
		t.Fatalf("snapshot of a malformed list: %+v", snap)
	}
}
