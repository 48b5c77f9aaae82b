package ssm

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/pkg/loginbudget"
	"mediagw/services/recorder/internal/domain"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// Against the emulator: the SecureString is read decrypted with its
// version; a put is seen as a new version; a parameter that does not exist
// is domain.ErrNotFound, named in the error.
func TestPasswordAgainstTheEmulator(t *testing.T) {
	client := awsssm.NewFromConfig(awstest.Config(t))
	name := "/mediagw/test/" + awstest.Name("rtsp")
	if _, err := client.PutParameter(context.Background(), &awsssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String("s3cret"), Type: types.ParameterTypeSecureString,
	}); err != nil {
		t.Fatal(err)
	}
	p := NewPassword(client, name)
	if v, cred, err := p.Get(context.Background()); err != nil || v != "s3cret" || cred != loginbudget.CredentialOf(name, 1) {
		t.Fatalf("Get = %q, %q, %v", v, cred, err)
	}
	if _, err := client.PutParameter(context.Background(), &awsssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String("n3w"), Type: types.ParameterTypeSecureString, Overwrite: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	if cred, err := p.Current(context.Background()); err != nil || cred != loginbudget.CredentialOf(name, 2) {
		t.Fatalf("Current = %q, %v", cred, err)
	}
	if v, cred, err := p.Get(context.Background()); err != nil || v != "n3w" || cred != loginbudget.CredentialOf(name, 2) {
		t.Fatalf("Get after the put = %q, %q, %v", v, cred, err)
	}
	missing := name + "-missing"
	_, _, err := NewPassword(client, missing).Get(context.Background())
	if !errors.Is(err, domain.ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Get of a missing parameter = %v, want domain.ErrNotFound naming it", err)
	}
}
