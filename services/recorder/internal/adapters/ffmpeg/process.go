package ffmpeg

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mediagw/services/recorder/internal/app"
	"mediagw/services/recorder/internal/domain"
)

// Entry is a finished segment as ffmpeg listed it (absolute path), with the
// time the line was read.
type Entry = app.Listed

// Process is one running ffmpeg.
type Process struct {
	cmd     *exec.Cmd
	dir     string
	entries chan Entry
	done    chan struct{}
	err     error // valid after done

	mu     sync.Mutex
	codec  string
	starts map[string]float64 // segment file name -> pts of its first packet
}

// Start launches bin with the spec. ffmpeg gets its own process group (a
// terminal's Ctrl-C reaches only the recorder, which stops ffmpeg in order)
// and is killed if the recorder dies.
func Start(bin string, spec Spec, log *slog.Logger) (*Process, error) {
	args, err := spec.Args()
	if err != nil {
		return nil, err
	}
	listR, listW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("ffmpeg: list pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		listR.Close()
		listW.Close()
		return nil, fmt.Errorf("ffmpeg: stderr pipe: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdin = nil
	cmd.Stdout = nil
	cmd.Stderr = errW
	cmd.ExtraFiles = []*os.File{listW} // fd 3
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		listR.Close()
		listW.Close()
		errR.Close()
		errW.Close()
		return nil, fmt.Errorf("ffmpeg: start: %w", err)
	}
	// Our copies of the write ends must go, or the readers never see EOF.
	listW.Close()
	errW.Close()

	p := &Process{cmd: cmd, dir: spec.Dir, entries: make(chan Entry, 16), done: make(chan struct{}), starts: map[string]float64{}}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		p.readList(listR, log)
	}()
	go func() {
		defer readers.Done()
		p.readStderr(errR, log)
	}()
	go func() {
		readers.Wait()
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is ffmpeg's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Entries delivers finished segments; it is closed when ffmpeg exits.
func (p *Process) Entries() <-chan Entry { return p.entries }

// Listed is Entries (app.Capture).
func (p *Process) Listed() <-chan app.Listed { return p.entries }

// Done is closed when ffmpeg has exited and its output is read.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is ffmpeg's exit status once Done is closed (nil for exit code 0,
// which ffmpeg also returns when the stream stalls or ends).
func (p *Process) Err() error { return p.err }

// Codec is the video codec ffmpeg reported for its output ("" until known).
func (p *Process) Codec() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.codec
}

// FirstPacket is the stream time of the first packet written to a segment
// file, as ffmpeg logged it when it opened the segment. The segment list
// gives the first segment of a run a start of 0 even when the stream began
// later (ffmpeg drops the frames before the first keyframe); this is the
// true start.
func (p *Process) FirstPacket(file string) (float64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.starts[filepath.Base(file)]
	return t, ok
}

// Stop asks ffmpeg to finish (SIGINT: it closes the current segment,
// lists it and exits, interrupting a blocked read) and kills it if it has
// not exited within grace. It returns when ffmpeg is gone.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *Process) readList(r *os.File, log *slog.Logger) {
	defer r.Close()
	defer close(p.entries)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		e, err := domain.ParseListEntry(sc.Text())
		if err != nil {
			log.Error("ffmpeg segment list", "err", err)
			continue
		}
		path := e.File
		if !strings.HasPrefix(path, "/") {
			path = p.dir + "/" + path
		}
		p.entries <- Entry{ListEntry: e, Path: path, Seen: time.Now()}
	}
}

// outputStream matches the output stream description, e.g.
// "[info]   Stream #0:0: Video: h264 (High), yuv420p(progressive), ...".
var outputStream = regexp.MustCompile(`Stream #0:0.*: Video: ([a-z0-9_]+)`)

// segmentStart matches the segment muxer's verbose note on a new segment:
// "segment:'/dir/x_000000.ts' starts with packet stream:0 pts:0 pts_time:0 frame:0".
var segmentStart = regexp.MustCompile(`segment:'(.*)' starts with packet stream:\d+ pts:\S+ pts_time:([0-9.]+)`)

// readStderr logs ffmpeg's warnings and errors (a burst of them is cut
// short: a broken stream can print one per packet) and picks the codec
// from the output stream description.
func (p *Process) readStderr(r *os.File, log *slog.Logger) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	output := false
	limit := newLineLimiter(20, time.Minute)
	prev := "warning"
	for sc.Scan() {
		line := sc.Text()
		level, msg := splitLevel(line)
		if level == "" {
			// A continuation of a multi-line message (the stream
			// description): it has the level of the line it continues.
			level = prev
		}
		prev = level
		if level == "info" || level == "verbose" || level == "debug" {
			if strings.HasPrefix(msg, "Output #0") {
				output = true
			}
			if m := segmentStart.FindStringSubmatch(msg); m != nil {
				if t, err := strconv.ParseFloat(m[2], 64); err == nil {
					p.mu.Lock()
					p.starts[filepath.Base(m[1])] = t
					p.mu.Unlock()
				}
			}
			if m := outputStream.FindStringSubmatch(msg); m != nil && output {
				p.mu.Lock()
				p.codec = m[1]
				p.mu.Unlock()
			}
			log.Debug("ffmpeg", "line", msg)
			continue
		}
		if ok, suppressed := limit.allow(time.Now()); ok {
			if suppressed > 0 {
				log.Warn("ffmpeg", "line", msg, "ffmpeg_level", level, "suppressed_lines", suppressed)
			} else {
				log.Warn("ffmpeg", "line", msg, "ffmpeg_level", level)
			}
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		log.Warn("ffmpeg stderr", "err", err)
	}
}

// splitLevel separates ffmpeg's "[level]" prefix (after any "[component @ 0x…]").
// A line without one gets level "".
func splitLevel(line string) (level, msg string) {
	for _, l := range []string{"fatal", "error", "warning", "info", "verbose", "debug", "panic"} {
		tag := "[" + l + "] "
		if i := strings.Index(line, tag); i >= 0 {
			return l, strings.TrimSpace(line[:i] + line[i+len(tag):])
		}
	}
	return "", line
}

// lineLimiter lets n lines through per period and counts the rest.
type lineLimiter struct {
	n          int
	period     time.Duration
	start      time.Time
	used       int
	suppressed int
}

func newLineLimiter(n int, period time.Duration) *lineLimiter {
	return &lineLimiter{n: n, period: period}
}

func (l *lineLimiter) allow(now time.Time) (bool, int) {
	if now.Sub(l.start) >= l.period {
		l.start, l.used = now, 0
	}
	if l.used >= l.n {
		l.suppressed++
		return false, 0
	}
	l.used++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}
