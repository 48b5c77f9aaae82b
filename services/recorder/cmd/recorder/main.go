// Command recorder records the camera channels of one gateway device into
// S3 as continuous segments. See README.md for its interface.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/cenkalti/backoff/v4"

	"mediagw/pkg/service"
	"mediagw/services/recorder/internal/config"
	"mediagw/services/recorder/internal/ffmpeg"
	"mediagw/services/recorder/internal/metrics"
	"mediagw/services/recorder/internal/recorder"
	"mediagw/services/recorder/internal/s3store"
	"mediagw/services/recorder/internal/secret"
	"mediagw/services/recorder/internal/spool"
)

// Exit codes beyond the runtime's 0 (stopped, all uploaded), 1 (failure)
// and 2 (bad configuration).
const (
	exitCredentials    = 3 // the RTSP password could not be read from SSM
	exitGaveUp         = 4 // every channel failed for RECORDER_GIVE_UP_AFTER
	exitSpoolNotEmpty  = 5 // stopped, but segments are left in the spool
	exitChannelTaken   = 6 // another recorder on this host records a channel into the same spool
	credentialsTimeout = 30 * time.Second
)

var errCredentials = errors.New("RTSP credentials unavailable")

func main() {
	c := service.NewConfig("recorder", "records a gateway device's camera channels into S3 as continuous segments", ":9400")
	var (
		gateway, device, chans, user, passParam, container, codec, size *string
		channels                                                        []config.Channel
		spoolMax                                                        int64
	)
	check := service.Check
	gateway = c.String("RECORDER_GATEWAY_ID", "", "gateway id (first part of the S3 key under the prefix)",
		service.Required(), check(func() error { return config.ValidID(*gateway) }))
	device = c.String("RECORDER_DEVICE_INDEX", "", "device index of the camera on the gateway",
		service.Required(), check(func() error { return config.ValidID(*device) }))
	chans = c.String("RECORDER_CHANNELS", "", "channels to record: <channel>=<rtsp url without credentials>[,…]",
		service.Required(), check(func() (err error) { channels, err = config.ParseChannels(*chans); return err }))
	user = c.String("RECORDER_RTSP_USER", "", "RTSP user name (not secret)")
	passParam = c.String("RECORDER_RTSP_PASSWORD_PARAM", "", "name of the SSM SecureString parameter holding the RTSP password",
		check(func() error {
			if *passParam != "" && *user == "" {
				return errors.New("a password parameter needs RECORDER_RTSP_USER")
			}
			return nil
		}))
	var segLen *time.Duration
	segLen = c.Duration("RECORDER_SEGMENT_LENGTH", 30*time.Second, "target segment length; cuts fall on the first keyframe after it (make it a multiple of the camera's GOP)",
		check(func() error { return positive(*segLen) }))
	container = c.String("RECORDER_CONTAINER", "ts", "segment container: ts (MPEG-TS) or fmp4 (fragmented MP4)",
		check(func() error { _, err := ffmpeg.ParseContainer(*container); return err }))
	codec = c.String("RECORDER_CODEC", "copy", "copy (no transcoding), h264 or hevc",
		check(func() error { return ffmpeg.ValidCodec(*codec) }))
	size = c.String("RECORDER_SIZE", "", "resize when transcoding: WIDTHxHEIGHT, one side may be -2 to keep the aspect ratio",
		check(func() error {
			if err := ffmpeg.ValidSize(*size); err != nil {
				return err
			}
			if *size != "" && (*codec == "" || *codec == "copy") {
				return errors.New("resizing needs RECORDER_CODEC h264 or hevc")
			}
			return nil
		}))
	bucket := c.String("RECORDER_BUCKET", "", "S3 bucket for segments", service.Required())
	prefix := c.String("RECORDER_KEY_PREFIX", "recordings", "S3 key prefix")
	spoolDir := c.String("RECORDER_SPOOL_DIR", filepath.Join(os.TempDir(), "mediagw-recorder"), "spool root; segments wait here for upload and survive a restart")
	var spoolMaxS *string
	spoolMaxS = c.String("RECORDER_SPOOL_MAX_BYTES", "4GiB", "spool bound; the oldest segments are dropped beyond it",
		check(func() (err error) { spoolMax, err = config.ParseBytes(*spoolMaxS); return err }))
	var rtspTimeout *time.Duration
	rtspTimeout = c.Duration("RECORDER_RTSP_TIMEOUT", 5*time.Second, "ffmpeg RTSP socket timeout; a stalled stream ends ffmpeg after about twice this",
		check(func() error { return positive(*rtspTimeout) }))
	watchdog := c.Duration("RECORDER_WATCHDOG", 0, "restart ffmpeg when no segment arrives for this long (0: 2×segment length + 15 s)")
	restartMax := c.Duration("RECORDER_RESTART_MAX_BACKOFF", time.Minute, "cap of the wait between ffmpeg restarts")
	giveUp := c.Duration("RECORDER_GIVE_UP_AFTER", 0, "exit with code 4 when no channel produced a segment for this long (0: never)")
	ffmpegBin := c.String("RECORDER_FFMPEG", "ffmpeg", "ffmpeg binary")
	ffprobeBin := c.String("RECORDER_FFPROBE", "ffprobe", "ffprobe binary")

	var runErr error
	code := service.Main(c, func(ctx context.Context, rt *service.Runtime) error {
		runErr = run(ctx, rt, settings{
			gateway: *gateway, device: *device, channels: channels, user: *user, passParam: *passParam,
			segLen: *segLen, container: *container, codec: *codec, size: *size, bucket: *bucket, prefix: *prefix,
			spoolDir: *spoolDir, spoolMax: spoolMax, rtspTimeout: *rtspTimeout, watchdog: *watchdog,
			restartMax: *restartMax, giveUp: *giveUp, ffmpeg: *ffmpegBin, ffprobe: *ffprobeBin,
			stopTimeout: *c.ShutdownGrace,
		})
		return runErr
	})
	if code == 1 {
		switch {
		case errors.Is(runErr, errCredentials):
			code = exitCredentials
		case errors.Is(runErr, recorder.ErrGaveUp):
			code = exitGaveUp
		case errors.Is(runErr, recorder.ErrSpoolNotEmpty):
			code = exitSpoolNotEmpty
		case errors.Is(runErr, spool.ErrLocked):
			code = exitChannelTaken
		}
	}
	os.Exit(code)
}

