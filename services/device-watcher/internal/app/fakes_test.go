package app_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"mediagw/services/device-watcher/internal/domain"
)

// In-memory implementations of the app's interfaces. Each reports what it
// was asked on a buffered channel, so that a test waits on facts.

var discard = slog.New(slog.DiscardHandler)

// fakeGateway lists the same cameras on every poll, logged in with
// credential cred, or, while refused or awaiting is set, sends nothing and
// says so.
type fakeGateway struct {
	mu           sync.Mutex
	cams         []domain.Sighting
	cred         string
	refused      *domain.LoginRefusal
	awaiting     bool
	reconfigured int
	// polled counts polls, reconfiguredBeforePoll the Reconfigured calls
	// before the first.
	polled                 int
	reconfiguredBeforePoll int
	reconfigErr            error
	polls                  chan domain.Snapshot
	resume                 chan struct{} // WatchLogins passes these on as resumptions
}

func newFakeGateway(cams ...domain.Sighting) *fakeGateway {
	return &fakeGateway{cams: cams, cred: "/p@1", polls: make(chan domain.Snapshot, 1000), resume: make(chan struct{})}
}

func (g *fakeGateway) Poll(_ context.Context, _ map[string]domain.Known) domain.Snapshot {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	snap := domain.Snapshot{Started: now, Finished: now}
	g.polled++
	switch {
	case g.refused != nil:
		r := *g.refused
		snap.Err, snap.NothingSent, snap.Refused = errors.New("logins are stopped"), true, &r
	case g.awaiting:
		snap.Err, snap.NothingSent, snap.AwaitingConfiguration = errors.New("awaiting the configuration"), true, true
	default:
		snap.LoggedIn = g.cred
		for _, c := range g.cams {
			c.At, c.Source = now, domain.SourcePoll
			snap.Sightings = append(snap.Sightings, c)
		}
	}
	g.polls <- snap
	return snap
}

// setCams changes the cameras the next polls list.
func (g *fakeGateway) setCams(cams ...domain.Sighting) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cams = cams
}

// setAwaiting holds logins back until the configuration (true) or
// resumes them.
func (g *fakeGateway) setAwaiting(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.awaiting = on
}

// setRefused stops (r) or resumes (nil) logins.
func (g *fakeGateway) setRefused(r *domain.LoginRefusal, cred string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refused, g.cred = r, cred
}

func (g *fakeGateway) Stream(ctx context.Context, _ chan<- domain.StreamUpdate) { <-ctx.Done() }

func (g *fakeGateway) WatchLogins(ctx context.Context, resumed chan<- struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.resume:
			resumed <- struct{}{}
		}
	}
}

func (g *fakeGateway) Reconfigured(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reconfigured++
	if g.polled == 0 {
		g.reconfiguredBeforePoll++
	}
	return g.reconfigErr
}

// fakeStore stores nothing but what it was given; errors are taken one per
// call, in order.
type fakeStore struct {
	mu          sync.Mutex
	loadErrs    []error
	commitErrs  []error
	announceErr error
	committed   []domain.Change
	announced   []domain.Change
}

func next(errs *[]error) error {
	if len(*errs) == 0 {
		return nil
	}
	err := (*errs)[0]
	*errs = (*errs)[1:]
	return err
}

func (s *fakeStore) Load(context.Context, string) (domain.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return domain.State{Gateway: domain.Gateway{Reachable: true}}, next(&s.loadErrs)
}

func (s *fakeStore) LoadDevice(context.Context, string, string) (*domain.Device, *domain.Change, error) {
	return nil, nil, nil
}

func (s *fakeStore) Commit(_ context.Context, _ domain.Lease, c domain.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := next(&s.commitErrs); err != nil {
		return err
	}
	s.committed = append(s.committed, c)
	return nil
}

func (s *fakeStore) Announced(_ context.Context, c domain.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.announced = append(s.announced, c)
	return s.announceErr
}

// fakeLeases grants every lease asked for, after the given failures.
type fakeLeases struct {
	mu          sync.Mutex
	acquireErrs []error
	renewErrs   []error
	token       int64
	acquired    chan domain.Lease
	released    chan domain.Lease
	noted       []time.Time
	configured  time.Time // noted on every lease granted
}

func newFakeLeases(acquireErrs ...error) *fakeLeases {
	return &fakeLeases{acquireErrs: acquireErrs, acquired: make(chan domain.Lease, 100), released: make(chan domain.Lease, 100)}
}

func (l *fakeLeases) Acquire(_ context.Context, id string) (domain.Lease, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := next(&l.acquireErrs); err != nil {
		return domain.Lease{}, false, err
	}
	l.token++
	lease := domain.Lease{ID: id, Holder: "me", Token: l.token, Expires: time.Now().Add(l.Duration()), Configured: l.configured}
	l.acquired <- lease
	return lease, true, nil
}

func (l *fakeLeases) Renew(_ context.Context, lease domain.Lease) (domain.Lease, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := next(&l.renewErrs); err != nil {
		return lease, err
	}
	lease.Expires = time.Now().Add(l.Duration())
	if !l.configured.IsZero() {
		lease.Configured = l.configured // as the table returns it
	}
	return lease, nil
}

func (l *fakeLeases) Release(_ context.Context, lease domain.Lease) error {
	l.released <- lease
	return nil
}

func (l *fakeLeases) NoteConfigured(_ context.Context, _ string, at time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.noted = append(l.noted, at)
	return nil
}

func (l *fakeLeases) Duration() time.Duration { return 3 * time.Second }

// fakePublisher publishes to a channel, after the given failures.
type fakePublisher struct {
	mu        sync.Mutex
	errs      []error
	published chan proto.Message
}

func newFakePublisher(errs ...error) *fakePublisher {
	return &fakePublisher{errs: errs, published: make(chan proto.Message, 100)}
}

func (p *fakePublisher) Publish(_ context.Context, ev proto.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := next(&p.errs); err != nil {
		return err
	}
	p.published <- ev
	return nil
}

// fakeMetrics records the lease transitions and the login gauges.
type fakeMetrics struct {
	mu          sync.Mutex
	leaseHeld   []bool
	storeErrs   map[string]int
	credentials bool
	awaiting    bool
}

func (m *fakeMetrics) LeaseHeld(_ string, held bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leaseHeld = append(m.leaseHeld, held)
}

func (m *fakeMetrics) StoreError(kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.storeErrs == nil {
		m.storeErrs = map[string]int{}
	}
	m.storeErrs[kind]++
}

func (m *fakeMetrics) PollDuration(string, time.Duration)             {}
func (m *fakeMetrics) Published(string)                               {}
func (m *fakeMetrics) DetectionLatency(string, string, time.Duration) {}
func (m *fakeMetrics) State(_ string, _ domain.Counts, _, credentialsRejected, awaitingConfiguration bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.credentials, m.awaiting = credentialsRejected, awaitingConfiguration
}

func (m *fakeMetrics) awaitingConfiguration() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.awaiting
}

func (m *fakeMetrics) credentialsRejected() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.credentials
}
