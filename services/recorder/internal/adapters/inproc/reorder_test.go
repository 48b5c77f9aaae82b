package inproc

import (
	"testing"

	"github.com/pion/rtp"
)

// Pictures in decoding order with B-frames (presentation order I B B P,
// pyramids of three B-frames): every decoding time is strictly increasing
// and never after its presentation time.
func TestReorderGivesMonotonicDecodingTimes(t *testing.T) {
	const d = 3600
	// Decoding order of two GOPs: I0 P4 B2 b1 b3 P8 B6 b5 b7 | I12 ...
	order := []int64{0, 4, 2, 1, 3, 8, 6, 5, 7, 12, 10, 9, 11}
	r := newReorder(reorderDepth)
	var out []vframe
	for _, p := range order {
		out = r.push(vframe{pts: p * d}, out)
	}
	out = r.flush(out)
	if len(out) != len(order) {
		t.Fatalf("%d pictures out of %d", len(out), len(order))
	}
	for i, f := range out {
		if f.pts != order[i]*d {
			t.Fatalf("picture %d reordered", i)
		}
		if f.dts > f.pts {
			t.Errorf("picture %d: dts %d after pts %d", i, f.dts, f.pts)
		}
		if i > 0 && f.dts <= out[i-1].dts {
			t.Errorf("picture %d: dts %d not after %d", i, f.dts, out[i-1].dts)
		}
	}
}

// An AAC frame split over packets (RFC 3640 fragmentation) comes out whole,
// as one ADTS frame; several AUs in one packet come out one by one, 1024
// samples apart.
func TestAACDepacketizer(t *testing.T) {
	d := &aacDepack{cfg: aacConfig{objectType: 2, freqIndex: 3, channels: 2, sampleRate: 48000, sizeLength: 13, indexLength: 3, indexDeltaLength: 3}}
	au := make([]byte, 300)
	for i := range au {
		au[i] = byte(i)
	}
	hdr := func(sizes ...int) []byte {
		b := []byte{0, byte(16 * len(sizes))}
		for _, n := range sizes {
			b = append(b, byte(n>>5), byte(n<<3))
		}
		return b
	}
	// One AU of 300 bytes in two packets.
	p1 := &rtp.Packet{Header: rtp.Header{Timestamp: 1000}, Payload: append(hdr(300), au[:200]...)}
	p2 := &rtp.Packet{Header: rtp.Header{Timestamp: 1000, Marker: true}, Payload: append(hdr(300), au[200:]...)}
	if fs, err := d.push(p1); err != nil || len(fs) != 0 {
		t.Fatalf("first fragment: %v %v", fs, err)
	}
	fs, err := d.push(p2)
	if err != nil || len(fs) != 1 || len(fs[0].data) != 307 || fs[0].data[0] != 0xff || fs[0].data[7+299] != au[299] {
		t.Fatalf("fragmented AU: %d frames, %v", len(fs), err)
	}
	// Two AUs in one packet.
	p3 := &rtp.Packet{Header: rtp.Header{Timestamp: 2024, Marker: true}, Payload: append(hdr(10, 20), au[:30]...)}
	fs, err = d.push(p3)
	if err != nil || len(fs) != 2 || len(fs[1].data) != 27 || fs[1].ts-fs[0].ts != 1024 {
		t.Fatalf("two AUs: %+v %v", fs, err)
	}
}
