package inproc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/asticode/go-astits"
)

// The hand-cut PES/TS packets read back with go-astits' demuxer: every
// payload whole, times, PCR, random access flag and continuity counters.
func TestTSWriterReadsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.ts")
	f, err := createTS(path, false, true)
	if err != nil {
		t.Fatal(err)
	}
	var want []pes
	// Sizes around the packet boundaries: 0 to several packets, and one
	// larger than a PES length can say.
	for i, n := range []int{1, 150, 164, 165, 166, 167, 168, 169, 170, 171, 182, 183, 184, 185, 351, 352, 353, 1000, 70000, 5} {
		d := bytes.Repeat([]byte{byte(i + 1)}, n)
		pts := int64(126000 + 3600*i)
		if i%3 == 2 { // audio
			want = append(want, pes{pid: audioPID, data: d, pts: pts, dts: pts})
			if err := f.writeAudio(d, pts); err != nil {
				t.Fatal(err)
			}
			continue
		}
		dts := pts
		if i%2 == 1 {
			dts = pts - 7200
		}
		key := i%4 == 0
		want = append(want, pes{pid: videoPID, data: d, pts: pts, dts: dts, key: key})
		if err := f.writeVideo(d, pts, dts, key); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%188 != 0 {
		t.Fatalf("file of %d bytes: not whole TS packets", len(b))
	}
	// Continuity counters and sync bytes, packet by packet.
	cc := map[uint16]int{}
	for off := 0; off < len(b); off += 188 {
		p := b[off : off+188]
		if p[0] != 0x47 {
			t.Fatalf("packet at %d: sync byte %#x", off, p[0])
		}
		pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
		c := int(p[3] & 0x0f)
		if last, ok := cc[pid]; ok && c != (last+1)&0x0f {
			t.Fatalf("pid %d: continuity %d after %d", pid, c, last)
		}
		cc[pid] = c
	}
	dmx := astits.NewDemuxer(context.Background(), bytes.NewReader(b))
	var got []pes
	pmt := false
	for {
		d, err := dmx.NextData()
		if errors.Is(err, astits.ErrNoMorePackets) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if d.PMT != nil {
			pmt = true
		}
		if d.PES == nil {
			continue
		}
		oh := d.PES.Header.OptionalHeader
		g := pes{pid: d.PID, data: d.PES.Data, pts: oh.PTS.Base, dts: oh.PTS.Base}
		if oh.DTS != nil {
			g.dts = oh.DTS.Base
		}
		if af := d.FirstPacket.AdaptationField; af != nil {
			g.key = af.RandomAccessIndicator
			if d.PID == videoPID && (!af.HasPCR || af.PCR.Base != g.dts) {
				t.Errorf("pes %d: PCR %v, want the DTS %d", len(got), af.PCR, g.dts)
			}
		} else if d.PID == videoPID {
			t.Errorf("pes %d: video without PCR", len(got))
		}
		got = append(got, g)
	}
	if !pmt {
		t.Error("no PMT")
	}
	// The demuxer hands a video PES of unbounded length out when the
	// next one starts: compare stream by stream.
	byPID := func(ps []pes) map[uint16][]pes {
		m := map[uint16][]pes{}
		for _, p := range ps {
			m[p.pid] = append(m[p.pid], p)
		}
		return m
	}
	gm, wm := byPID(got), byPID(want)
	for _, pid := range []uint16{videoPID, audioPID} {
		compare(t, gm[pid], wm[pid])
	}
}

type pes struct {
	pid      uint16
	data     []byte
	pts, dts int64
	key      bool
}

func compare(t *testing.T, got, want []pes) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d PES packets read back, wrote %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.pid != w.pid || g.pts != w.pts || g.dts != w.dts || g.key != w.key || !bytes.Equal(g.data, w.data) {
			t.Errorf("pes %d: pid %d pts %d dts %d key %v %d bytes; wrote pid %d pts %d dts %d key %v %d bytes",
				i, g.pid, g.pts, g.dts, g.key, len(g.data), w.pid, w.pts, w.dts, w.key, len(w.data))
		}
	}
}
