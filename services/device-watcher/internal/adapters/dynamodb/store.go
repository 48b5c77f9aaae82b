// Package dynamodb is the device-watcher's adapter to DynamoDB: the state
// (app.DeviceStore: one row per camera channel in the deviceMediaURL
// table, and one state item per gateway in the leases table: reachability
// and login standing), the gateways' leases (app.Leases), and the login
// budget's store as the watcher uses it (LoginBudgetStore). Errors are
// mapped to the domain's:
// domain.ErrLeaseLost, domain.ErrConflict, and domain.ErrMisconfigured for
// a table that is missing or refused.
//
// Every change is written before it is announced, with the announcement's
// event id and a pending flag, in one transaction that is conditional on
// the rows' version and on the writer still holding the gateway's lease.
// Once the event is published the flag is cleared (or, for a deletion, the
// rows removed). A watcher that starts, or takes a gateway over, finds
// pending rows and publishes them again under the same event id.
package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"

	"mediagw/services/device-watcher/internal/app"
	"mediagw/services/device-watcher/internal/domain"
)

// Client is the part of the DynamoDB client the store and the leases use.
type Client interface {
	Scan(ctx context.Context, in *awsddb.ScanInput, opts ...func(*awsddb.Options)) (*awsddb.ScanOutput, error)
	Query(ctx context.Context, in *awsddb.QueryInput, opts ...func(*awsddb.Options)) (*awsddb.QueryOutput, error)
	GetItem(ctx context.Context, in *awsddb.GetItemInput, opts ...func(*awsddb.Options)) (*awsddb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *awsddb.UpdateItemInput, opts ...func(*awsddb.Options)) (*awsddb.UpdateItemOutput, error)
	TransactWriteItems(ctx context.Context, in *awsddb.TransactWriteItemsInput, opts ...func(*awsddb.Options)) (*awsddb.TransactWriteItemsOutput, error)
}

// Attributes of a deviceMediaURL row.
const (
	AttrDeviceIndex  = "device_index"
	AttrChannel      = "channel"
	AttrGatewayID    = "gateway_id"
	AttrDeviceName   = "device_name"
	AttrMediaURL     = "media_url"
	AttrStatus       = "status"
	AttrFirstSeen    = "first_seen"
	AttrLastChange   = "last_change"
	AttrOfflineSince = "offline_since"
	AttrVersion      = "version"
	AttrEventID      = "event_id"
	AttrEventAt      = "event_at"
	AttrPending      = "pending"
)

// Attributes of a gateway state item (leases table, key AttrLeaseID):
// reachability, the login standing (login_*; the credentials are
// parameter names and versions, no secret), and the kind of the change
// last stored (event_kind; absent on items written before it existed,
// whose change was a reachability change).
const (
	attrReachable         = "reachable"
	attrSince             = "since"
	attrReason            = "reason"
	attrUnreachableFor    = "unreachable_for_ms"
	attrLoginRejected     = "login_rejected"
	attrLoginSince        = "login_since"
	attrLoginReason       = "login_reason"
	attrLoginCredential   = "login_credential"
	attrLoginUntil        = "login_until"
	attrLoginFailedLogins = "login_failed_logins"
	attrLoginDetail       = "login_detail"
	attrEventKind         = "event_kind"
)

// maxTransactItems is DynamoDB's limit; one slot goes to the lease check.
const maxTransactItems = 100

// Config names the tables.
type Config struct {
	DeviceTable string
	LeaseTable  string
}

// Store reads and writes the state (app.DeviceStore).
type Store struct {
	ddb    Client
	cfg    Config
	writes atomic.Int64
	wc     *prometheus.CounterVec
}

// NewStore returns a Store; reg (may be nil) gets the write counter.
func NewStore(ddb Client, cfg Config, reg prometheus.Registerer) *Store {
	s := &Store{ddb: ddb, cfg: cfg, wc: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mediagw_device_watcher_store_writes_total",
		Help: "Items written to DynamoDB (puts, updates, deletes), by table.",
	}, []string{"table"})}
	if reg != nil {
		reg.MustRegister(s.wc)
	}
	return s
}

