package isapi_test

import (
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/services/health-sentinel/internal/adapters/isapi"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

func TestSSMPasswordsReadWithVersion(t *testing.T) {
	c := awsssm.NewFromConfig(awstest.Config(t))
	root := "/" + awstest.Name("root")
	p := isapi.NewSSMPasswords(c, root+"/", time.Hour)
	name := p.ParameterName("gw-1")
	if name != root+"/gateways/gw-1/Password" {
		t.Fatalf("parameter name %s", name)
	}
	if _, _, err := p.Password(t.Context(), "gw-1"); err == nil {
		t.Fatal("no error for a missing parameter")
	}
	put := func(v string) {
		if _, err := c.PutParameter(t.Context(), &awsssm.PutParameterInput{Name: aws.String(name), Value: aws.String(v),
			Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	put("First-Passw0rd")
	pw, v, err := p.Password(t.Context(), "gw-1")
	if err != nil || pw != "First-Passw0rd" || v != 1 {
		t.Fatalf("read %q v%d %v", pw, v, err)
	}
	// Within MaxAge the read is kept; a fresh reader sees the new version.
	put("Second-Passw0rd")
	if _, v, _ := p.Password(t.Context(), "gw-1"); v != 1 {
		t.Fatalf("cached version %d", v)
	}
	pw, v, err = isapi.NewSSMPasswords(c, root, 0).Password(t.Context(), "gw-1")
	if err != nil || pw != "Second-Passw0rd" || v != 2 {
		t.Fatalf("fresh read %q v%d %v", pw, v, err)
	}
}
