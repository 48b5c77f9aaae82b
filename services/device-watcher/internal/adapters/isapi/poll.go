package isapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	hik "mediagw/pkg/isapi"
	"mediagw/services/device-watcher/internal/domain"
)

// BadMediaURLError: the gateway gave a media URL the watcher cannot use.
type BadMediaURLError struct {
	DevIndex string
	Channel  int
	Why      string
}

func (e *BadMediaURLError) Error() string {
	return fmt.Sprintf("device %s channel %d: unusable media URL: %s", e.DevIndex, e.Channel, e.Why)
}

// detailWorkers bounds the channelInfo/streamMedia requests in flight per
// gateway: enough for a start-up with many cameras, gentle on the box.
const detailWorkers = 4

// Poll lists the gateway's cameras. For online cameras whose channels are
// not known (new, back online, channel count changed, or details older
// than the refresh interval) it fetches channels and media URLs. Known
// cameras missing from the list are checked one by one: only a gateway
// that answers "no such devIndex" makes them Gone, so a short or broken
// list never deletes anything. While logins are stopped it sends nothing
// and says why (Snapshot.Refused); while they await the gateway's
// configuration, too (Snapshot.AwaitingConfiguration).
func (c *Conn) Poll(ctx context.Context, known map[string]domain.Known) (snap domain.Snapshot) {
	snap.Started = time.Now()
	defer func() { snap.Finished = time.Now() }()
	cl, cred, _, err := c.current(ctx)
	if err != nil {
		var (
			stopped  *LoginsStoppedError
			awaiting *AwaitingConfigurationError
		)
		switch {
		case errors.As(err, &stopped):
			// Counted once, when logins stopped; not at every poll.
			r := stopped.Refusal
			snap.Err, snap.NothingSent, snap.Refused = err, true, &r
			return snap
		case errors.As(err, &awaiting):
			// A standing, not an error: logged once when it began.
			snap.Err, snap.NothingSent, snap.AwaitingConfiguration = err, true, true
			return snap
		}
		c.report(ctx, "password", cl, cred, err)
		snap.Err, snap.NothingSent = err, true
		return snap
	}
	devs, err := cl.AllDevices(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.report(ctx, "deviceList", cl, cred, err)
		}
		snap.Err, snap.Unreachable, snap.NothingSent = err, Unreachable(err), nothingSent(err)
		snap.Refused = c.stopped()
		return snap
	}
	snap.LoggedIn = string(cred)
	listed := make(map[string]bool, len(devs))
	type job struct {
		i   int
		idx string
	}
	var jobs []job
	for _, d := range devs {
		listed[d.DevIndex] = true
		online, ok := domain.ParseStatus(string(d.Status))
		if !ok {
			c.report(ctx, "deviceList", cl, cred, fmt.Errorf("device %s: %w", d.DevIndex, &UnknownStatusError{Status: string(d.Status)}))
			continue
		}
		snap.Sightings = append(snap.Sightings, domain.Sighting{
			Index: d.DevIndex, Name: d.Name, Online: online, At: snap.Started, Source: domain.SourcePoll,
		})
		k := known[d.DevIndex]
		if online && (k.Announced != domain.Online || !k.DetailsFresh || (d.Channels > 0 && d.Channels != k.Channels)) {
			jobs = append(jobs, job{i: len(snap.Sightings) - 1, idx: d.DevIndex})
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, detailWorkers)
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			chs, err := c.Details(ctx, j.idx)
			switch {
			case errors.Is(err, hik.ErrDeviceOffline):
				snap.Sightings[j.i].Online = false // went offline meanwhile
			case err == nil:
				snap.Sightings[j.i].Channels = chs
			}
		}()
	}
	wg.Wait()
	for idx, k := range known {
		if listed[idx] || (k.Announced != domain.Online && k.Announced != domain.Offline) {
			continue
		}
		_, err := cl.Channels(ctx, idx)
		switch {
		case errors.Is(err, hik.ErrBadDevIndex):
			snap.Gone = append(snap.Gone, idx)
		case err != nil && ctx.Err() == nil:
			c.report(ctx, "channelInfo", cl, cred, err)
		}
	}
	return snap
}

// UnknownStatusError: the gateway reported a status the watcher does not know.
type UnknownStatusError struct{ Status string }

func (e *UnknownStatusError) Error() string { return fmt.Sprintf("unknown device status %q", e.Status) }

// Details fetches a camera's enabled channels and their main-stream URLs.
// Any failure fails the whole camera: half a camera is never announced.
func (c *Conn) Details(ctx context.Context, devIndex string) ([]domain.Channel, error) {
	cl, cred, _, err := c.current(ctx)
	if err != nil {
		return nil, err
	}
	chans, err := cl.Channels(ctx, devIndex)
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, hik.ErrBadDevIndex) {
			c.report(ctx, "channelInfo", cl, cred, err)
		}
		return nil, err
	}
	out := []domain.Channel{}
	for _, ch := range chans {
		if !ch.Enabled {
			continue
		}
		u, err := cl.StreamURL(ctx, devIndex, ch.ID, hik.StreamMain)
		if err == nil {
			u, err = checkMediaURL(devIndex, ch.ID, u)
		}
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, hik.ErrDeviceOffline) {
				c.report(ctx, "streamMedia", cl, cred, err)
			}
			return nil, err
		}
		out = append(out, domain.Channel{ID: ch.ID, MediaURL: u})
	}
	return out, nil
}

// checkMediaURL accepts rtsp(s)://host[:port]/path and drops any
// credentials, so that none is ever stored or announced.
func checkMediaURL(devIndex string, channel int, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", &BadMediaURLError{DevIndex: devIndex, Channel: channel, Why: "does not parse"}
	}
	if s := strings.ToLower(u.Scheme); (s != "rtsp" && s != "rtsps") || u.Hostname() == "" {
		return "", &BadMediaURLError{DevIndex: devIndex, Channel: channel, Why: "not rtsp://host/..."}
	}
	u.User = nil
	return u.String(), nil
}
