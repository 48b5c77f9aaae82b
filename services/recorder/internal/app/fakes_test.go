package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"mediagw/pkg/loginbudget"
	"mediagw/services/recorder/internal/domain"
)

// In-memory implementations of the app's interfaces.

// memSpool is a spool in memory: no bound, files are names only.
type memSpool struct {
	mu      sync.Mutex
	queue   map[string][]*domain.Spooled
	busy    map[*domain.Spooled]bool
	wake    chan struct{}
	runs    map[string]domain.RunState
	work    map[string][]WorkFile
	removed []string
	closed  bool
}

func newMemSpool() *memSpool {
	return &memSpool{queue: map[string][]*domain.Spooled{}, busy: map[*domain.Spooled]bool{}, wake: make(chan struct{}, 1),
		runs: map[string]domain.RunState{}, work: map[string][]WorkFile{}}
}

func (s *memSpool) WorkDir(ch string) string { return "/work/" + ch }

func (s *memSpool) Add(seg domain.Segment, file string) (domain.Segment, []domain.Segment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seg.Size = 100
	q := append(s.queue[seg.Channel], &domain.Spooled{Segment: seg, Path: file})
	sort.SliceStable(q, func(i, j int) bool { return q[i].Segment.Start.Before(q[j].Segment.Start) })
	s.queue[seg.Channel] = q
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return seg, nil, nil
}

func (s *memSpool) Next(ctx context.Context, ch string) (*domain.Spooled, error) {
	for {
		s.mu.Lock()
		for _, it := range s.queue[ch] {
			if !s.busy[it] {
				s.busy[it] = true
				s.mu.Unlock()
				return it, nil
			}
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.wake:
		}
	}
}

func (s *memSpool) Done(it *domain.Spooled) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue[it.Segment.Channel]
	for i, x := range q {
		if x == it {
			s.queue[it.Segment.Channel] = append(q[:i], q[i+1:]...)
		}
	}
	delete(s.busy, it)
	return nil
}

func (s *memSpool) Release(it *domain.Spooled) {
	s.mu.Lock()
	delete(s.busy, it)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *memSpool) Usage() (int64, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, q := range s.queue {
		n += len(q)
	}
	return int64(100 * n), n
}

func (s *memSpool) Pending(ch string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue[ch])
}

func (s *memSpool) SaveRun(ch string, st domain.RunState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs[ch] = st
}

func (s *memSpool) LoadRun(ch string) (domain.RunState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.runs[ch]
	return st, ok
}

func (s *memSpool) ClearRun(ch string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.runs, ch)
}

func (s *memSpool) WorkFiles(ch string) []WorkFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]WorkFile(nil), s.work[ch]...)
}

func (s *memSpool) Discard(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed = append(s.removed, path)
	for ch, files := range s.work {
		for i, f := range files {
			if f.Path == path {
				s.work[ch] = append(files[:i], files[i+1:]...)
				break
			}
		}
	}
}

func (s *memSpool) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}

func (s *memSpool) opener(err error) OpenSpool {
	return func([]string) (Spool, []domain.Segment, error) {
		if err != nil {
			return nil, nil, err
		}
		return s, nil, nil
	}
}

// memUploader records uploads; fail decides whether an attempt fails.
type memUploader struct {
	mu       sync.Mutex
	keys     []string
	attempts int
	fail     func(attempt int, key string) error
}

func (u *memUploader) Upload(_ context.Context, key, _, _ string, _ map[string]string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.attempts++
	if u.fail != nil {
		if err := u.fail(u.attempts, key); err != nil {
			return err
		}
	}
	u.keys = append(u.keys, key)
	return nil
}

func (u *memUploader) uploaded() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.keys...)
}

var errS3Down = errors.New("s3 down")

