package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Generous deadlines for a loaded 2-core machine; the floors
// (first mail within 60 s, every camera recording again within 2 minutes)
// are logged as measured, not asserted.
const (
	mailWithin     = 3 * time.Minute
	recoverWithin  = 4 * time.Minute
	recordedWithin = 3 * time.Minute
)

const gatewayRecovered = "mediagw.events.v1.GatewayRecovered"

// TestGatewayRecoveryHang (issue 11): the gateway's API hangs (every ISAPI
// request held unanswered, RTSP cut) → one incident mail → the sentinel
// reboots the simulated machine (the EC2-reboot rung, through the
// simulator's admin API: an ISAPI reboot cannot be asked of a hung API) →
// every camera records again → one resolved mail.
func TestGatewayRecoveryHang(t *testing.T) {
	s := startSystem(t, withSentinel())
	cams := s.recordingEveryCamera(t)

	hangAt := time.Now()
	s.admin(t, http.MethodPost, "/admin/hang", "", http.StatusNoContent, nil)
	t.Logf("gateway API hung at %s", hangAt.Format("15:04:05.000"))

	first := s.mails.await(t, "the outage's mail", mailWithin, "[mediagw] gateway "+gatewayID+":", "API does not answer")
	back := s.awaitMachineBack(t, hangAt)
	r := s.checkRecovered(t, cams, back)

	s.checkMailsAndIncident(t, "ec2-reboot")
	if c := s.simCounters(t); c.Reboots != 1 || c.Puts["/ISAPI/System/reboot"] != 0 {
		t.Errorf("simulator saw %d reboots, %d of them asked through ISAPI; want one machine reboot (the hung API cannot be asked)",
			c.Reboots, c.Puts["/ISAPI/System/reboot"])
	}
	s.checkGatewayRecovered(t)
	s.checkNoFailedLogin(t)
	s.checkNoSecretInProcesses(t)
	logMeasured(t, "hang", hangAt, first, back, r)
}

// TestGatewayRecoverySick (issue 11): the gateway's API answers but is sick
// (its device status, which the health check reads, answers HTTP 500) →
// one incident mail → the sentinel reboots it through ISAPI (the first
// rung) → every camera records again → one resolved mail.
func TestGatewayRecoverySick(t *testing.T) {
	s := startSystem(t, withSentinel())
	cams := s.recordingEveryCamera(t)

	faultAt := time.Now()
	var fault struct{ ID string }
	s.admin(t, http.MethodPost, "/admin/faults", `{"path":"/ISAPI/System/status","kind":"httpStatus","httpStatus":500}`, http.StatusCreated, &fault)
	t.Logf("gateway device status answers 500 from %s (fault %s)", faultAt.Format("15:04:05.000"), fault.ID)

	// The reboot cures what made the gateway sick: the fault is lifted as
	// soon as the simulator goes down for a reboot (it stays down for
	// rebootDowntime), so the gateway comes back healthy.
	ctx, cancel := context.WithTimeout(context.Background(), recoverWithin)
	defer cancel()
	cured := make(chan error, 1)
	go func() { cured <- s.liftFaultsOnReboot(ctx) }()

	first := s.mails.await(t, "the sick gateway's mail", mailWithin, "[mediagw] gateway "+gatewayID+":", "API answers with errors")
	if err := <-cured; err != nil {
		t.Fatalf("lifting the fault when the gateway reboots: %v", err)
	}
	back := s.awaitMachineBack(t, faultAt)
	r := s.checkRecovered(t, cams, back)

	s.checkMailsAndIncident(t, "isapi-reboot")
	if c := s.simCounters(t); c.Reboots != 1 || c.Puts["/ISAPI/System/reboot"] != 1 {
		t.Errorf("simulator saw %d reboots, %d of them asked through ISAPI; want exactly one, the ISAPI reboot",
			c.Reboots, c.Puts["/ISAPI/System/reboot"])
	}
	s.checkGatewayRecovered(t)
	s.checkNoFailedLogin(t)
	s.checkNoSecretInProcesses(t)
	logMeasured(t, "fault", faultAt, first, back, r)
}

