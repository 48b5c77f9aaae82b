package rtsp

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkClientStream measures the server's cost of one client stream:
// turning the main stream's frames into interleaved RTP and writing them to
// a loopback TCP connection (the reader discards). One op is one frame; the
// cpu%/stream metric is the share of one core a 25 fps stream needs.
func BenchmarkClientStream(b *testing.B) {
	clips, err := loadMedia(mediaDir, mainRecipe())
	if err != nil {
		b.Fatal(err)
	}
	frames := clips[0].frames
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_, _ = io.Copy(io.Discard, nc)
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(nc, 64<<10)
	pw := &packetWriter{ssrc: 1, payloadType: payloadTypeH264}
	bytes := 0
	for _, f := range frames {
		bytes += f.size
	}
	b.SetBytes(int64(bytes / len(frames)))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		lf := liveFrame{
			timestamp: uint32(i * ticksPerFrame),
			at:        start.Add(time.Duration(i) * time.Second / frameRate),
			frame:     &frames[i%len(frames)],
		}
		if err := pw.writeFrame(w, lf); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	perFrame := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	b.ReportMetric(float64(perFrame)*frameRate/float64(time.Second)*100, "cpu%/stream")
	_ = nc.Close()
	<-drained
}