// scriptSegmenter's runs list the given entries, then wait for Stop. With
// connect set, a run first connects through the relay (as ffmpeg does);
// when that fails the run ends at once, listing nothing.
type scriptSegmenter struct {
	mu      sync.Mutex
	entries []domain.ListEntry
	starts  int
	probe   map[string]float64
	connect func() bool
}

func (g *scriptSegmenter) Start(spec CaptureSpec, _ *slog.Logger) (Capture, error) {
	g.mu.Lock()
	g.starts++
	entries, connect := g.entries, g.connect
	g.mu.Unlock()
	c := &scriptCapture{listed: make(chan Listed), done: make(chan struct{}), stop: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.listed)
		if connect != nil && !connect() {
			return
		}
		for _, e := range entries {
			l := Listed{ListEntry: e, Path: spec.Dir + "/" + spec.Prefix + e.File}
			l.Seen = time.Now()
			select {
			case c.listed <- l:
			case <-c.stop:
				return
			}
		}
		<-c.stop
	}()
	return c, nil
}

func (g *scriptSegmenter) started() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.starts
}

func (g *scriptSegmenter) ProbeDuration(_ context.Context, path string) (float64, error) {
	if d, ok := g.probe[path]; ok {
		return d, nil
	}
	return 0, fmt.Errorf("probe %s: %w", path, fs.ErrNotExist)
}

type scriptCapture struct {
	listed   chan Listed
	done     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
}

func (c *scriptCapture) Pid() int                           { return 1 }
func (c *scriptCapture) Listed() <-chan Listed              { return c.listed }
func (c *scriptCapture) Done() <-chan struct{}              { return c.done }
func (c *scriptCapture) Err() error                         { return nil }
func (c *scriptCapture) Codec() string                      { return "h264" }
func (c *scriptCapture) FirstPacket(string) (float64, bool) { return 0, false }
func (c *scriptCapture) Stop(time.Duration) {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.done
}

// loopRelays opens relays that relay nothing; they keep the last spec.
type loopRelays struct {
	err  error
	mu   sync.Mutex
	spec RelaySpec
}

func (r *loopRelays) Open(spec RelaySpec) (Relay, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.mu.Lock()
	r.spec = spec
	r.mu.Unlock()
	return loopRelay{}, nil
}

func (r *loopRelays) last() RelaySpec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.spec
}

type loopRelay struct{}

func (loopRelay) URL() string           { return "rtsp://127.0.0.1:1/x" }
func (loopRelay) ReceivedBytes() uint64 { return 0 }
func (loopRelay) Close() error          { return nil }
func (loopRelay) Dial() (net.Conn, error) {
	return nil, errors.New("loopRelay relays nothing")
}

const testParam = "/mediagw/gateways/gw/Password"

// fakePassword is the password parameter: its value and version as in
// SSM now; Get caches like the SSM adapter. err makes both fail.
type fakePassword struct {
	mu       sync.Mutex
	value    string
	version  int64
	cached   string
	cachedV  int64
	latest   int64
	currents int
	err      error
}

func newFakePassword(value string) *fakePassword { return &fakePassword{value: value, version: 1} }

func (p *fakePassword) Get(context.Context) (string, loginbudget.Credential, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return "", "", p.err
	}
	if p.cachedV == 0 || p.latest > p.cachedV {
		p.cached, p.cachedV = p.value, p.version
		p.latest = max(p.latest, p.version)
	}
	return p.cached, loginbudget.CredentialOf(testParam, p.cachedV), nil
}

func (p *fakePassword) Current(context.Context) (loginbudget.Credential, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.currents++
	if p.err != nil {
		return "", p.err
	}
	p.latest = max(p.latest, p.version)
	return loginbudget.CredentialOf(testParam, p.version), nil
}

// put stores a new value as the next version.
func (p *fakePassword) put(value string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.value = value
	p.version++
}