// liftFaultsOnReboot waits for the simulator's first reboot and, while it
// is down, clears its injected faults.
func (s *system) liftFaultsOnReboot(ctx context.Context) error {
	for {
		var c simCounters
		if err := s.adminDo(ctx, http.MethodGet, "/admin/counters", "", http.StatusOK, &c); err != nil {
			return err
		}
		if c.Reboots > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no reboot: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := s.adminDo(ctx, http.MethodDelete, "/admin/faults", "", http.StatusNoContent, nil); err != nil {
		return err
	}
	var h simHealthz
	if err := s.adminDo(ctx, http.MethodGet, "/admin/healthz", "", http.StatusOK, &h); err != nil {
		return err
	}
	if !h.Rebooting {
		return fmt.Errorf("the simulator was back from its reboot before the fault was lifted (%+v): the test cannot tell what the sentinel did next", h)
	}
	return nil
}

// recordingEveryCamera waits until every camera of the simulator has
// segments in S3 and no mail was sent meanwhile; it returns the cameras.
func (s *system) recordingEveryCamera(t *testing.T) []string {
	t.Helper()
	var cams []string
	for _, d := range s.devices(t) {
		cams = append(cams, d.DevIndex)
	}
	if len(cams) != cameras {
		t.Fatalf("simulator has %d cameras, want %d", len(cams), cameras)
	}
	eventually(t, "2 segments in S3 for every camera", 2*time.Minute, func() error {
		for _, d := range cams {
			if n := len(s.segments(t, d)); n < 2 {
				return fmt.Errorf("camera %s has %d segments", d, n)
			}
		}
		return nil
	})
	if ms := s.mails.all(); len(ms) > 0 {
		t.Fatalf("mails sent while all was well: %v", ms)
	}
	return cams
}

// awaitMachineBack waits until the simulated gateway has booted after
// since and answers (not rebooting, not hung); it returns its boot time.
func (s *system) awaitMachineBack(t *testing.T, since time.Time) time.Time {
	t.Helper()
	var boot time.Time
	eventually(t, "the gateway rebooted and up again", recoverWithin, func() error {
		h := s.simHealth(t)
		var set struct {
			BootTime time.Time `json:"bootTime"`
		}
		s.admin(t, http.MethodGet, "/admin/settings", "", http.StatusOK, &set)
		if !set.BootTime.After(since) || h.Rebooting || h.Hung {
			return fmt.Errorf("booted %s, %+v", set.BootTime.Format("15:04:05.000"), h)
		}
		boot = set.BootTime
		return nil
	})
	return boot
}

// recovery is what checkRecovered measured.
type recovery struct {
	firstSegment map[string]time.Time // per camera, the start of its first segment since the boot
	allRecording time.Time            // the latest of those
	allInS3      time.Time            // when the test saw the last of them in S3
	resolved     alertMail
}

// checkRecovered waits until every camera has a segment in S3 that
// started after boot, then for the resolved mail.
func (s *system) checkRecovered(t *testing.T, cams []string, boot time.Time) recovery {
	t.Helper()
	r := recovery{firstSegment: map[string]time.Time{}}
	eventually(t, "every camera recording again (a segment in S3 started after the gateway came back)", recordedWithin, func() error {
		for _, d := range cams {
			if _, ok := r.firstSegment[d]; ok {
				continue
			}
			segs := s.segments(t, d)
			i := sort.Search(len(segs), func(i int) bool { return segs[i].Start.After(boot) })
			if i == len(segs) {
				return fmt.Errorf("camera %s: no segment since %s", d, boot.Format("15:04:05.000"))
			}
			r.firstSegment[d] = segs[i].Start
			if segs[i].Start.After(r.allRecording) {
				r.allRecording = segs[i].Start
			}
		}
		return nil
	})
	r.allInS3 = time.Now()
	r.resolved = s.mails.await(t, "the resolved mail", mailWithin, "[mediagw] RESOLVED gateway "+gatewayID+":")
	return r
}

// incidentDoc is the part of a health-sentinel incident (the doc
// attribute of its mediagw-incidents item) the test looks at.
type incidentDoc struct {
	Key   string `json:"key"`
	State string `json:"state"`
	Title string `json:"title"`
	Steps []struct {
		What    string `json:"what"`
		Outcome string `json:"outcome"`
	} `json:"steps"`
	Mails []struct {
		Kind  string `json:"kind"`
		State string `json:"state"`
	} `json:"mails"`
	Missed string `json:"missed"`
}

// checkMailsAndIncident checks, once the resolved mail is in, that the
// system sent exactly two mails, the outage's and its resolved one, that
// the gateway's incident is resolved with both mails sent and recovered
// by wantRung (its only rung), and that no other incident was opened
// (a camera's would mail later).
func (s *system) checkMailsAndIncident(t *testing.T, wantRung string) {
	t.Helper()
	mails := s.mails.all()
	opened := s.mails.matching("[mediagw] gateway " + gatewayID + ":")
	resolved := s.mails.matching("[mediagw] RESOLVED gateway " + gatewayID + ":")
	if len(opened) != 1 || len(resolved) != 1 || len(mails) != 2 {
		t.Errorf("mails: %v; want exactly one opening and one resolved mail of gateway %s", mails, gatewayID)
	}
	if bad := s.mails.notMail(); len(bad) > 0 {
		t.Errorf("the alert-mail queue held what is no SNS notification: %q", bad)
	}
	for _, m := range mails {
		t.Logf("mail %s:\n%s", m, m.Body)
	}

	// The mail is marked sent in the incident just after it was published:
	// the mail may be read before.
	var incs map[string]incidentDoc
	var inc incidentDoc
	eventually(t, "the gateway's incident resolved, its mails marked sent", 30*time.Second, func() error {
		incs = s.incidents(t)
		var ok bool
		if inc, ok = incs["gateway/"+gatewayID]; !ok {
			return fmt.Errorf("no incident gateway/%s", gatewayID)
		}
		if inc.State != "resolved" {
			return fmt.Errorf("incident %s is %s", inc.Key, inc.State)
		}
		for _, m := range inc.Mails {
			if m.State != "sent" {
				return fmt.Errorf("incident %s: mail %s is %s", inc.Key, m.Kind, m.State)
			}
		}
		return nil
	})
	var keys []string
	for k := range incs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(incs) != 1 {
		t.Errorf("incidents %v; want only gateway/%s", keys, gatewayID)
	}
	var rungs, recovered []string
	for _, st := range inc.Steps {
		t.Logf("incident %s step: %s: %s", inc.Key, st.What, st.Outcome)
		for _, rung := range []string{"isapi-reboot", "ec2-reboot", "replace"} {
			if strings.HasPrefix(st.What, rung+" ") {
				rungs = append(rungs, rung)
				if strings.HasPrefix(st.Outcome, "recovered") {
					recovered = append(recovered, rung)
				}
			}
		}
	}
	// Each rung is written when it starts and when it ends.
	if want := []string{wantRung, wantRung}; strings.Join(rungs, ",") != strings.Join(want, ",") || len(recovered) != 1 {
		t.Errorf("incident %s: recovery steps %v (recovered by %v), want %s started and recovered, and no other rung", inc.Key, rungs, recovered, wantRung)
	}
	t.Logf("incident %s: %q, footage missed %s", inc.Key, inc.Title, inc.Missed)
}

// incidents reads every incident of the health-sentinel's table by key
// (the storm counters, not incidents, left out).
func (s *system) incidents(t *testing.T) map[string]incidentDoc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[string]incidentDoc{}
	p := dynamodb.NewScanPaginator(s.ddb, &dynamodb.ScanInput{TableName: aws.String(s.res.Tables["mediagw-incidents"]), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("scan incidents: %v", err)
		}
		for _, item := range page.Items {
			key, _ := item["incident_key"].(*ddbtypes.AttributeValueMemberS)
			if key == nil || strings.HasPrefix(key.Value, "storm/") {
				continue
			}
			doc, _ := item["doc"].(*ddbtypes.AttributeValueMemberS)
			if doc == nil {
				t.Errorf("incident %s has no doc", key.Value)
				continue
			}
			var inc incidentDoc
			if err := json.Unmarshal([]byte(doc.Value), &inc); err != nil {
				t.Errorf("incident %s: %v", key.Value, err)
				continue
			}
			out[key.Value] = inc
		}
	}
	return out
}

