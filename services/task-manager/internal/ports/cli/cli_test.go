package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/deploy/provision"
	"mediagw/pkg/loginbudget"
	budgetstore "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	ddbadapter "mediagw/services/task-manager/internal/adapters/dynamodb"
	"mediagw/services/task-manager/internal/domain"
	"mediagw/services/task-manager/internal/ports/cli"
	ctlwiring "mediagw/services/task-manager/internal/wiring/ctl"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// now is a fixed clock a little after midnight, so that a channel's latest
// segment is in another day than its older ones.
var now = time.Date(2026, 3, 2, 0, 0, 40, 0, time.UTC)

// startLayout is how the recorder names a segment's start in its key.
const startLayout = "20060102T150405.000Z"

type fixture struct {
	t   *testing.T
	env cli.Env
	res provision.Resources
	out *bytes.Buffer
	// settings are given as flags before the command, as an operator may.
	settings []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := awstest.Config(t)
	ctx := context.Background()
	res, err := provision.Apply(ctx, cfg, topology.Default(), provision.Options{Prefix: awstest.Name("tmctl") + "-", LocalParameters: true,
		Only: []string{"tables", "buckets", "parameters"}})
	if err != nil {
		t.Fatal(err)
	}
	vars := res.Env()
	f := &fixture{t: t, res: res, out: &bytes.Buffer{}}
	for _, v := range []string{"DEVICE_MEDIA_URL_TABLE", "IP_CAMERA_TABLE", "RECORDINGS_BUCKET", "PARAMETER_ROOT", "LOGIN_BUDGET_TABLE"} {
		if vars[v] == "" {
			t.Fatalf("provisioned resources name no %s", v)
		}
		f.settings = append(f.settings, "--"+service.FlagName(v), vars[v])
	}
	f.settings = append(f.settings, "--recordings-key-prefix=recordings")
	f.env = cli.Env{Stdout: f.out, Stderr: f.out, Now: func() time.Time { return now },
		Open: func(_ context.Context, s cli.Settings) (cli.Sources, error) { return ctlwiring.Sources(cfg, s), nil }}

	db := dynamodb.NewFromConfig(cfg)
	put := func(dev string, ch int, status string) {
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(res.Tables["deviceMediaURL"]), Item: map[string]ddbtypes.AttributeValue{
			"device_index": &ddbtypes.AttributeValueMemberS{Value: dev},
			"channel":      &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(ch)},
			"gateway_id":   &ddbtypes.AttributeValueMemberS{Value: "gw-local"},
			"media_url":    &ddbtypes.AttributeValueMemberS{Value: fmt.Sprintf("rtsp://10.0.0.5:554/Streaming/Channels/%d01", ch)},
			"status":       &ddbtypes.AttributeValueMemberS{Value: status},
			"last_change":  &ddbtypes.AttributeValueMemberS{Value: now.Add(-5 * time.Minute).Format(time.RFC3339Nano)},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	put("cam-1", 1, "online")
	put("cam-2", 1, "offline")
	ipc := ddbadapter.NewIPCamera(db, res.Tables["ip-camera"])
	if _, err := ipc.Put(ctx, domain.Device{Index: "cam-1", Gateway: "gw-local", Want: domain.WantRecord, Status: domain.StatusRunning,
		Channels: []domain.Channel{{Number: 1, MediaURL: "rtsp://10.0.0.5:554/Streaming/Channels/101"}},
		Task:     &domain.Task{ID: "arn:aws:ecs:us-east-1:1:task/mediagw/0123abcd", Launcher: "ecs", Channels: []int32{1}, StartedAt: now.Add(-time.Hour)}}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := ipc.Put(ctx, domain.Device{Index: "cam-2", Gateway: "gw-local", Want: domain.WantStop, Status: domain.StatusIdle}, now); err != nil {
		t.Fatal(err)
	}

	// cam-1/1: 30 s segments from 23:58:00 to 00:00:30 with one 30 s hole
	// (the 23:59:00 segment is missing); cam-2/1 has none.
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	for start := now.Add(-160 * time.Second); start.Before(now.Add(-10 * time.Second)); start = start.Add(30 * time.Second) {
		if start.Equal(time.Date(2026, 3, 1, 23, 59, 0, 0, time.UTC)) {
			continue
		}
		key := fmt.Sprintf("recordings/gw-local/cam-1/1/%s/%s_30000.ts", start.Format("2006/01/02/15"), start.Format(startLayout))
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(res.Buckets["mediagw-recordings"]), Key: aws.String(key),
			Body: strings.NewReader(strings.Repeat("x", 2048))}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) run(args ...string) (string, int) {
	f.t.Helper()
	f.out.Reset()
	code := cli.Run(context.Background(), append(append([]string(nil), f.settings...), args...), f.env)
	return f.out.String(), code
}

func lineWith(t *testing.T, out, needle string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, needle) {
			return strings.Fields(l)
		}
	}
	t.Fatalf("no line with %q in:\n%s", needle, out)
	return nil
}

