// Package dynamodb keeps devices' recording state in the ip-camera table
// (app.TaskStore) and reads the device-watcher's deviceMediaURL table
// (app.DeviceMedia). A failed conditional write is domain.ErrConflict.
package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"mediagw/services/task-manager/internal/domain"
)

// DynamoDB is the part of the DynamoDB client the store uses.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// IPCamera is the ip-camera table: one row per device (partition key
// device_index), written only with conditions on its version.
type IPCamera struct {
	db    DynamoDB
	table string
}

// NewIPCamera returns the table adapter.
func NewIPCamera(db DynamoDB, table string) *IPCamera { return &IPCamera{db: db, table: table} }

// Attribute names of an ip-camera row.
const (
	attrDevice      = "device_index"
	attrGateway     = "gateway_id"
	attrChannels    = "channels"  // list of {channel N, media_url S}
	attrMediaURL    = "media_url" // the first channel's URL, for people reading the table
	attrWant        = "want"
	attrWantAt      = "want_at"
	attrStatus      = "status"
	attrToken       = "launch_token"
	attrTokenAt     = "launch_token_at"
	attrTaskID      = "task_id"
	attrLauncher    = "launcher"
	attrTaskChans   = "task_channels"
	attrTaskPack    = "task_pack" // every device the task records, when more than this one
	attrStartedAt   = "started_at"
	attrFailures    = "failures"
	attrNextAttempt = "next_attempt_at"
	attrLastExit    = "last_exit_code"
	attrLastReason  = "last_reason"
	attrVersion     = "version"
	attrUpdatedAt   = "updated_at"
)

// Get reads one device; found is false when it has no row.
func (s *IPCamera) Get(ctx context.Context, device string) (d domain.Device, found bool, err error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{attrDevice: &ddbtypes.AttributeValueMemberS{Value: device}},
	})
	if err != nil {
		return d, false, fmt.Errorf("get ip-camera %s: %w", device, err)
	}
	if out.Item == nil {
		return domain.Device{Index: device}, false, nil
	}
	d, err = decodeDevice(out.Item)
	if err != nil {
		return d, false, fmt.Errorf("ip-camera %s: %w", device, err)
	}
	return d, true, nil
}

// Put writes d if the stored row still has d.Version (no row when 0) and
// returns d with its new version; domain.ErrConflict when it has not.
func (s *IPCamera) Put(ctx context.Context, d domain.Device, now time.Time) (domain.Device, error) {
	prev := d.Version
	d.Version++
	d.UpdatedAt = now
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: encodeDevice(d)}
	if prev == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(" + attrDevice + ")")
	} else {
		in.ConditionExpression = aws.String("#v = :v")
		in.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
		in.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{":v": num(prev)}
	}
	if _, err := s.db.PutItem(ctx, in); err != nil {
		var cf *ddbtypes.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			return d, fmt.Errorf("put ip-camera %s at version %d: %w", d.Index, prev, domain.ErrConflict)
		}
		return d, fmt.Errorf("put ip-camera %s: %w", d.Index, err)
	}
	return d, nil
}

// Delete removes the row if it still has d.Version.
func (s *IPCamera) Delete(ctx context.Context, d domain.Device) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.table),
		Key:                       map[string]ddbtypes.AttributeValue{attrDevice: &ddbtypes.AttributeValueMemberS{Value: d.Index}},
		ConditionExpression:       aws.String("#v = :v"),
		ExpressionAttributeNames:  map[string]string{"#v": attrVersion},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":v": num(d.Version)},
	})
	if err != nil {
		var cf *ddbtypes.ConditionalCheckFailedException
		if errors.As(err, &cf) {
			return fmt.Errorf("delete ip-camera %s at version %d: %w", d.Index, d.Version, domain.ErrConflict)
		}
		return fmt.Errorf("delete ip-camera %s: %w", d.Index, err)
	}
	return nil
}

