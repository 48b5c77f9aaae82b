package testsim

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Freezer is a TCP forwarder in front of a server whose data towards the
// client can be frozen (not read, so the server's writes back up, and the
// client hears nothing while its connection stays open) and thawed (what
// was held back arrives in a burst): a stalled network or gateway.
type Freezer struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	frozen bool
	conns  []net.Conn
}

// StartFreezer forwards a loopback port to target until the test ends.
func StartFreezer(t testing.TB, target string) *Freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Freezer{ln: ln, target: target}
	f.cond = sync.NewCond(&f.mu)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, up)
			f.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer wg.Done(); f.down(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		f.frozen = false
		f.cond.Broadcast()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		wg.Wait()
	})
	return f
}

// Addr is host:port to connect to instead of the target.
func (f *Freezer) Addr() string { return f.ln.Addr().String() }

func (f *Freezer) down(c, up net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		f.mu.Lock()
		for f.frozen {
			f.cond.Wait()
		}
		f.mu.Unlock()
		n, err := up.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Freeze stops the data towards clients; Thaw lets it flow again.
func (f *Freezer) Freeze() { f.set(true) }

// Thaw lets the data flow again.
func (f *Freezer) Thaw() { f.set(false) }

func (f *Freezer) set(frozen bool) {
	f.mu.Lock()
	f.frozen = frozen
	f.cond.Broadcast()
	f.mu.Unlock()
}
