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
	"mediagw/pkg/loginbudget"
	"mediagw/pkg/redact"
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
	// tried only if the gateway says it allows at least this many more
	// failed logins (default 2). The login budget bounds mediagw's own
	// failed logins; this also counts those of others (people, other
	// systems), which only the gateway knows of.
	MinAttemptsLeft int
	Logger          *slog.Logger
	// Metrics records runs, changes, reboots and logins (nil: none).
	Metrics Metrics
	// Secrets, when set, is the process's registry of secrets
	// (service.Runtime.Secrets): every SecureString the run reads is
	// registered there, so the process's logs never show it, and failure
	// reasons pass through it.
	Secrets *redact.Secrets
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
	budget LoginBudget
	opt    Options
	now    func() time.Time
	locks  gatewayLocks
}

// New returns a Configurator. Its Gateways log in through budget's gate
// (the Dialer's business); budget is what the run itself asks.
func New(params ParameterStore, dial Dialer, budget LoginBudget, opt Options) *Configurator {
	opt.defaults()
	return &Configurator{params: params, dial: dial, budget: budget, opt: opt, now: opt.Now, locks: gatewayLocks{m: map[string]chan struct{}{}}}
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
		fail.Reason = c.redact(fail.Reason, r.secrets...)
		log.Warn("configuration failed", "step", fail.Step, "reason", fail.Reason, "retryable", fail.Retryable,
			"lock_remaining", fail.LockRemaining.String(), "changed", res.Changed, "took", res.Took.String())
	} else {
		log.Info("gateway configured", "changed", res.Changed, "rebooted", res.Rebooted, "took", res.Took.String())
	}
	c.opt.Metrics.RunFinished(ResultLabel(fail), res.Took)
	return res, fail
}

// redact is the choke point for texts that leave the run (failure
// reasons, which become events): the run's secrets and the process's.
func (c *Configurator) redact(text string, secrets ...domain.Secret) string {
	return c.opt.Secrets.String(domain.Redact(text, secrets...))
}

// register keeps the SecureStrings among params for redaction.
func (c *Configurator) register(params domain.Parameters) []domain.Secret {
	var out []domain.Secret
	for _, p := range params {
		if p.Secure {
			out = append(out, p.Value)
			c.opt.Secrets.Add(p.Value.Reveal())
		}
	}
	return out
}

