// Package service is the runtime every mediagw binary starts with:
// configuration from environment variables and flags, a JSON slog logger
// that redacts the process's secrets (Runtime.Secrets, pkg/redact), a
// Prometheus registry, the AWS SDK configuration, /healthz, /readyz and
// /metrics, and shutdown on SIGTERM.
package service

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config declares a binary's settings. Each setting is an environment
// variable (the name operators see in ECS task definitions) and a flag of
// the same name in kebab case; a flag given on the command line wins.
type Config struct {
	name    string
	summary string
	fs      *flag.FlagSet
	vars    []*variable
	lookup  func(string) (string, bool)

	allowArgs bool
	envPrefix string
	// checkOnly is --check-settings: validate, list, exit.
	checkOnly bool
	// rules are the checks across settings (Validate).
	rules []func() error

	// Common settings: LogLevel in every binary, HTTPAddr and
	// ShutdownGrace in services (nil in commands).
	HTTPAddr      *string
	LogLevel      *string
	ShutdownGrace *time.Duration
}

type variable struct {
	env      string
	flag     string // "" for a setting read from the environment only
	help     string
	def      string
	required bool
	set      func(string) error
	check    func() error
}

// Option refines a setting.
type Option func(*variable)

// Required makes Parse fail when the setting is empty.
func Required() Option { return func(v *variable) { v.required = true } }

// Check adds a validation run after parsing; its error names the variable.
func Check(f func() error) Option { return func(v *variable) { v.check = f } }

// NewConfig starts the configuration of a service: a long-running binary
// run by Main. defaultHTTPAddr is where health and metrics are served
// unless HTTP_ADDR says otherwise.
func NewConfig(name, summary, defaultHTTPAddr string) *Config {
	c := NewCommandConfig(name, summary)
	c.HTTPAddr = c.String("HTTP_ADDR", defaultHTTPAddr, "listen address for /healthz, /readyz and /metrics")
	c.ShutdownGrace = c.Duration("SHUTDOWN_GRACE", 25*time.Second, "how long in-flight work may take after SIGTERM")
	return c
}

// NewCommandConfig starts the configuration of a command (a CLI or a
// one-shot tool): the same binder as a service's, without the health
// listener and the shutdown grace.
func NewCommandConfig(name, summary string) *Config {
	c := &Config{name: name, summary: summary, fs: flag.NewFlagSet(name, flag.ContinueOnError), lookup: os.LookupEnv}
	c.fs.SetOutput(io.Discard)
	c.fs.BoolVar(&c.checkOnly, "check-settings", false, "")
	c.LogLevel = c.String("LOG_LEVEL", "info", "log level: debug, info, warn or error", Check(func() error {
		_, err := parseLevel(*c.LogLevel)
		return err
	}))
	return c
}

// Logger returns the JSON logger at LOG_LEVEL (call after Parse).
func (c *Config) Logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(*c.LogLevel)
	return NewLogger(w, level, c.name)
}

// Args are the command-line arguments Parse left after the flags (a
// command's operands); a service's Parse refuses any.
func (c *Config) Args() []string { return c.fs.Args() }

// AllowArgs lets Parse accept operands after the flags (see Args).
func (c *Config) AllowArgs() { c.allowArgs = true }

// Validate adds a check across settings that Parse runs after every
// setting's own (and so --check-settings too); its error says which
// settings are wrong.
func (c *Config) Validate(rule func() error) { c.rules = append(c.rules, rule) }

// FlagName is the command-line flag for an environment variable.
func FlagName(env string) string { return strings.ToLower(strings.ReplaceAll(env, "_", "-")) }

func (c *Config) add(env, def, help string, set func(string) error, opts []Option) {
	c.addVar(env, def, help, set, opts)
	c.fs.Func(FlagName(env), help, set)
}

// EnvPrefix puts prefix before the environment variable of every setting
// declared after it; flags keep their names. For a binary whose settings
// have common names (a simulator's NAME, DEVICES) that a shell may set
// for other reasons.
func (c *Config) EnvPrefix(prefix string) { c.envPrefix = prefix }

// addVar records a setting without declaring its flag.
func (c *Config) addVar(env, def, help string, set func(string) error, opts []Option) {
	v := &variable{env: c.envPrefix + env, flag: FlagName(env), def: def, help: help, set: set}
	for _, o := range opts {
		o(v)
	}
	c.vars = append(c.vars, v)
}

// String declares a string setting.
func (c *Config) String(env, def, help string, opts ...Option) *string {
	p := new(string)
	*p = def
	c.add(env, def, help, func(s string) error { *p = s; return nil }, opts)
	return p
}

// SecretString declares a string setting read from the environment only,
// with no flag: a secret (a password) that a flag would show in process
// listings.
func (c *Config) SecretString(env, help string, opts ...Option) *string {
	p := new(string)
	c.addVar(env, "", help, func(s string) error { *p = s; return nil }, opts)
	c.vars[len(c.vars)-1].flag = ""
	return p
}

