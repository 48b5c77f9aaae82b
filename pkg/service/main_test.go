package service_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"mediagw/deploy/provision"
	"mediagw/pkg/messaging"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/testkit"
)

func TestMain(m *testing.M) {
	if os.Getenv("SERVICE_HELPER_PROCESS") == "1" {
		os.Exit(helperService())
	}
	os.Exit(awstest.Main(m))
}

const helperQueue = "mediagw-task-manager-device-events"

// helperService is a service wired like every mediagw binary (Main,
// Consume): its handler reports that it started, then works until the
// test writes a line to its standard input.
func helperService() int {
	os.Args = []string{"helper"}
	cfg := service.NewConfig("helper", "test service", "127.0.0.1:0")
	q := cfg.Queue(helperQueue)
	stdin := bufio.NewScanner(os.Stdin)
	return service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		messaging.Consume(rt, q, func(ctx context.Context, m *messaging.Message) error {
			fmt.Println("handler started")
			stdin.Scan()
			fmt.Println("handler finished")
			return nil
		}, func(c *messaging.ConsumerConfig) { c.WaitTime = time.Second; c.VisibilityTimeout = 4 * time.Second })
		return nil
	})
}

// TestSIGTERMFinishesInFlightHandler runs a real service process (this
// test binary re-executed), sends it SIGTERM while its handler is busy,
// and checks that the handler finished, the message was deleted, and the
// process exited 0.
func TestSIGTERMFinishesInFlightHandler(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	res, err := provision.Apply(ctx, cfg, topology.Default(), provision.Options{Prefix: awstest.Name("svc") + "-", Only: []string{"queues"}})
	if err != nil {
		t.Fatal(err)
	}
	q := res.Queues[helperQueue]
	sqsc := sqs.NewFromConfig(cfg)
	if _, err := sqsc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String("{}"),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			messaging.AttrEventType: {DataType: aws.String("String"), StringValue: aws.String("mediagw.events.v1.DeviceOnline")},
		}}); err != nil {
		t.Fatal(err)
	}

	logs := &testkit.Buffer{}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SERVICE_HELPER_PROCESS=1",
		topology.EnvName(helperQueue, "QUEUE_URL")+"="+q.URL, topology.EnvName(helperQueue, "DLQ_URL")+"="+q.DLQURL,
		"AWS_ENDPOINT_URL="+strings.TrimSuffix(awstest.Endpoint(t), "/"), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"HTTP_ADDR=127.0.0.1:0", "SHUTDOWN_GRACE=20s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 10)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	waitLine := func(want string) {
		t.Helper()
		deadline := time.After(30 * time.Second) // a failure bound, not a pace
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("helper ended before printing %q; log:\n%s", want, logs.String())
				}
				if l == want {
					return
				}
			case <-deadline:
				t.Fatalf("helper did not print %q; log:\n%s", want, logs.String())
			}
		}
	}
	waitLine("handler started")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The handler is still in flight when the service hears the signal.
	testkit.Eventually(t, 30*time.Second, 20*time.Millisecond, "the service logs that it is shutting down", func() bool {
		return strings.Contains(logs.String(), `"msg":"shutting down"`)
	})
	if _, err := io.WriteString(stdin, "finish\n"); err != nil {
		t.Fatal(err)
	}
	waitLine("handler finished")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("service exited with %v after SIGTERM; log:\n%s", err, logs.String())
	}
	// Deleted, not merely hidden: a message left undeleted would count as
	// not visible until its visibility timeout runs out.
	attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL), AttributeNames: []sqstypes.QueueAttributeName{
		sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range attrs.Attributes {
		if n, _ := strconv.Atoi(v); n != 0 {
			t.Errorf("%s = %s after the service stopped, want 0", k, v)
		}
	}
}
