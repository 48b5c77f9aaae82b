package app

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"mediagw/services/recorder/internal/domain"
)

// The app over in-memory adapters; time is synctest's, so backoff, the
// stop budget and the give-up time pass without waiting. The recorder
// against ffmpeg, the simulator and S3 is tested in internal/wiring.

var chan1 = domain.Channel{ID: "1", URL: "rtsp://gw/Streaming/Channels/d/101"}

type fixture struct {
	cfg   Config
	spool *memSpool
	up    *memUploader
	seg   *scriptSegmenter
	m     *countMetrics
	pw    *fakePassword
	b     *memBudget
	rel   *loopRelays
	deps  Deps
}

func newFixture() *fixture {
	f := &fixture{
		cfg: Config{
			Gateway: "gw", Device: "dev", Channels: []domain.Channel{chan1}, RTSPUser: "admin",
			SegmentLength: 4 * time.Second, KeyPrefix: "rec", Watchdog: time.Hour, StopTimeout: 5 * time.Second,
		},
		spool: newMemSpool(), up: &memUploader{}, seg: &scriptSegmenter{}, m: newCountMetrics(), pw: newFakePassword("pw"),
		b: &memBudget{}, rel: &loopRelays{},
	}
	f.deps = Deps{OpenSpool: f.spool.opener(nil), Uploader: f.up, Segmenter: f.seg, Relays: f.rel, Password: f.pw, Budget: f.b, Metrics: f.m}
	return f
}

// start builds the recorder, starts it and runs its parts until the
// returned stop is called; stop returns every part's error.
func (f *fixture) start(t *testing.T) (*Recorder, func() error) {
	t.Helper()
	r, err := New(f.cfg, f.deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, len(r.Parts()))
	for _, p := range r.Parts() {
		go func() { errs <- p.Run(ctx) }()
	}
	return r, func() error {
		cancel()
		var all []error
		for range r.Parts() {
			all = append(all, <-errs)
		}
		r.Close()
		return errors.Join(all...)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{{}, {Channels: []domain.Channel{{ID: "1", URL: "rtsp://h/x"}}}} {
		if _, err := New(c, Deps{}); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	f := newFixture()
	f.deps.Uploader = nil
	if _, err := New(f.cfg, f.deps); err == nil {
		t.Error("New accepted a missing adapter")
	}
}

// Listed segments are spooled, placed back to back in time, and uploaded
// oldest first; a failing store holds the queue (the head is retried) and
// loses nothing.
func TestListedSegmentsAreUploadedInOrderThroughFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		f.seg.entries = []domain.ListEntry{{File: "000000.ts", Start: 0, End: 4}, {File: "000001.ts", Start: 4, End: 8}, {File: "000002.ts", Start: 8, End: 12}}
		f.up.fail = func(attempt int, _ string) error {
			if attempt <= 3 {
				return errS3Down
			}
			return nil
		}
		_, stop := f.start(t)
		time.Sleep(time.Minute) // fake time: the backoff waits pass
		synctest.Wait()
		keys := f.up.uploaded()
		if len(keys) != 3 {
			t.Fatalf("uploaded %q, want 3 segments", keys)
		}
		var segs []domain.Segment
		for _, k := range keys {
			s, err := domain.ParseKey("rec", k)
			if err != nil {
				t.Fatal(err)
			}
			segs = append(segs, s)
		}
		for i := 1; i < len(segs); i++ {
			if !segs[i].Start.Equal(segs[i-1].End()) {
				t.Errorf("segment %d starts %v, the one before ended %v", i, segs[i].Start, segs[i-1].End())
			}
		}
		if got := f.m.get(f.m.uploadFailed, "1"); got != 3 {
			t.Errorf("%d failed uploads counted, want 3", got)
		}
		if w, u := f.m.get(f.m.written, "1"), f.m.get(f.m.uploaded, "1"); w != 3 || u != 3 {
			t.Errorf("written %d uploaded %d", w, u)
		}
		if _, ok := f.spool.LoadRun("1"); !ok {
			t.Error("no run state saved while ffmpeg runs")
		}
		if err := stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if _, ok := f.spool.LoadRun("1"); ok {
			t.Error("run state left after the run ended")
		}
		if !f.spool.closed {
			t.Error("spool not closed")
		}
	})
}

// Stopped while the store fails: the channel keeps trying for the stop
// budget (StopTimeout − 1 s after the stop), then says what is left.
func TestStopWithTheStoreDownReportsWhatIsLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		f.seg.entries = []domain.ListEntry{{File: "000000.ts", Start: 0, End: 4}}
		f.up.fail = func(int, string) error { return errS3Down }
		_, stop := f.start(t)
		synctest.Wait()
		stopped := time.Now()
		err := stop()
		if !errors.Is(err, domain.ErrSpoolNotEmpty) {
			t.Fatalf("stop = %v, want ErrSpoolNotEmpty", err)
		}
		if took := time.Since(stopped); took < 4*time.Second || took > 4*time.Second+100*time.Millisecond {
			t.Errorf("stopped after %v; the budget is %v", took, f.cfg.StopTimeout-time.Second)
		}
		if f.spool.Pending("1") != 1 {
			t.Errorf("%d segments pending, want 1", f.spool.Pending("1"))
		}
	})
}

