// Package lease gives one holder at a time the right to watch a gateway:
// an item per gateway in the leases table, taken and renewed with
// conditional writes and an expiry.
//
// A lease carries a fencing token that grows with every acquisition. The
// store puts a condition on (holder, token) into every state write (see
// store.Commit), so a holder that lost its lease without noticing (a long
// pause) cannot write.
package lease

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoDB is the part of the DynamoDB client leases use.
type DynamoDB interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Attribute names of a lease item. expires_at (epoch seconds) is the
// table's TTL attribute; expires_ms is the exact expiry the conditions use.
const (
	AttrID        = "lease_id"
	AttrHolder    = "holder"
	AttrToken     = "token"
	AttrExpiresAt = "expires_at"
	AttrExpiresMS = "expires_ms"
	// AttrConfiguredMS: when the gateway was last configured (epoch ms), as
	// heard by any instance; the holder reads it with each renewal.
	AttrConfiguredMS = "configured_ms"
)

// ErrLost: the lease is held by someone else now (or expired and taken).
var ErrLost = errors.New("lease lost")

// Lease is a held lease.
type Lease struct {
	ID     string
	Holder string
	Token  int64
	// Expires is the expiry written with the last acquisition or renewal.
	Expires time.Time
	// Configured is the last configuration of the gateway noted on the
	// lease (NoteConfigured), as of the last acquisition or renewal; zero
	// if none.
	Configured time.Time
}

// Manager takes, renews and releases leases in one table for one holder.
type Manager struct {
	ddb      DynamoDB
	table    string
	holder   string
	duration time.Duration
	now      func() time.Time
}

// NewManager returns a Manager for holder (an instance id).
func NewManager(ddb DynamoDB, table, holder string, duration time.Duration) *Manager {
	return &Manager{ddb: ddb, table: table, holder: holder, duration: duration, now: time.Now}
}

// Holder is the instance id leases are taken for.
func (m *Manager) Holder() string { return m.holder }

// Duration is how long a lease lasts without renewal.
func (m *Manager) Duration() time.Duration { return m.duration }

func (m *Manager) expiryValues(now time.Time) (time.Time, map[string]ddbtypes.AttributeValue) {
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
func (m *Manager) Acquire(ctx context.Context, id string) (l Lease, ok bool, err error) {
	now := m.now()
	exp, vals := m.expiryValues(now)
	vals[":one"] = num(1)
	vals[":zero"] = num(0)
	out, err := m.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(m.table),
		Key:                       key(id),
		UpdateExpression:          aws.String("SET #h = :me, #t = if_not_exists(#t, :zero) + :one, #ems = :ems, #eat = :eat"),
		ConditionExpression:       aws.String("attribute_not_exists(#id) OR #ems < :now OR #h = :me"),
		ExpressionAttributeNames:  names(true),
		ExpressionAttributeValues: vals,
		ReturnValues:              ddbtypes.ReturnValueAllNew,
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("acquire lease %s: %w", id, err)
	}
	tok, err := numAttr(out.Attributes, AttrToken)
	if err != nil {
		return Lease{}, false, fmt.Errorf("acquire lease %s: %w", id, err)
	}
	return Lease{ID: id, Holder: m.holder, Token: tok, Expires: exp, Configured: timeAttr(out.Attributes, AttrConfiguredMS)}, true, nil
}

// Renew extends a held lease; ErrLost when it is no longer ours.
func (m *Manager) Renew(ctx context.Context, l Lease) (Lease, error) {
	now := m.now()
	exp, vals := m.expiryValues(now)
	delete(vals, ":now")
	vals[":tok"] = num(l.Token)
	out, err := m.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(m.table),
		Key:                       key(l.ID),
		UpdateExpression:          aws.String("SET #ems = :ems, #eat = :eat"),
		ConditionExpression:       aws.String("#h = :me AND #t = :tok"),
		ExpressionAttributeNames:  names(false),
		ExpressionAttributeValues: vals,
		ReturnValues:              ddbtypes.ReturnValueAllNew,
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return l, fmt.Errorf("renew lease %s: %w", l.ID, ErrLost)
	}
	if err != nil {
		return l, fmt.Errorf("renew lease %s: %w", l.ID, err)
	}
	l.Expires = exp
	if out != nil {
		if at := timeAttr(out.Attributes, AttrConfiguredMS); at.After(l.Configured) {
			l.Configured = at
		}
	}
	return l, nil
}

// NoteConfigured records on the lease id that the gateway was configured
// at at, for whichever instance holds it: an event reaches one instance,
// not necessarily the holder. An earlier time than the one recorded, or a
// lease nobody ever took, is left alone (the first holder starts afresh).
func (m *Manager) NoteConfigured(ctx context.Context, id string, at time.Time) error {
	_, err := m.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(m.table),
		Key:                       key(id),
		UpdateExpression:          aws.String("SET #cms = :at"),
		ConditionExpression:       aws.String("attribute_exists(#id) AND (attribute_not_exists(#cms) OR #cms < :at)"),
		ExpressionAttributeNames:  map[string]string{"#id": AttrID, "#cms": AttrConfiguredMS},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":at": num(at.UnixMilli())},
	})
	var ccf *ddbtypes.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &ccf) {
		return fmt.Errorf("note configuration on lease %s: %w", id, err)
	}
	return nil
}

// Release ends a held lease at once so another instance can take over
// without waiting for the expiry. The item (and its token) stays.
func (m *Manager) Release(ctx context.Context, l Lease) error {
	_, err := m.ddb.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(m.table),
		Key:                      key(l.ID),
		UpdateExpression:         aws.String("SET #ems = :zero, #eat = :eat"),
		ConditionExpression:      aws.String("#h = :me AND #t = :tok"),
		ExpressionAttributeNames: names(false),
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
		return fmt.Errorf("release lease %s: %w", l.ID, err)
	}
	return nil
}

func key(id string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{AttrID: &ddbtypes.AttributeValueMemberS{Value: id}}
}

// names maps the expression placeholders; DynamoDB refuses unused ones,
// so #id is added only where a condition tests the item's existence.
func names(withID bool) map[string]string {
	n := map[string]string{"#h": AttrHolder, "#t": AttrToken, "#ems": AttrExpiresMS, "#eat": AttrExpiresAt}
	if withID {
		n["#id"] = AttrID
	}
	return n
}

func num(n int64) *ddbtypes.AttributeValueMemberN {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
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
