package ssm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/services/configurator/internal/adapters/ssm"
	"mediagw/services/configurator/internal/domain"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

func put(t *testing.T, c *awsssm.Client, name, value string, typ ssmtypes.ParameterType) {
	t.Helper()
	if _, err := c.PutParameter(context.Background(), &awsssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

func TestParametersDecryptsAndMarksSecureStrings(t *testing.T) {
	c := awsssm.NewFromConfig(awstest.Config(t))
	root := "/" + awstest.Name("cfgtest") + "/mediagw"
	store := ssm.New(c, root)
	path := store.Path("gw-1")
	put(t, c, path+"GatewayName", "gw-one", ssmtypes.ParameterTypeString)
	put(t, c, path+"Password", "Mgw-Secret-2026", ssmtypes.ParameterTypeSecureString)
	put(t, c, path+"BootstrapPassword", "Factory-Pass1", ssmtypes.ParameterTypeSecureString)
	put(t, c, path+"Timezone", "8", ssmtypes.ParameterTypeString)
	put(t, c, path+"nested/Ignored", "x", ssmtypes.ParameterTypeString)
	put(t, c, store.Path("gw-10")+"GatewayName", "another", ssmtypes.ParameterTypeString)
	// More than one page (GetParametersByPath returns at most 10).
	for i := range 12 {
		put(t, c, fmt.Sprintf("%sExtra%02d", path, i), "v", ssmtypes.ParameterTypeString)
	}

	p, err := store.Parameters(context.Background(), "gw-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := p[domain.ParamPassword]; got.Value.Reveal() != "Mgw-Secret-2026" || !got.Secure || got.Name != path+"Password" || got.Version != 1 {
		t.Fatalf("Password = %+v (decrypted and secure expected, with its name and version)", got)
	}
	put(t, c, path+"Password", "Mgw-Secret-2027", ssmtypes.ParameterTypeSecureString)
	if p, err = store.Parameters(context.Background(), "gw-1", ""); err != nil || p[domain.ParamPassword].Version != 2 {
		t.Fatalf("after a new version: %+v, %v", p[domain.ParamPassword], err)
	}
	if got := p[domain.ParamGatewayName]; got.Value.Reveal() != "gw-one" || got.Secure {
		t.Fatalf("GatewayName = %+v", got)
	}
	if _, ok := p["nested/Ignored"]; ok {
		t.Fatal("read a nested parameter")
	}
	if len(p) != 4+12 {
		t.Fatalf("%d parameters, want 16", len(p))
	}

	// An event's bootstrap parameter wins, if it lies under the root.
	put(t, c, root+"/bootstrap/batch-7", "Batch7-Factory", ssmtypes.ParameterTypeSecureString)
	p, err = store.Parameters(context.Background(), "gw-1", root+"/bootstrap/batch-7")
	if bp := p[domain.ParamBootstrapPassword]; err != nil || bp.Value.Reveal() != "Batch7-Factory" || !bp.Secure || bp.Name != root+"/bootstrap/batch-7" || bp.Version != 1 {
		t.Fatalf("bootstrap override: %+v, %v", bp, err)
	}
}

func TestParametersErrorsArePermanentAndNamed(t *testing.T) {
	c := awsssm.NewFromConfig(awstest.Config(t))
	root := "/" + awstest.Name("cfgtest") + "/mediagw"
	store := ssm.New(c, root)
	put(t, c, store.Path("gw-1")+"GatewayName", "gw-one", ssmtypes.ParameterTypeString)
	otherSecret := "/" + awstest.Name("elsewhere") + "/db-password"
	put(t, c, otherSecret, "Db-Secret-1", ssmtypes.ParameterTypeSecureString)

	for _, tc := range []struct {
		id, bootstrap, want string
	}{
		{"gw-unknown", "", "no parameters under"},
		{"gw-1", root + "/gateways/gw-1/Missing", "ParameterNotFound"},
		{"gw-1", otherSecret, "is not under"},
		{"gw-1", root + "/../elsewhere", "is not under"},
		{"../gw-1", "", "gateway id"},
	} {
		_, err := store.Parameters(context.Background(), tc.id, tc.bootstrap)
		if err == nil || !strings.Contains(err.Error(), tc.want) || domain.KindOf(err) != domain.KindPermanent {
			t.Errorf("Parameters(%q, %q) = %v (kind %v), want a permanent error with %q", tc.id, tc.bootstrap, err, domain.KindOf(err), tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "Db-Secret-1") {
			t.Errorf("error shows a secret: %v", err)
		}
	}
	_, err := store.Parameters(context.Background(), "gw-unknown", "")
	if !errors.Is(err, domain.ErrBadParameter) {
		t.Fatalf("unknown gateway: %v is not ErrBadParameter", err)
	}
}

func TestUnreachableStoreIsTransient(t *testing.T) {
	cfg := awstest.Config(t)
	client := awsssm.NewFromConfig(cfg, func(o *awsssm.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:1")
		o.RetryMaxAttempts = 1
	})
	_, err := ssm.New(client, "/mediagw").Parameters(context.Background(), "gw-1", "")
	if err == nil || domain.KindOf(err) != domain.KindTransient {
		t.Fatalf("unreachable SSM: %v (kind %v), want transient", err, domain.KindOf(err))
	}
}

func TestPendingRebootRecord(t *testing.T) {
	c := awsssm.NewFromConfig(awstest.Config(t))
	store := ssm.New(c, "/"+awstest.Name("cfgtest")+"/mediagw")
	ctx := context.Background()
	put(t, c, store.Path("gw-1")+"GatewayName", "gw-one", ssmtypes.ParameterTypeString)
	if err := store.ClearPendingReboot(ctx, "gw-1"); err != nil {
		t.Fatalf("clearing an absent record: %v", err)
	}
	if err := store.SetPendingReboot(ctx, "gw-1", "2026-01-01T00:00:00Z: 2 changes"); err != nil {
		t.Fatal(err)
	}
	p, err := store.Parameters(ctx, "gw-1", "")
	if err != nil || p[domain.ParamPendingReboot].Value.Reveal() != "2026-01-01T00:00:00Z: 2 changes" {
		t.Fatalf("after Set: %v, %v", p, err)
	}
	if err := store.SetPendingReboot(ctx, "gw-1", "again"); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if err := store.ClearPendingReboot(ctx, "gw-1"); err != nil {
		t.Fatal(err)
	}
	if p, err = store.Parameters(ctx, "gw-1", ""); err != nil {
		t.Fatal(err)
	} else if _, ok := p[domain.ParamPendingReboot]; ok {
		t.Fatal("record still there after Clear")
	}
}

func TestPendingConfigurationRecords(t *testing.T) {
	c := awsssm.NewFromConfig(awstest.Config(t))
	root := "/" + awstest.Name("cfgtest") + "/mediagw"
	store := ssm.New(c, root)
	ctx := context.Background()
	if got, err := store.PendingConfigurations(ctx); err != nil || len(got) != 0 {
		t.Fatalf("none yet: %v %v", got, err)
	}
	since := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var want []domain.PendingConfiguration
	// More than one page of names and more than one GetParameters batch.
	for i := range 12 {
		id := fmt.Sprintf("gw-%02d", i)
		put(t, c, store.Path(id)+"GatewayName", id, ssmtypes.ParameterTypeString)
		pc := domain.PendingConfiguration{GatewayID: id, Address: "10.0.0.1:80", ElasticIP: "198.51.100.1",
			BootstrapParameter: root + "/gateways/" + id + "/BootstrapPassword", Since: since}
		if i == 3 {
			pc.NotBefore = since.Add(30 * time.Minute)
		}
		if err := store.SetPendingConfiguration(ctx, pc); err != nil {
			t.Fatal(err)
		}
		want = append(want, pc)
	}
	// Not records: another name, a deeper path, elsewhere.
	put(t, c, store.Path("gw-00")+"PendingConfigurationOld", "x", ssmtypes.ParameterTypeString)
	put(t, c, store.Path("gw-00")+"nested/PendingConfiguration", "x", ssmtypes.ParameterTypeString)
	put(t, c, "/"+awstest.Name("elsewhere")+"/gateways/gw-00/PendingConfiguration", "x", ssmtypes.ParameterTypeString)

	got, err := store.PendingConfigurations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b domain.PendingConfiguration) int { return strings.Compare(a.GatewayID, b.GatewayID) })
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].Since.Equal(want[i].Since) || !got[i].NotBefore.Equal(want[i].NotBefore) {
			t.Fatalf("record %d: %+v, want %+v", i, got[i], want[i])
		}
		got[i].Since, got[i].NotBefore, want[i].Since, want[i].NotBefore = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if got[i] != want[i] {
			t.Fatalf("record %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// A run reads it with the gateway's parameters (a String, no secret).
	p, err := store.Parameters(ctx, "gw-03", "")
	if pc, ok := p[domain.ParamPendingConfiguration]; err != nil || !ok || pc.Secure {
		t.Fatalf("in the parameters: %+v %v", pc, err)
	}

	// An unreadable record is named and left out; the others come.
	put(t, c, store.Path("gw-05")+"PendingConfiguration", "{not json", ssmtypes.ParameterTypeString)
	got, err = store.PendingConfigurations(ctx)
	if err == nil || !strings.Contains(err.Error(), "gw-05/PendingConfiguration") || len(got) != 11 {
		t.Fatalf("with a bad record: %d, %v", len(got), err)
	}
	for i := range 12 {
		if err := store.ClearPendingConfiguration(ctx, fmt.Sprintf("gw-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.ClearPendingConfiguration(ctx, "gw-00"); err != nil {
		t.Fatalf("clearing an absent record: %v", err)
	}
	if got, err := store.PendingConfigurations(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after clearing: %v %v", got, err)
	}
}
