package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	prom "github.com/prometheus/client_golang/prometheus"

	"mediagw/pkg/gatewayid"
	"mediagw/pkg/loginbudget"
	lbddb "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/service"
	"mediagw/services/recorder/internal/domain"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
	"mediagw/testsupport/servicetest"
	"mediagw/testsupport/testkit"
)

// Recorders logging in to the simulated gateway (ISAPI and RTSP behind one
// per-IP lockout and a ledger of every failed login) through the real
// login budget on the emulator's DynamoDB, each built by Build as its own
// process would be: its own SSM, DynamoDB and budget handle.

const wrongPassword = "Wrong-Passw0rd"

// loginRig is a simulated gateway, the password parameter in SSM, the
// login-budget table and a bucket.
type loginRig struct {
	t       *testing.T
	sim     *gatewaysim.Server
	aws     aws.Config
	gateway gatewayid.ID
	param   string
	table   string
	bucket  string
	recheck time.Duration
	logs    *testkit.Buffer
	log     *slog.Logger
}

func newLoginRig(t *testing.T, devices int, password string) *loginRig {
	t.Helper()
	cfg := awstest.Config(t)
	g := &loginRig{
		t:       t,
		sim:     gatewaysimtest.Start(t, gatewaysimtest.WithRTSP(), gatewaysimtest.WithDevices(devices, 1)),
		aws:     cfg,
		gateway: "gw-budget",
		param:   "/mediagw/test/" + awstest.Name("gw") + "/Password",
		table:   budgetTable(t, cfg),
		bucket:  newBucket(t, cfg),
		recheck: 2 * time.Second,
	}
	g.log, g.logs = testLogger(t)
	g.putPassword(password)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("login budget: %+v", g.ledger())
			t.Logf("the gateway's failed logins: %+v", g.sim.Counters().LoginFailures)
		}
	})
	return g
}

// putPassword writes the parameter (a new version each time).
func (g *loginRig) putPassword(value string) {
	g.t.Helper()
	if _, err := awsssm.NewFromConfig(g.aws).PutParameter(context.Background(), &awsssm.PutParameterInput{
		Name: aws.String(g.param), Value: aws.String(value), Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true),
	}); err != nil {
		g.t.Fatal(err)
	}
}

// runningRecorder is one recorder process's runtime.
type runningRecorder struct {
	reg  *prom.Registry
	stop func() error
}

// start builds and runs a recorder of the device's main stream with Build,
// as cmd/recorder does.
func (g *loginRig) start(i int, devIndex string) *runningRecorder {
	g.t.Helper()
	s := Settings{
		Gateway: g.gateway, Device: fmt.Sprintf("cam-%02d", i),
		Channels: []domain.Channel{{ID: "1", URL: g.sim.StreamURL(devIndex, 1, false)}},
		RTSPUser: gatewaysimtest.User, PasswordParam: g.param, PasswordRecheck: g.recheck, LoginBudgetTable: g.table,
		SegmentLength: testSegment, Container: domain.MPEGTS, KeyPrefix: "recordings", Bucket: g.bucket,
		// The default RTSP timeout: a login waiting for its turn in the
		// budget counts against it (see the README's known limits).
		SpoolDir: g.t.TempDir(), SpoolMaxBytes: 1 << 30, RTSPTimeout: 5 * time.Second, RestartMaxBackoff: 2 * time.Second,
		FFmpeg: "ffmpeg", FFprobe: "ffprobe",
	}
	rt := service.NewRuntime(Name, g.log.With("recorder", i), g.aws)
	rt.Grace = 10 * time.Second
	stop := servicetest.Start(g.t, rt, func(ctx context.Context, rt *service.Runtime) error { return Build(ctx, rt, s) }, 20*time.Second)
	return &runningRecorder{reg: rt.Metrics, stop: stop}
}

