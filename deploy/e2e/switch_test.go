package e2e

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// tcpSwitch is a TCP relay to one upstream that can be switched off: while
// off, it cuts every open connection and closes each new one at once, so
// clients see their peer fail as when a service is unreachable.
type tcpSwitch struct {
	ln       net.Listener
	upstream string
	on       atomic.Bool
	// refused counts connections closed because the switch was off.
	refused, relayed atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newTCPSwitch relays 127.0.0.1:<free port> to upstream (host:port), on at
// first, until t's cleanup.
func newTCPSwitch(t *testing.T, upstream string) *tcpSwitch {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpSwitch{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	s.on.Store(true)
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.cut()
		s.wg.Wait()
	})
	return s
}

func (s *tcpSwitch) Addr() string { return s.ln.Addr().String() }

// Set switches the relay on or off; off cuts open connections.
func (s *tcpSwitch) Set(on bool) {
	s.on.Store(on)
	if !on {
		s.cut()
	}
}

func (s *tcpSwitch) cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

func (s *tcpSwitch) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if !s.on.Load() {
			s.refused.Add(1)
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.relay(c)
	}
}

func (s *tcpSwitch) relay(down net.Conn) {
	defer s.wg.Done()
	up, err := net.Dial("tcp", s.upstream)
	if err != nil {
		down.Close()
		return
	}
	if !s.track(down, up) {
		down.Close()
		up.Close()
		s.refused.Add(1)
		return
	}
	s.relayed.Add(1)
	defer s.untrack(down, up)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// One side ended: end both, as a proxy that holds no half-open state.
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, down)
	go pipe(down, up)
	<-done
	<-done
}

// track registers a relayed pair unless the switch went off meanwhile.
func (s *tcpSwitch) track(cs ...net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.on.Load() {
		return false
	}
	for _, c := range cs {
		s.conns[c] = struct{}{}
	}
	return true
}

func (s *tcpSwitch) untrack(cs ...net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range cs {
		delete(s.conns, c)
	}
}