// memBudget is the login budget's ledger in memory, with its real rules
// (loginbudget.Ledger); a login in flight refuses others as busy instead
// of waiting.
type memBudget struct {
	mu      sync.Mutex
	l       loginbudget.Ledger
	begins  int
	results []loginbudget.Result
	err     error // Begin and Check fail (the table unreachable)
}

func (b *memBudget) Begin(ctx context.Context, gw string, cred loginbudget.Credential) (LoginAttempt, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return nil, b.err
	}
	id := strconv.Itoa(b.begins)
	if r := b.l.Begin(id, cred, "recorder", time.Now(), loginbudget.Limits{}); r != nil {
		return nil, &loginbudget.RefusedError{Gateway: gw, Refusal: *r}
	}
	b.begins++
	return &memAttempt{b: b, id: id}, nil
}

func (b *memBudget) Check(_ context.Context, gw string, cred loginbudget.Credential) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	if r := b.l.Check(cred, time.Now(), loginbudget.Limits{}); r != nil {
		return &loginbudget.RefusedError{Gateway: gw, Refusal: *r}
	}
	return nil
}

func (b *memBudget) Record(_ context.Context, _ string, cred loginbudget.Credential, r loginbudget.Result) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	b.results = append(b.results, r)
	b.l.Record("rec-"+strconv.Itoa(len(b.results)), cred, "recorder", r, 0, time.Now(), loginbudget.Limits{})
	return nil
}

func (b *memBudget) logins() (int, []loginbudget.Result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.begins, append([]loginbudget.Result(nil), b.results...)
}

type memAttempt struct {
	b  *memBudget
	id string
}

func (a *memAttempt) Finish(_ context.Context, r loginbudget.Result) error {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	a.b.results = append(a.b.results, r)
	a.b.l.Finish(a.id, r, 0, time.Now(), loginbudget.Limits{})
	return nil
}

// countMetrics counts what the recorder records.
type countMetrics struct {
	mu                              sync.Mutex
	written, uploaded, uploadFailed map[string]int
	failed                          map[string]int // channel/reason
	restarts                        map[string]int // channel/reason
	failing                         map[string]bool
	spoolSegments                   int
	credentials                     []string // every CredentialsRejected reason, in order
}

func newCountMetrics() *countMetrics {
	return &countMetrics{written: map[string]int{}, uploaded: map[string]int{}, uploadFailed: map[string]int{},
		failed: map[string]int{}, restarts: map[string]int{}, failing: map[string]bool{}}
}

func (m *countMetrics) SegmentWritten(ch string, _ time.Time) { m.inc(m.written, ch) }
func (m *countMetrics) SegmentUploaded(ch string, _ int64, _ time.Duration, _ time.Time) {
	m.inc(m.uploaded, ch)
}
func (m *countMetrics) SegmentFailed(ch, reason string)     { m.inc(m.failed, ch+"/"+reason) }
func (m *countMetrics) SegmentDropped(string)               {}
func (m *countMetrics) UploadFailed(ch string)              { m.inc(m.uploadFailed, ch) }
func (m *countMetrics) FFmpegRestarted(ch, reason string)   { m.inc(m.restarts, ch+"/"+reason) }
func (m *countMetrics) ClockDrift(string, time.Duration)    {}
func (m *countMetrics) ReceivedBytes(string, func() uint64) {}
func (m *countMetrics) Spool(_ int64, segments int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.spoolSegments = segments
}
func (m *countMetrics) ChannelFailing(ch string, failing bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failing[ch] = failing
}

func (m *countMetrics) CredentialsRejected(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.credentials = append(m.credentials, reason)
}

// rejected is the reason logins are stopped for now ("" none).
func (m *countMetrics) rejected() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.credentials) == 0 {
		return ""
	}
	return m.credentials[len(m.credentials)-1]
}

func (m *countMetrics) isFailing(ch string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failing[ch]
}

func (m *countMetrics) inc(c map[string]int, k string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c[k]++
}

func (m *countMetrics) get(c map[string]int, k string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return c[k]
}