// List reads every row. A row that does not decode is reported in bad and
// skipped, so one broken row does not stop the others from being managed.
func (s *IPCamera) List(ctx context.Context) (devices []domain.Device, bad []error, err error) {
	err = scanAll(ctx, s.db, s.table, func(item map[string]ddbtypes.AttributeValue) {
		d, derr := decodeDevice(item)
		if derr != nil {
			bad = append(bad, fmt.Errorf("ip-camera row %s: %w", str(item, attrDevice), derr))
			return
		}
		devices = append(devices, d)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scan ip-camera: %w", err)
	}
	return devices, bad, nil
}

func scanAll(ctx context.Context, db DynamoDB, table string, each func(map[string]ddbtypes.AttributeValue)) error {
	var start map[string]ddbtypes.AttributeValue
	for {
		out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			each(item)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		start = out.LastEvaluatedKey
	}
}

func encodeDevice(d domain.Device) map[string]ddbtypes.AttributeValue {
	item := map[string]ddbtypes.AttributeValue{
		attrDevice:    &ddbtypes.AttributeValueMemberS{Value: d.Index},
		attrWant:      &ddbtypes.AttributeValueMemberS{Value: string(d.Want)},
		attrStatus:    &ddbtypes.AttributeValueMemberS{Value: string(d.Status)},
		attrVersion:   num(d.Version),
		attrUpdatedAt: ts(d.UpdatedAt),
		attrLastExit:  num(int64(d.LastExit)),
	}
	putS := func(k, v string) {
		if v != "" {
			item[k] = &ddbtypes.AttributeValueMemberS{Value: v}
		}
	}
	putT := func(k string, t time.Time) {
		if !t.IsZero() {
			item[k] = ts(t)
		}
	}
	putS(attrGateway, d.Gateway)
	putT(attrWantAt, d.WantAt)
	putS(attrToken, d.Token)
	putT(attrTokenAt, d.TokenAt)
	putS(attrLastReason, d.LastReason)
	putT(attrNextAttempt, d.NextAttempt)
	if len(d.Channels) > 0 {
		chs := make([]ddbtypes.AttributeValue, len(d.Channels))
		for i, c := range d.Channels {
			chs[i] = &ddbtypes.AttributeValueMemberM{Value: map[string]ddbtypes.AttributeValue{
				"channel":   num(int64(c.Number)),
				"media_url": &ddbtypes.AttributeValueMemberS{Value: c.MediaURL},
			}}
		}
		item[attrChannels] = &ddbtypes.AttributeValueMemberL{Value: chs}
		item[attrMediaURL] = &ddbtypes.AttributeValueMemberS{Value: d.Channels[0].MediaURL}
	}
	if d.Task != nil {
		putS(attrTaskID, d.Task.ID)
		putS(attrLauncher, d.Task.Launcher)
		putT(attrStartedAt, d.Task.StartedAt)
		tc := make([]ddbtypes.AttributeValue, len(d.Task.Channels))
		for i, c := range d.Task.Channels {
			tc[i] = num(int64(c))
		}
		item[attrTaskChans] = &ddbtypes.AttributeValueMemberL{Value: tc}
		if len(d.Task.Pack) > 0 {
			item[attrTaskPack] = &ddbtypes.AttributeValueMemberSS{Value: d.Task.Pack}
		}
	}
	if len(d.Failures) > 0 {
		fs := make([]ddbtypes.AttributeValue, len(d.Failures))
		for i, f := range d.Failures {
			fs[i] = ts(f)
		}
		item[attrFailures] = &ddbtypes.AttributeValueMemberL{Value: fs}
	}
	return item
}

func decodeDevice(item map[string]ddbtypes.AttributeValue) (domain.Device, error) {
	var errs []error
	t := func(k string) time.Time {
		v, err := parseTime(item[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		return v
	}
	n := func(k string) int64 {
		v, err := parseNum(item[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		return v
	}
	d := domain.Device{
		Index:       str(item, attrDevice),
		Gateway:     str(item, attrGateway),
		Want:        domain.Want(str(item, attrWant)),
		WantAt:      t(attrWantAt),
		Status:      domain.Status(str(item, attrStatus)),
		Token:       str(item, attrToken),
		TokenAt:     t(attrTokenAt),
		NextAttempt: t(attrNextAttempt),
		LastExit:    int32(n(attrLastExit)),
		LastReason:  str(item, attrLastReason),
		Version:     n(attrVersion),
		UpdatedAt:   t(attrUpdatedAt),
	}
	if d.Index == "" {
		errs = append(errs, errors.New("no device_index"))
	}
	if l, ok := item[attrChannels].(*ddbtypes.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			m, ok := v.(*ddbtypes.AttributeValueMemberM)
			if !ok {
				errs = append(errs, errors.New("channels: entry is not a map"))
				continue
			}
			c, err := parseNum(m.Value["channel"])
			if err != nil {
				errs = append(errs, fmt.Errorf("channels: %w", err))
				continue
			}
			d.Channels = append(d.Channels, domain.Channel{Number: int32(c), MediaURL: str(m.Value, "media_url")})
		}
	}
	if id := str(item, attrTaskID); id != "" {
		task := &domain.Task{ID: id, Launcher: str(item, attrLauncher), StartedAt: t(attrStartedAt)}
		if l, ok := item[attrTaskChans].(*ddbtypes.AttributeValueMemberL); ok {
			for _, v := range l.Value {
				c, err := parseNum(v)
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", attrTaskChans, err))
					continue
				}
				task.Channels = append(task.Channels, int32(c))
			}
		}
		if ss, ok := item[attrTaskPack].(*ddbtypes.AttributeValueMemberSS); ok {
			task.Pack = slices.Sorted(slices.Values(ss.Value))
		}
		d.Task = task
	}
	if l, ok := item[attrFailures].(*ddbtypes.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			f, err := parseTime(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", attrFailures, err))
				continue
			}
			d.Failures = append(d.Failures, f)
		}
	}
	return d, errors.Join(errs...)
}

func num(n int64) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func ts(t time.Time) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberS{Value: t.UTC().Format(time.RFC3339Nano)}
}

func str(item map[string]ddbtypes.AttributeValue, k string) string {
	if v, ok := item[k].(*ddbtypes.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func parseNum(v ddbtypes.AttributeValue) (int64, error) {
	switch v := v.(type) {
	case nil:
		return 0, nil
	case *ddbtypes.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("not a whole number: %q", v.Value)
		}
		return n, nil
	case *ddbtypes.AttributeValueMemberS:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("not a whole number: %q", v.Value)
		}
		return n, nil
	default:
		return 0, fmt.Errorf("not a number attribute (%T)", v)
	}
}

// parseTime reads a time stored as an RFC 3339 string or as a number of
// seconds, milliseconds, microseconds or nanoseconds since the epoch (the
// magnitude tells which), so rows written by other services read too.
func parseTime(v ddbtypes.AttributeValue) (time.Time, error) {
	switch v := v.(type) {
	case nil:
		return time.Time{}, nil
	case *ddbtypes.AttributeValueMemberS:
		if v.Value == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v.Value)
		if err != nil {
			if n, nerr := strconv.ParseFloat(v.Value, 64); nerr == nil {
				return epoch(n), nil
			}
			return time.Time{}, fmt.Errorf("not an RFC 3339 time: %q", v.Value)
		}
		return t, nil
	case *ddbtypes.AttributeValueMemberN:
		n, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("not a number: %q", v.Value)
		}
		return epoch(n), nil
	default:
		return time.Time{}, fmt.Errorf("not a time attribute (%T)", v)
	}
}

func epoch(n float64) time.Time {
	switch {
	case n > 1e17:
		return time.Unix(0, int64(n)).UTC()
	case n > 1e14:
		return time.UnixMicro(int64(n)).UTC()
	case n > 1e11:
		return time.UnixMilli(int64(n)).UTC()
	default:
		sec := int64(n)
		return time.Unix(sec, int64((n-float64(sec))*1e9)).UTC()
	}
}
