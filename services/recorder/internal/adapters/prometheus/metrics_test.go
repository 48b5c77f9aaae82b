package prometheus

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// What the app records shows up under the README's names, with the
// gateway and device as constant labels.
func TestRecordsUnderTheDocumentedNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "gw", "dev")
	end := time.Unix(1700000000, 500e6)
	m.SegmentWritten("1", end)
	m.SegmentUploaded("1", 1000, 200*time.Millisecond, end)
	m.SegmentFailed("1", "missing")
	m.SegmentDropped("1")
	m.UploadFailed("1")
	m.Spool(3000, 3)
	m.FFmpegRestarted("1", "stalled")
	m.ChannelFailing("1", true)
	m.ClockDrift("1", 250*time.Millisecond)
	m.ReceivedBytes("1", func() uint64 { return 42 })

	for metric, want := range map[string]float64{
		"recorder_segments_written_total":                      1,
		"recorder_segments_uploaded_total":                     1,
		"recorder_uploaded_bytes_total":                        1000,
		"recorder_segments_failed_total":                       1,
		"recorder_segments_dropped_total":                      1,
		"recorder_upload_failures_total":                       1,
		"recorder_ffmpeg_restarts_total":                       1,
		"recorder_channel_failing":                             1,
		"recorder_clock_drift_seconds":                         0.25,
		"recorder_last_segment_end_timestamp_seconds":          1700000000.5,
		"recorder_last_uploaded_segment_end_timestamp_seconds": 1700000000.5,
		"recorder_rtsp_received_bytes_total":                   42,
	} {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, mf := range mfs {
			if mf.GetName() != metric {
				continue
			}
			found = true
			if n := len(mf.GetMetric()); n != 1 {
				t.Errorf("%s: %d series, want 1", metric, n)
				continue
			}
			s := mf.GetMetric()[0]
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["gateway"] != "gw" || labels["device"] != "dev" || labels["channel"] != "1" {
				t.Errorf("%s: labels %v", metric, labels)
			}
			got := s.GetGauge().GetValue()
			if strings.HasSuffix(metric, "_total") {
				got = s.GetCounter().GetValue()
			}
			if got != want {
				t.Errorf("%s = %v, want %v", metric, got, want)
			}
		}
		if !found {
			t.Errorf("%s not registered", metric)
		}
	}
	// Without a channel label.
	if b, n := testutil.ToFloat64(m.SpoolBytes), testutil.ToFloat64(m.SpoolSegments); b != 3000 || n != 3 {
		t.Errorf("spool %v bytes %v segments", b, n)
	}
	if h := testutil.CollectAndCount(m.UploadSeconds); h != 1 {
		t.Errorf("upload duration histogram: %d", h)
	}
}

// recorder_credentials_rejected is 1 for the reason logins stopped, 0 for
// the other reasons, and 0 for all once they resume.
func TestCredentialsRejectedByReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, "gw", "dev")
	m.CredentialsRejected("")
	if n := testutil.CollectAndCount(m.Credentials, "recorder_credentials_rejected"); n != 3 {
		t.Fatalf("%d series, want one per reason", n)
	}
	m.CredentialsRejected("credentials-rejected")
	want := map[string]float64{"credentials-rejected": 1, "budget-spent": 0, "locked": 0}
	for r, v := range want {
		if got := testutil.ToFloat64(m.Credentials.WithLabelValues(r)); got != v {
			t.Errorf("%s = %v, want %v", r, got, v)
		}
	}
	m.CredentialsRejected("")
	for r := range want {
		if got := testutil.ToFloat64(m.Credentials.WithLabelValues(r)); got != 0 {
			t.Errorf("after resuming %s = %v", r, got)
		}
	}
}
