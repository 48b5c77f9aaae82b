package inproc

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// track is one media description of the DESCRIBE answer.
type track struct {
	media     string // video, audio
	payload   uint8
	encoding  string // upper case: H264, H265, MPEG4-GENERIC, PCMU…
	clockRate int
	channels  int
	control   string
	fmtp      map[string]string // keys lower case
}

// parseSDP reads the media descriptions of a session description. Only
// what recording needs is kept; lines it does not know are ignored (camera
// SDPs are often not strictly valid).
func parseSDP(body []byte) ([]track, error) {
	var tracks []track
	var cur *track
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimRight(line, "\r")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		k, v := line[0], line[2:]
		switch {
		case k == 'm':
			f := strings.Fields(v)
			if len(f) < 4 {
				return nil, fmt.Errorf("sdp: bad media line %q", line)
			}
			pt, err := strconv.Atoi(f[3])
			if err != nil || pt < 0 || pt > 127 {
				return nil, fmt.Errorf("sdp: bad payload type in %q", line)
			}
			tracks = append(tracks, track{media: f[0], payload: uint8(pt), fmtp: map[string]string{}})
			cur = &tracks[len(tracks)-1]
			cur.encoding, cur.clockRate = staticPayload(cur.payload)
		case k == 'a' && cur != nil:
			name, val, _ := strings.Cut(v, ":")
			switch name {
			case "control":
				cur.control = val
			case "rtpmap":
				pt, enc, _ := strings.Cut(val, " ")
				if p, err := strconv.Atoi(pt); err != nil || p != int(cur.payload) {
					continue
				}
				parts := strings.Split(enc, "/")
				cur.encoding = strings.ToUpper(parts[0])
				if len(parts) > 1 {
					cur.clockRate, _ = strconv.Atoi(parts[1])
				}
				if len(parts) > 2 {
					cur.channels, _ = strconv.Atoi(parts[2])
				}
			case "fmtp":
				pt, params, _ := strings.Cut(val, " ")
				if p, err := strconv.Atoi(pt); err != nil || p != int(cur.payload) {
					continue
				}
				for _, kv := range strings.Split(params, ";") {
					k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
					if k != "" {
						cur.fmtp[strings.ToLower(k)] = strings.TrimSpace(v)
					}
				}
			}
		}
	}
	if len(tracks) == 0 {
		return nil, fmt.Errorf("sdp: no media")
	}
	return tracks, nil
}

func staticPayload(pt uint8) (string, int) {
	switch pt {
	case 0:
		return "PCMU", 8000
	case 8:
		return "PCMA", 8000
	}
	return "", 0
}

// parameterSets returns the Annex-B parameter sets a track's fmtp carries
// (H.264 sprop-parameter-sets; H.265 sprop-vps/sps/pps), to put in front of
// keyframes that come without them.
func (t track) parameterSets() []byte {
	var keys []string
	switch t.encoding {
	case "H264":
		keys = []string{"sprop-parameter-sets"}
	case "H265":
		keys = []string{"sprop-vps", "sprop-sps", "sprop-pps"}
	}
	var out []byte
	for _, k := range keys {
		for _, b64 := range strings.Split(t.fmtp[k], ",") {
			nal, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
			if err != nil || len(nal) == 0 {
				continue
			}
			out = append(out, 0, 0, 0, 1)
			out = append(out, nal...)
		}
	}
	return out
}

// aacConfig is what RFC 3640 mpeg4-generic AAC (mode AAC-hbr) needs.
type aacConfig struct {
	objectType, freqIndex, channels int
	sampleRate                      int
	sizeLength, indexLength         int
	indexDeltaLength                int
}

var aacRates = []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

func (t track) aac() (aacConfig, error) {
	var c aacConfig
	if t.encoding != "MPEG4-GENERIC" {
		return c, fmt.Errorf("not mpeg4-generic")
	}
	if m := strings.ToLower(t.fmtp["mode"]); m != "aac-hbr" && m != "aac-lbr" {
		return c, fmt.Errorf("mpeg4-generic mode %q", t.fmtp["mode"])
	}
	cfg, err := hex.DecodeString(t.fmtp["config"])
	if err != nil || len(cfg) < 2 {
		return c, fmt.Errorf("mpeg4-generic: bad config %q", t.fmtp["config"])
	}
	c.objectType = int(cfg[0] >> 3)
	c.freqIndex = int(cfg[0]&7)<<1 | int(cfg[1]>>7)
	c.channels = int(cfg[1]>>3) & 0xf
	if c.objectType == 0 || c.objectType > 4 || c.freqIndex >= len(aacRates) || c.channels == 0 || c.channels > 7 {
		return c, fmt.Errorf("mpeg4-generic: unsupported config %x (object type, rate index or channels)", cfg)
	}
	c.sampleRate = aacRates[c.freqIndex]
	atoi := func(k string) int { n, _ := strconv.Atoi(t.fmtp[k]); return n }
	c.sizeLength, c.indexLength, c.indexDeltaLength = atoi("sizelength"), atoi("indexlength"), atoi("indexdeltalength")
	if c.sizeLength == 0 {
		return c, fmt.Errorf("mpeg4-generic: no sizelength")
	}
	return c, nil
}
