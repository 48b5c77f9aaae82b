package dynamodb

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"mediagw/services/task-manager/internal/app"
)

// Incidents reads the health-sentinel's incidents table for mediagw-ctl.
// Each item's doc attribute is the incident's JSON record; storm/<gateway>
// items are mail counters, not incidents.
type Incidents struct {
	ddb   awsddb.ScanAPIClient
	table string
}

// NewIncidents returns the reader of table.
func NewIncidents(ddb awsddb.ScanAPIClient, table string) *Incidents {
	return &Incidents{ddb: ddb, table: table}
}

// List returns every incident record (open, resolved, and keys whose
// clearing was seen without an incident); records that do not decode are
// returned as errors beside them.
func (r *Incidents) List(ctx context.Context) ([]app.Incident, []error, error) {
	var out []app.Incident
	var bad []error
	p := awsddb.NewScanPaginator(r.ddb, &awsddb.ScanInput{TableName: aws.String(r.table)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("scan %s: %w", r.table, err)
		}
		for _, item := range page.Items {
			key, _ := item["incident_key"].(*ddbtypes.AttributeValueMemberS)
			if key == nil || strings.HasPrefix(key.Value, "storm/") {
				continue
			}
			doc, _ := item["doc"].(*ddbtypes.AttributeValueMemberS)
			var inc app.Incident
			if doc == nil {
				bad = append(bad, fmt.Errorf("incident %s: no doc", key.Value))
				continue
			}
			if err := json.Unmarshal([]byte(doc.Value), &inc); err != nil {
				bad = append(bad, fmt.Errorf("incident %s: %w", key.Value, err))
				continue
			}
			out = append(out, inc)
		}
	}
	return out, bad, nil
}
