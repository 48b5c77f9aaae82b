package rtsp

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	audioRate        = 16000 // Hz: the AAC clock of a camera's microphone track
	samplesPerAAC    = 1024  // samples per AAC-LC frame
	payloadTypeAudio = 97
	// audioFrameDuration is one AAC frame: 64 ms at 16 kHz, a whole number
	// of nanoseconds, so audio frame times are exact.
	audioFrameDuration = time.Duration(samplesPerAAC) * time.Second / audioRate
)

// audioRecipe renders the audio clip: a 1 kHz tone with a 2 kHz beep at
// every second (ffmpeg's sine source), so second marks are audible.
type audioRecipe struct {
	rate, bitrateKbps, seconds int
}

func defaultAudioRecipe() audioRecipe {
	return audioRecipe{rate: audioRate, bitrateKbps: 32, seconds: loopSeconds}
}

func (r audioRecipe) ffmpegArgs(out string) []string {
	return []string{
		"-nostdin", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=1000:beep_factor=2:sample_rate=%d:duration=%d", r.rate, r.seconds),
		"-vn", "-ac", "1", "-c:a", "aac", "-b:a", strconv.Itoa(r.bitrateKbps) + "k",
		"-f", "adts", out,
	}
}

func (r audioRecipe) fileName() string {
	sum := sha256.Sum256([]byte(strings.Join(r.ffmpegArgs(""), "\x00")))
	return fmt.Sprintf("audio-%dHz-%s.aac", r.rate, hex.EncodeToString(sum[:6]))
}

func (r audioRecipe) label() string { return "audio" }

// audioClip is a looped AAC stream, ready to send: each frame is one RTP
// payload in RFC 3640's AAC-hbr mode (AU-headers-length, one 16-bit AU
// header of 13 bits size and 3 bits index, the raw frame). It is read-only
// once loaded and shared by all sources.
type audioClip struct {
	rate, channels int
	config         []byte // AudioSpecificConfig, for the SDP's config=
	frames         []clipFrame
}

func loadAudio(dir string, r audioRecipe) (*audioClip, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a, err := loadCached(ctx, dir, r, func(path string) (*audioClip, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read audio: %w", err)
		}
		a, err := parseADTS(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
		}
		return a, nil
	})
	if err != nil {
		return nil, err
	}
	if a.rate != r.rate {
		return nil, fmt.Errorf("%w: audio is %d Hz, want %d", errBadMedia, a.rate, r.rate)
	}
	return a, nil
}

var adtsRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// parseADTS splits an ADTS stream into AAC frames and packs each into an
// RTP payload. All frames must share one configuration.
func parseADTS(data []byte) (*audioClip, error) {
	var a audioClip
	for len(data) > 0 {
		if len(data) < 7 || data[0] != 0xff || data[1]&0xf6 != 0xf0 {
			return nil, fmt.Errorf("%w: no ADTS sync word", errBadMedia)
		}
		headerLen := 7
		if data[1]&1 == 0 { // protection_absent = 0: a CRC follows the header
			headerLen = 9
		}
		objectType := int(data[2]>>6) + 1
		rateIndex := int(data[2] >> 2 & 0xf)
		channels := int(data[2]&1)<<2 | int(data[3]>>6)
		frameLen := int(data[3]&3)<<11 | int(data[4])<<3 | int(data[5]>>5)
		if data[6]&3 != 0 {
			return nil, fmt.Errorf("%w: ADTS frame with several raw blocks", errBadMedia)
		}
		if rateIndex >= len(adtsRates) || channels == 0 || frameLen <= headerLen || frameLen > len(data) {
			return nil, fmt.Errorf("%w: bad ADTS header", errBadMedia)
		}
		config := []byte{byte(objectType<<3 | rateIndex>>1), byte(rateIndex&1<<7 | channels<<3)}
		if a.config == nil {
			a.config, a.rate, a.channels = config, adtsRates[rateIndex], channels
		} else if string(config) != string(a.config) {
			return nil, fmt.Errorf("%w: ADTS configuration changes mid-stream", errBadMedia)
		}
		raw := data[headerLen:frameLen]
		if len(raw) >= 1<<13 {
			return nil, fmt.Errorf("%w: AAC frame of %d bytes", errBadMedia, len(raw))
		}
		payload := make([]byte, 4+len(raw))
		binary.BigEndian.PutUint16(payload, 16)                      // AU-headers-length in bits: one header
		binary.BigEndian.PutUint16(payload[2:], uint16(len(raw))<<3) // AU-size, AU-index 0
		copy(payload[4:], raw)
		a.frames = append(a.frames, clipFrame{payloads: [][]byte{payload}, key: true, size: len(payload)})
		data = data[frameLen:]
	}
	if len(a.frames) == 0 {
		return nil, fmt.Errorf("%w: no AAC frames", errBadMedia)
	}
	return &a, nil
}