// Writes is the number of items written so far.
func (s *Store) Writes() int64 { return s.writes.Load() }

// StateItemID is the leases-table key of a gateway's state item.
func StateItemID(gatewayID string) string { return "device-watcher/" + gatewayID + "/state" }

// Load reads every row of the gateway and its state item.
func (s *Store) Load(ctx context.Context, gatewayID string) (domain.State, error) {
	var st domain.State
	rows := map[string][]map[string]ddbtypes.AttributeValue{}
	var start map[string]ddbtypes.AttributeValue
	for {
		// No index on gateway_id: a filtered scan, once per lease taken.
		out, err := s.ddb.Scan(ctx, &awsddb.ScanInput{
			TableName:                 aws.String(s.cfg.DeviceTable),
			ConsistentRead:            aws.Bool(true),
			FilterExpression:          aws.String("#g = :g"),
			ExpressionAttributeNames:  map[string]string{"#g": AttrGatewayID},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":g": str(gatewayID)},
			ExclusiveStartKey:         start,
		})
		if err != nil {
			return st, fmt.Errorf("load %s rows: %w", gatewayID, mapErr(err))
		}
		for _, it := range out.Items {
			idx := getS(it, AttrDeviceIndex)
			rows[idx] = append(rows[idx], it)
		}
		if start = out.LastEvaluatedKey; len(start) == 0 {
			break
		}
	}
	for _, idx := range slices.Sorted(maps.Keys(rows)) {
		d, pending, err := deviceFromRows(rows[idx])
		if err != nil {
			return st, fmt.Errorf("load %s device %s: %w", gatewayID, idx, err)
		}
		if pending != nil {
			pending.GatewayID = gatewayID
			st.Pending = append(st.Pending, *pending)
		}
		if d.Status != domain.Deleted {
			st.Devices = append(st.Devices, d)
		}
	}
	g, pending, err := s.loadGateway(ctx, gatewayID)
	if err != nil {
		return st, err
	}
	st.Gateway = g
	if pending != nil {
		st.Pending = append([]domain.Change{*pending}, st.Pending...)
	}
	return st, nil
}

// LoadDevice reads one camera's rows; nil when it has none.
func (s *Store) LoadDevice(ctx context.Context, gatewayID, index string) (*domain.Device, *domain.Change, error) {
	out, err := s.ddb.Query(ctx, &awsddb.QueryInput{
		TableName:                 aws.String(s.cfg.DeviceTable),
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("#d = :d"),
		ExpressionAttributeNames:  map[string]string{"#d": AttrDeviceIndex},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":d": str(index)},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load device %s: %w", index, mapErr(err))
	}
	if len(out.Items) == 0 {
		return nil, nil, nil
	}
	if g := getS(out.Items[0], AttrGatewayID); g != gatewayID {
		return nil, nil, fmt.Errorf("load device %s: its rows belong to gateway %q: %w", index, g, domain.ErrConflict)
	}
	d, pending, err := deviceFromRows(out.Items)
	if err != nil {
		return nil, nil, fmt.Errorf("load device %s: %w", index, err)
	}
	if pending != nil {
		pending.GatewayID = gatewayID
	}
	return &d, pending, nil
}

