// Package recorder records a device's camera channels into S3: per channel
// an RTSP proxy that holds the credentials, a supervised ffmpeg that cuts
// segments, the disk spool, and an uploader that empties it in order.
package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"mediagw/services/recorder/internal/ffmpeg"
	"mediagw/services/recorder/internal/metrics"
	"mediagw/services/recorder/internal/rtspproxy"
	"mediagw/services/recorder/internal/segment"
	"mediagw/services/recorder/internal/spool"
)

// Channel is one camera channel to record.
type Channel struct {
	ID  string // used in S3 keys and metric labels
	URL string // rtsp://host[:port]/path, without credentials
}

// Config is everything the recorder needs besides its adapters.
type Config struct {
	Gateway  string
	Device   string
	Channels []Channel

	RTSPUser string
	// Password returns the RTSP password (nil: the gateway needs none).
	Password func(ctx context.Context) (string, error)
	// PasswordRefused is called when the gateway refused the password.
	PasswordRefused func()

	SegmentLength time.Duration
	Container     ffmpeg.Container
	Codec         string // "" or "copy", h264, hevc
	Size          string // resize when transcoding, WIDTHxHEIGHT

	KeyPrefix  string
	SpoolDir   string
	SpoolLimit int64

	RTSPTimeout    time.Duration // ffmpeg -timeout; a stall is seen after about twice this
	Watchdog       time.Duration // no segment for this long: restart ffmpeg; 0: 2×segment+15 s
	RestartInitial time.Duration // first wait before a restart; 0: 1 s
	RestartMax     time.Duration // cap of the restart wait; 0: 60 s
	FailingAfter   int           // unhealthy runs in a row before a channel counts as failing; 0: 5
	GiveUpAfter    time.Duration // every channel failing this long: Run returns ErrGaveUp; 0: never

	FFmpeg  string // default "ffmpeg"
	FFprobe string // default "ffprobe"

	// StopTimeout is how long Run may take after ctx is cancelled: ffmpeg
	// closes its segment, the spool is uploaded, then Run returns.
	StopTimeout time.Duration
}

// ObjectStore is where segments go (S3).
type ObjectStore interface {
	Put(ctx context.Context, key string, body io.Reader, contentType string, meta map[string]string) error
}

// Errors Run returns; main turns them into exit codes.
var (
	ErrGaveUp        = errors.New("every channel kept failing for longer than the give-up time")
	ErrSpoolNotEmpty = errors.New("stopped with segments not uploaded")
	ErrSpool         = errors.New("spool unusable")
)

// Recorder runs the channels of one device.
type Recorder struct {
	cfg   Config
	store ObjectStore
	m     *metrics.Metrics
	log   *slog.Logger
	spool *spool.Spool

	mu          sync.Mutex
	lastSegment map[string]time.Time
}

