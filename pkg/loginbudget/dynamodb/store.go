// Package dynamodb keeps login-budget ledgers in a DynamoDB table (the
// topology's mediagw-login-budget): one item per gateway holding the
// ledger as JSON and a version every write is conditioned on.
package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"mediagw/pkg/loginbudget"
)

// Attribute names of a ledger item.
const (
	AttrGatewayID = "gateway_id"
	AttrLedger    = "ledger"
	AttrVersion   = "version"
)

// Client is the part of the DynamoDB client the store uses.
type Client interface {
	GetItem(ctx context.Context, in *awsddb.GetItemInput, opts ...func(*awsddb.Options)) (*awsddb.GetItemOutput, error)
	PutItem(ctx context.Context, in *awsddb.PutItemInput, opts ...func(*awsddb.Options)) (*awsddb.PutItemOutput, error)
}

// Store is a loginbudget.Store on one table.
type Store struct {
	ddb   Client
	table string
}

var _ loginbudget.Store = (*Store)(nil)

// New returns the store of table.
func New(client Client, table string) *Store { return &Store{ddb: client, table: table} }

func key(gatewayID string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{AttrGatewayID: &ddbtypes.AttributeValueMemberS{Value: gatewayID}}
}

// Load reads the gateway's ledger (empty, version 0, when there is none).
// The read is strongly consistent: a failure another process recorded a
// moment ago must count.
func (s *Store) Load(ctx context.Context, gatewayID string) (loginbudget.Ledger, int64, error) {
	out, err := s.ddb.GetItem(ctx, &awsddb.GetItemInput{
		TableName: aws.String(s.table), Key: key(gatewayID), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return loginbudget.Ledger{}, 0, fmt.Errorf("read login budget of %s: %w", gatewayID, err)
	}
	if len(out.Item) == 0 {
		return loginbudget.Ledger{}, 0, nil
	}
	var l loginbudget.Ledger
	v, ok := out.Item[AttrVersion].(*ddbtypes.AttributeValueMemberN)
	if !ok {
		return l, 0, fmt.Errorf("login budget of %s: item has no version", gatewayID)
	}
	ver, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return l, 0, fmt.Errorf("login budget of %s: version %q: %w", gatewayID, v.Value, err)
	}
	if raw, ok := out.Item[AttrLedger].(*ddbtypes.AttributeValueMemberS); ok {
		if err := json.Unmarshal([]byte(raw.Value), &l); err != nil {
			// Not trusted, not overwritten blindly: refuse logins until
			// someone looks (a corrupt ledger could hide failures).
			return l, 0, fmt.Errorf("login budget of %s: unreadable ledger: %w", gatewayID, err)
		}
	}
	return l, ver, nil
}

// Save writes the ledger if the stored version is still prev.
func (s *Store) Save(ctx context.Context, gatewayID string, l loginbudget.Ledger, prev int64) error {
	raw, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("login budget of %s: %w", gatewayID, err)
	}
	item := key(gatewayID)
	item[AttrLedger] = &ddbtypes.AttributeValueMemberS{Value: string(raw)}
	item[AttrVersion] = &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(prev+1, 10)}
	in := &awsddb.PutItemInput{TableName: aws.String(s.table), Item: item,
		ExpressionAttributeNames: map[string]string{"#v": AttrVersion}}
	if prev == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(#v)")
	} else {
		in.ConditionExpression = aws.String("#v = :prev")
		in.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{":prev": &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(prev, 10)}}
	}
	_, err = s.ddb.PutItem(ctx, in)
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return loginbudget.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("write login budget of %s: %w", gatewayID, err)
	}
	return nil
}

// Ledger reads the gateway's ledger (for operators).
func (s *Store) Ledger(ctx context.Context, gatewayID string) (loginbudget.Ledger, error) {
	l, _, err := s.Load(ctx, gatewayID)
	return l, err
}