func (s *Store) loadGateway(ctx context.Context, gatewayID string) (domain.Gateway, *domain.Change, error) {
	out, err := s.ddb.GetItem(ctx, &awsddb.GetItemInput{
		TableName:      aws.String(s.cfg.LeaseTable),
		Key:            map[string]ddbtypes.AttributeValue{AttrLeaseID: str(StateItemID(gatewayID))},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return domain.Gateway{}, nil, fmt.Errorf("load gateway %s state: %w", gatewayID, mapErr(err))
	}
	it := out.Item
	if len(it) == 0 {
		return domain.Gateway{Reachable: true}, nil, nil
	}
	g := domain.Gateway{
		Reachable:  getBool(it, attrReachable),
		Since:      getTime(it, attrSince),
		Reason:     getS(it, attrReason),
		LastChange: getTime(it, AttrLastChange),
		Version:    getN(it, AttrVersion),
		Login: domain.Login{
			Rejected:   getBool(it, attrLoginRejected),
			Since:      getTime(it, attrLoginSince),
			Credential: getS(it, attrLoginCredential),
		},
	}
	if g.Login.Rejected {
		g.Login.Refusal = domain.LoginRefusal{
			Reason: getS(it, attrLoginReason), Credential: g.Login.Credential, Until: getTime(it, attrLoginUntil),
			FailedLogins: int(getN(it, attrLoginFailedLogins)), Detail: getS(it, attrLoginDetail),
		}
		g.Login.Credential = ""
	}
	if !getBool(it, AttrPending) {
		return g, nil, nil
	}
	c := &domain.Change{Kind: domain.Kind(getS(it, attrEventKind)), GatewayID: gatewayID, Gateway: g,
		EventID: getS(it, AttrEventID), OccurredAt: getTime(it, AttrEventAt),
		UnreachableFor: time.Duration(getN(it, attrUnreachableFor)) * time.Millisecond}
	switch {
	case c.Kind != "":
	case g.Reachable:
		c.Kind = domain.KindGatewayReachable
	default:
		c.Kind = domain.KindGatewayUnreachable
	}
	return g, c, nil
}

// deviceFromRows rebuilds a camera from its rows (one version, normally).
func deviceFromRows(items []map[string]ddbtypes.AttributeValue) (domain.Device, *domain.Change, error) {
	// The newest version wins should a partial write have left two.
	slices.SortFunc(items, func(a, b map[string]ddbtypes.AttributeValue) int {
		return int(getN(b, AttrVersion) - getN(a, AttrVersion))
	})
	head := items[0]
	d := domain.Device{
		Index:        getS(head, AttrDeviceIndex),
		Name:         getS(head, AttrDeviceName),
		Status:       domain.Status(getS(head, AttrStatus)),
		FirstSeen:    getTime(head, AttrFirstSeen),
		LastChange:   getTime(head, AttrLastChange),
		OfflineSince: getTime(head, AttrOfflineSince),
		Version:      getN(head, AttrVersion),
	}
	switch d.Status {
	case domain.Online, domain.Offline, domain.Deleted:
	default:
		return d, nil, fmt.Errorf("unknown status %q", d.Status)
	}
	for _, it := range items {
		if getN(it, AttrVersion) != d.Version {
			continue
		}
		d.Channels = append(d.Channels, domain.Channel{ID: int(getN(it, AttrChannel)), MediaURL: getS(it, AttrMediaURL)})
	}
	d.Channels = domain.SortChannels(d.Channels)
	if !getBool(head, AttrPending) {
		return d, nil, nil
	}
	c := &domain.Change{Device: d, EventID: getS(head, AttrEventID), OccurredAt: getTime(head, AttrEventAt)}
	switch d.Status {
	case domain.Online:
		c.Kind = domain.KindDeviceOnline
	case domain.Offline:
		c.Kind = domain.KindDeviceOffline
	case domain.Deleted:
		c.Kind = domain.KindDeviceDeleted
	}
	return d, c, nil
}

// Commit stores a change as pending, conditional on the writer holding
// the lease l (its holder and token) and on the stored version being the
// one the change starts from.
func (s *Store) Commit(ctx context.Context, l domain.Lease, c domain.Change) error {
	if c.EventID == "" {
		return errors.New("store: change without event id")
	}
	fence := s.fence(l)
	if c.Kind.IsDevice() {
		return s.commitDevice(ctx, fence, c)
	}
	return s.commitGateway(ctx, fence, c)
}

func (s *Store) commitDevice(ctx context.Context, fence *ddbtypes.ConditionCheck, c domain.Change) error {
	d := c.Device
	prevVersion := map[int]int64{}
	if c.Previous != nil {
		for _, ch := range c.Previous.Channels {
			prevVersion[ch.ID] = c.Previous.Version
		}
	}
	var ops []ddbtypes.TransactWriteItem
	for _, ch := range d.Channels {
		item := map[string]ddbtypes.AttributeValue{
			AttrDeviceIndex: str(d.Index), AttrChannel: num(int64(ch.ID)),
			AttrGatewayID: str(c.GatewayID), AttrMediaURL: str(ch.MediaURL), AttrStatus: str(string(d.Status)),
			AttrFirstSeen: tstr(d.FirstSeen), AttrLastChange: tstr(d.LastChange), AttrVersion: num(d.Version),
			AttrEventID: str(c.EventID), AttrEventAt: tstr(c.OccurredAt), AttrPending: &ddbtypes.AttributeValueMemberBOOL{Value: true},
		}
		if d.Name != "" {
			item[AttrDeviceName] = str(d.Name)
		}
		if !d.OfflineSince.IsZero() {
			item[AttrOfflineSince] = tstr(d.OfflineSince)
		}
		put := &ddbtypes.Put{TableName: aws.String(s.cfg.DeviceTable), Item: item}
		if v, existed := prevVersion[ch.ID]; existed {
			put.ConditionExpression = aws.String("#v = :v")
			put.ExpressionAttributeNames = map[string]string{"#v": AttrVersion}
			put.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{":v": num(v)}
		} else {
			put.ConditionExpression = aws.String("attribute_not_exists(#d)")
			put.ExpressionAttributeNames = map[string]string{"#d": AttrDeviceIndex}
		}
		ops = append(ops, ddbtypes.TransactWriteItem{Put: put})
	}
	// Channels the camera no longer has.
	if c.Previous != nil {
		for _, ch := range c.Previous.Channels {
			if slices.ContainsFunc(d.Channels, func(n domain.Channel) bool { return n.ID == ch.ID }) {
				continue
			}
			ops = append(ops, ddbtypes.TransactWriteItem{Delete: &ddbtypes.Delete{
				TableName: aws.String(s.cfg.DeviceTable), Key: rowKey(d.Index, ch.ID),
				ConditionExpression:       aws.String("#v = :v"),
				ExpressionAttributeNames:  map[string]string{"#v": AttrVersion},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":v": num(c.Previous.Version)},
			}})
		}
	}
	return s.transact(ctx, fence, ops, s.cfg.DeviceTable)
}

