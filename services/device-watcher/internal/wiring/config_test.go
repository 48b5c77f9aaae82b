package wiring_test

import (
	"io"
	"strings"
	"testing"

	"mediagw/pkg/service"
	"mediagw/services/device-watcher/internal/wiring"
)

func TestParseGateways(t *testing.T) {
	gws, err := wiring.ParseGateways([]string{"gw-1=http://10.0.0.5:80", " gw_2 = https://gw2.example "})
	if err != nil || len(gws) != 2 || gws[1].ID != "gw_2" || gws[1].URL != "https://gw2.example" {
		t.Fatalf("%+v %v", gws, err)
	}
	for _, bad := range [][]string{
		{"gw-1"}, {"=http://x"}, {"gw 1=http://x"}, {"gw=ftp://x"}, {"gw=http://admin:pw@x"},
		{"gw=http://x", "gw=http://y"},
	} {
		if _, err := wiring.ParseGateways(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestConfigRequiresResourcesAndRefusesBadGateways(t *testing.T) {
	for _, v := range []string{"DEVICE_EVENTS_TOPIC_ARN", "GATEWAY_EVENTS_TOPIC_ARN", "DEVICE_MEDIA_URL_TABLE", "LEASES_TABLE", "PARAMETER_ROOT", "GATEWAYS"} {
		t.Setenv(v, "")
	}
	cfg := service.NewConfig(wiring.Name, "", ":0")
	wiring.Declare(cfg)
	err := cfg.Parse([]string{"--gateways=gw=ftp://admin:pw@x"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "GATEWAYS") || !strings.Contains(err.Error(), "DEVICE_MEDIA_URL_TABLE") {
		t.Fatalf("want GATEWAYS and missing resources reported, got %v", err)
	}
	if strings.Contains(err.Error(), "pw@") {
		t.Fatalf("error repeats the credentials: %v", err)
	}
}
