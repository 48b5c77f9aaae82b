// Package app is the recorder's use case: record a device's camera
// channels into the object store. Per channel an RTSP relay that holds the
// credentials, a supervised segmenter (ffmpeg) that cuts segments, the disk
// spool, and an uploader that empties it in order; on stop, the current
// segments are closed and the spool is drained within the stop budget.
// The interfaces it needs are in ports.go.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"mediagw/services/recorder/internal/domain"
)

// Config is everything the recorder needs besides its adapters.
type Config struct {
	Gateway  string
	Device   string
	Channels []domain.Channel

	// RTSPUser answers the gateway's challenge, with the password from
	// Deps.Password (none: the user alone; neither: no authentication).
	RTSPUser string
	// CredentialsTimeout bounds reading the password at start; 0: 30 s.
	CredentialsTimeout time.Duration
	// PasswordRecheck: while logins are stopped (credentials rejected or
	// the login budget spent), how often the password parameter's version
	// and the budget are looked at again; 0: 10 s.
	PasswordRecheck time.Duration

	SegmentLength time.Duration
	Container     domain.Container
	Codec         string // "" or "copy", h264, hevc
	Size          string // resize when transcoding, WIDTHxHEIGHT

	KeyPrefix string

	RTSPTimeout    time.Duration // ffmpeg -timeout; a stall is seen after about twice this
	Watchdog       time.Duration // no segment for this long: restart ffmpeg; 0: 2×segment+15 s
	RestartInitial time.Duration // first wait before a restart; 0: 1 s
	RestartMax     time.Duration // cap of the restart wait; 0: 5 s
	FailingAfter   int           // unhealthy runs in a row before a channel counts as failing; 0: 5
	GiveUpAfter    time.Duration // every channel failing this long: stop with ErrGaveUp; 0: never

	// StopTimeout is how long a channel may take after its context ends:
	// ffmpeg closes its segment, the channel's spool is uploaded, then it
	// returns.
	StopTimeout time.Duration
}

// Deps are the adapters.
type Deps struct {
	OpenSpool OpenSpool
	Uploader  Uploader
	Segmenter Segmenter
	Relays    Relays
	Password  Password    // nil: no password
	Budget    LoginBudget // every login goes through it; needed when there are credentials
	Metrics   Metrics
	Logger    *slog.Logger
}

// Recorder runs the channels of one device.
type Recorder struct {
	cfg   Config
	d     Deps
	m     Metrics
	log   *slog.Logger
	spool Spool

	logins *logins

	mu          sync.Mutex
	lastSegment map[string]time.Time
}

