package ssm_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/services/device-watcher/internal/adapters/ssm"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// A password is read once and cached with its parameter's version; fresh
// reads it again; Version sees a new version without reading the value; a
// missing parameter is an error that names it and nothing else.
func TestPasswordsAreCachedWithTheirVersionUntilReadFresh(t *testing.T) {
	ctx := context.Background()
	client := awsssm.NewFromConfig(awstest.Config(t))
	root := "/" + awstest.Name("dwssm") + "/"
	put := func(v string) {
		t.Helper()
		_, err := client.PutParameter(ctx, &awsssm.PutParameterInput{Name: aws.String(root + "gateways/gw-1/Password"),
			Type: ssmtypes.ParameterTypeSecureString, Value: aws.String(v), Overwrite: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
	}
	p := ssm.NewPasswords(client, root)
	if got := p.ParameterName("gw-1"); got != strings.TrimSuffix(root, "/")+"/gateways/gw-1/Password" {
		t.Fatalf("parameter name %q", got)
	}
	put("First-Passw0rd")
	if pw, v, err := p.Password(ctx, "gw-1", false); err != nil || pw != "First-Passw0rd" || v != 1 {
		t.Fatalf("%q %d %v", pw, v, err)
	}
	put("Second-Passw0rd")
	if pw, v, _ := p.Password(ctx, "gw-1", false); pw != "First-Passw0rd" || v != 1 {
		t.Fatalf("cached read gave %q @%d", pw, v)
	}
	if v, err := p.Version(ctx, "gw-1"); err != nil || v != 2 {
		t.Fatalf("version: %d %v", v, err)
	}
	if pw, v, err := p.Password(ctx, "gw-1", true); err != nil || pw != "Second-Passw0rd" || v != 2 {
		t.Fatalf("fresh read: %q %d %v", pw, v, err)
	}
	for _, err := range []error{
		func() error { _, _, err := p.Password(ctx, "gw-2", false); return err }(),
		func() error { _, err := p.Version(ctx, "gw-2"); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "gw-2/Password") || strings.Contains(err.Error(), "Passw0rd") {
			t.Fatalf("missing parameter: %v", err)
		}
	}
}

// BootstrapExists says whether <root>/gateways/<id>/BootstrapPassword
// exists, without reading its value: false while it is missing, true once
// it is there, false again once it is deleted.
func TestBootstrapExists(t *testing.T) {
	ctx := context.Background()
	client := awsssm.NewFromConfig(awstest.Config(t))
	root := "/" + awstest.Name("dwssm")
	p := ssm.NewPasswords(client, root)
	name := root + "/gateways/gw-1/BootstrapPassword"
	if got := p.BootstrapParameterName("gw-1"); got != name {
		t.Fatalf("bootstrap parameter name %q", got)
	}
	if ok, err := p.BootstrapExists(ctx, "gw-1"); ok || err != nil {
		t.Fatalf("missing: %v %v", ok, err)
	}
	if _, err := client.PutParameter(ctx, &awsssm.PutParameterInput{Name: aws.String(name),
		Type: ssmtypes.ParameterTypeSecureString, Value: aws.String("Factory-Passw0rd")}); err != nil {
		t.Fatal(err)
	}
	if ok, err := p.BootstrapExists(ctx, "gw-1"); !ok || err != nil {
		t.Fatalf("present: %v %v", ok, err)
	}
	if _, err := client.DeleteParameter(ctx, &awsssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	if ok, err := p.BootstrapExists(ctx, "gw-1"); ok || err != nil {
		t.Fatalf("deleted: %v %v", ok, err)
	}
}
