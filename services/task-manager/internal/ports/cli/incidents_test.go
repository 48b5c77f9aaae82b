package cli_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"mediagw/deploy/provision"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	"mediagw/services/task-manager/internal/ports/cli"
	ctlwiring "mediagw/services/task-manager/internal/wiring/ctl"
	"mediagw/testsupport/awstest"
)

// TestIncidentsAndAlerts: `incidents` lists the open incident with its
// steps and the one resolved since --since, not older ones; `alerts`
// prints the mails the alert-email topic carried, and prints them again
// on a second run (reading deletes nothing).
func TestIncidentsAndAlerts(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	res, err := provision.Apply(ctx, cfg, topology.Default(), provision.Options{Prefix: awstest.Name("tmalert") + "-",
		Only: []string{"topics", "queues", "tables"}})
	if err != nil {
		t.Fatal(err)
	}
	vars := res.Env()
	f := &fixture{t: t, res: res, out: &bytes.Buffer{}}
	for _, v := range []string{"INCIDENTS_TABLE", "ALERT_MAIL_QUEUE_URL"} {
		f.settings = append(f.settings, "--"+service.FlagName(v), vars[v])
	}
	f.env = cli.Env{Stdout: f.out, Stderr: f.out, Now: func() time.Time { return now },
		Open: func(_ context.Context, s cli.Settings) (cli.Sources, error) { return ctlwiring.Sources(cfg, s), nil }}

	// Items as the health-sentinel writes them (its doc is the incident's JSON).
	db := dynamodb.NewFromConfig(cfg)
	for key, doc := range map[string]string{
		"gateway/gw-1": `{"key":"gateway/gw-1","kind":"gateway","gateway":"gw-1","state":"open","id":"gateway/gw-1@2026-03-01T23:55:00Z",
			"title":"API does not answer","opened":"2026-03-01T23:55:00Z","cameras":["cam-1","cam-2"],
			"steps":[{"at":"2026-03-01T23:56:00Z","what":"isapi-reboot (attempt 1)","outcome":"failed"}],"mails":[{"kind":"opened","state":"sent"}]}`,
		"camera/cam-9": `{"key":"camera/cam-9","kind":"camera","device":"cam-9","state":"resolved","id":"camera/cam-9@2026-03-01T20:00:00Z",
			"title":"recording keeps failing","opened":"2026-03-01T20:00:00Z","resolved":"2026-03-01T20:10:00Z","missed":"10m0s"}`,
		"config/gw-old": `{"key":"config/gw-old","kind":"config","gateway":"gw-old","state":"resolved","id":"config/gw-old@2026-02-01T00:00:00Z",
			"title":"settings cannot be applied","opened":"2026-02-01T00:00:00Z","resolved":"2026-02-01T00:01:00Z"}`,
	} {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(res.Tables["mediagw-incidents"]), Item: map[string]ddbtypes.AttributeValue{
			"incident_key": &ddbtypes.AttributeValueMemberS{Value: key}, "doc": &ddbtypes.AttributeValueMemberS{Value: doc}}}); err != nil {
			t.Fatal(err)
		}
	}
	out, code := f.run("incidents", "--since", "12h")
	if code != 0 {
		t.Fatalf("incidents: exit %d\n%s", code, out)
	}
	for _, want := range []string{"gateway/gw-1", "open", "API does not answer", "opened:sent", "isapi-reboot (attempt 1): failed", "camera/cam-9", "10m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("incidents lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "gw-old") {
		t.Errorf("incidents shows one resolved before --since:\n%s", out)
	}
	if strings.Index(out, "gateway/gw-1") > strings.Index(out, "camera/cam-9") {
		t.Errorf("open incident not listed first:\n%s", out)
	}

	for _, subject := range []string{"[mediagw] gateway gw-1: API does not answer", "[mediagw] RESOLVED camera cam-9 after 10m0s"} {
		if _, err := sns.NewFromConfig(cfg).Publish(ctx, &sns.PublishInput{TopicArn: aws.String(res.Topics["mediagw-alert-email"]),
			Subject: aws.String(subject), Message: aws.String("body of " + subject)}); err != nil {
			t.Fatal(err)
		}
	}
	for run := 1; run <= 2; run++ {
		out, code = f.run("alerts", "--since", "87600h", "--body")
		if code != 0 || !strings.Contains(out, "gateway gw-1: API does not answer") || !strings.Contains(out, "body of [mediagw] RESOLVED camera cam-9") {
			t.Fatalf("alerts, run %d: exit %d\n%s", run, code, out)
		}
	}
}
