package configurator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mediagw/services/configurator/internal/domain"
)

// Metrics are the configurator's Prometheus metrics; a nil *Metrics records nothing.
type Metrics struct {
	runs     *prometheus.CounterVec
	changed  *prometheus.CounterVec
	reboots  prometheus.Counter
	logins   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_configurator_runs_total",
			Help: "Configuration runs by result: configured, failed_retryable, failed_permanent, locked.",
		}, []string{"result"}),
		changed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_configurator_settings_changed_total", Help: "Settings written to gateways, by setting.",
		}, []string{"setting"}),
		reboots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mediagw_configurator_reboots_total", Help: "Gateway reboots asked for.",
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_configurator_login_attempts_total",
			Help: "Login attempts by password (desired, bootstrap) and outcome (accepted, rejected, locked, error).",
		}, []string{"password", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mediagw_configurator_run_duration_seconds", Help: "Duration of configuration runs by result.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 10),
		}, []string{"result"}),
	}
	reg.MustRegister(m.runs, m.changed, m.reboots, m.logins, m.duration)
	return m
}

func resultLabel(f *domain.Failure) string {
	switch {
	case f == nil:
		return "configured"
	case f.LockRemaining > 0 || domain.KindOf(f.Err) == domain.KindLocked:
		return "locked"
	case f.Retryable:
		return "failed_retryable"
	}
	return "failed_permanent"
}

func (m *Metrics) run(f *domain.Failure, took time.Duration) {
	if m == nil {
		return
	}
	l := resultLabel(f)
	m.runs.WithLabelValues(l).Inc()
	m.duration.WithLabelValues(l).Observe(took.Seconds())
}

func (m *Metrics) settingChanged(s domain.Setting) {
	if m != nil {
		m.changed.WithLabelValues(string(s)).Inc()
	}
}

func (m *Metrics) reboot() {
	if m != nil {
		m.reboots.Inc()
	}
}

func (m *Metrics) login(password, outcome string) {
	if m != nil {
		m.logins.WithLabelValues(password, outcome).Inc()
	}
}
