package messaging

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the runtime's Prometheus metrics. One Metrics serves every
// publisher and consumer of a process; a nil *Metrics records nothing.
type Metrics struct {
	received     *prometheus.CounterVec
	handled      *prometheus.CounterVec
	failed       *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	age          *prometheus.HistogramVec
	publishedC   *prometheus.CounterVec
}

// NewMetrics registers the runtime's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	qt := []string{"queue", "event_type"}
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_messages_received_total", Help: "Messages received from SQS.",
		}, qt),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_messages_handled_total", Help: "Messages handled successfully and deleted.",
		}, qt),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_messages_failed_total", Help: "Handler failures (each attempt).",
		}, qt),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_messages_dead_lettered_total", Help: "Messages moved to the dead-letter queue.",
		}, append(qt, "reason")),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mediagw_handler_duration_seconds", Help: "Handler latency.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, qt),
		age: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mediagw_message_age_seconds", Help: "Time from send to receive.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"queue"}),
		publishedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_events_published_total", Help: "Events published to SNS.",
		}, []string{"event_type", "result"}),
	}
	reg.MustRegister(m.received, m.handled, m.failed, m.deadLettered, m.latency, m.age, m.publishedC)
	return m
}

func (m *Metrics) published(typ, result string) {
	if m != nil {
		m.publishedC.WithLabelValues(typ, result).Inc()
	}
}

func (m *Metrics) deadLetter(queue, typ, reason string) {
	if m != nil {
		m.deadLettered.WithLabelValues(queue, typ, reason).Inc()
	}
}
