package prometheus_test

import (
	"strings"
	"testing"
	"time"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"mediagw/services/configurator/internal/adapters/prometheus"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
)

func TestMetricsByLabel(t *testing.T) {
	reg := prom.NewRegistry()
	m := prometheus.NewMetrics(reg)
	m.RunFinished(app.ResultLocked, 2*time.Second)
	m.RunFinished(app.ResultConfigured, time.Second)
	m.RunFinished(app.ResultConfigured, time.Second)
	m.SettingChanged(domain.SettingName)
	m.RebootRequested()
	m.LoginAttempt("bootstrap", "accepted")
	m.LoginAttempt("desired", app.LoginRefused)
	m.CredentialsRejected("gw-1", true)
	m.CredentialsRejected("gw-2", true)
	m.CredentialsRejected("gw-2", false)
	for name, want := range map[string]int{
		"mediagw_configurator_runs_total": 2, "mediagw_configurator_run_duration_seconds": 2,
		"mediagw_configurator_settings_changed_total": 1, "mediagw_configurator_reboots_total": 1,
		"mediagw_configurator_login_attempts_total": 2, "mediagw_configurator_credentials_rejected": 1,
	} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != want {
			t.Errorf("%s: %d series, %v; want %d", name, n, err, want)
		}
	}
	want := `
# HELP mediagw_configurator_runs_total Configuration runs by result: configured, failed_retryable, failed_permanent, locked.
# TYPE mediagw_configurator_runs_total counter
mediagw_configurator_runs_total{result="configured"} 2
mediagw_configurator_runs_total{result="locked"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "mediagw_configurator_runs_total"); err != nil {
		t.Fatal(err)
	}
	rejected := `
# HELP mediagw_configurator_credentials_rejected 1 for each gateway whose configuration is pending because no password could be logged in with (the login budget refused or the gateway rejected every one); resumed when the budget admits one.
# TYPE mediagw_configurator_credentials_rejected gauge
mediagw_configurator_credentials_rejected{gateway_id="gw-1"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(rejected), "mediagw_configurator_credentials_rejected"); err != nil {
		t.Fatal(err)
	}

	// A nil *Metrics records nothing and does not panic.
	var none *prometheus.Metrics
	none.RunFinished(app.ResultConfigured, time.Second)
	none.SettingChanged(domain.SettingName)
	none.RebootRequested()
	none.LoginAttempt("desired", "rejected")
	none.CredentialsRejected("gw-1", true)
}
