package wiring

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
	"mediagw/testsupport/testkit"
)

// TestGatewayOutageIsOneIncidentAndOneMail: the gateway's API stops
// answering while its cameras' tasks fail: one opening mail (within the
// 60 s floor) naming the gateway and what mediagw does, the cameras folded
// into it, a recovery run and reported, and one resolved mail with the
// duration and footage missed when the gateway is back.
func TestGatewayOutageIsOneIncidentAndOneMail(t *testing.T) {
	e := newEnv(t, nil)
	e.rec.setHealth("gw-1", false)
	e.rec.recover = func(ctx context.Context, gw string, rep recovery.Reporter) error {
		st := recovery.Step{Kind: recovery.StepISAPIReboot, Attempt: 1, Started: time.Now()}
		if err := rep.StepStarted(ctx, gw, st); err != nil {
			return err
		}
		st.Ended, st.Outcome = time.Now(), recovery.OutcomeRecovered
		return rep.StepFinished(ctx, gw, st)
	}
	e.start()
	// The device-watcher knows six cameras of gw-1; five of them fail.
	db := dynamodb.NewFromConfig(e.cfg)
	for i := 1; i <= 6; i++ {
		if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.s.DeviceMediaURLTable), Item: map[string]ddbtypes.AttributeValue{
			"device_index": &ddbtypes.AttributeValueMemberS{Value: fmt.Sprintf("cam%d", i)}, "channel": &ddbtypes.AttributeValueMemberN{Value: "1"},
			"gateway_id": &ddbtypes.AttributeValueMemberS{Value: "gw-1"}}}); err != nil {
			t.Fatal(err)
		}
	}

	down := time.Now().UTC()
	e.publish(&eventsv1.GatewayUnreachable{Meta: meta("u1", down), GatewayId: "gw-1", Reason: "ISAPI timeout", Since: timestamppb.New(down)})
	for i := 1; i <= 5; i++ {
		e.publish(&eventsv1.RecordingTaskFailed{Meta: meta(fmt.Sprintf("f%d", i), down.Add(time.Second)), ExitCode: 3, Reason: "RTSP EOF",
			Task: &eventsv1.RecordingTask{TaskId: fmt.Sprintf("task-%d", i), GatewayId: "gw-1", DeviceIndex: fmt.Sprintf("cam%d", i), Channels: []int32{1}}})
	}
	first := e.waitMails(1, 60*time.Second)
	if len(first) != 1 || !strings.Contains(first[0].Subject, "gw-1") || !strings.Contains(first[0].Subject, "API does not answer") {
		t.Fatalf("first mail: %q", subjects(first))
	}
	for _, want := range []string{"Since:", "Cameras:      cam1, cam2, cam3, cam4, cam5, cam6 (6)", "What mediagw did:", "What to do:", "mediagw-ctl incidents --key gateway/gw-1"} {
		if !strings.Contains(first[0].Body, want) {
			t.Errorf("opening mail lacks %q:\n%s", want, first[0].Body)
		}
	}
	// The recovery ran and reported its step into the incident.
	e.waitIncident("gateway/gw-1", "the recovery step recorded", 10*time.Second, func(i domain.Incident) bool {
		for _, s := range i.Steps {
			if strings.HasPrefix(s.What, "isapi-reboot") && strings.HasPrefix(s.Outcome, "recovered") {
				return true
			}
		}
		return false
	})
	// The cameras' held mails fall due: each camera joins the gateway's incident instead.
	for i := 1; i <= 5; i++ {
		e.waitIncident(fmt.Sprintf("camera/cam%d", i), "failure recorded", 10*time.Second, func(i domain.Incident) bool { return i.Open() })
	}
	e.clock.Advance(e.s.Policy.Hold[domain.KindCamera] + time.Second)
	for i := 1; i <= 5; i++ {
		e.waitIncident(fmt.Sprintf("camera/cam%d", i), "merged into the gateway's incident", 10*time.Second, func(i domain.Incident) bool {
			return i.MergedInto != "" && mailState(i, domain.MailOpened) == domain.MailCancelled
		})
	}
	gw := e.incident("gateway/gw-1")
	if len(gw.Cameras) != 6 {
		t.Errorf("gateway incident lists cameras %v, want 6", gw.Cameras)
	}

	// cam1 channel 1 recorded one minute of the three the outage lasted.
	seg := down.Add(time.Minute).Truncate(time.Millisecond)
	if _, err := s3.NewFromConfig(e.cfg, func(o *s3.Options) { o.UsePathStyle = true }).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(e.s.RecordingsBucket), Body: strings.NewReader("ts"),
		Key: aws.String(fmt.Sprintf("recordings/gw-1/cam1/1/%s/%s_60000.ts", seg.Format("2006/01/02/15"), seg.Format("20060102T150405.000Z")))}); err != nil {
		t.Fatal(err)
	}
	e.rec.setHealth("gw-1", true)
	e.clock.Advance(3 * time.Minute)
	e.publish(&eventsv1.GatewayReachable{Meta: meta("r1", down.Add(3*time.Minute)), GatewayId: "gw-1"})
	resolved := e.waitMails(1, 30*time.Second)
	if len(resolved) != 1 || !strings.Contains(resolved[0].Subject, "RESOLVED gateway gw-1") || !strings.Contains(resolved[0].Subject, "after 3m0s") {
		t.Fatalf("resolved mail: %q", subjects(resolved))
	}
	for _, want := range []string{"Duration:     3m0s", "Footage missed: 2m0s in total over 1 channels (cam1/1 2m0s)", "isapi-reboot (attempt 1)", "cam1, cam2, cam3, cam4, cam5, cam6 (6)"} {
		if !strings.Contains(resolved[0].Body, want) {
			t.Errorf("resolved mail lacks %q:\n%s", want, resolved[0].Body)
		}
	}
	// Nothing else is owed: one flush later the queue is still empty.
	e.waitIncident("gateway/gw-1", "resolved mail marked sent", 10*time.Second, func(i domain.Incident) bool {
		return mailState(i, domain.MailResolved) == domain.MailSent
	})
	if extra := e.mails(2 * time.Second); len(extra) != 0 {
		t.Fatalf("extra mails: %q", subjects(extra))
	}
}

