package dynamodb

// Leases give one holder at a time the right to watch a gateway: an item
// per gateway in the leases table, taken and renewed with conditional
// writes and an expiry.
//
// A lease carries a fencing token that grows with every acquisition. The
// Store puts a condition on (holder, token) into every state write (see
// Store.Commit), so a holder that lost its lease without noticing (a long
// pause) cannot write.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"mediagw/services/device-watcher/internal/domain"
)

// Attribute names of a lease item. expires_at (epoch seconds) is the
// table's TTL attribute; expires_ms is the exact expiry the conditions use.
const (
	AttrLeaseID        = "lease_id"
	AttrLeaseHolder    = "holder"
	AttrLeaseToken     = "token"
	AttrLeaseExpiresAt = "expires_at"
	AttrLeaseExpiresMS = "expires_ms"
	// AttrLeaseConfiguredMS: when the gateway was last configured (epoch
	// ms), as heard by any instance; the holder reads it with each renewal.
	AttrLeaseConfiguredMS = "configured_ms"
)

// Leases takes, renews and releases leases in one table for one holder
// (app.Leases).
type Leases struct {
	ddb      Client
	table    string
	holder   string
	duration time.Duration
	now      func() time.Time
}

// LeaseOption tunes Leases.
type LeaseOption func(*Leases)

// WithClock sets the clock the expiries are computed and compared with
// (default time.Now). All holders of a table must agree on the time:
// tests give them one fake clock to let leases expire without waiting.
func WithClock(now func() time.Time) LeaseOption { return func(l *Leases) { l.now = now } }

