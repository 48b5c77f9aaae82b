// Package wiring builds the gateway-sim binary from its settings: it
// declares every setting on pkg/service's binder and starts the simulator
// of mediagw/testsupport/gatewaysim (where the simulator's code lives, so
// that the tests of every service can start it in-process).
package wiring

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"mediagw/pkg/service"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/rtsp"
)

// PasswordEnv holds the admin password. It is read from the environment
// only: a flag would show the password in process listings.
const PasswordEnv = "GATEWAY_SIM_ADMIN_PASSWORD"

// DefaultPassword keeps `make run` working out of the box; it is a
// simulator's password, documented in the README, never logged.
const DefaultPassword = "Sim-Passw0rd"

// closeTimeout bounds the simulator's shutdown.
const closeTimeout = 10 * time.Second

// Settings are the simulator's configuration, read from flags or the
// environment. Simulator.AdminPassword is empty when neither
// --admin-password-file nor GATEWAY_SIM_ADMIN_PASSWORD gave one (Build
// then uses DefaultPassword and says so in the log).
type Settings struct {
	Simulator gatewaysim.Config
}

// Declare declares every setting on cfg; call the returned function after
// cfg is parsed.
func Declare(c *service.Config) func() Settings {
	// NAME, DEVICES, HTTP_ADDR: names a shell may hold for other reasons.
	c.EnvPrefix("GATEWAY_SIM_")
	httpAddr := c.String("HTTP_ADDR", "127.0.0.1:18080", "ISAPI HTTP listen address (use 0.0.0.0:18080 to be reachable from other hosts)")
	rtspAddr := c.String("RTSP_ADDR", "127.0.0.1:8554", "RTSP listen address; empty disables RTSP")
	adminAddr := c.String("ADMIN_ADDR", "127.0.0.1:18081", "admin (scenario control) listen address; loopback only; empty disables it")
	publicHost := c.String("PUBLIC_HOST", "", "host written into streamMedia RTSP URLs (default: the RTSP listen host, or the host the HTTP client used)")
	devices := c.Int("DEVICES", 4, "number of cameras at start")
	channels := c.Int("CHANNELS", 1, "video channels per camera")
	seed := c.String("DEVICE_SEED", "gateway-sim", "seed making initial devIndex values stable across restarts; give each simulator its own; empty for random")
	user := c.String("ADMIN_USER", "admin", "gateway admin user (HTTP and RTSP)")
	envPassword := c.SecretString("ADMIN_PASSWORD", "the admin password (or ADMIN_PASSWORD_FILE; default "+DefaultPassword+")")
	var passwordFile *string
	var filePassword *string // set when the file is read
	passwordFile = c.String("ADMIN_PASSWORD_FILE", "", "file holding the admin password (or set "+PasswordEnv+"; default "+DefaultPassword+"); never passed as a flag so it stays out of process listings",
		service.Check(func() error {
			if *passwordFile == "" {
				return nil
			}
			b, err := os.ReadFile(*passwordFile)
			if err != nil {
				return err
			}
			p := strings.TrimRight(string(b), "\r\n")
			filePassword = &p
			return nil
		}))
	allowBasic := c.Bool("ALLOW_BASIC", false, "accept HTTP Basic as well as Digest")
	lost401 := c.Bool("LOST_401", false, "login fault: a failed login (wrong credentials, or any while locked) gets no answer, the connection is closed; it still counts")
	var late401 *time.Duration
	late401 = c.Duration("LATE_401", 0, "login fault: the 401 to a failed login is sent this late (0: at once); it counts when the request arrives",
		service.Check(func() error {
			if *late401 < 0 {
				return fmt.Errorf("negative delay %s", *late401)
			}
			return nil
		}))
	noLockFields := c.Bool("NO_LOCK_FIELDS", false, "login fault: 401 answers have no body, so no lockStatus/retryTimes/resLockTime (the lockout still happens)")
	basicOnly := c.Bool("BASIC_ONLY", false, "login fault: challenge and accept HTTP/RTSP Basic only (Digest credentials are a failed login)")
	lockoutThreshold := c.Int("LOCKOUT_THRESHOLD", gatewaysim.DefaultLockoutThreshold, "failed logins from one IP before it is locked out")
	lockoutDuration := c.Duration("LOCKOUT_DURATION", gatewaysim.DefaultLockoutDuration, "how long a locked-out IP is refused")
	rebootDowntime := c.Duration("REBOOT_DOWNTIME", gatewaysim.DefaultRebootDowntime, "how long a reboot refuses connections")
	heartbeat := c.Duration("HEARTBEAT", gatewaysim.DefaultHeartbeatInterval, "event stream heartbeat interval")
	maxResults := c.Int("MAX_RESULTS", gatewaysim.DefaultMaxResults, "deviceList page size cap")
	name := c.String("NAME", "Media Gateway", "initial gateway name")
	timeMode := c.String("TIME_MODE", "manual", "initial time mode: NTP or manual")
	timeZone := c.String("TIME_ZONE", "CST-8:00:00", "initial time zone, POSIX style (CST-8:00:00 is UTC+8)")
	mediaDir := c.String("MEDIA_DIR", gatewaysim.DefaultMediaDir(), "cache directory of the generated H.264 (and AAC) media")
	audio := c.Bool("AUDIO", false, "every stream carries an AAC track (mono, 16 kHz) beside the H.264")
	fullHD := c.Bool("FULL_HD", false, "main streams are 1920x1080 at ~4 Mbit/s instead of 1280x720 at ~3 Mbit/s")
	var scenario *gatewaysim.Scenario
	var scenarioFile *string
	scenarioFile = c.String("SCENARIO", "", "scenario file (JSON or YAML) to run at start", service.Check(func() error {
		if *scenarioFile == "" {
			return nil
		}
		sc, err := gatewaysim.LoadScenario(*scenarioFile)
		scenario = sc
		return err
	}))
	return func() Settings {
		password := *envPassword
		if filePassword != nil {
			password = *filePassword
		}
		return Settings{Simulator: gatewaysim.Config{
			HTTPAddr: *httpAddr, RTSPAddr: *rtspAddr, AdminAddr: *adminAddr, PublicHost: *publicHost,
			Devices: *devices, ChannelsPerDevice: *channels, DeviceIDSeed: *seed,
			AdminUser: *user, AdminPassword: password, AllowBasic: *allowBasic,
			LockoutThreshold: *lockoutThreshold, LockoutDuration: *lockoutDuration,
			RebootDowntime: *rebootDowntime, HeartbeatInterval: *heartbeat, MaxResults: *maxResults,
			DeviceName: *name, TimeMode: *timeMode, TimeZone: *timeZone, MediaDir: *mediaDir,
			MediaOptions: rtsp.MediaOptions{Audio: *audio, FullHD: *fullHD},
			Scenario:     scenario,
			LoginFaults: gatewaysim.LoginFaults{
				Lost401: *lost401, Late401: *late401, NoLockFields: *noLockFields, BasicOnly: *basicOnly,
			},
		}}
	}
}

// Build starts the simulator with s; it serves until ctx ends, and the
// runtime's stop closes it.
func Build(ctx context.Context, rt *service.Runtime, s Settings) error {
	_, err := BuildServer(ctx, rt, s)
	return err
}

// BuildServer is Build that also returns the running simulator, for tests.
func BuildServer(ctx context.Context, rt *service.Runtime, s Settings) (*gatewaysim.Server, error) {
	cfg := s.Simulator
	cfg.Logger = rt.Logger
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = DefaultPassword
		rt.Logger.Warn("using the built-in default admin password; see README")
	}
	// Not ctx: the simulator closes on the runtime's stop, once, and that
	// stop waits for it.
	srv, err := gatewaysim.Start(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return nil, err
	}
	rt.OnStop(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, closeTimeout)
		defer cancel()
		closed := make(chan struct{})
		go func() { _ = srv.Close(); close(closed) }()
		select {
		case <-closed:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("closing the simulator: %w", ctx.Err())
		}
	})
	return srv, nil
}
