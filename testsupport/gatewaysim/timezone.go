package gatewaysim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseTimeZone reads Hikvision's POSIX-style zone string, e.g. "CST-8:00:00"
// (UTC+8: the sign is inverted) or "CST+5:00:00DST01:00:00,M3.2.0/02:00:00,...".
// It returns the standard-time offset east of UTC. The DST part is accepted
// but not simulated.
func parseTimeZone(s string) (time.Duration, error) {
	rest := s
	i := 0
	for i < len(rest) && (rest[i] >= 'A' && rest[i] <= 'Z' || rest[i] >= 'a' && rest[i] <= 'z') {
		i++
	}
	if i < 3 {
		return 0, fmt.Errorf("time zone %q: want a zone name of at least 3 letters", s)
	}
	rest = rest[i:]
	if j := strings.Index(rest, "DST"); j >= 0 {
		rest = rest[:j]
	}
	sign := time.Duration(1) // POSIX: positive means west of UTC
	switch {
	case strings.HasPrefix(rest, "+"):
		rest = rest[1:]
	case strings.HasPrefix(rest, "-"):
		sign = -1
		rest = rest[1:]
	}
	parts := strings.Split(rest, ":")
	if len(parts) == 0 || len(parts) > 3 || parts[0] == "" {
		return 0, fmt.Errorf("time zone %q: want an offset like -8:00:00", s)
	}
	limits := []int{14, 59, 59}
	units := []time.Duration{time.Hour, time.Minute, time.Second}
	var off time.Duration
	for k, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > limits[k] || len(p) > 2 {
			return 0, fmt.Errorf("time zone %q: bad offset field %q", s, p)
		}
		off += time.Duration(n) * units[k]
	}
	return -sign * off, nil
}
