package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"mediagw/pkg/loginbudget"
	"mediagw/services/configurator/internal/domain"
)

// Logging in. Every login goes through the shared login budget
// (pkg/loginbudget, through the Gateway's gate): at most 2 failed or
// unanswered logins per gateway in 30 minutes across every component, and
// a password the gateway rejected is not tried again until its parameter
// has a new version. A login is identified by its credential, the
// parameter's name and version, never by the password.
//
// A run tries each candidate (the desired password, the bootstrap one)
// at most once, in this order: the credential the gateway accepted last
// if it is a candidate; else, when the gateway never accepted any, the
// bootstrap one (a gateway nobody logged in to is most likely factory-
// fresh, so provisioning costs no failed login); else the desired one. A
// candidate the budget refuses costs nothing and is skipped. When none is
// left the run fails at "login", not retryable, says why, and records the
// request as pending (domain.PendingConfiguration): Resumer runs it again
// as soon as the budget admits a candidate. A login without an answer is
// retryable (SQS delivers the event again) and counted by the budget,
// which bounds the retries.

// candidate is one password a run may log in with.
type candidate struct {
	name      string // "desired" or "bootstrap"; never the value
	password  domain.Secret
	cred      loginbudget.Credential
	bootstrap bool
}

// credentialOf is the login credential of a password parameter.
func credentialOf(p domain.Param, short string) loginbudget.Credential {
	name := p.Name
	if name == "" {
		name = short
	}
	return loginbudget.CredentialOf(name, p.Version)
}

// candidates are the passwords of d, the desired one first.
func candidates(d domain.Desired) []candidate {
	cands := []candidate{{name: "desired", password: d.Password, cred: credentialOf(d.PasswordParam, domain.ParamPassword)}}
	if !d.Bootstrap.IsZero() && !d.Bootstrap.Equal(d.Password) {
		cands = append(cands, candidate{name: "bootstrap", password: d.Bootstrap,
			cred: credentialOf(d.BootstrapParam, domain.ParamBootstrapPassword), bootstrap: true})
	}
	return cands
}

// order puts the candidate to try first first (see above).
func order(cands []candidate, accepted loginbudget.Credential) []candidate {
	first := slices.IndexFunc(cands, func(c candidate) bool { return c.cred == accepted })
	if first < 0 && accepted == "" {
		first = slices.IndexFunc(cands, func(c candidate) bool { return c.bootstrap })
	}
	if first > 0 {
		c := cands[first]
		cands = append([]candidate{c}, slices.Delete(slices.Clone(cands), first, first+1)...)
	}
	return cands
}

// loginOutcome is the metrics outcome of a login's error.
func loginOutcome(err error) string {
	if err == nil {
		return LoginAccepted
	}
	switch domain.KindOf(err) {
	case domain.KindRefused:
		return LoginRefused
	case domain.KindRejected:
		return LoginRejected
	case domain.KindLocked:
		return LoginLocked
	case domain.KindTransient:
		return LoginUnanswered
	}
	return LoginError
}

// try is what became of a candidate that did not get in.
type try struct {
	c        candidate
	refused  *loginbudget.RefusedError // nil: the gateway rejected it
	unsaid   bool                      // rejected with a 401 that said nothing of a lock
	heldBack int                       // >= 0: not tried, the gateway allows only this many more failures
}

// login finds a password the gateway accepts, within the login budget.
func (r *run) login(ctx context.Context, gw Gateway, d domain.Desired) (candidate, *domain.Failure) {
	cands := candidates(d)
	// An unauthenticated probe first: a gateway that does not answer or is
	// locked costs no login attempt.
	for {
		err := r.retry(ctx, "probe", gw.Probe)
		if err == nil {
			break
		}
		if domain.KindOf(err) == domain.KindLocked {
			if fail := r.waitForLock(ctx, cands, err); fail != nil {
				return candidate{}, fail
			}
			continue
		}
		return candidate{}, domain.Fail(domain.StepConnect, err)
	}

	ledger, err := r.c.budget.Ledger(ctx, r.req.GatewayID)
	if err != nil {
		return candidate{}, domain.Failf(domain.StepLogin, true, "no login tried: the login budget could not be read: %v", err)
	}
	cands = order(cands, ledger.Accepted)
	var tries []try
	for i := 0; i < len(cands); i++ {
		c := cands[i]
		err := gw.Login(ctx, c.password, c.cred)
		outcome := loginOutcome(err)
		r.c.opt.Metrics.LoginAttempt(c.name, outcome)
		log := r.log.With("password", c.name, "credential", string(c.cred))
		switch outcome {
		case LoginAccepted:
			log.Info("logged in")
			r.accepted = c.cred
			return c, nil
		case LoginRefused:
			var refused *loginbudget.RefusedError
			errors.As(err, &refused)
			log.Warn("login not attempted: the login budget refuses it", "reason", string(refused.Reason), "detail", refused.Refusal.String())
			tries = append(tries, try{c: c, refused: refused, heldBack: -1})
		case LoginRejected:
			left := -1
			var oe *domain.OpError
			if errors.As(err, &oe) {
				left = oe.AttemptsLeft
			}
			log.Warn("password rejected", "attempts_left", left)
			tries = append(tries, try{c: c, unsaid: left < 0, heldBack: -1})
			// The budget bounds mediagw's failed logins; the gateway's own
			// count has everyone's.
			if i+1 < len(cands) && left >= 0 && left < r.c.opt.MinAttemptsLeft {
				tries = append(tries, try{c: cands[i+1], heldBack: left})
				return candidate{}, r.noCredentials(ctx, cands, tries)
			}
		case LoginLocked:
			if fail := r.waitForLock(ctx, cands, err); fail != nil {
				return candidate{}, fail
			}
			// Once more with the same password, through the budget.
			i--
		case LoginUnanswered:
			// Not tried again within the run, nor the next candidate: the
			// gateway may have counted it, and may yet answer the next time.
			f := domain.Fail(domain.StepLogin, err)
			f.Reason = fmt.Sprintf("no answer to the login with the %s password (%s): %s; it counts as a failed login in the login budget, which bounds how often the event's redeliveries log in",
				c.name, c.cred, f.Reason)
			return candidate{}, f
		default:
			return candidate{}, domain.Fail(domain.StepLogin, err)
		}
	}
	return candidate{}, r.noCredentials(ctx, cands, tries)
}

