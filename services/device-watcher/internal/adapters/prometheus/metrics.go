// Package prometheus records the device-watcher's metrics (app.Metrics,
// and the gateway errors the isapi adapter reports) in Prometheus.
package prometheus

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mediagw/pkg/loginbudget"

	"mediagw/services/device-watcher/internal/app"
	"mediagw/services/device-watcher/internal/domain"
)

// Metrics are the device-watcher's Prometheus metrics, shared by the
// watchers of every gateway of a process (app.Metrics).
type Metrics struct {
	channels      *prometheus.GaugeVec
	reachable     *prometheus.GaugeVec
	credRejected  *prometheus.GaugeVec
	awaitConfig   *prometheus.GaugeVec
	logins        *prometheus.CounterVec
	loginsRefused *prometheus.CounterVec
	leaseHeld     *prometheus.GaugeVec
	latency       *prometheus.HistogramVec
	pollDuration  *prometheus.HistogramVec
	gatewayErrors *prometheus.CounterVec
	events        *prometheus.CounterVec
	storeErrors   *prometheus.CounterVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		channels: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mediagw_device_watcher_channels",
			Help: "Camera channels by announced state (suspect: online, seen offline within the hysteresis), per gateway watched here.",
		}, []string{"gateway", "state"}),
		reachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mediagw_device_watcher_gateway_reachable", Help: "1 when the gateway is announced reachable.",
		}, []string{"gateway"}),
		credRejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mediagw_device_watcher_gateway_credentials_rejected",
			Help: "1 when the gateway is announced credentials-rejected: no login is sent to it until its password parameter changes or the login budget allows a login.",
		}, []string{"gateway"}),
		awaitConfig: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mediagw_device_watcher_gateway_awaiting_configuration",
			Help: "1 while no login is sent to the gateway because it may still have its factory password (it has a BootstrapPassword parameter) and is not configured yet.",
		}, []string{"gateway"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_device_watcher_logins_total",
			Help: "Logins to the gateways admitted by the login budget, by result (accepted, rejected, locked, unanswered, not-sent).",
		}, []string{"gateway", "result"}),
		loginsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_device_watcher_logins_refused_total",
			Help: "Logins the login budget refused (nothing sent), by reason (credentials-rejected, budget-spent, locked).",
		}, []string{"gateway", "reason"}),
		leaseHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mediagw_device_watcher_lease_held", Help: "1 while this instance holds the gateway's lease and watches it.",
		}, []string{"gateway"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mediagw_device_watcher_detection_latency_seconds",
			Help:    "From the change at the gateway (its event time, else when observed; for offline, the end of the hysteresis) to the event published.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80},
		}, []string{"event_type", "source"}),
		pollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mediagw_device_watcher_poll_duration_seconds", Help: "Duration of one poll of a gateway (list, details, absences).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"gateway"}),
		gatewayErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_device_watcher_gateway_errors_total", Help: "Gateway errors and nonsense answers, by operation and kind.",
		}, []string{"gateway", "op", "kind"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_device_watcher_events_total", Help: "Events published, by type.",
		}, []string{"event_type"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_device_watcher_store_errors_total", Help: "Failed state writes and reads, by kind (conflict, lease_lost, error).",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.channels, m.reachable, m.credRejected, m.awaitConfig, m.logins, m.loginsRefused, m.leaseHeld, m.latency, m.pollDuration, m.gatewayErrors, m.events, m.storeErrors)
	return m
}

// GatewayError counts one gateway error; it fits isapi.Options.OnError.
func (m *Metrics) GatewayError(gatewayID string) func(op, kind string) {
	return func(op, kind string) { m.gatewayErrors.WithLabelValues(gatewayID, op, kind).Inc() }
}

// LeaseHeld sets the lease gauge; letting go of the lease drops the
// gateway's state gauges.
func (m *Metrics) LeaseHeld(gatewayID string, held bool) {
	if held {
		m.leaseHeld.WithLabelValues(gatewayID).Set(1)
		return
	}
	m.leaseHeld.WithLabelValues(gatewayID).Set(0)
	for _, s := range []string{"online", "suspect", "offline"} {
		m.channels.DeleteLabelValues(gatewayID, s)
	}
	m.reachable.DeleteLabelValues(gatewayID)
	m.credRejected.DeleteLabelValues(gatewayID)
	m.awaitConfig.DeleteLabelValues(gatewayID)
}

// StoreError counts a failed state write or read by kind.
func (m *Metrics) StoreError(kind string) { m.storeErrors.WithLabelValues(kind).Inc() }

// PollDuration records one poll.
func (m *Metrics) PollDuration(gatewayID string, d time.Duration) {
	m.pollDuration.WithLabelValues(gatewayID).Observe(d.Seconds())
}

// Published counts one announcement.
func (m *Metrics) Published(eventType string) { m.events.WithLabelValues(eventType).Inc() }

// DetectionLatency records the detection latency of one announcement.
func (m *Metrics) DetectionLatency(eventType, source string, d time.Duration) {
	m.latency.WithLabelValues(eventType, source).Observe(d.Seconds())
}

// State sets the gateway's channel, reachability and login gauges.
func (m *Metrics) State(gatewayID string, c domain.Counts, reachable, credentialsRejected, awaitingConfiguration bool) {
	m.channels.WithLabelValues(gatewayID, "online").Set(float64(c.Online))
	m.channels.WithLabelValues(gatewayID, "suspect").Set(float64(c.Suspect))
	m.channels.WithLabelValues(gatewayID, "offline").Set(float64(c.Offline))
	m.reachable.WithLabelValues(gatewayID).Set(gauge(reachable))
	m.credRejected.WithLabelValues(gatewayID).Set(gauge(credentialsRejected))
	m.awaitConfig.WithLabelValues(gatewayID).Set(gauge(awaitingConfiguration))
}

func gauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// LoginFinished counts a login the budget admitted by its result
// (loginbudget.Observer).
func (m *Metrics) LoginFinished(gatewayID string, r loginbudget.Result) {
	m.logins.WithLabelValues(gatewayID, string(r)).Inc()
}

// LoginRefused counts a login the budget refused (loginbudget.Observer).
func (m *Metrics) LoginRefused(gatewayID string, reason loginbudget.Reason) {
	m.loginsRefused.WithLabelValues(gatewayID, string(reason)).Inc()
}

var (
	_ app.Metrics          = (*Metrics)(nil)
	_ loginbudget.Observer = (*Metrics)(nil)
)
