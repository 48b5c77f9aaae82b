package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"mediagw/pkg/gatewayid"
	"mediagw/services/configurator/internal/domain"
)

// Request is one gateway to configure.
type Request struct {
	GatewayID string
	// Address is host:port (or a URL) of the gateway's HTTP API.
	Address string
	// ElasticIP, when set, is the external address of the port mappings.
	ElasticIP          string
	BootstrapParameter string
}

// Options tune a Configurator. Zero values take the defaults noted.
type Options struct {
	// User is the gateway's admin user (default "admin").
	User string
	// RetryInitial and RetryMaxElapsed shape the in-run retries of
	// transient failures (defaults 250 ms and 30 s).
	RetryInitial, RetryMaxElapsed time.Duration
	// RebootTimeout bounds the wait for the gateway after a reboot (default 5 min).
	RebootTimeout time.Duration
	// LockWaitMax: a lockout that ends within this is waited out, once per
	// run; a longer one fails the run at once (default 60 s; negative: never wait).
	LockWaitMax time.Duration
	// MinAttemptsLeft: after a rejected password, the next candidate is
	// tried only if the gateway allows at least this many more failed
	// logins (default 2), so the configurator never triggers the lock.
	MinAttemptsLeft int
	Logger          *slog.Logger
	// Metrics records runs, changes, reboots and logins (nil: none).
	Metrics Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.User == "" {
		o.User = "admin"
	}
	if o.RetryInitial <= 0 {
		o.RetryInitial = 250 * time.Millisecond
	}
	if o.RetryMaxElapsed <= 0 {
		o.RetryMaxElapsed = 30 * time.Second
	}
	if o.RebootTimeout <= 0 {
		o.RebootTimeout = 5 * time.Minute
	}
	if o.LockWaitMax == 0 {
		o.LockWaitMax = time.Minute
	}
	if o.MinAttemptsLeft <= 0 {
		o.MinAttemptsLeft = 2
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Configurator configures gateways, one run at a time per gateway.
type Configurator struct {
	params ParameterStore
	dial   Dialer
	opt    Options
	now    func() time.Time
	locks  gatewayLocks
}

// New returns a Configurator.
func New(params ParameterStore, dial Dialer, opt Options) *Configurator {
	opt.defaults()
	return &Configurator{params: params, dial: dial, opt: opt, now: opt.Now, locks: gatewayLocks{m: map[string]chan struct{}{}}}
}

// Configure brings one gateway to its desired settings. It returns the
// result, or the failure with its step and whether it is retryable; a
// failure's reason never contains a password.
func (c *Configurator) Configure(ctx context.Context, req Request) (domain.Result, *domain.Failure) {
	start := c.now()
	log := c.opt.Logger.With("gateway_id", req.GatewayID)
	r := &run{c: c, req: req, log: log}
	res, fail := r.do(ctx)
	res.Took = c.now().Sub(start)
	if fail != nil {
		fail.Reason = domain.Redact(fail.Reason, r.secrets...)
		log.Warn("configuration failed", "step", fail.Step, "reason", fail.Reason, "retryable", fail.Retryable,
			"lock_remaining", fail.LockRemaining.String(), "changed", res.Changed, "took", res.Took.String())
	} else {
		log.Info("gateway configured", "changed", res.Changed, "rebooted", res.Rebooted, "took", res.Took.String())
	}
	c.opt.Metrics.RunFinished(ResultLabel(fail), res.Took)
	return res, fail
}

// run is one configuration of one gateway.
type run struct {
	c       *Configurator
	req     Request
	log     *slog.Logger
	secrets []domain.Secret
	waited  bool // a lockout has been waited out already
}

const (
	// StepRequest is the failure step of an unusable request (event).
	StepRequest = "request"
)

func (r *run) do(ctx context.Context) (res domain.Result, _ *domain.Failure) {
	if _, err := gatewayid.Parse(r.req.GatewayID); err != nil {
		return res, domain.Failf(StepRequest, false, "%v", err)
	}
	base, err := domain.BaseURL(r.req.Address)
	if err != nil {
		return res, domain.Failf(StepRequest, false, "%v", err)
	}
	unlock, err := r.c.locks.lock(ctx, r.req.GatewayID)
	if err != nil {
		return res, domain.Fail(StepRequest, fmt.Errorf("waiting for another run on this gateway: %w", err))
	}
	defer unlock()
	r.log.Info("configuring gateway", "address", base)

	// Parameter store calls are not retried here: the AWS SDK retries
	// throttling, 5xx and lost connections itself (pkg/awsenv); what is
	// left fails the run, retryable when transient.
	params, err := r.c.params.Parameters(ctx, r.req.GatewayID, r.req.BootstrapParameter)
	if err != nil {
		return res, domain.Fail(domain.StepParameters, err)
	}
	for _, p := range params {
		if p.Secure {
			r.secrets = append(r.secrets, p.Value)
		}
	}
	d, err := domain.DesiredFrom(params, r.req.ElasticIP, r.c.opt.User)
	if err != nil {
		return res, domain.Failf(domain.StepParameters, false, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}

	gw, err := r.c.dial(base)
	if err != nil {
		return res, domain.Failf(StepRequest, false, "%v", err)
	}
	defer gw.Close()

	usedBootstrap, fail := r.login(ctx, gw, d)
	if fail != nil {
		return res, fail
	}
	if usedBootstrap {
		if fail := r.changePassword(ctx, gw, d); fail != nil {
			return res, fail
		}
		res.Changed = append(res.Changed, domain.SettingPassword)
		r.c.opt.Metrics.SettingChanged(domain.SettingPassword)
	}

	cur, fail := r.readAll(ctx, gw)
	if fail != nil {
		return res, fail
	}
	plan := domain.NewPlan(cur, d, r.c.now())
	_, owed := params[domain.ParamPendingReboot]
	if owed {
		r.log.Warn("a reboot is owed by an earlier run that did not finish it")
	} else if plan.NeedsReboot() {
		// Recorded before the first write that needs the reboot: settings
		// that read as desired but are not in effect look done otherwise.
		note := fmt.Sprintf("%s: %d changes wait for a reboot", r.c.now().UTC().Format(time.RFC3339), len(plan.Steps))
		if err := r.c.params.SetPendingReboot(ctx, r.req.GatewayID, note); err != nil {
			return res, domain.Fail(domain.StepParameters, err)
		}
	}
	rebootRequired := owed
	for _, step := range plan.Steps {
		needs, fail := r.apply(ctx, gw, plan.Target, step.Setting, cur)
		if fail != nil {
			return res, fail
		}
		rebootRequired = rebootRequired || needs
		res.Changed = append(res.Changed, step.Setting)
		r.c.opt.Metrics.SettingChanged(step.Setting)
	}
	if !plan.NeedsReboot() && !rebootRequired {
		return res, nil
	}
	if fail := r.reboot(ctx, gw); fail != nil {
		return res, fail
	}
	res.Rebooted = true

	// Settings must survive the reboot.
	after, fail := r.readAll(ctx, gw)
	if fail != nil {
		fail.Step = domain.StepVerify
		return res, fail
	}
	if again := domain.NewPlan(after, d, r.c.now()); !again.Empty() {
		var diffs []string
		for _, s := range again.Steps {
			diffs = append(diffs, again.Target.Mismatch(s.Setting, after))
		}
		return res, domain.Failf(domain.StepVerify, false, "after the reboot the gateway lost settings: %s", strings.Join(diffs, "; "))
	}
	if err := r.c.params.ClearPendingReboot(ctx, r.req.GatewayID); err != nil {
		// The gateway is configured; the next run reboots it once more.
		r.log.Error("could not clear the pending reboot record", "err", err)
	}
	return res, nil
}

type candidate struct {
	name      string // "desired" or "bootstrap"; never the value
	password  domain.Secret
	bootstrap bool
}

// login finds the password the gateway has, with at most one login attempt
// per candidate: the desired password first (a configured gateway, or a
// run that changed the password and crashed before reporting it), then the
// bootstrap one. It reports whether the bootstrap password was the one.
func (r *run) login(ctx context.Context, gw Gateway, d domain.Desired) (bool, *domain.Failure) {
	// An unauthenticated probe first: a gateway that does not answer or is
	// locked costs no login attempt.
	for {
		err := r.retry(ctx, "probe", gw.Probe)
		if err == nil {
			break
		}
		if domain.KindOf(err) == domain.KindLocked {
			if fail := r.waitForLock(ctx, err); fail != nil {
				return false, fail
			}
			continue
		}
		return false, domain.Fail(domain.StepConnect, err)
	}

	cands := []candidate{{name: "desired", password: d.Password}}
	if !d.Bootstrap.IsZero() && !d.Bootstrap.Equal(d.Password) {
		cands = append(cands, candidate{name: "bootstrap", password: d.Bootstrap, bootstrap: true})
	}
	for i := 0; i < len(cands); i++ {
		c := cands[i]
		err := gw.Login(ctx, c.password)
		if err == nil {
			r.c.opt.Metrics.LoginAttempt(c.name, "accepted")
			r.log.Info("logged in", "password", c.name)
			return c.bootstrap, nil
		}
		var oe *domain.OpError
		switch domain.KindOf(err) {
		case domain.KindRejected:
			r.c.opt.Metrics.LoginAttempt(c.name, "rejected")
			left := -1
			if errors.As(err, &oe) {
				left = oe.AttemptsLeft
			}
			r.log.Warn("password rejected", "password", c.name, "attempts_left", left)
			if i+1 < len(cands) && left >= 0 && left < r.c.opt.MinAttemptsLeft {
				return false, domain.Failf(domain.StepLogin, false,
					"the gateway rejected the %s password and allows only %d more failed logins before it locks; the %s password was not tried",
					c.name, left, cands[i+1].name)
			}
		case domain.KindLocked:
			r.c.opt.Metrics.LoginAttempt(c.name, "locked")
			if fail := r.waitForLock(ctx, err); fail != nil {
				return false, fail
			}
			// Once more with the same password: if it was the one that
			// triggered the lock, the client refuses it without a request.
			i--
		default:
			r.c.opt.Metrics.LoginAttempt(c.name, "error")
			// No in-run retry: a login that got no answer may have counted
			// as a failed one.
			return false, domain.Fail(domain.StepLogin, err)
		}
	}
	if len(cands) == 1 {
		return false, domain.Failf(domain.StepLogin, false,
			"the gateway rejected the desired password and no bootstrap password is known (parameter %s or the event's bootstrap_password_parameter)",
			domain.ParamBootstrapPassword)
	}
	return false, domain.Failf(domain.StepLogin, false, "the gateway rejected both the desired and the bootstrap password")
}

// waitForLock waits out a short lockout once per run; a long one, or a
// second one, fails the run with the time left.
func (r *run) waitForLock(ctx context.Context, err error) *domain.Failure {
	fail := domain.Fail(domain.StepLogin, err)
	left := fail.LockRemaining
	if left > 0 {
		fail.Reason = fmt.Sprintf("the gateway locks this client out after failed logins for %s more; not retried by the configurator: send the event again after the lock ends", left.Round(time.Second))
	} else {
		fail.Reason = "the gateway locks this client out after failed logins and did not say for how long; not retried by the configurator"
	}
	if r.waited || left <= 0 || r.c.opt.LockWaitMax < 0 || left > r.c.opt.LockWaitMax {
		return fail
	}
	r.waited = true
	r.log.Warn("gateway locked; waiting for the lock to end", "lock_remaining", left.String())
	t := time.NewTimer(left + 500*time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return domain.Fail(domain.StepLogin, fmt.Errorf("waiting for the lockout to end: %w", ctx.Err()))
	}
}

// changePassword replaces the bootstrap password and proves the new one.
func (r *run) changePassword(ctx context.Context, gw Gateway, d domain.Desired) *domain.Failure {
	step := string(domain.SettingPassword)
	if err := gw.ChangePassword(ctx, d.Password); err != nil {
		f := domain.Fail(step, err)
		if f.Retryable {
			f.Reason += "; whether the gateway changed the password is unknown: the next run tries the desired password first"
		}
		return f
	}
	r.log.Info("admin password changed")
	if err := gw.Login(ctx, d.Password); err != nil {
		f := domain.Fail(step, err)
		if domain.KindOf(err) == domain.KindRejected {
			f.Reason = "the gateway reported the password change as done but refuses the new password"
		}
		return f
	}
	return nil
}

func (r *run) readAll(ctx context.Context, gw Gateway) (domain.Current, *domain.Failure) {
	var cur domain.Current
	for _, s := range domain.ReadableSettings {
		if err := r.retry(ctx, "read "+string(s), func(ctx context.Context) error { return gw.Read(ctx, s, &cur) }); err != nil {
			return cur, r.failAfterLogin(string(s), err)
		}
	}
	return cur, nil
}

// failAfterLogin: once logged in, a 401 means the password changed under
// the run (an operator), which retrying does not cure.
func (r *run) failAfterLogin(step string, err error) *domain.Failure {
	f := domain.Fail(step, err)
	if domain.KindOf(err) == domain.KindRejected {
		f.Reason = "the gateway stopped accepting the password during the run: " + f.Reason
	}
	return f
}

// apply writes one setting and verifies it by reading it back.
func (r *run) apply(ctx context.Context, gw Gateway, t domain.Target, s domain.Setting, cur domain.Current) (bool, *domain.Failure) {
	r.log.Info("changing setting", "setting", string(s), "from", cur.Describe(s))
	var needsReboot bool
	err := r.retry(ctx, "write "+string(s), func(ctx context.Context) error {
		var err error
		needsReboot, err = gw.Write(ctx, s, t)
		return err
	})
	if err != nil {
		return false, r.failAfterLogin(string(s), err)
	}
	var back domain.Current
	if err := r.retry(ctx, "read back "+string(s), func(ctx context.Context) error { return gw.Read(ctx, s, &back) }); err != nil {
		return false, r.failAfterLogin(string(s), err)
	}
	if m := t.Mismatch(s, back); m != "" {
		return false, domain.Failf(string(s), false, "the gateway accepted the change but reads back differently: %s", m)
	}
	return needsReboot, nil
}

// reboot restarts the gateway and waits until it answers again with its
// uptime reset.
func (r *run) reboot(ctx context.Context, gw Gateway) *domain.Failure {
	var before time.Duration
	if err := r.retry(ctx, "read uptime", func(ctx context.Context) error {
		var err error
		before, err = gw.Uptime(ctx)
		return err
	}); err != nil {
		return r.failAfterLogin(domain.StepReboot, err)
	}
	sent := r.c.now()
	r.log.Info("rebooting gateway", "uptime", before.String())
	rebootErr := r.retry(ctx, "reboot", gw.Reboot)
	if rebootErr != nil {
		if domain.KindOf(rebootErr) != domain.KindTransient {
			return r.failAfterLogin(domain.StepReboot, rebootErr)
		}
		// The answer may be lost because the gateway is already going
		// down; the uptime below tells.
		r.log.Warn("the reboot request failed; checking whether the gateway reboots anyway", "err", rebootErr)
	}
	r.c.opt.Metrics.RebootRequested()

	wctx, cancel := context.WithTimeout(ctx, r.c.opt.RebootTimeout)
	defer cancel()
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = min(r.c.opt.RetryInitial, 200*time.Millisecond)
	bo.MaxInterval = 5 * time.Second
	bo.MaxElapsedTime = 0
	bo.Reset()
	sawDown := false
	var last error
	for {
		err := gw.Probe(wctx)
		switch {
		case err == nil:
			up, uerr := gw.Uptime(wctx)
			if uerr == nil {
				// Rebooted when it was seen down, or when the uptime is
				// clearly below what the old boot would report now.
				if sawDown || up+time.Second < before+r.c.now().Sub(sent) {
					r.log.Info("gateway back after reboot", "uptime", up.String(), "after", r.c.now().Sub(sent).Round(time.Millisecond).String())
					return nil
				}
				if rebootErr != nil {
					// It answers, from the old boot: the request did fail.
					return domain.Fail(domain.StepReboot, rebootErr)
				}
				last = fmt.Errorf("still up since before the reboot (uptime %s)", up)
			} else {
				if k := domain.KindOf(uerr); k != domain.KindTransient {
					return r.failAfterLogin(domain.StepReboot, uerr)
				}
				last = uerr
			}
		case domain.KindOf(err) == domain.KindLocked:
			return domain.Fail(domain.StepReboot, err)
		default:
			sawDown, last = true, err
		}
		select {
		case <-time.After(bo.NextBackOff()):
		case <-wctx.Done():
			if ctx.Err() != nil {
				return domain.Fail(domain.StepReboot, ctx.Err())
			}
			return domain.Failf(domain.StepReboot, true, "the gateway did not come back within %s of the reboot (last: %v)", r.c.opt.RebootTimeout, last)
		}
	}
}

// retry runs op until it succeeds, fails for a reason that is not
// transient, or the in-run retry budget is spent.
func (r *run) retry(ctx context.Context, what string, op func(context.Context) error) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = r.c.opt.RetryInitial
	bo.MaxInterval = max(r.c.opt.RetryInitial, 5*time.Second)
	bo.MaxElapsedTime = r.c.opt.RetryMaxElapsed
	attempts := 0
	err := backoff.RetryNotify(func() error {
		attempts++
		err := op(ctx)
		if err != nil && domain.KindOf(err) != domain.KindTransient {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(bo, ctx), func(err error, next time.Duration) {
		r.log.Warn("transient failure; retrying", "what", what, "attempt", attempts, "retry_in", next.Round(time.Millisecond).String(), "err", err)
	})
	if err != nil && attempts > 1 && domain.KindOf(err) == domain.KindTransient {
		return fmt.Errorf("%w (gave up after %d attempts)", err, attempts)
	}
	return err
}

// gatewayLocks serialises runs per gateway within the process: two runs
// racing on one gateway would each spend login attempts and could see the
// other's password change as a rejected password.
type gatewayLocks struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func (l *gatewayLocks) lock(ctx context.Context, id string) (func(), error) {
	for {
		l.mu.Lock()
		busy, taken := l.m[id]
		if !taken {
			done := make(chan struct{})
			l.m[id] = done
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.m, id)
				l.mu.Unlock()
				close(done)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
