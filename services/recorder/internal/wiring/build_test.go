package wiring

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/pkg/service"
	"mediagw/services/recorder/internal/domain"
	"mediagw/services/recorder/internal/testsim"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/testkit"
)

func parse(t *testing.T, args ...string) (Settings, error) {
	t.Helper()
	cfg := service.NewConfig(Name, "test", "127.0.0.1:0")
	settings := Declare(cfg)
	if err := cfg.Parse(args, io.Discard); err != nil {
		return Settings{}, err
	}
	return settings(), nil
}

func TestDeclareReadsAndChecksTheSettings(t *testing.T) {
	s, err := parse(t, "--recorder-gateway-id", "gw-1", "--recorder-device-index", "6e0b-ab",
		"--recorder-channels", "1=rtsp://gw:554/Streaming/Channels/6e0b-ab/101, 2=rtsp://gw/x",
		"--recorder-bucket", "b", "--recorder-spool-max-bytes", "500MB", "--recorder-container", "fmp4",
		"--recorder-codec", "h264", "--recorder-size", "1280x-2", "--recorder-rtsp-user", "admin",
		"--recorder-rtsp-password-param", "/mediagw/gw-1/rtsp", "--login-budget-table", "lb", "--recorder-password-recheck", "3s")
	if err != nil {
		t.Fatal(err)
	}
	if s.Gateway != "gw-1" || s.Device != "6e0b-ab" || len(s.Channels) != 2 || s.Channels[1] != (domain.Channel{ID: "2", URL: "rtsp://gw/x"}) ||
		s.SpoolMaxBytes != 500e6 || s.Container != domain.FragmentedMP4 || s.SegmentLength != 30*time.Second || s.KeyPrefix != "recordings" ||
		s.PasswordParam != "/mediagw/gw-1/rtsp" || s.RTSPUser != "admin" || s.LoginBudgetTable != "lb" || s.PasswordRecheck != 3*time.Second {
		t.Fatalf("settings %+v", s)
	}

	_, err = parse(t, "--recorder-gateway-id", "site:1", "--recorder-device-index", "../d",
		"--recorder-channels", "1=rtsp://admin:hunter2@gw/x", "--recorder-segment-length", "-4s",
		"--recorder-size", "640x480", "--recorder-rtsp-password-param", "/p", "--recorder-spool-max-bytes", "lots",
		"--recorder-password-recheck", "0s")
	for _, v := range []string{"RECORDER_GATEWAY_ID", "RECORDER_DEVICE_INDEX", "RECORDER_CHANNELS", "RECORDER_SEGMENT_LENGTH",
		"RECORDER_SIZE", "RECORDER_RTSP_PASSWORD_PARAM", "RECORDER_SPOOL_MAX_BYTES", "RECORDER_BUCKET", "RECORDER_PASSWORD_RECHECK", "LOGIN_BUDGET_TABLE"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("bad settings: error %v does not name %s", err, v)
		}
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error quotes the password: %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "4GiB": 4 << 30, "500MB": 500e6, "1.5 KiB": 1536, "2G": 2e9, "10B": 10} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "0", "4 GiBs", "lots", "1XB"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}

// Build itself, as main calls it, against the emulator and the simulator:
// the password from SSM, a segment in S3, a clean stop; a second recorder
// on the same spool and one whose password parameter is missing are
// refused at start with their exit codes.
func TestBuildRecordsAndRefusesAtStart(t *testing.T) {
	t.Parallel()
	sim := testsim.Start(t)
	h := newHarness(t, sim, "cam-build")
	param := "/mediagw/test/" + awstest.Name("rtsp")
	if _, err := awsssm.NewFromConfig(h.aws).PutParameter(context.Background(), &awsssm.PutParameterInput{
		Name: aws.String(param), Value: aws.String(testsim.Password), Type: ssmtypes.ParameterTypeSecureString,
	}); err != nil {
		t.Fatal(err)
	}
	h.s.PasswordParam = param
	newRuntime := func() *service.Runtime {
		rt := service.NewRuntime(Name, h.log, h.aws)
		rt.Grace = 10 * time.Second
		return rt
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rt := newRuntime()
	if err := Build(ctx, rt, h.s); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()

	err := Build(context.Background(), newRuntime(), h.s)
	if !errors.Is(err, domain.ErrSpoolLocked) || ExitCode(err) != ExitChannelTaken {
		t.Errorf("second Build on the same spool = %v (exit %d), want ErrSpoolLocked (%d)", err, ExitCode(err), ExitChannelTaken)
	}
	missing := h.s
	missing.PasswordParam, missing.SpoolDir = param+"-missing", t.TempDir()
	err = Build(context.Background(), newRuntime(), missing)
	if !errors.Is(err, domain.ErrCredentials) || ExitCode(err) != ExitCredentials {
		t.Errorf("Build with a missing password = %v (exit %d), want ErrCredentials (%d)", err, ExitCode(err), ExitCredentials)
	}

	testkit.Eventually(t, 40*time.Second, 100*time.Millisecond, "a segment in S3", func() bool { return len(h.segments("1")) >= 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the stop")
	}
	if !strings.Contains(h.logs.String(), `"msg":"recording"`) {
		t.Error("no recording log line")
	}
}
