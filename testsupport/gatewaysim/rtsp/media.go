package rtsp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pion/rtp/codecs"
)

const (
	frameRate     = 25
	clockRate     = 90000
	ticksPerFrame = clockRate / frameRate
	gopFrames     = 2 * frameRate // 2 s GOP, like a camera's default I-frame interval
	loopSeconds   = 30            // a whole number of GOPs, so the loop wraps onto a keyframe
	// maxPayload keeps RTP packets within an Ethernet MTU, as a camera does,
	// although interleaved TCP would allow up to 64 KiB.
	maxPayload = 1400
)

var errBadMedia = errors.New("bad H.264 media")

// mediaRecipe describes one generated clip. Its fields, and therefore the
// ffmpeg command line, determine the cache file name, so changing the recipe
// regenerates the media instead of serving a stale file.
type mediaRecipe struct {
	name          string
	width, height int
	bitrateKbps   int
	seconds       int
	// noise adds temporal noise to the test pattern, so that the encoder
	// needs the whole bitrate, as a real scene does (testsrc2 alone
	// compresses to a fraction of a 1080p camera's bitrate).
	noise bool
}

func mainRecipe() mediaRecipe {
	return mediaRecipe{name: "main", width: 1280, height: 720, bitrateKbps: 3000, seconds: loopSeconds}
}

// fullHDRecipe is a camera's usual main stream: 1920x1080 at about 4 Mbit/s.
func fullHDRecipe() mediaRecipe {
	return mediaRecipe{name: "main", width: 1920, height: 1080, bitrateKbps: 4000, seconds: loopSeconds, noise: true}
}

func subRecipe() mediaRecipe {
	return mediaRecipe{name: "sub", width: 640, height: 360, bitrateKbps: 512, seconds: loopSeconds}
}

// ffmpegArgs is the command that renders the recipe to an Annex-B file.
// testsrc2 draws its own running clock (hh:mm:ss.ms and frame number) in the
// top left corner, so time is visible without depending on installed fonts.
// Constant 2 s GOPs (no scene-cut keyframes), no B-frames, SPS/PPS in front
// of every IDR so any keyframe is a valid starting point.
func (r mediaRecipe) ffmpegArgs(out string) []string {
	rate := strconv.Itoa(r.bitrateKbps) + "k"
	src := fmt.Sprintf("testsrc2=size=%dx%d:rate=%d:duration=%d", r.width, r.height, frameRate, r.seconds)
	if r.noise {
		src += ",noise=alls=8:allf=t"
	}
	return []string{
		"-nostdin", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", src,
		"-an",
		"-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(gopFrames), "-keyint_min", strconv.Itoa(gopFrames), "-sc_threshold", "0", "-bf", "0",
		"-b:v", rate, "-maxrate", rate, "-bufsize", rate,
		"-x264-params", "repeat-headers=1",
		"-bsf:v", "h264_mp4toannexb",
		"-f", "h264", out,
	}
}

func (r mediaRecipe) fileName() string {
	sum := sha256.Sum256([]byte(strings.Join(r.ffmpegArgs(""), "\x00")))
	return fmt.Sprintf("%s-%dx%d-%s.h264", r.name, r.width, r.height, hex.EncodeToString(sum[:6]))
}

func (r mediaRecipe) label() string { return r.name }

// recipe is something ensureMedia renders with ffmpeg into a cache file.
type recipe interface {
	ffmpegArgs(out string) []string
	fileName() string // derived from the arguments, so a new recipe renders anew
	label() string
}

// ensureMedia returns the path of the recipe's cached clip in dir, generating
// it with ffmpeg if missing. Several processes may race here: each renders to
// its own temporary file and renames it into place atomically, so a reader
// never sees a partial file.
func ensureMedia(ctx context.Context, dir string, r recipe) (string, error) {
	final := filepath.Join(dir, r.fileName())
	if _, err := os.Stat(final); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create media dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, r.fileName()+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("create temp media file: %w", err)
	}
	tmpName := tmp.Name()
	_ = tmp.Close()
	defer os.Remove(tmpName) // no-op after a successful rename

	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "", fmt.Errorf("generate %s media: %w", r.label(), err)
	}
	cmd := exec.CommandContext(ctx, ffmpeg, r.ffmpegArgs(tmpName)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("generate %s media: ffmpeg: %w: %s", r.label(), err, truncate(stderr.String(), 500))
	}
	if err := os.Rename(tmpName, final); err != nil {
		return "", fmt.Errorf("install %s media: %w", r.label(), err)
	}
	return final, nil
}

func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// clip is a looped H.264 stream, ready to send: each frame already cut into
// RTP payloads. It is read-only once loaded and shared by all sources.
type clip struct {
	width, height int
	sps, pps      []byte
	frames        []clipFrame // frames[0] is a keyframe
}

