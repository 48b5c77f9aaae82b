package awsenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// A throttled call is retried by the SDK until it passes, within the
// policy's attempts, and one that never passes stops after MaxAttempts.
func TestThrottlingIsRetriedByTheSDK(t *testing.T) {
	var calls, failFirst atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n <= failFirst.Load() {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"__type":"com.amazonaws.sqs#ThrottlingException","message":"slow down"}`))
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{"QueueUrls":[]}`))
	}))
	defer srv.Close()
	cfg, err := Load(context.Background(), config.WithRegion("us-east-1"), config.WithBaseEndpoint(srv.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	// Keep the test fast: the policy's attempts, not its pauses, are under test.
	client := sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		o.Retryer = retryWithoutPause{o.Retryer.(aws.RetryerV2)}
	})

	failFirst.Store(3)
	if _, err := client.ListQueues(context.Background(), &sqs.ListQueuesInput{}); err != nil {
		t.Fatalf("call throttled 3 times then answered: %v", err)
	}
	if got := calls.Load(); got != 4 {
		t.Errorf("calls = %d, want 4", got)
	}

	calls.Store(0)
	failFirst.Store(1 << 20)
	if _, err := client.ListQueues(context.Background(), &sqs.ListQueuesInput{}); err == nil {
		t.Fatal("a call throttled forever succeeded")
	}
	if got := calls.Load(); got != MaxAttempts {
		t.Errorf("calls = %d, want MaxAttempts (%d)", got, MaxAttempts)
	}
}

type retryWithoutPause struct{ aws.RetryerV2 }

func (r retryWithoutPause) RetryDelay(int, error) (time.Duration, error) { return 0, nil }

// AWS_ENDPOINT_URL_<SERVICE> wins over AWS_ENDPOINT_URL for its service
// (how DynamoDB and ECS go to moto while the rest goes to LocalStack), and
// only for it. Two listeners note which one each client calls.
func TestPerServiceEndpointWins(t *testing.T) {
	hits := func(name string, got *atomic.Value) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got.Store(name)
			w.WriteHeader(http.StatusBadRequest)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	var got atomic.Value
	general, dynamo := hits("general", &got), hits("dynamodb", &got)
	t.Setenv("AWS_ENDPOINT_URL", general.URL)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamo.URL)
	cfg, err := Load(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = dynamodb.NewFromConfig(cfg).ListTables(context.Background(), &dynamodb.ListTablesInput{})
	if got.Load() != "dynamodb" {
		t.Errorf("DynamoDB called the %v endpoint, want AWS_ENDPOINT_URL_DYNAMODB's", got.Load())
	}
	_, _ = sqs.NewFromConfig(cfg).ListQueues(context.Background(), &sqs.ListQueuesInput{})
	if got.Load() != "general" {
		t.Errorf("SQS called the %v endpoint, want AWS_ENDPOINT_URL's", got.Load())
	}
}
