// Package awstest gives tests an AWS configuration that points at the local
// AWS emulators.
//
// By default that is moto in server mode. When AWS_ENDPOINT_URL is set (as
// `make test` does, after starting one shared emulator) tests use it.
// Otherwise the first call in a test binary starts a private moto server on
// a free loopback port from the project's virtualenv (.tools/venv, installed
// by scripts/bootstrap.sh) and stops it when the binary's tests are done
// (see Main).
//
// With MEDIAGW_TEST_AWS=localstack (`make test-localstack`) the test binary
// starts a private LocalStack (see localstack.go) and a private moto instead,
// whatever AWS_ENDPOINT_URL says: LocalStack serves SQS, SNS, S3, SSM,
// EventBridge and EC2 (LocalStackServices); DynamoDB and ECS, which its
// open-source build cannot serve on the host, go to moto through the SDK's
// per-service endpoint variables (AWS_ENDPOINT_URL_DYNAMODB,
// AWS_ENDPOINT_URL_ECS). The variables are set
// in the test binary's own environment, so that every SDK client of the
// test and of the services it wires in-process follows them; Env gives them
// to the processes a test starts.
//
// Tests share one emulator, so every resource a test creates must have a
// unique name: use Name.
package awstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/uuid"

	"mediagw/pkg/awsenv"
)

const region = "us-east-1"

// Mode is the environment variable choosing the emulators: "" or "moto"
// (moto alone), "localstack" (LocalStack, DynamoDB and ECS on moto).
const Mode = "MEDIAGW_TEST_AWS"

// LocalStackServices are the services that go to LocalStack with
// MEDIAGW_TEST_AWS=localstack; every other one goes to moto.
var LocalStackServices = []string{"sqs", "sns", "s3", "ssm", "events", "ec2"}

// motoServices are the services that go to moto with
// MEDIAGW_TEST_AWS=localstack, by their endpoint variable's suffix.
var motoServices = []string{"DYNAMODB", "ECS"}

var (
	once     sync.Once
	endpoint string
	// serviceEndpoints are the AWS_ENDPOINT_URL_<SERVICE> this binary set.
	serviceEndpoints map[string]string
	startErr         error
	proc             *exec.Cmd
	localstack       *localStack
)

// Main wraps testing.M.Run so that a private emulator started by this test
// binary is stopped afterwards. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop ends the private emulators, if this process started any.
func Stop() {
	if proc != nil && proc.Process != nil {
		_ = proc.Process.Kill()
		_ = proc.Wait()
		proc = nil
	}
	if localstack != nil {
		localstack.stop()
		localstack = nil
	}
}

// Endpoint returns the emulator's URL (AWS_ENDPOINT_URL: with
// MEDIAGW_TEST_AWS=localstack, LocalStack's), starting private emulators if
// needed. It fails the test when no emulator can be had: tests never skip
// silently.
func Endpoint(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		switch m := os.Getenv(Mode); m {
		case "", "moto":
			if e := os.Getenv("AWS_ENDPOINT_URL"); e != "" {
				endpoint = e
				startErr = waitReady(e, 20*time.Second)
				return
			}
			endpoint, startErr = startMoto()
		case "localstack":
			startErr = startLocalStackWithMoto()
		default:
			startErr = fmt.Errorf("%s=%q: want moto or localstack", Mode, m)
		}
	})
	if startErr != nil {
		t.Fatalf("local AWS emulator: %v (run `make test`, or scripts/bootstrap.sh to install it)", startErr)
	}
	return endpoint
}

// Env returns the endpoint variables for a process the test starts:
// AWS_ENDPOINT_URL and, with MEDIAGW_TEST_AWS=localstack,
// AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_ECS (moto's).
func Env(t testing.TB) []string {
	t.Helper()
	env := []string{"AWS_ENDPOINT_URL=" + Endpoint(t)}
	for _, svc := range motoServices {
		if e, ok := serviceEndpoints[svc]; ok {
			env = append(env, "AWS_ENDPOINT_URL_"+svc+"="+e)
		}
	}
	return env
}