type clipFrame struct {
	payloads [][]byte // RTP payloads in send order; the last one carries the marker bit
	key      bool
	size     int // total payload bytes
}

// loadClip reads a generated clip from disk.
func loadClip(path string) (*clip, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read media: %w", err)
	}
	c, err := parseClip(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return c, nil
}

// parseClip splits an Annex-B stream into access units and packetizes them
// (the payloads are copies; data is not retained).
// Every keyframe is made self-contained (SPS and PPS in front of the IDR), so
// a client may join at any keyframe.
func parseClip(data []byte) (*clip, error) {
	var (
		c       clip
		units   [][][]byte // access units, each a list of NAL units
		current [][]byte
		hasVCL  bool
	)
	flush := func() {
		if len(current) > 0 && hasVCL {
			units = append(units, current)
		}
		current, hasVCL = nil, false
	}
	for _, nal := range splitAnnexB(data) {
		typ := nal[0] & 0x1f
		switch {
		case typ == 1 || typ == 5:
			// first_mb_in_slice is the first ue(v) of the slice header; a
			// leading 1 bit means 0, i.e. the first slice of a new picture.
			if hasVCL && len(nal) > 1 && nal[1]&0x80 != 0 {
				flush()
			}
			current = append(current, nal)
			hasVCL = true
		case typ == 6 || typ == 7 || typ == 8 || typ == 9:
			if hasVCL {
				flush()
			}
			// Copies: the file's buffer should not stay alive for them.
			if typ == 7 && c.sps == nil {
				c.sps = bytes.Clone(nal)
			}
			if typ == 8 && c.pps == nil {
				c.pps = bytes.Clone(nal)
			}
			if typ != 9 { // access unit delimiters carry nothing a client needs
				current = append(current, nal)
			}
		default:
			// Filler data and anything else not needed for decoding.
		}
	}
	flush()
	if c.sps == nil || c.pps == nil {
		return nil, fmt.Errorf("%w: no SPS/PPS", errBadMedia)
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("%w: no frames", errBadMedia)
	}
	w, h, err := spsResolution(c.sps)
	if err != nil {
		return nil, err
	}
	c.width, c.height = w, h

	payloader := codecs.H264Payloader{DisableStapA: true}
	for _, unit := range units {
		key, hasSPS, hasPPS := false, false, false
		for _, nal := range unit {
			switch nal[0] & 0x1f {
			case 5:
				key = true
			case 7:
				hasSPS = true
			case 8:
				hasPPS = true
			}
		}
		if key && !hasPPS {
			unit = append([][]byte{c.pps}, unit...)
		}
		if key && !hasSPS {
			unit = append([][]byte{c.sps}, unit...)
		}
		f := clipFrame{key: key}
		for _, nal := range unit {
			for _, p := range payloader.Payload(maxPayload, nal) {
				f.payloads = append(f.payloads, p)
				f.size += len(p)
			}
		}
		c.frames = append(c.frames, f)
	}
	if !c.frames[0].key {
		return nil, fmt.Errorf("%w: first frame is not a keyframe", errBadMedia)
	}
	return &c, nil
}

// splitAnnexB returns the NAL units of an Annex-B byte stream (without start
// codes), sharing memory with data.
func splitAnnexB(data []byte) [][]byte {
	startCode := []byte{0, 0, 1}
	var nals [][]byte
	i := bytes.Index(data, startCode)
	for i >= 0 {
		begin := i + 3
		next := bytes.Index(data[begin:], startCode)
		end := len(data)
		if next >= 0 {
			end = begin + next
		}
		nal := data[begin:end]
		// Trailing zero bytes belong to the next (4-byte) start code.
		nal = bytes.TrimRight(nal, "\x00")
		if len(nal) > 0 {
			nals = append(nals, nal)
		}
		if next < 0 {
			break
		}
		i = begin + next
	}
	return nals
}

// spsResolution reads the picture size from an SPS, enough to check the
// generated media and to describe it; it handles the profiles x264 emits.
func spsResolution(sps []byte) (width, height int, err error) {
	br := &bitReader{data: unescapeRBSP(sps[1:])}
	profile := br.bits(8)
	br.bits(16) // constraint flags, level
	br.ue()     // seq_parameter_set_id
	if profile == 100 || profile == 110 || profile == 122 || profile == 244 || profile == 44 ||
		profile == 83 || profile == 86 || profile == 118 || profile == 128 {
		chroma := br.ue()
		if chroma == 3 {
			br.bits(1)
		}
		br.ue()    // bit_depth_luma
		br.ue()    // bit_depth_chroma
		br.bits(1) // qpprime_y_zero_transform_bypass
		if br.bits(1) == 1 {
			return 0, 0, fmt.Errorf("%w: SPS scaling matrices not supported", errBadMedia)
		}
	}
	br.ue() // log2_max_frame_num
	pocType := br.ue()
	switch pocType {
	case 0:
		br.ue()
	case 1:
		br.bits(1)
		br.se()
		br.se()
		n := br.ue()
		for i := 0; i < n && !br.failed; i++ {
			br.se()
		}
	}
	br.ue()    // max_num_ref_frames
	br.bits(1) // gaps_in_frame_num_allowed
	widthMBs := br.ue() + 1
	heightMapUnits := br.ue() + 1
	frameMBsOnly := br.bits(1)
	if frameMBsOnly == 0 {
		br.bits(1)
	}
	br.bits(1) // direct_8x8_inference
	var cropL, cropR, cropT, cropB int
	if br.bits(1) == 1 {
		cropL, cropR, cropT, cropB = br.ue(), br.ue(), br.ue(), br.ue()
	}
	if br.failed {
		return 0, 0, fmt.Errorf("%w: truncated SPS", errBadMedia)
	}
	width = widthMBs*16 - 2*(cropL+cropR)
	height = (2-frameMBsOnly)*heightMapUnits*16 - 2*(2-frameMBsOnly)*(cropT+cropB)
	return width, height, nil
}

