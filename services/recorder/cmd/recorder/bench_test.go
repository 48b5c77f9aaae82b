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

// BenchmarkCPUPerStreamMinute compares, on the same source in the same
// run, the recorder (one process recording BENCH_STREAMS channels: relay,
// RTSP client, MPEG-TS segments, spool and S3 upload, plus any ffmpeg
// children) with bare `ffmpeg -rtsp_transport tcp -i URL -map 0:v:0 -map
// 0:a:0 -c copy -f segment` per stream, 10 s segments. The source is a
// camera's main stream: 1920x1080 H.264 at 25 fps, 2 s GOP, about 4 Mbit/s,
// with AAC, published by Debian's ffmpeg (copying a rendered clip) to
// testsim.Push, which serves every client. A second recorder with one
// channel gives the memory of a recorder with no stream, so that the
// memory per stream is the marginal one. It prints a table and the costs
// per camera-month. Run:
//
//	go test -run '^$' -bench CPUPerStreamMinute -benchtime 1x ./cmd/recorder
//
// BENCH_STREAMS (default 10), BENCH_SECONDS (default 60), BENCH_BARE=0 (no
// bare ffmpeg: for 100 streams on one core) and BENCH_ENGINE (inproc or
// ffmpeg) adjust it.
func BenchmarkCPUPerStreamMinute(b *testing.B) {
	streams := envInt("BENCH_STREAMS", 10)
	seconds := envInt("BENCH_SECONDS", 60)
	for i := 0; i < b.N; i++ {
		runCPUBench(b, streams, time.Duration(seconds)*time.Second)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 && os.Getenv(name) != "" {
		return n
	}
	return def
}

// benchSegment is the segment length of the benchmark (the issue's).
const benchSegment = 10 * time.Second

func runCPUBench(b *testing.B, streams int, measure time.Duration) {
	engine := os.Getenv("BENCH_ENGINE")
	if engine == "" {
		engine = "inproc"
	}
	withBare := envInt("BENCH_BARE", 1) != 0
	clip := testsim.BenchClip(b)
	push := testsim.StartPush(b)
	push.PublishFile(b, clip)
	e := newEnv(b, testsim.Start(b))
	var chans []string
	for i := 1; i <= streams; i++ {
		chans = append(chans, fmt.Sprintf("%d=%s", i, push.URL()))
	}
	common := []string{"RECORDER_SEGMENT_LENGTH=" + benchSegment.String(), "LOG_LEVEL=info", "RECORDER_ENGINE=" + engine}
	rec := e.start(append(common, "RECORDER_CHANNELS="+strings.Join(chans, ","))...)
	one := e.start(append(common, "RECORDER_CHANNELS=1="+push.URL(), "RECORDER_DEVICE_INDEX="+e.device+"-one")...)

	bareDir := b.TempDir()
	var bare []*exec.Cmd
	for i := 1; withBare && i <= streams; i++ {
		cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-timeout", "5000000",
			"-i", push.URL(), "-map", "0:v:0", "-map", "0:a:0", "-c", "copy", "-f", "segment", "-segment_time", strconv.Itoa(int(benchSegment.Seconds())),
			"-segment_format", "mpegts", filepath.Join(bareDir, fmt.Sprintf("b%d_%%06d.ts", i)))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		bare = append(bare, cmd)
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}

	testkit.Eventually(b, 60*time.Second, 200*time.Millisecond, "a segment of every channel", func() bool {
		return strings.Contains(rec.stderr.String(), `"msg":"started"`) &&
			metricValue(b, rec, "recorder_segments_written_total") >= float64(streams)
	})
	// Measurement pacing, not synchronisation: let start-up pass before
	// the CPU counters are read.
	time.Sleep(5 * time.Second)
	kids := testsim.FFmpegChildren(rec.cmd.Process.Pid)
	recSelf0, recKids0 := cpu(b, rec.cmd.Process.Pid, true), sumCPU(b, kids)
	restarts0 := metricValue(b, rec, "recorder_ffmpeg_restarts_total")
	received0 := metricValue(b, rec, "recorder_rtsp_received_bytes_total")
	var barePids []int
	for _, c := range bare {
		barePids = append(barePids, c.Process.Pid)
	}
	bare0 := sumCPU(b, barePids)
	b.ResetTimer()
	time.Sleep(measure) // measurement pacing: the window the CPU time is taken over
	b.StopTimer()
	recSelf := cpu(b, rec.cmd.Process.Pid, true) - recSelf0
	recKids := sumCPU(b, kids) - recKids0
	bareCPU := sumCPU(b, barePids) - bare0
	restarts := metricValue(b, rec, "recorder_ffmpeg_restarts_total") - restarts0
	received := metricValue(b, rec, "recorder_rtsp_received_bytes_total") - received0
	memOf := func(pid int) float64 {
		m := privateMB(pid)
		for _, k := range testsim.FFmpegChildren(pid) {
			m += privateMB(k)
		}
		return m
	}
	recMem, oneMem, bareMem := memOf(rec.cmd.Process.Pid), memOf(one.cmd.Process.Pid), 0.0
	for _, p := range barePids {
		bareMem += privateMB(p)
	}
	rec.cmd.Process.Signal(syscall.SIGTERM)
	one.cmd.Process.Signal(syscall.SIGTERM)
	<-rec.done
	<-one.done

	// Gaps: every channel's segments in S3 must be one contiguous run.
	gaps := 0
	for i := 1; i <= streams; i++ {
		segs := e.segmentsOf(strconv.Itoa(i))
		for j := 1; j < len(segs); j++ {
			if !segs[j].Start.Equal(segs[j-1].End()) {
				gaps++
			}
		}
	}

	minutes := measure.Minutes() * float64(streams)
	perMin := func(s float64) float64 { return s / minutes }
	total := recSelf + recKids
	perStreamMem := recMem / float64(streams)
	if streams > 1 {
		perStreamMem = (recMem - oneMem) / float64(streams-1)
	}
	fmt.Printf("\n%d streams (1920x1080 H.264 25 fps, 2 s GOP, AAC; %.2f Mbit/s measured), engine %s, %s measured, %s segments\n",
		streams, received*8/1e6/measure.Seconds()/float64(streams), engine, measure, benchSegment)
	fmt.Printf("%-40s %22s %22s\n", "", "CPU-s per stream-min", "private MB per stream")
	fmt.Printf("%-40s %22.3f %22.1f\n", "recorder (all its processes)", perMin(total), perStreamMem)
	fmt.Printf("%-40s %22s %22.1f\n", "  (a recorder with one stream: MB)", "", oneMem)
	if recKids > 0 {
		fmt.Printf("%-40s %22.3f\n", "  of which its ffmpeg children", perMin(recKids))
	}
	if withBare {
		fmt.Printf("%-40s %22.3f %22.1f\n", "bare ffmpeg -c copy -f segment", perMin(bareCPU), bareMem/float64(streams))
		fmt.Printf("ratio recorder/bare ffmpeg: CPU %.2f, memory %.2f\n", total/bareCPU, perStreamMem/(bareMem/float64(streams)))
	}
	fmt.Printf("streams per core: recorder %.0f", 60/perMin(total))
	if withBare {
		fmt.Printf(", bare ffmpeg %.0f", 60/perMin(bareCPU))
	}
	fmt.Printf("; restarts during the measurement %v; gaps between segments %d\n", restarts, gaps)
	floor := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISSED"
	}
	fmt.Printf("floors: ≤ 0.2 CPU-s/stream-min %s; ≤ 4 MB/stream %s", floor(perMin(total) <= 0.2), floor(perStreamMem <= 4))
	if withBare {
		fmt.Printf("; ≤ 0.4 × bare ffmpeg %s", floor(total/bareCPU <= 0.4))
	}
	fmt.Printf("; no gap %s\n", floor(gaps == 0 && restarts == 0))
	printCosts(perMin(total), perStreamMem, oneMem, received*8/measure.Seconds()/float64(streams))
	b.ReportMetric(perMin(total), "rec-cpu-s/stream-min")
	if withBare {
		b.ReportMetric(perMin(bareCPU), "bare-cpu-s/stream-min")
		b.ReportMetric(total/bareCPU, "ratio")
	}
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
