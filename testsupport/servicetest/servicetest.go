// Package servicetest runs a wired service in a test the way service.Main
// does: Build, then the runtime's parts until the test stops it.
package servicetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mediagw/pkg/service"
)

// Start calls build on rt (failing the test if it fails), runs rt's parts
// and returns a stop function: it cancels them and returns Run's error, or an error
// when Run has not returned within timeout. The test's cleanup calls stop
// too and reports its error, unless the test called stop itself.
func Start(t testing.TB, rt *service.Runtime, build func(context.Context, *service.Runtime) error, timeout time.Duration) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := build(ctx, rt); err != nil {
		cancel()
		t.Fatalf("%s: build: %v", rt.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	var once sync.Once
	var res error
	var called atomic.Bool
	stopOnce := func() error {
		once.Do(func() {
			cancel()
			select {
			case res = <-done:
			case <-time.After(timeout):
				res = fmt.Errorf("%s did not stop within %s", rt.Name, timeout)
			}
		})
		return res
	}
	t.Cleanup(func() {
		if err := stopOnce(); err != nil && !called.Load() {
			t.Errorf("%s: %v", rt.Name, err)
		}
	})
	return func() error { called.Store(true); return stopOnce() }
}

// Run is Start for a test that stops the service itself, any number of
// times, and wants a stop error reported rather than returned.
func Run(t testing.TB, rt *service.Runtime, build func(context.Context, *service.Runtime) error, timeout time.Duration) (stop func()) {
	t.Helper()
	stopRun := Start(t, rt, build, timeout)
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := stopRun(); err != nil {
				t.Errorf("%s: %v", rt.Name, err)
			}
		})
	}
}
