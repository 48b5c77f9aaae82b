package domain

import (
	"strings"
	"testing"
)

func TestParseChannels(t *testing.T) {
	got, err := ParseChannels(" 1=rtsp://gw:554/Streaming/Channels/d1/101 ,2=rtsp://gw/Streaming/Channels/d1/201?transportmode=unicast", "d1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (Channel{"1", "rtsp://gw:554/Streaming/Channels/d1/101"}) || got[1].ID != "2" || !strings.HasSuffix(got[1].URL, "unicast") {
		t.Fatalf("got %+v", got)
	}
	for in, wantInErr := range map[string]string{
		"":                               "no channels",
		"1":                              "entry 1",
		"1=http://gw/x":                  "channel 1: not an rtsp",
		"1=rtsp:///x":                    "channel 1: not an rtsp",
		"../x=rtsp://gw/x":               "device",
		"x/..y=rtsp://gw/x":              "channel",
		"1=rtsp://gw/a,1=rtsp://gw/b":    "listed twice",
		"1=rtsp://admin:hunter2@gw/x":    "carries credentials",
		"d1/1=rtsp://gw/a,1=rtsp://gw/b": "listed twice", // d1 is the process's device
		"../1=rtsp://gw/x":               "device",
		"d2/=rtsp://gw/x":                "channel",
	} {
		_, err := ParseChannels(in, "d1")
		if err == nil || !strings.Contains(err.Error(), wantInErr) {
			t.Errorf("ParseChannels(%q) = %v, want an error with %q", in, err, wantInErr)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

// Channels of other devices of the gateway: "<device>/<channel>".
func TestParseChannelsOfSeveralDevices(t *testing.T) {
	got, err := ParseChannels("1=rtsp://gw/d1/101,d2/1=rtsp://gw/d2/101,d1/2=rtsp://gw/d1/201", "d1")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range got {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, " ") != "1 d2/1 2" {
		t.Fatalf("ids %v", ids)
	}
	if d, c := SplitChannelID("d2/1"); d != "d2" || c != "1" {
		t.Errorf("split d2/1: %q %q", d, c)
	}
	if d, c := SplitChannelID("1"); d != "" || c != "1" {
		t.Errorf("split 1: %q %q", d, c)
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
