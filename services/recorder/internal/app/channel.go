package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"mediagw/services/recorder/internal/domain"
)

// stopGrace is how long ffmpeg gets to close its segment after SIGINT.
const stopGrace = 5 * time.Second

// runChannel is one channel's part: its uploads, its relay and its ffmpeg
// runs until ctx ends; then the channel's spool is uploaded within the stop
// budget (StopTimeout − 1 s from the stop). It returns ErrSpoolNotEmpty
// when segments are left on disk (the next recorder with the same spool
// directory uploads them).
func (r *Recorder) runChannel(ctx context.Context, c domain.Channel) error {
	var stopAt atomic.Int64
	defer context.AfterFunc(ctx, func() { stopAt.Store(time.Now().UnixNano()) })()

	// Uploads outlive ctx: they drain the spool after the stop signal.
	upCtx, cancelUploads := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelUploads()
	uploaded := make(chan struct{})
	go func() {
		defer close(uploaded)
		r.uploadLoop(upCtx, c.ID)
	}()

	anchors := make(chan time.Time, 1)
	relay, err := r.d.Relays.Open(RelaySpec{
		Gateway:    r.cfg.Gateway,
		Upstream:   c.URL,
		Login:      r.loginFunc(),
		AuthFailed: func(err error) { r.authFailed(c.ID, err) },
		Playing: func(at time.Time) {
			select {
			case anchors <- at:
			default:
			}
		},
		Logger: r.log.With("channel", c.ID),
	})
	if err != nil {
		err = fmt.Errorf("channel %s: rtsp relay: %w", c.ID, err)
	} else {
		r.m.ReceivedBytes(c.ID, relay.ReceivedBytes)
		r.recordChannel(ctx, c, relay, anchors)
		relay.Close()
	}

	// Drain the channel's spool within the stop budget.
	start := time.Now()
	if t := stopAt.Load(); t != 0 {
		start = time.Unix(0, t)
	}
	deadline := start.Add(r.cfg.StopTimeout - time.Second)
	for time.Now().Before(deadline) && r.spool.Pending(c.ID) > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	cancelUploads()
	<-uploaded
	r.updateSpoolGauges()
	if n := r.spool.Pending(c.ID); n > 0 {
		r.log.Error("stopping with segments not uploaded; a recorder with the same spool directory will upload them", "channel", c.ID, "segments", n, "spool", r.spool.WorkDir(c.ID))
		err = errors.Join(err, fmt.Errorf("%w: channel %s: %d segments", domain.ErrSpoolNotEmpty, c.ID, n))
	}
	return err
}

// supervision is a channel's restart policy and failing state, shared by
// its runs: a failing stream is reported healed by its first segment.
type supervision struct {
	policy  *domain.RestartPolicy
	failing bool
}