func (s *Store) commitGateway(ctx context.Context, fence *ddbtypes.ConditionCheck, c domain.Change) error {
	g := c.Gateway
	item := map[string]ddbtypes.AttributeValue{
		AttrLeaseID: str(StateItemID(c.GatewayID)), AttrGatewayID: str(c.GatewayID),
		attrReachable:  &ddbtypes.AttributeValueMemberBOOL{Value: g.Reachable},
		AttrLastChange: tstr(g.LastChange), AttrVersion: num(g.Version),
		AttrEventID: str(c.EventID), AttrEventAt: tstr(c.OccurredAt), AttrPending: &ddbtypes.AttributeValueMemberBOOL{Value: true},
		attrUnreachableFor: num(c.UnreachableFor.Milliseconds()),
	}
	if !g.Reachable {
		item[attrSince] = tstr(g.Since)
		item[attrReason] = str(g.Reason)
	}
	item[attrEventKind] = str(string(c.Kind))
	if l := g.Login; l.Rejected || !l.Since.IsZero() {
		item[attrLoginRejected] = &ddbtypes.AttributeValueMemberBOOL{Value: l.Rejected}
		item[attrLoginSince] = tstr(l.Since)
		item[attrLoginCredential] = str(l.Credential)
		if l.Rejected {
			item[attrLoginCredential] = str(l.Refusal.Credential)
			item[attrLoginReason] = str(l.Refusal.Reason)
			item[attrLoginUntil] = tstr(l.Refusal.Until)
			item[attrLoginFailedLogins] = num(int64(l.Refusal.FailedLogins))
			item[attrLoginDetail] = str(l.Refusal.Detail)
		}
	}
	put := &ddbtypes.Put{TableName: aws.String(s.cfg.LeaseTable), Item: item}
	if c.PreviousGateway.Version > 0 {
		put.ConditionExpression = aws.String("#v = :v")
		put.ExpressionAttributeNames = map[string]string{"#v": AttrVersion}
		put.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{":v": num(c.PreviousGateway.Version)}
	} else {
		put.ConditionExpression = aws.String("attribute_not_exists(#id)")
		put.ExpressionAttributeNames = map[string]string{"#id": AttrLeaseID}
	}
	return s.transact(ctx, fence, []ddbtypes.TransactWriteItem{{Put: put}}, s.cfg.LeaseTable)
}

