// Package leases gives one health-sentinel at a time a gateway's recovery
// (and its snapshots) through an item per gateway in the mediagw-leases
// table, the same way the device-watcher holds its gateways: taken and
// renewed with conditional writes and an expiry, with a fencing token that
// grows with every acquisition. The ladder's state (what was tried within
// the budget, a replacement under way) is kept on the same item as JSON;
// every write of it is conditional on (holder, token), so a sentinel that
// lost its lease without noticing cannot write.
package leases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
)

// Attribute names. expires_at (epoch seconds) is the table's TTL
// attribute: here it lies Retain beyond the lease's end, so the ladder's
// state outlives the lease for the budget's window; expires_ms is the
// lease's exact expiry, which the conditions use.
const (
	AttrID        = "lease_id"
	AttrHolder    = "holder"
	AttrToken     = "token"
	AttrExpiresAt = "expires_at"
	AttrExpiresMS = "expires_ms"
	AttrState     = "recovery_state"
)

// Client is what Leases needs of DynamoDB.
type Client interface {
	UpdateItem(ctx context.Context, in *awsddb.UpdateItemInput, opts ...func(*awsddb.Options)) (*awsddb.UpdateItemOutput, error)
}

// Leases implements recovery.Leases for one holder.
type Leases struct {
	ddb      Client
	table    string
	holder   string
	duration time.Duration
	retain   time.Duration
	now      func() time.Time
}

// Option tunes Leases.
type Option func(*Leases)

// WithClock sets the clock expiries are computed with (all holders of a
// table must agree on the time).
func WithClock(now func() time.Time) Option { return func(l *Leases) { l.now = now } }

// WithRetain sets how long after the lease's end the item (and the
// ladder's state) is kept before TTL may remove it (default 7 days; it
// must be longer than the recovery budget's window).
func WithRetain(d time.Duration) Option { return func(l *Leases) { l.retain = d } }

