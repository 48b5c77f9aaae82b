package gatewaysim

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"mediagw/testsupport/gatewaysim/rtsp"
)

// Config describes one simulated gateway. The zero value of every field but
// the addresses and credentials has a usable default (see withDefaults).
type Config struct {
	// HTTPAddr is the ISAPI listen address ("127.0.0.1:0" picks a free port).
	HTTPAddr string
	// RTSPAddr is the RTSP listen address; empty disables the RTSP server
	// (streamMedia then still answers, with a URL nobody serves).
	RTSPAddr string
	// AdminAddr is the scenario-control listen address; it must be a loopback
	// address. Empty disables the admin endpoint (Go methods still work).
	AdminAddr string
	// PublicHost, if set, is the host written into streamMedia URLs instead of
	// the RTSP listener's host (or the HTTP request's host when the listener is
	// on an unspecified address).
	PublicHost string

	AdminUser     string
	AdminPassword string
	// AllowBasic makes the gateway accept HTTP Basic as well as Digest
	// (LoginFaults.BasicOnly offers Basic alone).
	AllowBasic bool
	// Realm is the Digest realm; Hikvision uses the model or "IP Camera(xxxxx)".
	Realm string

	Devices           int // initial number of cameras
	ChannelsPerDevice int // video channels per initial camera (default 1)
	// DeviceIDSeed makes initial devIndex values deterministic (derived from
	// the seed and the camera number). Empty: random UUIDs.
	DeviceIDSeed string
	// MaxResults caps deviceList's maxResult, like the real box caps pages.
	MaxResults int

	// LoginFaults is how the gateway answers failed logins at start (see
	// LoginFaults; Server.SetLoginFaults changes it later).
	LoginFaults LoginFaults

	LockoutThreshold int           // failed logins per source IP before lock (default 5)
	LockoutDuration  time.Duration // lock time (default 1800 s)
	NonceTTL         time.Duration // Digest nonce lifetime before it goes stale (default 10 min)

	RebootDowntime time.Duration // connection refused for this long after a reboot (default 20 s)
	// Now is the gateway's clock: lockouts, nonces, uptime and device
	// time (default time.Now). Tests move it to see time-driven behaviour
	// without waiting; reboot downtime and scenario steps keep the wall clock.
	Now               func() time.Time
	HeartbeatInterval time.Duration // subscription heartbeat period (default 5 s)

	DeviceName string // initial gateway name (default "Media Gateway")
	TimeMode   string // initial time mode (default "manual", like a factory-fresh box)
	TimeZone   string // initial POSIX-style zone (default "CST-8:00:00", i.e. UTC+8)

	// MediaDir caches the H.264 media generated for RTSP (default: user cache dir).
	MediaDir string
	// Media, if set, is streamed instead of loading MediaDir; give several
	// simulators in one process the same rtsp.LoadMedia result to share it.
	Media *rtsp.Media
	// MediaOptions chooses the media loaded from MediaDir (ignored with
	// Media): FullHD main streams (1920x1080, ~4 Mbit/s), an AAC track on
	// every stream. The zero value: 720p main streams, video only.
	MediaOptions rtsp.MediaOptions
	// Scenario, if set, starts running when the server starts.
	Scenario *Scenario
	Logger   *slog.Logger
}

// Defaults used by Start for zero-valued Config fields.
const (
	DefaultLockoutThreshold  = 5
	DefaultLockoutDuration   = 1800 * time.Second
	DefaultRebootDowntime    = 20 * time.Second
	DefaultHeartbeatInterval = 5 * time.Second
	DefaultNonceTTL          = 10 * time.Minute
	DefaultMaxResults        = 100
	DefaultRealm             = "DS-MGW1000-SIM"
)

func (c Config) withDefaults() (Config, error) {
	if c.HTTPAddr == "" {
		return c, errors.New("gatewaysim: HTTPAddr is required")
	}
	if c.AdminUser == "" || c.AdminPassword == "" {
		return c, errors.New("gatewaysim: AdminUser and AdminPassword are required")
	}
	if c.Devices < 0 || c.ChannelsPerDevice < 0 {
		return c, fmt.Errorf("gatewaysim: negative device or channel count")
	}
	if c.ChannelsPerDevice == 0 {
		c.ChannelsPerDevice = 1
	}
	if c.MaxResults <= 0 {
		c.MaxResults = DefaultMaxResults
	}
	if c.LockoutThreshold <= 0 {
		c.LockoutThreshold = DefaultLockoutThreshold
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LockoutDuration <= 0 {
		c.LockoutDuration = DefaultLockoutDuration
	}
	if c.NonceTTL <= 0 {
		c.NonceTTL = DefaultNonceTTL
	}
	if c.RebootDowntime <= 0 {
		c.RebootDowntime = DefaultRebootDowntime
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.Realm == "" {
		c.Realm = DefaultRealm
	}
	if c.DeviceName == "" {
		c.DeviceName = "Media Gateway"
	}
	if c.TimeMode == "" {
		c.TimeMode = "manual"
	}
	if c.TimeZone == "" {
		c.TimeZone = "CST-8:00:00"
	}
	if _, err := parseTimeZone(c.TimeZone); err != nil {
		return c, fmt.Errorf("gatewaysim: TimeZone: %w", err)
	}
	if c.MediaDir == "" {
		c.MediaDir = DefaultMediaDir()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// DefaultMediaDir is where generated RTSP media is cached when Config.MediaDir
// is empty, shared by every simulator on the machine so ffmpeg runs once.
func DefaultMediaDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "mediagw", "gatewaysim-media")
}
