// Package prometheus records the configurator's metrics (app.Metrics) in a
// Prometheus registry.
package prometheus

import (
	"time"

	prom "github.com/prometheus/client_golang/prometheus"

	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
)

var _ app.Metrics = (*Metrics)(nil)

// Metrics are the configurator's Prometheus metrics; a nil *Metrics records nothing.
type Metrics struct {
	runs     *prom.CounterVec
	changed  *prom.CounterVec
	reboots  prom.Counter
	logins   *prom.CounterVec
	duration *prom.HistogramVec
	rejected *prom.GaugeVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prom.Registerer) *Metrics {
	m := &Metrics{
		runs: prom.NewCounterVec(prom.CounterOpts{
			Name: "mediagw_configurator_runs_total",
			Help: "Configuration runs by result: configured, failed_retryable, failed_permanent, locked.",
		}, []string{"result"}),
		changed: prom.NewCounterVec(prom.CounterOpts{
			Name: "mediagw_configurator_settings_changed_total", Help: "Settings written to gateways, by setting.",
		}, []string{"setting"}),
		reboots: prom.NewCounter(prom.CounterOpts{
			Name: "mediagw_configurator_reboots_total", Help: "Gateway reboots asked for.",
		}),
		logins: prom.NewCounterVec(prom.CounterOpts{
			Name: "mediagw_configurator_login_attempts_total",
			Help: "Login attempts by password (desired, bootstrap) and outcome (accepted, rejected, locked, refused by the login budget: nothing sent, unanswered or another transient failure, error).",
		}, []string{"password", "outcome"}),
		duration: prom.NewHistogramVec(prom.HistogramOpts{
			Name: "mediagw_configurator_run_duration_seconds", Help: "Duration of configuration runs by result.",
			Buckets: prom.ExponentialBuckets(0.05, 2.5, 10),
		}, []string{"result"}),
		rejected: prom.NewGaugeVec(prom.GaugeOpts{
			Name: "mediagw_configurator_credentials_rejected",
			Help: "1 for each gateway whose configuration is pending because no password could be logged in with (the login budget refused or the gateway rejected every one); resumed when the budget admits one.",
		}, []string{"gateway_id"}),
	}
	reg.MustRegister(m.runs, m.changed, m.reboots, m.logins, m.duration, m.rejected)
	return m
}

// RunFinished counts a run and its duration by result (app.Result*).
func (m *Metrics) RunFinished(result string, took time.Duration) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(result).Inc()
	m.duration.WithLabelValues(result).Observe(took.Seconds())
}

// SettingChanged counts a setting written.
func (m *Metrics) SettingChanged(s domain.Setting) {
	if m != nil {
		m.changed.WithLabelValues(string(s)).Inc()
	}
}

// RebootRequested counts a reboot asked for.
func (m *Metrics) RebootRequested() {
	if m != nil {
		m.reboots.Inc()
	}
}

// LoginAttempt counts a login attempt by password and outcome.
func (m *Metrics) LoginAttempt(password, outcome string) {
	if m != nil {
		m.logins.WithLabelValues(password, outcome).Inc()
	}
}

// CredentialsRejected shows (1) or removes the gateway's pending
// credentials problem.
func (m *Metrics) CredentialsRejected(gatewayID string, rejected bool) {
	if m == nil {
		return
	}
	if rejected {
		m.rejected.WithLabelValues(gatewayID).Set(1)
	} else {
		m.rejected.DeleteLabelValues(gatewayID)
	}
}