// New checks the configuration and fills in defaults.
func New(cfg Config, d Deps) (*Recorder, error) {
	if len(cfg.Channels) == 0 {
		return nil, errors.New("no channels to record")
	}
	if cfg.SegmentLength <= 0 {
		return nil, errors.New("segment length must be positive")
	}
	if d.OpenSpool == nil || d.Uploader == nil || d.Segmenter == nil || d.Relays == nil || d.Metrics == nil {
		return nil, errors.New("recorder: an adapter is missing")
	}
	if (d.Password != nil || cfg.RTSPUser != "") && d.Budget == nil {
		return nil, errors.New("recorder: logins need the login budget")
	}
	if cfg.Container == "" {
		cfg.Container = domain.MPEGTS
	}
	if cfg.Watchdog <= 0 {
		cfg.Watchdog = 2*cfg.SegmentLength + 15*time.Second
	}
	if cfg.RestartInitial <= 0 {
		cfg.RestartInitial = time.Second
	}
	if cfg.RestartMax <= 0 {
		cfg.RestartMax = 5 * time.Second
	}
	if cfg.FailingAfter <= 0 {
		cfg.FailingAfter = 5
	}
	if cfg.RTSPTimeout <= 0 {
		cfg.RTSPTimeout = 5 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 25 * time.Second
	}
	if cfg.CredentialsTimeout <= 0 {
		cfg.CredentialsTimeout = 30 * time.Second
	}
	if cfg.PasswordRecheck <= 0 {
		cfg.PasswordRecheck = 10 * time.Second
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Recorder{cfg: cfg, d: d, m: d.Metrics, log: log, logins: newLogins(), lastSegment: map[string]time.Time{}}, nil
}

func (r *Recorder) source(ch string) domain.Source {
	dev, name := domain.SplitChannelID(ch)
	if dev == "" {
		dev = r.cfg.Device
	}
	return domain.Source{Gateway: r.cfg.Gateway, Device: dev, Channel: name}
}

// Start prepares recording: it reads the RTSP password once (a missing
// parameter or a denied read is a deployment error: domain.ErrCredentials),
// opens the spool (domain.ErrSpoolLocked if another recorder holds it,
// domain.ErrSpool if it is unusable) and spools what an earlier recorder
// left: its queue, and the half-written segment of a killed ffmpeg.
func (r *Recorder) Start(ctx context.Context) error {
	if r.d.Password != nil {
		// One read; the SDK's retryer rides out throttling and brief
		// outages within the timeout.
		cctx, cancel := context.WithTimeout(ctx, r.cfg.CredentialsTimeout)
		_, _, err := r.d.Password.Get(cctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%w: %w", domain.ErrCredentials, err)
		}
	}
	ids := make([]string, len(r.cfg.Channels))
	for i, c := range r.cfg.Channels {
		ids[i] = c.ID
	}
	sp, dropped, err := r.d.OpenSpool(ids)
	if err != nil {
		if errors.Is(err, domain.ErrSpoolLocked) {
			return err
		}
		return fmt.Errorf("%w: %w", domain.ErrSpool, err)
	}
	r.spool = sp
	r.dropped(dropped)
	if _, n := sp.Usage(); n > 0 {
		r.log.Info("uploading segments left by an earlier recorder", "segments", n)
	}
	for _, c := range r.cfg.Channels {
		r.salvageLeftovers(ctx, c.ID)
	}
	r.updateSpoolGauges()
	r.m.CredentialsRejected("")
	now := time.Now()
	for _, c := range r.cfg.Channels {
		r.setLastSegment(c.ID, now)
	}
	return nil
}

// Close releases the spool (after every part has stopped).
func (r *Recorder) Close() {
	if r.spool != nil {
		r.spool.Close()
	}
}

// Part is a long-running piece of the recorder, run by the service runtime
// until its context ends. An error is a reason to stop the whole recorder.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
}

// Parts are what runs after Start: one part per channel (relay, ffmpeg
// supervision, uploads, and on stop the channel's drain), with credentials
// the watch that resumes stopped logins, and with GiveUpAfter the give-up
// watch.
func (r *Recorder) Parts() []Part {
	var parts []Part
	for _, c := range r.cfg.Channels {
		parts = append(parts, Part{Name: "channel " + c.ID, Run: func(ctx context.Context) error { return r.runChannel(ctx, c) }})
	}
	if r.loginFunc() != nil {
		parts = append(parts, Part{Name: "logins", Run: r.watchLogins})
	}
	if r.cfg.GiveUpAfter > 0 {
		parts = append(parts, Part{Name: "give-up", Run: r.watchGiveUp})
	}
	return parts
}

func (r *Recorder) setLastSegment(ch string, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastSegment[ch] = t
}

// watchGiveUp returns ErrGaveUp once no channel has produced a segment for
// GiveUpAfter; that stops every channel.
func (r *Recorder) watchGiveUp(ctx context.Context) error {
	tick := time.NewTicker(min(r.cfg.GiveUpAfter/4, 10*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
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
				return domain.ErrGaveUp
			}
		}
	}
}

func (r *Recorder) dropped(segs []domain.Segment) {
	for _, s := range segs {
		r.m.SegmentDropped(s.Channel)
		r.log.Warn("spool full: dropped the oldest segment", "channel", s.Channel, "start", s.Start, "duration", s.Duration.String(), "bytes", s.Size)
	}
}

func (r *Recorder) updateSpoolGauges() {
	r.m.Spool(r.spool.Usage())
}
