package ffmpeg

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mediagw/services/recorder/internal/domain"
	"mediagw/testsupport/testkit"
)

func TestArgs(t *testing.T) {
	s := Spec{Input: "rtsp://127.0.0.1:5000/Streaming/Channels/101", RTSPTimeout: 3 * time.Second, Dir: "/spool/work", Prefix: "r1_", SegmentLength: 30 * time.Second, Container: domain.MPEGTS}
	args, err := s.Args()
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	for _, want := range []string{
		"-rtsp_transport tcp -timeout 3000000 -i rtsp://127.0.0.1:5000/Streaming/Channels/101",
		"-map 0:v:0 -c:v copy -f segment -segment_time 30 -segment_list pipe:3 -segment_list_type csv",
		"-segment_format mpegts /spool/work/r1_%06d.ts",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("args %q lack %q", line, want)
		}
	}
	if strings.Contains(line, "0:a") {
		t.Errorf("args %q keep audio without being asked", line)
	}
	s.Audio = "aac"
	args, _ = s.Args()
	if line = strings.Join(args, " "); !strings.Contains(line, "-map 0:v:0 -c:v copy -map 0:a:0? -c:a aac") {
		t.Errorf("args %q do not encode the audio to AAC", line)
	}
	s.Container, s.Codec, s.Size, s.SegmentLength = domain.FragmentedMP4, "h264", "-2x720", 4500*time.Millisecond
	args, err = s.Args()
	if err != nil {
		t.Fatal(err)
	}
	line = strings.Join(args, " ")
	for _, want := range []string{"-c:v libx264", "expr:gte(t,n_forced*4.5)", "-vf scale=-2:720", "movflags=+frag_keyframe+empty_moov+default_base_moof", "r1_%06d.mp4"} {
		if !strings.Contains(line, want) {
			t.Errorf("args %q lack %q", line, want)
		}
	}
	for _, bad := range []Spec{
		{SegmentLength: 0},
		{SegmentLength: time.Second, Codec: "vp9"},
		{SegmentLength: time.Second, Size: "640x480"},
		{SegmentLength: time.Second, Codec: "h264", Size: "-2x-2"},
		{SegmentLength: time.Second, Codec: "h264", Size: "640"},
	} {
		if _, err := bad.Args(); err == nil {
			t.Errorf("Args accepted %+v", bad)
		}
	}
}

// clip renders a short H.264 test clip with a 1 s GOP (and B-frames with
// the veryfast preset).
func clip(t *testing.T, seconds int, preset ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "clip.mp4")
	pr := "ultrafast"
	if len(preset) > 0 {
		pr = preset[0]
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-preset", pr, "-g", "25", "-pix_fmt", "yuv420p", p).CombinedOutput()
	if err != nil {
		t.Fatalf("render clip: %v: %s", err, out)
	}
	return p
}

func TestProcessListsSegmentsAndFinishesOnStop(t *testing.T) {
	src := clip(t, 30)
	dir := t.TempDir()
	spec := Spec{Input: src, InputOptions: []string{"-re"}, Dir: dir, Prefix: "run1_", SegmentLength: 2 * time.Second, Container: domain.MPEGTS}
	p, err := Start("ffmpeg", spec, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(time.Second) })
	var got []Entry
	for e := range p.Entries() {
		got = append(got, e)
		if len(got) == 2 {
			p.Stop(5 * time.Second)
		}
	}
	<-p.Done()
	// Two full segments, then the one cut short by Stop.
	if len(got) != 3 {
		t.Fatalf("got %d entries, want 3: %+v", len(got), got)
	}
	for i, e := range got {
		if _, err := os.Stat(e.Path); err != nil || filepath.Dir(e.Path) != dir {
			t.Errorf("entry %d: file %s: %v", i, e.Path, err)
		}
		if i > 0 && e.Start != got[i-1].End {
			t.Errorf("entry %d starts at %v, previous ended %v", i, e.Start, got[i-1].End)
		}
	}
	if d := got[1].End - got[1].Start; d != 2 {
		t.Errorf("second segment lasts %v s, want 2", d)
	}
	if p.Codec() != "h264" {
		t.Errorf("codec = %q", p.Codec())
	}
	// Everything in the directory was listed: nothing half-written is left.
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var listed []string
	for _, e := range got {
		listed = append(listed, e.Path)
	}
	slices.Sort(files)
	if !slices.Equal(files, listed) {
		t.Errorf("files %v, listed %v", files, listed)
	}
}

