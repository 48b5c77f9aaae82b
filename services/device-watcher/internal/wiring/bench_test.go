package wiring_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	awssns "github.com/aws/aws-sdk-go-v2/service/sns"
	prom "github.com/prometheus/client_golang/prometheus"

	"mediagw/deploy/provision"
	"mediagw/pkg/gatewayid"
	"mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	lbddb "mediagw/pkg/loginbudget/dynamodb"
	"mediagw/pkg/messaging"
	"mediagw/pkg/topology"
	"mediagw/services/device-watcher/internal/adapters/dynamodb"
	isapiadapter "mediagw/services/device-watcher/internal/adapters/isapi"
	"mediagw/services/device-watcher/internal/adapters/prometheus"
	"mediagw/services/device-watcher/internal/app"
	"mediagw/services/device-watcher/internal/domain"
	"mediagw/testsupport/awstest"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
)

const (
	benchGateways = 40
	benchCameras  = 64 // one channel each: the most devices per channel count
)

type simPassword struct{}

func (simPassword) Password(context.Context, string, bool) (string, int64, error) {
	return gatewaysimtest.Password, 1, nil
}

func (simPassword) Version(context.Context, string) (int64, error) { return 1, nil }

func (simPassword) ParameterName(id string) string { return "/mediagw/gateways/" + id + "/Password" }

func (simPassword) BootstrapExists(context.Context, string) (bool, error) { return false, nil }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startSims(b *testing.B) []*gatewaysim.Server {
	sims := make([]*gatewaysim.Server, benchGateways)
	for i := range sims {
		sims[i] = gatewaysimtest.Start(b, gatewaysimtest.WithDevices(benchCameras, 1))
	}
	return sims
}

// BenchmarkPollCycle measures one poll cycle of the real watcher over 40
// simulated gateways × 64 camera channels, all in this process, after the
// initial cycle stored and announced every channel: CPU time per cycle
// (watcher and simulators together) and DynamoDB items written per cycle.
func BenchmarkPollCycle(b *testing.B) {
	ctx := context.Background()
	cfg := awstest.Config(b)
	ddb := awsddb.NewFromConfig(cfg)
	metrics := prometheus.NewMetrics(prom.NewRegistry())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	sims := startSims(b)

	// Each gateway gets its own tables: the emulator copies a whole table
	// for every transaction, which on one table of 2,560 rows takes minutes
	// to fill. The watcher's work per cycle is the same either way.
	sessions := make([]*app.Session, len(sims))
	stores := make([]*dynamodb.Store, len(sims))
	writes := func() int64 {
		var n int64
		for _, st := range stores {
			n += st.Writes()
		}
		return n
	}
	setupStart := time.Now()
	for i, sim := range sims {
		id := fmt.Sprintf("gw-%02d", i)
		res, err := provision.Apply(ctx, cfg, topology.Default(), provision.Options{Prefix: awstest.Name("dwb") + "-", Only: []string{"topics", "tables"}})
		if err != nil {
			b.Fatal(err)
		}
		env := res.Env()
		stores[i] = dynamodb.NewStore(ddb, dynamodb.Config{DeviceTable: env["DEVICE_MEDIA_URL_TABLE"], LeaseTable: env["LEASES_TABLE"]}, nil)
		leases := dynamodb.NewLeases(ddb, env["LEASES_TABLE"], "bench", time.Hour)
		pub := messaging.NewPublisher(awssns.NewFromConfig(cfg), messaging.PublisherConfig{Source: "device-watcher", Routes: topology.Default().Routes(map[string]string{
			"mediagw-device-events": env["DEVICE_EVENTS_TOPIC_ARN"], "mediagw-gateway-events": env["GATEWAY_EVENTS_TOPIC_ARN"],
		})})
		budget := loginbudget.New(lbddb.New(ddb, env["LOGIN_BUDGET_TABLE"]), app.Component)
		conn := isapiadapter.NewConn(id, sim.URL(), gatewaysimtest.User, simPassword{}, budget, isapiadapter.Options{OnError: metrics.GatewayError(id), Logger: log})
		w := app.New(app.Config{GatewayID: gatewayid.ID(id), PollInterval: time.Hour, OfflineHysteresis: 30 * time.Second,
			UnreachableAfter: 10 * time.Second, DetailsRefresh: time.Hour}, conn, stores[i], leases, pub, metrics, log)
		l, ok, err := leases.Acquire(ctx, domain.LeaseID(id))
		if err != nil || !ok {
			b.Fatalf("lease %s: %v %v", id, ok, err)
		}
		s, err := w.Open(ctx, l)
		if err != nil {
			b.Fatal(err)
		}
		sessions[i] = s
	}
	// The initial cycles: every channel stored and announced. Concurrent
	// transactions make the emulator answer 500 at times; the watcher
	// retries those on its next cycle, so cycle until nothing is written.
	for range 5 {
		before := writes()
		var wg sync.WaitGroup
		for _, s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.PollOnce(ctx); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		if writes() == before {
			break
		}
	}
	initialWrites := writes()
	if want := int64(2 * benchGateways * benchCameras); initialWrites != want {
		b.Fatalf("initial cycle wrote %d items, want %d (each channel stored, then its pending flag cleared)", initialWrites, want)
	}
	b.Logf("initial cycle (store and announce %d channels): %s, %d items written", benchGateways*benchCameras, time.Since(setupStart).Round(time.Millisecond), initialWrites)

	cycle := func() {
		var wg sync.WaitGroup
		for _, s := range sessions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.PollOnce(ctx); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	writes0, cpu0, n := writes(), cpuTime(), 0
	b.ResetTimer()
	for b.Loop() {
		cycle()
		n++
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(n), "cpu-ms/cycle")
	b.ReportMetric(float64(writes()-writes0)/float64(n), "ddb-writes/cycle")
	b.ReportMetric(float64(initialWrites), "ddb-writes-initial")
}

// BenchmarkBareDeviceList is the baseline for BenchmarkPollCycle: the same
// 40 simulators each answering one deviceList to a bare isapi client, the
// least any poll must cost (client and simulator CPU together).
func BenchmarkBareDeviceList(b *testing.B) {
	ctx := context.Background()
	sims := startSims(b)
	clients := make([]*isapi.Client, len(sims))
	for i, s := range sims {
		c, err := isapi.New(s.URL(), gatewaysimtest.User, gatewaysimtest.Password)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.AllDevices(ctx); err != nil {
			b.Fatal(err)
		}
		clients[i] = c
	}
	cpu0, n := cpuTime(), 0
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.AllDevices(ctx); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		n++
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(n), "cpu-ms/cycle")
}
