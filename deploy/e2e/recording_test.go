package e2e

import (
	"context"
	"errors"
	"fmt"
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
// emulator. Camera A goes offline and is then deleted; camera B's recorder
// is killed, and B is deleted while recording; camera C records throughout,
// across an S3 outage. Every device event is delivered twice.
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

	// Both deliveries of every DeviceOnline handled → still one task per camera.
	eventually(t, "both deliveries of every DeviceOnline handled", time.Minute, func() error {
		if n := s.tmMetric(t, "mediagw_messages_handled_total", `event_type="`+deviceOnline+`"`); n < 2*cameras {
			return fmt.Errorf("%v DeviceOnline messages handled, want %d", n, 2*cameras)
		}
		return nil
	})
	if n := s.tmMetric(t, "mediagw_taskmanager_tasks_started_total"); n != cameras {
		t.Errorf("%v tasks started for %d cameras whose DeviceOnline came twice, want %d", n, cameras, cameras)
	}
	s.checkOneRecorderEach(t, all)
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

	// Camera A goes offline; camera B's recorder is killed.
	phase = time.Now()
	procs := s.recorders()
	pidA, pidB := procs[camA][0].pid, procs[camB][0].pid
	rowB, _ := s.ipCameraRow(t, camB)
	// A recorder records in process; any child it has (an ffmpeg for a
	// channel that needs transcoding) must die with it.
	childrenB := childrenOf(pidB)
	s.setStatus(t, camA, "offline")
	offlineAt := time.Now()
	if err := syscallKill(pidB); err != nil {
		t.Fatalf("kill camera B's recorder: %v", err)
	}
	killedAt := time.Now()

	eventually(t, "camera A offline past the hysteresis: its recorder stopped, its row idle", time.Minute, func() error {
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
		return nil
	})
	if d := time.Since(offlineAt); d < hysteresis {
		t.Errorf("camera A's task stopped %s after the camera went offline, within the %s hysteresis", d, hysteresis)
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

	eventually(t, "camera B's killed recorder restarted and recording again", 2*time.Minute, func() error {
		ps := s.recorders()[camB]
		if len(ps) != 1 || ps[0].pid == pidB {
			return fmt.Errorf("recorders of camera B: %v (killed: %d)", pids(ps), pidB)
		}
		row, _ := s.ipCameraRow(t, camB)
		if row.Status != "running" || row.TaskID == rowB.TaskID || row.LaunchToken != ps[0].env["MEDIAGW_LAUNCH_TOKEN"] {
			return fmt.Errorf("ip-camera row %+v (the killed task was %s)", row, rowB.TaskID)
		}
		segs := s.segments(t, camB)
		if last := segs[len(segs)-1]; !last.Start.After(killedAt) {
			return fmt.Errorf("no segment started since the kill; last %s", last)
		}
		return nil
	})
	for _, pid := range childrenB {
		if alive(pid) {
			t.Errorf("child pid %d of camera B's killed recorder still running", pid)
		}
	}
	if n := s.tmMetric(t, "mediagw_taskmanager_task_failures_total"); n != 1 {
		t.Errorf("%v task failures counted, want 1 (the killed recorder)", n)
	}
	// 3 at start + B's restart; A's stale online started nothing.
	if n := s.tmMetric(t, "mediagw_taskmanager_tasks_started_total"); n != cameras+1 {
		t.Errorf("%v tasks started, want %d", n, cameras+1)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("phase 2 (offline, kill, stale event) took %s", time.Since(phase).Round(100*time.Millisecond))

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
	segsC := s.segments(t, camC)
	if rs := runs(segsC); len(rs) != 1 {
		t.Errorf("camera C: segments lost or out of line across the S3 outage (%s to %s): %s",
			offAt.Format("15:04:05.000"), onAt.Format("15:04:05.000"), describe(segsC))
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
	// recorder was writing, salvaged by its successor) and the run since.
	segsB := s.segments(t, camB)
	if rs := runs(segsB); len(rs) != 2 {
		t.Errorf("camera B: %d runs, want 2 (before and after the kill at %s): %s", len(rs), killedAt.Format("15:04:05.000"), describe(segsB))
	} else {
		if !rs[1][0].Start.After(killedAt) {
			t.Errorf("camera B: the second run starts at %s, before the kill", rs[1][0])
		}
		s.probe(t, rs[0][len(rs[0])-1])
	}
	t.Logf("phase 3 (S3 outage: %d segments of camera C spooled and uploaded) took %s", spooled, time.Since(phase).Round(100*time.Millisecond))

	// Cameras deleted: A (offline) and B (recording).
	phase = time.Now()
	pidB = s.recorders()[camB][0].pid
	s.deleteDevice(t, camA)
	s.deleteDevice(t, camB)
	eventually(t, "deleted cameras A and B: rows gone, B's recorder stopped", time.Minute, func() error {
		for _, d := range []string{camA, camB} {
			if row, ok := s.ipCameraRow(t, d); ok {
				return fmt.Errorf("ip-camera row of deleted camera %s still there: %+v", d, row)
			}
		}
		if alive(pidB) {
			return fmt.Errorf("recorder pid %d of deleted camera B still running", pidB)
		}
		return nil
	})
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
	if n := s.tmMetric(t, "mediagw_taskmanager_tasks_started_total"); n != cameras+1 {
		t.Errorf("%v tasks started in all, want %d", n, cameras+1)
	}
	t.Logf("phase 4 (deletion) took %s; the test so far %s", time.Since(phase).Round(100*time.Millisecond), time.Since(begin).Round(100*time.Millisecond))
}

// checkOneRecorderEach checks that exactly the devices given record, each
// with one recorder process, the one its ip-camera row names (by launch
// token), and that they are the table's only rows.
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