// New checks the configuration and fills in defaults.
func New(cfg Config, store ObjectStore, m *metrics.Metrics, log *slog.Logger) (*Recorder, error) {
	if len(cfg.Channels) == 0 {
		return nil, errors.New("no channels to record")
	}
	if cfg.SegmentLength <= 0 {
		return nil, errors.New("segment length must be positive")
	}
	if cfg.Container == "" {
		cfg.Container = ffmpeg.MPEGTS
	}
	if cfg.Watchdog <= 0 {
		cfg.Watchdog = 2*cfg.SegmentLength + 15*time.Second
	}
	if cfg.RestartInitial <= 0 {
		cfg.RestartInitial = time.Second
	}
	if cfg.RestartMax <= 0 {
		cfg.RestartMax = time.Minute
	}
	if cfg.FailingAfter <= 0 {
		cfg.FailingAfter = 5
	}
	if cfg.RTSPTimeout <= 0 {
		cfg.RTSPTimeout = 5 * time.Second
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if cfg.FFprobe == "" {
		cfg.FFprobe = "ffprobe"
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 25 * time.Second
	}
	return &Recorder{cfg: cfg, store: store, m: m, log: log, lastSegment: map[string]time.Time{}}, nil
}

func (r *Recorder) source(ch string) segment.Source {
	return segment.Source{Gateway: r.cfg.Gateway, Device: r.cfg.Device, Channel: ch}
}

// Run records until ctx is cancelled, then closes the current segments,
// uploads what is spooled and returns within StopTimeout: nil when all was
// uploaded, ErrSpoolNotEmpty when segments are left on disk (the next
// recorder with the same spool directory uploads them), ErrGaveUp if every
// channel failed for GiveUpAfter.
func (r *Recorder) Run(ctx context.Context) error {
	ids := make([]string, len(r.cfg.Channels))
	for i, c := range r.cfg.Channels {
		ids[i] = c.ID
	}
	sp, dropped, err := spool.Open(r.cfg.SpoolDir, r.source(""), ids, r.cfg.SpoolLimit)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSpool, err)
	}
	defer sp.Close()
	r.spool = sp
	r.dropped(dropped)
	if _, n := sp.Usage(); n > 0 {
		r.log.Info("uploading segments left by an earlier recorder", "segments", n)
	}
	for _, c := range r.cfg.Channels {
		r.salvageLeftovers(ctx, c.ID)
	}
	r.updateSpoolGauges()

	var stopAt atomic.Int64
	defer context.AfterFunc(ctx, func() { stopAt.Store(time.Now().UnixNano()) })()

	// Uploads outlive ctx: they drain the spool after the stop signal.
	upCtx, cancelUploads := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelUploads()
	var uploads sync.WaitGroup
	for _, c := range r.cfg.Channels {
		uploads.Add(1)
		go func() {
			defer uploads.Done()
			r.uploadLoop(upCtx, c.ID)
		}()
	}

	recCtx, stopRecording := context.WithCancelCause(ctx)
	defer stopRecording(nil)
	var recs sync.WaitGroup
	var proxies []*rtspproxy.Proxy
	for _, c := range r.cfg.Channels {
		anchors := make(chan time.Time, 1)
		p, err := rtspproxy.Listen(rtspproxy.Config{
			Upstream:     c.URL,
			Credentials:  r.credentials(),
			AuthRejected: r.cfg.PasswordRefused,
			Playing: func(at time.Time) {
				select {
				case anchors <- at:
				default:
				}
			},
			Logger: r.log.With("channel", c.ID),
		})
		if err != nil {
			stopRecording(err)
			break
		}
		proxies = append(proxies, p)
		r.m.ReceivedBytes(c.ID, p.ReceivedBytes)
		r.setLastSegment(c.ID, time.Now())
		recs.Add(1)
		go func() {
			defer recs.Done()
			r.recordChannel(recCtx, c, p.URL(), anchors)
		}()
	}
	if r.cfg.GiveUpAfter > 0 {
		go r.watchGiveUp(recCtx, stopRecording)
	}
	recs.Wait()
	for _, p := range proxies {
		p.Close()
	}
	cause := context.Cause(recCtx)

	// Drain the spool within the stop budget.
	start := time.Now()
	if t := stopAt.Load(); t != 0 {
		start = time.Unix(0, t)
	}
	deadline := start.Add(r.cfg.StopTimeout - time.Second)
	for time.Now().Before(deadline) {
		if _, n := sp.Usage(); n == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancelUploads()
	uploads.Wait()
	r.updateSpoolGauges()

	var errs []error
	if cause != nil && !errors.Is(cause, context.Canceled) {
		errs = append(errs, cause)
	}
	if b, n := sp.Usage(); n > 0 {
		r.log.Error("stopping with segments not uploaded; a recorder with the same spool directory will upload them", "segments", n, "bytes", b, "spool", r.cfg.SpoolDir)
		errs = append(errs, fmt.Errorf("%w: %d segments in %s", ErrSpoolNotEmpty, n, r.cfg.SpoolDir))
	}
	return errors.Join(errs...)
}

func (r *Recorder) credentials() func(context.Context) (string, string, error) {
	if r.cfg.Password == nil && r.cfg.RTSPUser == "" {
		return nil
	}
	return func(ctx context.Context) (string, string, error) {
		if r.cfg.Password == nil {
			return r.cfg.RTSPUser, "", nil
		}
		p, err := r.cfg.Password(ctx)
		return r.cfg.RTSPUser, p, err
	}
}

func (r *Recorder) setLastSegment(ch string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastSegment[ch] = t
}

// watchGiveUp stops recording with ErrGaveUp once no channel has produced
// a segment for GiveUpAfter.
func (r *Recorder) watchGiveUp(ctx context.Context, stop context.CancelCauseFunc) {
	tick := time.NewTicker(min(r.cfg.GiveUpAfter/4, 10*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			r.mu.Lock()
			latest := time.Time{}
			for _, t := range r.lastSegment {
				if t.After(latest) {
					latest = t
				}
			}
			r.mu.Unlock()
			if now.Sub(latest) >= r.cfg.GiveUpAfter {
				r.log.Error("giving up: no channel produced a segment", "for", now.Sub(latest).Round(time.Second).String())
				stop(ErrGaveUp)
				return
			}
		}
	}
}

func (r *Recorder) dropped(segs []segment.Segment) {
	for _, s := range segs {
		r.m.SegmentsDropped.WithLabelValues(s.Channel).Inc()
		r.log.Warn("spool full: dropped the oldest segment", "channel", s.Channel, "start", s.Start, "duration", s.Duration.String(), "bytes", s.Size)
	}
}

func (r *Recorder) updateSpoolGauges() {
	b, n := r.spool.Usage()
	r.m.SpoolBytes.Set(float64(b))
	r.m.SpoolSegments.Set(float64(n))
}

// removeFile deletes a segment file that cannot be kept.
func removeFile(path string) { _ = os.Remove(path) }
