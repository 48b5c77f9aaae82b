package app

import (
	"fmt"
	"time"

	"mediagw/services/task-manager/internal/domain"
)

// ChannelRow is one row of the device-watcher's deviceMediaURL table
// (partition key device_index, sort key channel).
type ChannelRow struct {
	Device     string
	Channel    int32
	Gateway    string
	MediaURL   string
	Status     string // online, offline, deleted (briefly, before the rows go)
	FirstSeen  time.Time
	LastChange time.Time
	// EventAt is the occurred_at of the event the watcher announced (or is
	// about to announce) for this row's last change.
	EventAt time.Time
	Version int64
}

// Channel statuses the device-watcher writes.
const (
	ChannelOnline  = "online"
	ChannelDeleted = "deleted"
)

// DesiresOf turns the table into one desire per device: record its online
// channels; stop when none is online; delete when every row says deleted.
// The desire's time is the newest last_change of the device's rows. Media
// URLs that are not RTSP are left out and reported in bad; credentials in a
// URL are removed.
func DesiresOf(rows []ChannelRow) (out map[string]domain.Desire, bad []error) {
	out = map[string]domain.Desire{}
	deleted := map[string]bool{}
	for _, r := range rows {
		d, seen := out[r.Device]
		if !seen {
			d = domain.Desire{Device: r.Device, Want: domain.WantStop}
			deleted[r.Device] = true
		}
		if d.Gateway == "" {
			d.Gateway = r.Gateway
		}
		for _, at := range []time.Time{r.LastChange, r.EventAt} {
			if at.After(d.At) {
				d.At = at
			}
		}
		if r.Status != ChannelDeleted {
			deleted[r.Device] = false
		}
		if r.Status == ChannelOnline {
			clean, _, err := domain.CleanMediaURL(r.MediaURL)
			if err != nil {
				bad = append(bad, fmt.Errorf("deviceMediaURL %s/%d: %w", r.Device, r.Channel, err))
			} else {
				d.Want = domain.WantRecord
				d.Channels = append(d.Channels, domain.Channel{Number: r.Channel, MediaURL: clean})
			}
		}
		out[r.Device] = d
	}
	for dev, del := range deleted {
		if del {
			d := out[dev]
			d.Want = domain.WantDelete
			out[dev] = d
		}
	}
	return out, bad
}
