package domain

import (
	"fmt"
	"regexp"
)

// Container is the segment file format.
type Container string

const (
	// MPEGTS keeps everything written so far playable when ffmpeg dies
	// mid-segment: there is no index to finalise.
	MPEGTS Container = "ts"
	// FragmentedMP4 is MP4 with a fragment per keyframe: a killed segment
	// keeps all complete fragments.
	FragmentedMP4 Container = "fmp4"
)

// Ext is the file extension of the container.
func (c Container) Ext() string {
	if c == FragmentedMP4 {
		return "mp4"
	}
	return "ts"
}

// ContentType is the MIME type of a segment file.
func (c Container) ContentType() string {
	if c == FragmentedMP4 {
		return "video/mp4"
	}
	return "video/mp2t"
}

// ParseContainer reads "ts" (or "mpegts") and "fmp4".
func ParseContainer(s string) (Container, error) {
	switch s {
	case "ts", "mpegts":
		return MPEGTS, nil
	case "fmp4":
		return FragmentedMP4, nil
	}
	return "", fmt.Errorf("unknown container %q (want ts or fmp4)", s)
}

// Codecs the recorder can transcode to, by the name used in configuration
// and S3 metadata.
var codecs = map[string]bool{"h264": true, "hevc": true}

// Transcodes reports whether codec asks for transcoding ("" and "copy" do not).
func Transcodes(codec string) bool { return codecs[codec] }

// ValidCodec reports whether name is "copy" (or empty) or a codec we can encode.
func ValidCodec(name string) error {
	if name == "" || name == "copy" || codecs[name] {
		return nil
	}
	return fmt.Errorf("unknown codec %q (want copy, h264 or hevc)", name)
}

var sizeRE = regexp.MustCompile(`^(-2|[1-9][0-9]*)x(-2|[1-9][0-9]*)$`)

// ParseSize reads a resize target "WIDTHxHEIGHT"; -2 for one side keeps
// the aspect ratio. An empty size is no resize.
func ParseSize(s string) (width, height string, err error) {
	if s == "" {
		return "", "", nil
	}
	m := sizeRE.FindStringSubmatch(s)
	if m == nil || (m[1] == "-2" && m[2] == "-2") {
		return "", "", fmt.Errorf("size %q is not WIDTHxHEIGHT (one side may be -2)", s)
	}
	return m[1], m[2], nil
}

// ValidSize checks a resize target (see ParseSize).
func ValidSize(s string) error {
	_, _, err := ParseSize(s)
	return err
}
