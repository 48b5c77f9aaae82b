package wiring

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/deploy/provision"
	"mediagw/pkg/gatewayid"
	hik "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	lbddb "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	ec2adapter "mediagw/services/health-sentinel/internal/adapters/ec2"
	"mediagw/services/health-sentinel/internal/adapters/leases"
	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
)

// recReporter records what the Recoverer tells the incidents side.
type recReporter struct {
	mu        sync.Mutex
	finished  []recovery.Step
	recovered []recovery.Recovered
	gaveUp    []string
}

func (r *recReporter) StepStarted(context.Context, string, recovery.Step) error { return nil }
func (r *recReporter) StepFinished(_ context.Context, _ string, s recovery.Step) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = append(r.finished, s)
	return nil
}
func (r *recReporter) Recovered(_ context.Context, rec recovery.Recovered) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recovered = append(r.recovered, rec)
	return nil
}
func (r *recReporter) GaveUp(_ context.Context, _ string, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gaveUp = append(r.gaveUp, reason)
	return nil
}

func (r *recReporter) outcomes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.finished {
		out = append(out, string(s.Kind)+"="+s.Outcome)
	}
	return out
}

func (r *recReporter) details() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, s := range r.finished {
		b.WriteString("\n  " + string(s.Kind) + " " + s.Outcome + ": " + s.Detail)
	}
	return b.String()
}

// recRig is the recovery side wired as buildRecovery does, against the
// emulator (leases, login budget, SSM, EC2) and a simulated gateway.
type recRig struct {
	t    *testing.T
	cfg  aws.Config
	sim  *gatewaysim.Server
	gw   string
	s    RecoverySettings
	rep  *recReporter
	rec  *recovery.Recoverer
	root string
}

func newRecRig(t *testing.T, tweak func(*RecoverySettings)) *recRig {
	t.Helper()
	cfg := awstest.Config(t)
	res, err := provision.Apply(t.Context(), cfg, topology.Default(), provision.Options{Prefix: awstest.Name("hsr") + "-", Only: []string{"tables"}})
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	sim := gatewaysimtest.Start(t, gatewaysimtest.WithAdmin(), gatewaysimtest.WithDevices(2, 1))
	r := &recRig{t: t, cfg: cfg, sim: sim, gw: awstest.Name("gw"), rep: &recReporter{}, root: "/" + awstest.Name("root")}
	// The gateway's password, and one login with it through the budget, as
	// the configurator makes: the health check logs in only with it.
	ssmc := awsssm.NewFromConfig(cfg)
	param := r.root + "/gateways/" + r.gw + "/Password"
	out, err := ssmc.PutParameter(t.Context(), &awsssm.PutParameterInput{Name: aws.String(param), Value: aws.String(gatewaysimtest.Password),
		Type: ssmtypes.ParameterTypeSecureString})
	if err != nil {
		t.Fatalf("put the password parameter: %v", err)
	}
	budget := loginbudget.New(lbddb.New(awsddb.NewFromConfig(cfg), res.Tables[LoginBudgetTable]), "configurator")
	c, err := hik.New(sim.URL(), gatewaysimtest.User, gatewaysimtest.Password,
		hik.WithLoginGate(budget.ISAPIGate(r.gw, loginbudget.CredentialOf(param, out.Version))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeviceInfo(t.Context()); err != nil {
		t.Fatalf("log in as the configurator does: %v", err)
	}
	// Timeouts leave room for a loaded machine: a slow answer must not
	// read as a silent API.
	r.s = RecoverySettings{
		Gateways: []RecoveryGateway{{ID: gatewayid.ID(r.gw), URL: sim.URL()}}, GatewayUser: gatewaysimtest.User, GatewayTimeout: 2 * time.Second,
		ParameterRoot: r.root, PasswordMaxAge: time.Minute,
		LeasesTable: res.Tables[LeasesTable], LoginBudgetTable: res.Tables[LoginBudgetTable], LeaseDuration: 30 * time.Second,
		InstanceID: "sentinel-test",
		Budget: domain.RecoveryBudget{Window: time.Hour, ISAPIReboots: 1, EC2Reboots: 1, Replacements: 1,
			StepWaitISAPI: 5 * time.Second, StepWaitEC2: 5 * time.Second, StepWaitReplace: 30 * time.Second},
		Snapshots: domain.SnapshotPolicy{RPO: time.Hour, Keep: 2, MaxAge: 24 * time.Hour},
		EC2Poll:   50 * time.Millisecond, PollInterval: 100 * time.Millisecond,
	}
	if tweak != nil {
		tweak(&r.s)
	}
	rt := service.NewRuntime("health-sentinel", slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})), cfg)
	r.rec, err = buildRecovery(t.Context(), rt, r.s, r.rep)
	if err != nil {
		t.Fatalf("buildRecovery: %v", err)
	}
	return r
}

func (r *recRig) recover() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), 2*time.Minute)
	defer cancel()
	if err := r.rec.Recover(ctx, r.gw); err != nil {
		r.t.Fatalf("Recover: %v%s", err, r.rep.details())
	}
}

