package recorder

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/cenkalti/backoff/v4"

	"mediagw/services/recorder/internal/spool"
)

// uploadAttemptTimeout bounds one upload attempt so a hung connection does
// not hold the queue.
const uploadAttemptTimeout = 2 * time.Minute

// uploadLoop uploads a channel's spooled segments oldest first, retrying
// the oldest with capped backoff while S3 fails, so order is kept.
func (r *Recorder) uploadLoop(ctx context.Context, ch string) {
	log := r.log.With("channel", ch)
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(500*time.Millisecond),
		backoff.WithMaxInterval(30*time.Second),
		backoff.WithMaxElapsedTime(0),
	)
	failures := 0
	for {
		it, err := r.spool.Next(ctx, ch)
		if err != nil {
			return
		}
		started := time.Now()
		err = r.upload(ctx, it)
		if err == nil {
			r.m.UploadSeconds.Observe(time.Since(started).Seconds())
			r.m.SegmentsUploaded.WithLabelValues(ch).Inc()
			r.m.UploadedBytes.WithLabelValues(ch).Add(float64(it.Segment.Size))
			r.m.LastUploadedEnd.WithLabelValues(ch).Set(float64(it.Segment.End().UnixMilli()) / 1e3)
			if err := r.spool.Done(it); err != nil {
				log.Error("removing an uploaded segment from the spool", "err", err)
			}
			r.updateSpoolGauges()
			if failures > 0 {
				log.Info("uploads work again", "failed_attempts", failures)
			}
			failures = 0
			b.Reset()
			continue
		}
		if errors.Is(err, os.ErrNotExist) {
			// Deleted from outside: nothing left to retry.
			log.Error("spooled segment file vanished", "file", it.Path)
			r.m.SegmentsFailed.WithLabelValues(ch, "missing").Inc()
			_ = r.spool.Done(it)
			r.updateSpoolGauges()
			continue
		}
		r.spool.Release(it)
		if ctx.Err() != nil {
			return
		}
		failures++
		r.m.UploadFailures.WithLabelValues(ch).Inc()
		wait := b.NextBackOff()
		log.Warn("upload failed; segment stays spooled", "err", err, "attempt", failures, "retry_in", wait.Round(time.Millisecond).String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (r *Recorder) upload(ctx context.Context, it *spool.Item) error {
	f, err := os.Open(it.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, uploadAttemptTimeout)
	defer cancel()
	return r.store.Put(ctx, it.Segment.Key(r.cfg.KeyPrefix), f, r.cfg.Container.ContentType(), it.Segment.Metadata())
}