func positive(d time.Duration) error {
	if d <= 0 {
		return errors.New("must be positive")
	}
	return nil
}

type settings struct {
	gateway, device        string
	channels               []config.Channel
	user, passParam        string
	segLen                 time.Duration
	container, codec, size string
	bucket, prefix         string
	spoolDir               string
	spoolMax               int64
	rtspTimeout, watchdog  time.Duration
	restartMax, giveUp     time.Duration
	ffmpeg, ffprobe        string
	stopTimeout            time.Duration
}

func run(ctx context.Context, rt *service.Runtime, s settings) error {
	log := rt.Logger.With("gateway", s.gateway, "device", s.device)
	cont, _ := ffmpeg.ParseContainer(s.container)
	cfg := recorder.Config{
		Gateway: s.gateway, Device: s.device, RTSPUser: s.user,
		SegmentLength: s.segLen, Container: cont, Codec: s.codec, Size: s.size,
		KeyPrefix: s.prefix, SpoolDir: s.spoolDir, SpoolLimit: s.spoolMax,
		RTSPTimeout: s.rtspTimeout, Watchdog: s.watchdog, RestartMax: s.restartMax, GiveUpAfter: s.giveUp,
		FFmpeg: s.ffmpeg, FFprobe: s.ffprobe,
		// Leave a second of the runtime's grace for its own shutdown.
		StopTimeout: s.stopTimeout - time.Second,
	}
	for _, ch := range s.channels {
		cfg.Channels = append(cfg.Channels, recorder.Channel{ID: ch.ID, URL: ch.URL})
	}
	if s.passParam != "" {
		pw := secret.NewPassword(ssm.NewFromConfig(rt.AWS), s.passParam, 30*time.Second)
		if err := fetchOnce(ctx, pw); err != nil {
			return fmt.Errorf("%w: %w", errCredentials, err)
		}
		cfg.Password, cfg.PasswordRefused = pw.Get, pw.Invalidate
	}
	m := metrics.New(rt.Metrics, s.gateway, s.device)
	store := s3store.New(rt.AWS, s.bucket)
	rec, err := recorder.New(cfg, store, m, log)
	if err != nil {
		return err
	}
	rt.SetReady(true)
	chIDs := make([]string, len(s.channels))
	for i, ch := range s.channels {
		chIDs[i] = ch.ID
	}
	log.Info("recording", "channels", chIDs, "segment_length", s.segLen.String(), "container", s.container, "codec", s.codec, "bucket", s.bucket, "prefix", s.prefix, "spool", s.spoolDir)
	return rec.Run(ctx)
}

// fetchOnce reads the password at start-up, retrying briefly: a missing
// parameter or a denied read is a deployment error to report at once.
func fetchOnce(ctx context.Context, pw *secret.Password) error {
	b := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithMaxElapsedTime(credentialsTimeout)), ctx)
	return backoff.Retry(func() error {
		_, err := pw.Get(ctx)
		if errors.Is(err, secret.ErrNotFound) {
			return backoff.Permanent(err)
		}
		return err
	}, b)
}
