package manager

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mediagw/services/task-manager/internal/domain"
)

// Metrics are the task-manager's own Prometheus metrics; a nil *Metrics
// records nothing.
type Metrics struct {
	startedC, stoppedC, failuresC *prometheus.CounterVec
	gaveUpC, orphansC, conflictsC prometheus.Counter
	ignoredC                      *prometheus.CounterVec
	reconcilesC                   *prometheus.CounterVec
	reconcileTime                 prometheus.Histogram
	devices                       *prometheus.GaugeVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		startedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_taskmanager_tasks_started_total", Help: "Recording tasks launched."}, []string{"launcher"}),
		stoppedC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_taskmanager_tasks_stopped_total", Help: "Recording tasks stopped on purpose."}, []string{"launcher"}),
		failuresC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_taskmanager_task_failures_total", Help: "Recording tasks that ended on their own or did not start."}, []string{"launcher"}),
		gaveUpC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mediagw_taskmanager_gave_up_total", Help: "Times a device's task kept failing and was given up on (alerted)."}),
		orphansC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mediagw_taskmanager_orphans_stopped_total", Help: "Tasks stopped because no device claimed them."}),
		conflictsC: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mediagw_taskmanager_write_conflicts_total", Help: "Conditional writes of ip-camera rows that lost a race and were redone."}),
		ignoredC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_taskmanager_ignored_total", Help: "Inputs that changed nothing, by reason."}, []string{"reason"}),
		reconcilesC: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mediagw_taskmanager_reconciliations_total", Help: "Reconciliation runs by result."}, []string{"result"}),
		reconcileTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mediagw_taskmanager_reconcile_duration_seconds", Help: "Duration of a reconciliation run.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10)}),
		devices: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mediagw_taskmanager_devices", Help: "Devices in the ip-camera table by status, at the last reconciliation."}, []string{"status"}),
	}
	reg.MustRegister(m.startedC, m.stoppedC, m.failuresC, m.gaveUpC, m.orphansC, m.conflictsC, m.ignoredC, m.reconcilesC, m.reconcileTime, m.devices)
	return m
}

func (m *Metrics) started(l string) {
	if m != nil {
		m.startedC.WithLabelValues(l).Inc()
	}
}

func (m *Metrics) stopped(l string) {
	if m != nil {
		m.stoppedC.WithLabelValues(l).Inc()
	}
}

func (m *Metrics) failure(l string) {
	if m != nil {
		m.failuresC.WithLabelValues(l).Inc()
	}
}

func (m *Metrics) gaveUp() {
	if m != nil {
		m.gaveUpC.Inc()
	}
}

func (m *Metrics) orphan() {
	if m != nil {
		m.orphansC.Inc()
	}
}

func (m *Metrics) conflict() {
	if m != nil {
		m.conflictsC.Inc()
	}
}

func (m *Metrics) ignored(reason string) {
	if m != nil {
		m.ignoredC.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) reconciled(took time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reconcilesC.WithLabelValues(result).Inc()
	m.reconcileTime.Observe(took.Seconds())
}

func (m *Metrics) census(rows []domain.Device) {
	if m == nil {
		return
	}
	counts := map[domain.Status]int{}
	for _, s := range []domain.Status{domain.StatusIdle, domain.StatusStarting, domain.StatusRunning,
		domain.StatusStopping, domain.StatusBackoff, domain.StatusGaveUp} {
		counts[s] = 0
	}
	for _, d := range rows {
		counts[d.Status]++
	}
	for s, n := range counts {
		m.devices.WithLabelValues(string(s)).Set(float64(n))
	}
}
