package dynamodb_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"mediagw/deploy/provision"
	"mediagw/pkg/loginbudget"
	"mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/topology"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

func newStore(t *testing.T) *dynamodb.Store {
	t.Helper()
	cfg := awstest.Config(t)
	res, err := provision.Apply(context.Background(), cfg, topology.Default(), provision.Options{Prefix: awstest.Name("lb") + "-", Only: []string{"tables"}})
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.New(awsddb.NewFromConfig(cfg), res.Env()["LOGIN_BUDGET_TABLE"])
}

func TestStoreVersionsEveryWrite(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	l, v, err := s.Load(ctx, "gw-1")
	if err != nil || v != 0 || len(l.Attempts) != 0 {
		t.Fatalf("empty: %+v %d %v", l, v, err)
	}
	l.Rejected = []loginbudget.Credential{"/p/Password@1"}
	if err := s.Save(ctx, "gw-1", l, 0); err != nil {
		t.Fatal(err)
	}
	// A second creator loses.
	if err := s.Save(ctx, "gw-1", loginbudget.Ledger{}, 0); !errors.Is(err, loginbudget.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	got, v, err := s.Load(ctx, "gw-1")
	if err != nil || v != 1 || len(got.Rejected) != 1 || got.Rejected[0] != "/p/Password@1" {
		t.Fatalf("load: %+v %d %v", got, v, err)
	}
	if err := s.Save(ctx, "gw-1", got, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, "gw-1", got, 1); !errors.Is(err, loginbudget.ErrConflict) {
		t.Fatalf("stale write: %v", err)
	}
}

// 64 recorders with a wrong password start at once, each with its own
// Budget (as separate processes have): the gateway sees one failed login.
func TestBudgetSixtyFourConcurrentLoginsWithAWrongPassword(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cred := loginbudget.CredentialOf("/mediagw/gateways/gw-1/Password", 1)
	var sent, refused atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			b := loginbudget.New(s, "recorder")
			a, err := b.Begin(ctx, "gw-1", cred)
			if err != nil {
				var re *loginbudget.RefusedError
				if !errors.As(err, &re) || re.Reason != loginbudget.ReasonRejected {
					t.Errorf("refusal: %v", err)
				}
				refused.Add(1)
				return
			}
			sent.Add(1)
			if err := a.Finish(ctx, loginbudget.Rejected, 0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if sent.Load() != 1 || refused.Load() != 63 {
		t.Fatalf("sent %d, refused %d", sent.Load(), refused.Load())
	}
	// The right password (a new version) gets in, and 64 of them all do.
	good := loginbudget.CredentialOf("/mediagw/gateways/gw-1/Password", 2)
	var ok atomic.Int32
	for range 64 {
		wg.Go(func() {
			a, err := loginbudget.New(s, "recorder").Begin(ctx, "gw-1", good)
			if err != nil {
				t.Errorf("good password: %v", err)
				return
			}
			if err := a.Finish(ctx, loginbudget.Accepted, 0); err != nil {
				t.Error(err)
			}
			ok.Add(1)
		})
	}
	wg.Wait()
	l, _, err := s.Load(ctx, "gw-1")
	if err != nil || ok.Load() != 64 || l.Accepted != good || l.Failures(time.Now(), loginbudget.Limits{}) != 1 {
		t.Fatalf("ok %d, ledger %+v, %v", ok.Load(), l, err)
	}
}

// Unanswered logins from separate processes: two, then refusal until the
// window passes — what SQS redeliveries of a login that times out meet.
func TestBudgetUnansweredLoginsCount(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	cred := loginbudget.CredentialOf("/mediagw/gateways/gw-2/Password", 1)
	for i := range 2 {
		a, err := loginbudget.New(s, "configurator", loginbudget.WithClock(clock)).Begin(ctx, "gw-2", cred)
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if err := a.Finish(ctx, loginbudget.Unanswered, 0); err != nil {
			t.Fatal(err)
		}
		now = now.Add(2 * time.Second)
	}
	b := loginbudget.New(s, "configurator", loginbudget.WithClock(clock))
	_, err := b.Begin(ctx, "gw-2", cred)
	var re *loginbudget.RefusedError
	if !errors.As(err, &re) || re.Reason != loginbudget.ReasonBudgetSpent {
		t.Fatalf("third: %v", err)
	}
	now = now.Add(30 * time.Minute)
	if _, err := b.Begin(ctx, "gw-2", cred); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}
