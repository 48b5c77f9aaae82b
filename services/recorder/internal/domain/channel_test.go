package domain

import (
	"strings"
	"testing"
)

func TestParseChannels(t *testing.T) {
	got, err := ParseChannels(" 1=rtsp://gw:554/Streaming/Channels/d1/101 ,2=rtsp://gw/Streaming/Channels/d1/201?transportmode=unicast")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (Channel{"1", "rtsp://gw:554/Streaming/Channels/d1/101"}) || got[1].ID != "2" || !strings.HasSuffix(got[1].URL, "unicast") {
		t.Fatalf("got %+v", got)
	}
	for in, wantInErr := range map[string]string{
		"":                            "no channels",
		"1":                           "entry 1",
		"1=http://gw/x":               "channel 1: not an rtsp",
		"1=rtsp:///x":                 "channel 1: not an rtsp",
		"../x=rtsp://gw/x":            "channel",
		"1=rtsp://gw/a,1=rtsp://gw/b": "listed twice",
		"1=rtsp://admin:hunter2@gw/x": "carries credentials",
	} {
		_, err := ParseChannels(in)
		if err == nil || !strings.Contains(err.Error(), wantInErr) {
			t.Errorf("ParseChannels(%q) = %v, want an error with %q", in, err, wantInErr)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"1", "gw-01", "6e0b1f7a-2c4d-4b8e-9f00-1234567890ab", "cam.1"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "-x", "a b"} {
		if ValidName(bad) == nil {
			t.Errorf("ValidName(%q) accepted", bad)
		}
	}
}