// metric sums the series of name whose labels include want.
func (r *runningRecorder) metric(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

func (r *runningRecorder) stoppedFor(t testing.TB, reason loginbudget.Reason) bool {
	return r.metric(t, "recorder_credentials_rejected", map[string]string{"reason": string(reason)}) == 1
}

func (r *runningRecorder) stopped(t testing.TB) bool {
	return r.metric(t, "recorder_credentials_rejected", nil) > 0
}

// ledger is the gateway's login budget as stored.
func (g *loginRig) ledger() loginbudget.Ledger {
	g.t.Helper()
	l, err := loginbudget.New(lbddb.New(awsddb.NewFromConfig(g.aws), g.table), "test").Ledger(context.Background(), g.gateway.String())
	if err != nil {
		g.t.Fatal(err)
	}
	return l
}

// 64 recorders of one gateway start with a wrong password: the gateway
// sees one failed login (the budget lets one login with an untried
// password through at a time, and none with a rejected one), every
// recorder reports credentials-rejected and stops trying. Then the
// parameter gets the right password: every recorder resumes within the
// recheck interval, without a restart, and the gateway sees no further
// failure.
func TestSixtyFourRecordersWithAWrongPassword(t *testing.T) {
	// Not parallel: 64 recorders, then 64 ffmpeg, are load enough.
	const n = 64
	g := newLoginRig(t, n, wrongPassword)
	devs := g.sim.Devices()
	recs := make([]*runningRecorder, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { recs[i] = g.start(i, devs[i].DevIndex) })
	}
	wg.Wait()

	testkit.Eventually(t, 90*time.Second, 200*time.Millisecond, "every recorder to report credentials-rejected", func() bool {
		for _, r := range recs {
			if !r.stoppedFor(t, loginbudget.ReasonRejected) {
				return false
			}
		}
		return true
	})
	c := g.sim.Counters()
	failed := c.FailedLogins["127.0.0.1"]
	if failed < 1 || failed > 1 {
		t.Fatalf("the gateway saw %d failed logins from 64 recorders, want 1 (never more than 2)", failed)
	}
	if len(c.LoginFailures) != failed || c.LoginFailures[0].Protocol != gatewaysim.ProtocolRTSP || c.Lockouts["127.0.0.1"] != 0 {
		t.Fatalf("failed-login ledger %+v, lockouts %v", c.LoginFailures, c.Lockouts)
	}
	if got := strings.Count(g.logs.String(), "credentials rejected: no login"); got != n {
		t.Errorf("%d 'credentials rejected' log lines, want one per recorder", got)
	}
	l := g.ledger()
	if want := loginbudget.CredentialOf(g.param, 1); len(l.Rejected) != 1 || l.Rejected[0] != want {
		t.Errorf("budget ledger rejected %v, want %s", l.Rejected, want)
	}

	for i, r := range recs {
		if b := r.metric(t, "recorder_rtsp_received_bytes_total", nil); b != 0 {
			t.Fatalf("recorder %d received %v media bytes with a rejected password", i, b)
		}
	}

	g.putPassword(gatewaysimtest.Password)
	put := time.Now()
	testkit.Eventually(t, g.recheck+10*time.Second, 100*time.Millisecond, "every recorder to resume logging in", func() bool {
		for _, r := range recs {
			if r.stopped(t) {
				return false
			}
		}
		return true
	})
	// Each recorder looks at the version every recheck interval (64 of
	// them reading SSM and the budget may add a little: logged, not
	// asserted, on a shared machine).
	t.Logf("every recorder resumed logging in %v after the put (recheck interval %v)", time.Since(put).Round(time.Millisecond), g.recheck)
	// Logged in again: the stream flows in and segments are cut. With one
	// failed login in the window, the budget lets one login at a time
	// through, so 64 recorders pass one by one, each costing two writes
	// to the emulator's DynamoDB: on a loaded 2-core machine that can take
	// minutes for all of them, so a few of them show the whole path.
	testkit.Eventually(t, 90*time.Second, 200*time.Millisecond, "recorders to receive the stream again", func() bool {
		for _, r := range recs[:8] {
			if r.metric(t, "recorder_rtsp_received_bytes_total", nil) < 1 {
				return false
			}
		}
		return true
	})
	testkit.Eventually(t, 90*time.Second, 200*time.Millisecond, "recorders to record segments again", func() bool {
		for _, r := range recs[:4] {
			if r.metric(t, "recorder_segments_written_total", nil) < 1 {
				return false
			}
		}
		return true
	})
	if after := g.sim.Counters().FailedLogins["127.0.0.1"]; after != failed {
		t.Errorf("the gateway saw %d failed logins after the put, want still %d", after, failed)
	}
	if l := g.ledger(); l.Accepted != loginbudget.CredentialOf(g.param, 2) {
		t.Errorf("budget ledger accepted %q", l.Accepted)
	}
	for _, r := range recs {
		wg.Go(func() {
			if err := r.stop(); err != nil {
				t.Errorf("stop: %v", err)
			}
		})
	}
	wg.Wait()
	for _, secret := range []string{wrongPassword, gatewaysimtest.Password} {
		if strings.Contains(g.logs.String(), secret) {
			t.Errorf("a password in the logs")
		}
	}
}