func TestCommands(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	out, code := f.run("gateways")
	if code != 0 {
		t.Fatalf("gateways: %d\n%s", code, out)
	}
	// GATEWAY NAME IP LOGIN FAILED-LOGINS DEVICES ONLINE RECORDING LAST-CHANGE
	if got := lineWith(t, out, "gw-local"); strings.Join(got[:8], " ") != "gw-local mediagw-local 127.0.0.1 untried 0 2 1 1" {
		t.Errorf("gateway line %v", got)
	}
	for _, p := range topology.Default().Parameters {
		if p.Type == "SecureString" && strings.Contains(out, p.LocalValue) {
			t.Errorf("gateways printed a secret:\n%s", out)
		}
	}

	out, code = f.run("devices", "--gateway", "gw-local")
	if code != 0 || !strings.Contains(out, "rtsp://10.0.0.5:554/Streaming/Channels/101") {
		t.Fatalf("devices: %d\n%s", code, out)
	}
	if got := lineWith(t, out, "cam-2"); got[3] != "offline" {
		t.Errorf("cam-2 line %v", got)
	}

	out, code = f.run("tasks")
	if code != 0 {
		t.Fatalf("tasks: %d\n%s", code, out)
	}
	if got := lineWith(t, out, "cam-1"); got[2] != "record" || got[3] != "running" || got[4] != "0123abcd" || got[5] != "ecs" {
		t.Errorf("cam-1 task line %v", got)
	}
	if got := lineWith(t, out, "cam-1:1"); got[0] != "0123abcd" || got[3] != "1" || got[4] != "1" {
		t.Errorf("task line %v", got)
	}

	out, code = f.run("latest")
	if code != 0 {
		t.Fatalf("latest: %d\n%s", code, out)
	}
	if l := strings.Join(lineWith(t, out, "cam-1"), " "); !strings.Contains(l, "2026-03-02 00:00:00.000Z 30s 10s ago") ||
		!strings.Contains(l, "recordings/gw-local/cam-1/1/2026/03/02/00/20260302T000000.000Z_30000.ts") {
		t.Errorf("latest of cam-1: %s", l)
	}
	if l := strings.Join(lineWith(t, out, "cam-2"), " "); !strings.Contains(l, "none") {
		t.Errorf("latest of cam-2: %s", l)
	}

	out, code = f.run("recordings", "--gateway", "gw-local", "--device", "cam-1", "--channel", "1", "--from", "2026-03-01T23:58:10Z", "--to", "2026-03-02T00:00:30Z")
	if code != 0 {
		t.Fatalf("recordings: %d\n%s", code, out)
	}
	// 23:58:00 (overlaps the start), 23:58:30, [23:59:00 missing], 23:59:30, 00:00:00.
	if n := strings.Count(out, ".ts"); n != 4 {
		t.Errorf("%d segments listed, want 4:\n%s", n, out)
	}
	if !strings.Contains(out, "4 segments") || !strings.Contains(out, "1 gaps over 1 s (30s missing)") {
		t.Errorf("summary:\n%s", out)
	}
	if got := lineWith(t, out, "2026-03-01 23:59:30.000Z"); got[len(got)-4] != "30s" {
		t.Errorf("gap before the segment after the hole: %v", got)
	}
}

func TestUsageErrors(t *testing.T) {
	f := &fixture{t: t, out: &bytes.Buffer{}}
	f.env = cli.Env{Stdout: f.out, Stderr: f.out, Now: func() time.Time { return now },
		Open: func(context.Context, cli.Settings) (cli.Sources, error) { return cli.Sources{}, nil }}
	for _, args := range [][]string{
		{},
		{"nonsense"},
		{"recordings", "--gateway", "g"},
		{"recordings", "--gateway", "g", "--device", "d", "--channel", "1", "--from", "yesterday"},
		{"recordings", "--gateway", "g", "--device", "d", "--channel", "1", "--from", "1h", "--last", "1h"},
		{"devices", "extra"},
	} {
		if out, code := f.run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, out)
		}
	}
	if out, code := f.run("help"); code != 0 || !strings.Contains(out, "mediagw-ctl recordings") {
		t.Errorf("help: %d\n%s", code, out)
	}
}

// A gateway whose password was rejected shows as credentials-rejected,
// with a line that says what to do; a new parameter version clears it.
func TestGatewaysShowsRejectedCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := awstest.Config(t)
	ctx := context.Background()
	param := f.res.Env()["PARAMETER_ROOT"] + "/gateways/gw-local/Password"
	budget := loginbudget.New(budgetstore.New(dynamodb.NewFromConfig(cfg), f.res.Tables["mediagw-login-budget"]), "recorder",
		loginbudget.WithClock(func() time.Time { return now.Add(-time.Minute) }))
	a, err := budget.Begin(ctx, "gw-local", loginbudget.CredentialOf(param, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Finish(ctx, loginbudget.Rejected, 0); err != nil {
		t.Fatal(err)
	}
	out, code := f.run("gateways")
	if code != 0 {
		t.Fatalf("gateways: %d\n%s", code, out)
	}
	if got := lineWith(t, out, "mediagw-local"); got[3] != "credentials-rejected" || got[4] != "1" {
		t.Errorf("gateway line %v", got)
	}
	if l := strings.Join(lineWith(t, out, "gw-local: credentials-rejected"), " "); !strings.Contains(l, param+" (version 1)") || !strings.Contains(l, "put-parameter") {
		t.Errorf("no clear line:\n%s", out)
	}
	if _, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(param), Value: aws.String("Another-Pass1"),
		Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	out, _ = f.run("gateways")
	if got := lineWith(t, out, "mediagw-local"); got[3] != "untried" || strings.Contains(out, "credentials-rejected") || strings.Contains(out, "Another-Pass1") {
		t.Errorf("after a new version:\n%s", out)
	}
}