// TestLocalLadderOnTheSimulator is the whole ladder in a local run: the
// gateway answers with errors that no reboot cures (a fault the simulator
// keeps across reboots), so the ISAPI reboot and the machine reboot are
// tried in vain and the replacement (a new simulated machine, faults gone)
// brings it back.
func TestLocalLadderOnTheSimulator(t *testing.T) {
	r := newRecRig(t, nil)
	r.s.SimAdminURL = r.sim.AdminURL()
	rt := service.NewRuntime("health-sentinel", slog.New(slog.NewTextHandler(io.Discard, nil)), r.cfg)
	rec, err := buildRecovery(t.Context(), rt, r.s, r.rep)
	if err != nil {
		t.Fatal(err)
	}
	r.rec = rec
	if h, err := rec.Check(t.Context(), r.gw); err != nil || !h.Healthy() {
		t.Fatalf("before: %+v %v", h, err)
	}
	old := r.sim.InstanceID()
	if _, err := r.sim.InjectFault(gatewaysim.Fault{Path: "/ISAPI/System/status", Kind: gatewaysim.FaultHTTPStatus, HTTPStatus: 500}); err != nil {
		t.Fatal(err)
	}
	h, err := rec.Check(t.Context(), r.gw)
	if err != nil || h.APIState != domain.APISick {
		t.Fatalf("with the fault: %+v %v", h, err)
	}
	r.recover()
	want := []string{"isapi-reboot=failed", "ec2-reboot=failed", "replace=recovered"}
	if got := r.rep.outcomes(); !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v%s", got, want, r.rep.details())
	}
	if n := r.sim.Counters().Reboots; n < 3 {
		t.Fatalf("%d reboots of the simulator, want the ISAPI one, the machine's and the replacement's", n)
	}
	if len(r.rep.recovered) != 1 || r.rep.recovered[0].InstanceID == old || r.rep.recovered[0].PreviousInstanceID != old ||
		r.rep.recovered[0].InstanceID != r.sim.InstanceID() {
		t.Fatalf("recovered %+v (old %s, now %s)", r.rep.recovered, old, r.sim.InstanceID())
	}
	if n := r.sim.Counters().FailedLogins["127.0.0.1"]; n != 0 {
		t.Fatalf("%d failed logins at the gateway", n)
	}
}

// TestHungGatewayIsRebootedLocally: the API hangs; it cannot take an ISAPI
// reboot, so the machine is rebooted and the gateway answers again.
func TestHungGatewayIsRebootedLocally(t *testing.T) {
	r := newRecRig(t, func(s *RecoverySettings) { s.PollInterval = 100 * time.Millisecond })
	r.s.SimAdminURL = r.sim.AdminURL()
	rt := service.NewRuntime("health-sentinel", slog.New(slog.NewTextHandler(io.Discard, nil)), r.cfg)
	rec, err := buildRecovery(t.Context(), rt, r.s, r.rep)
	if err != nil {
		t.Fatal(err)
	}
	r.rec = rec
	r.sim.Hang()
	if h, err := rec.Check(t.Context(), r.gw); err != nil || h.APIState != domain.APISilent || h.APIAnswers {
		t.Fatalf("hung: %+v %v", h, err)
	}
	r.recover()
	if got := r.rep.outcomes(); !slices.Equal(got, []string{"ec2-reboot=recovered"}) {
		t.Fatalf("steps %v%s", got, r.rep.details())
	}
	if r.sim.Hung() || len(r.sim.Devices()) != 2 {
		t.Fatalf("after: hung %v, %d cameras", r.sim.Hung(), len(r.sim.Devices()))
	}
}

