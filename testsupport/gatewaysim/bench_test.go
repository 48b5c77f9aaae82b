package gatewaysim_test

import (
	"context"
	"sync"
	"testing"

	"mediagw/pkg/isapi"
	"mediagw/testsupport/gatewaysim"
	"mediagw/testsupport/gatewaysim/gatewaysimtest"
)

// BenchmarkStartGateway64: starting and closing one gateway with 64 cameras.
func BenchmarkStartGateway64(b *testing.B) {
	for b.Loop() {
		s, err := gatewaysim.Start(context.Background(), gatewaysim.Config{
			HTTPAddr: "127.0.0.1:0", AdminUser: "admin", AdminPassword: "Bench-Pass1", Devices: 64,
		})
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
}

// BenchmarkFortyGatewaysListAll: 40 gateways × 64 cameras; one op lists
// every camera of every gateway (40 concurrent AllDevices calls).
func BenchmarkFortyGatewaysListAll(b *testing.B) {
	const gateways, cameras = 40, 64
	clients := make([]*isapi.Client, gateways)
	for i := range clients {
		sim := gatewaysimtest.Start(b, gatewaysimtest.WithDevices(cameras, 1))
		c, err := isapi.New(sim.URL(), gatewaysimtest.User, gatewaysimtest.Password)
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = c
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				devs, err := c.AllDevices(ctx)
				if err != nil || len(devs) != cameras {
					b.Errorf("AllDevices: %d devices, %v", len(devs), err)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(gateways*cameras)*float64(b.N)/b.Elapsed().Seconds(), "cameras/s")
}

// BenchmarkStatusRequest: one authenticated ISAPI round trip.
func BenchmarkStatusRequest(b *testing.B) {
	sim := gatewaysimtest.Start(b)
	c, err := isapi.New(sim.URL(), gatewaysimtest.User, gatewaysimtest.Password)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Status(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
