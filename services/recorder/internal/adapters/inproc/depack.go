package inproc

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// frame is one access unit: a picture (Annex-B) or an AAC frame (ADTS).
type frame struct {
	ts   int64 // RTP timestamp, unwrapped, in the track's clock
	key  bool  // a picture a decoder can start at
	data []byte
}

// unwrapper extends 32-bit RTP timestamps to 64 bits.
type unwrapper struct {
	last int64
	have bool
}

func (u *unwrapper) unwrap(ts uint32) int64 {
	if !u.have {
		u.have = true
		u.last = int64(ts)
		return u.last
	}
	d := int64(int32(ts - uint32(u.last)))
	u.last += d
	return u.last
}

// videoDepack assembles RTP packets into pictures: H.264 (RFC 6184, with
// pion's H264Packet) or H.265 (RFC 7798, pion's H265Depacketizer).
type videoDepack struct {
	hevc    bool
	params  []byte // parameter sets from the SDP, for keyframes without them
	h264    *codecs.H264Packet
	h265    *codecs.H265Depacketizer
	ts      unwrapper
	cur     []byte
	curTS   int64
	started bool // cur holds part of a picture
	broken  bool // a packet of cur was lost: drop it
	inFU    bool // within a fragmented NAL unit
	lastSeq uint16
	haveSeq bool
}

func newVideoDepack(t track) *videoDepack {
	d := &videoDepack{hevc: t.encoding == "H265", params: t.parameterSets()}
	d.reset()
	return d
}

func (d *videoDepack) reset() {
	d.h264 = &codecs.H264Packet{}
	d.inFU = false
}

// push takes a packet and returns the picture it completed, if any.
func (d *videoDepack) push(p *rtp.Packet) *frame {
	var out *frame
	ts := d.ts.unwrap(p.Timestamp)
	if d.haveSeq && p.SequenceNumber != d.lastSeq+1 {
		d.broken = true // lost packets (not over TCP, but a server may skip)
		d.reset()
	}
	d.lastSeq, d.haveSeq = p.SequenceNumber, true
	if d.started && ts != d.curTS {
		out = d.finish() // the marker of the previous picture was lost
	}
	if !d.started {
		d.started, d.curTS, d.cur = true, ts, d.cur[:0]
	}
	if !d.fragmentOK(p.Payload) {
		d.broken = true
	} else {
		nals, err := d.unmarshal(p.Payload)
		if err != nil {
			d.broken = true
			d.reset()
		} else {
			d.cur = append(d.cur, nals...)
		}
	}
	if p.Marker {
		if f := d.finish(); f != nil {
			out = f
		}
	}
	return out
}

// fragmentOK follows fragmentation units: a fragment that does not
// continue a started one (its start was lost) is refused.
func (d *videoDepack) fragmentOK(pl []byte) bool {
	if d.hevc {
		if len(pl) < 3 || (pl[0]>>1)&0x3f != 49 {
			d.inFU = false
			return len(pl) >= 2
		}
		s, e := pl[2]&0x80 != 0, pl[2]&0x40 != 0
		ok := s || d.inFU
		d.inFU = (s || d.inFU) && !e
		return ok
	}
	if len(pl) < 2 || pl[0]&0x1f != 28 {
		d.inFU = false
		return len(pl) >= 1
	}
	s, e := pl[1]&0x80 != 0, pl[1]&0x40 != 0
	ok := s || d.inFU
	d.inFU = (s || d.inFU) && !e
	return ok
}

func (d *videoDepack) unmarshal(pl []byte) ([]byte, error) {
	if d.hevc {
		return unmarshalH265(pl)
	}
	return d.h264.Unmarshal(pl)
}

var errH265 = errors.New("h265: bad packet")

// unmarshalH265 turns an RFC 7798 payload into Annex-B (without DONL,
// which needs sprop-max-don-diff > 0; cameras do not use it): a single NAL
// unit, an aggregation packet (48) or a fragment (49; the NAL unit header
// is rebuilt on its first fragment, the caller checks the order). PACI
// packets (50) carry nothing a recorder needs and are dropped.
func unmarshalH265(pl []byte) ([]byte, error) {
	if len(pl) < 3 {
		return nil, errH265
	}
	switch typ := (pl[0] >> 1) & 0x3f; typ {
	case 48:
		var out []byte
		for b := pl[2:]; len(b) > 0; {
			if len(b) < 2 {
				return nil, errH265
			}
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || len(b) < 2+n {
				return nil, errH265
			}
			out = append(out, 0, 0, 0, 1)
			out = append(out, b[2:2+n]...)
			b = b[2+n:]
		}
		return out, nil
	case 49:
		fu := pl[2]
		if fu&0x80 != 0 { // start: the NAL unit header, with the type from the FU header
			out := make([]byte, 0, 6+len(pl)-3)
			out = append(out, 0, 0, 0, 1, pl[0]&0x81|(fu&0x3f)<<1, pl[1])
			return append(out, pl[3:]...), nil
		}
		return pl[3:], nil
	case 50:
		return nil, nil
	}
	out := make([]byte, 0, 4+len(pl))
	out = append(out, 0, 0, 0, 1)
	return append(out, pl...), nil
}

