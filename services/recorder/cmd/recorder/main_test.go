package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/deploy/provision"
	"mediagw/pkg/topology"
	"mediagw/services/recorder/internal/domain"
	"mediagw/services/recorder/internal/testsim"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/testkit"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the recorder once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "recorder-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "recorder")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build recorder: %v", buildErr)
	}
	return binPath
}

type proc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a recorder's environment against the emulator and a simulator.
type env struct {
	t      testing.TB
	aws    aws.Config
	bucket string
	param  string
	device string
	spool  string
	vars   []string
}

func newEnv(t testing.TB, sim *testsim.Sim) *env {
	t.Helper()
	cfg := awstest.Config(t)
	e := &env{t: t, aws: cfg, bucket: awstest.Name("rec"), param: "/mediagw/test/" + awstest.Name("rtsp"), device: awstest.Name("dev"), spool: t.TempDir()}
	if _, err := e.s3().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(e.bucket)}); err != nil {
		t.Fatal(err)
	}
	res, err := provision.Apply(context.Background(), cfg, topology.Default(), provision.Options{Prefix: awstest.Name("recbin") + "-", Only: []string{"tables"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ssm.NewFromConfig(cfg).PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String(e.param), Value: aws.String(testsim.Password), Type: ssmtypes.ParameterTypeSecureString,
	}); err != nil {
		t.Fatal(err)
	}
	e.vars = []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_ENDPOINT_URL=" + awstest.Endpoint(t),
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_LEVEL=debug",
		"SHUTDOWN_GRACE=10s",
		"RECORDER_GATEWAY_ID=gw-bin",
		"RECORDER_DEVICE_INDEX=" + e.device,
		"RECORDER_CHANNELS=1=" + sim.URL(e.device),
		"RECORDER_RTSP_USER=" + testsim.User,
		"RECORDER_RTSP_PASSWORD_PARAM=" + e.param,
		"RECORDER_SEGMENT_LENGTH=4s",
		"RECORDER_RTSP_TIMEOUT=2s",
		"RECORDER_BUCKET=" + e.bucket,
		"RECORDER_SPOOL_DIR=" + e.spool,
		"LOGIN_BUDGET_TABLE=" + res.Tables["mediagw-login-budget"],
	}
	return e
}

func (e *env) s3() *s3.Client {
	return s3.NewFromConfig(e.aws, func(o *s3.Options) { o.UsePathStyle = true })
}

func (e *env) start(extra ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(binary(e.t))
	cmd.Env = append(append([]string(nil), e.vars...), extra...)
	p := &proc{cmd: cmd, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if e.t.Failed() {
			e.t.Logf("recorder stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// segments lists channel 1's segments in start order.
func (e *env) segments() []domain.Segment { return e.segmentsOf("1") }

// segmentsOf lists a channel's segments in S3, oldest first.
func (e *env) segmentsOf(ch string) []domain.Segment {
	e.t.Helper()
	out, err := e.s3().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{
		Bucket: aws.String(e.bucket), Prefix: aws.String("recordings/gw-bin/" + e.device + "/" + ch + "/"),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	var segs []domain.Segment
	for _, o := range out.Contents {
		s, err := domain.ParseKey("recordings", *o.Key)
		if err != nil {
			e.t.Fatal(err)
		}
		segs = append(segs, s)
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].Start.Before(segs[j].Start) })
	return segs
}

// growingSeconds is the media duration of the segment ffmpeg is writing
// into the spool's work directory (0 if there is none).
func (e *env) growingSeconds() float64 {
	files, _ := filepath.Glob(filepath.Join(e.spool, "gw-bin", e.device, "1", "work", "*.ts"))
	if len(files) == 0 {
		return 0
	}
	sort.Strings(files)
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration",
		"-of", "default=noprint_wrappers=1:nokey=1", files[len(files)-1]).Output()
	if err != nil {
		return 0
	}
	d, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	return d
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

func exitCode(p *proc) int {
	return p.cmd.ProcessState.ExitCode()
}

// The ECS StopTask path: SIGTERM closes the current segment, uploads it and
// exits 0 well within the grace; the password (read from SSM) shows up in
// no process listing or log.
func TestSIGTERMUploadsTheLastSegmentAndExits(t *testing.T) {
	t.Parallel()
	testSIGTERM(t, "inproc")
}

// The same with ffmpeg as the engine.
func TestSIGTERMUploadsTheLastSegmentAndExitsWithFFmpeg(t *testing.T) {
	t.Parallel()
	testSIGTERM(t, "ffmpeg")
}

func testSIGTERM(t *testing.T, engine string) {
	sim := testsim.Start(t)
	e := newEnv(t, sim)
	p := e.start("RECORDER_ENGINE=" + engine)
	testkit.Eventually(t, 40*time.Second, 100*time.Millisecond, "2 segments in S3", func() bool { return len(e.segments()) >= 2 })

	kids := testsim.FFmpegChildren(p.cmd.Process.Pid)
	want := map[string]int{"inproc": 0, "ffmpeg": 1}[engine]
	if len(kids) != want {
		t.Fatalf("recorder has %d ffmpeg children, want %d", len(kids), want)
	}
	files := []string{}
	for _, k := range kids {
		files = append(files, "/proc/"+strconv.Itoa(k)+"/cmdline", "/proc/"+strconv.Itoa(k)+"/environ")
	}
	for _, f := range append(files,
		"/proc/"+strconv.Itoa(p.cmd.Process.Pid)+"/cmdline",
		"/proc/"+strconv.Itoa(p.cmd.Process.Pid)+"/environ",
	) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(testsim.Password)) {
			t.Errorf("password visible in %s", f)
		}
	}

	sigAt := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("recorder still running 15 s after SIGTERM")
	}
	took := time.Since(sigAt)
	if code := exitCode(p); code != 0 || took > 10*time.Second {
		t.Fatalf("exit code %d after %v", code, took)
	}
	for _, k := range kids {
		if alive(k) {
			t.Error("ffmpeg outlived the recorder")
		}
	}
	segs := e.segments()
	last := segs[len(segs)-1]
	// The segment open at SIGTERM was closed and uploaded: it ends at the stop.
	if d := sigAt.Sub(last.End()); d < -time.Second || d > time.Second {
		t.Errorf("last segment ends %v before SIGTERM", d)
	}
	for i := 1; i < len(segs); i++ {
		if d := segs[i].Start.Sub(segs[i-1].End()); d < -40*time.Millisecond || d > 40*time.Millisecond {
			t.Errorf("gap of %v before segment %d", d, i)
		}
	}
	logs := p.stderr.String()
	if strings.Contains(logs, testsim.Password) {
		t.Error("password in the recorder's log")
	}
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log")
	}
}

