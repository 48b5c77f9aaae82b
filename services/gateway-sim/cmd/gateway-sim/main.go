// Command gateway-sim runs a simulated Hikvision media gateway: the ISAPI
// HTTP API with Digest auth and lockout, RTSP streams of every camera, and
// an admin endpoint to drive scenarios. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"mediagw/testsupport/gatewaysim"
)

// envPrefix: every flag can also be set as GATEWAY_SIM_<FLAG_NAME>.
const envPrefix = "GATEWAY_SIM_"

// defaultPassword keeps `make run` working out of the box; it is a
// simulator's password, documented in the README, never logged.
const defaultPassword = "Sim-Passw0rd"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "gateway-sim:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

type options struct {
	cfg          gatewaysim.Config
	passwordFile string
	scenario     string
	logLevel     string
}

func newFlagSet(o *options, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gateway-sim", flag.ContinueOnError)
	fs.SetOutput(out)
	c := &o.cfg
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:18080", "ISAPI HTTP listen address (use 0.0.0.0:18080 to be reachable from other hosts)")
	fs.StringVar(&c.RTSPAddr, "rtsp-addr", "127.0.0.1:8554", "RTSP listen address; empty disables RTSP")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:18081", "admin (scenario control) listen address; loopback only; empty disables it")
	fs.StringVar(&c.PublicHost, "public-host", "", "host written into streamMedia RTSP URLs (default: the RTSP listen host, or the host the HTTP client used)")
	fs.IntVar(&c.Devices, "devices", 4, "number of cameras at start")
	fs.IntVar(&c.ChannelsPerDevice, "channels", 1, "video channels per camera")
	fs.StringVar(&c.DeviceIDSeed, "device-seed", "gateway-sim", "seed making initial devIndex values stable across restarts; give each simulator its own; empty for random")
	fs.StringVar(&c.AdminUser, "admin-user", "admin", "gateway admin user (HTTP and RTSP)")
	fs.StringVar(&o.passwordFile, "admin-password-file", "", "file holding the admin password (or set "+envPrefix+"ADMIN_PASSWORD; default "+defaultPassword+"); never passed as a flag so it stays out of process listings")
	fs.BoolVar(&c.AllowBasic, "allow-basic", false, "accept HTTP Basic as well as Digest")
	fs.IntVar(&c.LockoutThreshold, "lockout-threshold", gatewaysim.DefaultLockoutThreshold, "failed logins from one IP before it is locked out")
	fs.DurationVar(&c.LockoutDuration, "lockout-duration", gatewaysim.DefaultLockoutDuration, "how long a locked-out IP is refused")
	fs.DurationVar(&c.RebootDowntime, "reboot-downtime", gatewaysim.DefaultRebootDowntime, "how long a reboot refuses connections")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat", gatewaysim.DefaultHeartbeatInterval, "event stream heartbeat interval")
	fs.IntVar(&c.MaxResults, "max-results", gatewaysim.DefaultMaxResults, "deviceList page size cap")
	fs.StringVar(&c.DeviceName, "name", "Media Gateway", "initial gateway name")
	fs.StringVar(&c.TimeMode, "time-mode", "manual", "initial time mode: NTP or manual")
	fs.StringVar(&c.TimeZone, "time-zone", "CST-8:00:00", "initial time zone, POSIX style (CST-8:00:00 is UTC+8)")
	fs.StringVar(&c.MediaDir, "media-dir", gatewaysim.DefaultMediaDir(), "cache directory of the generated H.264 media")
	fs.StringVar(&o.scenario, "scenario", "", "scenario file (JSON or YAML) to run at start")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: gateway-sim [flags]\n\nSimulated Hikvision media gateway: ISAPI over HTTP (Digest auth, lockout),\nRTSP streams of every camera, admin API for scenarios. Every flag can also\nbe set as an environment variable %s<FLAG> (e.g. %sHTTP_ADDR);\na flag given on the command line wins.\n\nFlags:\n", envPrefix, envPrefix)
		fs.PrintDefaults()
	}
	return fs
}

// run parses args and the environment and serves until ctx ends. started,
// if not nil, receives the running server (for tests).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, started func(*gatewaysim.Server)) error {
	var o options
	fs := newFlagSet(&o, stdout)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gateway-sim: unexpected argument %q (see --help)\n", fs.Arg(0))
		return errUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		if v := getenv(envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s%s: %w", envPrefix, strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")), err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("log level %q: %w", o.logLevel, err)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})).With("service", "gateway-sim")
	o.cfg.Logger = logger

	switch {
	case o.passwordFile != "":
		b, err := os.ReadFile(o.passwordFile)
		if err != nil {
			return fmt.Errorf("admin password file: %w", err)
		}
		o.cfg.AdminPassword = strings.TrimRight(string(b), "\r\n")
	case getenv(envPrefix+"ADMIN_PASSWORD") != "":
		o.cfg.AdminPassword = getenv(envPrefix + "ADMIN_PASSWORD")
	default:
		o.cfg.AdminPassword = defaultPassword
		logger.Warn("using the built-in default admin password; see README")
	}
	if o.scenario != "" {
		sc, err := gatewaysim.LoadScenario(o.scenario)
		if err != nil {
			return err
		}
		o.cfg.Scenario = sc
	}
	srv, err := gatewaysim.Start(ctx, o.cfg)
	if err != nil {
		return err
	}
	if started != nil {
		started(srv)
	}
	<-ctx.Done()
	closed := make(chan struct{})
	go func() { _ = srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		return errors.New("shutdown took longer than 10s")
	}
	return nil
}
