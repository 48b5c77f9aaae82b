package isapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
)

const pathSubscribe = "/ISAPI/Event/notification/subscribeDeviceMgmt"

// StreamKind says what a StreamMessage reports.
type StreamKind int

// Kinds of StreamMessage.
const (
	// KindConnected: a (re)connection succeeded. Events that happened while
	// disconnected are lost: resynchronise with AllDevices.
	KindConnected StreamKind = iota + 1
	// KindEvent: a device event (Event is set).
	KindEvent
	// KindHeartbeat: the gateway's keep-alive.
	KindHeartbeat
	// KindHeartbeatTimeout: nothing arrived within HeartbeatTimeout; the
	// connection is dropped and re-established.
	KindHeartbeatTimeout
	// KindMalformed: a part could not be understood (Err says why) and was
	// skipped; an event may have been lost.
	KindMalformed
	// KindDisconnected: the stream ended or could not be opened (Err);
	// the next attempt comes after RetryIn.
	KindDisconnected
)

func (k StreamKind) String() string {
	switch k {
	case KindConnected:
		return "connected"
	case KindEvent:
		return "event"
	case KindHeartbeat:
		return "heartbeat"
	case KindHeartbeatTimeout:
		return "heartbeat-timeout"
	case KindMalformed:
		return "malformed"
	case KindDisconnected:
		return "disconnected"
	}
	return "unknown"
}

// StreamMessage is what the subscription reports, in order.
type StreamMessage struct {
	Kind    StreamKind
	Event   *DeviceEvent  // KindEvent
	Time    time.Time     // gateway's time for events and heartbeats, else local
	Err     error         // KindMalformed, KindDisconnected, KindHeartbeatTimeout
	RetryIn time.Duration // KindDisconnected
}

// SubscribeOptions tunes SubscribeDeviceMgmt; zero values get defaults.
type SubscribeOptions struct {
	// HeartbeatTimeout: silence after which the connection counts as dead
	// (default 30 s; the gateway sends a heartbeat every few seconds).
	HeartbeatTimeout time.Duration
	// InitialBackoff and MaxBackoff bound the exponential reconnect delay
	// (defaults 500 ms and 30 s).
	InitialBackoff, MaxBackoff time.Duration
	// Buffer is the capacity of the returned channel (default 64).
	Buffer int
}

// ErrHeartbeatTimeout is the Err of KindHeartbeatTimeout messages.
var ErrHeartbeatTimeout = errors.New("isapi: no heartbeat from the gateway")

