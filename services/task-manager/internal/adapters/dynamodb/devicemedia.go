package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"mediagw/services/task-manager/internal/app"
)

// DeviceMedia reads the deviceMediaURL table (app.DeviceMedia). The
// task-manager never writes it.
type DeviceMedia struct {
	db    DynamoDB
	table string
}

// NewDeviceMedia returns the table reader.
func NewDeviceMedia(db DynamoDB, table string) *DeviceMedia {
	return &DeviceMedia{db: db, table: table}
}

// Rows reads the whole table, ordered by device and channel. Rows that do
// not decode are returned in bad and left out.
func (s *DeviceMedia) Rows(ctx context.Context) (rows []app.ChannelRow, bad []error, err error) {
	err = scanAll(ctx, s.db, s.table, func(item map[string]ddbtypes.AttributeValue) {
		r, derr := decodeChannelRow(item)
		if derr != nil {
			bad = append(bad, fmt.Errorf("deviceMediaURL row %s/%s: %w", str(item, "device_index"), numText(item["channel"]), derr))
			return
		}
		rows = append(rows, r)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("scan deviceMediaURL: %w", err)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Device != rows[j].Device {
			return rows[i].Device < rows[j].Device
		}
		return rows[i].Channel < rows[j].Channel
	})
	return rows, bad, nil
}

// DeviceRows reads one device's channels.
func (s *DeviceMedia) DeviceRows(ctx context.Context, device string) ([]app.ChannelRow, error) {
	var rows []app.ChannelRow
	var start map[string]ddbtypes.AttributeValue
	for {
		out, err := s.db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(s.table),
			KeyConditionExpression:    aws.String("device_index = :d"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":d": &ddbtypes.AttributeValueMemberS{Value: device}},
			ExclusiveStartKey:         start,
			ConsistentRead:            aws.Bool(true),
		})
		if err != nil {
			return nil, fmt.Errorf("query deviceMediaURL %s: %w", device, err)
		}
		for _, item := range out.Items {
			r, err := decodeChannelRow(item)
			if err != nil {
				return nil, fmt.Errorf("deviceMediaURL row %s/%s: %w", device, numText(item["channel"]), err)
			}
			rows = append(rows, r)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return rows, nil
		}
		start = out.LastEvaluatedKey
	}
}

func decodeChannelRow(item map[string]ddbtypes.AttributeValue) (app.ChannelRow, error) {
	var errs []error
	ch, err := parseNum(item["channel"])
	if err != nil {
		errs = append(errs, fmt.Errorf("channel: %w", err))
	}
	r := app.ChannelRow{
		Device:   str(item, "device_index"),
		Channel:  int32(ch),
		Gateway:  str(item, "gateway_id"),
		MediaURL: str(item, "media_url"),
		Status:   str(item, "status"),
	}
	if r.FirstSeen, err = parseTime(item["first_seen"]); err != nil {
		errs = append(errs, fmt.Errorf("first_seen: %w", err))
	}
	if r.LastChange, err = parseTime(item["last_change"]); err != nil {
		errs = append(errs, fmt.Errorf("last_change: %w", err))
	}
	if r.EventAt, err = parseTime(item["event_at"]); err != nil {
		errs = append(errs, fmt.Errorf("event_at: %w", err))
	}
	if r.Version, err = parseNum(item["version"]); err != nil {
		errs = append(errs, fmt.Errorf("version: %w", err))
	}
	if r.Device == "" {
		errs = append(errs, errors.New("no device_index"))
	}
	return r, errors.Join(errs...)
}

func numText(v ddbtypes.AttributeValue) string {
	if n, ok := v.(*ddbtypes.AttributeValueMemberN); ok {
		return n.Value
	}
	return "?"
}
