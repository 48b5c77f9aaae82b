// Package ffmpeg runs Debian's ffmpeg as the recorder's segmenter
// (app.Segmenter): one process per channel run, reading RTSP over TCP,
// cutting segments with the segment muxer and reporting each finished
// segment on a pipe; ffprobe measures half-written segments.
package ffmpeg

import (
	"errors"
	"path/filepath"
	"strconv"
	"time"

	"mediagw/services/recorder/internal/domain"
)

// Codecs the recorder can transcode to, by the name used in configuration
// and S3 metadata, with the ffmpeg encoder.
var encoders = map[string]string{"h264": "libx264", "hevc": "libx265"}

// Spec is one ffmpeg run.
type Spec struct {
	Input string // URL (or file) to read
	// InputOptions go before -i. Nil means RTSP over TCP with RTSPTimeout.
	InputOptions  []string
	RTSPTimeout   time.Duration
	Dir           string // where segment files are written
	Prefix        string // file name prefix, unique per run
	SegmentLength time.Duration
	Container     domain.Container
	Codec         string // "" or "copy": stream copy; else h264 or hevc
	Size          string // optional resize when transcoding
	Audio         string // "": no audio; "aac": the first audio stream, if any, encoded to AAC
}

// Pattern is the segment file name template of the run.
func (s Spec) Pattern() string {
	return filepath.Join(s.Dir, s.Prefix+"%06d."+s.Container.Ext())
}

// Args is ffmpeg's command line (without the program name). It contains
// the input URL as given: never put credentials in it.
func (s Spec) Args() ([]string, error) {
	if s.SegmentLength <= 0 {
		return nil, errors.New("segment length must be positive")
	}
	if err := domain.ValidCodec(s.Codec); err != nil {
		return nil, err
	}
	width, height, err := domain.ParseSize(s.Size)
	if err != nil {
		return nil, err
	}
	if s.Size != "" && (s.Codec == "" || s.Codec == "copy") {
		return nil, errors.New("resizing needs a codec to encode with")
	}
	seg := strconv.FormatFloat(s.SegmentLength.Seconds(), 'f', -1, 64)
	// level+ prefixes each line with its level, so warnings can be told
	// from the notes the recorder reads: the output codec (info) and each
	// segment's first packet (verbose; a few lines per segment).
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+verbose"}
	in := s.InputOptions
	if in == nil {
		to := s.RTSPTimeout
		if to <= 0 {
			to = 5 * time.Second
		}
		// -timeout is the socket I/O timeout in µs; -stimeout and
		// -rw_timeout are refused for RTSP input by ffmpeg 5.1.
		in = []string{"-rtsp_transport", "tcp", "-timeout", strconv.FormatInt(to.Microseconds(), 10)}
	}
	args = append(args, in...)
	args = append(args, "-i", s.Input, "-map", "0:v:0")
	if enc, ok := encoders[s.Codec]; ok {
		args = append(args, "-c:v", enc, "-preset", "veryfast",
			// Keyframes on the segment grid, so cuts land on time.
			"-force_key_frames", "expr:gte(t,n_forced*"+seg+")")
		if s.Size != "" {
			args = append(args, "-vf", "scale="+width+":"+height)
		}
	} else {
		args = append(args, "-c:v", "copy")
	}
	if s.Audio == "aac" {
		args = append(args, "-map", "0:a:0?", "-c:a", "aac", "-b:a", "64k")
	}
	args = append(args, "-f", "segment", "-segment_time", seg,
		// The list goes to fd 3 (the pipe the recorder reads): one CSV line
		// per finished segment, written the moment it is closed.
		"-segment_list", "pipe:3", "-segment_list_type", "csv")
	switch s.Container {
	case domain.FragmentedMP4:
		args = append(args, "-segment_format", "mp4",
			"-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof")
	default:
		args = append(args, "-segment_format", "mpegts")
	}
	return append(args, s.Pattern()), nil
}
