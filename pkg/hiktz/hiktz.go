// Package hiktz reads and writes Hikvision's time zone strings: POSIX style
// with the sign inverted ("CST-8:00:00" is UTC+8) and the name always CST.
// The ISAPI client and the configurator's domain both need it.
package hiktz

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Parse reads the gateway's POSIX-style zone string and returns the
// standard-time offset east of UTC: "CST-8:00:00" is +8h, "CST+5:00:00" is
// -5h (the sign is inverted). A DST suffix ("...DST01:00:00,M3.2.0/...")
// is accepted and ignored.
func Parse(s string) (time.Duration, error) {
	i := 0
	for i < len(s) && (s[i] >= 'A' && s[i] <= 'Z' || s[i] >= 'a' && s[i] <= 'z') {
		i++
	}
	if i < 3 {
		return 0, fmt.Errorf("time zone %q: want a name of 3+ letters then an offset", s)
	}
	rest := s[i:]
	if j := strings.Index(rest, "DST"); j >= 0 {
		rest = rest[:j]
	}
	west := true // POSIX: no sign or + means west of UTC
	if rest != "" && (rest[0] == '+' || rest[0] == '-') {
		west = rest[0] == '+'
		rest = rest[1:]
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 3 || parts[0] == "" {
		return 0, fmt.Errorf("time zone %q: want an offset like -8:00:00", s)
	}
	limits := [...]int{14, 59, 59}
	units := [...]time.Duration{time.Hour, time.Minute, time.Second}
	var off time.Duration
	for k, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || len(p) > 2 || n < 0 || n > limits[k] {
			return 0, fmt.Errorf("time zone %q: bad offset field %q", s, p)
		}
		off += time.Duration(n) * units[k]
	}
	if west {
		return -off, nil
	}
	return off, nil
}

// Format writes an offset east of UTC the gateway's way:
// +8h → "CST-8:00:00", -5h30m → "CST+5:30:00", 0 → "CST+0:00:00".
func Format(eastOfUTC time.Duration) string {
	sign := "+"
	if eastOfUTC > 0 {
		sign = "-"
	} else {
		eastOfUTC = -eastOfUTC
	}
	eastOfUTC = eastOfUTC.Round(time.Second)
	h := int(eastOfUTC / time.Hour)
	m := int(eastOfUTC % time.Hour / time.Minute)
	sec := int(eastOfUTC % time.Minute / time.Second)
	return fmt.Sprintf("CST%s%d:%02d:%02d", sign, h, m, sec)
}
