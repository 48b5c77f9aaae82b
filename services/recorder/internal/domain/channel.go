// Package config parses the recorder's settings that need more than the
// service runtime's scalar types: the channel list, byte sizes, and the
// identifiers that end up in S3 keys and file paths.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// Channel is one channel to record.
type Channel struct {
	ID  string
	URL string
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

// ValidID checks a gateway id, device index or channel id: it becomes an
// S3 key segment and a directory name.
func ValidID(s string) error {
	if !idRE.MatchString(s) {
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
		if err := ValidID(id); err != nil {
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

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B?|B)?$`)

// ParseBytes reads a size: a number of bytes, or with a unit: KB, MB, GB,
// TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
func ParseBytes(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("%q is not a size (e.g. 4GiB, 500MB, 1048576)", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %w", s, err)
	}
	unit := strings.TrimSuffix(m[2], "B")
	mult := 1.0
	if unit != "" {
		base := 1000.0
		if strings.HasSuffix(unit, "i") {
			base = 1024
		}
		mult = map[byte]float64{'K': base, 'M': base * base, 'G': base * base * base, 'T': base * base * base * base}[unit[0]]
	}
	v := n * mult
	if v < 1 || v > 1<<62 {
		return 0, fmt.Errorf("%q: out of range", s)
	}
	return int64(v), nil
}
