package wiring

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	prom "github.com/prometheus/client_golang/prometheus"

	"mediagw/deploy/provision"
	"mediagw/pkg/gatewayid"
	"mediagw/pkg/loginbudget"
	lbddb "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	"mediagw/services/recorder/internal/adapters/budget"
	"mediagw/services/recorder/internal/adapters/prometheus"
	"mediagw/services/recorder/internal/adapters/rtsp"
	s3store "mediagw/services/recorder/internal/adapters/s3"
	"mediagw/services/recorder/internal/adapters/spool"
	"mediagw/services/recorder/internal/app"
	"mediagw/services/recorder/internal/domain"
	"mediagw/services/recorder/internal/testsim"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/testkit"
)

func TestMain(m *testing.M) {
	flag.Parse()
	// These tests mostly wait for real-time video, not for the CPU: run them
	// side by side unless -parallel was given.
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	os.Exit(awstest.Main(m))
}

const (
	testSegment = 4 * time.Second
	gop         = 2 * time.Second // the simulator's
	frame       = 40 * time.Millisecond
)

// testLogger logs JSON into a buffer (checked for secrets) and, on
// failure, into the test log.
func testLogger(t *testing.T) (*slog.Logger, *testkit.Buffer) {
	buf := &testkit.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("recorder log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func newBucket(t *testing.T, cfg aws.Config) string {
	t.Helper()
	b := awstest.Name("rec")
	if _, err := s3Client(cfg).CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return b
}

func s3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

// harness is a recorder under test: the wiring's build over the real
// adapters (simulator, ffmpeg, moto), with waits shortened.
type harness struct {
	t      *testing.T
	sim    *testsim.Sim
	aws    aws.Config
	bucket string
	s      Settings   // as the binder would give them
	knobs  app.Config // the app's waits no setting reaches: RestartInitial, FailingAfter
	// stopTimeout is the app's stop budget (the runtime's grace − 1 s).
	stopTimeout time.Duration
	reg         *prom.Registry
	m           *prometheus.Metrics
	logs        *testkit.Buffer
	log         *slog.Logger
}

func newHarness(t *testing.T, s *testsim.Sim, devices ...string) *harness {
	t.Helper()
	awsCfg := awstest.Config(t)
	h := &harness{t: t, sim: s, aws: awsCfg, bucket: newBucket(t, awsCfg), reg: prom.NewRegistry()}
	h.log, h.logs = testLogger(t)
	gw, err := gatewayid.Parse("gw-test")
	if err != nil {
		t.Fatal(err)
	}
	h.s = Settings{
		Gateway:           gw,
		Device:            awstest.Name("dev"),
		RTSPUser:          testsim.User,
		SegmentLength:     testSegment,
		Container:         domain.MPEGTS,
		KeyPrefix:         "recordings",
		Bucket:            h.bucket,
		SpoolDir:          t.TempDir(),
		SpoolMaxBytes:     1 << 30,
		RTSPTimeout:       2 * time.Second,
		RestartMaxBackoff: 2 * time.Second,
		LoginBudgetTable:  budgetTable(t, awsCfg),
	}
	h.knobs = app.Config{RestartInitial: 200 * time.Millisecond}
	h.stopTimeout = 10 * time.Second
	for i, d := range devices {
		h.s.Channels = append(h.s.Channels, domain.Channel{ID: strconv.Itoa(i + 1), URL: s.URL(d)})
	}
	return h
}

// simPassword is the simulator's password, as if read from SSM.
type simPassword struct{}

const simParam = "/mediagw/test/sim/Password"

func (simPassword) Get(context.Context) (string, loginbudget.Credential, error) {
	return testsim.Password, loginbudget.CredentialOf(simParam, 1), nil
}
func (simPassword) Current(context.Context) (loginbudget.Credential, error) {
	return loginbudget.CredentialOf(simParam, 1), nil
}

// budgetTable provisions the topology's tables under a fresh prefix and
// returns the login budget's: each test has a ledger of its own.
func budgetTable(t testing.TB, cfg aws.Config) string {
	t.Helper()
	res, err := provision.Apply(context.Background(), cfg, topology.Default(), provision.Options{Prefix: awstest.Name("rec") + "-", Only: []string{"tables"}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Tables[LoginBudgetTable]
}

// newBudget is a recorder's own handle on the login budget, as a separate
// process has (its own DynamoDB client).
func newBudget(cfg aws.Config, table string) budget.Budget {
	return budget.New(lbddb.New(awsddb.NewFromConfig(cfg), table))
}

// runtime builds the recorder with store on a fresh runtime, ready to Run.
func (h *harness) runtime(ctx context.Context, store app.Uploader) (*service.Runtime, error) {
	h.t.Helper()
	if h.m == nil {
		h.m = prometheus.New(h.reg, h.s.Gateway.String(), h.s.Device)
	}
	rt := service.NewRuntime(Name, h.log, h.aws)
	rt.Grace = h.stopTimeout + time.Second
	deps := app.Deps{
		OpenSpool: spool.Opener(h.s.SpoolDir, domain.Source{Gateway: h.s.Gateway.String(), Device: h.s.Device}, h.s.SpoolMaxBytes),
		Uploader:  store,
		Segmenter: segmenter(h.s),
		Relays:    rtsp.Relays{},
		Password:  simPassword{},
		Budget:    newBudget(h.aws, h.s.LoginBudgetTable),
		Metrics:   h.m,
		Logger:    h.log,
	}
	err := build(ctx, rt, h.s, deps, func(c *app.Config) {
		c.RestartInitial = h.knobs.RestartInitial
		c.FailingAfter = h.knobs.FailingAfter
	})
	return rt, err
}

// start runs the recorder with store until the returned stop is called;
// stop returns the runtime's error and how long it took after the cancel.
func (h *harness) start(store app.Uploader) (stop func() (error, time.Duration)) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rt, err := h.runtime(ctx, store)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	var once sync.Once
	var res error
	var took time.Duration
	stop = func() (error, time.Duration) {
		once.Do(func() {
			t0 := time.Now()
			cancel()
			select {
			case res = <-done:
			case <-time.After(h.stopTimeout + 10*time.Second):
				res = errors.New("Run did not return")
			}
			took = time.Since(t0)
		})
		return res, took
	}
	h.t.Cleanup(func() { stop() })
	return stop
}

func (h *harness) store() app.Uploader { return s3store.New(h.aws, h.bucket) }

// storeAt is a store that reaches S3 at endpoint (a switch or a dead port)
// and does not retry within one attempt.
func storeAt(cfg aws.Config, bucket, endpoint string) app.Uploader {
	return s3store.New(cfg, bucket, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.RetryMaxAttempts = 1
	})
}

func newRegistry() *prom.Registry { return prom.NewRegistry() }

type object struct {
	key string
	seg domain.Segment
}

// segments lists a channel's objects in start order.
func (h *harness) segments(ch string) []object {
	h.t.Helper()
	dev, name := domain.SplitChannelID(ch)
	if dev == "" {
		dev = h.s.Device
	}
	prefix := domain.Segment{Source: domain.Source{Gateway: h.s.Gateway.String(), Device: dev, Channel: name}}.Key(h.s.KeyPrefix)
	prefix = prefix[:strings.Index(prefix, "/"+name+"/")+len(name)+2]
	var out []object
	p := s3.NewListObjectsV2Paginator(s3Client(h.aws), &s3.ListObjectsV2Input{Bucket: aws.String(h.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			h.t.Fatalf("list: %v", err)
		}
		for _, o := range page.Contents {
			seg, err := domain.ParseKey(h.s.KeyPrefix, *o.Key)
			if err != nil {
				h.t.Fatalf("object with a bad key: %v", err)
			}
			out = append(out, object{key: *o.Key, seg: seg})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seg.Start.Before(out[j].seg.Start) })
	return out
}

// download fetches an object into a file and returns its path and metadata.
func (h *harness) download(key string) (string, map[string]string) {
	h.t.Helper()
	out, err := s3Client(h.aws).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(h.bucket), Key: aws.String(key)})
	if err != nil {
		h.t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	p := filepath.Join(h.t.TempDir(), filepath.Base(key))
	f, err := os.Create(p)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, out.Body); err != nil {
		h.t.Fatal(err)
	}
	return p, out.Metadata
}

