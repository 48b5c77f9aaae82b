package ffmpeg

import (
	"context"
	"log/slog"

	"mediagw/services/recorder/internal/app"
)

// Segmenter starts ffmpeg runs and probes files with the given binaries.
type Segmenter struct {
	FFmpeg  string // default "ffmpeg"
	FFprobe string // default "ffprobe"
}

var _ app.Segmenter = Segmenter{}

// Start runs ffmpeg for one channel run; the input is read as RTSP over TCP.
func (s Segmenter) Start(spec app.CaptureSpec, log *slog.Logger) (app.Capture, error) {
	bin := s.FFmpeg
	if bin == "" {
		bin = "ffmpeg"
	}
	p, err := Start(bin, Spec{
		Input: spec.Input, RTSPTimeout: spec.RTSPTimeout, Dir: spec.Dir, Prefix: spec.Prefix,
		SegmentLength: spec.SegmentLength, Container: spec.Container, Codec: spec.Codec, Size: spec.Size, Audio: spec.Audio,
	}, log)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ProbeDuration measures a file's media with ffprobe.
func (s Segmenter) ProbeDuration(ctx context.Context, path string) (float64, error) {
	bin := s.FFprobe
	if bin == "" {
		bin = "ffprobe"
	}
	return ProbeDuration(ctx, bin, path)
}
