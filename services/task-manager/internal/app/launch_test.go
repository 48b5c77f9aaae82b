package app

import (
	"errors"
	"slices"
	"testing"

	"mediagw/services/task-manager/internal/domain"
)

func packedSpec() Spec {
	return Spec{Device: "cam-1", Gateway: "gw-1", Token: "tok", Channels: []domain.Channel{
		{Number: 1, MediaURL: "rtsp://10.0.0.5:554/Streaming/Channels/101"},
	}, Packed: []PackedDevice{
		{Device: "cam-2", Channels: []domain.Channel{{Number: 1, MediaURL: "rtsp://10.0.0.5:554/Streaming/Channels/201"}, {Number: 2, MediaURL: "rtsp://10.0.0.5:554/Streaming/Channels/202"}}},
		{Device: "cam-3", Channels: []domain.Channel{{Number: 1, MediaURL: "rtsp://10.0.0.5:554/Streaming/Channels/301"}}},
	}}
}

func TestPackedSpecBecomesDevicePrefixedChannelEntries(t *testing.T) {
	s := packedSpec()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.ChannelCount() != 4 || !slices.Equal(s.PackedDevices(), []string{"cam-2", "cam-3"}) {
		t.Errorf("count %d, packed %v", s.ChannelCount(), s.PackedDevices())
	}
	var chans string
	for _, v := range (Recorder{}).Env(s, "") {
		if v.Name == EnvChannels {
			chans = v.Value
		}
	}
	want := "1=rtsp://10.0.0.5:554/Streaming/Channels/101,cam-2/1=rtsp://10.0.0.5:554/Streaming/Channels/201," +
		"cam-2/2=rtsp://10.0.0.5:554/Streaming/Channels/202,cam-3/1=rtsp://10.0.0.5:554/Streaming/Channels/301"
	if chans != want {
		t.Errorf("%s = %q, want %q", EnvChannels, chans, want)
	}
	if got := ParseChannels(chans); !slices.Equal(got, []int32{1}) {
		t.Errorf("own channels read back %v", got)
	}
	if got := ParsePackedDevices(chans); !slices.Equal(got, []string{"cam-2", "cam-3"}) {
		t.Errorf("packed devices read back %v", got)
	}
	if got := ParsePackedDevices("1=rtsp://h/1,2=rtsp://h/2"); got != nil {
		t.Errorf("unpacked task has packed devices %v", got)
	}
}

func TestPackedSpecIsValidated(t *testing.T) {
	for name, mutate := range map[string]func(*Spec){
		"the task's own device again": func(s *Spec) { s.Packed[0].Device = "cam-1" },
		"a device twice":              func(s *Spec) { s.Packed[1].Device = "cam-2" },
		"a bad device index":          func(s *Spec) { s.Packed[0].Device = "../x" },
		"no channels":                 func(s *Spec) { s.Packed[1].Channels = nil },
		"credentials in a URL":        func(s *Spec) { s.Packed[1].Channels[0].MediaURL = "rtsp://admin:pw@10.0.0.5/x" },
	} {
		s := packedSpec()
		mutate(&s)
		if err := s.Validate(); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
