package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"mediagw/services/recorder/internal/domain"
)

var src = domain.Source{Gateway: "gw1", Device: "dev1"}

func seg(ch string, start time.Time) domain.Segment {
	s := domain.Segment{Source: src, Start: start, Duration: 4 * time.Second, Codec: "h264", Ext: "ts"}
	s.Channel = ch
	return s
}

// writeSegment puts a file of n bytes in the channel's work dir, as ffmpeg would.
func writeSegment(t *testing.T, s *Spool, ch, name string, n int) string {
	t.Helper()
	p := filepath.Join(s.WorkDir(ch), name)
	if err := os.WriteFile(p, make([]byte, n), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAddNextDoneInStartOrder(t *testing.T) {
	root := t.TempDir()
	s, dropped, err := Open(root, src, []string{"1"}, 1<<20)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("open: %v %v", dropped, err)
	}
	defer s.Close()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// Added out of order: the queue is by start time.
	for i, off := range []int{2, 0, 1} {
		f := writeSegment(t, s, "1", "seg"+string(rune('a'+i))+".ts", 100)
		if _, _, err := s.Add(seg("1", t0.Add(time.Duration(off)*4*time.Second)), f); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("work file %s still there after Add", f)
		}
	}
	if b, n := s.Usage(); b != 300 || n != 3 {
		t.Fatalf("usage = %d bytes %d segments, want 300, 3", b, n)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		it, err := s.Next(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		if want := t0.Add(time.Duration(i) * 4 * time.Second); !it.Segment.Start.Equal(want) {
			t.Fatalf("item %d starts %v, want %v", i, it.Segment.Start, want)
		}
		if err := s.Done(it); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(it.Path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("uploaded file %s not deleted", it.Path)
		}
	}
	if b, n := s.Usage(); b != 0 || n != 0 {
		t.Fatalf("usage after draining = %d, %d", b, n)
	}
	ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Next(ctx2, "1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on empty queue = %v, want deadline exceeded", err)
	}
}

// Next blocks on an empty channel and returns the segment as soon as it is
// added. In a synctest bubble, Wait returns once the goroutine calling Next
// is durably blocked, so "not returned before Add" is a fact, not a guess.
func TestNextWakesOnAdd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _, err := Open(t.TempDir(), src, []string{"1"}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got := make(chan *domain.Spooled, 1)
		go func() {
			it, _ := s.Next(context.Background(), "1")
			got <- it
		}()
		synctest.Wait()
		select {
		case it := <-got:
			t.Fatalf("Next returned %v on an empty channel instead of waiting", it)
		default:
		}
		if _, _, err := s.Add(seg("1", time.Now()), writeSegment(t, s, "1", "a.ts", 10)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case it := <-got:
			if it == nil {
				t.Fatal("Next returned nil")
			}
		default:
			t.Fatal("Next did not wake up after Add")
		}
	})
}

