package testsim

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	rtspmsg "mediagw/pkg/rtsp"
)

// Push is an RTSP server fed by a third-party packetizer: Debian's ffmpeg
// publishes a stream to it (ANNOUNCE/RECORD, TCP interleaved), and it
// serves that stream to players (DESCRIBE/SETUP/PLAY) with ffmpeg's own SDP,
// RTP and RTCP, only the interleaved channel numbers mapped. The RTP
// packetization under test (H.264/H.265 fragmentation, RFC 3640 AAC,
// sender reports) is ffmpeg's, not the project's simulator's.
type Push struct {
	ln   net.Listener
	addr string

	mu     sync.Mutex
	sdp    []byte
	sdpSet chan struct{} // closed while a publisher records
	// recorded: a publisher recorded before; while none does, DESCRIBE
	// is answered 404 (a server whose source is gone), before the first
	// it waits for it.
	recorded bool
	pushCh   map[string]int // control suffix → pusher's RTP channel
	players  map[*player]struct{}
	quit     chan struct{} // closed when the test ends
	cmd      *exec.Cmd
	drop     bool
}

// Drop discards what the publisher sends (players hear nothing; when it
// ends, the stream goes on with what the publisher sends then: a stall in
// which the server lost frames).
func (p *Push) Drop(on bool) {
	p.mu.Lock()
	p.drop = on
	p.mu.Unlock()
}

type player struct {
	c     net.Conn
	w     *bufio.Writer
	chMap map[int]int // pusher channel → player channel
	mu    sync.Mutex
	play  bool
}