// SIGKILL (OOM, or the grace ran out): ffmpeg dies with the recorder, and
// the next recorder on the same spool keeps the half-written segment,
// placed right after the last listed one.
func TestKilledRecorderIsPickedUpByTheNext(t *testing.T) {
	t.Parallel()
	sim := testsim.Start(t)
	e := newEnv(t, sim)
	p := e.start()
	testkit.Eventually(t, 40*time.Second, 100*time.Millisecond, "2 segments in S3", func() bool { return len(e.segments()) >= 2 })
	// About 2 s into the next segment (of 4 s), as ffprobe reads the
	// growing file.
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, "the growing segment to hold 1.5–2.5 s", func() bool {
		d := e.growingSeconds()
		return d >= 1.5 && d <= 2.5
	})
	kids := testsim.FFmpegChildren(p.cmd.Process.Pid)
	p.cmd.Process.Kill()
	<-p.done
	testkit.Eventually(t, 5*time.Second, 100*time.Millisecond, "ffmpeg to die with the recorder", func() bool {
		for _, k := range kids {
			if alive(k) {
				return false
			}
		}
		return true
	})
	before := e.segments()
	lastEnd := before[len(before)-1].End()

	p2 := e.start()
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, "the half-written segment in S3", func() bool {
		for _, s := range e.segments() {
			if s.Start.Equal(lastEnd) {
				return true
			}
		}
		return false
	})
	p2.cmd.Process.Signal(syscall.SIGTERM)
	<-p2.done
	if !strings.Contains(p2.stderr.String(), "kept a half-written segment") {
		t.Error("the second recorder did not report keeping the half-written segment")
	}
	if code := exitCode(p2); code != 0 {
		t.Fatalf("second recorder exit code %d", code)
	}
	for _, s := range e.segments() {
		if s.Start.Equal(lastEnd) && (s.Duration < time.Second || s.Duration > 4*time.Second) {
			t.Errorf("salvaged segment lasts %v; it was killed about 2 s in", s.Duration)
		}
	}
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	sim := testsim.Start(t)
	e := newEnv(t, sim)

	// Bad configuration: 2, and the message names the variable.
	p := e.start("RECORDER_SEGMENT_LENGTH=-4s", "RECORDER_CHANNELS=1=rtsp://admin:"+testsim.Password+"@h/x")
	<-p.done
	logs := p.stderr.String()
	if code := exitCode(p); code != 2 || !strings.Contains(logs, "RECORDER_SEGMENT_LENGTH") || !strings.Contains(logs, "RECORDER_CHANNELS") {
		t.Errorf("bad config: exit %d, stderr %q", code, logs)
	}
	if strings.Contains(logs, testsim.Password) {
		t.Errorf("bad config error leaks the password: %q", logs)
	}

	// The same channel twice on one host (same spool): the second exits 6.
	first := e.start()
	testkit.Eventually(t, 20*time.Second, 100*time.Millisecond, "the first recorder to lock its spool", func() bool {
		return strings.Contains(first.stderr.String(), `"msg":"recording"`)
	})
	p = e.start()
	<-p.done
	if code := exitCode(p); code != 6 {
		t.Errorf("second recorder for a channel: exit %d, want 6; stderr %s", code, p.stderr.String())
	}
	first.cmd.Process.Signal(syscall.SIGTERM)
	<-first.done

	// A password parameter that does not exist: 3.
	p = e.start("RECORDER_RTSP_PASSWORD_PARAM=/mediagw/test/" + awstest.Name("missing"))
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		t.Fatal("recorder with a missing password parameter did not exit")
	}
	if code := exitCode(p); code != 3 {
		t.Errorf("missing password parameter: exit %d, want 3; stderr %s", code, p.stderr.String())
	}
}

// metricValue scrapes the recorder's /metrics (its address is in the
// "started" log line) and sums the series of one metric.
func metricValue(tb testing.TB, p *proc, name string) float64 {
	tb.Helper()
	var addr string
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		var m struct {
			Msg  string `json:"msg"`
			Addr string `json:"http_addr"`
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "started" {
			addr = m.Addr
		}
	}
	if addr == "" {
		tb.Fatal("no http_addr in the recorder's log")
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}
