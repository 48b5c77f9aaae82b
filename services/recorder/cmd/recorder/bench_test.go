package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mediagw/services/recorder/internal/testsim"
	"mediagw/testsupport/testkit"
)

// BenchmarkCPUPerStreamMinute compares, on the same simulated streams in
// the same run, the recorder (one process recording BENCH_STREAMS channels:
// proxy, supervision, spool and S3 upload, plus its ffmpeg children) with
// bare `ffmpeg -rtsp_transport tcp -i URL -c copy -f segment` per stream.
// It prints a table and reports CPU seconds per stream-minute. Run:
//
//	go test -run '^$' -bench CPUPerStreamMinute -benchtime 1x ./cmd/recorder
//
// BENCH_STREAMS (default 4) and BENCH_SECONDS (default 60) adjust it.
func BenchmarkCPUPerStreamMinute(b *testing.B) {
	streams := envInt("BENCH_STREAMS", 4)
	seconds := envInt("BENCH_SECONDS", 60)
	for i := 0; i < b.N; i++ {
		runCPUBench(b, streams, time.Duration(seconds)*time.Second)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func runCPUBench(b *testing.B, streams int, measure time.Duration) {
	sim := testsim.Start(b)
	e := newEnv(b, sim)
	var chans []string
	for i := 1; i <= streams; i++ {
		chans = append(chans, fmt.Sprintf("%d=%s", i, sim.URL(fmt.Sprintf("%s-r%d", e.device, i))))
	}
	rec := e.start("RECORDER_CHANNELS="+strings.Join(chans, ","), "RECORDER_SEGMENT_LENGTH=30s", "LOG_LEVEL=info")

	bareDir := b.TempDir()
	var bare []*exec.Cmd
	for i := 1; i <= streams; i++ {
		u := strings.Replace(sim.URL(fmt.Sprintf("%s-b%d", e.device, i)), "rtsp://", "rtsp://"+testsim.User+":"+testsim.Password+"@", 1)
		cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-timeout", "5000000",
			"-i", u, "-map", "0:v:0", "-c", "copy", "-f", "segment", "-segment_time", "30", "-segment_format", "mpegts",
			filepath.Join(bareDir, fmt.Sprintf("b%d_%%06d.ts", i)))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		bare = append(bare, cmd)
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}

	testkit.Eventually(b, 30*time.Second, 100*time.Millisecond, "the recorder's ffmpeg per stream", func() bool {
		return len(testsim.FFmpegChildren(rec.cmd.Process.Pid)) == streams
	})
	// Measurement pacing, not synchronisation: let start-up (probing costs
	// about half a CPU-second per start) pass before the CPU counters are
	// read.
	time.Sleep(10 * time.Second)
	kids := testsim.FFmpegChildren(rec.cmd.Process.Pid)
	if len(kids) != streams {
		b.Fatalf("recorder runs %d ffmpeg, want %d", len(kids), streams)
	}
	recSelf0, recKids0 := cpu(b, rec.cmd.Process.Pid, true), sumCPU(b, kids)
	var barePids []int
	for _, c := range bare {
		barePids = append(barePids, c.Process.Pid)
	}
	bare0 := sumCPU(b, barePids)
	b.ResetTimer()
	time.Sleep(measure) // measurement pacing: the window the CPU time is taken over
	b.StopTimer()
	if k := testsim.FFmpegChildren(rec.cmd.Process.Pid); len(k) != streams || k[0] != kids[0] {
		b.Fatalf("the recorder's ffmpeg restarted during the measurement")
	}
	recSelf := cpu(b, rec.cmd.Process.Pid, true) - recSelf0
	recKids := sumCPU(b, kids) - recKids0
	bareCPU := sumCPU(b, barePids) - bare0
	recMem, kidsMem, bareMem := privateMB(rec.cmd.Process.Pid), 0.0, 0.0
	for _, k := range kids {
		kidsMem += privateMB(k)
	}
	for _, p := range barePids {
		bareMem += privateMB(p)
	}
	received := metricValue(b, rec, "recorder_rtsp_received_bytes_total")
	rec.cmd.Process.Signal(syscall.SIGTERM)
	<-rec.done

	minutes := measure.Minutes() * float64(streams)
	perMin := func(s float64) float64 { return s / minutes }
	total := recSelf + recKids
	fmt.Printf("\n%d streams of the simulator (1280x720 H.264, 25 fps, 2 s GOP, %.1f Mbit/s measured), %s measured, 30 s segments\n",
		streams, received*8/1e6/(measure.Seconds()+10)/float64(streams), measure)
	fmt.Printf("%-34s %22s %20s\n", "", "CPU-s per stream-min", "private MB/stream")
	fmt.Printf("%-34s %22.3f %20.1f\n", "recorder: Go process (proxy, S3)", perMin(recSelf), recMem/float64(streams))
	fmt.Printf("%-34s %22.3f %20.1f\n", "recorder: its ffmpeg children", perMin(recKids), kidsMem/float64(streams))
	fmt.Printf("%-34s %22.3f %20.1f\n", "recorder total", perMin(total), (recMem+kidsMem)/float64(streams))
	fmt.Printf("%-34s %22.3f %20.1f\n", "bare ffmpeg -c copy -f segment", perMin(bareCPU), bareMem/float64(streams))
	fmt.Printf("ratio recorder/bare: %.2f   streams per core: recorder %.0f, bare %.0f\n\n",
		total/bareCPU, 60/perMin(total), 60/perMin(bareCPU))
	b.ReportMetric(perMin(total), "rec-cpu-s/stream-min")
	b.ReportMetric(perMin(bareCPU), "bare-cpu-s/stream-min")
	b.ReportMetric(total/bareCPU, "ratio")
}

// cpu is a process's user+system seconds (with reaped children if asked).
func cpu(tb testing.TB, pid int, withReaped bool) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// Fields after ")": state(0) ... utime(11) stime(12) cutime(13) cstime(14).
	n := 0.0
	idx := []int{11, 12}
	if withReaped {
		idx = append(idx, 13, 14)
	}
	for _, i := range idx {
		v, _ := strconv.ParseFloat(f[i], 64)
		n += v
	}
	return n / 100 // USER_HZ
}

func sumCPU(tb testing.TB, pids []int) float64 {
	n := 0.0
	for _, p := range pids {
		n += cpu(tb, p, false)
	}
	return n
}

// privateMB is the process's private (unshared) memory.
func privateMB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	kb := 0.0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && (fs[0] == "Private_Clean:" || fs[0] == "Private_Dirty:") {
			v, _ := strconv.ParseFloat(fs[1], 64)
			kb += v
		}
	}
	return kb / 1024
}
