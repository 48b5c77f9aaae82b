package gatewaysim

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

func TestHangTakesTheStreamsAway(t *testing.T) {
	s, err := Start(context.Background(), Config{HTTPAddr: "127.0.0.1:0", RTSPAddr: "127.0.0.1:0", AdminUser: "admin", AdminPassword: "Passw0rd!",
		Devices: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p := StreamPath(s.Devices()[0].DevIndex, 1, false)
	if !s.streamAvailable(p) {
		t.Fatal("stream not available before the hang")
	}
	s.Hang()
	if s.streamAvailable(p) {
		t.Fatal("stream available while hung")
	}
	s.Unhang()
	if !s.streamAvailable(p) {
		t.Fatal("stream not available after the hang")
	}
}