// transact writes ops with the fence in front, in chunks DynamoDB accepts
// (only a camera with more than 99 channels needs several).
func (s *Store) transact(ctx context.Context, fence *ddbtypes.ConditionCheck, ops []ddbtypes.TransactWriteItem, table string) error {
	for chunk := range slices.Chunk(ops, maxTransactItems-1) {
		items := chunk
		if fence != nil {
			items = append([]ddbtypes.TransactWriteItem{{ConditionCheck: fence}}, chunk...)
		}
		_, err := s.ddb.TransactWriteItems(ctx, &awsddb.TransactWriteItemsInput{TransactItems: items})
		if err != nil {
			return classify(err, fence != nil)
		}
		s.count(table, len(chunk))
	}
	return nil
}

func (s *Store) count(table string, n int) {
	s.writes.Add(int64(n))
	s.wc.WithLabelValues(table).Add(float64(n))
}

// classify turns a cancelled transaction into domain.ErrLeaseLost (the
// fence, item 0, failed) or domain.ErrConflict (a row's condition failed).
func classify(err error, fenced bool) error {
	var tc *ddbtypes.TransactionCanceledException
	if !errors.As(err, &tc) {
		return fmt.Errorf("store: %w", mapErr(err))
	}
	for i, r := range tc.CancellationReasons {
		if aws.ToString(r.Code) != "ConditionalCheckFailed" {
			continue
		}
		if i == 0 && fenced {
			return fmt.Errorf("store: %w", domain.ErrLeaseLost)
		}
		return fmt.Errorf("store: %w", domain.ErrConflict)
	}
	return fmt.Errorf("store: %w", err)
}

// mapErr marks the errors no retry can fix as domain.ErrMisconfigured: the
// table does not exist, or this process may not use it. Throttling and
// server errors were retried by the SDK already; they stay as they are
// (transient: the watcher tries again later).
func mapErr(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ResourceNotFoundException", "AccessDeniedException":
			return fmt.Errorf("%w: %w", domain.ErrMisconfigured, err)
		}
	}
	return err
}

