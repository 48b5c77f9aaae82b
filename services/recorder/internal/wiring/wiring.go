// Package wiring builds the recorder from its settings: the adapters
// (SSM password, login budget on DynamoDB, disk spool, ffmpeg, RTSP relay,
// S3, Prometheus), the
// app.Recorder over them, and its parts (one per channel, and the give-up
// watch) registered on the runtime. cmd/recorder and the component tests
// call it.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"

	"mediagw/pkg/gatewayid"
	lbddb "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/service"
	"mediagw/services/recorder/internal/adapters/budget"
	"mediagw/services/recorder/internal/adapters/ffmpeg"
	"mediagw/services/recorder/internal/adapters/inproc"
	"mediagw/services/recorder/internal/adapters/prometheus"
	"mediagw/services/recorder/internal/adapters/rtsp"
	"mediagw/services/recorder/internal/adapters/s3"
	"mediagw/services/recorder/internal/adapters/spool"
	"mediagw/services/recorder/internal/adapters/ssm"
	"mediagw/services/recorder/internal/app"
	"mediagw/services/recorder/internal/domain"
)

// Name is the service's name.
const Name = "recorder"

// LoginBudgetTable is the topology's table of the login budget
// (LOGIN_BUDGET_TABLE).
const LoginBudgetTable = "mediagw-login-budget"

// Settings are the recorder's settings.
type Settings struct {
	Gateway           gatewayid.ID
	Device            string
	Channels          []domain.Channel
	RTSPUser          string
	PasswordParam     string // SSM SecureString; "" = no password
	PasswordRecheck   time.Duration
	LoginBudgetTable  string // DynamoDB table of the login budget
	SegmentLength     time.Duration
	Container         domain.Container
	Codec             string
	Size              string
	Bucket            string
	KeyPrefix         string
	SpoolDir          string
	SpoolMaxBytes     int64
	RTSPTimeout       time.Duration
	Watchdog          time.Duration // 0: 2×segment length + 15 s
	RestartMaxBackoff time.Duration
	GiveUpAfter       time.Duration // 0: never
	FFmpeg, FFprobe   string
	// Engine records copyable streams in process ("inproc") or always
	// with ffmpeg ("ffmpeg").
	Engine string
}

