package awstest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// helperEnv marks the test binary run as a helper process by the tests
// below (MEDIAGW_TEST_AWS=localstack changes the process's environment, so
// it runs in a process of its own).
const helperEnv = "AWSTEST_LOCALSTACK_HELPER"

// TestLocalStackHelper is the helper process: it brings up LocalStack with
// moto, prints LocalStack's pid, the endpoints and where a queue and a
// table went, then waits for its stdin to close (or is killed).
func TestLocalStackHelper(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process of TestLocalStackWithMoto")
	}
	ctx := context.Background()
	cfg := Config(t)
	q, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(Name("awstest"))})
	if err != nil {
		t.Fatalf("queue: %v", err)
	}
	table := Name("awstest")
	if _, err := dynamodb.NewFromConfig(cfg).CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table), BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: ddbtypes.KeyTypeHash}},
	}); err != nil {
		t.Fatalf("table: %v", err)
	}
	fmt.Printf("pid=%d\n", localstack.cmd.Process.Pid)
	fmt.Printf("dir=%s\n", localstack.dir)
	fmt.Printf("queue=%s\n", aws.ToString(q.QueueUrl))
	fmt.Printf("table=%s\n", table)
	for _, kv := range Env(t) {
		fmt.Println(kv)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// helper starts TestLocalStackHelper and returns what it printed.
func helper(t *testing.T) (*exec.Cmd, map[string]string, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLocalStackHelper$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1", Mode+"=localstack")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	got := map[string]string{}
	sc := bufio.NewScanner(stdout)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if sc.Text() == "ready" {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, got, func() { stdin.Close() }
		}
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			got[k] = v
		}
	}
	t.Fatalf("helper ended before it was ready: %v\n%s", cmd.Wait(), strings.Join(lines, "\n"))
	return nil, nil, nil
}

// With MEDIAGW_TEST_AWS=localstack, queues are LocalStack's and tables
// moto's, Env tells started processes the same, and LocalStack is gone
// when the tests end, normally or by the test binary's death.
func TestLocalStackWithMoto(t *testing.T) {
	for _, end := range []string{"tests end", "test binary killed"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			cmd, got, finish := helper(t)
			ls, moto := got["AWS_ENDPOINT_URL"], got["AWS_ENDPOINT_URL_DYNAMODB"]
			if ls == "" || moto == "" || ls == moto || got["AWS_ENDPOINT_URL_ECS"] != moto {
				t.Fatalf("endpoints: %v", got)
			}
			if !strings.HasPrefix(got["queue"], ls+"/") {
				t.Errorf("queue %s is not LocalStack's (%s)", got["queue"], ls)
			}
			// The table is moto's: moto's DynamoDB describes it.
			cfg := Config(t) // this process's emulator: moto
			ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(moto) })
			if _, err := ddb.DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(got["table"])}); err != nil {
				t.Errorf("table %s not in moto at %s: %v", got["table"], moto, err)
			}
			pid, err := strconv.Atoi(got["pid"])
			if err != nil {
				t.Fatalf("pid %q", got["pid"])
			}
			if end == "tests end" {
				finish()
				if err := cmd.Wait(); err != nil {
					t.Fatalf("helper: %v", err)
				}
			} else {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
			}
			deadline := time.Now().Add(30 * time.Second)
			for processAlive(pid) {
				if time.Now().After(deadline) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					t.Fatalf("LocalStack (pid %d) still running 30 s after its test binary ended (%s)", pid, end)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// Stop removes LocalStack's directory; a killed test binary
			// cannot, so here the test does.
			_, err = os.Stat(got["dir"])
			switch {
			case end == "tests end" && err == nil:
				t.Errorf("LocalStack's directory %s left behind", got["dir"])
			case end != "tests end" && strings.HasPrefix(filepath.Base(got["dir"]), "mediagw-localstack-"):
				_ = os.RemoveAll(got["dir"])
			}
		})
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(string(b[i+1:]), " Z")
}