func (d *videoDepack) finish() *frame {
	d.started = false
	if d.broken || len(d.cur) == 0 {
		d.broken = false
		return nil
	}
	key, hasParams, hasAUD := scanNALs(d.cur, d.hevc)
	data := make([]byte, 0, len(d.cur)+len(d.params)+7)
	if !hasAUD { // MPEG-TS wants an access unit delimiter in front of each picture
		if d.hevc {
			data = append(data, 0, 0, 0, 1, 0x46, 0x01, 0x50)
		} else {
			data = append(data, 0, 0, 0, 1, 0x09, 0xf0)
		}
	}
	if key && !hasParams {
		data = append(data, d.params...)
	}
	data = append(data, d.cur...)
	return &frame{ts: d.curTS, key: key, data: data}
}

// scanNALs reads the NAL unit types of an Annex-B picture.
func scanNALs(b []byte, hevc bool) (key, params, aud bool) {
	for i := 0; i+3 < len(b); {
		j := bytes.Index(b[i:], []byte{0, 0, 1})
		if j < 0 {
			break
		}
		i += j + 3
		if i >= len(b) {
			break
		}
		if hevc {
			switch t := (b[i] >> 1) & 0x3f; {
			case t >= 16 && t <= 21:
				key = true
			case t == 32 || t == 33 || t == 34:
				params = true
			case t == 35:
				aud = true
			}
			continue
		}
		switch b[i] & 0x1f {
		case 5:
			key = true
		case 7, 8:
			params = true
		case 9:
			aud = true
		}
	}
	return key, params, aud
}

// aacDepack reads RFC 3640 mpeg4-generic packets (AU headers, then the
// AUs; one AU may span packets) into ADTS frames.
type aacDepack struct {
	cfg     aacConfig
	ts      unwrapper
	frag    []byte // an AU spanning packets
	fragLen int
	fragTS  int64
}

var errAAC = errors.New("aac: bad packet")

func (d *aacDepack) push(p *rtp.Packet) ([]frame, error) {
	ts := d.ts.unwrap(p.Timestamp)
	pl := p.Payload
	if len(pl) < 2 {
		return nil, errAAC
	}
	hdrBits := int(pl[0])<<8 | int(pl[1])
	hdrBytes := (hdrBits + 7) / 8
	if len(pl) < 2+hdrBytes {
		return nil, errAAC
	}
	br := bitReader{b: pl[2 : 2+hdrBytes]}
	var sizes []int
	for i := 0; br.pos+d.cfg.sizeLength <= hdrBits; i++ {
		size := br.read(d.cfg.sizeLength)
		if i == 0 {
			br.read(d.cfg.indexLength)
		} else {
			br.read(d.cfg.indexDeltaLength)
		}
		sizes = append(sizes, size)
	}
	data := pl[2+hdrBytes:]
	if d.frag != nil || (len(sizes) == 1 && sizes[0] > len(data)) {
		// A fragment of one AU.
		if d.frag == nil {
			d.fragLen, d.fragTS = sizes[0], ts
		}
		if len(sizes) != 1 || ts != d.fragTS {
			d.frag = nil
			return nil, fmt.Errorf("%w: broken fragment", errAAC)
		}
		d.frag = append(d.frag, data...)
		if !p.Marker {
			if len(d.frag) > d.fragLen {
				d.frag = nil
				return nil, errAAC
			}
			return nil, nil
		}
		au := d.frag
		d.frag = nil
		if len(au) != d.fragLen {
			return nil, fmt.Errorf("%w: fragment size", errAAC)
		}
		return []frame{{ts: ts, key: true, data: d.adts(au)}}, nil
	}
	out := make([]frame, 0, len(sizes))
	for i, n := range sizes {
		if n > len(data) {
			return out, fmt.Errorf("%w: AU larger than the packet", errAAC)
		}
		out = append(out, frame{ts: ts + int64(i)*1024, key: true, data: d.adts(data[:n])})
		data = data[n:]
	}
	return out, nil
}

// adts puts the 7-byte ADTS header (no CRC) in front of a raw AAC frame.
func (d *aacDepack) adts(au []byte) []byte {
	n := len(au) + 7
	c := d.cfg
	out := make([]byte, 7, n)
	out[0] = 0xff
	out[1] = 0xf1
	out[2] = byte((c.objectType-1)<<6 | c.freqIndex<<2 | c.channels>>2)
	out[3] = byte((c.channels&3)<<6 | n>>11)
	out[4] = byte(n >> 3)
	out[5] = byte((n&7)<<5 | 0x1f)
	out[6] = 0xfc
	return append(out, au...)
}

type bitReader struct {
	b   []byte
	pos int
}

func (r *bitReader) read(n int) int {
	v := 0
	for ; n > 0; n-- {
		byteI := r.pos / 8
		bit := 0
		if byteI < len(r.b) {
			bit = int(r.b[byteI]>>(7-r.pos%8)) & 1
		}
		v = v<<1 | bit
		r.pos++
	}
	return v
}
