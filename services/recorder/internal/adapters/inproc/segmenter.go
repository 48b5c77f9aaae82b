// Package inproc records a channel inside the recorder process
// (app.Segmenter): its own RTSP client (TCP interleaved, through the
// channel's relay, which logs in through the login budget) depacketizes
// H.264 (RFC 6184) or H.265 (RFC 7798) video and AAC audio (RFC 3640) and
// writes MPEG-TS segments with go-astits. What it cannot copy (transcoding,
// fragmented MP4, G.711 or other audio, other video codecs) goes to the
// fallback segmenter (ffmpeg), per channel run.
package inproc

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"mediagw/services/recorder/internal/app"
	"mediagw/services/recorder/internal/domain"
)

// Segmenter is the in-process segmenter with ffmpeg as its fallback.
type Segmenter struct {
	fallback app.Segmenter
	// needFallback holds the work directories (one per channel) whose
	// stream turned out not to be copyable: later runs go straight to the
	// fallback instead of a DESCRIBE (and a login) to learn it again.
	needFallback sync.Map
}

var _ app.Segmenter = (*Segmenter)(nil)

// New returns the in-process segmenter with its fallback.
func New(fallback app.Segmenter) *Segmenter { return &Segmenter{fallback: fallback} }

// Start records the run in process when the settings and the stream allow
// a copy into MPEG-TS; otherwise the fallback runs it (with any audio
// transcoded to AAC).
func (s *Segmenter) Start(spec app.CaptureSpec, log *slog.Logger) (app.Capture, error) {
	_, known := s.needFallback.Load(spec.Dir)
	if known || (spec.Codec != "" && spec.Codec != "copy") || spec.Container != domain.MPEGTS {
		spec.Audio = "aac"
		return s.fallback.Start(spec, log)
	}
	c, err := start(spec, log)
	if errors.Is(err, errNotCopyable) {
		log.Info("stream cannot be copied in process: recording with ffmpeg", "why", err.Error())
		s.needFallback.Store(spec.Dir, true)
		spec.Audio = "aac"
		return s.fallback.Start(spec, log)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ProbeDuration measures a half-written segment (ffprobe).
func (s *Segmenter) ProbeDuration(ctx context.Context, path string) (float64, error) {
	return s.fallback.ProbeDuration(ctx, path)
}