// TestDuplicateAndReorderedDeliverySendNoExtraMail: every event delivered
// twice, and a gateway's Reachable delivered before the Unreachable it
// follows: one opening and one resolved mail for the real outage, nothing
// for the reordered one.
func TestDuplicateAndReorderedDeliverySendNoExtraMail(t *testing.T) {
	e := newEnv(t, nil)
	stop := e.start()
	t0 := time.Now().UTC()
	q := EventsQueue

	// gw-late: Reachable (t0+1m) first, then the older Unreachable (t0), twice each.
	late := &eventsv1.GatewayReachable{Meta: meta("late-r", t0.Add(time.Minute)), GatewayId: "gw-late"}
	e.sendRaw(q, late)
	e.sendRaw(q, late)
	e.waitIncident("gateway/gw-late", "the clearing remembered", 10*time.Second, func(i domain.Incident) bool { return !i.SignalAt.IsZero() })
	un := &eventsv1.GatewayUnreachable{Meta: meta("late-u", t0), GatewayId: "gw-late", Reason: "timeout"}
	e.sendRaw(q, un)
	e.sendRaw(q, un)

	// gw-dup: a real outage, every event twice.
	u := &eventsv1.GatewayUnreachable{Meta: meta("dup-u", t0), GatewayId: "gw-dup", Reason: "timeout"}
	e.sendRaw(q, u)
	e.sendRaw(q, u)
	e.waitIncident("gateway/gw-dup", "opening mail sent", 20*time.Second, func(i domain.Incident) bool {
		return mailState(i, domain.MailOpened) == domain.MailSent
	})
	r := &eventsv1.GatewayReachable{Meta: meta("dup-r", t0.Add(2*time.Minute)), GatewayId: "gw-dup"}
	e.sendRaw(q, r)
	e.sendRaw(q, r)
	e.sendRaw(q, u) // and the opening event a third time, after the end
	e.waitIncident("gateway/gw-dup", "resolved mail sent", 20*time.Second, func(i domain.Incident) bool {
		return mailState(i, domain.MailResolved) == domain.MailSent
	})
	e.waitIncident("gateway/gw-late", "both late unreachables seen", 10*time.Second, func(i domain.Incident) bool {
		return len(i.Seen) >= 2
	})
	waitQueueEmpty(t, e, q)

	got := e.mails(2 * time.Second)
	if len(got) != 2 || !strings.Contains(got[0].Subject+got[1].Subject, "gateway gw-dup: API does not answer") ||
		!strings.Contains(got[0].Subject+got[1].Subject, "RESOLVED gateway gw-dup") {
		t.Fatalf("mails %q, want one opening and one resolved mail of gw-dup", subjects(got))
	}
	if inc := e.incident("gateway/gw-late"); inc.Open() || len(inc.Mails) != 0 {
		t.Fatalf("gw-late: a late Unreachable opened %+v", inc)
	}

	// A restarted service (its start-up flush done when start returns)
	// sends nothing again.
	stop()
	e.start()
	if again := e.mails(2 * time.Second); len(again) != 0 {
		t.Fatalf("after a restart: %q", subjects(again))
	}
}

