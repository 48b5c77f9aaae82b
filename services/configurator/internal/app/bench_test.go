package app_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"mediagw/pkg/loginbudget"
	"mediagw/services/configurator/internal/app"
	"mediagw/testsupport/loginbudgettest"
)

// BenchmarkConfiguredRunOnFakes measures the run's own cost on a gateway
// that already has every setting (parameters, probe, login through the
// login budget in memory, four reads, plan), without HTTP: compare with BenchmarkConfiguredGatewayRun in
// adapters/isapi, which adds the ISAPI client and the simulator.
func BenchmarkConfiguredRunOnFakes(b *testing.B) {
	j := &journal{}
	budget := loginbudget.New(loginbudgettest.NewStore(), app.Component)
	gw := newFakeGateway(j, desiredPassword, budget)
	params := &fakeParams{j: j, params: seedParams()}
	conf := app.New(params, gw.dial, budget, app.Options{RetryInitial: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	req := app.Request{GatewayID: "gw-bench", Address: "127.0.0.1:80", ElasticIP: elasticIP}
	if _, fail := conf.Configure(b.Context(), req); fail != nil {
		b.Fatal(fail)
	}
	for b.Loop() {
		j.entries = j.entries[:0]
		if res, fail := conf.Configure(b.Context(), req); fail != nil || len(res.Changed) != 0 {
			b.Fatalf("%+v %v", res, fail)
		}
	}
}