// checkGatewayRecovered checks that the sentinel published one
// GatewayRecovered for the configurator, naming the same machine (a
// reboot, not a replacement). No configurator runs: its queue is read.
func (s *system) checkGatewayRecovered(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := sqs.NewFromConfig(s.awsCfg)
	url := s.res.Queues["mediagw-configurator-gateway-events"].URL
	seen := map[string]bool{}
	var bodies []string
	for {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 1, VisibilityTimeout: 60, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatalf("read the configurator's queue: %v", err)
		}
		fresh := 0
		for _, m := range out.Messages {
			if seen[aws.ToString(m.MessageId)] {
				continue
			}
			seen[aws.ToString(m.MessageId)], fresh = true, fresh+1
			if attrValue(m.MessageAttributes, "event_type") == gatewayRecovered {
				bodies = append(bodies, aws.ToString(m.Body))
			}
		}
		if fresh == 0 {
			break
		}
	}
	if len(bodies) != 1 {
		t.Errorf("%d GatewayRecovered published, want 1: %q", len(bodies), bodies)
		return
	}
	var ev struct {
		GatewayID          string `json:"gateway_id"`
		InstanceID         string `json:"instance_id"`
		PreviousInstanceID string `json:"previous_instance_id"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &ev); err != nil {
		t.Fatalf("GatewayRecovered %s: %v", bodies[0], err)
	}
	if ev.GatewayID != gatewayID || ev.InstanceID == "" || ev.InstanceID != ev.PreviousInstanceID || ev.InstanceID != s.simHealth(t).InstanceID {
		t.Errorf("GatewayRecovered %s; want gateway %s, the simulator's machine %s before and after", bodies[0], gatewayID, s.simHealth(t).InstanceID)
	}
}

func attrValue(attrs map[string]sqstypes.MessageAttributeValue, name string) string {
	if v, ok := attrs[name]; ok {
		return aws.ToString(v.StringValue)
	}
	return ""
}

// checkNoFailedLogin checks the simulator's failed-login ledger: neither
// the health check nor the recovery (nor anything else) may have cost a
// failed login.
func (s *system) checkNoFailedLogin(t *testing.T) {
	t.Helper()
	var l struct {
		Total   int             `json:"total"`
		Records json.RawMessage `json:"records"`
	}
	s.admin(t, http.MethodGet, "/admin/login-failures", "", http.StatusOK, &l)
	if l.Total != 0 {
		t.Errorf("%d failed logins reached the simulator: %s", l.Total, l.Records)
	}
}

// simHealthz is the simulator's GET /admin/healthz.
type simHealthz struct {
	OK         bool   `json:"ok"`
	Rebooting  bool   `json:"rebooting"`
	Hung       bool   `json:"hung"`
	InstanceID string `json:"instanceId"`
}

func (s *system) simHealth(t *testing.T) simHealthz {
	t.Helper()
	var h simHealthz
	s.admin(t, http.MethodGet, "/admin/healthz", "", http.StatusOK, &h)
	return h
}

// simCounters is the part of GET /admin/counters the test reads.
type simCounters struct {
	Reboots int            `json:"reboots"` // machine (admin) and ISAPI reboots
	Puts    map[string]int `json:"puts"`    // authorized PUTs by path: /ISAPI/System/reboot is an ISAPI reboot
}

func (s *system) simCounters(t *testing.T) simCounters {
	t.Helper()
	var c simCounters
	s.admin(t, http.MethodGet, "/admin/counters", "", http.StatusOK, &c)
	return c
}

// logMeasured logs the times the floors are about (first mail
// within 60 s of the fault; every camera recording again within 2
// minutes) for the record; they are not asserted.
func logMeasured(t *testing.T, fault string, at time.Time, first alertMail, back time.Time, r recovery) {
	t.Helper()
	var per []string
	for d, st := range r.firstSegment {
		per = append(per, fmt.Sprintf("%s +%s", d, st.Sub(back).Round(100*time.Millisecond)))
	}
	sort.Strings(per)
	round := func(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
	t.Logf("MEASURED %s: %s→first mail published %s (read %s); %s→gateway back up %s; back→every camera recording again %s (first new segment per camera: %s; all in S3 %s after back); %s→every camera recording again %s; back→resolved mail %s",
		t.Name(), fault, round(first.Sent.Sub(at)), round(first.Received.Sub(at)), fault, round(back.Sub(at)),
		round(r.allRecording.Sub(back)), strings.Join(per, ", "), round(r.allInS3.Sub(back)),
		fault, round(r.allRecording.Sub(at)), round(r.resolved.Sent.Sub(back)))
}
