package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"mediagw/services/recorder/internal/ffmpeg"
	"mediagw/services/recorder/internal/restart"
	"mediagw/services/recorder/internal/segment"
)

// stopGrace is how long ffmpeg gets to close its segment after SIGINT.
const stopGrace = 5 * time.Second

// recordChannel runs ffmpeg for one channel again and again until ctx ends.
func (r *Recorder) recordChannel(ctx context.Context, c Channel, input string, anchors <-chan time.Time) {
	log := r.log.With("channel", c.ID)
	healthy := r.cfg.SegmentLength + 10*time.Second
	policy := restart.NewPolicy(r.cfg.RestartInitial, r.cfg.RestartMax, healthy, r.cfg.FailingAfter)
	r.m.ChannelFailing.WithLabelValues(c.ID).Set(0)
	wasFailing := false
	for ctx.Err() == nil {
		started := time.Now()
		res := r.runOnce(ctx, c.ID, input, anchors)
		if ctx.Err() != nil {
			return
		}
		r.m.Restarts.WithLabelValues(c.ID, res.reason).Inc()
		wait, failing := policy.RunEnded(time.Since(started), res.segments)
		r.m.ChannelFailing.WithLabelValues(c.ID).Set(b2f(failing))
		switch {
		case failing && !wasFailing:
			log.Error("stream keeps failing", "runs_in_a_row", policy.Failures(), "last_reason", res.reason, "err", res.err)
		case !failing && wasFailing:
			log.Info("stream recovered")
		default:
			log.Warn("ffmpeg ended; restarting", "reason", res.reason, "err", res.err, "segments", res.segments, "ran", time.Since(started).Round(time.Millisecond).String(), "wait", wait.Round(time.Millisecond).String())
		}
		wasFailing = failing
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

// runState is what a later process needs to place the segment a killed
// ffmpeg left half-written: persisted in the work directory per entry.
type runState struct {
	Prefix  string    `json:"prefix"`
	Anchor  time.Time `json:"anchor"`
	LastEnd float64   `json:"last_end"`
	Codec   string    `json:"codec"`
}

func (r *Recorder) runOnce(ctx context.Context, ch, input string, anchors <-chan time.Time) runResult {
	log := r.log.With("channel", ch)
	select { // a first-frame time left over from the previous run
	case <-anchors:
	default:
	}
	work := r.spool.WorkDir(ch)
	st := runState{Prefix: fmt.Sprintf("%d_", time.Now().UnixMilli())}
	spec := ffmpeg.Spec{
		Input: input, RTSPTimeout: r.cfg.RTSPTimeout, Dir: work, Prefix: st.Prefix,
		SegmentLength: r.cfg.SegmentLength, Container: r.cfg.Container, Codec: r.cfg.Codec, Size: r.cfg.Size,
	}
	p, err := ffmpeg.Start(r.cfg.FFmpeg, spec, log)
	if err != nil {
		return runResult{reason: "start_failed", err: err}
	}
	log.Debug("ffmpeg started", "pid", p.Pid())

	res := runResult{reason: "exited"}
	var clock *segment.Clock
	var anchor time.Time
	listed := map[string]bool{}
	watchdog := time.NewTimer(r.cfg.Watchdog)
	defer watchdog.Stop()
	entries := p.Entries()
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
				if anchor.IsZero() {
					// No first-frame time (not RTSP, or the proxy missed it):
					// the entry is written when its end arrives.
					anchor = e.Seen.Add(-segment.StreamDuration(e.End))
				}
				clock = segment.NewClock(anchor, segment.DefaultSkewTolerance, segment.DefaultSkewConfirm)
			}
			if st.Codec == "" {
				st.Codec = p.Codec()
			}
			if first, ok := p.FirstPacket(e.Path); ok && e.Start == 0 && first > 0 && first < e.End {
				e.Start = first // the stream began after stream time 0
			}
			if r.addSegment(ch, clock, e.ListEntry, e.Path, st.Codec) {
				res.segments++
			}
			drift, moved := clock.Observe(e.ListEntry, e.Seen)
			r.m.ClockDrift.WithLabelValues(ch).Set(drift.Seconds())
			if moved != 0 {
				log.Info("camera clock drifted: moved the time anchor", "by", moved.String())
			}
			st.Anchor, st.LastEnd = clock.Anchor(), e.End
			r.saveRunState(work, st)
			if !stopping {
				watchdog.Reset(r.cfg.Watchdog)
			}
		}
	}
	<-p.Done()
	res.err = p.Err()

	// A segment ffmpeg did not list (it was killed) is still playable.
	if clock == nil && !anchor.IsZero() {
		clock = segment.NewClock(anchor, segment.DefaultSkewTolerance, segment.DefaultSkewConfirm)
	}
	r.salvage(context.WithoutCancel(ctx), ch, clock, st, unlisted(work, st.Prefix, listed))
	_ = os.Remove(filepath.Join(work, runStateFile))
	return res
}

