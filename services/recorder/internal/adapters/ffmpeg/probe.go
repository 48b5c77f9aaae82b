package ffmpeg

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// ProbeDuration returns the media duration of a file in seconds, as
// ffprobe computes it from the timestamps that made it to disk (used for
// segments whose ffmpeg was killed before it could list them).
func ProbeDuration(ctx context.Context, ffprobe, path string) (float64, error) {
	out, err := exec.CommandContext(ctx, ffprobe, "-v", "error", "-show_entries", "format=duration",
		"-of", "default=noprint_wrappers=1:nokey=1", path).Output()
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s: duration %q: %w", path, strings.TrimSpace(string(out)), err)
	}
	return d, nil
}
