package ecs

import "testing"

func TestSizeForFollowsChannels(t *testing.T) {
	for _, c := range []struct {
		channels, perVCPU int
		want              Size
		ok                bool
	}{
		{1, 100, Size{256, 512}, true},     // one camera: the task definition's size today
		{25, 100, Size{256, 512}, true},    // a quarter vCPU carries 25
		{26, 100, Size{512, 1024}, true},   // one more needs half a vCPU
		{100, 100, Size{1024, 2048}, true}, // the benchmark: 1 vCPU / 2 GB for 100
		{101, 100, Size{2048, 4096}, true},
		{400, 100, Size{4096, 8192}, true},
		{40, 1000, Size{256, 1024}, true}, // memory decides: 256 + 40·8 MiB does not fit 512
		{1600, 100, Size{16384, 32768}, true},
		{1700, 100, Size{}, false},
		{10, 0, Size{}, false},
	} {
		got, ok := SizeFor(c.channels, c.perVCPU)
		if got != c.want || ok != c.ok {
			t.Errorf("SizeFor(%d, %d) = %v, %v; want %v, %v", c.channels, c.perVCPU, got, ok, c.want, c.ok)
		}
	}
}

func TestSizeForIsAlwaysAValidFargatePair(t *testing.T) {
	for n := 1; n <= 1600; n++ {
		s, ok := SizeFor(n, 100)
		if !ok {
			t.Fatalf("%d channels: no size", n)
		}
		valid := false
		for _, f := range fargateSizes {
			if s.CPU == f.cpu && s.MemoryMiB >= f.minMem && s.MemoryMiB <= f.maxMem && (s.MemoryMiB-f.minMem)%f.step == 0 && s.MemoryMiB != 1536 {
				valid = true
			}
		}
		if !valid || s.CPU*100 < n*1024 {
			t.Fatalf("%d channels: %v is not a valid Fargate size carrying them", n, s)
		}
	}
}
