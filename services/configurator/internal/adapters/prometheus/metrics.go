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
			Help: "Login attempts by password (desired, bootstrap) and outcome (accepted, rejected, locked, error).",
		}, []string{"password", "outcome"}),
		duration: prom.NewHistogramVec(prom.HistogramOpts{
			Name: "mediagw_configurator_run_duration_seconds", Help: "Duration of configuration runs by result.",
			Buckets: prom.ExponentialBuckets(0.05, 2.5, 10),
		}, []string{"result"}),
	}
	reg.MustRegister(m.runs, m.changed, m.reboots, m.logins, m.duration)
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
