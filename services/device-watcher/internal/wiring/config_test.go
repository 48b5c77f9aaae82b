package wiring_test

import (
	"io"
	"strings"
	"testing"

	"mediagw/pkg/service"
	"mediagw/services/device-watcher/internal/wiring"
)

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
