// Package testkit holds the two helpers every test package of mediagw
// wanted: a goroutine-safe buffer to capture logs in, and a polling wait.
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Buffer is an io.Writer that many goroutines (and a slog handler) may
// write to while a test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Eventually polls cond every interval until it holds, and fails the test
// naming what did not happen when within passes first.
func Eventually(t testing.TB, within, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(interval)
	}
}
