package hiktz

import (
	"testing"
	"time"
)

func TestTimeZoneStrings(t *testing.T) {
	cases := map[string]time.Duration{
		"CST-8:00:00": 8 * time.Hour,
		"CST+5:00:00": -5 * time.Hour,
		"CST-5:30:00": 5*time.Hour + 30*time.Minute,
		"CST+0:00:00": 0,
		"CST-9":       9 * time.Hour,
		"EST5":        -5 * time.Hour,
		"CST-1:00:00DST01:00:00,M3.5.0/02:00:00,M10.5.0/03:00:00": time.Hour,
	}
	for s, want := range cases {
		got, err := Parse(s)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "CST", "8:00", "CST-8:99:00", "CST-99:00:00", "CST-8:00:00:00", "C-8"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
	for _, off := range []time.Duration{8 * time.Hour, -5 * time.Hour, 0, 5*time.Hour + 45*time.Minute, -9*time.Hour - 30*time.Minute} {
		if got, err := Parse(Format(off)); err != nil || got != off {
			t.Errorf("round trip %v via %q = %v, %v", off, Format(off), got, err)
		}
	}
	if Format(8*time.Hour) != "CST-8:00:00" {
		t.Errorf("Format(+8h) = %q", Format(8*time.Hour))
	}
}

func FuzzTimeZone(f *testing.F) {
	f.Add("CST-8:00:00")
	f.Add("CST+5:30:00DST01:00:00,M3.2.0/02:00:00,M11.1.0/02:00:00")
	f.Fuzz(func(t *testing.T, s string) {
		off, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(Format(off))
		if err != nil || back != off {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, off, Format(off), back, err)
		}
	})
}
