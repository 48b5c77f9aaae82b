package inproc

import (
	"errors"
	"fmt"

	"github.com/pion/rtp"
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

// videoDepack assembles RTP packets into pictures: H.264 (RFC 6184) or
// H.265 (RFC 7798), appended straight into a pooled buffer (pion's
// H264Packet copied each fragment several times: most of the recorder's
// garbage) after room for an access unit delimiter and the parameter sets,
// so that a finished picture is handed out in the same buffer, never
// copied. The NAL unit types are noted as the units are appended.
type videoDepack struct {
	hevc    bool
	params  []byte // parameter sets from the SDP, for keyframes without them
	reserve int    // room kept in front of a picture: AUD and params
	free    [][]byte
	ts      unwrapper
	cur     []byte // reserve bytes, then the picture's NAL units (Annex-B)
	lastLen int    // of the last picture: the size asked of the pool
	curTS   int64
	started bool // cur holds part of a picture
	broken  bool // a packet of cur was lost: drop it
	inFU    bool // within a fragmented NAL unit
	lastSeq uint16
	haveSeq bool
	// NAL unit types seen in the picture
	key, hasParams, hasAUD bool
}

func newVideoDepack(t track) *videoDepack {
	d := &videoDepack{hevc: t.encoding == "H265", params: t.parameterSets()}
	d.reserve = 7 + len(d.params)
	d.reset()
	return d
}

// nal notes the type of a NAL unit from its header's first byte.
func (d *videoDepack) nal(h byte) {
	if d.hevc {
		switch t := (h >> 1) & 0x3f; {
		case t >= 16 && t <= 21:
			d.key = true
		case t == 32 || t == 33 || t == 34:
			d.hasParams = true
		case t == 35:
			d.hasAUD = true
		}
		return
	}
	switch h & 0x1f {
	case 5:
		d.key = true
	case 7, 8:
		d.hasParams = true
	case 9:
		d.hasAUD = true
	}
}

func (d *videoDepack) reset() {
	d.inFU = false
}

// put gives back a picture's buffer once it is written.
func (d *videoDepack) put(b []byte) {
	if len(d.free) < 8 {
		d.free = append(d.free, b[:0])
	}
}

func (d *videoDepack) get(n int) []byte {
	for i := len(d.free) - 1; i >= 0; i-- {
		if cap(d.free[i]) >= n {
			b := d.free[i]
			d.free = append(d.free[:i], d.free[i+1:]...)
			return b
		}
	}
	if len(d.free) > 0 { // too small: let it go, keep the count bounded
		d.free = d.free[1:]
	}
	return make([]byte, 0, n+n/4)
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
		if d.cur == nil {
			d.cur = d.get(d.lastLen + d.reserve)
		}
		d.started, d.curTS, d.cur = true, ts, d.cur[:d.reserve]
		d.key, d.hasParams, d.hasAUD = false, false, false
	}
	if !d.fragmentOK(p.Payload) {
		d.broken = true
	} else if err := d.unmarshal(p.Payload); err != nil {
		d.broken = true
		d.reset()
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

func (d *videoDepack) unmarshal(pl []byte) error {
	if d.hevc {
		return d.appendH265(pl)
	}
	return d.appendH264(pl)
}

var (
	errH264 = errors.New("h264: bad packet")
	errH265 = errors.New("h265: bad packet")
)

// appendH264 appends an RFC 6184 payload (non-interleaved mode: single NAL
// unit, STAP-A, FU-A) to the picture as Annex-B; the caller checks the
// fragments' order.
func (d *videoDepack) appendH264(pl []byte) error {
	if len(pl) < 1 {
		return errH264
	}
	switch typ := pl[0] & 0x1f; {
	case typ >= 1 && typ <= 23:
		d.nal(pl[0])
		d.cur = append(append(d.cur, 0, 0, 0, 1), pl...)
	case typ == 24:
		for b := pl[1:]; len(b) > 0; {
			if len(b) < 2 {
				return errH264
			}
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || len(b) < 2+n {
				return errH264
			}
			d.nal(b[2])
			d.cur = append(append(d.cur, 0, 0, 0, 1), b[2:2+n]...)
			b = b[2+n:]
		}
	case typ == 28:
		if len(pl) < 2 {
			return errH264
		}
		if fu := pl[1]; fu&0x80 != 0 { // start: the NAL unit header from both
			d.nal(pl[0]&0xe0 | fu&0x1f)
			d.cur = append(d.cur, 0, 0, 0, 1, pl[0]&0xe0|fu&0x1f)
		}
		d.cur = append(d.cur, pl[2:]...)
	default:
		return fmt.Errorf("%w: NAL unit type %d", errH264, typ)
	}
	return nil
}

// appendH265 appends an RFC 7798 payload (without DONL, which needs
// sprop-max-don-diff > 0; cameras do not use it): a single NAL unit, an
// aggregation packet (48) or a fragment (49; the NAL unit header is rebuilt
// on its first fragment, the caller checks the order). PACI packets (50)
// carry nothing a recorder needs and are dropped. (pion's H265Depacketizer
// produced broken slices on ffmpeg-packetized streams.)
func (d *videoDepack) appendH265(pl []byte) error {
	if len(pl) < 3 {
		return errH265
	}
	switch typ := (pl[0] >> 1) & 0x3f; typ {
	case 48:
		for b := pl[2:]; len(b) > 0; {
			if len(b) < 2 {
				return errH265
			}
			n := int(b[0])<<8 | int(b[1])
			if n == 0 || len(b) < 2+n {
				return errH265
			}
			d.nal(b[2])
			d.cur = append(append(d.cur, 0, 0, 0, 1), b[2:2+n]...)
			b = b[2+n:]
		}
	case 49:
		fu := pl[2]
		if fu&0x80 != 0 {
			d.nal(pl[0]&0x81 | (fu&0x3f)<<1)
			d.cur = append(d.cur, 0, 0, 0, 1, pl[0]&0x81|(fu&0x3f)<<1, pl[1])
		}
		d.cur = append(d.cur, pl[3:]...)
	case 50:
	default:
		d.nal(pl[0])
		d.cur = append(append(d.cur, 0, 0, 0, 1), pl...)
	}
	return nil
}

func (d *videoDepack) finish() *frame {
	d.started = false
	if d.broken || len(d.cur) <= d.reserve {
		d.broken = false
		return nil
	}
	// What goes in front, right-aligned into the reserved room.
	start := d.reserve
	if d.key && !d.hasParams {
		start -= len(d.params)
		copy(d.cur[start:], d.params)
	}
	if !d.hasAUD { // MPEG-TS wants an access unit delimiter in front of each picture
		if d.hevc {
			start -= 7
			copy(d.cur[start:], []byte{0, 0, 0, 1, 0x46, 0x01, 0x50})
		} else {
			start -= 6
			copy(d.cur[start:], []byte{0, 0, 0, 1, 0x09, 0xf0})
		}
	}
	data := d.cur[start:]
	d.lastLen = len(d.cur) - d.reserve
	d.cur = nil // handed out: the next picture takes a buffer from the pool
	return &frame{ts: d.curTS, key: d.key, data: data}
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
