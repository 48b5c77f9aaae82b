package app

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"mediagw/services/recorder/internal/domain"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A stream that fails to start six times, then records: the waits between
// starts never exceed the cap, the failing line says the wait, and the
// channel is reported healed at its first segment, while that run goes on.
func TestFailingClearsAtTheFirstSegmentAndWaitsStayUnderTheCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		f.cfg.FailingAfter, f.cfg.RestartInitial, f.cfg.RestartMax = 3, time.Second, 4*time.Second
		var logs syncBuffer
		f.deps.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
		var mu sync.Mutex
		var starts []time.Time
		f.seg.entries = []domain.ListEntry{{File: "000001.ts", Start: 0, End: 4}}
		f.seg.connect = func() bool {
			mu.Lock()
			defer mu.Unlock()
			starts = append(starts, time.Now())
			return len(starts) > 6
		}
		_, stop := f.start(t)
		defer stop()
		for {
			time.Sleep(500 * time.Millisecond)
			synctest.Wait()
			if len(f.up.uploaded()) > 0 {
				break
			}
		}
		if f.m.isFailing("1") {
			t.Error("still failing after a segment")
		}
		if f.seg.started() != 7 {
			t.Errorf("%d runs, want the 7th still recording", f.seg.started())
		}
		mu.Lock()
		for i := 1; i < len(starts); i++ {
			if d := starts[i].Sub(starts[i-1]); d > 4*time.Second {
				t.Errorf("waited %v before start %d, cap 4s", d, i+1)
			}
		}
		mu.Unlock()
		out := logs.String()
		var failingLine string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "stream keeps failing") {
				failingLine = l
			}
		}
		if failingLine == "" || !strings.Contains(failingLine, `"wait"`) {
			t.Errorf("failing line %q does not say the wait", failingLine)
		}
		if !strings.Contains(out, `"msg":"stream recovered"`) {
			t.Errorf("no recovery logged:\n%s", out)
		}
	})
}