// No channel produces a segment for GiveUpAfter: the give-up part ends
// the recorder with ErrGaveUp; the stream was reported failing before.
func TestGivesUpWhenNoChannelProduces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture()
		f.cfg.GiveUpAfter, f.cfg.FailingAfter, f.cfg.Watchdog = 8*time.Second, 2, time.Second
		r, err := New(f.cfg, f.deps)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if err := r.Start(ctx); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		var giveUp Part
		for _, p := range r.Parts() {
			if p.Name == "give-up" {
				giveUp = p
			} else {
				go p.Run(ctx)
			}
		}
		if err := giveUp.Run(ctx); !errors.Is(err, domain.ErrGaveUp) {
			t.Fatalf("give-up part = %v, want ErrGaveUp", err)
		}
		if d := time.Since(started); d < 8*time.Second || d > 10*time.Second {
			t.Errorf("gave up after %v, want 8 s (checked every 2 s)", d)
		}
		if f.m.get(f.m.restarts, "1/stalled") < 2 {
			t.Errorf("restarts %v", f.m.restarts)
		}
		f.m.mu.Lock()
		failing := f.m.failing["1"]
		f.m.mu.Unlock()
		if !failing {
			t.Error("the dead stream was not reported failing")
		}
		cancel()
		synctest.Wait()
	})
}

// Start reads the password once and opens the spool; each failure is the
// error the command turns into its exit code.
func TestStartErrors(t *testing.T) {
	f := newFixture()
	f.pw.err = errors.New("ParameterNotFound")
	r, _ := New(f.cfg, f.deps)
	if err := r.Start(context.Background()); !errors.Is(err, domain.ErrCredentials) {
		t.Errorf("password unreadable: %v, want ErrCredentials", err)
	}

	f = newFixture()
	f.deps.OpenSpool = f.spool.opener(domain.ErrSpoolLocked)
	r, _ = New(f.cfg, f.deps)
	if err := r.Start(context.Background()); !errors.Is(err, domain.ErrSpoolLocked) {
		t.Errorf("spool locked: %v, want ErrSpoolLocked", err)
	}

	f = newFixture()
	f.deps.OpenSpool = f.spool.opener(errors.New("read-only file system"))
	r, _ = New(f.cfg, f.deps)
	if err := r.Start(context.Background()); !errors.Is(err, domain.ErrSpool) || errors.Is(err, domain.ErrSpoolLocked) {
		t.Errorf("spool unusable: %v, want ErrSpool", err)
	}
}

// A killed predecessor's half-written segment is placed right after the
// last segment its run listed, with the length ffprobe measures; files
// that cannot be placed are deleted and counted.
func TestStartKeepsTheHalfWrittenSegment(t *testing.T) {
	f := newFixture()
	anchor := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.spool.runs["1"] = domain.RunState{Prefix: "p_", Anchor: anchor, LastEnd: 8, Codec: "h264"}
	f.spool.work["1"] = []WorkFile{
		{Name: "p_000002.ts", Path: "/work/1/p_000002.ts", Size: 10},
		{Name: "p_000003.ts", Path: "/work/1/p_000003.ts", Size: 0},
		{Name: "q_000000.ts", Path: "/work/1/q_000000.ts", Size: 5},
	}
	f.seg.probe = map[string]float64{"/work/1/p_000002.ts": 2.5, "/work/1/q_000000.ts": 4}
	r, _ := New(f.cfg, f.deps)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	q := f.spool.queue["1"]
	if len(q) != 1 || !q[0].Segment.Start.Equal(anchor.Add(8*time.Second)) || q[0].Segment.Duration != 2500*time.Millisecond || q[0].Segment.Codec != "h264" {
		t.Fatalf("queued %+v, want the p_ segment at anchor+8 s lasting 2.5 s", q)
	}
	slices.Sort(f.spool.removed)
	if !slices.Equal(f.spool.removed, []string{"/work/1/p_000003.ts", "/work/1/q_000000.ts"}) {
		t.Errorf("deleted %q, want the empty file and the one of an unknown run", f.spool.removed)
	}
	if f.m.get(f.m.failed, "1/unplaceable") != 1 {
		t.Errorf("failed %v", f.m.failed)
	}
	if _, ok := f.spool.LoadRun("1"); ok {
		t.Error("the predecessor's run state was not cleared")
	}
}
