package app

import (
	"context"
	"errors"
	"io/fs"
	"time"

	"mediagw/services/recorder/internal/domain"
)

// uploadAttemptTimeout bounds one upload attempt so a hung connection does
// not hold the queue.
const uploadAttemptTimeout = 2 * time.Minute

// Waits between upload attempts of a segment while the store fails: the
// spool holds segments through an outage of any length, so this is not a
// retry of one request (the SDK does that) but the pace of the queue.
const (
	uploadRetryInitial = 500 * time.Millisecond
	uploadRetryMax     = 30 * time.Second
)

// uploadLoop uploads a channel's spooled segments oldest first, retrying
// the oldest with capped backoff while S3 fails, so order is kept.
func (r *Recorder) uploadLoop(ctx context.Context, ch string) {
	log := r.log.With("channel", ch)
	b := domain.Backoff{Initial: uploadRetryInitial, Max: uploadRetryMax, Multiplier: 1.5, Jitter: 0.5}
	failures := 0
	for {
		it, err := r.spool.Next(ctx, ch)
		if err != nil {
			return
		}
		started := time.Now()
		err = r.upload(ctx, it)
		if err == nil {
			r.m.SegmentUploaded(ch, it.Segment.Size, time.Since(started), it.Segment.End())
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
		if errors.Is(err, fs.ErrNotExist) {
			// Deleted from outside: nothing left to retry.
			log.Error("spooled segment file vanished", "file", it.Path)
			r.m.SegmentFailed(ch, "missing")
			_ = r.spool.Done(it)
			r.updateSpoolGauges()
			continue
		}
		r.spool.Release(it)
		if ctx.Err() != nil {
			return
		}
		failures++
		r.m.UploadFailed(ch)
		wait := b.Next()
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

func (r *Recorder) upload(ctx context.Context, it *domain.Spooled) error {
	ctx, cancel := context.WithTimeout(ctx, uploadAttemptTimeout)
	defer cancel()
	return r.d.Uploader.Upload(ctx, it.Segment.Key(r.cfg.KeyPrefix), it.Path, r.cfg.Container.ContentType(), it.Segment.Metadata())
}
