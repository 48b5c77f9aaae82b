// Package dynamodb keeps incidents and storm counters in the incidents
// table (mediagw-incidents): one item per key (incident_key = what is
// broken: gateway/gw-1, camera/<device>, …; storm/<gateway> for a storm
// counter), written with a version condition. The whole record is the
// JSON attribute doc; the attributes mediagw-ctl lists (state, title,
// gateway, opened/resolved, steps) are top-level too.
package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"mediagw/services/health-sentinel/internal/domain"
)

// Attribute names (mediagw-ctl reads them: services/task-manager/internal/wiring/ctl).
const (
	AttrKey      = "incident_key"
	AttrKind     = "kind"
	AttrState    = "state"
	AttrGateway  = "gateway_id"
	AttrDevice   = "device_index"
	AttrTitle    = "title"
	AttrID       = "incident_id"
	AttrOpened   = "opened_at"
	AttrResolved = "resolved_at"
	AttrSteps    = "steps"
	AttrDoc      = "doc"
	AttrVersion  = "version"
	// AttrNextDue is present while a mail is owed (RFC 3339): the flush
	// finds such incidents with a filter.
	AttrNextDue   = "next_due"
	AttrDigestDue = "digest_due"
)

const stormPrefix = "storm/"

// Client is the part of the DynamoDB client the store uses.
type Client interface {
	GetItem(ctx context.Context, in *awsddb.GetItemInput, opts ...func(*awsddb.Options)) (*awsddb.GetItemOutput, error)
	PutItem(ctx context.Context, in *awsddb.PutItemInput, opts ...func(*awsddb.Options)) (*awsddb.PutItemOutput, error)
	Scan(ctx context.Context, in *awsddb.ScanInput, opts ...func(*awsddb.Options)) (*awsddb.ScanOutput, error)
}

// Store is app.Store on one table.
type Store struct {
	ddb   Client
	table string
}

// NewStore returns the store of table.
func NewStore(ddb Client, table string) *Store { return &Store{ddb: ddb, table: table} }

func s(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
func n(v int64) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func (st *Store) get(ctx context.Context, key string, into any) (int64, bool, error) {
	out, err := st.ddb.GetItem(ctx, &awsddb.GetItemInput{TableName: aws.String(st.table), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{AttrKey: s(key)}})
	if err != nil {
		return 0, false, fmt.Errorf("get %s: %w", key, err)
	}
	if out.Item == nil {
		return 0, false, nil
	}
	return decode(out.Item, into)
}

func decode(item map[string]ddbtypes.AttributeValue, into any) (int64, bool, error) {
	doc, ok := item[AttrDoc].(*ddbtypes.AttributeValueMemberS)
	if !ok {
		return 0, false, fmt.Errorf("item without %s", AttrDoc)
	}
	if err := json.Unmarshal([]byte(doc.Value), into); err != nil {
		return 0, false, fmt.Errorf("item %s: %w", AttrDoc, err)
	}
	var v int64
	if nv, ok := item[AttrVersion].(*ddbtypes.AttributeValueMemberN); ok {
		v, _ = strconv.ParseInt(nv.Value, 10, 64)
	}
	return v, true, nil
}

// put writes item if the stored version is still version (0: no item).
func (st *Store) put(ctx context.Context, item map[string]ddbtypes.AttributeValue, version int64) error {
	item[AttrVersion] = n(version + 1)
	in := &awsddb.PutItemInput{TableName: aws.String(st.table), Item: item}
	if version == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(#k)")
		in.ExpressionAttributeNames = map[string]string{"#k": AttrKey}
	} else {
		in.ConditionExpression = aws.String("#v = :v")
		in.ExpressionAttributeNames = map[string]string{"#v": AttrVersion}
		in.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{":v": n(version)}
	}
	_, err := st.ddb.PutItem(ctx, in)
	var ccf *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return domain.ErrConflict
	}
	return err
}

// Get reads key's incident.
func (st *Store) Get(ctx context.Context, key string) (domain.Incident, bool, error) {
	var inc domain.Incident
	v, found, err := st.get(ctx, key, &inc)
	inc.Version = v
	return inc, found, err
}

