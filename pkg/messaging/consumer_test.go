package messaging

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/testsupport/testkit"
)

func TestFanOutDeliversEachQueueExactlyItsEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	pub := e.publisher()

	var mu sync.Mutex
	got := map[string][]string{} // queue → device index or gateway id
	record := func(queue, key string) {
		mu.Lock()
		defer mu.Unlock()
		got[queue] = append(got[queue], key)
	}
	devices := NewRouter()
	On(devices, func(_ context.Context, ev *eventsv1.DeviceOnline, _ *Message) error {
		record("devices", "online:"+ev.DeviceIndex)
		return nil
	})
	On(devices, func(_ context.Context, ev *eventsv1.DeviceOffline, _ *Message) error {
		record("devices", "offline:"+ev.DeviceIndex)
		return nil
	})
	gateways := NewRouter()
	On(gateways, func(_ context.Context, ev *eventsv1.GatewayUnreachable, m *Message) error {
		record("gateways", "unreachable:"+ev.GatewayId)
		if m.CorrelationID == "" || m.EventID == "" {
			t.Errorf("message lacks ids: %+v", m)
		}
		return nil
	})
	run(t, e.consumer("devices", devices.Handle))
	run(t, e.consumer("gateways", gateways.Handle))

	mustPublish(t, pub, ctx, &eventsv1.DeviceOnline{GatewayId: "gw1", DeviceIndex: "d1"})
	mustPublish(t, pub, ctx, &eventsv1.GatewayUnreachable{GatewayId: "gw1"})
	mustPublish(t, pub, ctx, &eventsv1.DeviceOffline{GatewayId: "gw1", DeviceIndex: "d2"})

	testkit.Eventually(t, 15*time.Second, 50*time.Millisecond, "both queues handled their events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["devices"]) >= 2 && len(got["gateways"]) >= 1
	})
	// A wrongly routed copy would be in flight with the events above: one
	// more event per queue, published after them, bounds the wait for it.
	mustPublish(t, pub, ctx, &eventsv1.DeviceOnline{GatewayId: "gw1", DeviceIndex: "marker"})
	mustPublish(t, pub, ctx, &eventsv1.GatewayUnreachable{GatewayId: "marker"})
	testkit.Eventually(t, 15*time.Second, 50*time.Millisecond, "both queues handled the marker events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(got["devices"], "online:marker") && slices.Contains(got["gateways"], "unreachable:marker")
	})
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(sorted(got["devices"]), ",") != "offline:d2,online:d1,online:marker" || strings.Join(sorted(got["gateways"]), ",") != "unreachable:gw1,unreachable:marker" {
		t.Fatalf("wrong routing: %v", got)
	}
}

func TestAlwaysFailingHandlerDeadLettersAfterMaxReceiveCountWithReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var calls atomic.Int32
	var lastReceive atomic.Int32
	c := e.consumer("devices", func(_ context.Context, m *Message) error {
		calls.Add(1)
		lastReceive.Store(int32(m.ReceiveCount))
		return errors.New("database is on fire")
	})
	run(t, c)
	mustPublish(t, e.publisher(), context.Background(), &eventsv1.DeviceOnline{GatewayId: "gw1", DeviceIndex: "d1"})

	dlq := e.drain(t, e.res.Queues["devices"].DLQURL, 0)
	testkit.Eventually(t, 30*time.Second, 50*time.Millisecond, "message in DLQ", func() bool {
		dlq = append(dlq, e.drain(t, e.res.Queues["devices"].DLQURL, time.Millisecond)...)
		return len(dlq) > 0
	})
	if len(dlq) != 1 {
		t.Fatalf("DLQ has %d messages, want 1", len(dlq))
	}
	reason := aws.ToString(dlq[0].MessageAttributes[AttrDeadLetterReason].StringValue)
	if !strings.Contains(reason, "still failing after 3 deliveries") || !strings.Contains(reason, "database is on fire") {
		t.Errorf("reason = %q", reason)
	}
	if got := aws.ToString(dlq[0].MessageAttributes[AttrEventType].StringValue); got != "mediagw.events.v1.DeviceOnline" {
		t.Errorf("DLQ copy lost its event_type attribute: %q", got)
	}
	if lastReceive.Load() != 3 {
		t.Errorf("last delivery was number %d, want 3 (maxReceiveCount)", lastReceive.Load())
	}
	// Three deliveries, each retried in process three times.
	if calls.Load() != 9 {
		t.Errorf("handler ran %d times, want 9", calls.Load())
	}
	if !strings.Contains(e.logs.String(), `"reason":"still failing after 3 deliveries`) {
		t.Errorf("dead-letter reason not logged:\n%s", e.logs.String())
	}
	if left := e.drain(t, e.res.Queues["devices"].URL, 2*time.Second); len(left) != 0 {
		t.Errorf("%d messages left on the source queue", len(left))
	}
}