// noCredentials is the failure of a run that has no password left to try.
func (r *run) noCredentials(ctx context.Context, cands []candidate, tries []try) *domain.Failure {
	var said []string
	unsaid, held := false, false
	for _, t := range tries {
		switch {
		case t.heldBack >= 0:
			held = true
			said = append(said, fmt.Sprintf("the %s password (%s) was not tried: the gateway allows only %d more failed logins before it locks (failed logins of others count there too)",
				t.c.name, t.c.cred, t.heldBack))
		case t.refused != nil:
			said = append(said, fmt.Sprintf("the %s password (%s) was not tried: %s", t.c.name, t.c.cred, t.refused.Refusal.String()))
		case t.unsaid:
			unsaid = true
			said = append(said, fmt.Sprintf("the gateway answered 401 to the %s password (%s) without lock fields: it rejected the password or is locked (this firmware does not say which)",
				t.c.name, t.c.cred))
		default:
			said = append(said, fmt.Sprintf("the gateway rejected the %s password (%s)", t.c.name, t.c.cred))
		}
	}
	if len(cands) == 1 {
		said = append(said, fmt.Sprintf("no bootstrap password is known (parameter %s or the event's bootstrap_password_parameter)", domain.ParamBootstrapPassword))
	}
	cr := r.credentials(ctx, cands)
	if held && cr.Reason != domain.CredentialsLocked {
		cr.Reason, cr.Until = domain.CredentialsBudget, r.c.now().Add(r.c.budget.Limits().Window)
		r.notBefore = cr.Until
	}
	reason := "no password to log in with: " + strings.Join(said, "; ") + ". " + r.whatToDo(ctx, cands, cr, unsaid)
	return &domain.Failure{Step: domain.StepLogin, Reason: reason, Credentials: cr,
		Err: fmt.Errorf("gateway %s: %w", r.req.GatewayID, domain.ErrNoCredentials)}
}

// credentials is what the login budget says now about the candidates: the
// gateway is locked, the budget is spent (logins possible at Until), or
// every candidate was rejected (only a new parameter version helps).
func (r *run) credentials(ctx context.Context, cands []candidate) *domain.CredentialsRejection {
	cr := &domain.CredentialsRejection{Reason: domain.CredentialsRejected, Credential: string(cands[0].cred)}
	var locked, spent *loginbudget.Refusal
	for _, c := range cands {
		if !c.bootstrap {
			cr.Credential = string(c.cred)
		}
		err := r.c.budget.Check(ctx, r.req.GatewayID, c.cred)
		var re *loginbudget.RefusedError
		if !errors.As(err, &re) {
			if err != nil {
				r.log.Warn("login budget: could not check a credential", "credential", string(c.cred), "err", err)
			}
			continue
		}
		cr.FailedLogins = max(cr.FailedLogins, re.Failures)
		switch re.Reason {
		case loginbudget.ReasonLocked:
			locked = &re.Refusal
		case loginbudget.ReasonBudgetSpent, loginbudget.ReasonBusy:
			if spent == nil || re.Until.Before(spent.Until) {
				spent = &re.Refusal
			}
		}
	}
	switch {
	case locked != nil:
		cr.Reason, cr.Until = domain.CredentialsLocked, locked.Until
	case spent != nil:
		cr.Reason, cr.Until = domain.CredentialsBudget, spent.Until
	}
	return cr
}