// Put writes inc if its version is still the stored one.
func (st *Store) Put(ctx context.Context, inc domain.Incident) (domain.Incident, error) {
	doc, err := json.Marshal(inc)
	if err != nil {
		return inc, err
	}
	item := map[string]ddbtypes.AttributeValue{
		AttrKey: s(inc.Key), AttrKind: s(string(inc.Kind)), AttrDoc: s(string(doc)),
	}
	if inc.State != domain.StateNone {
		item[AttrState] = s(string(inc.State))
	}
	for attr, v := range map[string]string{AttrGateway: inc.Gateway, AttrDevice: inc.Device, AttrTitle: inc.Title, AttrID: inc.ID} {
		if v != "" {
			item[attr] = s(v)
		}
	}
	for attr, t := range map[string]time.Time{AttrOpened: inc.Opened, AttrResolved: inc.Resolved, AttrNextDue: inc.NextDue()} {
		if !t.IsZero() {
			item[attr] = s(t.UTC().Format(time.RFC3339Nano))
		}
	}
	if len(inc.Steps) > 0 {
		var steps []ddbtypes.AttributeValue
		for _, st := range inc.Steps {
			line := st.At.UTC().Format(time.RFC3339) + " " + st.What
			if st.Outcome != "" {
				line += ": " + st.Outcome
			}
			steps = append(steps, s(line))
		}
		item[AttrSteps] = &ddbtypes.AttributeValueMemberL{Value: steps}
	}
	if err := st.put(ctx, item, inc.Version); err != nil {
		return inc, fmt.Errorf("put %s: %w", inc.Key, err)
	}
	inc.Version++
	return inc, nil
}

// GetStorm reads gateway's storm counter.
func (st *Store) GetStorm(ctx context.Context, gateway string) (domain.Storm, bool, error) {
	var sc domain.Storm
	v, found, err := st.get(ctx, stormPrefix+gateway, &sc)
	sc.Version = v
	return sc, found, err
}

// PutStorm writes a storm counter if its version is still the stored one.
func (st *Store) PutStorm(ctx context.Context, sc domain.Storm) (domain.Storm, error) {
	doc, err := json.Marshal(sc)
	if err != nil {
		return sc, err
	}
	item := map[string]ddbtypes.AttributeValue{AttrKey: s(stormPrefix + sc.Gateway), AttrKind: s("storm"), AttrGateway: s(sc.Gateway), AttrDoc: s(string(doc))}
	if len(sc.Digest) > 0 {
		item[AttrDigestDue] = s(sc.DigestDue.UTC().Format(time.RFC3339Nano))
	}
	if err := st.put(ctx, item, sc.Version); err != nil {
		return sc, fmt.Errorf("put storm counter %s: %w", sc.Gateway, err)
	}
	sc.Version++
	return sc, nil
}

// Active scans for open incidents, incidents that owe a mail and storm
// counters that owe a digest. The table holds one item per thing that
// ever broke, so the scan stays small.
func (st *Store) Active(ctx context.Context) ([]domain.Incident, []domain.Storm, error) {
	var incs []domain.Incident
	var storms []domain.Storm
	p := awsddb.NewScanPaginator(st.ddb, &awsddb.ScanInput{TableName: aws.String(st.table), ConsistentRead: aws.Bool(true),
		FilterExpression:          aws.String("#s = :open OR attribute_exists(#nd) OR attribute_exists(#dd)"),
		ExpressionAttributeNames:  map[string]string{"#s": AttrState, "#nd": AttrNextDue, "#dd": AttrDigestDue},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":open": s(string(domain.StateOpen))}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("scan %s: %w", st.table, err)
		}
		for _, item := range page.Items {
			key, _ := item[AttrKey].(*ddbtypes.AttributeValueMemberS)
			if key != nil && strings.HasPrefix(key.Value, stormPrefix) {
				var sc domain.Storm
				v, _, err := decode(item, &sc)
				if err != nil {
					return nil, nil, err
				}
				sc.Version = v
				storms = append(storms, sc)
				continue
			}
			var inc domain.Incident
			v, _, err := decode(item, &inc)
			if err != nil {
				return nil, nil, err
			}
			inc.Version = v
			incs = append(incs, inc)
		}
	}
	return incs, storms, nil
}
