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
)

// tsFile is one MPEG-TS segment being written (go-astits).
type tsFile struct {
	path string
	f    *os.File
	w    *bufio.Writer
	mux  *astits.Muxer
	// reused per write: astits takes pointers
	af  astits.PacketAdaptationField
	pes astits.PESData
	hdr astits.PESHeader
	opt astits.PESOptionalHeader
	pts astits.ClockReference
	dts astits.ClockReference
	pcr astits.ClockReference
}

func createTS(path string, hevc, audio bool) (*tsFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("segment file: %w", err)
	}
	t := &tsFile{path: path, f: f, w: bufio.NewWriterSize(f, 64<<10)}
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
// (90 kHz); the PCR rides on every picture, a keyframe forces PAT/PMT.
func (t *tsFile) writeVideo(data []byte, pts, dts int64, key bool) error {
	t.pts.Base, t.dts.Base, t.pcr.Base = pts, dts, dts
	t.af = astits.PacketAdaptationField{HasPCR: true, PCR: &t.pcr, RandomAccessIndicator: key}
	t.opt = astits.PESOptionalHeader{MarkerBits: 2, DataAlignmentIndicator: true, PTS: &t.pts}
	if dts != pts {
		t.opt.PTSDTSIndicator = astits.PTSDTSIndicatorBothPresent
		t.opt.DTS = &t.dts
	} else {
		t.opt.PTSDTSIndicator = astits.PTSDTSIndicatorOnlyPTS
	}
	t.hdr = astits.PESHeader{OptionalHeader: &t.opt, StreamID: 0xe0}
	t.pes = astits.PESData{Header: &t.hdr, Data: data}
	_, err := t.mux.WriteData(&astits.MuxerData{PID: videoPID, AdaptationField: &t.af, PES: &t.pes})
	return err
}

// writeAudio writes one ADTS frame.
func (t *tsFile) writeAudio(data []byte, pts int64) error {
	t.pts.Base = pts
	t.opt = astits.PESOptionalHeader{MarkerBits: 2, DataAlignmentIndicator: true, PTS: &t.pts, PTSDTSIndicator: astits.PTSDTSIndicatorOnlyPTS}
	t.hdr = astits.PESHeader{OptionalHeader: &t.opt, StreamID: 0xc0}
	t.pes = astits.PESData{Header: &t.hdr, Data: data}
	_, err := t.mux.WriteData(&astits.MuxerData{PID: audioPID, PES: &t.pes})
	return err
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
