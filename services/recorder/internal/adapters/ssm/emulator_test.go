package ssm

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/services/recorder/internal/domain"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// Against the emulator: the SecureString is read decrypted; a parameter
// that does not exist is domain.ErrNotFound, named in the error.
func TestPasswordAgainstTheEmulator(t *testing.T) {
	client := awsssm.NewFromConfig(awstest.Config(t))
	name := "/mediagw/test/" + awstest.Name("rtsp")
	if _, err := client.PutParameter(context.Background(), &awsssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String("s3cret"), Type: types.ParameterTypeSecureString,
	}); err != nil {
		t.Fatal(err)
	}
	if v, err := NewPassword(client, name, time.Second).Get(context.Background()); err != nil || v != "s3cret" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	missing := name + "-missing"
	_, err := NewPassword(client, missing, time.Second).Get(context.Background())
	if !errors.Is(err, domain.ErrNotFound) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Get of a missing parameter = %v, want domain.ErrNotFound naming it", err)
	}
}