func TestUndecodableBodyIsDeadLetteredAndConsumerGoesOn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var handled atomic.Int32
	r := NewRouter()
	On(r, func(_ context.Context, ev *eventsv1.DeviceOnline, _ *Message) error {
		handled.Add(1)
		return nil
	})
	metrics := NewMetrics(prometheus.NewRegistry())
	run(t, e.consumer("devices", r.Handle, func(c *ConsumerConfig) { c.Metrics = metrics }))

	q := e.res.Queues["devices"]
	send := func(body string, attrs map[string]string) {
		in := &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body), MessageAttributes: map[string]sqstypes.MessageAttributeValue{}}
		for k, v := range attrs {
			in.MessageAttributes[k] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
		if _, err := e.sqs.SendMessage(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	send("this is not json", nil)
	send(`{"gateway_id": 42}`, map[string]string{AttrEventType: "mediagw.events.v1.DeviceOnline", AttrEventID: "x"})
	send(`{}`, map[string]string{AttrEventType: "mediagw.events.v1.SomethingNew", AttrEventID: "y"})
	mustPublish(t, e.publisher(), ctx, &eventsv1.DeviceOnline{GatewayId: "gw1", DeviceIndex: "good"})

	var dlq []sqstypes.Message
	testkit.Eventually(t, 20*time.Second, 50*time.Millisecond, "three poison messages in the DLQ", func() bool {
		dlq = append(dlq, e.drain(t, q.DLQURL, time.Millisecond)...)
		return len(dlq) >= 3
	})
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, "good message handled", func() bool { return handled.Load() == 1 })
	for _, want := range []struct {
		eventType, kind string
	}{{"", "malformed"}, {"mediagw.events.v1.DeviceOnline", "permanent"}, {"mediagw.events.v1.SomethingNew", "permanent"}} {
		// Counted once the copy to the DLQ has returned: a moment after
		// the message can be read there.
		c := metrics.deadLettered.WithLabelValues("devices", want.eventType, want.kind)
		testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, fmt.Sprintf("dead-lettered{event_type=%q, reason=%q} counted", want.eventType, want.kind),
			func() bool { return testutil.ToFloat64(c) >= 1 })
		if n := testutil.ToFloat64(c); n != 1 {
			t.Errorf("dead-lettered{event_type=%q, reason=%q} = %v, want 1", want.eventType, want.kind, n)
		}
	}
	var reasons []string
	for _, m := range dlq {
		reasons = append(reasons, aws.ToString(m.MessageAttributes[AttrDeadLetterReason].StringValue))
	}
	all := strings.Join(reasons, " | ")
	for _, want := range []string{"malformed message", "decode mediagw.events.v1.DeviceOnline", `no handler for event type "mediagw.events.v1.SomethingNew"`} {
		if !strings.Contains(all, want) {
			t.Errorf("no DLQ reason mentions %q: %s", want, all)
		}
	}
}

func TestShutdownFinishesSlowHandlerAndDeletesItsMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	started := make(chan struct{}, 1)
	var finished, calls atomic.Int32
	c := e.consumer("devices", func(ctx context.Context, m *Message) error {
		calls.Add(1)
		started <- struct{}{}
		select {
		case <-time.After(3 * time.Second): // longer than half the visibility timeout
		case <-ctx.Done():
			return ctx.Err()
		}
		finished.Add(1)
		return nil
	})
	stop := run(t, c)
	mustPublish(t, e.publisher(), ctx, &eventsv1.DeviceOnline{GatewayId: "gw1", DeviceIndex: "slow"})
	select {
	case <-started:
	case <-time.After(15 * time.Second):
		t.Fatal("handler never started")
	}
	stop() // what SIGTERM does through service.Main
	if finished.Load() != 1 {
		t.Fatalf("slow handler finished %d times before Run returned, want 1", finished.Load())
	}
	// Nothing comes back: the message was deleted, not left to reappear.
	if left := e.drain(t, e.res.Queues["devices"].URL, 6*time.Second); len(left) != 0 {
		t.Fatalf("message redelivered after shutdown: %d", len(left))
	}
	if calls.Load() != 1 {
		t.Fatalf("handled %d times, want 1", calls.Load())
	}
}

func TestDuplicateDeliveryCarriesTheSameEventID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var mu sync.Mutex
	var ids, msgIDs []string
	r := NewRouter()
	On(r, func(_ context.Context, ev *eventsv1.DeviceOnline, m *Message) error {
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, ev.GetMeta().GetId())
		msgIDs = append(msgIDs, m.MessageID)
		if ev.GetMeta().GetId() != m.EventID {
			t.Errorf("meta id %q != message event id %q", ev.GetMeta().GetId(), m.EventID)
		}
		return nil
	})
	// Receive the published message by hand and put it back a second time,
	// as SQS's at-least-once delivery may.
	mustPublish(t, e.publisher(), ctx, &eventsv1.DeviceOnline{GatewayId: "gw1", DeviceIndex: "dup"})
	q := e.res.Queues["devices"]
	var first []sqstypes.Message
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, "published message arrives", func() bool {
		first = append(first, e.drain(t, q.URL, time.Millisecond)...)
		return len(first) == 1
	})
	for i := 0; i < 2; i++ {
		if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: first[0].Body, MessageAttributes: first[0].MessageAttributes}); err != nil {
			t.Fatal(err)
		}
	}
	run(t, e.consumer("devices", r.Handle))
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, "both deliveries handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) == 2
	})
	if ids[0] == "" || ids[0] != ids[1] || msgIDs[0] == msgIDs[1] {
		t.Fatalf("event ids %v, message ids %v: want one event id on two messages", ids, msgIDs)
	}
}

func mustPublish(t testing.TB, p *Publisher, ctx context.Context, ev proto.Message) {
	t.Helper()
	if err := p.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
