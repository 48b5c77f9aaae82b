package wiring

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/health-sentinel/internal/domain"
)

// packedState is the "ECS Task State Change" of a task the task-manager
// packed: its group names cams[0], its container override's
// RECORDER_CHANNELS the others (<device>/<channel>=<url>), as the local
// launcher reports it (ECS repeats the RunTask overrides the same way).
func packedState(id, task, gw, status, at string, code int, cams ...string) string {
	chs := []string{"1=rtsp://127.0.0.1:8554/Streaming/Channels/101"}
	for i, c := range cams[1:] {
		chs = append(chs, fmt.Sprintf("%s/1=rtsp://127.0.0.1:8554/Streaming/Channels/%d01", c, i+2))
	}
	times := fmt.Sprintf(`"startedAt":%q`, at)
	containers := `[{"name":"recorder"}]`
	if status == "STOPPED" {
		times = fmt.Sprintf(`"stoppedAt":%q,"stopCode":"EssentialContainerExited","stoppedReason":"Essential container in task exited"`, at)
		containers = fmt.Sprintf(`[{"name":"recorder","exitCode":%d}]`, code)
	}
	return fmt.Sprintf(`{"id":%q,"source":"mediagw.task-manager","detail-type":"ECS Task State Change","detail":{
		"clusterArn":"local:mediagw","taskArn":%q,"group":"recorder:%s","lastStatus":%q,%s,"containers":%s,
		"overrides":{"containerOverrides":[{"name":"recorder","environment":[
			{"name":"RECORDER_GATEWAY_ID","value":%q},{"name":"RECORDER_DEVICE_INDEX","value":%q},
			{"name":"RECORDER_CHANNELS","value":%q},{"name":"MEDIAGW_LAUNCH_TOKEN","value":"tok"}]}]}}}`,
		id, task, cams[0], status, times, containers, gw, cams[0], strings.Join(chs, ","))
}

// TestPackedTaskEndIsEveryCarriedCamerasIncident: a task that recorded
// three cameras dies: each camera gets its incident (the exit code, the
// task and its log stream) and its own mail, a redelivery adds nothing,
// and the replacement task running resolves all three.
func TestPackedTaskEndIsEveryCarriedCamerasIncident(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	t0 := time.Now().UTC()
	cams := []string{"pk1", "pk2", "pk3"}
	stopped := packedState("eb-pk-stop", "local:abcd", "gw-pk", "STOPPED", t0.Format(time.RFC3339Nano), 137, cams...)
	e.sendBody(TaskStateQueue, stopped, "", "")
	e.sendBody(TaskStateQueue, stopped, "", "") // delivered twice
	for _, c := range cams {
		inc := e.waitIncident("camera/"+c, "the task's end recorded", 20*time.Second, func(i domain.Incident) bool { return i.Open() && len(i.Seen) > 0 })
		if len(inc.Exits) != 1 || inc.Exits[0].TaskID != "local:abcd" || inc.Exits[0].Code != 137 ||
			!strings.Contains(inc.Exits[0].LogStream, "recorder-pk1.log") || inc.Gateway != "gw-pk" {
			t.Errorf("camera %s: incident gateway %q, exits %+v; want one exit 137 of local:abcd logged in recorder-pk1.log, gateway gw-pk", c, inc.Gateway, inc.Exits)
		}
	}
	waitQueueEmpty(t, e, TaskStateQueue)
	for _, c := range cams {
		if inc := e.incident("camera/" + c); len(inc.Exits) != 1 {
			t.Errorf("camera %s: %d exits after a redelivery, want 1", c, len(inc.Exits))
		}
	}

	// The held camera mails fall due: one per camera (no gateway outage to take them in).
	e.clock.Advance(e.s.Policy.Hold[domain.KindCamera] + time.Second)
	got := e.waitMails(3, 30*time.Second)
	if len(got) != 3 {
		t.Fatalf("mails %q, want one per camera", subjects(got))
	}
	for _, c := range cams {
		n := 0
		for _, m := range got {
			if strings.Contains(m.Subject, "camera "+c+" on gateway gw-pk") {
				n++
				for _, want := range []string{"exit code 137", "recorder-pk1.log", "the task recorded 3 cameras"} {
					if !strings.Contains(m.Body, want) {
						t.Errorf("camera %s's mail lacks %q:\n%s", c, want, m.Body)
					}
				}
			}
		}
		if n != 1 {
			t.Errorf("%d mails name camera %s, want 1: %q", n, c, subjects(got))
		}
	}

	// The pack comes back as one task: each camera's incident resolves.
	run := e.clock.Now()
	e.sendBody(TaskStateQueue, packedState("eb-pk-run", "local:ef01", "gw-pk", "RUNNING", run.Format(time.RFC3339Nano), 0, cams...), "", "")
	for _, c := range cams {
		e.waitIncident("camera/"+c, "the new task running", 10*time.Second, func(i domain.Incident) bool { return !i.AutoResolveAt.IsZero() })
	}
	e.clock.Advance(e.s.Policy.Stable + time.Second)
	res := e.waitMails(3, 30*time.Second)
	if len(res) != 3 || !strings.Contains(subjects(res), "RESOLVED camera pk1") || !strings.Contains(subjects(res), "RESOLVED camera pk2") ||
		!strings.Contains(subjects(res), "RESOLVED camera pk3") {
		t.Fatalf("mails %q, want a resolved mail per camera", subjects(res))
	}
}

// TestPackedTaskEndDuringGatewayOutageIsOneMail: the gateway stops
// answering and the task recording its cameras dies: the cameras join the
// gateway's incident, and one mail goes out.
func TestPackedTaskEndDuringGatewayOutageIsOneMail(t *testing.T) {
	e := newEnv(t, nil)
	e.rec.setHealth("gw-po", false)
	e.start()
	down := e.clock.Now()
	e.publish(&eventsv1.GatewayUnreachable{Meta: meta("po-u", down), GatewayId: "gw-po", Reason: "ISAPI timeout", Since: timestamppb.New(down)})
	cams := []string{"po1", "po2", "po3"}
	e.sendBody(TaskStateQueue, packedState("eb-po-stop", "local:5678", "gw-po", "STOPPED", down.Add(time.Second).Format(time.RFC3339Nano), 1, cams...), "", "")
	first := e.waitMails(1, 60*time.Second)
	if len(first) != 1 || !strings.Contains(first[0].Subject, "gateway gw-po: API does not answer") {
		t.Fatalf("first mail: %q", subjects(first))
	}
	for _, c := range cams {
		e.waitIncident("camera/"+c, "failure recorded", 20*time.Second, func(i domain.Incident) bool { return i.Open() })
	}
	e.clock.Advance(e.s.Policy.Hold[domain.KindCamera] + time.Second)
	for _, c := range cams {
		e.waitIncident("camera/"+c, "merged into the gateway's incident", 10*time.Second, func(i domain.Incident) bool {
			return i.MergedInto != "" && mailState(i, domain.MailOpened) == domain.MailCancelled
		})
	}
	if gw := e.incident("gateway/gw-po"); !strings.Contains(strings.Join(gw.Cameras, ","), "po1,po2,po3") {
		t.Errorf("gateway incident lists cameras %v, want po1, po2, po3", gw.Cameras)
	}
	if extra := e.mails(2 * time.Second); len(extra) != 0 {
		t.Fatalf("extra mails: %q", subjects(extra))
	}
}
