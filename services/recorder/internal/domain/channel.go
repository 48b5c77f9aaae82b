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
	ID  string // used in S3 keys, spool paths and metric labels
	URL string // rtsp://host[:port]/path, without credentials
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

// ParseChannels reads "<id>=<rtsp url>[,<id>=<rtsp url>…]". Errors never
// quote a URL: it might carry a password by mistake.
func ParseChannels(s string) ([]Channel, error) {
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
		if err := ValidName(id); err != nil {
			return nil, fmt.Errorf("entry %d: channel %w", i+1, err)
		}
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
