package wiring

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	awsssm "github.com/aws/aws-sdk-go-v2/service/ssm"

	"mediagw/pkg/gatewayid"
	"mediagw/pkg/loginbudget"
	lbddb "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/service"
	ec2adapter "mediagw/services/health-sentinel/internal/adapters/ec2"
	isapiadapter "mediagw/services/health-sentinel/internal/adapters/isapi"
	"mediagw/services/health-sentinel/internal/adapters/leases"
	"mediagw/services/health-sentinel/internal/adapters/simgateway"
	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
)

// RecoveryComponent names the health-sentinel in the login budget's ledger.
const RecoveryComponent = "health-sentinel"

// Tables of the topology the recovery side uses.
const (
	LeasesTable      = "mediagw-leases"
	LoginBudgetTable = "mediagw-login-budget"
)

// RecoveryGateway is one gateway to look after: its id and ISAPI base URL
// (an entry of GATEWAYS).
type RecoveryGateway = gatewayid.Endpoint

// RecoverySettings are the recovery side's settings (embedded in Settings
// as Recovery).
type RecoverySettings struct {
	Gateways       []RecoveryGateway
	GatewayUser    string
	GatewayTimeout time.Duration
	ParameterRoot  string
	// PasswordMaxAge: a password read from SSM is used this long before it
	// is read again (a new version is seen within it).
	PasswordMaxAge   time.Duration
	LeasesTable      string
	LoginBudgetTable string
	LeaseDuration    time.Duration
	InstanceID       string // this sentinel's name in the leases
	Budget           domain.RecoveryBudget
	Snapshots        domain.SnapshotPolicy
	// SimAdminURL: when set, the gateways' machine is the simulator at
	// this admin URL (local runs), not EC2, and no snapshots are taken.
	SimAdminURL string
	// EC2Poll: how often a replacement looks whether its instance runs.
	EC2Poll time.Duration
	// PollInterval: how often a rung looks whether the gateway is back.
	PollInterval time.Duration
}

// declareRecovery declares the recovery settings on cfg; call the returned
// function after cfg is parsed.
func declareRecovery(c *service.Config) func() RecoverySettings {
	var gateways []RecoveryGateway
	var rawGateways *[]string
	rawGateways = c.List("GATEWAYS", "", "gateways to check and recover, comma-separated <gateway-id>=<ISAPI base URL>, e.g. gw-1=http://203.0.113.7:80 (as the device-watcher's)",
		service.Check(func() error {
			var err error
			gateways, err = gatewayid.ParseEndpoints(*rawGateways)
			return err
		}))
	user := c.String("GATEWAY_USER", "admin", "user the health check logs in to the gateways as")
	positive := func(d **time.Duration) service.Option {
		return service.Check(func() error {
			if **d <= 0 {
				return errors.New("must be positive")
			}
			return nil
		})
	}
	count := func(n **int) service.Option {
		return service.Check(func() error {
			if **n < 0 {
				return errors.New("must not be negative")
			}
			return nil
		})
	}
	def := domain.DefaultRecoveryBudget()
	var timeout, pwAge, lease, window, wISAPI, wEC2, wReplace, rpo, poll, back *time.Duration
	var maxISAPI, maxEC2, maxReplace, keep *int
	timeout = c.Duration("GATEWAY_TIMEOUT", 10*time.Second, "timeout of each ISAPI request of the health check (an API that does not answer within it is silent)", positive(&timeout))
	root := c.String("PARAMETER_ROOT", "/mediagw", "SSM path under which <root>/gateways/<id>/Password (and BootstrapPassword) are")
	pwAge = c.Duration("PASSWORD_MAX_AGE", 30*time.Second, "a gateway password read from SSM is used this long before it is read again", positive(&pwAge))
	leasesTable := c.Table(LeasesTable)
	budgetTable := c.Table(LoginBudgetTable)
	lease = c.Duration("LEASE_DURATION", 60*time.Second, "lease on a gateway's recovery; another sentinel may continue this long after a crash", positive(&lease))
	host, _ := os.Hostname()
	instance := c.String("INSTANCE_ID", fmt.Sprintf("health-sentinel-%s-%d", host, os.Getpid()), "this sentinel's name in the leases")
	window = c.Duration("RECOVERY_WINDOW", def.Window, "the recovery budget's window: the counts below are per window", positive(&window))
	maxISAPI = c.Int("RECOVERY_MAX_ISAPI_REBOOTS", def.ISAPIReboots, "ISAPI reboots per window (rung 1, when the API answers but is unwell)", count(&maxISAPI))
	maxEC2 = c.Int("RECOVERY_MAX_EC2_REBOOTS", def.EC2Reboots, "instance reboots per window (rung 2)", count(&maxEC2))
	maxReplace = c.Int("RECOVERY_MAX_REPLACEMENTS", def.Replacements, "instance replacements per window (rung 3)", count(&maxReplace))
	wISAPI = c.Duration("RECOVERY_WAIT_ISAPI_REBOOT", def.StepWaitISAPI, "how long the ISAPI reboot may take to bring the gateway back", positive(&wISAPI))
	wEC2 = c.Duration("RECOVERY_WAIT_EC2_REBOOT", def.StepWaitEC2, "how long the instance reboot may take to bring the gateway back", positive(&wEC2))
	wReplace = c.Duration("RECOVERY_WAIT_REPLACE", def.StepWaitReplace, "how long a replacement may take, from RunInstances to the new instance answering ISAPI", positive(&wReplace))
	rpo = c.Duration("SNAPSHOT_RPO", 24*time.Hour, "a snapshot of each gateway's instance is taken this often (while it is healthy): what a replacement may lose", positive(&rpo))
	keep = c.Int("SNAPSHOTS_KEEP", 3, "the newest this many snapshots of a gateway are kept",
		service.Check(func() error {
			if *keep < 1 {
				return errors.New("must be at least 1")
			}
			return nil
		}))
	maxAge := c.Duration("SNAPSHOTS_MAX_AGE", 7*24*time.Hour, "snapshots older than this are deleted (0: no age limit); the newest healthy one is always kept")
	sim := c.String("GATEWAY_SIM_ADMIN_URL", "", "local runs only: the gateway simulator's admin URL; when set, recovery reboots and replaces the simulated machine through it instead of EC2, and takes no snapshots")
	poll = c.Duration("EC2_POLL_INTERVAL", 5*time.Second, "how often a replacement looks whether its new instance runs", positive(&poll))
	back = c.Duration("RECOVERY_POLL_INTERVAL", 5*time.Second, "during a recovery step, how often the gateway is checked for being back", positive(&back))
	return func() RecoverySettings {
		return RecoverySettings{
			Gateways: gateways, GatewayUser: *user, GatewayTimeout: *timeout, ParameterRoot: *root, PasswordMaxAge: *pwAge,
			LeasesTable: *leasesTable, LoginBudgetTable: *budgetTable, LeaseDuration: *lease, InstanceID: *instance,
			Budget: domain.RecoveryBudget{Window: *window, ISAPIReboots: *maxISAPI, EC2Reboots: *maxEC2, Replacements: *maxReplace,
				StepWaitISAPI: *wISAPI, StepWaitEC2: *wEC2, StepWaitReplace: *wReplace},
			Snapshots:   domain.SnapshotPolicy{RPO: *rpo, Keep: *keep, MaxAge: *maxAge},
			SimAdminURL: *sim, EC2Poll: *poll, PollInterval: *back,
		}
	}
}

