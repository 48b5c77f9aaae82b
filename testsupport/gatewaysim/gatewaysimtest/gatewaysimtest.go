// Package gatewaysimtest starts a simulated Hikvision gateway for a test.
package gatewaysimtest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"mediagw/testsupport/gatewaysim"
)

// Credentials of the admin user of a simulator started by Start.
const (
	User     = "admin"
	Password = "Sim-Passw0rd"
)

// Option adjusts the simulator's Config before it starts.
type Option func(*gatewaysim.Config)

// WithDevices sets the initial number of cameras and channels per camera
// (default 2 cameras with 1 channel).
func WithDevices(devices, channelsPerDevice int) Option {
	return func(c *gatewaysim.Config) {
		c.Devices, c.ChannelsPerDevice = devices, channelsPerDevice
	}
}

// WithRTSP enables the RTSP server on 127.0.0.1:0. The first simulator on
// a machine renders the media with ffmpeg (a few seconds; cached after).
func WithRTSP() Option {
	return func(c *gatewaysim.Config) { c.RTSPAddr = "127.0.0.1:0" }
}

// WithAdmin enables the admin HTTP endpoint on 127.0.0.1:0.
func WithAdmin() Option {
	return func(c *gatewaysim.Config) { c.AdminAddr = "127.0.0.1:0" }
}

// WithLockout sets the failed-login threshold and lock duration.
func WithLockout(threshold int, d time.Duration) Option {
	return func(c *gatewaysim.Config) { c.LockoutThreshold, c.LockoutDuration = threshold, d }
}

// WithLoginFaults sets how the gateway answers failed logins (lost or late
// 401, no lock fields, Basic only) from the start.
func WithLoginFaults(f gatewaysim.LoginFaults) Option {
	return func(c *gatewaysim.Config) { c.LoginFaults = f }
}

// WithClock sets the gateway's clock (lockouts, nonces, the failed-login
// ledger's times), e.g. a testkit fake clock's Now.
func WithClock(now func() time.Time) Option {
	return func(c *gatewaysim.Config) { c.Now = now }
}

// WithConfig applies any other change to the Config.
func WithConfig(f func(*gatewaysim.Config)) Option { return Option(f) }

// Start runs a simulator on 127.0.0.1 free ports, closed by t.Cleanup.
// Defaults: 2 cameras × 1 channel, user User / password Password, no RTSP,
// no admin endpoint, reboot downtime 500 ms, heartbeat every 500 ms, logs
// through t.Log at level Warn and above.
func Start(t testing.TB, opts ...Option) *gatewaysim.Server {
	t.Helper()
	cfg := gatewaysim.Config{
		HTTPAddr:          "127.0.0.1:0",
		AdminUser:         User,
		AdminPassword:     Password,
		Devices:           2,
		ChannelsPerDevice: 1,
		RebootDowntime:    500 * time.Millisecond,
		HeartbeatInterval: 500 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := gatewaysim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("gatewaysimtest: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
