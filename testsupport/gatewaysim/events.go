package gatewaysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// subscriberBuffer is how many events a slow stream may lag before the
// gateway drops it (the client then reconnects and resynchronises).
const subscriberBuffer = 1024

// broker fans device events out to open subscribeDeviceMgmt streams.
type broker struct {
	mu   sync.Mutex
	seq  uint64
	subs map[*subscriber]struct{}
}

type subscriber struct {
	events chan Event
	gone   chan struct{}
	once   sync.Once
}

func (s *subscriber) kick() { s.once.Do(func() { close(s.gone) }) }

func newBroker() *broker { return &broker{subs: map[*subscriber]struct{}{}} }

func (b *broker) subscribe() *subscriber {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &subscriber{events: make(chan Event, subscriberBuffer), gone: make(chan struct{})}
	b.subs[s] = struct{}{}
	return s
}

func (b *broker) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, s)
	s.kick()
}

// publish never blocks: a subscriber whose buffer is full is dropped.
func (b *broker) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e.Seq = b.seq
	for s := range b.subs {
		select {
		case s.events <- e:
		default:
			delete(b.subs, s)
			s.kick()
		}
	}
}

// dropAll disconnects every stream; it returns how many there were.
func (b *broker) dropAll() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.subs)
	for s := range b.subs {
		delete(b.subs, s)
		s.kick()
	}
	return n
}

func (b *broker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// StreamBoundary is the multipart boundary of the subscribeDeviceMgmt stream.
const StreamBoundary = "MIME_boundary"

// streamMessage is one part of the event stream. Heartbeats carry only
// eventType "heartbeat" and dateTime.
type streamMessage struct {
	EventType       string           `json:"eventType"`
	DateTime        string           `json:"dateTime"`
	DeviceMgmtEvent *deviceMgmtEvent `json:"DeviceMgmtEvent,omitempty"`
}

type deviceMgmtEvent struct {
	Seq       uint64       `json:"seq"`
	Type      EventType    `json:"type"`
	DevIndex  string       `json:"devIndex"`
	DevName   string       `json:"devName"`
	DevStatus DeviceStatus `json:"devStatus"`
}

// streamWriter writes Hikvision-style multipart parts: boundary, headers with
// Content-Length, body, CRLF; no closing boundary (the stream is endless).
type streamWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (sw streamWriter) part(body []byte) error {
	if _, err := fmt.Fprintf(sw.w, "--%s\r\nContent-Type: application/json; charset=\"UTF-8\"\r\nContent-Length: %d\r\n\r\n", StreamBoundary, len(body)); err != nil {
		return err
	}
	if _, err := sw.w.Write(append(body, '\r', '\n')); err != nil {
		return err
	}
	return sw.rc.Flush()
}

func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SubscribeDeviceMgmt *struct {
			EventMode string `json:"eventMode"`
		} `json:"SubscribeDeviceMgmt"`
	}
	if !decodeOptionalBody(w, r, &req) {
		return
	}
	sub := s.st.broker.subscribe()
	s.st.update(func(st *state) { st.counters.Subscribers++ })
	defer func() {
		s.st.broker.unsubscribe(sub)
		s.st.update(func(st *state) { st.counters.Subscribers-- })
	}()

	w.Header().Set("Content-Type", "multipart/mixed; boundary="+StreamBoundary)
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	sw := streamWriter{w: w, rc: http.NewResponseController(w)}
	fault := faultFrom(r.Context())

	heartbeat := func() error {
		body, _ := json.Marshal(streamMessage{EventType: "heartbeat", DateTime: s.deviceTime(s.now())})
		return sw.part(body)
	}
	// An immediate heartbeat tells the client the subscription is live.
	if err := heartbeat(); err != nil {
		return
	}
	if fault != nil {
		switch fault.Kind {
		case FaultMalformed:
			if err := sw.part([]byte(`{"eventType":"deviceMgmt","DeviceMgmtEvent":{"seq":`)); err != nil {
				return
			}
		case FaultTruncated:
			_, _ = fmt.Fprintf(w, "--%s\r\nContent-Type: application/json\r\nContent-Length: 120\r\n\r\n{\"eventType\":\"devi", StreamBoundary)
			_ = sw.rc.Flush()
			panic(http.ErrAbortHandler)
		}
	}
	tick := time.NewTicker(s.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-sub.gone:
			// Kicked (reboot, DropSubscribers, slow reader): cut the
			// connection rather than end the body cleanly, as a dying box would.
			panic(http.ErrAbortHandler)
		case <-tick.C:
			if err := heartbeat(); err != nil {
				return
			}
		case e := <-sub.events:
			body, _ := json.Marshal(streamMessage{
				EventType: "deviceMgmt",
				DateTime:  s.deviceTime(e.Time),
				DeviceMgmtEvent: &deviceMgmtEvent{
					Seq: e.Seq, Type: e.Type, DevIndex: e.DevIndex, DevName: e.DevName, DevStatus: e.Status,
				},
			})
			if err := sw.part(body); err != nil {
				return
			}
		}
	}
}