// Announced records that the change's event was published: the pending
// flag goes, or for a deletion the rows. A newer change stored meanwhile
// is left alone.
func (s *Store) Announced(ctx context.Context, c domain.Change) error {
	if !c.Kind.IsDevice() {
		_, err := s.transactPlain(ctx, []ddbtypes.TransactWriteItem{{Update: &ddbtypes.Update{
			TableName:                 aws.String(s.cfg.LeaseTable),
			Key:                       map[string]ddbtypes.AttributeValue{AttrLeaseID: str(StateItemID(c.GatewayID))},
			UpdateExpression:          aws.String("REMOVE #p"),
			ConditionExpression:       aws.String("#v = :v AND #e = :e"),
			ExpressionAttributeNames:  map[string]string{"#p": AttrPending, "#v": AttrVersion, "#e": AttrEventID},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":v": num(c.Gateway.Version), ":e": str(c.EventID)},
		}}}, s.cfg.LeaseTable)
		return err
	}
	d := c.Device
	var ops []ddbtypes.TransactWriteItem
	cond := aws.String("#v = :v AND #e = :e")
	condNames := map[string]string{"#v": AttrVersion, "#e": AttrEventID}
	condVals := map[string]ddbtypes.AttributeValue{":v": num(d.Version), ":e": str(c.EventID)}
	for _, ch := range d.Channels {
		if c.Kind == domain.KindDeviceDeleted {
			ops = append(ops, ddbtypes.TransactWriteItem{Delete: &ddbtypes.Delete{
				TableName: aws.String(s.cfg.DeviceTable), Key: rowKey(d.Index, ch.ID),
				ConditionExpression: cond, ExpressionAttributeNames: condNames, ExpressionAttributeValues: condVals,
			}})
			continue
		}
		names := map[string]string{"#p": AttrPending, "#v": AttrVersion, "#e": AttrEventID}
		ops = append(ops, ddbtypes.TransactWriteItem{Update: &ddbtypes.Update{
			TableName: aws.String(s.cfg.DeviceTable), Key: rowKey(d.Index, ch.ID),
			UpdateExpression:    aws.String("REMOVE #p"),
			ConditionExpression: cond, ExpressionAttributeNames: names, ExpressionAttributeValues: condVals,
		}})
	}
	for chunk := range slices.Chunk(ops, maxTransactItems) {
		if _, err := s.transactPlain(ctx, chunk, s.cfg.DeviceTable); err != nil {
			return err
		}
	}
	return nil
}

// transactPlain runs an unfenced transaction; a failed condition means a
// newer change superseded this one, which is not an error.
func (s *Store) transactPlain(ctx context.Context, ops []ddbtypes.TransactWriteItem, table string) (bool, error) {
	_, err := s.ddb.TransactWriteItems(ctx, &awsddb.TransactWriteItemsInput{TransactItems: ops})
	if err != nil {
		if errors.Is(classify(err, false), domain.ErrConflict) {
			return false, nil
		}
		return false, fmt.Errorf("store: mark announced: %w", mapErr(err))
	}
	s.count(table, len(ops))
	return true, nil
}

// fence is the lease check every state write carries.
func (s *Store) fence(l domain.Lease) *ddbtypes.ConditionCheck {
	return &ddbtypes.ConditionCheck{
		TableName:                aws.String(s.cfg.LeaseTable),
		Key:                      map[string]ddbtypes.AttributeValue{AttrLeaseID: str(l.ID)},
		ConditionExpression:      aws.String("#h = :me AND #t = :tok"),
		ExpressionAttributeNames: map[string]string{"#h": AttrLeaseHolder, "#t": AttrLeaseToken},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":me": str(l.Holder), ":tok": num(l.Token),
		},
	}
}

func rowKey(index string, channel int) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{AttrDeviceIndex: str(index), AttrChannel: num(int64(channel))}
}

func str(s string) *ddbtypes.AttributeValueMemberS { return &ddbtypes.AttributeValueMemberS{Value: s} }

func num(n int64) *ddbtypes.AttributeValueMemberN {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func tstr(t time.Time) *ddbtypes.AttributeValueMemberS {
	if t.IsZero() {
		return str("")
	}
	return str(t.UTC().Format(time.RFC3339Nano))
}

func getS(it map[string]ddbtypes.AttributeValue, k string) string {
	if v, ok := it[k].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(it map[string]ddbtypes.AttributeValue, k string) int64 {
	if v, ok := it[k].(*ddbtypes.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

func getBool(it map[string]ddbtypes.AttributeValue, k string) bool {
	v, ok := it[k].(*ddbtypes.AttributeValueMemberBOOL)
	return ok && v.Value
}

func getTime(it map[string]ddbtypes.AttributeValue, k string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, getS(it, k))
	return t
}

var (
	_ app.DeviceStore = (*Store)(nil)
	_ app.Leases      = (*Leases)(nil)
)
