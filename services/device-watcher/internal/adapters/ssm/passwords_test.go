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
