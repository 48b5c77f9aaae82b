package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// List prices (us-east-1, on demand, as of 2026; check before relying on
// them): Fargate Linux/x86 per vCPU-hour and GB-hour; S3 Standard and
// Glacier Flexible Retrieval (the lifecycle rule's GLACIER class) per
// GB-month; PUT and lifecycle-transition requests per 1000.
const (
	priceVCPUHour      = 0.04048
	priceGBHour        = 0.004445
	priceStandardGBMo  = 0.023
	priceGlacierGBMo   = 0.0036
	pricePUTPer1000    = 0.005
	priceTransPer1000  = 0.03
	hoursPerMonth      = 730
	secondsPerMonth    = hoursPerMonth * 3600
	fargateMinVCPU     = 0.25
	fargateMinMemoryGB = 0.5
)

// taskSize is a Fargate task size.
type taskSize struct{ vcpu, memGB float64 }

// fargateSizes are the sizes a packed recorder task takes, smallest first.
var fargateSizes = []taskSize{{0.25, 0.5}, {0.5, 1}, {1, 2}, {2, 4}, {4, 8}}

// channelsPerVCPU is the task-manager's RECORDER_CHANNELS_PER_VCPU default.
const channelsPerVCPU = 100

// packedTask is the size the task-manager gives a task carrying cameras
// channels: the smallest Fargate size with channelsPerVCPU channels per
// vCPU and 256 MiB + 8 MiB per channel (services/task-manager's
// ecs.SizeFor; for up to 400 channels that memory is within each size's
// smallest, so the size is the CPU's).
func packedTask(cameras int) (taskSize, bool) {
	memGB := float64(256+8*cameras) / 1024
	for _, s := range fargateSizes {
		if float64(cameras) <= s.vcpu*channelsPerVCPU && memGB <= s.memGB {
			return s, true
		}
	}
	return taskSize{}, false
}

// use is the share of a task's CPU and memory that cameras take at the
// benchmark's figures.
func (s taskSize) use(cameras int, cpuPerStreamMin, mbPerStream, baseMB float64) (cpu, mem float64) {
	return float64(cameras) * cpuPerStreamMin / 60 / s.vcpu, (baseMB + float64(cameras)*mbPerStream) / 1024 / s.memGB
}

func (s taskSize) perMonth() float64 {
	return (s.vcpu*priceVCPUHour + s.memGB*priceGBHour) * hoursPerMonth
}

// storageCosts is what one camera-month of recording costs in S3 at a
// bitrate with segments of a length: the first glacierDays in Standard,
// then each further month in Glacier, and the requests (a PUT and a
// transition per segment).
type storageCosts struct {
	gb, standard, glacierPerMonth, puts, transitions float64
}

func storage(bitsPerSecond float64, segment time.Duration, glacierDays int) storageCosts {
	gb := bitsPerSecond / 8 * secondsPerMonth / 1e9
	segments := secondsPerMonth / segment.Seconds()
	days := math.Min(float64(glacierDays), 30.4) / 30.4
	return storageCosts{
		gb:              gb,
		standard:        gb * priceStandardGBMo * days,
		glacierPerMonth: gb * priceGlacierGBMo,
		puts:            segments / 1000 * pricePUTPer1000,
		transitions:     segments / 1000 * priceTransPer1000,
	}
}

// The deployed stack's defaults (deploy/cdk/stack/stack.go: the Segment
// and BucketTransition parameters), which the repository README's cost
// section assumes too; TestCostModelMatchesStackAndREADME keeps them in
// step. The local topology's bucket (pkg/topology, moto) says 30 days: that
// is not what AWS bills.
const (
	deployedSegment     = 30 * time.Second
	deployedGlacierDays = 7
)

