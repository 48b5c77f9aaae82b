package domain

import (
	"errors"
	"testing"
	"time"
)

func TestKeyLayout(t *testing.T) {
	s := Segment{
		Source:   Source{Gateway: "gw-1", Device: "dev-9", Channel: "1"},
		Start:    time.Date(2026, 3, 4, 23, 59, 58, 123456789, time.FixedZone("CET", 3600)),
		Duration: 30040 * time.Millisecond,
		Ext:      "ts",
	}
	// 23:59:58 CET is 22:59:58 UTC: the hour directory is UTC.
	want := "rec/gw-1/dev-9/1/2026/03/04/22/20260304T225958.123Z_30040.ts"
	if got := s.Key("/rec/"); got != want {
		t.Fatalf("Key = %q, want %q", got, want)
	}
	if got := s.Key(""); got != want[len("rec/"):] {
		t.Fatalf("Key without prefix = %q", got)
	}
	back, err := ParseKey("rec", want)
	if err != nil {
		t.Fatal(err)
	}
	if back.Source != s.Source || !back.Start.Equal(s.Start.Truncate(time.Millisecond)) || back.Duration != s.Duration || back.Ext != "ts" {
		t.Fatalf("ParseKey = %+v", back)
	}
	for _, bad := range []string{"other/gw/d/1/2026/03/04/22/x_1.ts", "rec/gw/d/1/2026/03/04/22/20260304T225958Z_1.ts", "rec/gw/d/1/2026/03/04/20260304T225958.123Z_1.ts"} {
		if _, err := ParseKey("rec", bad); err == nil {
			t.Errorf("ParseKey(%q) accepted a bad key", bad)
		}
	}
}

func TestMetadata(t *testing.T) {
	s := Segment{Source: Source{"g", "d", "2"}, Start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Duration: 1500 * time.Millisecond, Codec: "h264"}
	m := s.Metadata()
	if m["start"] != "2026-01-01T00:00:00Z" || m["end"] != "2026-01-01T00:00:01.5Z" || m["duration-ms"] != "1500" || m["codec"] != "h264" || m["channel"] != "2" {
		t.Fatalf("metadata = %v", m)
	}
}

func TestParseListEntry(t *testing.T) {
	cases := []struct {
		line string
		want ListEntry
	}{
		{"seg_000001.ts,4.080000,8.080000\n", ListEntry{"seg_000001.ts", 4.08, 8.08}},
		{`"a,""b"".ts",0.000000,1.500000`, ListEntry{`a,"b".ts`, 0, 1.5}},
	}
	for _, c := range cases {
		got, err := ParseListEntry(c.line)
		if err != nil || got != c.want {
			t.Errorf("ParseListEntry(%q) = %+v, %v; want %+v", c.line, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "x.ts", "x.ts,1", "x.ts,a,b", `"x.ts,1,2`, "x.ts,5,4", ",1,2"} {
		if _, err := ParseListEntry(bad); !errors.Is(err, ErrBadListEntry) {
			t.Errorf("ParseListEntry(%q) = %v, want ErrBadListEntry", bad, err)
		}
	}
}

func TestClockSpansAreContiguous(t *testing.T) {
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 987654321, time.UTC)
	c := NewClock(anchor, DefaultSkewTolerance, DefaultSkewConfirm)
	entries := []ListEntry{{"a", 0, 1.72}, {"b", 1.72, 5.72}, {"c", 5.72, 9.720011}, {"d", 9.720011, 13.7}}
	var prevEnd time.Time
	for i, e := range entries {
		start, dur := c.Span(e)
		if start.Nanosecond()%int(time.Millisecond) != 0 || dur%time.Millisecond != 0 {
			t.Fatalf("entry %d: span %v+%v not whole milliseconds", i, start, dur)
		}
		if i > 0 && !start.Equal(prevEnd) {
			t.Fatalf("entry %d starts %v, previous ended %v", i, start, prevEnd)
		}
		prevEnd = start.Add(dur)
	}
	if start, _ := c.Span(entries[1]); !start.Equal(time.Date(2026, 1, 1, 0, 0, 2, 707e6, time.UTC)) {
		t.Fatalf("span start = %v", start)
	}
}

func TestClockMovesOnlyOnPersistentDrift(t *testing.T) {
	anchor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(sec float64) time.Time { return anchor.Add(StreamDuration(sec)) }
	c := NewClock(anchor, 500*time.Millisecond, 3)
	// Learning: a probing backlog on the first entry, then the pipeline's
	// steady latency of 700 ms (a transcoder's lookahead).
	for i, late := range []time.Duration{3 * time.Second, 700 * time.Millisecond, 720 * time.Millisecond} {
		if d, moved := c.Observe(ListEntry{End: float64(4 * (i + 1))}, at(float64(4*(i+1))).Add(late)); d != 0 || moved != 0 {
			t.Fatalf("learning entry %d: drift %v moved %v", i, d, moved)
		}
	}
	// Steady latency is not drift.
	if d, moved := c.Observe(ListEntry{End: 16}, at(16).Add(750*time.Millisecond)); d != 50*time.Millisecond || moved != 0 {
		t.Fatalf("drift %v moved %v at steady latency", d, moved)
	}
	// A single late entry (a hiccup) does not move the anchor.
	if d, moved := c.Observe(ListEntry{End: 20}, at(20).Add(3*time.Second)); d != 2300*time.Millisecond || moved != 0 {
		t.Fatalf("drift %v moved %v", d, moved)
	}
	// Alternating signs never confirm.
	c.Observe(ListEntry{End: 24}, at(24).Add(1700*time.Millisecond))
	c.Observe(ListEntry{End: 28}, at(28).Add(-300*time.Millisecond))
	if _, moved := c.Observe(ListEntry{End: 32}, at(32).Add(1700*time.Millisecond)); moved != 0 || !c.Anchor().Equal(anchor) {
		t.Fatalf("moved %v on alternating drift", moved)
	}
	c.Observe(ListEntry{End: 36}, at(36).Add(700*time.Millisecond)) // back in tolerance
	// The camera clock runs slow: three entries in a row ~0.8 s later
	// than the latency explains.
	c.Observe(ListEntry{End: 100}, at(100).Add(1600*time.Millisecond))
	c.Observe(ListEntry{End: 104}, at(104).Add(1500*time.Millisecond))
	_, moved := c.Observe(ListEntry{End: 108}, at(108).Add(1550*time.Millisecond))
	if moved != 800*time.Millisecond || !c.Anchor().Equal(anchor.Add(800*time.Millisecond)) {
		t.Fatalf("moved %v, anchor %v; want the smallest drift, 800ms", moved, c.Anchor())
	}
	if d, moved := c.Observe(ListEntry{End: 112}, at(112).Add(1550*time.Millisecond)); moved != 0 || d != 50*time.Millisecond {
		t.Fatalf("after moving: drift %v moved %v", d, moved)
	}
}