// Declare declares every setting on c; call the returned function after c
// is parsed.
func Declare(c *service.Config) func() Settings {
	check := service.Check
	positive := func(d **time.Duration) service.Option {
		return check(func() error {
			if **d <= 0 {
				return errors.New("must be positive")
			}
			return nil
		})
	}
	var (
		gateway                              gatewayid.ID
		channels                             []domain.Channel
		container                            domain.Container
		spoolMax                             int64
		rawGateway, device, chans, user      *string
		passParam, rawContainer, codec, size *string
		spoolMaxS                            *string
		segLen, rtspTimeout                  *time.Duration
	)
	rawGateway = c.String("RECORDER_GATEWAY_ID", "", "gateway id (first part of the S3 key under the prefix)",
		service.Required(), check(func() (err error) { gateway, err = gatewayid.Parse(*rawGateway); return err }))
	device = c.String("RECORDER_DEVICE_INDEX", "", "device index of the camera on the gateway",
		service.Required(), check(func() error { return domain.ValidName(*device) }))
	chans = c.String("RECORDER_CHANNELS", "", "channels to record: <channel>=<rtsp url without credentials>[,…]; a channel of another device of the gateway is <device>/<channel>",
		service.Required(), check(func() (err error) { channels, err = domain.ParseChannels(*chans, *device); return err }))
	user = c.String("RECORDER_RTSP_USER", "", "RTSP user name (not secret)")
	passParam = c.String("RECORDER_RTSP_PASSWORD_PARAM", "", "name of the SSM SecureString parameter holding the RTSP password",
		check(func() error {
			if *passParam != "" && *user == "" {
				return errors.New("a password parameter needs RECORDER_RTSP_USER")
			}
			return nil
		}))
	var recheck *time.Duration
	recheck = c.Duration("RECORDER_PASSWORD_RECHECK", 10*time.Second, "while the gateway's credentials are rejected (or the login budget is spent), how often the password parameter's version and the budget are looked at; a new version resumes recording at once",
		positive(&recheck))
	budgetTable := c.Table(LoginBudgetTable)
	segLen = c.Duration("RECORDER_SEGMENT_LENGTH", 30*time.Second, "target segment length; cuts fall on the first keyframe after it (make it a multiple of the camera's GOP)",
		positive(&segLen))
	rawContainer = c.String("RECORDER_CONTAINER", "ts", "segment container: ts (MPEG-TS) or fmp4 (fragmented MP4)",
		check(func() (err error) { container, err = domain.ParseContainer(*rawContainer); return err }))
	codec = c.String("RECORDER_CODEC", "copy", "copy (no transcoding), h264 or hevc",
		check(func() error { return domain.ValidCodec(*codec) }))
	size = c.String("RECORDER_SIZE", "", "resize when transcoding: WIDTHxHEIGHT, one side may be -2 to keep the aspect ratio",
		check(func() error {
			if err := domain.ValidSize(*size); err != nil {
				return err
			}
			if *size != "" && !domain.Transcodes(*codec) {
				return errors.New("resizing needs RECORDER_CODEC h264 or hevc")
			}
			return nil
		}))
	bucket := c.String("RECORDER_BUCKET", "", "S3 bucket for segments", service.Required())
	prefix := c.String("RECORDER_KEY_PREFIX", "recordings", "S3 key prefix")
	spoolDir := c.String("RECORDER_SPOOL_DIR", filepath.Join(os.TempDir(), "mediagw-recorder"), "spool root; segments wait here for upload and survive a restart")
	spoolMaxS = c.String("RECORDER_SPOOL_MAX_BYTES", "4GiB", "spool bound; the oldest segments are dropped beyond it",
		check(func() (err error) { spoolMax, err = ParseBytes(*spoolMaxS); return err }))
	rtspTimeout = c.Duration("RECORDER_RTSP_TIMEOUT", 5*time.Second, "ffmpeg RTSP socket timeout; a stalled stream ends ffmpeg after about twice this",
		positive(&rtspTimeout))
	watchdog := c.Duration("RECORDER_WATCHDOG", 0, "restart ffmpeg when no segment arrives for this long (0: 2×segment length + 15 s)")
	restartMax := c.Duration("RECORDER_RESTART_MAX_BACKOFF", 5*time.Second, "cap of the wait between a run's end and the next start (jitter only shortens it); with the source back, recording resumes within about this plus a GOP")
	giveUp := c.Duration("RECORDER_GIVE_UP_AFTER", 0, "exit with code 4 when no channel produced a segment for this long (0: never)")
	ffmpegBin := c.String("RECORDER_FFMPEG", "ffmpeg", "ffmpeg binary")
	ffprobeBin := c.String("RECORDER_FFPROBE", "ffprobe", "ffprobe binary")
	var engine *string
	engine = c.String("RECORDER_ENGINE", "inproc", "inproc: record H.264/H.265 with AAC or no audio into MPEG-TS in process, and everything else (transcoding, fmp4, G.711 audio) with ffmpeg, per channel; ffmpeg: every channel with ffmpeg",
		check(func() error {
			if *engine != "inproc" && *engine != "ffmpeg" {
				return errors.New("must be inproc or ffmpeg")
			}
			return nil
		}))
	return func() Settings {
		return Settings{
			Gateway: gateway, Device: *device, Channels: channels, RTSPUser: *user, PasswordParam: *passParam,
			PasswordRecheck: *recheck, LoginBudgetTable: *budgetTable,
			SegmentLength: *segLen, Container: container, Codec: *codec, Size: *size,
			Bucket: *bucket, KeyPrefix: *prefix, SpoolDir: *spoolDir, SpoolMaxBytes: spoolMax,
			RTSPTimeout: *rtspTimeout, Watchdog: *watchdog, RestartMaxBackoff: *restartMax, GiveUpAfter: *giveUp,
			FFmpeg: *ffmpegBin, FFprobe: *ffprobeBin, Engine: *engine,
		}
	}
}

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B?|B)?$`)

// ParseBytes reads a size: a number of bytes, or with a unit: KB, MB, GB,
// TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
func ParseBytes(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (e.g. 4GiB, 500MB, 1048576)", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %w", s, err)
	}
	unit := strings.TrimSuffix(m[2], "B")
	mult := 1.0
	if unit != "" {
		base := 1000.0
		if strings.HasSuffix(unit, "i") {
			base = 1024
		}
		mult = map[byte]float64{'K': base, 'M': base * base, 'G': base * base * base, 'T': base * base * base * base}[unit[0]]
	}
	v := n * mult
	if v < 1 || v > 1<<62 {
		return 0, fmt.Errorf("%q: out of range", s)
	}
	return int64(v), nil
}

// credentialsTimeout bounds reading the RTSP password at start.
const credentialsTimeout = 30 * time.Second

// Build wires the recorder and registers its parts on rt: it reads the
// RTSP password (exit code 3 if it cannot), takes its logins through the
// login budget in LoginBudgetTable, opens the spool (6 if another
// recorder holds it), spools what a predecessor left, and registers one
// part per channel and the give-up watch (4). A channel stopped with
// segments it could not upload within the grace ends the process with 5.
func Build(ctx context.Context, rt *service.Runtime, s Settings) error {
	log := rt.Logger.With("gateway", s.Gateway.String(), "device", s.Device)
	deps := app.Deps{
		OpenSpool: spool.Opener(s.SpoolDir, domain.Source{Gateway: s.Gateway.String(), Device: s.Device}, s.SpoolMaxBytes),
		Uploader:  s3.New(rt.AWS, s.Bucket),
		Segmenter: segmenter(s),
		Relays:    rtsp.Relays{},
		Budget:    budget.New(lbddb.New(awsddb.NewFromConfig(rt.AWS), s.LoginBudgetTable)),
		Metrics:   prometheus.New(rt.Metrics, s.Gateway.String(), s.Device),
		Logger:    log,
	}
	if s.PasswordParam != "" {
		// The runtime's logger then redacts the password, whatever its encoding.
		deps.Password = ssm.NewPassword(awsssm.NewFromConfig(rt.AWS), s.PasswordParam, ssm.WithSecrets(rt.Secrets()))
	}
	return build(ctx, rt, s, deps, nil)
}

// build is Build over given adapters; tune, if given, adjusts the app's
// configuration (the component tests shorten its waits).
func build(ctx context.Context, rt *service.Runtime, s Settings, deps app.Deps, tune func(*app.Config)) error {
	cfg := app.Config{
		Gateway: s.Gateway.String(), Device: s.Device, Channels: s.Channels, RTSPUser: s.RTSPUser,
		CredentialsTimeout: credentialsTimeout, PasswordRecheck: s.PasswordRecheck,
		SegmentLength: s.SegmentLength, Container: s.Container, Codec: s.Codec, Size: s.Size,
		KeyPrefix:   s.KeyPrefix,
		RTSPTimeout: s.RTSPTimeout, Watchdog: s.Watchdog, RestartMax: s.RestartMaxBackoff, GiveUpAfter: s.GiveUpAfter,
		// Leave a second of the runtime's grace for its own shutdown.
		StopTimeout: rt.Grace - time.Second,
	}
	if tune != nil {
		tune(&cfg)
	}
	rec, err := app.New(cfg, deps)
	if err != nil {
		return err
	}
	if err := rec.Start(ctx); err != nil {
		return withExitCode(err)
	}
	rt.OnStop(func(context.Context) error { rec.Close(); return nil })
	for _, p := range rec.Parts() {
		rt.Go(p.Name, func(ctx context.Context) error { return withExitCode(p.Run(ctx)) })
	}
	ids := make([]string, len(s.Channels))
	for i, ch := range s.Channels {
		ids[i] = ch.ID
	}
	deps.Logger.Info("recording", "channels", ids, "segment_length", s.SegmentLength.String(), "container", string(s.Container), "codec", s.Codec,
		"bucket", s.Bucket, "prefix", s.KeyPrefix, "spool", s.SpoolDir)
	return nil
}

// Exit codes beyond the runtime's 0 (stopped, all uploaded), 1 (failure)
// and 2 (bad configuration).
const (
	ExitCredentials   = 3 // the RTSP password could not be read from SSM
	ExitGaveUp        = 4 // every channel failed for RECORDER_GIVE_UP_AFTER
	ExitSpoolNotEmpty = 5 // stopped, but segments are left in the spool
	ExitChannelTaken  = 6 // another recorder on this host records a channel into the same spool
)

// ExitCode is the process exit code for an error the recorder stops with
// (1 for any other).
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, domain.ErrCredentials):
		return ExitCredentials
	case errors.Is(err, domain.ErrGaveUp):
		return ExitGaveUp
	case errors.Is(err, domain.ErrSpoolNotEmpty):
		return ExitSpoolNotEmpty
	case errors.Is(err, domain.ErrSpoolLocked):
		return ExitChannelTaken
	}
	return 1
}

// exitError carries the recorder's exit code to the runtime.
type exitError struct{ err error }

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// ExitCode is the process exit code the runtime should end with.
func (e exitError) ExitCode() int { return ExitCode(e.err) }

func withExitCode(err error) error {
	if err == nil || ExitCode(err) == 1 {
		return err
	}
	return exitError{err}
}

// segmenter is the recording engine of the settings.
func segmenter(s Settings) app.Segmenter {
	ff := ffmpeg.Segmenter{FFmpeg: s.FFmpeg, FFprobe: s.FFprobe}
	if s.Engine == "ffmpeg" {
		return ff
	}
	return inproc.New(ff)
}