// run is one configuration of one gateway.
type run struct {
	c       *Configurator
	req     Request
	log     *slog.Logger
	secrets []domain.Secret
	waited  bool // a lockout has been waited out already
	// accepted is the credential the gateway accepted last in this run.
	accepted loginbudget.Credential
	// notBefore holds a pending configuration back (see
	// domain.PendingConfiguration.NotBefore).
	notBefore time.Time
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
	r.secrets = r.c.register(params)
	d, err := domain.DesiredFrom(params, r.req.ElasticIP, r.c.opt.User)
	if err != nil {
		return res, domain.Failf(domain.StepParameters, false, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}

	gw, err := r.c.dial(r.req.GatewayID, base)
	if err != nil {
		return res, domain.Failf(StepRequest, false, "%v", err)
	}
	defer gw.Close()

	pending, hasPending := pendingOf(params)
	used, fail := r.login(ctx, gw, d)
	if fail != nil {
		if fail.Credentials != nil {
			r.keepPending(ctx, pending, fail)
		}
		return res, fail
	}
	r.c.opt.Metrics.CredentialsRejected(r.req.GatewayID, false)
	fail = r.loggedIn(ctx, gw, d, params, used, &res)
	if hasPending {
		if !pending.Retry {
			// The transition out of a credentials problem.
			res.CredentialsAccepted = string(r.accepted)
		}
		r.settlePending(ctx, pending, fail)
	}
	return res, fail
}

// loggedIn is the rest of the run once a password got in.
func (r *run) loggedIn(ctx context.Context, gw Gateway, d domain.Desired, params domain.Parameters, used candidate, res *domain.Result) *domain.Failure {
	if used.bootstrap {
		if fail := r.changePassword(ctx, gw, d); fail != nil {
			return fail
		}
		res.Changed = append(res.Changed, domain.SettingPassword)
		r.c.opt.Metrics.SettingChanged(domain.SettingPassword)
	}
	return r.configure(ctx, gw, d, params, res)
}

// pendingOf reads the gateway's pending configuration record, if any.
func pendingOf(params domain.Parameters) (domain.PendingConfiguration, bool) {
	v, ok := params[domain.ParamPendingConfiguration]
	if !ok {
		return domain.PendingConfiguration{}, false
	}
	// An unreadable record is replaced or deleted all the same.
	p, _ := domain.DecodePendingConfiguration(v.Value.Reveal())
	return p, true
}

// settlePending ends the pending configuration of a run that logged in:
// deleted when the run is done (configured, or failed for good: reported
// like an event's), kept for a retry when it failed for a reason that may
// pass (the resumer runs it again).
func (r *run) settlePending(ctx context.Context, p domain.PendingConfiguration, fail *domain.Failure) {
	if fail == nil || !fail.Retryable {
		if err := r.c.params.ClearPendingConfiguration(ctx, r.req.GatewayID); err != nil {
			r.log.Error("could not clear the pending configuration record", "err", err)
		}
		return
	}
	p.GatewayID, p.Address, p.ElasticIP, p.BootstrapParameter = r.req.GatewayID, r.req.Address, r.req.ElasticIP, r.req.BootstrapParameter
	p.NotBefore, p.Retry = time.Time{}, true
	if p.Since.IsZero() {
		p.Since = r.c.now().UTC()
	}
	if err := r.c.params.SetPendingConfiguration(ctx, p); err != nil {
		r.log.Error("could not keep the pending configuration for a retry", "err", err)
	}
}

// configure reads, plans, writes, reboots and verifies, logged in.
func (r *run) configure(ctx context.Context, gw Gateway, d domain.Desired, params domain.Parameters, res *domain.Result) *domain.Failure {
	cur, fail := r.readAll(ctx, gw)
	if fail != nil {
		return fail
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
			return domain.Fail(domain.StepParameters, err)
		}
	}
	rebootRequired := owed
	for _, step := range plan.Steps {
		needs, fail := r.apply(ctx, gw, plan.Target, step.Setting, cur)
		if fail != nil {
			return fail
		}
		rebootRequired = rebootRequired || needs
		res.Changed = append(res.Changed, step.Setting)
		r.c.opt.Metrics.SettingChanged(step.Setting)
	}
	if !plan.NeedsReboot() && !rebootRequired {
		return nil
	}
	if fail := r.reboot(ctx, gw); fail != nil {
		return fail
	}
	res.Rebooted = true

	// Settings must survive the reboot.
	after, fail := r.readAll(ctx, gw)
	if fail != nil {
		fail.Step = domain.StepVerify
		return fail
	}
	if again := domain.NewPlan(after, d, r.c.now()); !again.Empty() {
		var diffs []string
		for _, s := range again.Steps {
			diffs = append(diffs, again.Target.Mismatch(s.Setting, after))
		}
		return domain.Failf(domain.StepVerify, false, "after the reboot the gateway lost settings: %s", strings.Join(diffs, "; "))
	}
	if err := r.c.params.ClearPendingReboot(ctx, r.req.GatewayID); err != nil {
		// The gateway is configured; the next run reboots it once more.
		r.log.Error("could not clear the pending reboot record", "err", err)
	}
	return nil
}

// changePassword replaces the bootstrap password and proves the new one
// with a login of its own credential.
func (r *run) changePassword(ctx context.Context, gw Gateway, d domain.Desired) *domain.Failure {
	step := string(domain.SettingPassword)
	desired := credentialOf(d.PasswordParam, domain.ParamPassword)
	if err := gw.ChangePassword(ctx, d.Password); err != nil {
		f := domain.Fail(step, err)
		if f.Retryable {
			f.Reason += "; whether the gateway changed the password is unknown: the next run finds out with the login budget's leave (at most one failed login)"
		}
		return f
	}
	r.log.Info("admin password changed", "credential", string(desired))
	// The gateway has that value now: a rejection of it recorded before
	// (tried while the gateway still had the bootstrap password) no
	// longer holds, for this run's login and everyone else's.
	if err := r.c.budget.Forget(ctx, r.req.GatewayID, desired); err != nil {
		r.log.Warn("login budget: could not clear an earlier rejection of the new password", "credential", string(desired), "err", err)
	}
	if err := gw.Login(ctx, d.Password, desired); err != nil {
		f := domain.Fail(step, err)
		var refused *loginbudget.RefusedError
		switch {
		case domain.KindOf(err) == domain.KindRejected:
			f.Reason = fmt.Sprintf("the gateway reported the password change as done but refuses the new password (%s)", desired)
		case errors.As(err, &refused):
			f.Retryable = true
			f.Reason = fmt.Sprintf("the password was changed to %s, but the login budget did not allow the login that proves it: %s", desired, refused.Refusal.String())
		}
		r.c.opt.Metrics.LoginAttempt("desired", loginOutcome(err))
		return f
	}
	r.c.opt.Metrics.LoginAttempt("desired", LoginAccepted)
	r.accepted = desired
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