// startLocalStackWithMoto starts a private LocalStack and a private moto
// and points this process's SDK chain at them (see the package comment).
func startLocalStackWithMoto() error {
	moto, err := startMoto()
	if err != nil {
		return err
	}
	ls, err := startLocalStack(LocalStackServices)
	if err != nil {
		Stop()
		return err
	}
	localstack, endpoint = ls, ls.endpoint
	serviceEndpoints = map[string]string{}
	if err := os.Setenv("AWS_ENDPOINT_URL", endpoint); err != nil {
		return err
	}
	for _, svc := range motoServices {
		serviceEndpoints[svc] = moto
		if err := os.Setenv("AWS_ENDPOINT_URL_"+svc, moto); err != nil {
			return err
		}
	}
	return nil
}

// Config returns an aws.Config aimed at the emulator with dummy
// credentials and the services' own retry policy. The SDK's per-service
// endpoint variables (AWS_ENDPOINT_URL_DYNAMODB, ...) win over
// AWS_ENDPOINT_URL in it, as they do for the services.
func Config(t testing.TB) aws.Config {
	t.Helper()
	ep := Endpoint(t)
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
	}
	// An endpoint set in code wins over every endpoint variable, the
	// per-service ones included: set it only when the environment does
	// not already say where the emulator is (a private moto).
	if os.Getenv("AWS_ENDPOINT_URL") != ep {
		opts = append(opts, config.WithBaseEndpoint(ep))
	}
	cfg, err := awsenv.Load(context.Background(), opts...)
	if err != nil {
		t.Fatalf("aws config: %v", err)
	}
	return cfg
}

// Name returns a resource name unique to this run, starting with prefix.
func Name(prefix string) string {
	return prefix + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:12]
}

func startMoto() (string, error) {
	ep, cmd, err := launchMoto()
	if err != nil {
		return "", err
	}
	proc = cmd
	return ep, nil
}

// launchMoto starts a moto server on a free loopback port and waits until
// it answers.
func launchMoto() (string, *exec.Cmd, error) {
	bin, err := motoBinary()
	if err != nil {
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	ep := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = nil, nil
	// Killed with the test binary if it dies before Stop (a panic, a
	// fatal error, a timeout), so no emulator outlives its tests.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := waitReady(ep, 30*time.Second); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", nil, err
	}
	return ep, cmd, nil
}

// PrivateMoto starts a moto server for t alone (a test that needs
// resources under fixed names) and returns its URL; it is stopped when t
// ends.
func PrivateMoto(t testing.TB) string {
	t.Helper()
	ep, cmd, err := launchMoto()
	if err != nil {
		t.Fatalf("moto: %v (run scripts/bootstrap.sh to install it)", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return ep
}

// PrivateLocalStack starts a LocalStack for t alone, serving only services
// (LocalStack's names: sqs, sns, s3, ssm, events, ...), and returns its
// URL; it is stopped, with its process group, when t ends. env adds to
// LocalStack's own settings (e.g. LOCALSTACK_HOST).
func PrivateLocalStack(t testing.TB, services []string, env ...string) string {
	t.Helper()
	ls, err := startLocalStack(services, env...)
	if err != nil {
		t.Fatalf("LocalStack: %v (run scripts/bootstrap.sh to install it)", err)
	}
	t.Cleanup(ls.stop)
	return ls.endpoint
}

// motoBinary finds moto_server in the repository's virtualenv.
func motoBinary() (string, error) { return tool(filepath.Join(".tools", "venv", "bin", "moto_server")) }

// tool finds rel (a path under the repository root, the directory holding
// go.work) from the test's directory upwards.
func tool(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return "", fmt.Errorf("%s not installed", p)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found: no go.work above the test's directory", rel)
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(ep string, within time.Duration) error {
	deadline := time.Now().Add(within)
	c := http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get(ep + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("emulator at %s not ready after %s: %w", ep, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
