// Package prometheus records the health-sentinel's incident metrics
// (app.Metrics) in a Prometheus registry.
package prometheus

import (
	"github.com/prometheus/client_golang/prometheus"

	"mediagw/services/health-sentinel/internal/app"
)

var _ app.Metrics = (*Metrics)(nil)

// Metrics are the incident side's metrics.
type Metrics struct {
	mails, held, opened, resolved, ignored *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		mails: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediagw_sentinel_mails_sent_total",
			Help: "Alert mails published, by kind (opened, gave-up, resolved, digest)."}, []string{"kind"}),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediagw_sentinel_mails_held_total",
			Help: "Mails held back by the storm limit for the next digest, by kind."}, []string{"kind"}),
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediagw_sentinel_incidents_opened_total",
			Help: "Incidents opened, by kind of what broke."}, []string{"kind"}),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediagw_sentinel_incidents_resolved_total",
			Help: "Incidents resolved, by kind."}, []string{"kind"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mediagw_sentinel_signals_ignored_total",
			Help: "Signals that changed nothing (a redelivery), by reason."}, []string{"reason"}),
	}
	reg.MustRegister(m.mails, m.held, m.opened, m.resolved, m.ignored)
	return m
}

func (m *Metrics) MailSent(kind string)         { m.mails.WithLabelValues(kind).Inc() }
func (m *Metrics) MailHeld(kind string)         { m.held.WithLabelValues(kind).Inc() }
func (m *Metrics) IncidentOpened(kind string)   { m.opened.WithLabelValues(kind).Inc() }
func (m *Metrics) IncidentResolved(kind string) { m.resolved.WithLabelValues(kind).Inc() }
func (m *Metrics) SignalIgnored(reason string)  { m.ignored.WithLabelValues(reason).Inc() }
