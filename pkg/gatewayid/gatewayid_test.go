package gatewayid

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, ok := range []string{"gw-local", "gw1", "Site.A_1", "0", strings.Repeat("a", MaxLen)} {
		if id, err := Parse(ok); err != nil || id.String() != ok {
			t.Errorf("Parse(%q) = %q, %v; want it accepted", ok, id, err)
		}
	}
	for _, bad := range []string{"", "site:1", "a/b", "-gw", ".gw", "gw 1", "gw\n", "gé", strings.Repeat("a", MaxLen+1)} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted; want an error", bad)
		} else if Valid(bad) {
			t.Errorf("Valid(%q) = true while Parse refuses it", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("gw-local")
	f.Add("site:1")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			return
		}
		// An accepted id is safe as one SSM path segment and one S3 key segment.
		if strings.ContainsAny(string(id), "/: \t\n") || len(id) > MaxLen {
			t.Fatalf("Parse accepted %q", s)
		}
	})
}