// With B-frames the first packet's pts is two frames in, but the list says
// the first segment starts at 0; FirstPacket has the truth.
func TestFirstPacketOfTheFirstSegment(t *testing.T) {
	src := clip(t, 2, "veryfast")
	p, err := Start("ffmpeg", Spec{Input: src, InputOptions: []string{}, Dir: t.TempDir(), Prefix: "b_", SegmentLength: time.Second, Container: domain.MPEGTS}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var got []Entry
	for e := range p.Entries() {
		got = append(got, e)
	}
	<-p.Done()
	if len(got) < 2 || got[0].Start != 0 {
		t.Fatalf("entries %+v", got)
	}
	if first, ok := p.FirstPacket(got[0].Path); !ok || first != 0.08 {
		t.Fatalf("FirstPacket = %v, %v; want 0.08 (two frames of B-frame delay)", first, ok)
	}
	if first, ok := p.FirstPacket(got[1].Path); !ok || first != got[1].Start {
		t.Fatalf("FirstPacket of the second segment = %v, %v; the list says %v", first, ok, got[1].Start)
	}
}

func TestProcessExitClosesEntries(t *testing.T) {
	p, err := Start("ffmpeg", Spec{Input: "/nonexistent.mp4", InputOptions: []string{}, Dir: t.TempDir(), Prefix: "x", SegmentLength: time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("ffmpeg on a missing input did not exit")
	}
	if _, open := <-p.Entries(); open {
		t.Fatal("entries not closed")
	}
	if p.Err() == nil {
		t.Fatal("want an exit error for a missing input")
	}
}

func TestLineLimiter(t *testing.T) {
	l := newLineLimiter(2, time.Minute)
	t0 := time.Unix(1000, 0)
	for i, want := range []bool{true, true, false, false} {
		if ok, _ := l.allow(t0); ok != want {
			t.Fatalf("line %d allowed=%v", i, ok)
		}
	}
	if ok, suppressed := l.allow(t0.Add(time.Minute)); !ok || suppressed != 2 {
		t.Fatalf("after the period: %v, suppressed %d", ok, suppressed)
	}
}

func TestSplitLevel(t *testing.T) {
	for line, want := range map[string][2]string{
		"[segment @ 0x55] [info] Opening 'x' for writing": {"info", "[segment @ 0x55] Opening 'x' for writing"},
		"[error] Connection refused":                      {"error", "Connection refused"},
		"    Metadata:":                                   {"", "    Metadata:"},
	} {
		if l, m := splitLevel(line); l != want[0] || m != want[1] {
			t.Errorf("splitLevel(%q) = %q, %q", line, l, m)
		}
	}
}

// The lines that continue a multi-line message (ffmpeg's stream description)
// carry no level of their own: they are logged at the level of the line
// they continue, so an ordinary start logs no warning.
func TestContinuationLinesKeepTheirMessagesLevel(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w, "[info] Input #0, rtsp, from 'rtsp://127.0.0.1:1/x':\n  Metadata:\n    title           : Media Presentation\n"+
		"[error] Connection timed out\n  while reading\n")
	w.Close()
	var logs testkit.Buffer
	p := &Process{starts: map[string]float64{}}
	p.readStderr(r, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	out := logs.String()
	if strings.Count(out, `"level":"WARN"`) != 2 || !strings.Contains(out, `"line":"  while reading","ffmpeg_level":"error"`) {
		t.Fatalf("want exactly the error and its continuation as warnings:\n%s", out)
	}
	if strings.Contains(out, `"level":"WARN","msg":"ffmpeg","line":"  Metadata:"`) {
		t.Fatalf("stream description logged as a warning:\n%s", out)
	}
}
