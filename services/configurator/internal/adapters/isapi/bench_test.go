package isapi_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"mediagw/services/configurator/internal/adapters/isapi"
	"mediagw/services/configurator/internal/app"
	"mediagw/services/configurator/internal/domain"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
)

// BenchmarkConfiguredGatewayRun measures the steady state: a run against a
// gateway that already has every setting (probe, login, four reads).
func BenchmarkConfiguredGatewayRun(b *testing.B) {
	sim := gatewaysimtest.Start(b, gatewaysimtest.WithConfig(func(c *gatewaysim.Config) {
		c.AdminPassword = desiredPassword
		c.RebootDowntime = 200 * time.Millisecond
	}))
	budget := isapi.NewMemBudget()
	dialer := isapi.Dialer{Timeout: 2 * time.Second, Budget: budget}
	conf := app.New(&memParams{params: domain.Parameters(seedParams())},
		dialer.Open, budget,
		app.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	req := app.Request{GatewayID: "gw-bench", Address: sim.HTTPAddr(), ElasticIP: elasticIP}
	if _, fail := conf.Configure(b.Context(), req); fail != nil {
		b.Fatal(fail)
	}
	sim.ResetCounters()
	b.ResetTimer()
	for b.Loop() {
		if res, fail := conf.Configure(b.Context(), req); fail != nil || len(res.Changed) != 0 {
			b.Fatalf("%+v %v", res, fail)
		}
	}
	b.StopTimer()
	n := 0
	for _, v := range sim.Counters().Requests {
		n += v
	}
	b.ReportMetric(float64(n)/float64(b.N), "requests/run")
}