// TestMalformedEventsAreDeadLetteredWithTheirReason.
func TestMalformedEventsAreDeadLetteredWithTheirReason(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	typ := messaging.EventType(&eventsv1.GatewayUnreachable{})
	e.sendBody(EventsQueue, "{not json", typ, "bad-1")
	e.sendRaw(EventsQueue, &eventsv1.GatewayUnreachable{Meta: meta("bad-2", time.Now()), Reason: "no gateway"})
	e.sendBody(EventsQueue, `{"meta":{"id":"bad-3"}}`, "mediagw.events.v1.Nonsense", "bad-3")
	e.sendBody(TaskStateQueue, `{"id":"eb-1","source":"aws.ecs","detail-type":"ECS Task State Change","detail":{"group":"recorder:cam1","lastStatus":"STOPPED","taskArn":"arn:x/t1","containers":[{"name":"recorder","exitCode":2}]}}`, "", "")

	reasons := map[string]string{}
	dlqs := []string{e.res.Queues[EventsQueue].DLQURL, e.res.Queues[TaskStateQueue].DLQURL}
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, "4 dead letters", func() bool {
		for _, dlq := range dlqs {
			out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), MaxNumberOfMessages: 10,
				MessageAttributeNames: []string{"All"}, VisibilityTimeout: 60})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.Messages {
				reasons[aws.ToString(m.Body)] = aws.ToString(m.MessageAttributes[messaging.AttrDeadLetterReason].StringValue)
			}
		}
		return len(reasons) == 4
	})
	for body, reason := range reasons {
		want := map[bool]string{true: "decode"}[strings.HasPrefix(body, "{not")]
		switch {
		case strings.Contains(body, "bad-2") || strings.Contains(body, "no gateway"):
			want = "no gateway_id"
		case strings.Contains(body, "Nonsense") || strings.Contains(body, "bad-3"):
			want = "no handler"
		case strings.Contains(body, "eb-1"):
			want = "without stoppedAt"
		}
		if want == "" || !strings.Contains(reason, want) {
			t.Errorf("dead letter %q: reason %q, want it to say %q", body, reason, want)
		}
	}
	if got := e.mails(time.Second); len(got) != 0 {
		t.Fatalf("malformed events sent mails: %q", subjects(got))
	}
}

// TestCrashLoopMailNamesExitCodesAndLogStream: ECS stops of a camera's
// recording task and the task-manager's give-up alert make one camera
// mail with the last exit codes and the log stream; the task running
// stably afterwards resolves it with one resolved mail.
func TestCrashLoopMailNamesExitCodesAndLogStream(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	t0 := time.Now().UTC()
	for i := 1; i <= 3; i++ {
		at := t0.Add(time.Duration(i) * 10 * time.Second).Format(time.RFC3339Nano)
		e.sendBody(TaskStateQueue, fmt.Sprintf(`{"id":"eb-%d","source":"aws.ecs","detail-type":"ECS Task State Change","detail":{
			"clusterArn":"arn:aws:ecs:us-east-1:1:cluster/mediagw","group":"recorder:cam7","lastStatus":"STOPPED","stopCode":"EssentialContainerExited",
			"taskArn":"arn:aws:ecs:us-east-1:1:task/mediagw/t%d","stoppedAt":%q,"containers":[{"name":"recorder","exitCode":%d,"reason":"rtsp 401"}]}}`, i, i, at, 10+i), "", "")
	}
	// The task-manager gives up after the failures it saw.
	e.waitIncident("camera/cam7", "three exits recorded", 20*time.Second, func(i domain.Incident) bool { return len(i.Exits) == 3 })
	e.publish(&eventsv1.Alert{Meta: meta("alert-1", t0.Add(40*time.Second)), Severity: eventsv1.Severity_SEVERITY_CRITICAL,
		Subject: "Recording of camera cam7 on gateway gw-7 keeps failing", Message: "failed 3 times", GatewayId: "gw-7", DeviceIndex: "cam7"})

	got := e.waitMails(1, 30*time.Second)
	if len(got) != 1 || !strings.Contains(got[0].Subject, "camera cam7 on gateway gw-7") || !strings.Contains(got[0].Subject, "crash loop") {
		t.Fatalf("mails %q", subjects(got))
	}
	for _, want := range []string{"exit code 11", "exit code 12", "exit code 13", "log stream mediagw/recorder/t3", "mediagw-ctl tasks"} {
		if !strings.Contains(got[0].Body, want) {
			t.Errorf("crash loop mail lacks %q:\n%s", want, got[0].Body)
		}
	}
	if n := utf8.RuneCountInString(got[0].Subject); n > domain.MaxSubject {
		t.Errorf("subject of %d characters", n)
	}

	run := t0.Add(5 * time.Minute)
	e.sendBody(TaskStateQueue, fmt.Sprintf(`{"id":"eb-run","source":"aws.ecs","detail-type":"ECS Task State Change","detail":{
		"group":"recorder:cam7","lastStatus":"RUNNING","taskArn":"arn:aws:ecs:us-east-1:1:task/mediagw/t4","startedAt":%q}}`, run.Format(time.RFC3339Nano)), "", "")
	e.waitIncident("camera/cam7", "running since", 10*time.Second, func(i domain.Incident) bool { return !i.AutoResolveAt.IsZero() })
	e.clock.Advance(5*time.Minute + e.s.Policy.Stable + time.Second)
	res := e.waitMails(1, 30*time.Second)
	if len(res) != 1 || !strings.Contains(res[0].Subject, "RESOLVED camera cam7") {
		t.Fatalf("mails %q", subjects(res))
	}
}