// New returns the leases of table for holder (the sentinel's instance id).
func New(ddb Client, table, holder string, duration time.Duration, opts ...Option) *Leases {
	l := &Leases{ddb: ddb, table: table, holder: holder, duration: duration, retain: 7 * 24 * time.Hour, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// ID is the lease item of a gateway's recovery.
func ID(gatewayID string) string { return "health-sentinel/recovery/" + gatewayID }

// Duration is how long a lease lasts without renewal.
func (m *Leases) Duration() time.Duration { return m.duration }

func (m *Leases) expiry(now time.Time) (time.Time, map[string]ddbtypes.AttributeValue) {
	exp := now.Add(m.duration)
	return exp, map[string]ddbtypes.AttributeValue{
		":me":  &ddbtypes.AttributeValueMemberS{Value: m.holder},
		":ems": num(exp.UnixMilli()),
		":eat": num(exp.Add(m.retain).Unix()),
	}
}

var names = map[string]string{"#h": AttrHolder, "#t": AttrToken, "#ems": AttrExpiresMS, "#eat": AttrExpiresAt}

// Acquire takes the gateway's lease if it is free, expired, or already
// ours; ok is false when another holder has it.
func (m *Leases) Acquire(ctx context.Context, gatewayID string) (recovery.Lease, bool, error) {
	id := ID(gatewayID)
	now := m.now()
	exp, vals := m.expiry(now)
	vals[":now"] = num(now.UnixMilli())
	vals[":one"] = num(1)
	vals[":zero"] = num(0)
	n := map[string]string{"#id": AttrID}
	for k, v := range names {
		n[k] = v
	}
	out, err := m.ddb.UpdateItem(ctx, &awsddb.UpdateItemInput{
		TableName:                 aws.String(m.table),
		Key:                       key(id),
		UpdateExpression:          aws.String("SET #h = :me, #t = if_not_exists(#t, :zero) + :one, #ems = :ems, #eat = :eat"),
		ConditionExpression:       aws.String("attribute_not_exists(#id) OR #ems < :now OR #h = :me"),
		ExpressionAttributeNames:  n,
		ExpressionAttributeValues: vals,
		ReturnValues:              ddbtypes.ReturnValueAllNew,
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return recovery.Lease{}, false, nil
	}
	if err != nil {
		return recovery.Lease{}, false, fmt.Errorf("acquire lease %s: %w", id, err)
	}
	tok, err := numAttr(out.Attributes, AttrToken)
	if err != nil {
		return recovery.Lease{}, false, fmt.Errorf("acquire lease %s: %w", id, err)
	}
	l := recovery.Lease{ID: id, Token: tok, Expires: exp}
	if v, ok := out.Attributes[AttrState].(*ddbtypes.AttributeValueMemberS); ok && v.Value != "" {
		if err := json.Unmarshal([]byte(v.Value), &l.State); err != nil {
			// A state that cannot be read must not be taken for a clean
			// slate: that would give the budget back.
			return recovery.Lease{}, false, fmt.Errorf("acquire lease %s: the recovery state is unreadable: %w", id, err)
		}
	}
	return l, true, nil
}

// fenced runs a conditional write on a held lease.
func (m *Leases) fenced(ctx context.Context, l recovery.Lease, update string, vals map[string]ddbtypes.AttributeValue, n map[string]string) error {
	vals[":me"] = &ddbtypes.AttributeValueMemberS{Value: m.holder}
	vals[":tok"] = num(l.Token)
	n["#h"], n["#t"] = AttrHolder, AttrToken
	_, err := m.ddb.UpdateItem(ctx, &awsddb.UpdateItemInput{
		TableName:                 aws.String(m.table),
		Key:                       key(l.ID),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#h = :me AND #t = :tok"),
		ExpressionAttributeNames:  n,
		ExpressionAttributeValues: vals,
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return recovery.ErrLeaseLost
	}
	return err
}

// Renew extends a held lease; recovery.ErrLeaseLost when not ours.
func (m *Leases) Renew(ctx context.Context, l recovery.Lease) (recovery.Lease, error) {
	exp, vals := m.expiry(m.now())
	delete(vals, ":me")
	if err := m.fenced(ctx, l, "SET #ems = :ems, #eat = :eat", vals, map[string]string{"#ems": AttrExpiresMS, "#eat": AttrExpiresAt}); err != nil {
		return l, fmt.Errorf("renew lease %s: %w", l.ID, err)
	}
	l.Expires = exp
	return l, nil
}

// Save writes the ladder's state on a held lease.
func (m *Leases) Save(ctx context.Context, l recovery.Lease, s domain.RecoveryState) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("save recovery state %s: %w", l.ID, err)
	}
	vals := map[string]ddbtypes.AttributeValue{":s": &ddbtypes.AttributeValueMemberS{Value: string(b)}}
	if err := m.fenced(ctx, l, "SET #s = :s", vals, map[string]string{"#s": AttrState}); err != nil {
		return fmt.Errorf("save recovery state %s: %w", l.ID, err)
	}
	return nil
}

// Release ends a held lease at once; the state stays.
func (m *Leases) Release(ctx context.Context, l recovery.Lease) error {
	vals := map[string]ddbtypes.AttributeValue{":zero": num(0), ":eat": num(m.now().Add(m.retain).Unix())}
	err := m.fenced(ctx, l, "SET #ems = :zero, #eat = :eat", vals, map[string]string{"#ems": AttrExpiresMS, "#eat": AttrExpiresAt})
	if errors.Is(err, recovery.ErrLeaseLost) {
		return nil // not ours any more: nothing to release
	}
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.ID, err)
	}
	return nil
}

func key(id string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{AttrID: &ddbtypes.AttributeValueMemberS{Value: id}}
}

func num(n int64) *ddbtypes.AttributeValueMemberN {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func numAttr(item map[string]ddbtypes.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*ddbtypes.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("attribute %s missing or not a number", name)
	}
	return strconv.ParseInt(v.Value, 10, 64)
}
