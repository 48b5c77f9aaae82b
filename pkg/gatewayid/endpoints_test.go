package gatewayid_test

import (
	"strings"
	"testing"

	"mediagw/pkg/gatewayid"
)

func TestParseEndpoints(t *testing.T) {
	gws, err := gatewayid.ParseEndpoints([]string{"gw-1=http://10.0.0.5:80", " gw_2 = https://gw2.example "})
	if err != nil || len(gws) != 2 || gws[1].ID != "gw_2" || gws[1].URL != "https://gw2.example" {
		t.Fatalf("%+v %v", gws, err)
	}
	for _, bad := range [][]string{
		{"gw-1"}, {"=http://x"}, {"gw 1=http://x"}, {"gw=ftp://x"}, {"gw=http://admin:pw@x"},
		{"gw=ftp://admin:pw@x"}, {"gw=http://x", "gw=http://y"},
	} {
		_, err := gatewayid.ParseEndpoints(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("the error repeats the URL's password: %v", err)
		}
	}
}
