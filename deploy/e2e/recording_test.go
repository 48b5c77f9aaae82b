package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mediagw/testsupport/awstest"
)

// outage is how long S3 is unreachable for the recorders.
const outage = 10 * time.Second

// TestRecordingPath runs the recording path end to end (issue 5): the
// gateway simulator with three cameras, the device-watcher, the
// task-manager with local recorders, all as processes, against the
// emulator. The cameras come online together and share one recorder
// (TASK_CAPACITY's default packs them). Camera B's recorder is killed (its
// whole pack with it, which comes back as one task); camera A goes offline
// (its task is replaced by one without it) and is then deleted; B is
// deleted while recording; camera C records throughout, across an S3
// outage. Every device event is delivered twice.
func TestRecordingPath(t *testing.T) {
	begin := time.Now()
	s := startSystem(t)

	devs := s.devices(t)
	if len(devs) != cameras {
		t.Fatalf("simulator has %d cameras, want %d", len(devs), cameras)
	}
	all := []string{devs[0].DevIndex, devs[1].DevIndex, devs[2].DevIndex}
	camA, camB, camC := all[0], all[1], all[2]
	t.Logf("camera A %s (offline, deleted), B %s (recorder killed, deleted while recording), C %s (S3 outage)", camA, camB, camC)

	// Every device event reaches the task-manager twice (see redeliverer).
	online := s.redeliver.online(t, all, time.Minute)

	phase := time.Now()
	eventually(t, "3 segments in S3 for every camera", 2*time.Minute, func() error {
		for _, d := range all {
			if n := len(s.segments(t, d)); n < 3 {
				return fmt.Errorf("camera %s has %d segments", d, n)
			}
		}
		return nil
	})
	for _, d := range all {
		segs := s.segments(t, d)
		if rs := runs(segs); len(rs) != 1 {
			t.Errorf("camera %s: consecutive segments more than a frame apart: %s", d, describe(segs))
		}
		for i, seg := range segs {
			got := s.probe(t, seg)
			if i == 0 {
				continue // the first cut of a run depends on where in a GOP it began (here it runs up to a GOP long)
			}
			if absDur(got-segmentLength) > gop || absDur(seg.Duration-segmentLength) > gop {
				t.Errorf("camera %s: segment %s lasts %s by its key and %s by ffprobe, want %s ± %s",
					d, seg.Key, seg.Duration, got.Round(time.Millisecond), segmentLength, gop)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("phase 1 (every camera recorded, valid, continuous) took %s", time.Since(phase).Round(100*time.Millisecond))

	// Both deliveries of every DeviceOnline handled → still one recorder per camera.
	eventually(t, "both deliveries of every DeviceOnline handled", time.Minute, func() error {
		if n := s.tmMetric(t, "mediagw_messages_handled_total", `event_type="`+deviceOnline+`"`); n < 2*cameras {
			return fmt.Errorf("%v DeviceOnline messages handled, want %d", n, 2*cameras)
		}
		return nil
	})
	s.checkOneRecorderEach(t, all)
	// Recorders are tasks: the cameras, online together, share one.
	tasks := s.tasks()
	if len(tasks) != 1 {
		t.Errorf("%d recorders for %d cameras that came online together, want 1 (packed): %v", len(tasks), cameras, tasks)
	}
	started := float64(len(tasks))
	if n := s.tmMetric(t, "mediagw_taskmanager_tasks_started_total"); n != started {
		t.Errorf("%v tasks started for %d cameras whose DeviceOnline came twice, want %v (the recorders running)", n, cameras, started)
	}
	s.checkNoSecretInProcesses(t)
	// The recorders reach AWS where the services do: the task-manager
	// passes them the endpoint variables (with MEDIAGW_TEST_AWS=localstack,
	// DynamoDB's is moto's, for their login budget).
	for dev, ps := range s.recorders() {
		for _, kv := range awstest.Env(t) {
			k, v, _ := strings.Cut(kv, "=")
			if got := ps[0].env[k]; got != v {
				t.Errorf("camera %s: recorder pid %d has %s=%q, the services %q", dev, ps[0].pid, k, got, v)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Camera B's recorder is killed: every camera of its task goes with
	// it, and they come back together on one new task.
	phase = time.Now()
	replaced := map[string]int{} // how often each camera's recorder was replaced
	killed := s.recorders()[camB][0]
	pidB, packB := killed.pid, killed.devices()
	rowB, _ := s.ipCameraRow(t, camB)
	// A recorder records in process; any child it has (an ffmpeg for a
	// channel that needs transcoding) must die with it.
	childrenB := childrenOf(pidB)
	if err := syscallKill(pidB); err != nil {
		t.Fatalf("kill camera B's recorder: %v", err)
	}
	killedAt := time.Now()
	eventually(t, "camera B's killed recorder restarted with its whole task, recording again", 2*time.Minute, func() error {
		ps := s.recorders()[camB]
		if len(ps) != 1 || ps[0].pid == pidB {
			return fmt.Errorf("recorders of camera B: %v (killed: %d)", pids(ps), pidB)
		}
		if got := ps[0].devices(); !slices.Equal(got, packB) {
			return fmt.Errorf("camera B's new recorder records %v, want the killed one's cameras %v on one task", got, packB)
		}
		for _, d := range packB {
			row, _ := s.ipCameraRow(t, d)
			if row.Status != "running" || row.TaskID == rowB.TaskID || row.LaunchToken != ps[0].env["MEDIAGW_LAUNCH_TOKEN"] {
				return fmt.Errorf("camera %s: ip-camera row %+v (the killed task was %s)", d, row, rowB.TaskID)
			}
		}
		segs := s.segments(t, camB)
		if last := segs[len(segs)-1]; !last.Start.After(killedAt) {
			return fmt.Errorf("no segment started since the kill; last %s", last)
		}
		return nil
	})
	for _, d := range packB {
		replaced[d]++
	}
	started++
	for _, pid := range childrenB {
		if alive(pid) {
			t.Errorf("child pid %d of camera B's killed recorder still running", pid)
		}
	}
	// A failure of each camera the task carried (each keeps its own streak).
	failures := float64(len(packB))
	if n := s.tmMetric(t, "mediagw_taskmanager_task_failures_total"); n != failures {
		t.Errorf("%v task failures counted, want %v (the killed recorder's cameras %v)", n, failures, packB)
	}

	// Camera A goes offline: its task stops, and the cameras it shared it
	// with come back at once on one new task without it.
	withA := s.recorders()[camA][0]
	pidA, restA := withA.pid, slices.DeleteFunc(withA.devices(), func(d string) bool { return d == camA })
	s.setStatus(t, camA, "offline")
	offlineAt := time.Now()
	eventually(t, "camera A offline past the hysteresis: its recorder stopped, its row idle, its task's other cameras on one new recorder", time.Minute, func() error {
		if alive(pidA) {
			return fmt.Errorf("recorder pid %d still running", pidA)
		}
		if ps := s.recorders()[camA]; len(ps) > 0 {
			return fmt.Errorf("recorder pid %d running for camera A", ps[0].pid)
		}
		row, ok := s.ipCameraRow(t, camA)
		if !ok {
			return errors.New("ip-camera row gone, but the camera was only set offline")
		}
		if row.Want != "stop" || row.Status != "idle" || row.TaskID != "" {
			return fmt.Errorf("ip-camera row %+v, want want=stop status=idle and no task", row)
		}
		if len(restA) == 0 {
			return nil
		}
		ps := s.recorders()[restA[0]]
		if len(ps) != 1 || !slices.Equal(ps[0].devices(), restA) {
			return fmt.Errorf("recorders of camera %s: %v, want one recording %v", restA[0], pids(ps), restA)
		}
		for _, d := range restA {
			if row, _ := s.ipCameraRow(t, d); row.Status != "running" || row.LaunchToken != ps[0].env["MEDIAGW_LAUNCH_TOKEN"] {
				return fmt.Errorf("camera %s: ip-camera row %+v, recorder pid %d", d, row, ps[0].pid)
			}
		}
		return nil
	})
	if d := time.Since(offlineAt); d < hysteresis {
		t.Errorf("camera A's task stopped %s after the camera went offline, within the %s hysteresis", d, hysteresis)
	}
	if len(restA) > 0 {
		started++
		for _, d := range restA {
			replaced[d]++
		}
	}

	// A late third delivery of A's DeviceOnline, older than its offline,
	// must not bring the task back.
	handled := s.tmMetric(t, "mediagw_messages_handled_total", `event_type="`+deviceOnline+`"`)
	if err := s.redeliver.send(context.Background(), online[camA]); err != nil {
		t.Fatalf("redeliver camera A's DeviceOnline: %v", err)
	}
	eventually(t, "a late, third delivery of camera A's DeviceOnline handled", time.Minute, func() error {
		if n := s.tmMetric(t, "mediagw_messages_handled_total", `event_type="`+deviceOnline+`"`); n <= handled {
			return errors.New("not handled yet")
		}
		return nil
	})
	if ps := s.recorders()[camA]; len(ps) > 0 {
		t.Errorf("a stale DeviceOnline of offline camera A started recorder pid %d", ps[0].pid)
	}
	if row, _ := s.ipCameraRow(t, camA); row.Want != "stop" {
		t.Errorf("a stale DeviceOnline of offline camera A changed its row to %+v", row)
	}
	// A task stopped because a camera left it is no failure.
	if n := s.tmMetric(t, "mediagw_taskmanager_task_failures_total"); n != failures {
		t.Errorf("%v task failures counted, want %v (the killed recorder's cameras)", n, failures)
	}
	// The kill's restart and A's task's replacement; A's stale online started nothing.
	if n := s.tmMetric(t, "mediagw_taskmanager_tasks_started_total"); n != started {
		t.Errorf("%v tasks started, want %v", n, started)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("phase 2 (kill of a task of %d cameras, offline, stale event) took %s", len(packB), time.Since(phase).Round(100*time.Millisecond))

	// S3 unreachable for the recorders for a while.
	phase = time.Now()
	if s.s3Switch.relayed.Load() == 0 {
		t.Fatal("no S3 connection went through the switch: the recorders do not use AWS_ENDPOINT_URL_S3")
	}
	refused := s.s3Switch.refused.Load()
	s.s3Switch.Set(false)
	offAt := time.Now()
	// The outage is a span of the scenario on the wall clock (the
	// recorders cut real-time segments), not a wait for something.
	time.Sleep(outage)
	for _, d := range []string{camB, camC} {
		for _, seg := range s.segments(t, d) {
			// A segment that ended after the switch went off can only have
			// reached S3 through it. (A second of margin: segment times
			// come from the arrival of the run's first frame, which may be
			// late by scheduling on a busy machine.)
			if seg.End().After(offAt.Add(time.Second)) {
				t.Errorf("camera %s: segment %s reached S3 while S3 was unreachable", d, seg)
			}
		}
	}
	if s.s3Switch.refused.Load() == refused {
		t.Errorf("no recorder tried to reach S3 during the %s outage", outage)
	}
	s.s3Switch.Set(true)
	onAt := time.Now()
	eventually(t, "segments spooled during the outage uploaded, recording goes on", 2*time.Minute, func() error {
		for _, d := range []string{camB, camC} {
			segs := s.segments(t, d)
			if last := segs[len(segs)-1]; !last.Start.After(onAt) {
				return fmt.Errorf("camera %s: no segment recorded after the outage in S3 yet; last %s", d, last)
			}
		}
		return nil
	})
	// A run of segments ends only where the camera's recorder was replaced.
	segsC := s.segments(t, camC)
	if rs := runs(segsC); len(rs) != 1+replaced[camC] {
		t.Errorf("camera C: %d runs, want %d (its recorder was replaced %d times): segments lost or out of line across the S3 outage (%s to %s)? %s",
			len(rs), 1+replaced[camC], replaced[camC], offAt.Format("15:04:05.000"), onAt.Format("15:04:05.000"), describe(segsC))
	}
	spooled := 0
	for _, seg := range segsC {
		if seg.End().After(offAt) && seg.Start.Before(onAt) {
			spooled++
			s.probe(t, seg)
		}
	}
	if spooled < int(outage/segmentLength) {
		t.Errorf("camera C: %d segments overlap the %s outage, want at least %d", spooled, outage, int(outage/segmentLength))
	}
	// B: the run before the kill (ending with the segment the killed
	// recorder was writing, salvaged by its successor), the run since, and
	// one more if its task was replaced when A left it.
	segsB := s.segments(t, camB)
	if rs := runs(segsB); len(rs) != 1+replaced[camB] {
		t.Errorf("camera B: %d runs, want %d (before and after the kill at %s, and its task replaced when A went offline at %s: %d times in all): %s",
			len(rs), 1+replaced[camB], killedAt.Format("15:04:05.000"), offlineAt.Format("15:04:05.000"), replaced[camB], describe(segsB))
	} else {
		if !rs[1][0].Start.After(killedAt) {
			t.Errorf("camera B: the second run starts at %s, before the kill", rs[1][0])
		}
		s.probe(t, rs[0][len(rs[0])-1])
	}
	t.Logf("phase 3 (S3 outage: %d segments of camera C spooled and uploaded) took %s", spooled, time.Since(phase).Round(100*time.Millisecond))

	// Cameras deleted: A (offline) and B (recording, with C when packed).
	phase = time.Now()
	withB := s.recorders()[camB][0]
	pidB = withB.pid
	restB := slices.DeleteFunc(withB.devices(), func(d string) bool { return d == camB })
	s.deleteDevice(t, camA)
	s.deleteDevice(t, camB)
	eventually(t, "deleted cameras A and B: rows gone, B's recorder stopped, its task's other cameras on a new one", time.Minute, func() error {
		for _, d := range []string{camA, camB} {
			if row, ok := s.ipCameraRow(t, d); ok {
				return fmt.Errorf("ip-camera row of deleted camera %s still there: %+v", d, row)
			}
		}
		if alive(pidB) {
			return fmt.Errorf("recorder pid %d of deleted camera B still running", pidB)
		}
		for _, d := range restB {
			if ps := s.recorders()[d]; len(ps) != 1 || !slices.Equal(ps[0].devices(), restB) {
				return fmt.Errorf("recorders of camera %s: %v, want one recording %v", d, pids(ps), restB)
			}
		}
		return nil
	})
	if len(restB) > 0 {
		started++
	}
	eventually(t, "both deliveries of every DeviceOffline and DeviceDeleted handled", time.Minute, func() error {
		for typ, want := range map[string]int{deviceOffline: 1, deviceDeleted: 2} {
			if n := s.redeliver.redelivered(typ); n < want {
				return fmt.Errorf("%d %s redelivered, want %d", n, typ, want)
			}
			if n := s.tmMetric(t, "mediagw_messages_handled_total", `event_type="`+typ+`"`); n < float64(2*want) {
				return fmt.Errorf("%v %s handled, want %d", n, typ, 2*want)
			}
		}
		return nil
	})
	s.checkOneRecorderEach(t, []string{camC})
	if n := s.tmMetric(t, "mediagw_taskmanager_tasks_started_total"); n != started {
		t.Errorf("%v tasks started in all, want %v", n, started)
	}
	t.Logf("phase 4 (deletion) took %s; the test so far %s", time.Since(phase).Round(100*time.Millisecond), time.Since(begin).Round(100*time.Millisecond))
}

// checkOneRecorderEach checks that exactly the devices given record, each
// on one recorder process (a task, which may carry several of them), the
// one its ip-camera row names (by launch token), and that they are the
// table's only rows.
func (s *system) checkOneRecorderEach(t *testing.T, devices []string) {
	t.Helper()
	procs := s.recorders()
	for _, d := range devices {
		row, ok := s.ipCameraRow(t, d)
		ps := procs[d]
		switch {
		case !ok:
			t.Errorf("camera %s: no ip-camera row", d)
		case len(ps) != 1:
			t.Errorf("camera %s: %d recorder processes %v, want 1", d, len(ps), pids(ps))
		case row.Want != "record" || row.Status != "running" || row.LaunchToken != ps[0].env["MEDIAGW_LAUNCH_TOKEN"]:
			t.Errorf("camera %s: ip-camera row %+v, recorder pid %d with launch token %s", d, row, ps[0].pid, ps[0].env["MEDIAGW_LAUNCH_TOKEN"])
		}
		delete(procs, d)
	}
	for d, ps := range procs {
		t.Errorf("recorders %v running for camera %s, which should not record", pids(ps), d)
	}
	if n := s.ipCameraRows(t); n != len(devices) {
		t.Errorf("ip-camera has %d rows, want %d", n, len(devices))
	}
}

// tasks lists this system's recorders (tasks) by pid with the devices each records.
func (s *system) tasks() map[int][]string {
	out := map[int][]string{}
	for _, p := range recorderProcs(s.bins["recorder"], s.bucket) {
		out[p.pid] = p.devices()
	}
	return out
}

// probe checks a segment in S3 (metadata, ffprobe: H.264) and returns its
// media duration; it fails the test if the segment is not valid.
func (s *system) probe(t *testing.T, seg segment) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := s.rec.checkObject(ctx, s.work, seg)
	if err != nil {
		t.Errorf("segment: %v", err)
	}
	return d
}

func pids(ps []osProc) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.pid
	}
	return out
}
