package spool

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"mediagw/services/recorder/internal/app"
	"mediagw/services/recorder/internal/domain"
)

var _ app.Spool = (*Spool)(nil)

// Opener opens the spool under root for the channels of src's device: the
// app's way to open it at start.
func Opener(root string, src domain.Source, limit int64) app.OpenSpool {
	return func(channels []string) (app.Spool, []domain.Segment, error) {
		s, dropped, err := Open(root, src, channels, limit)
		if err != nil {
			return nil, nil, err
		}
		return s, dropped, nil
	}
}

// runStateFile is the run state in the work directory, replaced (written
// to a temporary file, then renamed) at every listed segment.
const runStateFile = "run.json"

// runState is the on-disk form of domain.RunState.
type runState struct {
	Prefix  string    `json:"prefix"`
	Anchor  time.Time `json:"anchor"`
	LastEnd float64   `json:"last_end"`
	Codec   string    `json:"codec"`
}

func (s *Spool) runFile(ch string) string {
	if w := s.WorkDir(ch); w != "" {
		return filepath.Join(w, runStateFile)
	}
	return ""
}

// SaveRun records a channel's current ffmpeg run; a failed write only
// costs the salvage of a half-written segment after a crash.
func (s *Spool) SaveRun(ch string, st domain.RunState) {
	f := s.runFile(ch)
	if f == "" {
		return
	}
	b, _ := json.Marshal(runState{Prefix: st.Prefix, Anchor: st.Anchor, LastEnd: st.LastEnd, Codec: st.Codec})
	tmp := f + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err == nil {
		_ = os.Rename(tmp, f)
	}
}

// LoadRun reads the run state a predecessor left (false if there is none
// or it cannot be read).
func (s *Spool) LoadRun(ch string) (domain.RunState, bool) {
	f := s.runFile(ch)
	if f == "" {
		return domain.RunState{}, false
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return domain.RunState{}, false
	}
	var st runState
	if json.Unmarshal(b, &st) != nil {
		return domain.RunState{}, false
	}
	return domain.RunState{Prefix: st.Prefix, Anchor: st.Anchor, LastEnd: st.LastEnd, Codec: st.Codec}, true
}

// ClearRun deletes the run state.
func (s *Spool) ClearRun(ch string) {
	if f := s.runFile(ch); f != "" {
		_ = os.Remove(f)
	}
}

// WorkFiles lists the segment files in a channel's work directory, by name
// (= creation order within a run); the run state and temporary files are
// left out.
func (s *Spool) WorkFiles(ch string) []app.WorkFile {
	work := s.WorkDir(ch)
	if work == "" {
		return nil
	}
	des, err := os.ReadDir(work)
	if err != nil {
		return nil
	}
	var out []app.WorkFile
	for _, de := range des {
		n := de.Name()
		if de.IsDir() || n == runStateFile || strings.HasSuffix(n, ".tmp") {
			continue
		}
		f := app.WorkFile{Name: n, Path: filepath.Join(work, n)}
		if fi, err := de.Info(); err == nil {
			f.Size = fi.Size()
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Discard deletes a segment file that cannot be kept.
func (s *Spool) Discard(path string) { _ = os.Remove(path) }
