package messaging

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/service"
	"mediagw/testsupport/awstest"
)

// TestSIGTERMFinishesInFlightHandler runs a real service process (this test
// binary re-executed, wired by service.Main like every mediagw binary),
// sends it SIGTERM while its handler is busy, and checks that the handler
// finished, the message was deleted, and the process exited 0.
func TestSIGTERMFinishesInFlightHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	q := e.res.Queues["devices"]
	mustPublish(t, e.publisher(), context.Background(), &eventsv1.DeviceOnline{GatewayId: "gw1", DeviceIndex: "sigterm"})

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "MESSAGING_HELPER_PROCESS=1", "HELPER_QUEUE_URL="+q.URL, "HELPER_DLQ_URL="+q.DLQURL,
		"AWS_ENDPOINT_URL="+awstestEndpoint(t), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"HTTP_ADDR=127.0.0.1:0", "SHUTDOWN_GRACE=20s")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = e.logs
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
	waitLine := func(want string, within time.Duration) {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("helper ended before printing %q; log:\n%s", want, e.logs.String())
				}
				if l == want {
					return
				}
			case <-deadline:
				t.Fatalf("helper did not print %q within %s", want, within)
			}
		}
	}
	waitLine("handler started", 20*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLine("handler finished", 20*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("service exited with %v after SIGTERM; log:\n%s", err, e.logs.String())
	}
	if left := e.drain(t, q.URL, 6*time.Second); len(left) != 0 {
		t.Fatalf("message came back after the service stopped: %d", len(left))
	}
}

// helperService is the service run by the test above: TestMain runs it
// instead of the tests when MESSAGING_HELPER_PROCESS=1.
func helperService() int {
	os.Args = []string{"helper"}
	cfg := service.NewConfig("helper", "test service", "127.0.0.1:0")
	return service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		h := func(ctx context.Context, m *Message) error {
			fmt.Println("handler started")
			time.Sleep(3 * time.Second)
			fmt.Println("handler finished")
			return nil
		}
		c := NewConsumer(sqs.NewFromConfig(rt.AWS), ConsumerConfig{
			Queue: "devices", QueueURL: os.Getenv("HELPER_QUEUE_URL"), DeadLetterQueueURL: os.Getenv("HELPER_DLQ_URL"),
			WaitTime: time.Second, VisibilityTimeout: 4 * time.Second, ShutdownGrace: 15 * time.Second, Logger: rt.Logger,
		}, h)
		rt.SetReady(true)
		return c.Run(ctx)
	})
}

func awstestEndpoint(t *testing.T) string { return strings.TrimSuffix(awstest.Endpoint(t), "/") }