func TestBoundDropsOldestAcrossChannelsButNotBusy(t *testing.T) {
	s, _, err := Open(t.TempDir(), src, []string{"1", "2"}, 350)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	add := func(ch string, off int, name string) []domain.Segment {
		t.Helper()
		_, d, err := s.Add(seg(ch, t0.Add(time.Duration(off)*time.Second)), writeSegment(t, s, ch, name, 100))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	add("1", 0, "a.ts")
	add("2", 1, "b.ts")
	// Channel 1's oldest is being uploaded: it must survive.
	busy, err := s.Next(context.Background(), "1")
	if err != nil {
		t.Fatal(err)
	}
	add("1", 2, "c.ts")
	d := add("2", 3, "d.ts") // 400 bytes > 350: drop one
	if len(d) != 1 || d[0].Channel != "2" || !d[0].Start.Equal(t0.Add(time.Second)) {
		t.Fatalf("dropped %+v, want channel 2's segment at +1s", d)
	}
	if b, n := s.Usage(); b != 300 || n != 3 {
		t.Fatalf("usage = %d, %d; want 300, 3", b, n)
	}
	if _, err := os.Stat(busy.Path); err != nil {
		t.Fatalf("busy segment deleted: %v", err)
	}
}

func TestReopenQueuesLeftoversAndLocks(t *testing.T) {
	root := t.TempDir()
	s, _, err := Open(root, src, []string{"1"}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 123e6, time.UTC)
	want := seg("1", t0)
	if _, _, err := s.Add(want, writeSegment(t, s, "1", "a.ts", 42)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(root, src, []string{"1"}, 1<<20); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of a locked channel = %v, want ErrLocked", err)
	}
	s.Close()

	s2, dropped, err := Open(root, src, []string{"1"}, 1<<20)
	if err != nil || len(dropped) != 0 {
		t.Fatalf("reopen: %v %v", dropped, err)
	}
	defer s2.Close()
	it, err := s2.Next(context.Background(), "1")
	if err != nil {
		t.Fatal(err)
	}
	want.Size = 42
	if it.Segment != want {
		t.Fatalf("reloaded %+v, want %+v", it.Segment, want)
	}
}

func TestReopenOverBoundDropsOldest(t *testing.T) {
	root := t.TempDir()
	s, _, err := Open(root, src, []string{"1"}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	for i, name := range []string{"a.ts", "b.ts", "c.ts"} {
		if _, _, err := s.Add(seg("1", t0.Add(time.Duration(i)*time.Second)), writeSegment(t, s, "1", name, 100)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s2, dropped, err := Open(root, src, []string{"1"}, 250)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if len(dropped) != 1 || !dropped[0].Start.Equal(t0) {
		t.Fatalf("dropped %+v, want the segment at t0", dropped)
	}
}

func TestReleaseRequeues(t *testing.T) {
	s, _, err := Open(t.TempDir(), src, []string{"1"}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, err := s.Add(seg("1", time.Now()), writeSegment(t, s, "1", "a.ts", 1)); err != nil {
		t.Fatal(err)
	}
	it, _ := s.Next(context.Background(), "1")
	s.Release(it)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	it2, err := s.Next(ctx, "1")
	if err != nil || it2 != it {
		t.Fatalf("after Release, Next = %v, %v; want the same item", it2, err)
	}
}

// The work area: ffmpeg's files by name (run state and temporary files
// left out), the run state saved, read back by the next process and
// cleared, and files discarded.
func TestWorkAreaAndRunState(t *testing.T) {
	root := t.TempDir()
	s, _, err := Open(root, src, []string{"1"}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	writeSegment(t, s, "1", "r2_000001.ts", 7)
	writeSegment(t, s, "1", "r2_000000.ts", 0)
	writeSegment(t, s, "1", "x.tmp", 1)
	anchor := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	st := domain.RunState{Prefix: "r2_", Anchor: anchor, LastEnd: 12.5, Codec: "h264"}
	s.SaveRun("1", st)
	files := s.WorkFiles("1")
	if len(files) != 2 || files[0].Name != "r2_000000.ts" || files[1].Name != "r2_000001.ts" || files[1].Size != 7 ||
		files[1].Path != filepath.Join(s.WorkDir("1"), "r2_000001.ts") {
		t.Fatalf("work files %+v", files)
	}
	s.Close()

	s2, _, err := Open(root, src, []string{"1"}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, ok := s2.LoadRun("1")
	if !ok || got.Prefix != st.Prefix || !got.Anchor.Equal(anchor) || got.LastEnd != 12.5 || got.Codec != "h264" {
		t.Fatalf("LoadRun = %+v, %v; want %+v", got, ok, st)
	}
	s2.ClearRun("1")
	if _, ok := s2.LoadRun("1"); ok {
		t.Fatal("run state still there after ClearRun")
	}
	s2.Discard(files[0].Path)
	if files := s2.WorkFiles("1"); len(files) != 1 || files[0].Name != "r2_000001.ts" {
		t.Fatalf("after Discard: %+v", files)
	}
}
