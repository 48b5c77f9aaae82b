package inproc

import "testing"

func TestRTPInfoFor(t *testing.T) {
	info := map[string]uint32{
		"rtsp://10.0.0.1:554/Streaming/Channels/101/trackID=1": 100,
		"rtsp://10.0.0.1:554/Streaming/Channels/101/trackID=2": 200,
	}
	for url, want := range map[string]uint32{
		"rtsp://10.0.0.1:554/Streaming/Channels/101/trackID=1": 100, // exact
		"rtsp://gw:554/Streaming/Channels/101/trackID=2":       200, // another host name
	} {
		if v, ok := rtpInfoFor(info, url, 2); !ok || v != want {
			t.Errorf("%s: %d %v, want %d", url, v, ok, want)
		}
	}
	if _, ok := rtpInfoFor(info, "rtsp://gw/x/trackID=3", 2); ok {
		t.Error("a track without an entry got one")
	}
	if v, ok := rtpInfoFor(map[string]uint32{"rtsp://gw/x": 7}, "rtsp://gw/x/trackID=1", 1); !ok || v != 7 {
		t.Error("the only entry of a one-track session was not taken")
	}
}

func TestParseSDPAndAACConfig(t *testing.T) {
	sdp := "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\na=fmtp:96 sprop-vps=QAEMAf//;sprop-sps=QgEB;sprop-pps=RAHA\r\na=control:trackID=1\r\n" +
		"m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\na=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190\r\na=control:trackID=2\r\n" +
		"m=audio 0 RTP/AVP 0\r\na=control:trackID=3\r\n"
	tracks, err := parseSDP([]byte(sdp))
	if err != nil || len(tracks) != 3 {
		t.Fatalf("%v %+v", err, tracks)
	}
	if tracks[0].encoding != "H265" || tracks[0].clockRate != 90000 || len(tracks[0].parameterSets()) == 0 {
		t.Errorf("video %+v", tracks[0])
	}
	c, err := tracks[1].aac()
	if err != nil || c.sampleRate != 48000 || c.channels != 2 || c.objectType != 2 || c.sizeLength != 13 {
		t.Errorf("aac %+v %v", c, err)
	}
	if tracks[2].encoding != "PCMU" || tracks[2].clockRate != 8000 {
		t.Errorf("static payload type 0: %+v", tracks[2])
	}
	if _, err := tracks[2].aac(); err == nil {
		t.Error("PCMU taken for AAC")
	}
}