// TestReplacementOnEmulatedEC2 runs the ladder against the emulator's EC2:
// a snapshot is taken while the gateway is healthy; the gateway hangs; the
// instance reboot does not help (the emulator reboots nothing); the
// replacement starts a new instance from the snapshot, moves the Elastic
// IP to it, and — once the new machine answers ISAPI behind the address —
// terminates the old one.
func TestReplacementOnEmulatedEC2(t *testing.T) {
	r := newRecRig(t, nil)
	ctx := t.Context()
	ec2c := awsec2.NewFromConfig(r.cfg)
	imgs, err := ec2c.DescribeImages(ctx, &awsec2.DescribeImagesInput{Owners: []string{"amazon"}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("base images: %v", err)
	}
	tag := []ec2types.Tag{{Key: aws.String(ec2adapter.TagGateway), Value: aws.String(r.gw)}}
	run, err := ec2c.RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Medium,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: tag}}})
	if err != nil {
		t.Fatal(err)
	}
	old := aws.ToString(run.Instances[0].InstanceId)
	addr, err := ec2c.AllocateAddress(ctx, &awsec2.AllocateAddressInput{Domain: ec2types.DomainTypeVpc,
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeElasticIp, Tags: tag}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec2c.AssociateAddress(ctx, &awsec2.AssociateAddressInput{AllocationId: addr.AllocationId, InstanceId: aws.String(old)}); err != nil {
		t.Fatal(err)
	}

	// The snapshot schedule: healthy, none yet → one taken; again → none.
	if err := r.rec.SnapshotDue(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.rec.SnapshotDue(ctx); err != nil {
		t.Fatal(err)
	}
	snaps, err := ec2adapter.New(ec2c, ec2adapter.Options{}).List(ctx, r.gw)
	if err != nil || len(snaps) != 1 || snaps[0].InstanceID != old {
		t.Fatalf("snapshots %+v %v, want one of %s", snaps, err, old)
	}

	r.sim.Hang()
	// The "new machine" answers once the Elastic IP is on another instance:
	// the simulator stands behind the address.
	moved := make(chan string, 1)
	go func() {
		for ctx.Err() == nil {
			out, err := ec2c.DescribeAddresses(ctx, &awsec2.DescribeAddressesInput{AllocationIds: []string{aws.ToString(addr.AllocationId)}})
			if err == nil && len(out.Addresses) == 1 {
				if id := aws.ToString(out.Addresses[0].InstanceId); id != "" && id != old {
					r.sim.Replace(100 * time.Millisecond)
					moved <- id
					return
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	r.recover()
	if got := r.rep.outcomes(); !slices.Equal(got, []string{"ec2-reboot=failed", "replace=recovered"}) {
		t.Fatalf("steps %v%s", got, r.rep.details())
	}
	newID := <-moved
	rec := r.rep.recovered
	if len(rec) != 1 || rec[0].InstanceID != newID || rec[0].PreviousInstanceID != old || rec[0].ElasticIP != aws.ToString(addr.PublicIp) ||
		rec[0].BootstrapPasswordParameter != r.root+"/gateways/"+r.gw+"/BootstrapPassword" {
		t.Fatalf("recovered %+v (new %s, old %s)", rec, newID, old)
	}
	out, err := ec2c.DescribeAddresses(ctx, &awsec2.DescribeAddressesInput{AllocationIds: []string{aws.ToString(addr.AllocationId)}})
	if err != nil || aws.ToString(out.Addresses[0].InstanceId) != newID {
		t.Fatalf("Elastic IP on %v, want %s (%v)", aws.ToString(out.Addresses[0].InstanceId), newID, err)
	}
	di, err := ec2c.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{old, newID}})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range di.Reservations {
		for _, in := range res.Instances {
			id, st := aws.ToString(in.InstanceId), in.State.Name
			switch {
			case id == old && st != ec2types.InstanceStateNameTerminated && st != ec2types.InstanceStateNameShuttingDown:
				t.Fatalf("old instance %s is %s, want terminated", id, st)
			case id == newID && (st != ec2types.InstanceStateNameRunning || aws.ToString(in.ImageId) != snaps[0].ID ||
				in.InstanceType != ec2types.InstanceTypeT3Medium):
				t.Fatalf("new instance %s: %s from %s (%s), want running from %s (t3.medium)", id, st, aws.ToString(in.ImageId), in.InstanceType, snaps[0].ID)
			}
		}
	}
	// The lease is free and the ladder's state says nothing is under way.
	l, ok, err := leases.New(awsddb.NewFromConfig(r.cfg), r.s.LeasesTable, "another-sentinel", time.Minute).Acquire(ctx, r.gw)
	if err != nil || !ok || l.State.Active() || l.State.Count(domain.RecoveryReplace, time.Now(), r.s.Budget) != 1 {
		t.Fatalf("lease after: ok %v err %v state %+v", ok, err, l.State)
	}
	if n := r.sim.Counters().FailedLogins["127.0.0.1"]; n != 0 {
		t.Fatalf("%d failed logins at the gateway", n)
	}
}

func TestRecoverySettingsFromTheEnvironment(t *testing.T) {
	cfg := service.NewConfig("health-sentinel", "test", "127.0.0.1:0")
	get := declareRecovery(cfg)
	t.Setenv("GATEWAYS", "gw-1=http://203.0.113.7:80, gw-2=https://gw2.example:443")
	t.Setenv(topology.EnvName(LeasesTable, "TABLE"), "leases")
	t.Setenv(topology.EnvName(LoginBudgetTable, "TABLE"), "budget")
	t.Setenv("RECOVERY_MAX_EC2_REBOOTS", "2")
	t.Setenv("SNAPSHOT_RPO", "4h")
	if err := cfg.Parse(nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	s := get()
	if len(s.Gateways) != 2 || s.Gateways[1].ID != "gw-2" || s.Gateways[1].URL != "https://gw2.example:443" ||
		s.Budget.EC2Reboots != 2 || s.Snapshots.RPO != 4*time.Hour || s.LeasesTable != "leases" || s.Budget.Validate() != nil {
		t.Fatalf("settings %+v", s)
	}
	for _, bad := range []string{"gw-1", "gw-1=ftp://x", "gw-1=http://admin:pw@x", "gw-1=http://a,gw-1=http://b"} {
		if _, err := gatewayid.ParseEndpoints(strings.Split(bad, ",")); err == nil {
			t.Errorf("GATEWAYS=%s accepted", bad)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("the error repeats the URL's password: %v", err)
		}
	}
}