func unescapeRBSP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

type bitReader struct {
	data   []byte
	pos    int
	failed bool
}

func (r *bitReader) bits(n int) int {
	v := 0
	for range n {
		if r.pos >= len(r.data)*8 {
			r.failed = true
			return 0
		}
		bit := (r.data[r.pos/8] >> (7 - r.pos%8)) & 1
		v = v<<1 | int(bit)
		r.pos++
	}
	return v
}

func (r *bitReader) ue() int {
	zeros := 0
	for r.bits(1) == 0 && !r.failed {
		zeros++
		if zeros > 31 {
			r.failed = true
			return 0
		}
	}
	if r.failed {
		return 0
	}
	return 1<<zeros - 1 + r.bits(zeros)
}

func (r *bitReader) se() int {
	k := r.ue()
	if k%2 == 1 {
		return (k + 1) / 2
	}
	return -k / 2
}

// MediaOptions chooses the media a server streams.
type MediaOptions struct {
	// FullHD makes main streams 1920x1080 at about 4 Mbit/s (a camera's
	// usual main stream, what the recorder's benchmark needs) instead of
	// 1280x720 at about 3 Mbit/s. Sub streams stay 640x360.
	FullHD bool
	// Audio adds a second track to every stream: AAC-LC, mono, 16 kHz,
	// about 32 kbit/s (RTP mpeg4-generic, RFC 3640), as cameras with a
	// microphone send.
	Audio bool
}

// Media is what a server streams: the main and the sub stream's H.264
// clips and, optionally, the AAC clip both carry. It is read-only once
// loaded, so one Media may serve any number of servers.
type Media struct {
	clips [2]*clip // indexed by mainStream, subStream
	audio *audioClip
}

// LoadMedia loads the default media (720p main streams, no audio) cached in
// dir, rendering it with ffmpeg first if dir does not have it yet.
func LoadMedia(dir string) (*Media, error) {
	return LoadMediaOptions(dir, MediaOptions{})
}

// LoadMediaOptions is LoadMedia for the media opts chooses.
func LoadMediaOptions(dir string, opts MediaOptions) (*Media, error) {
	main := mainRecipe()
	if opts.FullHD {
		main = fullHDRecipe()
	}
	clips, err := loadMedia(dir, main, subRecipe())
	if err != nil {
		return nil, fmt.Errorf("rtsp: media: %w", err)
	}
	m := &Media{clips: [2]*clip{clips[0], clips[1]}}
	if opts.Audio {
		if m.audio, err = loadAudio(dir, defaultAudioRecipe()); err != nil {
			return nil, fmt.Errorf("rtsp: media: %w", err)
		}
	}
	return m, nil
}

// loadMedia makes sure both clips exist in dir and loads them.
func loadMedia(dir string, recipes ...mediaRecipe) ([]*clip, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	clips := make([]*clip, 0, len(recipes))
	for _, r := range recipes {
		c, err := loadCached(ctx, dir, r, loadClip)
		if err != nil {
			return nil, err
		}
		if c.width != r.width || c.height != r.height {
			return nil, fmt.Errorf("%w: %s media is %dx%d, want %dx%d", errBadMedia, r.name, c.width, c.height, r.width, r.height)
		}
		clips = append(clips, c)
	}
	return clips, nil
}

// loadCached renders r into dir if needed and loads it; a cache file that
// does not load (disk trouble, manual edits) is rendered anew once.
func loadCached[T any](ctx context.Context, dir string, r recipe, load func(string) (T, error)) (T, error) {
	var zero T
	path, err := ensureMedia(ctx, dir, r)
	if err != nil {
		return zero, err
	}
	v, err := load(path)
	if err == nil {
		return v, nil
	}
	_ = os.Remove(path)
	if path, err = ensureMedia(ctx, dir, r); err != nil {
		return zero, err
	}
	return load(path)
}
