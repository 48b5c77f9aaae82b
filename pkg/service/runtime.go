package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Runtime is what a service's run function gets: the pieces every binary
// shares. Nothing in it is global, so tests can build one with NewRuntime.
type Runtime struct {
	Name    string
	Logger  *slog.Logger
	Metrics *prometheus.Registry
	AWS     aws.Config

	ready  atomic.Bool
	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

// NewRuntime builds a runtime with its own registry; aws may be zero when
// the binary talks to no AWS service.
func NewRuntime(name string, logger *slog.Logger, cfg aws.Config) *Runtime {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Runtime{Name: name, Logger: logger, Metrics: reg, AWS: cfg, checks: map[string]func(context.Context) error{}}
}

// SetReady marks the service ready (or not) for /readyz.
func (r *Runtime) SetReady(ok bool) { r.ready.Store(ok) }

// AddReadinessCheck adds a named check that /readyz runs on every call.
func (r *Runtime) AddReadinessCheck(name string, check func(context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checks[name] = check
}

// Handler serves /healthz (the process is alive), /readyz (SetReady was
// called and every check passes) and /metrics.
func (r *Runtime) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, req *http.Request) {
		if !r.ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		r.mu.Lock()
		checks := make(map[string]func(context.Context) error, len(r.checks))
		for k, v := range r.checks {
			checks[k] = v
		}
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(req.Context(), 3*time.Second)
		defer cancel()
		var failed []string
		for name, check := range checks {
			if err := check(ctx); err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", name, err))
			}
		}
		if len(failed) > 0 {
			http.Error(w, strings.Join(failed, "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(r.Metrics, promhttp.HandlerOpts{Registry: r.Metrics}))
	return mux
}

// NewLogger returns the JSON logger every service writes to stderr.
func NewLogger(w io.Writer, level slog.Level, name string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("service", name)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("unknown log level %q", s)
	}
	return l, nil
}

// Main parses the configuration, builds the runtime, serves health and
// metrics, and calls run with a context that is cancelled on SIGTERM or
// SIGINT. run must return within SHUTDOWN_GRACE after that; Main then exits.
// It returns the process exit code: 0, 1 for a failure, 2 for bad config.
func Main(c *Config, run func(ctx context.Context, rt *Runtime) error) int {
	if err := c.Parse(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, err)
		return 2
	}
	level, _ := parseLevel(*c.LogLevel)
	logger := NewLogger(os.Stderr, level, c.name)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		logger.Error("aws configuration", "err", err)
		return 1
	}
	rt := NewRuntime(c.name, logger, awsCfg)

	ln, err := net.Listen("tcp", *c.HTTPAddr)
	if err != nil {
		logger.Error("health listener", "addr", *c.HTTPAddr, "err", err)
		return 1
	}
	srv := &http.Server{Handler: rt.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("started", "http_addr", ln.Addr().String())

	done := make(chan error, 1)
	go func() { done <- run(ctx, rt) }()

	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		logger.Info("shutting down", "grace", c.ShutdownGrace.String())
		select {
		case runErr = <-done:
		case <-time.After(*c.ShutdownGrace):
			runErr = fmt.Errorf("still busy %s after the shutdown signal", *c.ShutdownGrace)
		}
	}
	rt.SetReady(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		logger.Error("stopped with error", "err", runErr)
		return 1
	}
	logger.Info("stopped")
	return 0
}
