package rtsp

import (
	"testing"
)

// Servers given one Media share its clips (no copy per server) and each
// still streams: a client of the second gets a keyframe.
func TestServersShareOneMedia(t *testing.T) {
	media, err := LoadMedia(mediaDir)
	if err != nil {
		t.Fatal(err)
	}
	share := func(c *Config) { c.Media, c.MediaDir = media, "" }
	a := newTestEnvWith(t, share)
	b := newTestEnvWith(t, share)
	if a.srv.clips != media.clips || b.srv.clips != media.clips {
		t.Fatal("servers loaded their own clips instead of sharing the Media")
	}
	c, _ := playSession(t, b, camMain)
	p, err := c.readRTP(0)
	if err != nil {
		t.Fatalf("no RTP from the second server: %v", err)
	}
	if len(p.Payload) == 0 {
		t.Fatal("empty RTP payload")
	}
	if _, err := NewServer(Config{Credentials: func() (string, string) { return "", "" }, Available: func(string) bool { return true }}); err == nil {
		t.Fatal("NewServer without MediaDir or Media succeeded")
	}
}