// printCosts prints the cost per camera-month of both placements from the
// benchmark's figures, and the storage beside them.
func printCosts(cpuPerStreamMin, mbPerStream, baseMB float64, bitsPerSecond float64) {
	segment := deployedSegment
	if d, err := time.ParseDuration(os.Getenv("RECORDER_SEGMENT_LENGTH")); err == nil && d > 0 {
		segment = d
	}
	st := storage(bitsPerSecond, segment, deployedGlacierDays)
	perCamStorage := st.standard + st.puts + st.transitions
	fmt.Printf("\ncost per camera-month at list prices (us-east-1: Fargate $%.5f/vCPU-h + $%.6f/GB-h; S3 Standard $%.3f, Glacier Flexible Retrieval $%.4f per GB-month; PUT $%.3f, transition $%.2f per 1000)\n",
		priceVCPUHour, priceGBHour, priceStandardGBMo, priceGlacierGBMo, pricePUTPer1000, priceTransPer1000)
	fmt.Printf("storage at %.2f Mbit/s, %s segments, Glacier after %d days (the stack's Segment and BucketTransition defaults): %.0f GB per camera-month; S3 Standard $%.2f, PUTs $%.2f, transitions $%.2f = $%.2f; then Glacier $%.2f for every month kept (no expiry is configured)\n",
		bitsPerSecond/1e6, segment, deployedGlacierDays, st.gb, st.standard, st.puts, st.transitions, perCamStorage, st.glacierPerMonth)
	fmt.Printf("%-34s %-16s %12s %14s %16s %18s\n", "placement", "task size", "cameras/task", "compute $/cam", "+ storage $/cam", "CPU / memory used")
	row := func(name string, s taskSize, n int) {
		c := s.perMonth() / float64(n)
		cpu, mem := s.use(n, cpuPerStreamMin, mbPerStream, baseMB)
		fmt.Printf("%-34s %-16s %12d %14.2f %16.2f %10.0f %% / %2.0f %%\n", name, fmt.Sprintf("%.2g vCPU/%.2g GB", s.vcpu, s.memGB), n, c, c+perCamStorage, cpu*100, mem*100)
	}
	row("one task per camera (the design)", taskSize{fargateMinVCPU, fargateMinMemoryGB}, 1)
	for _, n := range []int{25, 50, 100, 200} {
		if s, ok := packedTask(n); ok {
			row(fmt.Sprintf("packed (%d channels per vCPU)", channelsPerVCPU), s, n)
		}
	}
}

func TestCostModel(t *testing.T) {
	// 0.25 vCPU / 0.5 GB for a month.
	if got := (taskSize{0.25, 0.5}).perMonth(); math.Abs(got-9.01) > 0.01 {
		t.Errorf("minimum task %.3f $/month", got)
	}
	// The task-manager's sizes: ≤25 channels 0.25 vCPU / 0.5 GB, ≤50 0.5 / 1,
	// ≤100 1 / 2, ≤200 2 / 4.
	for n, want := range map[int]taskSize{1: {0.25, 0.5}, 25: {0.25, 0.5}, 26: {0.5, 1}, 100: {1, 2}, 101: {2, 4}, 200: {2, 4}} {
		if s, ok := packedTask(n); !ok || s != want {
			t.Errorf("%d cameras: %+v %v, want %+v", n, s, ok, want)
		}
	}
	// 100 cameras at 0.18 CPU-s per stream-minute take 0.3 vCPU: 30 % of 1 vCPU.
	if cpu, mem := (taskSize{1, 2}).use(100, 0.18, 2, 10); math.Abs(cpu-0.3) > 1e-9 || math.Abs(mem-210.0/2048) > 1e-9 {
		t.Errorf("use %v %v", cpu, mem)
	}
	// 4 Mbit/s for 730 h is 1314 GB; 30 s segments are 87600 PUTs.
	st := storage(4e6, 30*time.Second, 30)
	if math.Abs(st.gb-1314) > 1 || math.Abs(st.puts-0.438) > 0.001 || math.Abs(st.transitions-2.628) > 0.001 {
		t.Errorf("storage %+v", st)
	}
}

// The benchmark's cost model and the figures people read agree: the
// stack's Segment and BucketTransition defaults are the ones assumed here,
// and the repository README's per-camera lines (2 Mbit/s, 30 s, 7 days)
// are what this model computes for them.
func TestCostModelMatchesStackAndREADME(t *testing.T) {
	stack, err := os.ReadFile("../../../../deploy/cdk/stack/stack.go")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"Segment": int(deployedSegment.Seconds()), "BucketTransition": deployedGlacierDays} {
		re := regexp.MustCompile(`b\.param\("` + name + `", awscdk\.CfnParameterProps\{[^}]*Default: jsii\.String\("(\d+)"\)`)
		m := re.FindSubmatch(stack)
		if m == nil || string(m[1]) != strconv.Itoa(want) {
			t.Errorf("stack parameter %s default %q, the cost model assumes %d", name, m, want)
		}
	}
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	st := storage(2e6, deployedSegment, deployedGlacierDays)
	for what, v := range map[string]float64{
		"recorder task": (taskSize{fargateMinVCPU, fargateMinMemoryGB}).perMonth(),
		"S3 Standard":   st.standard,
		"S3 PUTs":       st.puts,
		"transitions":   st.transitions,
		"Glacier/month": st.glacierPerMonth,
		"GB a month":    st.gb,
	} {
		fig := fmt.Sprintf("%.2f", v)
		if what == "GB a month" {
			fig = fmt.Sprintf("%.0f GB", v)
		}
		if !bytes.Contains(readme, []byte(fig)) {
			t.Errorf("README.md's cost section lacks %s %s (2 Mbit/s, %s segments, Glacier after %d days)", what, fig, deployedSegment, deployedGlacierDays)
		}
	}
}
