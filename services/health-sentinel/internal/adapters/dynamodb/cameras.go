package dynamodb

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Cameras reads the device-watcher's deviceMediaURL table (device_index,
// channel, gateway_id, …) to name the cameras of a gateway in its outage's
// mails.
type Cameras struct {
	ddb   awsddb.ScanAPIClient
	table string
}

// NewCameras returns the reader of table.
func NewCameras(ddb awsddb.ScanAPIClient, table string) *Cameras {
	return &Cameras{ddb: ddb, table: table}
}

// Of returns the device indexes of gateway's cameras, sorted. The table
// holds one row per camera channel, so a scan stays small.
func (c *Cameras) Of(ctx context.Context, gateway string) ([]string, error) {
	seen := map[string]bool{}
	p := awsddb.NewScanPaginator(c.ddb, &awsddb.ScanInput{TableName: aws.String(c.table),
		FilterExpression:          aws.String("gateway_id = :g"),
		ProjectionExpression:      aws.String("device_index"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":g": s(gateway)}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", c.table, err)
		}
		for _, item := range page.Items {
			if d, ok := item["device_index"].(*ddbtypes.AttributeValueMemberS); ok {
				seen[d.Value] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}