// The gateway reads a login with a wrong password and closes the
// connection without answering: each such login counts once, in the
// budget (unanswered) and at the gateway, and is never sent again; after
// two the budget is spent and the recorder stops trying.
func TestLostAnswerToALoginCountsOnceAndIsNotResent(t *testing.T) {
	t.Parallel()
	g := newLoginRig(t, 1, wrongPassword)
	if err := g.sim.SetLoginFaults(gatewaysim.LoginFaults{Lost401: true}); err != nil {
		t.Fatal(err)
	}
	r := g.start(0, g.sim.Devices()[0].DevIndex)
	testkit.Eventually(t, 60*time.Second, 100*time.Millisecond, "the recorder to stop on a spent budget", func() bool {
		return r.stoppedFor(t, loginbudget.ReasonBudgetSpent)
	})
	l := g.ledger()
	var unanswered int
	for _, a := range l.Attempts {
		if a.Result == loginbudget.Unanswered && a.Component == "recorder" {
			unanswered++
		}
	}
	c := g.sim.Counters()
	if unanswered != 2 || len(l.Attempts) != 2 {
		t.Fatalf("budget attempts %+v, want 2 unanswered", l.Attempts)
	}
	// One request at the gateway per login: nothing re-sent.
	if len(c.LoginFailures) != unanswered || c.FailedLogins["127.0.0.1"] != unanswered {
		t.Fatalf("the gateway saw %d failed logins (ledger %+v) for %d logins", c.FailedLogins["127.0.0.1"], c.LoginFailures, unanswered)
	}
	for _, f := range c.LoginFailures {
		if f.Answer != gatewaysim.AnswerLost || f.Protocol != gatewaysim.ProtocolRTSP {
			t.Errorf("failed login %+v, want an unanswered RTSP one", f)
		}
	}
	if strings.Count(g.logs.String(), "the login got no answer") != unanswered {
		t.Errorf("unanswered logins not logged once each")
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// A gateway that offers only Basic on RTSP: the recorder refuses to send
// the password in clear text, says so naming the gateway, and the gateway
// sees no credentials at all.
func TestBasicOnlyGatewayGetsNoPassword(t *testing.T) {
	t.Parallel()
	g := newLoginRig(t, 1, gatewaysimtest.Password)
	if err := g.sim.SetLoginFaults(gatewaysim.LoginFaults{BasicOnly: true}); err != nil {
		t.Fatal(err)
	}
	r := g.start(0, g.sim.Devices()[0].DevIndex)
	testkit.Eventually(t, 30*time.Second, 100*time.Millisecond, "the refusal in the log", func() bool {
		return strings.Contains(g.logs.String(), "gateway gw-budget offers only Basic authentication on RTSP")
	})
	if c := g.sim.Counters(); len(c.LoginFailures) != 0 {
		t.Errorf("the gateway saw logins: %+v", c.LoginFailures)
	}
	if l := g.ledger(); len(l.Attempts) != 0 || l.Accepted != "" {
		t.Errorf("budget ledger %+v: no login was made", l)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}