// SubscribeDeviceMgmt opens the device-management event stream and keeps it
// open, reconnecting with exponential backoff, until ctx ends; then the
// channel is closed. Messages come in the order the gateway sent them.
// Authentication failures are reported as KindDisconnected like any other;
// a rejected password is not retried against the gateway (see Client).
func (c *Client) SubscribeDeviceMgmt(ctx context.Context, opts SubscribeOptions) <-chan StreamMessage {
	if opts.HeartbeatTimeout <= 0 {
		opts.HeartbeatTimeout = 30 * time.Second
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	out := make(chan StreamMessage, opts.Buffer)
	go func() {
		defer close(out)
		emit := func(m StreamMessage) bool {
			select {
			case out <- m:
				return true
			case <-ctx.Done():
				return false
			}
		}
		b := backoff.NewExponentialBackOff(
			backoff.WithInitialInterval(opts.InitialBackoff),
			backoff.WithMaxInterval(opts.MaxBackoff),
			backoff.WithMaxElapsedTime(0),
		)
		for {
			connected, err := c.streamOnce(ctx, opts, emit)
			if ctx.Err() != nil {
				return
			}
			if connected {
				b.Reset()
			}
			wait := b.NextBackOff()
			var locked *LockedError
			if errors.As(err, &locked) && locked.TimeLeft > wait {
				wait = locked.TimeLeft
			}
			if !emit(StreamMessage{Kind: KindDisconnected, Err: err, RetryIn: wait, Time: time.Now()}) {
				return
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// streamOnce runs one connection; connected reports that it got through.
func (c *Client) streamOnce(ctx context.Context, opts SubscribeOptions, emit func(StreamMessage) bool) (connected bool, err error) {
	connCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var headerTimedOut atomic.Bool
	headerTimeout := c.timeout
	if headerTimeout <= 0 {
		headerTimeout = DefaultTimeout
	}
	hdrTimer := time.AfterFunc(headerTimeout, func() { headerTimedOut.Store(true); cancel() })
	body, _ := json.Marshal(map[string]any{"SubscribeDeviceMgmt": map[string]any{"eventMode": "all", "defenceMode": "all"}})
	r := request{method: http.MethodPost, path: pathSubscribe, body: body}
	resp, err := c.send(connCtx, r)
	hdrTimer.Stop()
	if err != nil {
		if headerTimedOut.Load() {
			return false, fmt.Errorf("isapi: %s: no answer within %s", pathSubscribe, headerTimeout)
		}
		return false, err
	}
	defer resp.Body.Close()
	ctype := resp.Header.Get("Content-Type")
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		rs, _ := ParseResponseStatus(b)
		return false, c.statusError(r, resp.StatusCode, rs)
	}

	var timedOut atomic.Bool
	watchdog := time.AfterFunc(opts.HeartbeatTimeout, func() { timedOut.Store(true); cancel() })
	defer watchdog.Stop()

	next, multipart, err := c.partSource(resp.Body, ctype, r)
	if err != nil {
		return false, err
	}
	if multipart {
		// The framing proves a live subscription; a real box may stay
		// silent until the first event or heartbeat.
		connected = true
		if !emit(StreamMessage{Kind: KindConnected, Time: time.Now()}) {
			return connected, ctx.Err()
		}
	}
	for {
		part, err := next()
		if err != nil {
			if timedOut.Load() {
				emit(StreamMessage{Kind: KindHeartbeatTimeout, Err: ErrHeartbeatTimeout, Time: time.Now()})
				return connected, ErrHeartbeatTimeout
			}
			if ctx.Err() != nil {
				return connected, ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return connected, fmt.Errorf("isapi: event stream: %w", safeError{err})
		}
		watchdog.Reset(opts.HeartbeatTimeout)
		// An error status inside the stream (200 carrying an error) ends
		// the subscription like an error answer would.
		if rs, ok := ParseResponseStatus(part); ok && !rs.OK() {
			return connected, c.statusError(r, resp.StatusCode, rs)
		}
		if !connected {
			connected = true
			if !emit(StreamMessage{Kind: KindConnected, Time: time.Now()}) {
				return connected, ctx.Err()
			}
		}
		ev, heartbeat, at, perr := parseStreamPart(part)
		var m StreamMessage
		switch {
		case perr != nil:
			m = StreamMessage{Kind: KindMalformed, Err: fmt.Errorf("isapi: event stream part: %w", safeError{perr}), Time: time.Now()}
		case heartbeat:
			m = StreamMessage{Kind: KindHeartbeat, Time: at}
		default:
			m = StreamMessage{Kind: KindEvent, Event: ev, Time: at}
		}
		if !emit(m) {
			return connected, ctx.Err()
		}
	}
}

// partSource picks the framing: multipart parts, or else a sequence of
// JSON documents (newline-delimited or concatenated).
func (c *Client) partSource(body io.Reader, ctype string, r request) (next func() ([]byte, error), multipart bool, err error) {
	mt, params, _ := mime.ParseMediaType(ctype)
	if strings.HasPrefix(mt, "multipart/") {
		pr := newPartReader(body, params["boundary"])
		return pr.next, true, nil
	}
	if mt != "" && !strings.Contains(mt, "json") && !strings.HasPrefix(mt, "text/") {
		return nil, false, &MalformedResponseError{Method: r.method, Path: r.path, HTTPStatus: http.StatusOK, ContentType: ctype, Err: errors.New("unsupported stream type")}
	}
	dec := json.NewDecoder(body)
	return func() ([]byte, error) {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		return raw, nil
	}, false, nil
}
