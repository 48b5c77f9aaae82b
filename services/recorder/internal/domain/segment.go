package domain

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Source identifies the stream a segment belongs to.
type Source struct {
	Gateway string
	Device  string
	Channel string
}

// Segment is one finished media file with its place in time.
type Segment struct {
	Source
	// Start is the wall-clock time of the segment's first frame, truncated
	// to the millisecond so that Start+Duration of one segment equals the
	// Start of the next segment of the same run exactly.
	Start    time.Time
	Duration time.Duration // whole milliseconds
	Codec    string        // e.g. "h264"
	Ext      string        // file extension without dot: "ts" or "mp4"
	Size     int64         // bytes
}

// End is the wall-clock time just after the segment's last frame.
func (s Segment) End() time.Time { return s.Start.Add(s.Duration) }

// StartLayout formats a segment's start in object keys: RFC 3339 basic
// format in UTC with milliseconds.
const StartLayout = "20060102T150405.000Z"

// Key is the S3 object key:
//
//	<prefix>/<gateway>/<device>/<channel>/YYYY/MM/DD/HH/<start>_<duration ms>.<ext>
//
// The hour directories are the segment's own start time in UTC, so listing
// a time range is a prefix scan; an empty prefix leaves it out.
func (s Segment) Key(prefix string) string {
	st := s.Start.UTC()
	name := fmt.Sprintf("%s_%d.%s", st.Format(StartLayout), s.Duration.Milliseconds(), s.Ext)
	parts := []string{s.Gateway, s.Device, s.Channel, st.Format("2006/01/02/15"), name}
	if p := strings.Trim(prefix, "/"); p != "" {
		parts = append([]string{p}, parts...)
	}
	return path.Join(parts...)
}

// Metadata is the S3 object metadata (x-amz-meta-*) of a segment.
func (s Segment) Metadata() map[string]string {
	return map[string]string{
		"start":       s.Start.UTC().Format(time.RFC3339Nano),
		"end":         s.End().UTC().Format(time.RFC3339Nano),
		"duration-ms": strconv.FormatInt(s.Duration.Milliseconds(), 10),
		"codec":       s.Codec,
		"gateway":     s.Gateway,
		"device":      s.Device,
		"channel":     s.Channel,
	}
}

var keyName = regexp.MustCompile(`^(\d{8}T\d{6}\.\d{3}Z)_(\d+)\.([a-z0-9]+)$`)

// ParseKey reads a key made by Key back into its source, start, duration
// and extension (the operator CLI and tests list recordings with it).
func ParseKey(prefix, key string) (Segment, error) {
	rest := key
	if p := strings.Trim(prefix, "/"); p != "" {
		var ok bool
		if rest, ok = strings.CutPrefix(key, p+"/"); !ok {
			return Segment{}, fmt.Errorf("key %q: not under prefix %q", key, p)
		}
	}
	f := strings.Split(rest, "/")
	if len(f) != 8 {
		return Segment{}, fmt.Errorf("key %q: want <gateway>/<device>/<channel>/YYYY/MM/DD/HH/<name>", key)
	}
	m := keyName.FindStringSubmatch(f[7])
	if m == nil {
		return Segment{}, fmt.Errorf("key %q: name %q is not <start>_<ms>.<ext>", key, f[7])
	}
	start, err := time.Parse(StartLayout, m[1])
	if err != nil {
		return Segment{}, fmt.Errorf("key %q: %w", key, err)
	}
	ms, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return Segment{}, fmt.Errorf("key %q: %w", key, err)
	}
	return Segment{
		Source:   Source{Gateway: f[0], Device: f[1], Channel: f[2]},
		Start:    start,
		Duration: time.Duration(ms) * time.Millisecond,
		Ext:      m[3],
	}, nil
}

// ListEntry is one line of the segment muxer's CSV list: the file it
// finished and the stream-time span it covers, in seconds.
type ListEntry struct {
	File  string
	Start float64
	End   float64
}

// ErrBadListEntry is returned for a list line that cannot be read.
var ErrBadListEntry = errors.New("bad segment list entry")

// ParseListEntry reads one line of `-segment_list_type csv`:
// `<file>,<start>,<end>`, the file name CSV-quoted when it needs it.
func ParseListEntry(line string) (ListEntry, error) {
	line = strings.TrimRight(line, "\r\n")
	var name, rest string
	if strings.HasPrefix(line, `"`) {
		var b strings.Builder
		i := 1
		for ; i < len(line); i++ {
			if line[i] == '"' {
				if i+1 < len(line) && line[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			b.WriteByte(line[i])
		}
		if i >= len(line) {
			return ListEntry{}, fmt.Errorf("%w: unterminated quote in %q", ErrBadListEntry, line)
		}
		name, rest = b.String(), line[i+1:]
		if !strings.HasPrefix(rest, ",") {
			return ListEntry{}, fmt.Errorf("%w: %q", ErrBadListEntry, line)
		}
		rest = rest[1:]
	} else {
		var ok bool
		if name, rest, ok = strings.Cut(line, ","); !ok {
			return ListEntry{}, fmt.Errorf("%w: %q", ErrBadListEntry, line)
		}
	}
	startS, endS, ok := strings.Cut(rest, ",")
	if !ok || name == "" {
		return ListEntry{}, fmt.Errorf("%w: %q", ErrBadListEntry, line)
	}
	start, err1 := strconv.ParseFloat(startS, 64)
	end, err2 := strconv.ParseFloat(endS, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ListEntry{}, fmt.Errorf("%w: %q: %w", ErrBadListEntry, line, err)
	}
	if end < start {
		return ListEntry{}, fmt.Errorf("%w: %q: ends before it starts", ErrBadListEntry, line)
	}
	return ListEntry{File: name, Start: start, End: end}, nil
}

// StreamDuration converts a stream time in seconds (as the list prints it,
// to the microsecond) to a duration.
func StreamDuration(sec float64) time.Duration {
	return time.Duration(sec*1e6+0.5) * time.Microsecond
}
