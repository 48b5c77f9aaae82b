package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mediagw/services/health-sentinel/internal/domain"
)

// memStore is Store in memory, with the version conditions of the real one.
type memStore struct {
	mu     sync.Mutex
	incs   map[string][]byte
	vers   map[string]int64
	storms map[string]domain.Storm
}

func newMemStore() *memStore {
	return &memStore{incs: map[string][]byte{}, vers: map[string]int64{}, storms: map[string]domain.Storm{}}
}

func (m *memStore) Get(ctx context.Context, key string) (domain.Incident, bool, error) {
	if err := ctx.Err(); err != nil {
		return domain.Incident{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var inc domain.Incident
	b, ok := m.incs[key]
	if !ok {
		return inc, false, nil
	}
	if err := json.Unmarshal(b, &inc); err != nil {
		return inc, false, err
	}
	inc.Version = m.vers[key]
	return inc, true, nil
}

func (m *memStore) Put(ctx context.Context, inc domain.Incident) (domain.Incident, error) {
	if err := ctx.Err(); err != nil {
		return inc, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.vers[inc.Key] != inc.Version {
		return inc, domain.ErrConflict
	}
	b, err := json.Marshal(inc)
	if err != nil {
		return inc, err
	}
	m.incs[inc.Key] = b
	inc.Version++
	m.vers[inc.Key] = inc.Version
	return inc, nil
}

func (m *memStore) Active(ctx context.Context) ([]domain.Incident, []domain.Storm, error) {
	m.mu.Lock()
	keys := make([]string, 0, len(m.incs))
	for k := range m.incs {
		keys = append(keys, k)
	}
	var storms []domain.Storm
	for _, s := range m.storms {
		if len(s.Digest) > 0 {
			storms = append(storms, s)
		}
	}
	m.mu.Unlock()
	var out []domain.Incident
	for _, k := range keys {
		inc, _, err := m.Get(ctx, k)
		if err != nil {
			return nil, nil, err
		}
		if inc.Open() || !inc.NextDue().IsZero() {
			out = append(out, inc)
		}
	}
	return out, storms, nil
}

func (m *memStore) GetStorm(_ context.Context, gw string) (domain.Storm, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.storms[gw]
	return s, ok, nil
}

func (m *memStore) PutStorm(_ context.Context, s domain.Storm) (domain.Storm, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.storms[s.Gateway].Version != s.Version {
		return s, domain.ErrConflict
	}
	s.Version++
	m.storms[s.Gateway] = s
	return s, nil
}

// memMailer records mails; fail makes the next sends fail; before, when
// set, runs before each send (a shutdown arriving mid-publish).
type memMailer struct {
	mu     sync.Mutex
	sent   []domain.Message
	fail   int
	before func()
}

func (m *memMailer) Send(ctx context.Context, msg domain.Message) error {
	if m.before != nil {
		m.before()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail > 0 {
		m.fail--
		return errors.New("sns: throttled")
	}
	m.sent = append(m.sent, msg)
	return nil
}

func (m *memMailer) subjects() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s []string
	for _, msg := range m.sent {
		s = append(s, msg.Subject)
	}
	return s
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock(t time.Time) *clock    { return &clock{t: t} }
func outage(id string, at time.Time) domain.Signal {
	return domain.Signal{ID: id, At: at, Kind: domain.KindGateway, Gateway: "gw-1", Action: domain.Raise, Title: "API does not answer"}
}

var t0 = time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)

func newIncidents(store Store, mailer Mailer, c *clock) *Incidents {
	return NewIncidents(store, mailer, nil, Config{Policy: domain.DefaultPolicy(), MailLimit: 10, MailWindow: time.Hour, Now: c.Now})
}

// TestConcurrentDeliveriesSendOneMail: the same outage signalled by many
// handlers at once (redeliveries, a health check) and flushed alongside
// sends one mail.
func TestConcurrentDeliveriesSendOneMail(t *testing.T) {
	store, mailer, c := newMemStore(), &memMailer{}, newClock(t0)
	a := newIncidents(store, mailer, c)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(2)
		go func() { defer wg.Done(); _ = a.Signal(context.Background(), outage(fmt.Sprintf("e%d", i%4), t0)) }()
		go func() { defer wg.Done(); _ = a.Flush(context.Background()) }()
	}
	wg.Wait()
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := mailer.subjects(); len(got) != 1 {
		t.Fatalf("mails %q, want 1", got)
	}
}

// TestFailedSendIsRetriedByTheFlush: a mail whose publish failed goes out
// with the next flush, once.
func TestFailedSendIsRetriedByTheFlush(t *testing.T) {
	store, mailer, c := newMemStore(), &memMailer{fail: 1}, newClock(t0)
	a := newIncidents(store, mailer, c)
	if err := a.Signal(context.Background(), outage("e1", t0)); err == nil || !strings.Contains(err.Error(), "throttled") {
		t.Fatalf("Signal: %v, want the send's error (the event is redelivered)", err)
	}
	for range 2 {
		if err := a.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := mailer.subjects(); len(got) != 1 {
		t.Fatalf("mails %q, want 1", got)
	}
}

// TestHeldCameraMailJoinsTheGatewayOutage: a camera failure whose hold
// ends while its gateway is down sends nothing of its own; the gateway's
// incident lists the camera; an ACTION NEEDED mail follows a give-up.
func TestHeldCameraMailJoinsTheGatewayOutage(t *testing.T) {
	store, mailer, c := newMemStore(), &memMailer{}, newClock(t0)
	a := newIncidents(store, mailer, c)
	ctx := context.Background()
	cam := domain.Signal{ID: "f1", At: t0, Kind: domain.KindCamera, Gateway: "gw-1", Device: "cam1", Action: domain.Raise,
		Exit: &domain.Exit{TaskID: "t1", Code: 1, At: t0}}
	if err := a.Signal(ctx, cam); err != nil {
		t.Fatal(err)
	}
	if err := a.Signal(ctx, outage("u1", t0.Add(5*time.Second))); err != nil {
		t.Fatal(err)
	}
	c.Add(3 * time.Minute)
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := mailer.subjects(); len(got) != 1 || !strings.Contains(got[0], "gateway gw-1") {
		t.Fatalf("mails %q, want the gateway's only", got)
	}
	gw, _, _ := store.Get(ctx, "gateway/gw-1")
	camInc, _, _ := store.Get(ctx, "camera/cam1")
	if len(gw.Cameras) != 1 || gw.Cameras[0] != "cam1" || camInc.MergedInto != gw.ID || camInc.Open() {
		t.Fatalf("gateway cameras %v, camera merged into %q open=%v", gw.Cameras, camInc.MergedInto, camInc.Open())
	}
	if err := a.Signal(ctx, domain.Signal{ID: "g1", At: c.Now(), Kind: domain.KindGateway, Gateway: "gw-1", Action: domain.GaveUp, Detail: "budget spent"}); err != nil {
		t.Fatal(err)
	}
	if got := mailer.subjects(); len(got) != 2 || !strings.Contains(got[1], "ACTION NEEDED gateway gw-1") {
		t.Fatalf("mails %q", got)
	}
}