// Int declares an integer setting.
func (c *Config) Int(env string, def int, help string, opts ...Option) *int {
	p := new(int)
	*p = def
	c.add(env, strconv.Itoa(def), help, func(s string) error {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not a whole number: %q", s)
		}
		*p = n
		return nil
	}, opts)
	return p
}

// Duration declares a duration setting ("30s", "5m"); a bare number is seconds.
func (c *Config) Duration(env string, def time.Duration, help string, opts ...Option) *time.Duration {
	p := new(time.Duration)
	*p = def
	c.add(env, def.String(), help, func(s string) error {
		s = strings.TrimSpace(s)
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			*p = time.Duration(n * float64(time.Second))
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration: %q", s)
		}
		*p = d
		return nil
	}, opts)
	return p
}

// Bool declares a boolean setting.
func (c *Config) Bool(env string, def bool, help string, opts ...Option) *bool {
	p := new(bool)
	*p = def
	set := func(s string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not true or false: %q", s)
		}
		*p = b
		return nil
	}
	c.addVar(env, strconv.FormatBool(def), help, set, opts)
	// A bare --flag means true, as with the flag package's own booleans.
	c.fs.BoolFunc(FlagName(env), help, func(s string) error { return set(s) })
	return p
}

// List declares a comma-separated list setting.
func (c *Config) List(env, def, help string, opts ...Option) *[]string {
	p := new([]string)
	set := func(s string) error { *p = splitList(s); return nil }
	_ = set(def)
	c.add(env, def, help, set, opts)
	return p
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// ErrHelp is returned by Parse when --help or --check-settings was asked
// for and done (the usage, or the settings read, has been written): the
// binary has nothing else to do and exits 0. Check for it with errors.Is.
var ErrHelp = flag.ErrHelp

// errChecked is ErrHelp for --check-settings.
var errChecked = fmt.Errorf("settings checked: %w", ErrHelp)

// ConfigError names the setting that is wrong.
type ConfigError struct {
	Var string
	Err error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("configuration: %s: %v", e.Var, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

// Parse reads the environment, then the flags, then validates. On --help it
// writes the usage to out and returns ErrHelp.
//
// With --check-settings it validates as always and does nothing else: on
// success it writes the variables it read from the environment, one per
// line, sorted, and returns ErrHelp; on failure it returns the error as
// always. No AWS, no listener, no side effect: a deployment's environment
// (docker-compose.yml, a task definition) can be checked against the
// binary's own rules (deploy/compose_test.go does).
func (c *Config) Parse(args []string, out io.Writer) error {
	for _, v := range c.vars {
		if s, ok := c.lookup(v.env); ok {
			if err := v.set(s); err != nil {
				return &ConfigError{Var: v.env, Err: err}
			}
		}
	}
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.Usage(out)
			return ErrHelp
		}
		return fmt.Errorf("configuration: %w (see --help)", err)
	}
	if c.fs.NArg() > 0 && !c.allowArgs {
		return fmt.Errorf("configuration: unexpected argument %q (see --help)", c.fs.Arg(0))
	}
	var errs []error
	for _, v := range c.vars {
		if v.required && c.empty(v) {
			errs = append(errs, &ConfigError{Var: v.env, Err: errors.New("required but not set")})
			continue
		}
		if v.check != nil {
			if err := v.check(); err != nil {
				errs = append(errs, &ConfigError{Var: v.env, Err: err})
			}
		}
	}
	for _, rule := range c.rules {
		if err := rule(); err != nil {
			errs = append(errs, fmt.Errorf("configuration: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil || !c.checkOnly {
		return err
	}
	var read []string
	for _, v := range c.vars {
		if _, ok := c.lookup(v.env); ok {
			read = append(read, v.env)
		}
	}
	sort.Strings(read)
	for _, v := range read {
		fmt.Fprintln(out, v)
	}
	return errChecked
}

func (c *Config) empty(v *variable) bool {
	f := c.fs.Lookup(v.flag)
	set := false
	c.fs.Visit(func(g *flag.Flag) { set = set || (f != nil && g == f) })
	if set {
		return false
	}
	s, ok := c.lookup(v.env)
	return !ok || strings.TrimSpace(s) == ""
}

// Usage writes every setting with its variable, flag, default and help.
func (c *Config) Usage(w io.Writer) {
	fmt.Fprintf(w, "%s — %s\n\nSettings (environment variable, or the flag beside it):\n", c.name, c.summary)
	vars := append([]*variable(nil), c.vars...)
	sort.SliceStable(vars, func(i, j int) bool { return vars[i].env < vars[j].env })
	for _, v := range vars {
		req := ""
		if v.required {
			req = " (required)"
		}
		def := ""
		if v.def != "" {
			def = fmt.Sprintf(" [default %s]", v.def)
		}
		flagName := "--" + v.flag
		if v.flag == "" {
			flagName = "(environment only)"
		}
		fmt.Fprintf(w, "  %-34s %s%s\n      %s%s\n", v.env, flagName, req, v.help, def)
	}
	fmt.Fprintln(w, "\nAWS settings come from the standard SDK chain (AWS_REGION, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, credentials).")
	fmt.Fprintln(w, "--check-settings validates the settings, lists the variables read from the environment and exits (0 when valid, 2 when not).")
}
