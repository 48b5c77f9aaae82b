package inproc

// vframe is a picture on the 90 kHz stream timeline.
type vframe struct {
	pts, dts int64
	key      bool
	data     []byte
}

// reorder gives pictures decoding times. RTP carries only presentation
// times; with B-frames pictures arrive in decoding order with
// presentation times out of order. Holding depth pictures back, the i-th
// decoding time is the i-th smallest presentation time shifted by depth
// frame durations: monotonic, and never after the picture's presentation
// time for streams that reorder at most depth pictures.
type reorder struct {
	depth   int
	q       []vframe
	sorted  []int64 // presentation times held, ascending
	shift   int64
	lastDTS int64
	started bool
	dur     int64 // frame duration estimate (90 kHz)
}

func newReorder(depth int) *reorder { return &reorder{depth: depth, dur: 3600} }

func (r *reorder) push(f vframe, out []vframe) []vframe {
	r.q = append(r.q, f)
	i := len(r.sorted)
	r.sorted = append(r.sorted, f.pts)
	for ; i > 0 && r.sorted[i-1] > f.pts; i-- {
		r.sorted[i], r.sorted[i-1] = r.sorted[i-1], r.sorted[i]
	}
	if len(r.q) <= r.depth {
		return out
	}
	if !r.started {
		r.started = true
		if d := (r.sorted[len(r.sorted)-1] - r.sorted[0]) / int64(len(r.sorted)-1); d > 0 {
			r.dur = d
		}
		r.shift = int64(r.depth) * r.dur
		r.lastDTS = r.sorted[0] - r.shift - 1
	}
	return r.pop(out)
}

func (r *reorder) pop(out []vframe) []vframe {
	f := r.q[0]
	r.q = r.q[1:]
	min := r.sorted[0]
	r.sorted = r.sorted[1:]
	f.dts = min - r.shift
	if f.dts > f.pts {
		f.dts = f.pts
	}
	if f.dts <= r.lastDTS {
		f.dts = r.lastDTS + 1
	}
	r.lastDTS = f.dts
	return append(out, f)
}

// flush gives the pictures held back.
func (r *reorder) flush(out []vframe) []vframe {
	if !r.started && len(r.q) > 0 {
		r.started = true
		if n := len(r.sorted); n > 1 {
			if d := (r.sorted[n-1] - r.sorted[0]) / int64(n-1); d > 0 {
				r.dur = d
			}
		}
		r.shift = int64(r.depth) * r.dur
		r.lastDTS = r.sorted[0] - r.shift - 1
	}
	for len(r.q) > 0 {
		out = r.pop(out)
	}
	return out
}

// reset forgets everything held (a new timeline).
func (r *reorder) reset() {
	r.q, r.sorted, r.started = r.q[:0], r.sorted[:0], false
}
