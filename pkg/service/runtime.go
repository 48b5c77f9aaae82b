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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"mediagw/pkg/awsenv"
	"mediagw/pkg/redact"
)

// Runtime is what a service's build function gets: the pieces every binary
// shares, and the parts (consumers, loops) it registers to be run. Nothing
// in it is global, so tests build one with NewRuntime and run it with Run.
type Runtime struct {
	Name string
	// Logger redacts every secret registered in Secrets from every record
	// (message, string and error attributes, in any encoding pkg/redact
	// knows).
	Logger  *slog.Logger
	Metrics *prometheus.Registry
	AWS     aws.Config
	// Grace is how long work in flight may go on after the stop signal
	// (SHUTDOWN_GRACE under Main).
	Grace time.Duration

	ready  atomic.Bool
	mu     sync.Mutex
	checks map[string]func(context.Context) error

	parts    []part
	stops    []func(context.Context) error
	started  bool
	shared   map[any]any
	failures *prometheus.CounterVec
	secrets  *redact.Secrets
}

type part struct {
	name string
	run  func(context.Context) error
}

// NewRuntime builds a runtime with its own metrics registry and its own
// registry of secrets, whose redacting handler wraps logger's (Logger is
// that wrapped logger); aws may be zero when the binary talks to no AWS
// service.
func NewRuntime(name string, logger *slog.Logger, cfg aws.Config) *Runtime {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mediagw_periodic_failures_total",
		Help: "Runs of a periodic part (Runtime.Every) that returned an error.",
	}, []string{"part"})
	reg.MustRegister(failures)
	secrets := redact.New()
	return &Runtime{Name: name, Logger: slog.New(secrets.Handler(logger.Handler())), Metrics: reg, AWS: cfg, Grace: 25 * time.Second,
		checks: map[string]func(context.Context) error{}, failures: failures, secrets: secrets}
}

// Secrets is the process's one registry of secrets (pkg/redact): a
// service registers every password it reads (Add), and from then on the
// runtime's Logger never shows it; errors and texts that go into events
// pass through it too (Secrets().Error, Secrets().String). Clients that
// handle passwords take it as an option (isapi.WithSecrets).
func (r *Runtime) Secrets() *redact.Secrets { return r.secrets }

// Shared returns the value kept under key, built by build on first use:
// one instance per runtime of something several parts use (an SDK client,
// the messaging metrics, which a registry takes only once).
func (r *Runtime) Shared(key any, build func() any) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.shared[key]; ok {
		return v
	}
	if r.shared == nil {
		r.shared = map[any]any{}
	}
	v := build()
	r.shared[key] = v
	return v
}

// Go registers a long-running part. It runs until ctx ends; an error it
// returns is a fault it cannot recover from and stops the whole service
// (see Run).
func (r *Runtime) Go(name string, run func(ctx context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		panic("service: Go after Run: " + name)
	}
	r.parts = append(r.parts, part{name: name, run: run})
}

// Every registers fn to run every interval until ctx ends. A run that
// fails is logged and counted (mediagw_periodic_failures_total); the next
// one comes all the same.
func (r *Runtime) Every(name string, interval time.Duration, fn func(ctx context.Context) error) {
	r.Go(name, func(ctx context.Context) error {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				r.failures.WithLabelValues(name).Inc()
				r.Logger.ErrorContext(ctx, "periodic run failed", "part", name, "err", err)
			}
		}
	})
}

