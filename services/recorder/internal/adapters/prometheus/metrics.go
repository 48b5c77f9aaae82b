// Package prometheus records the recorder's metrics (app.Metrics) on a
// Prometheus registry.
package prometheus

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mediagw/pkg/loginbudget"
	"mediagw/services/recorder/internal/app"
)

var _ app.Metrics = (*Metrics)(nil)

// Metrics are registered on the registry given to New; nothing is global.
type Metrics struct {
	SegmentsWritten  *prometheus.CounterVec // channel
	SegmentsUploaded *prometheus.CounterVec // channel
	SegmentsFailed   *prometheus.CounterVec // channel, reason: segments lost other than by the spool bound
	SegmentsDropped  *prometheus.CounterVec // channel: deleted because the spool was full
	UploadFailures   *prometheus.CounterVec // channel: failed upload attempts (retried)
	UploadSeconds    prometheus.Histogram
	UploadedBytes    *prometheus.CounterVec // channel
	SpoolBytes       prometheus.Gauge
	SpoolSegments    prometheus.Gauge
	Restarts         *prometheus.CounterVec // channel, reason
	LastSegmentEnd   *prometheus.GaugeVec   // channel: unix time
	LastUploadedEnd  *prometheus.GaugeVec   // channel: unix time
	Failing          *prometheus.GaugeVec   // channel: 1 while the stream keeps failing
	Drift            *prometheus.GaugeVec   // channel: seconds
	// Credentials is 1 for the reason logins are stopped
	// (credentials-rejected, budget-spent, locked), 0 for the others.
	Credentials *prometheus.GaugeVec // reason: recorder_credentials_rejected

	reg prometheus.Registerer
}

// New registers the recorder's metrics. Gateway and device are constant
// labels: one recorder process records one device.
func New(reg prometheus.Registerer, gateway, device string) *Metrics {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"gateway": gateway, "device": device}, reg)
	ch := []string{"channel"}
	m := &Metrics{
		SegmentsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recorder_segments_written_total", Help: "Segments ffmpeg finished and the recorder spooled.",
		}, ch),
		SegmentsUploaded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recorder_segments_uploaded_total", Help: "Segments uploaded to S3.",
		}, ch),
		SegmentsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recorder_segments_failed_total", Help: "Segments lost for a reason other than the spool bound.",
		}, []string{"channel", "reason"}),
		SegmentsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recorder_segments_dropped_total", Help: "Spooled segments deleted unuploaded because the spool hit its bound.",
		}, ch),
		UploadFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recorder_upload_failures_total", Help: "Failed upload attempts (each is retried).",
		}, ch),
		UploadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "recorder_upload_duration_seconds", Help: "Time to upload one segment.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}),
		UploadedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recorder_uploaded_bytes_total", Help: "Bytes of segments uploaded.",
		}, ch),
		SpoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "recorder_spool_bytes", Help: "Bytes of segments waiting for upload.",
		}),
		SpoolSegments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "recorder_spool_segments", Help: "Segments waiting for upload.",
		}),
		Restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recorder_ffmpeg_restarts_total", Help: "ffmpeg runs that ended and were restarted, by why they ended.",
		}, []string{"channel", "reason"}),
		LastSegmentEnd: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "recorder_last_segment_end_timestamp_seconds", Help: "Wall-clock end of the last segment written.",
		}, ch),
		LastUploadedEnd: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "recorder_last_uploaded_segment_end_timestamp_seconds", Help: "Wall-clock end of the last segment uploaded.",
		}, ch),
		Failing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "recorder_channel_failing", Help: "1 while a channel's stream keeps failing (several unhealthy runs in a row).",
		}, ch),
		Drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "recorder_clock_drift_seconds", Help: "How much later than placed (beyond the pipeline latency) the last segment ended; the anchor moves beyond ±0.5 s.",
		}, ch),
		Credentials: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "recorder_credentials_rejected",
			Help: "1 while the recorder does not log in to the gateway, labelled with why: credentials-rejected (the gateway refused the password; until its parameter changes), budget-spent or locked (the shared login budget).",
		}, []string{"reason"}),
		reg: reg,
	}
	reg.MustRegister(m.SegmentsWritten, m.SegmentsUploaded, m.SegmentsFailed, m.SegmentsDropped, m.UploadFailures,
		m.UploadSeconds, m.UploadedBytes, m.SpoolBytes, m.SpoolSegments, m.Restarts, m.LastSegmentEnd,
		m.LastUploadedEnd, m.Failing, m.Drift, m.Credentials)
	return m
}

// ReceivedBytes registers a counter of RTSP bytes received for a channel,
// read from f on each scrape.
func (m *Metrics) ReceivedBytes(channel string, f func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "recorder_rtsp_received_bytes_total",
		Help:        "Media bytes received from the gateway.",
		ConstLabels: prometheus.Labels{"channel": channel},
	}, func() float64 { return float64(f()) }))
}

func (m *Metrics) SegmentWritten(ch string, end time.Time) {
	m.SegmentsWritten.WithLabelValues(ch).Inc()
	m.LastSegmentEnd.WithLabelValues(ch).Set(unixSeconds(end))
}

func (m *Metrics) SegmentUploaded(ch string, bytes int64, took time.Duration, end time.Time) {
	m.UploadSeconds.Observe(took.Seconds())
	m.SegmentsUploaded.WithLabelValues(ch).Inc()
	m.UploadedBytes.WithLabelValues(ch).Add(float64(bytes))
	m.LastUploadedEnd.WithLabelValues(ch).Set(unixSeconds(end))
}

func (m *Metrics) SegmentFailed(ch, reason string) {
	m.SegmentsFailed.WithLabelValues(ch, reason).Inc()
}
func (m *Metrics) SegmentDropped(ch string) { m.SegmentsDropped.WithLabelValues(ch).Inc() }
func (m *Metrics) UploadFailed(ch string)   { m.UploadFailures.WithLabelValues(ch).Inc() }

func (m *Metrics) Spool(bytes int64, segments int) {
	m.SpoolBytes.Set(float64(bytes))
	m.SpoolSegments.Set(float64(segments))
}

func (m *Metrics) FFmpegRestarted(ch, reason string) { m.Restarts.WithLabelValues(ch, reason).Inc() }

func (m *Metrics) ChannelFailing(ch string, failing bool) {
	v := 0.0
	if failing {
		v = 1
	}
	m.Failing.WithLabelValues(ch).Set(v)
}

// stopReasons are the reasons the login budget stops logins for
// (loginbudget.Reason; busy only ever waits).
var stopReasons = []string{string(loginbudget.ReasonRejected), string(loginbudget.ReasonBudgetSpent), string(loginbudget.ReasonLocked)}

// CredentialsRejected sets the reason logins are stopped for ("" none).
func (m *Metrics) CredentialsRejected(reason string) {
	for _, r := range stopReasons {
		v := 0.0
		if r == reason {
			v = 1
		}
		m.Credentials.WithLabelValues(r).Set(v)
	}
}

func (m *Metrics) ClockDrift(ch string, drift time.Duration) {
	m.Drift.WithLabelValues(ch).Set(drift.Seconds())
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1e3 }
