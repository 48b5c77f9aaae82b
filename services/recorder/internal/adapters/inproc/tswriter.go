package inproc

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/asticode/go-astits"
)

const (
	videoPID = 256
	audioPID = 257

	tsPacket = 188
	// tablesEvery: PAT/PMT go out again after this many PES packets (as
	// go-astits' muxer does), and before every keyframe.
	tablesEvery = 40
)

// tsFile is one MPEG-TS segment being written. go-astits makes the
// tables (PAT/PMT); the PES packets are cut into TS packets here, into
// one reused packet buffer: go-astits writes every header field bit by
// bit through an interface, which was a fifth of the recorder's CPU.
type tsFile struct {
	path   string
	f      *os.File
	w      *bufio.Writer
	mux    *astits.Muxer
	cc     [2]uint8 // continuity counters: video, audio
	pesN   int      // PES packets since the tables were written
	pkt    [tsPacket]byte
	pesHdr [19]byte
}

func createTS(path string, hevc, audio bool) (*tsFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("segment file: %w", err)
	}
	// 256 KiB: a write() about every half second of a 4 Mbit/s stream.
	t := &tsFile{path: path, f: f, w: bufio.NewWriterSize(f, 256<<10)}
	t.mux = astits.NewMuxer(context.Background(), t.w)
	vt := astits.StreamTypeH264Video
	if hevc {
		vt = astits.StreamTypeH265Video
	}
	if err := t.mux.AddElementaryStream(astits.PMTElementaryStream{ElementaryPID: videoPID, StreamType: vt}); err != nil {
		f.Close()
		return nil, err
	}
	if audio {
		if err := t.mux.AddElementaryStream(astits.PMTElementaryStream{ElementaryPID: audioPID, StreamType: astits.StreamTypeAACAudio}); err != nil {
			f.Close()
			return nil, err
		}
	}
	t.mux.SetPCRPID(videoPID)
	return t, nil
}

// writeVideo writes a picture with its presentation and decoding times
// (90 kHz); the PCR rides on every picture, a keyframe is preceded by the
// tables and flagged as a random access point.
func (t *tsFile) writeVideo(data []byte, pts, dts int64, key bool) error {
	if err := t.tables(key); err != nil {
		return err
	}
	h := t.pesHeader(0xe0, pts, dts, len(data))
	return t.writePES(videoPID, 0, h, data, true, dts, key)
}

// writeAudio writes ADTS frames as one PES packet.
func (t *tsFile) writeAudio(data []byte, pts int64) error {
	if err := t.tables(false); err != nil {
		return err
	}
	h := t.pesHeader(0xc0, pts, pts, len(data))
	return t.writePES(audioPID, 1, h, data, false, 0, false)
}

func (t *tsFile) tables(force bool) error {
	t.pesN++
	if !force && t.pesN < tablesEvery {
		return nil
	}
	t.pesN = 0
	if _, err := t.mux.WriteTables(); err != nil {
		return fmt.Errorf("segment file: %w", err)
	}
	return nil
}

// pesHeader builds a PES header (ISO 13818-1 §2.4.3.6) with PTS, and DTS
// when it differs, into the reused buffer.
func (t *tsFile) pesHeader(streamID byte, pts, dts int64, n int) []byte {
	h := t.pesHdr[:]
	h[0], h[1], h[2], h[3] = 0, 0, 1, streamID
	hl := 5
	flags := byte(0x80)
	if dts != pts {
		hl, flags = 10, 0xc0
	}
	l := 3 + hl + n
	if l > 0xffff {
		l = 0 // unbounded: allowed for video only, which is the only stream this large
	}
	h[4], h[5] = byte(l>>8), byte(l)
	h[6] = 0x84 // '10', data_alignment_indicator
	h[7] = flags
	h[8] = byte(hl)
	if hl == 10 {
		putTimestamp(h[9:14], 0x3, pts)
		putTimestamp(h[14:19], 0x1, dts)
		return h[:19]
	}
	putTimestamp(h[9:14], 0x2, pts)
	return h[:14]
}

// putTimestamp writes a 33-bit PTS/DTS with its 4-bit prefix and marker bits.
func putTimestamp(b []byte, prefix byte, v int64) {
	b[0] = prefix<<4 | byte(v>>29)&0x0e | 1
	b[1] = byte(v >> 22)
	b[2] = byte(v>>14) | 1
	b[3] = byte(v >> 7)
	b[4] = byte(v<<1) | 1
}

// writePES cuts a PES packet (header hdr, payload data) into TS packets.
// The first carries the adaptation field with the PCR (if pcr) and the
// random access flag; the last is padded by adaptation-field stuffing.
func (t *tsFile) writePES(pid uint16, ccIdx int, hdr, data []byte, pcr bool, pcrBase int64, key bool) error {
	first := true
	for len(hdr) > 0 || len(data) > 0 || first {
		p := t.pkt[:]
		p[0] = 0x47
		p[1] = byte(pid>>8) & 0x1f
		if first {
			p[1] |= 0x40 // payload unit start
		}
		p[2] = byte(pid)
		p[3] = 0x10 | t.cc[ccIdx]&0x0f // payload, no adaptation field yet
		t.cc[ccIdx]++
		// The adaptation field's own content: flags and PCR on the first packet.
		var af [8]byte
		afLen := 0 // bytes after the length byte
		hasAF := false
		if first && (pcr || key) {
			hasAF = true
			afLen = 1
			if key {
				af[0] |= 0x40
			}
			if pcr {
				af[0] |= 0x10
				b := pcrBase
				af[1], af[2], af[3], af[4] = byte(b>>25), byte(b>>17), byte(b>>9), byte(b>>1)
				af[5] = byte(b<<7) | 0x7e // reserved bits, extension 0
				af[6] = 0
				afLen = 7
			}
		}
		room := tsPacket - 4
		if hasAF {
			room -= 1 + afLen
		}
		left := len(hdr) + len(data)
		stuff := 0
		if left < room {
			if !hasAF {
				hasAF = true
				room-- // the length byte
				if room > left {
					afLen = 1 // flags byte, then stuffing
					room--
				}
			}
			stuff = room - left
			room = left
		}
		i := 4
		if hasAF {
			p[3] |= 0x20
			p[4] = byte(afLen + stuff)
			i = 5
			if afLen > 0 {
				copy(p[i:], af[:afLen])
				i += afLen
			}
			for j := 0; j < stuff; j++ {
				p[i+j] = 0xff
			}
			i += stuff
		}
		n := copy(p[i:i+room], hdr)
		hdr = hdr[n:]
		i += n
		m := copy(p[i:i+room-n], data)
		data = data[m:]
		if _, err := t.w.Write(p); err != nil {
			return fmt.Errorf("segment file: %w", err)
		}
		first = false
	}
	return nil
}

// close flushes and closes the file.
func (t *tsFile) close() error {
	err := t.w.Flush()
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("segment file: %w", err)
	}
	return nil
}
