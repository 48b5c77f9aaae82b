package rtsp

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGeneratedMediaLoopsWholeGOPs(t *testing.T) {
	clips, err := loadMedia(mediaDir, mainRecipe(), subRecipe())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []mediaRecipe{mainRecipe(), subRecipe()} {
		c := clips[i]
		if c.width != want.width || c.height != want.height {
			t.Errorf("%s: %dx%d, want %dx%d", want.name, c.width, c.height, want.width, want.height)
		}
		if len(c.frames) != loopSeconds*frameRate {
			t.Errorf("%s: %d frames, want %d", want.name, len(c.frames), loopSeconds*frameRate)
		}
		total := 0
		for n, f := range c.frames {
			if f.key != (n%gopFrames == 0) {
				t.Errorf("%s: frame %d key=%v, want keyframes exactly every %d frames", want.name, n, f.key, gopFrames)
			}
			if f.key && (f.payloads[0][0]&0x1f != 7 || f.payloads[1][0]&0x1f != 8) {
				t.Errorf("%s: keyframe %d does not start with SPS, PPS", want.name, n)
			}
			for _, p := range f.payloads {
				if len(p) > maxPayload {
					t.Errorf("%s: frame %d has a %d byte payload, max %d", want.name, n, len(p), maxPayload)
				}
			}
			total += f.size
		}
		kbps := total * 8 / loopSeconds / 1000
		if kbps < want.bitrateKbps/2 || kbps > want.bitrateKbps*3/2 {
			t.Errorf("%s: %d kbit/s, want about %d", want.name, kbps, want.bitrateKbps)
		}
	}
}

func tinyRecipe() mediaRecipe {
	return mediaRecipe{name: "tiny", width: 160, height: 96, bitrateKbps: 100, seconds: 2}
}

func TestEnsureMediaIsSafeWhenRacing(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	paths := make([]string, 3)
	errs := make([]error, 3)
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = ensureMedia(context.Background(), dir, tinyRecipe()) })
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil {
			t.Fatalf("ensureMedia %d: %v", i, errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("ensureMedia returned %q and %q", paths[0], paths[i])
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("media dir holds %d files, want the clip only", len(entries))
	}
	c, err := loadClip(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(c.frames) != 2*frameRate || c.width != 160 || c.height != 96 {
		t.Errorf("tiny clip: %d frames %dx%d", len(c.frames), c.width, c.height)
	}

	// Cached: a second call does not render again. The file is dated
	// back, so a new rendering would show as a new time.
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(paths[0], old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := ensureMedia(context.Background(), dir, tinyRecipe()); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(paths[0])
	if !after.ModTime().Equal(old) {
		t.Error("cached media was rendered again")
	}
}

func TestEnsureMediaReportsFFmpegFailure(t *testing.T) {
	dir := t.TempDir()
	bad := mediaRecipe{name: "bad", width: -1, height: 96, bitrateKbps: 100, seconds: 1}
	_, err := ensureMedia(context.Background(), dir, bad)
	if err == nil || !strings.Contains(err.Error(), "ffmpeg") {
		t.Fatalf("err = %v, want an ffmpeg failure", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("failed generation left %d files behind", len(entries))
	}
}

func TestLoadMediaReplacesCorruptCache(t *testing.T) {
	dir := t.TempDir()
	path, err := ensureMedia(context.Background(), dir, tinyRecipe())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not H.264"), 0o644); err != nil {
		t.Fatal(err)
	}
	clips, err := loadMedia(dir, tinyRecipe())
	if err != nil {
		t.Fatalf("loadMedia with a corrupt cache file: %v", err)
	}
	if len(clips[0].frames) != 2*frameRate {
		t.Errorf("regenerated clip has %d frames", len(clips[0].frames))
	}
}

func TestParseClipRejectsBadInput(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":        nil,
		"no NAL units": []byte("hello"),
		"only SPS":     {0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f},
		"no keyframe first": append(append([]byte{0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10},
			0, 0, 1, 0x68, 0xce, 0x3c, 0x80), 0, 0, 1, 0x41, 0x9a),
	} {
		if _, err := parseClip(data); !errors.Is(err, errBadMedia) {
			t.Errorf("%s: err = %v, want errBadMedia", name, err)
		}
	}
}
