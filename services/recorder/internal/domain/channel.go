package domain

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Channel is one camera channel to record.
type Channel struct {
	// ID names the channel in the process (metric labels, logs, the
	// spool): the channel id for a channel of the process's device,
	// "<device>/<channel>" for a channel of another device of the gateway
	// (one recorder may carry the cameras of several devices).
	ID  string
	URL string // rtsp://host[:port]/path, without credentials
}

// SplitChannelID returns the device ("" for the process's own) and the
// channel of a channel ID; both go into S3 keys and spool paths.
func SplitChannelID(id string) (device, channel string) {
	if d, c, ok := strings.Cut(id, "/"); ok {
		return d, c
	}
	return "", id
}

// ChannelID is the ID of a device's channel in a process recording
// processDevice.
func ChannelID(processDevice, device, channel string) string {
	if device == "" || device == processDevice {
		return channel
	}
	return device + "/" + channel
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

// ValidName checks a device index or channel id: it becomes an S3 key
// segment and a directory name. (Gateway ids are checked by
// mediagw/pkg/gatewayid, which also refuses ':'.)
func ValidName(s string) error {
	if !nameRE.MatchString(s) {
		return fmt.Errorf("%q: want letters, digits, '_', '.', ':' or '-' (up to 128, not starting with a symbol)", s)
	}
	return nil
}

// ParseChannels reads "<id>=<rtsp url>[,<id>=<rtsp url>…]", where an id
// is "<channel>" (of processDevice) or "<device>/<channel>" (of another
// device of the gateway). IDs come out as ChannelID makes them. Errors
// never quote a URL: it might carry a password by mistake.
func ParseChannels(s, processDevice string) ([]Channel, error) {
	var out []Channel
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, raw, ok := strings.Cut(part, "=")
		id, raw = strings.TrimSpace(id), strings.TrimSpace(raw)
		if !ok || raw == "" {
			return nil, fmt.Errorf("entry %d: want <channel>=<rtsp url>", i+1)
		}
		dev, name := SplitChannelID(id)
		if dev != "" {
			if err := ValidName(dev); err != nil {
				return nil, fmt.Errorf("entry %d: device %w", i+1, err)
			}
		}
		if err := ValidName(name); err != nil {
			return nil, fmt.Errorf("entry %d: channel %w", i+1, err)
		}
		id = ChannelID(processDevice, dev, name)
		if seen[id] {
			return nil, fmt.Errorf("channel %s listed twice", id)
		}
		seen[id] = true
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "rtsp" || u.Host == "" {
			return nil, fmt.Errorf("channel %s: not an rtsp://host[:port]/path URL", id)
		}
		if u.User != nil {
			return nil, fmt.Errorf("channel %s: the URL carries credentials; give the user in RECORDER_RTSP_USER and the password as an SSM parameter (RECORDER_RTSP_PASSWORD_PARAM)", id)
		}
		out = append(out, Channel{ID: id, URL: raw})
	}
	if len(out) == 0 {
		return nil, errors.New("no channels")
	}
	return out, nil
}
