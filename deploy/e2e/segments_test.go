package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// frame is one frame of the simulator's 25 fps streams: the most two
// consecutive segments of one run may be apart (gap or overlap).
const frame = 40 * time.Millisecond

// keyTimeLayout is the recorder's segment start in keys (RFC 3339 basic, ms).
const keyTimeLayout = "20060102T150405.000Z"

// segment is one recorded object, as its key describes it.
type segment struct {
	Key      string
	Start    time.Time
	Duration time.Duration
	Size     int64
}

func (s segment) End() time.Time { return s.Start.Add(s.Duration) }

func (s segment) String() string {
	return fmt.Sprintf("%s+%s", s.Start.Format("15:04:05.000"), s.Duration)
}

// parseSegmentKey reads <prefix>/<gw>/<dev>/<ch>/YYYY/MM/DD/HH/<start>_<ms>.<ext>.
func parseSegmentKey(key string) (segment, error) {
	base := path.Base(key)
	base = strings.TrimSuffix(base, path.Ext(base))
	startS, msS, ok := strings.Cut(base, "_")
	if !ok {
		return segment{}, fmt.Errorf("key %s: no _<duration>", key)
	}
	start, err := time.Parse(keyTimeLayout, startS)
	if err != nil {
		return segment{}, fmt.Errorf("key %s: start: %w", key, err)
	}
	ms, err := strconv.ParseInt(msS, 10, 64)
	if err != nil || ms <= 0 {
		return segment{}, fmt.Errorf("key %s: bad duration %q", key, msS)
	}
	hour := start.UTC().Format("2006/01/02/15")
	if !strings.HasSuffix(path.Dir(key), hour) {
		return segment{}, fmt.Errorf("key %s: hour directory does not match the start %s", key, hour)
	}
	return segment{Key: key, Start: start, Duration: time.Duration(ms) * time.Millisecond}, nil
}

// recordings reads the segments of one channel from S3.
type recordings struct {
	s3     *s3.Client
	bucket string
	prefix string // "recordings/<gateway>"
}

// list returns the channel's segments ordered by start.
func (r recordings) list(ctx context.Context, device string, channel int) ([]segment, error) {
	prefix := fmt.Sprintf("%s/%s/%d/", r.prefix, device, channel)
	var out []segment
	p := s3.NewListObjectsV2Paginator(r.s3, &s3.ListObjectsV2Input{Bucket: aws.String(r.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			s, err := parseSegmentKey(aws.ToString(o.Key))
			if err != nil {
				return nil, err
			}
			s.Size = aws.ToInt64(o.Size)
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}

// runs splits segments (ordered by start) where two consecutive ones are
// more than one frame apart: each run is what one uninterrupted ffmpeg
// run recorded.
func runs(segs []segment) [][]segment {
	var out [][]segment
	for i, s := range segs {
		if i == 0 || absDur(s.Start.Sub(segs[i-1].End())) > frame {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], s)
	}
	return out
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func describe(segs []segment) string {
	var b strings.Builder
	for i, s := range segs {
		if i > 0 {
			fmt.Fprintf(&b, " [%+dms] ", s.Start.Sub(segs[i-1].End()).Milliseconds())
		}
		b.WriteString(s.String())
	}
	return b.String()
}

// checkObject downloads a segment, checks its metadata against the key and
// probes it with ffprobe (H.264, as long as the key says); it returns the
// media duration.
func (r recordings) checkObject(ctx context.Context, dir string, s segment) (time.Duration, error) {
	out, err := r.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(s.Key)})
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", s.Key, err)
	}
	defer out.Body.Close()
	meta := out.Metadata
	if got := meta["codec"]; got != "h264" {
		return 0, fmt.Errorf("%s: metadata codec %q, want h264", s.Key, got)
	}
	for name, want := range map[string]time.Time{"start": s.Start, "end": s.End()} {
		got, err := time.Parse(time.RFC3339Nano, meta[name])
		if err != nil || !got.Equal(want) {
			return 0, fmt.Errorf("%s: metadata %s %q, the key says %s", s.Key, name, meta[name], want.Format(time.RFC3339Nano))
		}
	}
	if got := meta["duration-ms"]; got != strconv.FormatInt(s.Duration.Milliseconds(), 10) {
		return 0, fmt.Errorf("%s: metadata duration-ms %q, the key says %d", s.Key, got, s.Duration.Milliseconds())
	}
	f, err := os.CreateTemp(dir, "segment-*"+path.Ext(s.Key))
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	if _, err := f.ReadFrom(out.Body); err != nil {
		f.Close()
		return 0, fmt.Errorf("download %s: %w", s.Key, err)
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	d, err := probeH264(ctx, f.Name())
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.Key, err)
	}
	// The key's times are what continuity is judged by: they must be the media's.
	if absDur(d-s.Duration) > 2*frame {
		return d, fmt.Errorf("%s: ffprobe reads %s of media, the key says %s", s.Key, d, s.Duration)
	}
	return d, nil
}

// probeH264 checks with ffprobe that file holds exactly one stream, H.264
// video, and returns the container's duration.
func probeH264(ctx context.Context, file string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries",
		"stream=codec_type,codec_name,width,height:format=duration,format_name", "-of", "json", file)
	b, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return 0, fmt.Errorf("ffprobe %s: %w %s", filepath.Base(file), err, stderr)
	}
	var probe struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
		Format struct {
			Duration   string `json:"duration"`
			FormatName string `json:"format_name"`
		} `json:"format"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return 0, fmt.Errorf("ffprobe output: %w: %s", err, b)
	}
	if len(probe.Streams) != 1 || probe.Streams[0].CodecType != "video" || probe.Streams[0].CodecName != "h264" || probe.Streams[0].Width == 0 {
		return 0, fmt.Errorf("ffprobe: want one H.264 video stream, got %s", b)
	}
	secs, err := strconv.ParseFloat(probe.Format.Duration, 64)
	if err != nil {
		return 0, fmt.Errorf("ffprobe: duration %q: %w", probe.Format.Duration, err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}
