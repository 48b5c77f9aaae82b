package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mediagw/pkg/isapi"
	"mediagw/services/device-watcher/internal/devicestate"
)

// UpdateKind says what a StreamUpdate reports.
type UpdateKind int

// Kinds of StreamUpdate.
const (
	// UpdateConnected: the stream is (re)connected; events may have been
	// missed before it: poll to resynchronise.
	UpdateConnected UpdateKind = iota + 1
	// UpdateAlive: a heartbeat.
	UpdateAlive
	// UpdateDevice: a camera changed (Sighting, or Gone with Index).
	UpdateDevice
	// UpdateLost: an event could not be understood and may be lost: poll.
	UpdateLost
	// UpdateDown: the stream dropped or could not be opened (Err).
	UpdateDown
)

// StreamUpdate is one observation from the event stream.
type StreamUpdate struct {
	Kind UpdateKind
	// At is the watcher's clock when the message arrived.
	At       time.Time
	Sighting *devicestate.Sighting
	// Gone: the camera Index was removed at GatewayTime.
	Gone        bool
	Index       string
	GatewayTime time.Time
	Err         error
	// Unreachable: Err means the gateway did not answer at all.
	Unreachable bool
}

// maxClockSkew: a gateway time further than this from the watcher's clock
// is not trusted as the time of a change.
const maxClockSkew = 5 * time.Minute

// Stream follows the device-management event stream until ctx ends,
// sending what it sees to out. Cameras that come online are looked up
// (channels, media URLs) before they are sent.
func (c *Conn) Stream(ctx context.Context, opts isapi.SubscribeOptions, out chan<- StreamUpdate) {
	send := func(u StreamUpdate) bool {
		select {
		case out <- u:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		cl, replaced, err := c.current(ctx)
		if err != nil {
			c.report(ctx, "password", err)
			if !send(StreamUpdate{Kind: UpdateDown, At: time.Now(), Err: err}) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(c.opt.RereadAfter):
			}
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		// A replaced client (new or forgiven password) ends this
		// subscription even while it waits to reconnect, so that the new
		// one subscribes at once.
		go func() {
			select {
			case <-replaced:
				cancel()
			case <-sctx.Done():
			}
		}()
		for m := range cl.SubscribeDeviceMgmt(sctx, opts) {
			if sctx.Err() != nil {
				continue // draining after a client change
			}
			if u, ok := c.update(ctx, m); ok && !send(u) {
				break
			}
		}
		cancel()
	}
}

func (c *Conn) update(ctx context.Context, m isapi.StreamMessage) (StreamUpdate, bool) {
	now := time.Now()
	switch m.Kind {
	case isapi.KindConnected:
		return StreamUpdate{Kind: UpdateConnected, At: now}, true
	case isapi.KindHeartbeat:
		return StreamUpdate{Kind: UpdateAlive, At: now}, true
	case isapi.KindEvent:
		return c.deviceUpdate(ctx, m.Event, now)
	case isapi.KindMalformed:
		c.report(ctx, "stream", fmt.Errorf("%w: %w", isapi.ErrMalformedResponse, m.Err))
		return StreamUpdate{Kind: UpdateLost, At: now}, true
	case isapi.KindHeartbeatTimeout:
		return StreamUpdate{}, false // a disconnection follows
	case isapi.KindDisconnected:
		if ctx.Err() != nil {
			return StreamUpdate{}, false
		}
		c.report(ctx, "stream", m.Err)
		return StreamUpdate{Kind: UpdateDown, At: now, Err: m.Err, Unreachable: Unreachable(m.Err)}, true
	}
	return StreamUpdate{}, false
}

func (c *Conn) deviceUpdate(ctx context.Context, ev *isapi.DeviceEvent, now time.Time) (StreamUpdate, bool) {
	gwTime := ev.Time
	if d := gwTime.Sub(now); d > maxClockSkew || d < -maxClockSkew {
		gwTime = time.Time{}
	}
	u := StreamUpdate{Kind: UpdateDevice, At: now, Index: ev.DevIndex, GatewayTime: gwTime}
	var online bool
	switch ev.Type {
	case isapi.EventRemoved:
		u.Gone = true
		return u, true
	case isapi.EventOffline, isapi.EventSleep:
		online = false
	case isapi.EventOnline:
		online = true
	case isapi.EventAdded:
		online = true
		if ev.Status != "" {
			var ok bool
			if online, ok = devicestate.ParseStatus(string(ev.Status)); !ok {
				c.report(ctx, "stream", fmt.Errorf("device %s: %w", ev.DevIndex, &UnknownStatusError{Status: string(ev.Status)}))
				return StreamUpdate{Kind: UpdateLost, At: now}, true
			}
		}
	default:
		c.report(ctx, "stream", fmt.Errorf("device %s: %w: event type %q", ev.DevIndex, isapi.ErrMalformedResponse, ev.Type))
		return StreamUpdate{Kind: UpdateLost, At: now}, true
	}
	s := &devicestate.Sighting{Index: ev.DevIndex, Name: ev.DevName, Online: online, At: now, GatewayTime: gwTime, Source: devicestate.SourceStream}
	if online {
		chs, err := c.Details(ctx, ev.DevIndex)
		switch {
		case errors.Is(err, isapi.ErrDeviceOffline):
			s.Online = false
		case errors.Is(err, isapi.ErrBadDevIndex):
			return StreamUpdate{}, false // removed already; its event follows
		case err == nil:
			s.Channels = chs
		}
	}
	u.Sighting = s
	return u, true
}
