package domain

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"mediagw/pkg/hiktz"
)

// Offsets real time zones use: UTC-12 to UTC+14, in quarter hours
// (Nepal is +5:45, Chatham +12:45).
const (
	minOffset   = -12 * time.Hour
	maxOffset   = 14 * time.Hour
	granularity = 15 * time.Minute
)

// ErrBadTimezone is wrapped by every time zone parsing error.
var ErrBadTimezone = errors.New("bad time zone")

// ParseTimezoneHours reads the seed's Timezone parameter: hours east of UTC,
// written "8", "+8", "-5", "5.5", "5.75" or "5:45". It returns the offset
// east of UTC.
func ParseTimezoneHours(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("%w: empty; want hours east of UTC like 8, -5 or 5.5", ErrBadTimezone)
	}
	var off time.Duration
	if h, m, found := strings.Cut(in, ":"); found {
		hours, err1 := strconv.Atoi(strings.TrimPrefix(h, "+"))
		mins, err2 := strconv.Atoi(m)
		if err1 != nil || err2 != nil || len(m) != 2 || mins < 0 || mins > 59 {
			return 0, fmt.Errorf("%w: %q; want hours east of UTC like 8, -5, 5.5 or 5:45", ErrBadTimezone, s)
		}
		off = time.Duration(hours) * time.Hour
		sign := time.Duration(1)
		if strings.HasPrefix(h, "-") {
			sign = -1
		}
		off += sign * time.Duration(mins) * time.Minute
	} else {
		hours, err := strconv.ParseFloat(in, 64)
		if err != nil || math.IsNaN(hours) || math.IsInf(hours, 0) || strings.ContainsAny(in, "eExXpP_") {
			return 0, fmt.Errorf("%w: %q; want hours east of UTC like 8, -5 or 5.5", ErrBadTimezone, s)
		}
		if math.Abs(hours) > 24 {
			return 0, fmt.Errorf("%w: %q is outside UTC-12..UTC+14", ErrBadTimezone, s)
		}
		off = time.Duration(math.Round(hours * float64(time.Hour)))
	}
	if off < minOffset || off > maxOffset {
		return 0, fmt.Errorf("%w: %q is outside UTC-12..UTC+14", ErrBadTimezone, s)
	}
	if off%granularity != 0 {
		return 0, fmt.Errorf("%w: %q is not a whole number of quarter hours", ErrBadTimezone, s)
	}
	return off, nil
}

// TimezoneFromHours converts the seed's Timezone parameter to the gateway's form.
func TimezoneFromHours(s string) (string, error) {
	off, err := ParseTimezoneHours(s)
	if err != nil {
		return "", err
	}
	return hiktz.Format(off), nil
}

// parsedZone is a gateway zone string split into its standard offset and
// its daylight-saving rule (empty when none).
type parsedZone struct {
	east time.Duration
	dst  string
}

// parseGatewayZone reads "CST-8:00:00" or "CST-8:00:00DST01:00:00,M3.2.0/...".
func parseGatewayZone(s string) (parsedZone, error) {
	i := 0
	for i < len(s) && (s[i] >= 'A' && s[i] <= 'Z' || s[i] >= 'a' && s[i] <= 'z') {
		i++
	}
	if i < 3 {
		return parsedZone{}, fmt.Errorf("%w: gateway zone %q", ErrBadTimezone, s)
	}
	rest, dst := s[i:], ""
	if j := strings.Index(rest, "DST"); j >= 0 {
		rest, dst = rest[:j], rest[j:]
	}
	west := true // POSIX: no sign or + is west of UTC
	if rest != "" && (rest[0] == '+' || rest[0] == '-') {
		west = rest[0] == '+'
		rest = rest[1:]
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 3 || parts[0] == "" {
		return parsedZone{}, fmt.Errorf("%w: gateway zone %q", ErrBadTimezone, s)
	}
	units := [...]time.Duration{time.Hour, time.Minute, time.Second}
	var off time.Duration
	for k, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || len(p) > 2 {
			return parsedZone{}, fmt.Errorf("%w: gateway zone %q", ErrBadTimezone, s)
		}
		off += time.Duration(n) * units[k]
	}
	if west {
		off = -off
	}
	return parsedZone{east: off, dst: dst}, nil
}

// SameZone reports whether two gateway zone strings mean the same zone
// ("CST+0:00:00" and "CST-0:00:00" do; a DST rule must match too).
func SameZone(a, b string) bool {
	if a == b {
		return true
	}
	za, errA := parseGatewayZone(a)
	zb, errB := parseGatewayZone(b)
	return errA == nil && errB == nil && za == zb
}
