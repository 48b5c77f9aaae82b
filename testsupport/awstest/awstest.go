// Package awstest gives tests an AWS configuration that points at the local
// AWS emulator (moto in server mode).
//
// When AWS_ENDPOINT_URL is set (as `make test` does, after starting one
// shared emulator) tests use it. Otherwise the first call in a test binary
// starts a private moto server on a free loopback port from the project's
// virtualenv (.tools/venv, installed by scripts/bootstrap.sh) and stops it
// when the binary's tests are done (see Main).
//
// Tests share one emulator, so every resource a test creates must have a
// unique name: use Name.
package awstest

import (
	"context"
	"errors"
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

var (
	once     sync.Once
	endpoint string
	startErr error
	proc     *exec.Cmd
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

// Stop ends the private emulator, if this process started one.
func Stop() {
	if proc != nil && proc.Process != nil {
		_ = proc.Process.Kill()
		_ = proc.Wait()
		proc = nil
	}
}

// Endpoint returns the emulator's URL, starting a private one if needed.
// It fails the test when no emulator can be had: tests never skip silently.
func Endpoint(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if e := os.Getenv("AWS_ENDPOINT_URL"); e != "" {
			endpoint = e
			startErr = waitReady(e, 20*time.Second)
			return
		}
		endpoint, startErr = startMoto()
	})
	if startErr != nil {
		t.Fatalf("local AWS emulator: %v (run `make test`, or scripts/bootstrap.sh to install it)", startErr)
	}
	return endpoint
}

// Config returns an aws.Config aimed at the emulator with dummy
// credentials and the services' own retry policy.
func Config(t testing.TB) aws.Config {
	t.Helper()
	ep := Endpoint(t)
	cfg, err := awsenv.Load(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithBaseEndpoint(ep),
	)
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
	bin, err := motoBinary()
	if err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	ep := fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = nil, nil
	// Killed with the test binary if it dies before Stop (a panic, a
	// fatal error, a timeout), so no emulator outlives its tests.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	proc = cmd
	if err := waitReady(ep, 30*time.Second); err != nil {
		Stop()
		return "", err
	}
	return ep, nil
}

// motoBinary finds moto_server in the repository's virtualenv.
func motoBinary() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, ".tools", "venv", "bin", "moto_server")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return "", fmt.Errorf("%s not installed", p)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("moto_server not found: no go.work above the test's directory")
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