// whatToDo tells people how the run can go on.
func (r *run) whatToDo(ctx context.Context, cands []candidate, cr *domain.CredentialsRejection, unsaid bool) string {
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	var s string
	switch cr.Reason {
	case domain.CredentialsLocked:
		s = fmt.Sprintf("The gateway is locked until %s; the configurator service tries again by itself then.", at(cr.Until))
	case domain.CredentialsBudget:
		s = fmt.Sprintf("No login before %s; the configurator service tries again by itself then (a password the gateway rejected is tried again only in a new version of its parameter).", at(cr.Until))
	default:
		desired := loginbudget.Credential(cr.Credential)
		where := desired.Parameter()
		for _, c := range cands {
			if c.bootstrap {
				where += " (or the factory password into " + c.cred.Parameter() + ")"
			}
		}
		s = fmt.Sprintf("Put the gateway's current admin password into %s as a new version: ", where)
		// A new version is a new credential: would the budget admit one now?
		next := loginbudget.CredentialOf(desired.Parameter(), versionOf(desired)+1)
		var re *loginbudget.RefusedError
		if err := r.c.budget.Check(ctx, r.req.GatewayID, next); errors.As(err, &re) && !re.Until.IsZero() {
			s += fmt.Sprintf("the login budget allows its login from %s, and the configurator service tries it then.", at(re.Until))
		} else {
			s += "the configurator service tries it as soon as it sees it."
		}
	}
	if unsaid {
		s += fmt.Sprintf(" If a parameter does hold the gateway's password, the gateway was locked: put it again as a new version once the lock has ended (%s after the last failed login).",
			r.c.budget.Limits().Window)
	}
	return s
}

// versionOf is the version part of a credential (0 when there is none).
func versionOf(c loginbudget.Credential) int64 {
	var v int64
	_, _ = fmt.Sscan(strings.TrimPrefix(string(c), c.Parameter()+"@"), &v)
	return v
}

// waitForLock waits out a short lockout once per run; a long one, or a
// second one, fails the run: pending until the lock ends.
func (r *run) waitForLock(ctx context.Context, cands []candidate, err error) *domain.Failure {
	var left time.Duration
	var oe *domain.OpError
	if errors.As(err, &oe) {
		left = oe.LockRemaining
	}
	if !r.waited && left > 0 && r.c.opt.LockWaitMax >= 0 && left <= r.c.opt.LockWaitMax {
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
	fail := domain.Fail(domain.StepLogin, err)
	cr := r.credentials(ctx, cands)
	until := r.c.now().Add(r.c.budget.Limits().Window)
	if left > 0 {
		until = r.c.now().Add(left)
		fail.Reason = fmt.Sprintf("the gateway locks this client out after failed logins for %s more", left.Round(time.Second))
	} else {
		fail.Reason = fmt.Sprintf("the gateway locks this client out after failed logins and did not say for how long (taken as %s)", r.c.budget.Limits().Window)
	}
	fail.Reason += fmt.Sprintf("; the configurator service tries again by itself after %s", until.UTC().Format(time.RFC3339))
	if cr.Until.After(until) {
		until = cr.Until
	}
	cr.Reason, cr.Until = domain.CredentialsLocked, until
	// The budget may not know of the lock (a probe found it): held back
	// until it ends whatever the budget says.
	r.notBefore = until
	fail.Credentials = cr
	return fail
}

// keepPending records the request, so that the service runs it again as
// soon as the budget admits a candidate.
func (r *run) keepPending(ctx context.Context, prev domain.PendingConfiguration, fail *domain.Failure) {
	p := domain.PendingConfiguration{GatewayID: r.req.GatewayID, Address: r.req.Address, ElasticIP: r.req.ElasticIP,
		BootstrapParameter: r.req.BootstrapParameter, Since: r.c.now().UTC(), NotBefore: r.notBefore}
	if !prev.Since.IsZero() {
		p.Since = prev.Since
	}
	r.c.opt.Metrics.CredentialsRejected(r.req.GatewayID, true)
	if err := r.c.params.SetPendingConfiguration(ctx, p); err != nil {
		r.log.Error("could not record the pending configuration", "err", err)
		fail.Reason += fmt.Sprintf(" (The configuration could not be recorded as pending, so nothing resumes it: send the event again. %v)", err)
	}
}

// admits says whether the login budget would let a run of p log in now
// with one of its candidates, and why (no secrets).
func (c *Configurator) admits(ctx context.Context, p domain.PendingConfiguration) (bool, string, error) {
	params, err := c.params.Parameters(ctx, p.GatewayID, p.BootstrapParameter)
	if err != nil {
		return false, "", err
	}
	secrets := c.register(params)
	d, err := domain.DesiredFrom(params, p.ElasticIP, c.opt.User)
	if err != nil {
		return false, c.redact("the parameters are not usable: "+strings.ReplaceAll(err.Error(), "\n", "; "), secrets...), nil
	}
	var why []string
	for _, cand := range candidates(d) {
		err := c.budget.Check(ctx, p.GatewayID, cand.cred)
		if err == nil {
			return true, fmt.Sprintf("the login budget admits the %s password (%s)", cand.name, cand.cred), nil
		}
		var re *loginbudget.RefusedError
		if !errors.As(err, &re) {
			return false, "", err
		}
		why = append(why, fmt.Sprintf("%s (%s): %s", cand.name, cand.cred, re.Refusal.String()))
	}
	return false, strings.Join(why, "; "), nil
}
