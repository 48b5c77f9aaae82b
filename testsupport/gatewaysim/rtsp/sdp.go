package rtsp

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"strings"

	"github.com/pion/sdp/v3"
)

// describeSDP is the DESCRIBE answer: an H.264 video track with the
// parameter sets inline, so a client can configure its decoder before the
// first keyframe arrives, and, if audio is set, an AAC track
// (mpeg4-generic, AAC-hbr, the AudioSpecificConfig inline).
func describeSDP(c *clip, audio *audioClip, local net.Addr) ([]byte, error) {
	addrType, addr := "IP4", "0.0.0.0"
	if tcp, ok := local.(*net.TCPAddr); ok {
		if tcp.IP.To4() != nil {
			addr = tcp.IP.String()
		} else {
			addrType, addr = "IP6", tcp.IP.String()
		}
	}
	sps := base64.StdEncoding.EncodeToString(c.sps)
	pps := base64.StdEncoding.EncodeToString(c.pps)
	profileLevelID := strings.ToUpper(hex.EncodeToString(c.sps[1:4]))
	desc := sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "-", SessionID: 1, SessionVersion: 1,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: addr,
		},
		SessionName: "Media Presentation",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: addr},
		},
		TimeDescriptions: []sdp.TimeDescription{{}},
		Attributes: []sdp.Attribute{
			sdp.NewAttribute("control", "*"),
			sdp.NewAttribute("range", "npt=now-"),
		},
		MediaDescriptions: []*sdp.MediaDescription{{
			MediaName: sdp.MediaName{
				Media:   "video",
				Port:    sdp.RangedPort{Value: 0},
				Protos:  []string{"RTP", "AVP"},
				Formats: []string{fmt.Sprint(payloadTypeH264)},
			},
			Attributes: []sdp.Attribute{
				sdp.NewAttribute("rtpmap", fmt.Sprintf("%d H264/%d", payloadTypeH264, clockRate)),
				sdp.NewAttribute("fmtp", fmt.Sprintf("%d packetization-mode=1;profile-level-id=%s;sprop-parameter-sets=%s,%s",
					payloadTypeH264, profileLevelID, sps, pps)),
				sdp.NewAttribute("framerate", fmt.Sprint(frameRate)),
				sdp.NewAttribute("control", trackName),
			},
		}},
	}
	if audio != nil {
		desc.MediaDescriptions = append(desc.MediaDescriptions, &sdp.MediaDescription{
			MediaName: sdp.MediaName{
				Media:   "audio",
				Port:    sdp.RangedPort{Value: 0},
				Protos:  []string{"RTP", "AVP"},
				Formats: []string{fmt.Sprint(payloadTypeAudio)},
			},
			Attributes: []sdp.Attribute{
				sdp.NewAttribute("rtpmap", fmt.Sprintf("%d MPEG4-GENERIC/%d/%d", payloadTypeAudio, audio.rate, audio.channels)),
				sdp.NewAttribute("fmtp", fmt.Sprintf("%d streamtype=5;profile-level-id=15;mode=AAC-hbr;config=%s;sizelength=13;indexlength=3;indexdeltalength=3",
					payloadTypeAudio, hex.EncodeToString(audio.config))),
				sdp.NewAttribute("control", audioTrackName),
			},
		})
	}
	body, err := desc.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal SDP: %w", err)
	}
	return body, nil
}