// addSegment places a listed segment in time and spools it.
func (r *Recorder) addSegment(ch string, clock *segment.Clock, e segment.ListEntry, path, codec string) bool {
	start, dur := clock.Span(e)
	if dur <= 0 {
		removeFile(path)
		return false
	}
	seg := segment.Segment{Source: r.source(ch), Start: start, Duration: dur, Codec: codec, Ext: r.cfg.Container.Ext()}
	if fi, err := os.Stat(path); err == nil {
		seg.Size = fi.Size()
	}
	dropped, err := r.spool.Add(seg, path)
	if err != nil {
		r.log.Error("spooling a segment", "channel", ch, "err", err)
		r.m.SegmentsFailed.WithLabelValues(ch, "spool").Inc()
		removeFile(path)
		return false
	}
	r.log.Debug("segment spooled", "channel", ch, "start", seg.Start, "duration_ms", seg.Duration.Milliseconds(), "bytes", seg.Size)
	r.m.SegmentsWritten.WithLabelValues(ch).Inc()
	r.m.LastSegmentEnd.WithLabelValues(ch).Set(float64(seg.End().UnixMilli()) / 1e3)
	r.setLastSegment(ch, time.Now())
	r.dropped(dropped)
	r.updateSpoolGauges()
	return true
}

const runStateFile = "run.json"

func (r *Recorder) saveRunState(work string, st runState) {
	b, _ := json.Marshal(st)
	tmp := filepath.Join(work, runStateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o640); err == nil {
		_ = os.Rename(tmp, filepath.Join(work, runStateFile))
	}
}

// unlisted returns the run's segment files that ffmpeg did not list, in
// name (= creation) order.
func unlisted(work, prefix string, listed map[string]bool) []string {
	des, err := os.ReadDir(work)
	if err != nil {
		return nil
	}
	var out []string
	for _, de := range des {
		n := de.Name()
		if strings.HasPrefix(n, prefix) && !listed[n] && !de.IsDir() {
			out = append(out, filepath.Join(work, n))
		}
	}
	sort.Strings(out)
	return out
}

// salvage spools segments a killed ffmpeg left unlisted: each continues
// where the last listed one ended, its length measured by ffprobe.
func (r *Recorder) salvage(ctx context.Context, ch string, clock *segment.Clock, st runState, files []string) {
	end := st.LastEnd
	for _, f := range files {
		fi, err := os.Stat(f)
		if err == nil && fi.Size() == 0 {
			removeFile(f)
			continue
		}
		var dur float64
		if err == nil && clock != nil {
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			dur, err = ffmpeg.ProbeDuration(pctx, r.cfg.FFprobe, f)
			cancel()
		}
		if err != nil || clock == nil || dur <= 0 {
			if err == nil {
				err = errors.New("cannot be placed in time")
			}
			r.log.Warn("discarding a half-written segment", "channel", ch, "file", filepath.Base(f), "err", err)
			r.m.SegmentsFailed.WithLabelValues(ch, "unplaceable").Inc()
			removeFile(f)
			continue
		}
		e := segment.ListEntry{File: f, Start: end, End: end + dur}
		if r.addSegment(ch, clock, e, f, st.Codec) {
			r.log.Info("kept a half-written segment", "channel", ch, "file", filepath.Base(f), "seconds", dur)
		}
		end = e.End
	}
}

// salvageLeftovers handles what a killed predecessor left in the work
// directory, using the run state it saved.
func (r *Recorder) salvageLeftovers(ctx context.Context, ch string) {
	work := r.spool.WorkDir(ch)
	var st runState
	var clock *segment.Clock
	if b, err := os.ReadFile(filepath.Join(work, runStateFile)); err == nil && json.Unmarshal(b, &st) == nil && !st.Anchor.IsZero() {
		clock = segment.NewClock(st.Anchor, segment.DefaultSkewTolerance, segment.DefaultSkewConfirm)
	}
	des, err := os.ReadDir(work)
	if err != nil {
		return
	}
	var mine, others []string
	for _, de := range des {
		n := de.Name()
		if de.IsDir() || n == runStateFile || strings.HasSuffix(n, ".tmp") {
			continue
		}
		if st.Prefix != "" && strings.HasPrefix(n, st.Prefix) {
			mine = append(mine, filepath.Join(work, n))
		} else {
			others = append(others, filepath.Join(work, n))
		}
	}
	sort.Strings(mine)
	r.salvage(ctx, ch, clock, st, mine)
	r.salvage(ctx, ch, nil, runState{}, others)
	_ = os.Remove(filepath.Join(work, runStateFile))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
