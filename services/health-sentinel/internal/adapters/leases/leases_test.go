package leases_test

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"mediagw/services/health-sentinel/internal/adapters/leases"
	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// clock is one fake time both holders agree on.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func table(t *testing.T) (*awsddb.Client, string) {
	t.Helper()
	ddb := awsddb.NewFromConfig(awstest.Config(t))
	name := awstest.Name("leases")
	_, err := ddb.CreateTable(t.Context(), &awsddb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String(leases.AttrID), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String(leases.AttrID), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create table: %v", err)
	}
	return ddb, name
}

func TestOneHolderAtATimeAndFencedState(t *testing.T) {
	ddb, name := table(t)
	ctx := t.Context()
	c := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	a := leases.New(ddb, name, "sentinel-a", 30*time.Second, leases.WithClock(c.now))
	b := leases.New(ddb, name, "sentinel-b", 30*time.Second, leases.WithClock(c.now))

	la, ok, err := a.Acquire(ctx, "gw-1")
	if err != nil || !ok {
		t.Fatalf("a acquire: %v %v", ok, err)
	}
	if _, ok, err := b.Acquire(ctx, "gw-1"); err != nil || ok {
		t.Fatalf("b took a held lease: %v %v", ok, err)
	}
	// Another gateway's lease is independent.
	if _, ok, err := b.Acquire(ctx, "gw-2"); err != nil || !ok {
		t.Fatalf("b on gw-2: %v %v", ok, err)
	}
	st := domain.RecoveryState{
		Attempts:    []domain.RecoveryAttempt{{Action: domain.RecoveryEC2Reboot, Started: c.now(), Outcome: "failed"}},
		Replacement: &domain.Replacement{OldInstanceID: "i-old", NewInstanceID: "i-new", ImageID: "ami-1"},
	}
	if err := a.Save(ctx, la, st); err != nil {
		t.Fatal(err)
	}
	if la, err = a.Renew(ctx, la); err != nil {
		t.Fatal(err)
	}
	// a stalls past the expiry: b takes over, sees a's state, and a can
	// neither renew nor write.
	c.add(31 * time.Second)
	lb, ok, err := b.Acquire(ctx, "gw-1")
	if err != nil || !ok {
		t.Fatalf("b after expiry: %v %v", ok, err)
	}
	if lb.Token <= la.Token {
		t.Fatalf("token %d not above %d", lb.Token, la.Token)
	}
	if lb.State.Replacement == nil || lb.State.Replacement.NewInstanceID != "i-new" || len(lb.State.Attempts) != 1 ||
		!lb.State.Attempts[0].Started.Equal(st.Attempts[0].Started) {
		t.Fatalf("state read back %+v", lb.State)
	}
	if err := a.Save(ctx, la, domain.RecoveryState{}); !errors.Is(err, recovery.ErrLeaseLost) {
		t.Fatalf("stale save: %v, want ErrLeaseLost", err)
	}
	if _, err := a.Renew(ctx, la); !errors.Is(err, recovery.ErrLeaseLost) {
		t.Fatalf("stale renew: %v, want ErrLeaseLost", err)
	}
	// a's release of a lease it lost is a no-op; b's release frees it at
	// once and keeps the state.
	if err := a.Release(ctx, la); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Acquire(ctx, "gw-1"); ok {
		t.Fatal("a took b's lease")
	}
	if err := b.Release(ctx, lb); err != nil {
		t.Fatal(err)
	}
	la2, ok, err := a.Acquire(ctx, "gw-1")
	if err != nil || !ok || la2.State.Replacement == nil {
		t.Fatalf("a after release: %v %v %+v", ok, err, la2.State)
	}
}

func TestUnreadableStateIsAnError(t *testing.T) {
	ddb, name := table(t)
	ctx := t.Context()
	_, err := ddb.PutItem(ctx, &awsddb.PutItemInput{TableName: aws.String(name), Item: map[string]ddbtypes.AttributeValue{
		leases.AttrID:        &ddbtypes.AttributeValueMemberS{Value: leases.ID("gw-1")},
		leases.AttrState:     &ddbtypes.AttributeValueMemberS{Value: "{not json"},
		leases.AttrExpiresMS: &ddbtypes.AttributeValueMemberN{Value: "0"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l := leases.New(ddb, name, "sentinel-a", time.Minute)
	if _, ok, err := l.Acquire(ctx, "gw-1"); err == nil || ok {
		t.Fatalf("unreadable state: ok %v err %v, want an error (not a fresh budget)", ok, err)
	}
}