// NewLeases returns the leases of table for holder (an instance id).
func NewLeases(ddb Client, table, holder string, duration time.Duration, opts ...LeaseOption) *Leases {
	l := &Leases{ddb: ddb, table: table, holder: holder, duration: duration, now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Holder is the instance id leases are taken for.
func (m *Leases) Holder() string { return m.holder }

// Duration is how long a lease lasts without renewal.
func (m *Leases) Duration() time.Duration { return m.duration }

func (m *Leases) expiryValues(now time.Time) (time.Time, map[string]ddbtypes.AttributeValue) {
	exp := now.Add(m.duration)
	return exp, map[string]ddbtypes.AttributeValue{
		":me":  &ddbtypes.AttributeValueMemberS{Value: m.holder},
		":now": num(now.UnixMilli()),
		":ems": num(exp.UnixMilli()),
		// Rounded up so that TTL never removes a lease before it ends.
		":eat": num(exp.Add(time.Second - 1).Unix()),
	}
}

// Acquire takes the lease id if it is free, expired, or already ours. ok is
// false when another holder has it.
func (m *Leases) Acquire(ctx context.Context, id string) (l domain.Lease, ok bool, err error) {
	now := m.now()
	exp, vals := m.expiryValues(now)
	vals[":one"] = num(1)
	vals[":zero"] = num(0)
	out, err := m.ddb.UpdateItem(ctx, &awsddb.UpdateItemInput{
		TableName:                 aws.String(m.table),
		Key:                       leaseKey(id),
		UpdateExpression:          aws.String("SET #h = :me, #t = if_not_exists(#t, :zero) + :one, #ems = :ems, #eat = :eat"),
		ConditionExpression:       aws.String("attribute_not_exists(#id) OR #ems < :now OR #h = :me"),
		ExpressionAttributeNames:  leaseNames(true),
		ExpressionAttributeValues: vals,
		ReturnValues:              ddbtypes.ReturnValueAllNew,
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return domain.Lease{}, false, nil
	}
	if err != nil {
		return domain.Lease{}, false, fmt.Errorf("acquire lease %s: %w", id, mapErr(err))
	}
	tok, err := numAttr(out.Attributes, AttrLeaseToken)
	if err != nil {
		return domain.Lease{}, false, fmt.Errorf("acquire lease %s: %w", id, err)
	}
	return domain.Lease{ID: id, Holder: m.holder, Token: tok, Expires: exp, Configured: timeAttr(out.Attributes, AttrLeaseConfiguredMS)}, true, nil
}

// Renew extends a held lease; ErrLost when it is no longer ours.
func (m *Leases) Renew(ctx context.Context, l domain.Lease) (domain.Lease, error) {
	now := m.now()
	exp, vals := m.expiryValues(now)
	delete(vals, ":now")
	vals[":tok"] = num(l.Token)
	out, err := m.ddb.UpdateItem(ctx, &awsddb.UpdateItemInput{
		TableName:                 aws.String(m.table),
		Key:                       leaseKey(l.ID),
		UpdateExpression:          aws.String("SET #ems = :ems, #eat = :eat"),
		ConditionExpression:       aws.String("#h = :me AND #t = :tok"),
		ExpressionAttributeNames:  leaseNames(false),
		ExpressionAttributeValues: vals,
		ReturnValues:              ddbtypes.ReturnValueAllNew,
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return l, fmt.Errorf("renew lease %s: %w", l.ID, domain.ErrLeaseLost)
	}
	if err != nil {
		return l, fmt.Errorf("renew lease %s: %w", l.ID, mapErr(err))
	}
	l.Expires = exp
	if out != nil {
		if at := timeAttr(out.Attributes, AttrLeaseConfiguredMS); at.After(l.Configured) {
			l.Configured = at
		}
	}
	return l, nil
}

// NoteConfigured records on the lease id that the gateway was configured
// at at, for whichever instance holds it: an event reaches one instance,
// not necessarily the holder. An earlier time than the one recorded, or a
// lease nobody ever took, is left alone (the first holder starts afresh).
func (m *Leases) NoteConfigured(ctx context.Context, id string, at time.Time) error {
	_, err := m.ddb.UpdateItem(ctx, &awsddb.UpdateItemInput{
		TableName:                 aws.String(m.table),
		Key:                       leaseKey(id),
		UpdateExpression:          aws.String("SET #cms = :at"),
		ConditionExpression:       aws.String("attribute_exists(#id) AND (attribute_not_exists(#cms) OR #cms < :at)"),
		ExpressionAttributeNames:  map[string]string{"#id": AttrLeaseID, "#cms": AttrLeaseConfiguredMS},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":at": num(at.UnixMilli())},
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("note configuration on lease %s: %w", id, mapErr(err))
	}
	return nil
}

// Release ends a held lease at once so another instance can take over
// without waiting for the expiry. The item (and its token) stays.
func (m *Leases) Release(ctx context.Context, l domain.Lease) error {
	_, err := m.ddb.UpdateItem(ctx, &awsddb.UpdateItemInput{
		TableName:                aws.String(m.table),
		Key:                      leaseKey(l.ID),
		UpdateExpression:         aws.String("SET #ems = :zero, #eat = :eat"),
		ConditionExpression:      aws.String("#h = :me AND #t = :tok"),
		ExpressionAttributeNames: leaseNames(false),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":me": &ddbtypes.AttributeValueMemberS{Value: m.holder}, ":tok": num(l.Token),
			":zero": num(0), ":eat": num(m.now().Add(24 * time.Hour).Unix()),
		},
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return nil // not ours any more: nothing to release
	}
	if err != nil {
		return fmt.Errorf("release lease %s: %w", l.ID, mapErr(err))
	}
	return nil
}

func leaseKey(id string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{AttrLeaseID: &ddbtypes.AttributeValueMemberS{Value: id}}
}

// names maps the expression placeholders; DynamoDB refuses unused ones,
// so #id is added only where a condition tests the item's existence.
func leaseNames(withID bool) map[string]string {
	n := map[string]string{"#h": AttrLeaseHolder, "#t": AttrLeaseToken, "#ems": AttrLeaseExpiresMS, "#eat": AttrLeaseExpiresAt}
	if withID {
		n["#id"] = AttrLeaseID
	}
	return n
}

// timeAttr reads an optional epoch-milliseconds attribute; zero if absent.
func timeAttr(item map[string]ddbtypes.AttributeValue, name string) time.Time {
	ms, err := numAttr(item, name)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func numAttr(item map[string]ddbtypes.AttributeValue, name string) (int64, error) {
	v, ok := item[name].(*ddbtypes.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("attribute %s missing or not a number", name)
	}
	return strconv.ParseInt(v.Value, 10, 64)
}