// OnStop registers cleanup that runs once every part has stopped, within
// the grace period, in the order registered.
func (r *Runtime) OnStop(fn func(ctx context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stops = append(r.stops, fn)
}

// Run runs every registered part until ctx ends or one of them fails —
// the one failure policy of every service: a part's error cancels the
// others, and Run returns it once they have stopped. Then the OnStop
// functions run. After ctx ends, parts and cleanup share one Grace; after
// a part's failure, the cleanup has a Grace of its own. A runtime with no
// parts waits for ctx.
func (r *Runtime) Run(ctx context.Context) error {
	r.mu.Lock()
	r.started = true
	parts := append([]part(nil), r.parts...)
	r.mu.Unlock()

	// The grace counts from the stop signal, for the parts and the cleanup
	// together: cleanup gets what the parts left of it.
	var stopDeadline atomic.Pointer[time.Time]
	defer context.AfterFunc(ctx, func() {
		d := time.Now().Add(r.Grace)
		stopDeadline.Store(&d)
	})()

	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error {
			err := p.run(gctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			if ctx.Err() == nil && gctx.Err() == nil {
				r.Logger.Warn("part ended before the service stopped", "part", p.name)
			}
			return nil
		})
	}
	g.Go(func() error { <-gctx.Done(); return nil })
	err := g.Wait()
	if err != nil {
		r.Logger.Error("a part failed; stopping the service", "err", err)
	}
	r.SetReady(false)

	r.mu.Lock()
	stops := append([]func(context.Context) error(nil), r.stops...)
	r.mu.Unlock()
	deadline := time.Now().Add(r.Grace) // a part failed: the cleanup gets a whole grace
	if d := stopDeadline.Load(); d != nil {
		deadline = *d
	}
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	for _, stop := range stops {
		if serr := stop(sctx); serr != nil {
			r.Logger.Error("stopping", "err", serr)
			err = errors.Join(err, serr)
		}
	}
	return err
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
				failed = append(failed, r.secrets.String(fmt.Sprintf("%s: %v", name, err)))
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

// Main is every service's entry: it parses the configuration, builds the
// runtime (logger, metrics, AWS), serves /healthz, /readyz and /metrics,
// calls build to wire the service and register its parts, marks it ready
// and runs the parts (Run) until SIGTERM or SIGINT, or until one fails.
// Work in flight then has SHUTDOWN_GRACE to finish. It returns the process
// exit code: 0, 1 for a failure, 2 for bad configuration, or the code of
// an ExitCoder error (a service's own codes, such as the recorder's).
func Main(c *Config, build func(ctx context.Context, rt *Runtime) error) int {
	if err := c.Parse(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", c.name, err)
		return 2
	}
	logger := c.Logger(os.Stderr)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	awsCfg, err := awsenv.Load(ctx)
	if err != nil {
		logger.Error("aws configuration", "err", err)
		return 1
	}
	rt := NewRuntime(c.name, logger, awsCfg)
	logger = rt.Logger // from here on, registered secrets are redacted
	if c.ShutdownGrace != nil {
		rt.Grace = *c.ShutdownGrace
	}

	// A service serves health and metrics; a command (NewCommandConfig,
	// e.g. the gateway simulator) has no such listener.
	if c.HTTPAddr != nil {
		ln, err := net.Listen("tcp", *c.HTTPAddr)
		if err != nil {
			logger.Error("health listener", "addr", *c.HTTPAddr, "err", err)
			return 1
		}
		srv := &http.Server{Handler: rt.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdownCtx)
		}()
		logger.Info("started", "http_addr", ln.Addr().String())
	} else {
		logger.Info("started")
	}

	if err := build(ctx, rt); err != nil {
		if ctx.Err() != nil {
			logger.Info("stopped while starting")
			return 0
		}
		logger.Error("start-up failed", "err", err)
		return exitCode(err)
	}
	rt.SetReady(true)

	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		logger.Info("shutting down", "grace", rt.Grace.String())
		select {
		case runErr = <-done:
		// A second past the grace: Run's cleanup has the grace as its
		// deadline and returns at it; this catches what ignores it.
		case <-time.After(rt.Grace + time.Second):
			runErr = fmt.Errorf("still busy %s after the shutdown signal", rt.Grace)
		}
	}
	if runErr != nil {
		logger.Error("stopped with error", "err", runErr)
		return exitCode(runErr)
	}
	logger.Info("stopped")
	return 0
}

// ExitCoder is an error carrying the exit code Main ends the process with
// (a service's own codes beyond 0, 1 and 2).
type ExitCoder interface{ ExitCode() int }

func exitCode(err error) int {
	var c ExitCoder
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return 1
}
