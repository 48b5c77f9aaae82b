package isapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	hik "mediagw/pkg/isapi"
	"mediagw/pkg/loginbudget"
	"mediagw/services/device-watcher/internal/domain"
)

// maxClockSkew: a gateway time further than this from the watcher's clock
// is not trusted as the time of a change.
const maxClockSkew = 5 * time.Minute

// Stream follows the device-management event stream until ctx ends,
// sending what it sees to out. Cameras that come online are looked up
// (channels, media URLs) before they are sent. While logins are stopped
// or await the gateway's configuration it subscribes to nothing: it says
// so once and waits for them to resume.
func (c *Conn) Stream(ctx context.Context, out chan<- domain.StreamUpdate) {
	send := func(u domain.StreamUpdate) bool {
		select {
		case out <- u:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		cl, cred, changed, err := c.current(ctx)
		if err != nil {
			u := domain.StreamUpdate{Kind: domain.UpdateDown, At: time.Now(), Err: err}
			wait := time.After(c.opt.Recheck)
			var (
				stopped  *LoginsStoppedError
				awaiting *AwaitingConfigurationError
			)
			switch {
			case errors.As(err, &stopped):
				r := stopped.Refusal
				u.Refused, wait = &r, nil // until they resume
			case errors.As(err, &awaiting):
				u.AwaitingConfiguration, wait = true, nil // until the gateway is configured
			default:
				c.report(ctx, "password", cl, cred, err)
			}
			if !send(u) {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-changed:
			case <-wait:
			}
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		// A replaced client (a new password version, or logins resumed)
		// ends this subscription even while it waits to reconnect, so that
		// the new one subscribes at once; stopped logins end it too.
		go func() {
			select {
			case <-changed:
				cancel()
			case <-sctx.Done():
			}
		}()
		for m := range cl.SubscribeDeviceMgmt(sctx, c.opt.Stream) {
			if sctx.Err() != nil {
				continue // draining after a client change
			}
			if u, ok := c.update(ctx, cl, cred, m); ok && !send(u) {
				break
			}
		}
		cancel()
	}
}

func (c *Conn) update(ctx context.Context, cl *hik.Client, cred loginbudget.Credential, m hik.StreamMessage) (domain.StreamUpdate, bool) {
	now := time.Now()
	switch m.Kind {
	case hik.KindConnected:
		return domain.StreamUpdate{Kind: domain.UpdateConnected, At: now, Credential: string(cred)}, true
	case hik.KindHeartbeat:
		return domain.StreamUpdate{Kind: domain.UpdateAlive, At: now}, true
	case hik.KindEvent:
		return c.deviceUpdate(ctx, m.Event, now)
	case hik.KindMalformed:
		c.report(ctx, "stream", cl, cred, fmt.Errorf("%w: %w", hik.ErrMalformedResponse, m.Err))
		return domain.StreamUpdate{Kind: domain.UpdateLost, At: now}, true
	case hik.KindHeartbeatTimeout:
		return domain.StreamUpdate{}, false // a disconnection follows
	case hik.KindDisconnected:
		if ctx.Err() != nil {
			return domain.StreamUpdate{}, false
		}
		c.report(ctx, "stream", cl, cred, m.Err)
		return domain.StreamUpdate{Kind: domain.UpdateDown, At: now, Err: m.Err, Unreachable: Unreachable(m.Err), Refused: c.stopped()}, true
	}
	return domain.StreamUpdate{}, false
}

func (c *Conn) deviceUpdate(ctx context.Context, ev *hik.DeviceEvent, now time.Time) (domain.StreamUpdate, bool) {
	gwTime := ev.Time
	if d := gwTime.Sub(now); d > maxClockSkew || d < -maxClockSkew {
		gwTime = time.Time{}
	}
	u := domain.StreamUpdate{Kind: domain.UpdateDevice, At: now, Index: ev.DevIndex, GatewayTime: gwTime}
	var online bool
	switch ev.Type {
	case hik.EventRemoved:
		u.Gone = true
		return u, true
	case hik.EventOffline, hik.EventSleep:
		online = false
	case hik.EventOnline:
		online = true
	case hik.EventAdded:
		online = true
		if ev.Status != "" {
			var ok bool
			if online, ok = domain.ParseStatus(string(ev.Status)); !ok {
				c.report(ctx, "stream", nil, "", fmt.Errorf("device %s: %w", ev.DevIndex, &UnknownStatusError{Status: string(ev.Status)}))
				return domain.StreamUpdate{Kind: domain.UpdateLost, At: now}, true
			}
		}
	default:
		c.report(ctx, "stream", nil, "", fmt.Errorf("device %s: %w: event type %q", ev.DevIndex, hik.ErrMalformedResponse, ev.Type))
		return domain.StreamUpdate{Kind: domain.UpdateLost, At: now}, true
	}
	s := &domain.Sighting{Index: ev.DevIndex, Name: ev.DevName, Online: online, At: now, GatewayTime: gwTime, Source: domain.SourceStream}
	if online {
		chs, err := c.Details(ctx, ev.DevIndex)
		switch {
		case errors.Is(err, hik.ErrDeviceOffline):
			s.Online = false
		case errors.Is(err, hik.ErrBadDevIndex):
			return domain.StreamUpdate{}, false // removed already; its event follows
		case err == nil:
			s.Channels = chs
		}
	}
	u.Sighting = s
	return u, true
}