// probe returns the codec of the first video stream and the duration ffprobe reads.
func probe(t *testing.T, path string) (codec string, dur time.Duration) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name:format=duration",
		"-of", "default=noprint_wrappers=1", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "codec_name":
			codec = v
		case "duration":
			f, _ := strconv.ParseFloat(v, 64)
			dur = time.Duration(f * float64(time.Second))
		}
	}
	return codec, dur
}

// checkContinuous asserts that consecutive segments leave no gap and no
// overlap longer than one frame.
func checkContinuous(t *testing.T, objs []object) {
	t.Helper()
	for i := 1; i < len(objs); i++ {
		prevEnd := objs[i-1].seg.End()
		if d := objs[i].seg.Start.Sub(prevEnd); d > frame || d < -frame {
			t.Errorf("segment %d (%s) starts %v after the previous one ended", i, objs[i].key, d)
		}
	}
}

// tcpSwitch forwards a loopback port to a target and can be switched off
// (connections refused, open ones cut) and on again.
type tcpSwitch struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newTCPSwitch(t *testing.T, target string) *tcpSwitch {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpSwitch{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	s.serve(ln)
	t.Cleanup(func() { s.off(); s.wg.Wait() })
	return s
}

func (s *tcpSwitch) serve(ln net.Listener) {
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", s.target)
			if err != nil {
				c.Close()
				continue
			}
			s.mu.Lock()
			s.conns[c], s.conns[u] = struct{}{}, struct{}{}
			s.mu.Unlock()
			s.wg.Add(2)
			pipe := func(a, b net.Conn) {
				defer s.wg.Done()
				io.Copy(a, b)
				a.Close()
				b.Close()
			}
			go pipe(c, u)
			go pipe(u, c)
		}
	}()
}

func (s *tcpSwitch) off() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
		delete(s.conns, c)
	}
}

func (s *tcpSwitch) on(t *testing.T) {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("switch on: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serve(ln)
}