// buildRecovery builds the Recoverer from its adapters; rep learns of every
// recovery step. With GATEWAY_SIM_ADMIN_URL the machine is the simulator's
// (local runs), else EC2 (instances, Elastic IPs and AMI snapshots found by
// their mediagw:gateway tag).
func buildRecovery(ctx context.Context, rt *service.Runtime, s RecoverySettings, rep recovery.Reporter) (*recovery.Recoverer, error) {
	log := rt.Logger.With("part", "recovery")
	ddb := awsddb.NewFromConfig(rt.AWS)
	budget := loginbudget.New(lbddb.New(ddb, s.LoginBudgetTable), RecoveryComponent, loginbudget.WithLogger(log))
	root := strings.TrimRight(s.ParameterRoot, "/")
	urls := map[string]string{}
	var gws []recovery.Gateway
	for _, g := range s.Gateways {
		id := g.ID.String()
		urls[id] = g.URL
		addr := g.URL
		if u, err := url.Parse(g.URL); err == nil {
			addr = u.Host
		}
		gws = append(gws, recovery.Gateway{ID: id, Address: addr, BootstrapPasswordParameter: root + "/gateways/" + id + "/BootstrapPassword"})
	}
	api := isapiadapter.New(urls, isapiadapter.NewSSMPasswords(awsssm.NewFromConfig(rt.AWS), root, s.PasswordMaxAge), budget,
		isapiadapter.Options{User: s.GatewayUser, Timeout: s.GatewayTimeout, Secrets: rt.Secrets(), Logger: log})
	var (
		inst  recovery.Instances
		snaps recovery.Snapshots
	)
	if s.SimAdminURL != "" {
		inst = simgateway.New(s.SimAdminURL, simgateway.Options{Logger: log})
		log.WarnContext(ctx, "recovery acts on the gateway simulator (GATEWAY_SIM_ADMIN_URL), not on EC2; no snapshots are taken")
	} else {
		e := ec2adapter.New(awsec2.NewFromConfig(rt.AWS), ec2adapter.Options{Poll: s.EC2Poll, Logger: log})
		inst, snaps = e, e
	}
	r, err := recovery.New(recovery.Config{
		Gateways: gws, Budget: s.Budget, Policy: s.Snapshots,
		// The API and the instance are looked at within one request's
		// time and a little more.
		CheckTimeout: s.GatewayTimeout + 5*time.Second,
		PollInterval: s.PollInterval,
		Logger:       log,
	}, api, inst, snaps, leases.New(ddb, s.LeasesTable, s.InstanceID, s.LeaseDuration), rep)
	if err != nil {
		return nil, err
	}
	if len(gws) == 0 {
		log.WarnContext(ctx, "no gateways configured (GATEWAYS): no health checks, recoveries or snapshots")
	}
	log.InfoContext(ctx, "recovery", "gateways", len(gws), "instance_id", s.InstanceID, "simulator", s.SimAdminURL != "",
		"window", s.Budget.Window.String(), "isapi_reboots", s.Budget.ISAPIReboots, "ec2_reboots", s.Budget.EC2Reboots,
		"replacements", s.Budget.Replacements, "snapshot_rpo", s.Snapshots.RPO.String())
	return r, nil
}