// StartPush serves on a loopback port until the test ends.
func StartPush(t testing.TB) *Push {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Push{ln: ln, addr: ln.Addr().String(), sdpSet: make(chan struct{}), quit: make(chan struct{}), pushCh: map[string]int{}, players: map[*player]struct{}{}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); defer c.Close(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() {
		p.StopFFmpeg()
		close(p.quit)
		ln.Close()
		p.mu.Lock()
		for pl := range p.players {
			pl.c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

// URL is the stream's URL.
func (p *Push) URL() string { return "rtsp://" + p.addr + "/live" }

// Publish starts ffmpeg publishing the lavfi source with the given output
// codec options (e.g. "-c:v", "libx265", …) at real-time pace; it runs
// until StopFFmpeg or the end of the test.
func (p *Push) Publish(t testing.TB, codecArgs ...string) {
	t.Helper()
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}
	args = append(args, codecArgs...)
	args = append(args, "-f", "rtsp", "-rtsp_transport", "tcp", p.URL())
	cmd := exec.Command("ffmpeg", args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
	t.Cleanup(p.StopFFmpeg)
}

// StopFFmpeg ends the publisher (players then see no more media).
func (p *Push) StopFFmpeg() {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

func (p *Push) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, 128<<10)
	w := bufio.NewWriter(c)
	pl := &player{c: c, w: w, chMap: map[int]int{}}
	defer func() {
		p.mu.Lock()
		delete(p.players, pl)
		p.mu.Unlock()
	}()
	pushing := false
	defer func() {
		if !pushing {
			return
		}
		// The publisher left: like a server restarting, its players are
		// dropped and the stream is gone until a publisher records again.
		p.mu.Lock()
		p.sdpSet = make(chan struct{})
		for other := range p.players {
			other.c.Close()
		}
		p.mu.Unlock()
	}()
	for {
		b, err := r.Peek(1)
		if err != nil {
			return
		}
		if b[0] == '$' {
			h, err := r.Peek(4)
			if err != nil {
				return
			}
			n := 4 + (int(h[2])<<8 | int(h[3]))
			frame, err := r.Peek(n)
			if err != nil {
				return
			}
			if pushing {
				p.forward(frame)
			}
			r.Discard(n)
			continue
		}
		m, err := rtspmsg.Read(r, rtspmsg.Limits{})
		if err != nil || m.IsResponse() {
			if err != nil {
				return
			}
			continue
		}
		resp := rtspmsg.NewResponse(200)
		resp.Header.Set("CSeq", m.Header.Get("CSeq"))
		switch m.Method {
		case "OPTIONS":
			resp.Header.Set("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, ANNOUNCE, RECORD, GET_PARAMETER")
		case "ANNOUNCE":
			p.mu.Lock()
			p.sdp = append([]byte(nil), m.Body...)
			p.mu.Unlock()
		case "DESCRIBE":
			p.mu.Lock()
			set, recorded := p.sdpSet, p.recorded
			p.mu.Unlock()
			if recorded {
				select {
				case <-set:
				default:
					resp = rtspmsg.NewResponse(404)
					resp.Header.Set("CSeq", m.Header.Get("CSeq"))
				}
			} else {
				select {
				case <-set:
				case <-p.quit:
					return
				}
			}
			if resp.Status != 200 {
				break
			}
			p.mu.Lock()
			resp.Body = p.sdp
			p.mu.Unlock()
			resp.Header.Set("Content-Type", "application/sdp")
			resp.Header.Set("Content-Base", p.URL()+"/")
		case "SETUP":
			tr := m.Header.Get("Transport")
			ch, ok := interleaved(tr)
			if !ok {
				resp = rtspmsg.NewResponse(461)
				resp.Header.Set("CSeq", m.Header.Get("CSeq"))
				break
			}
			ctl := m.URI[strings.LastIndex(m.URI, "/")+1:]
			p.mu.Lock()
			if strings.Contains(tr, "mode=record") {
				p.pushCh[ctl] = ch
			} else if from, ok := p.pushCh[ctl]; ok {
				pl.chMap[from] = ch
				pl.chMap[from+1] = ch + 1
			}
			p.mu.Unlock()
			resp.Header.Set("Transport", tr)
			resp.Header.Set("Session", "12345678;timeout=60")
		case "RECORD":
			pushing = true
			p.mu.Lock()
			select { // players are served once the publisher's channels are known
			case <-p.sdpSet:
			default:
				close(p.sdpSet)
			}
			p.recorded = true
			p.mu.Unlock()
			resp.Header.Set("Session", "12345678")
		case "PLAY":
			resp.Header.Set("Session", "12345678")
			pl.mu.Lock()
			pl.play = true
			pl.mu.Unlock()
			defer func() { p.mu.Lock(); delete(p.players, pl); p.mu.Unlock() }()
			p.mu.Lock()
			p.players[pl] = struct{}{}
			p.mu.Unlock()
		case "TEARDOWN", "GET_PARAMETER":
			resp.Header.Set("Session", "12345678")
		default:
			resp = rtspmsg.NewResponse(501)
			resp.Header.Set("CSeq", m.Header.Get("CSeq"))
		}
		pl.mu.Lock()
		err = resp.Write(w)
		if err == nil {
			err = w.Flush()
		}
		pl.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (p *Push) forward(frame []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drop {
		return
	}
	for pl := range p.players {
		to, ok := pl.chMap[int(frame[1])]
		if !ok {
			continue
		}
		pl.mu.Lock()
		pl.w.Write([]byte{'$', byte(to), frame[2], frame[3]})
		pl.w.Write(frame[4:])
		if err := pl.w.Flush(); err != nil {
			pl.c.Close()
		}
		pl.mu.Unlock()
	}
}

func interleaved(tr string) (int, bool) {
	for _, part := range strings.Split(tr, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "interleaved="); ok {
			a, _, _ := strings.Cut(v, "-")
			n, err := strconv.Atoi(a)
			return n, err == nil
		}
	}
	return 0, false
}

// Probe is what ffprobe reads of a segment file.
type Probe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Frames    string `json:"nb_read_frames"`
		Rate      string `json:"sample_rate"`
		StartTime string `json:"start_time"`
		Duration  string `json:"duration"`
	} `json:"streams"`
	Format struct {
		StartTime string `json:"start_time"`
		Duration  string `json:"duration"`
	} `json:"format"`
}

// FFprobe counts the frames of every stream of a file.
func FFprobe(ctx context.Context, path string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-count_frames",
		"-show_entries", "stream=codec_type,codec_name,nb_read_frames,sample_rate,start_time,duration:format=start_time,duration",
		"-of", "json", path).Output()
	if err != nil {
		return nil, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	return out, nil
}