// recordChannel runs the channel's recording (in process or ffmpeg) again
// and again until ctx ends.
func (r *Recorder) recordChannel(ctx context.Context, c domain.Channel, relay Relay, anchors <-chan time.Time) {
	log := r.log.With("channel", c.ID)
	healthy := r.cfg.SegmentLength + 10*time.Second
	sup := &supervision{policy: domain.NewRestartPolicy(r.cfg.RestartInitial, r.cfg.RestartMax, healthy, r.cfg.FailingAfter)}
	r.m.ChannelFailing(c.ID, false)
	for ctx.Err() == nil {
		// While logins are stopped nothing is started; when they resume,
		// a run starts at once, with a fresh restart policy.
		if r.waitForLogins(ctx, c.ID) {
			if ctx.Err() != nil {
				return
			}
			sup = &supervision{policy: domain.NewRestartPolicy(r.cfg.RestartInitial, r.cfg.RestartMax, healthy, r.cfg.FailingAfter)}
			r.m.ChannelFailing(c.ID, false)
		}
		started := time.Now()
		res := r.runOnce(ctx, c.ID, relay, anchors, sup)
		if ctx.Err() != nil {
			return
		}
		if r.logins.stopped() != nil {
			continue // the run ended because logins stopped: no restart until they resume
		}
		r.m.FFmpegRestarted(c.ID, res.reason)
		ran := time.Since(started)
		wait, failing := sup.policy.RunEnded(ran, res.segments)
		r.m.ChannelFailing(c.ID, failing)
		attrs := []any{"reason", res.reason, "err", res.err, "segments", res.segments,
			"ran", ran.Round(time.Millisecond).String(), "wait", wait.Round(time.Millisecond).String()}
		switch {
		case failing && !sup.failing:
			log.Error("stream keeps failing", append([]any{"runs_in_a_row", sup.policy.Failures()}, attrs...)...)
		case !failing && sup.failing:
			log.Info("stream recovered", attrs...)
		default:
			log.Warn("recording run ended; restarting", attrs...)
		}
		sup.failing = failing
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

type runResult struct {
	reason   string // exited, stalled, start_failed, shutdown
	segments int
	err      error
}

func (r *Recorder) runOnce(ctx context.Context, ch string, relay Relay, anchors <-chan time.Time, sup *supervision) runResult {
	log := r.log.With("channel", ch)
	select { // a first-frame time left over from the previous run
	case <-anchors:
	default:
	}
	work := r.spool.WorkDir(ch)
	st := domain.RunState{Prefix: fmt.Sprintf("%d_", time.Now().UnixMilli())}
	spec := CaptureSpec{
		Input: relay.URL(), Dial: relay.Dial, RTSPTimeout: r.cfg.RTSPTimeout, Dir: work, Prefix: st.Prefix,
		SegmentLength: r.cfg.SegmentLength, Container: r.cfg.Container, Codec: r.cfg.Codec, Size: r.cfg.Size,
	}
	p, err := r.d.Segmenter.Start(spec, log)
	if err != nil {
		return runResult{reason: "start_failed", err: err}
	}
	log.Debug("ffmpeg started", "pid", p.Pid())

	res := runResult{reason: "exited"}
	var clock *domain.Clock
	var anchor time.Time
	listed := map[string]bool{}
	watchdog := time.NewTimer(r.cfg.Watchdog)
	defer watchdog.Stop()
	entries := p.Listed()
	stop := ctx.Done()
	stopping := false
	stopFFmpeg := func() {
		if !stopping {
			stopping = true
			go p.Stop(stopGrace)
		}
	}
	for entries != nil {
		select {
		case a := <-anchors:
			if anchor.IsZero() {
				anchor = a
			}
		case <-stop:
			stop = nil
			res.reason = "shutdown"
			stopFFmpeg()
		case <-watchdog.C:
			res.reason = "stalled"
			log.Warn("no segment from ffmpeg in time; stopping it", "watchdog", r.cfg.Watchdog.String())
			stopFFmpeg()
		case e, ok := <-entries:
			if !ok {
				entries = nil
				continue
			}
			listed[filepath.Base(e.Path)] = true
			if clock == nil {
				if a, ok := p.(Anchored); ok {
					if at, ok := a.Anchor(); ok {
						anchor = at // the source's own clock (RTCP)
					}
				}
				if anchor.IsZero() {
					// No first-frame time (not RTSP, or the proxy missed it):
					// the entry is written when its end arrives.
					anchor = e.Seen.Add(-domain.StreamDuration(e.End))
				}
				clock = domain.NewClock(anchor, domain.DefaultSkewTolerance, domain.DefaultSkewConfirm)
			}
			if st.Codec == "" {
				st.Codec = p.Codec()
			}
			if first, ok := p.FirstPacket(e.Path); ok && e.Start == 0 && first > 0 && first < e.End {
				e.Start = first // the stream began after stream time 0
			}
			if r.addSegment(ch, clock, e.ListEntry, e.Path, st.Codec) {
				res.segments++
				sup.policy.SegmentWritten()
				if sup.failing {
					// Healed at the first good segment, not when the run ends.
					sup.failing = false
					r.m.ChannelFailing(ch, false)
					log.Info("stream recovered", "segments", res.segments)
				}
			}
			drift, moved := clock.Observe(e.ListEntry, e.Seen)
			r.m.ClockDrift(ch, drift)
			if moved != 0 {
				log.Info("camera clock drifted: moved the time anchor", "by", moved.String())
			}
			st.Anchor, st.LastEnd = clock.Anchor(), e.End
			r.spool.SaveRun(ch, st)
			if !stopping {
				watchdog.Reset(r.cfg.Watchdog)
			}
		}
	}
	<-p.Done()
	res.err = p.Err()

	// A segment ffmpeg did not list (it was killed) is still playable.
	if clock == nil && !anchor.IsZero() {
		clock = domain.NewClock(anchor, domain.DefaultSkewTolerance, domain.DefaultSkewConfirm)
	}
	var unlisted []WorkFile
	for _, f := range r.spool.WorkFiles(ch) {
		if strings.HasPrefix(f.Name, st.Prefix) && !listed[f.Name] {
			unlisted = append(unlisted, f)
		}
	}
	r.salvage(context.WithoutCancel(ctx), ch, clock, st, unlisted)
	r.spool.ClearRun(ch)
	return res
}

// addSegment places a listed segment in time and spools it.
func (r *Recorder) addSegment(ch string, clock *domain.Clock, e domain.ListEntry, path, codec string) bool {
	start, dur := clock.Span(e)
	if dur <= 0 {
		r.spool.Discard(path)
		return false
	}
	seg := domain.Segment{Source: r.source(ch), Start: start, Duration: dur, Codec: codec, Ext: r.cfg.Container.Ext()}
	seg, dropped, err := r.spool.Add(seg, path)
	if err != nil {
		r.log.Error("spooling a segment", "channel", ch, "err", err)
		r.m.SegmentFailed(ch, "spool")
		r.spool.Discard(path)
		return false
	}
	r.log.Debug("segment spooled", "channel", ch, "start", seg.Start, "duration_ms", seg.Duration.Milliseconds(), "bytes", seg.Size)
	r.m.SegmentWritten(ch, seg.End())
	r.setLastSegment(ch, time.Now())
	r.dropped(dropped)
	r.updateSpoolGauges()
	return true
}

// salvage spools segments a killed ffmpeg left unlisted: each continues
// where the last listed one ended, its length measured by ffprobe.
func (r *Recorder) salvage(ctx context.Context, ch string, clock *domain.Clock, st domain.RunState, files []WorkFile) {
	end := st.LastEnd
	for _, f := range files {
		if f.Size == 0 {
			r.spool.Discard(f.Path)
			continue
		}
		var dur float64
		var err error
		if clock != nil {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			dur, err = r.d.Segmenter.ProbeDuration(pctx, f.Path)
			cancel()
		}
		if err != nil || clock == nil || dur <= 0 {
			if err == nil {
				err = errors.New("cannot be placed in time")
			}
			r.log.Warn("discarding a half-written segment", "channel", ch, "file", f.Name, "err", err)
			r.m.SegmentFailed(ch, "unplaceable")
			r.spool.Discard(f.Path)
			continue
		}
		e := domain.ListEntry{File: f.Path, Start: end, End: end + dur}
		if r.addSegment(ch, clock, e, f.Path, st.Codec) {
			r.log.Info("kept a half-written segment", "channel", ch, "file", f.Name, "seconds", dur)
		}
		end = e.End
	}
}

// salvageLeftovers handles what a killed predecessor left in the work
// directory, using the run state it saved.
func (r *Recorder) salvageLeftovers(ctx context.Context, ch string) {
	st, ok := r.spool.LoadRun(ch)
	var clock *domain.Clock
	if ok && !st.Anchor.IsZero() {
		clock = domain.NewClock(st.Anchor, domain.DefaultSkewTolerance, domain.DefaultSkewConfirm)
	}
	var mine, others []WorkFile
	for _, f := range r.spool.WorkFiles(ch) {
		if st.Prefix != "" && strings.HasPrefix(f.Name, st.Prefix) {
			mine = append(mine, f)
		} else {
			others = append(others, f)
		}
	}
	r.salvage(ctx, ch, clock, st, mine)
	r.salvage(ctx, ch, nil, domain.RunState{}, others)
	r.spool.ClearRun(ch)
}
