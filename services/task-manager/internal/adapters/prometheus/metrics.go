// Package prometheus records the task-manager's own metrics (app.Metrics)
// in a Prometheus registry.
package prometheus

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
)

var _ app.Metrics = (*Metrics)(nil)

// Metrics are the task-manager's own Prometheus metrics.
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

// TaskStarted counts a launch.
func (m *Metrics) TaskStarted(launcher string) { m.startedC.WithLabelValues(launcher).Inc() }

// TaskStopped counts a stop on purpose.
func (m *Metrics) TaskStopped(launcher string) { m.stoppedC.WithLabelValues(launcher).Inc() }

// TaskFailed counts a task that ended on its own or did not start.
func (m *Metrics) TaskFailed(launcher string) { m.failuresC.WithLabelValues(launcher).Inc() }

// GaveUp counts a device given up on.
func (m *Metrics) GaveUp() { m.gaveUpC.Inc() }

// OrphanStopped counts a task stopped because no device claimed it.
func (m *Metrics) OrphanStopped() { m.orphansC.Inc() }

// WriteConflict counts a conditional write that lost a race.
func (m *Metrics) WriteConflict() { m.conflictsC.Inc() }

// Ignored counts an input that changed nothing.
func (m *Metrics) Ignored(reason string) { m.ignoredC.WithLabelValues(reason).Inc() }

// Reconciled counts a reconciliation run and observes its duration.
func (m *Metrics) Reconciled(took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.reconcilesC.WithLabelValues(result).Inc()
	m.reconcileTime.Observe(took.Seconds())
}

// Devices sets the devices gauge per status.
func (m *Metrics) Devices(byStatus map[domain.Status]int) {
	for s, n := range byStatus {
		m.devices.WithLabelValues(string(s)).Set(float64(n))
	}
}
