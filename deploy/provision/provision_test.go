package provision

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"mediagw/pkg/topology"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

func TestApplyIsIdempotentAgainstEmulator(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	prefix := awstest.Name("topo") + "-"
	first, err := Apply(ctx, cfg, topology.Default(), Options{Prefix: prefix, LocalParameters: true})
	if err != nil {
		t.Fatal(err)
	}
	second, err := Apply(ctx, cfg, topology.Default(), Options{Prefix: prefix, LocalParameters: true})
	if err != nil {
		t.Fatalf("second apply: %v", err)
	}
	if first.EnvLines() != second.EnvLines() {
		t.Fatalf("second apply changed resources:\n%s\nvs\n%s", first.EnvLines(), second.EnvLines())
	}

	q := second.Queues["mediagw-task-manager-device-events"]
	attrs, err := sqs.NewFromConfig(cfg).GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rp := attrs.Attributes["RedrivePolicy"]; !strings.Contains(rp, q.DLQARN) || !strings.Contains(rp, "5") {
		t.Errorf("redrive policy %q does not point at %s", rp, q.DLQARN)
	}
	subs, err := sns.NewFromConfig(cfg).ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(second.Topics["mediagw-device-events"])})
	if err != nil {
		t.Fatal(err)
	}
	if len(subs.Subscriptions) != 1 {
		t.Errorf("device events topic has %d subscriptions after two applies, want 1", len(subs.Subscriptions))
	}
	tbl, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(second.Tables["deviceMediaURL"])})
	if err != nil {
		t.Fatal(err)
	}
	if k := tbl.Table.KeySchema; len(k) != 2 || aws.ToString(k[0].AttributeName) != "device_index" || aws.ToString(k[1].AttributeName) != "channel" {
		t.Errorf("deviceMediaURL keys: %+v", k)
	}
	lc, err := s3.NewFromConfig(cfg).GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(second.Buckets["mediagw-recordings"])})
	if err != nil {
		t.Fatal(err)
	}
	if len(lc.Rules) != 1 || len(lc.Rules[0].Transitions) != 1 || lc.Rules[0].Transitions[0].StorageClass != "GLACIER" {
		t.Errorf("lifecycle: %+v", lc.Rules)
	}
	env := second.Env()
	for _, k := range []string{"DEVICE_EVENTS_TOPIC_ARN", "TASK_MANAGER_DEVICE_EVENTS_QUEUE_URL", "TASK_MANAGER_DEVICE_EVENTS_DLQ_URL",
		"DEVICE_MEDIA_URL_TABLE", "IP_CAMERA_TABLE", "RECORDINGS_BUCKET", "ECS_CLUSTER", "RECORDER_TASK_DEFINITION", "PARAMETER_ROOT"} {
		if env[k] == "" {
			t.Errorf("env %s empty", k)
		}
	}
	if !strings.HasPrefix(env["PARAMETER_ROOT"], "/") || !strings.HasSuffix(env["PARAMETER_ROOT"], "/mediagw") {
		t.Errorf("PARAMETER_ROOT = %q", env["PARAMETER_ROOT"])
	}
}

// TestWholeTopicSubscriptionKeepsTheSubject: a queue subscribed without
// events (the alert mails' queue) gets every message of the topic in the
// SNS envelope, Subject included.
func TestWholeTopicSubscriptionKeepsTheSubject(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	res, err := Apply(ctx, cfg, topology.Default(), Options{Prefix: awstest.Name("mail") + "-", Only: []string{"topics", "queues"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sns.NewFromConfig(cfg).Publish(ctx, &sns.PublishInput{TopicArn: aws.String(res.Topics["mediagw-alert-email"]),
		Subject: aws.String("[mediagw] gateway gw-1: API does not answer"), Message: aws.String("body")}); err != nil {
		t.Fatal(err)
	}
	out, err := sqs.NewFromConfig(cfg).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(res.Queues["mediagw-alert-mail"].URL), WaitTimeSeconds: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != 1 {
		t.Fatalf("%d messages on the alert-mail queue, want 1", len(out.Messages))
	}
	var env struct{ Type, Subject, Message string }
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &env); err != nil {
		t.Fatalf("not an SNS envelope: %v: %s", err, aws.ToString(out.Messages[0].Body))
	}
	if env.Type != "Notification" || env.Subject != "[mediagw] gateway gw-1: API does not answer" || env.Message != "body" {
		t.Fatalf("envelope %+v", env)
	}
}
