package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"mediagw/services/recorder/internal/domain"
	"mediagw/services/recorder/internal/testsim"
	"mediagw/testsupport/gatewaysim/rtsp"
	"mediagw/testsupport/testkit"
)

// BenchmarkCPUPerStreamMinute compares, on the same source in the same
// run, the recorder (one process recording BENCH_STREAMS channels: RTSP
// client, depacketizers, MPEG-TS segments, spool and S3 upload, plus any
// ffmpeg children) with bare `ffmpeg -rtsp_transport tcp -i URL -map 0:v:0
// -map 0:a:0 -c copy -f segment` per stream, 10 s segments. The source is
// the project's gateway simulator (testsupport/gatewaysim/rtsp) serving a
// camera's main stream: 1920x1080 H.264 at 25 fps, 2 s GOP, about
// 4 Mbit/s, with AAC (16 kHz mono), each stream a camera of its own. A
// second recorder with one channel gives the memory of a recorder with no
// stream, so that the memory per stream is the marginal one. Then one
// recorder with BENCH_CORE_STREAMS channels (default 100; 0 skips it),
// pinned with taskset to one core while the simulator is pinned to
// another, records for the same time, and every channel's segments in S3
// are checked for gaps. It prints a table and the costs per camera-month.
// Run:
//
//	go test -run '^$' -bench CPUPerStreamMinute -benchtime 1x ./cmd/recorder
//
// BENCH_STREAMS (default 10), BENCH_SECONDS (default 60), BENCH_BARE=0 (no
// bare ffmpeg), BENCH_CORE_STREAMS and BENCH_ENGINE (inproc or ffmpeg)
// adjust it.
func BenchmarkCPUPerStreamMinute(b *testing.B) {
	streams := envInt("BENCH_STREAMS", 10)
	seconds := envInt("BENCH_SECONDS", 60)
	coreStreams := envInt("BENCH_CORE_STREAMS", 100)
	for i := 0; i < b.N; i++ {
		runCPUBench(b, streams, coreStreams, time.Duration(seconds)*time.Second)
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

// benchCamera is the simulated camera of a bench stream: a camera each, so
// every stream is its own live source, as on a gateway.
func benchCamera(run string, i int) string { return fmt.Sprintf("%s-cam%d", run, i) }

func runCPUBench(b *testing.B, streams, coreStreams int, measure time.Duration) {
	engine := os.Getenv("BENCH_ENGINE")
	if engine == "" {
		engine = "inproc"
	}
	withBare := envInt("BENCH_BARE", 1) != 0
	sim := testsim.StartWith(b, rtsp.MediaOptions{FullHD: true, Audio: true})
	e := newEnv(b, sim)
	var chans []string
	for i := 1; i <= streams; i++ {
		chans = append(chans, fmt.Sprintf("%d=%s", i, sim.URL(benchCamera(e.device, i))))
	}
	common := []string{"RECORDER_SEGMENT_LENGTH=" + benchSegment.String(), "LOG_LEVEL=info", "RECORDER_ENGINE=" + engine}
	rec := e.start(append(common, "RECORDER_CHANNELS="+strings.Join(chans, ","))...)
	one := e.start(append(common, "RECORDER_CHANNELS=1="+sim.URL(benchCamera(e.device, 1)), "RECORDER_DEVICE_INDEX="+e.device+"-one")...)

	bareDir := b.TempDir()
	var bare []*exec.Cmd
	for i := 1; withBare && i <= streams; i++ {
		cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-timeout", "5000000",
			"-i", sim.URLWithCredentials(benchCamera(e.device, i)), "-map", "0:v:0", "-map", "0:a:0", "-c", "copy",
			"-f", "segment", "-segment_time", strconv.Itoa(int(benchSegment.Seconds())),
			"-segment_format", "mpegts", filepath.Join(bareDir, fmt.Sprintf("b%d_%%06d.ts", i)))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		bare = append(bare, cmd)
		b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}

	testkit.Eventually(b, 90*time.Second, 200*time.Millisecond, "a segment of every channel", func() bool {
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
	for _, c := range bare {
		c.Process.Signal(syscall.SIGTERM) // ffmpeg closes its segment on SIGTERM
	}
	<-rec.done
	<-one.done

	// Gaps: every channel's segments in S3 must be one contiguous run.
	gaps := 0
	for i := 1; i <= streams; i++ {
		gaps += countGaps(e.segmentsOf(strconv.Itoa(i)))
	}
	recStreams := e.firstSegmentStreams(e.device, "1")
	bareStreams := "-"
	if withBare {
		bareStreams = probeStreams(b, filepath.Join(bareDir, "b1_000001.ts"))
	}

	minutes := measure.Minutes() * float64(streams)
	perMin := func(s float64) float64 { return s / minutes }
	total := recSelf + recKids
	perStreamMem := recMem / float64(streams)
	if streams > 1 {
		perStreamMem = (recMem - oneMem) / float64(streams-1)
	}
	fmt.Printf("\n%d streams from the gateway simulator (1920x1080 H.264 25 fps, 2 s GOP, AAC 16 kHz; %.2f Mbit/s measured), engine %s, %s measured, %s segments\n",
		streams, received*8/1e6/measure.Seconds()/float64(streams), engine, measure, benchSegment)
	fmt.Printf("segments hold: recorder %s; bare ffmpeg %s\n", recStreams, bareStreams)
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

	core := oneCoreResult{}
	if coreStreams > 0 {
		core = runOneCore(b, sim, e, coreStreams, measure, common)
		fmt.Printf("%d streams, one recorder pinned to CPU %d (simulator on the others), %s: %.3f CPU-s per stream-min, that core %.0f %% busy; restarts %v; gaps in S3 %d; channels short of the window %d\n",
			coreStreams, core.cpu, measure, core.perStreamMin, core.busy*100, core.restarts, core.gaps, core.short)
	}
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
	fmt.Printf("; no gap %s", floor(gaps == 0 && restarts == 0))
	if coreStreams > 0 {
		fmt.Printf("; %d streams on one core without a gap %s", coreStreams, floor(core.gaps == 0 && core.short == 0 && core.restarts == 0))
	}
	fmt.Println()
	printCosts(perMin(total), perStreamMem, oneMem, received*8/measure.Seconds()/float64(streams))
	b.ReportMetric(perMin(total), "rec-cpu-s/stream-min")
	if withBare {
		b.ReportMetric(perMin(bareCPU), "bare-cpu-s/stream-min")
		b.ReportMetric(total/bareCPU, "ratio")
	}
}

// countGaps counts the places where a segment does not start where the
// one before ended.
func countGaps(segs []domain.Segment) int {
	gaps := 0
	for j := 1; j < len(segs); j++ {
		if !segs[j].Start.Equal(segs[j-1].End()) {
			gaps++
		}
	}
	return gaps
}

type oneCoreResult struct {
	cpu                int
	perStreamMin, busy float64
	restarts           float64
	gaps, short        int
}

// runOneCore records n simulator cameras with one recorder pinned to one
// CPU (taskset, every thread), the simulator (this process) pinned to the
// others, and checks S3: every channel's segments contiguous and covering
// the measured window.
func runOneCore(b *testing.B, sim *testsim.Sim, e *env, n int, measure time.Duration, common []string) oneCoreResult {
	cpus, err := allowedCPUs()
	if err != nil || len(cpus) < 2 {
		b.Fatalf("the one-core check needs 2 CPUs to pin the recorder and the simulator apart: %v %v", cpus, err)
	}
	res := oneCoreResult{cpu: cpus[len(cpus)-1]}
	others := make([]string, 0, len(cpus)-1)
	for _, c := range cpus[:len(cpus)-1] {
		others = append(others, strconv.Itoa(c))
	}
	device := e.device + "-core"
	var chans []string
	for i := 1; i <= n; i++ {
		chans = append(chans, fmt.Sprintf("%d=%s", i, sim.URL(benchCamera(device, i))))
	}
	pin := func(pid int, cpuList string) {
		if out, err := exec.Command("taskset", "-a", "-c", "-p", cpuList, strconv.Itoa(pid)).CombinedOutput(); err != nil {
			b.Fatalf("taskset: %v: %s", err, out)
		}
	}
	pin(os.Getpid(), strings.Join(others, ","))
	defer pin(os.Getpid(), cpuListString(cpus))
	rec := e.start(append(common, "RECORDER_CHANNELS="+strings.Join(chans, ","), "RECORDER_DEVICE_INDEX="+device)...)
	pin(rec.cmd.Process.Pid, strconv.Itoa(res.cpu))
	testkit.Eventually(b, 120*time.Second, 500*time.Millisecond, "a segment of every channel", func() bool {
		return strings.Contains(rec.stderr.String(), `"msg":"started"`) &&
			metricValue(b, rec, "recorder_segments_written_total") >= float64(n)
	})
	from := time.Now()
	cpu0 := cpu(b, rec.cmd.Process.Pid, true)
	restarts0 := metricValue(b, rec, "recorder_ffmpeg_restarts_total")
	time.Sleep(measure) // measurement pacing: the window recorded on one core
	used := cpu(b, rec.cmd.Process.Pid, true) - cpu0
	res.restarts = metricValue(b, rec, "recorder_ffmpeg_restarts_total") - restarts0
	to := time.Now()
	rec.cmd.Process.Signal(syscall.SIGTERM)
	<-rec.done
	res.perStreamMin = used / measure.Minutes() / float64(n)
	res.busy = used / to.Sub(from).Seconds()
	for i := 1; i <= n; i++ {
		segs := e.segmentsUnder(device, strconv.Itoa(i))
		res.gaps += countGaps(segs)
		// The window must be recorded: from a segment before it starts to
		// one that reaches within a segment of its end.
		if len(segs) == 0 || segs[0].Start.After(from) || segs[len(segs)-1].End().Before(to.Add(-benchSegment)) {
			res.short++
		}
	}
	return res
}

// allowedCPUs are the CPUs this process may run on (Cpus_allowed_list in
// /proc/self/status, e.g. "0-3,6").
func allowedCPUs() ([]int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("read CPU affinity: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		list, ok := strings.CutPrefix(l, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		var cpus []int
		for _, r := range strings.Split(strings.TrimSpace(list), ",") {
			lo, hi, isRange := strings.Cut(r, "-")
			if !isRange {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			z, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("CPU affinity %q: bad range %q", list, r)
			}
			for c := a; c <= z; c++ {
				cpus = append(cpus, c)
			}
		}
		return cpus, nil
	}
	return nil, fmt.Errorf("no Cpus_allowed_list in /proc/self/status")
}

func cpuListString(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// segmentsUnder lists a device's channel's segments in S3, oldest first.
func (e *env) segmentsUnder(device, ch string) []domain.Segment {
	saved := e.device
	e.device = device
	defer func() { e.device = saved }()
	return e.segmentsOf(ch)
}

// firstSegmentStreams downloads a channel's first segment and says what
// ffprobe finds in it.
func (e *env) firstSegmentStreams(device, ch string) string {
	segs := e.segmentsUnder(device, ch)
	if len(segs) == 0 {
		return "no segment"
	}
	key := segs[0].Key("recordings")
	out, err := e.s3().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(e.bucket), Key: aws.String(key)})
	if err != nil {
		e.t.Fatal(err)
	}
	defer out.Body.Close()
	path := filepath.Join(e.t.TempDir(), "first.ts")
	data, err := io.ReadAll(out.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return probeStreams(e.t, path)
}

// probeStreams lists a file's streams as ffprobe reads them, e.g.
// "h264 1920x1080 + aac 16000 Hz".
func probeStreams(tb testing.TB, path string) string {
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height,sample_rate",
		"-of", "json", path).Output()
	if err != nil {
		return fmt.Sprintf("(ffprobe %s: %v)", filepath.Base(path), err)
	}
	var probe struct {
		Streams []struct {
			Codec      string `json:"codec_name"`
			Width      int    `json:"width"`
			Height     int    `json:"height"`
			SampleRate string `json:"sample_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		return fmt.Sprintf("(ffprobe %s: %v)", filepath.Base(path), err)
	}
	var parts []string
	for _, st := range probe.Streams {
		switch {
		case st.Width > 0:
			parts = append(parts, fmt.Sprintf("%s %dx%d", st.Codec, st.Width, st.Height))
		case st.SampleRate != "":
			parts = append(parts, st.Codec+" "+st.SampleRate+" Hz")
		default:
			parts = append(parts, st.Codec)
		}
	}
	return strings.Join(parts, " + ")
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