// TestStormLimitSendsOneDigest: more mails about one gateway than the
// limit within the window: the limit's worth go out, the rest in one
// digest at the window's end.
func TestStormLimitSendsOneDigest(t *testing.T) {
	e := newEnv(t, func(s *Settings) {
		s.MailLimit = 2
		s.Policy.Hold = map[domain.Kind]time.Duration{}
	})
	e.start()
	t0 := time.Now().UTC()
	e.publish(&eventsv1.GatewayUnreachable{Meta: meta("s1", t0), GatewayId: "gw-s", Reason: "timeout"})
	e.publish(&eventsv1.GatewayConfigurationFailed{Meta: meta("s2", t0), GatewayId: "gw-s", Step: "time", Reason: "400"})
	e.publish(&eventsv1.GatewayCredentialsRejected{Meta: meta("s3", t0), GatewayId: "gw-s", Component: "configurator", Reason: "401"})
	e.publish(&eventsv1.Alert{Meta: meta("s4", t0), GatewayId: "gw-s", Subject: "disk full", Message: "the gateway's disk is full"})
	for _, k := range []string{"gateway/gw-s", "config/gw-s", "credentials/gw-s", "alert/gw-s"} {
		e.waitIncident(k, "opening mail sent or held", 20*time.Second, func(i domain.Incident) bool {
			s := mailState(i, domain.MailOpened)
			return s == domain.MailSent || s == domain.MailDigested
		})
	}
	if got := e.mails(time.Second); len(got) != 2 {
		t.Fatalf("%d mails within the window, want 2: %q", len(got), subjects(got))
	}
	e.clock.Advance(e.s.MailWindow)
	digest := e.waitMails(1, 20*time.Second)
	if len(digest) != 1 || !strings.Contains(digest[0].Subject, "gw-s: 2 more alerts (digest)") {
		t.Fatalf("digest: %q", subjects(digest))
	}
}

// TestHealthCheckOpensTheIncidentWithoutAnEvent: the scheduled check alone
// finds the API silent: a mail and a recovery; a later healthy check
// resolves it.
func TestHealthCheckOpensTheIncidentWithoutAnEvent(t *testing.T) {
	e := newEnv(t, func(s *Settings) { s.HealthCheckInterval = 200 * time.Millisecond })
	e.rec.setHealth("gw-h", false)
	e.start()
	got := e.waitMails(1, 60*time.Second)
	if len(got) != 1 || !strings.Contains(got[0].Subject, "gateway gw-h: API does not answer") {
		t.Fatalf("mails %q", subjects(got))
	}
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, "a recovery started", func() bool { _, r := e.rec.counts(); return r > 0 })
	e.rec.setHealth("gw-h", true)
	checks, _ := e.rec.counts()
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, "a healthy check", func() bool { c, _ := e.rec.counts(); return c > checks+1 })
	res := e.waitMails(1, 30*time.Second)
	if len(res) != 1 || !strings.Contains(res[0].Subject, "RESOLVED gateway gw-h") {
		t.Fatalf("mails %q", subjects(res))
	}
}

// waitQueueEmpty waits until the queue holds no message, visible or in flight.
func waitQueueEmpty(t *testing.T, e *env, queue string) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, queue+" drained", func() bool {
		out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(e.res.Queues[queue].URL),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Attributes["ApproximateNumberOfMessages"] == "0" && out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
	})
}

// TestAlertEmailIsSubscribedOnce: ALERT_EMAIL becomes an email
// subscription of the alert-email topic; a restart adds no second one.
func TestAlertEmailIsSubscribedOnce(t *testing.T) {
	e := newEnv(t, func(s *Settings) { s.AlertEmailAddress = "ops@example.com" })
	stop := e.start()
	stop()
	e.start()
	subs, err := sns.NewFromConfig(e.cfg).ListSubscriptionsByTopic(context.Background(), &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(e.s.AlertEmail.ARN)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range subs.Subscriptions {
		if aws.ToString(s.Protocol) == "email" {
			n++
			if aws.ToString(s.Endpoint) != "ops@example.com" {
				t.Errorf("email subscription to %s", aws.ToString(s.Endpoint))
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d email subscriptions, want 1: %+v", n, subs.Subscriptions)
	}
}
