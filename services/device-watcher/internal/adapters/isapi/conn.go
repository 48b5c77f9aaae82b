// Package isapi is the device-watcher's adapter to a Hikvision media
// gateway (app.Gateway): polls of the device list with channel details, and
// the device-management event stream, both turned into the domain's
// observations, over the ISAPI client of mediagw/pkg/isapi.
package isapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	hik "mediagw/pkg/isapi"
	"mediagw/services/device-watcher/internal/app"
)

// Options tune a Conn.
type Options struct {
	// Timeout bounds each request (default hik.DefaultTimeout).
	Timeout time.Duration
	// RereadAfter is the least time between two reads of the password
	// after authentication failures (default 30 s).
	RereadAfter time.Duration
	// RetrySameAfter: a rejected password that is still the configured one
	// is tried once more after this long (default 10 min): the gateway may
	// have been given it since. At most 3 tries per 30-minute lockout
	// window stay below the gateway's threshold of 5.
	RetrySameAfter time.Duration
	// Stream tunes the event stream (heartbeat timeout, reconnect backoff).
	Stream hik.SubscribeOptions
	// OnError counts gateway errors by operation and kind (may be nil).
	OnError func(op, kind string)
	Logger  *slog.Logger
}

// Conn is the ISAPI connection to one gateway. It reads the password when
// first needed, keeps it (never logged), and after an authentication
// failure reads it again; the isapi client never resends a rejected one.
type Conn struct {
	id, baseURL, user string
	passwords         app.Passwords
	opt               Options
	now               func() time.Time

	mu         sync.Mutex
	client     *hik.Client
	replaced   chan struct{} // closed (and renewed) when the client is replaced
	password   string
	rejectedAt time.Time // first rejection of the current password
	rereadAt   time.Time
}

// NewConn returns a connection to the gateway at baseURL; nothing is sent yet.
func NewConn(id, baseURL, user string, passwords app.Passwords, opt Options) *Conn {
	if opt.RereadAfter <= 0 {
		opt.RereadAfter = 30 * time.Second
	}
	if opt.RetrySameAfter <= 0 {
		opt.RetrySameAfter = 10 * time.Minute
	}
	if opt.Timeout <= 0 {
		opt.Timeout = hik.DefaultTimeout
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	return &Conn{id: id, baseURL: baseURL, user: user, passwords: passwords, opt: opt, now: time.Now,
		replaced: make(chan struct{})}
}

// ID is the gateway id.
func (c *Conn) ID() string { return c.id }

// current returns the client, creating it on first use, and a channel
// closed when it is replaced.
func (c *Conn) current(ctx context.Context) (*hik.Client, <-chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, c.replaced, nil
	}
	pw, err := c.passwords.Password(ctx, c.id, false)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway %s: %w: %w", c.id, errPassword, err)
	}
	cl, err := hik.New(c.baseURL, c.user, pw, hik.WithTimeout(c.opt.Timeout))
	if err != nil {
		return nil, nil, fmt.Errorf("gateway %s: %w", c.id, err)
	}
	c.replaceLocked(cl, pw)
	return cl, c.replaced, nil
}

// replaceLocked makes cl (with password pw) the client and tells whoever
// holds the old one (the event stream). c.mu must be held.
func (c *Conn) replaceLocked(cl *hik.Client, pw string) {
	c.client, c.password = cl, pw
	close(c.replaced)
	c.replaced = make(chan struct{})
}

// report counts and handles an error of op: authentication failures lead
// to a fresh read of the password.
func (c *Conn) report(ctx context.Context, op string, err error) {
	kind := ErrorKind(err)
	if c.opt.OnError != nil {
		c.opt.OnError(op, kind)
	}
	c.opt.Logger.Warn("gateway error", "gateway_id", c.id, "op", op, "kind", kind, "err", err)
	if kind == KindBadCredentials {
		c.authFailed(ctx)
	}
}

func (c *Conn) authFailed(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.rejectedAt.IsZero() {
		c.rejectedAt = now
	}
	if now.Sub(c.rereadAt) < c.opt.RereadAfter {
		return
	}
	c.rereadAt = now
	pw, err := c.passwords.Password(ctx, c.id, true)
	if err != nil {
		c.opt.Logger.Warn("gateway password re-read failed", "gateway_id", c.id, "err", err)
		return
	}
	switch {
	case pw != c.password && c.client != nil:
		c.opt.Logger.Info("gateway password changed in the parameter store; using it", "gateway_id", c.id)
		c.client.SetCredentials(c.user, pw)
		c.password, c.rejectedAt = pw, time.Time{}
	case now.Sub(c.rejectedAt) >= c.opt.RetrySameAfter:
		// Same password: a new client forgets the rejection, so it is tried
		// once more, no more often than RetrySameAfter.
		cl, err := hik.New(c.baseURL, c.user, pw, hik.WithTimeout(c.opt.Timeout))
		if err != nil {
			return
		}
		c.opt.Logger.Info("trying the rejected gateway password once more", "gateway_id", c.id, "rejected_for", now.Sub(c.rejectedAt).Round(time.Second).String())
		c.replaceLocked(cl, pw)
		c.rejectedAt = time.Time{}
	}
}

// Reconfigured is told that the gateway was configured at configuredAt
// with the password in the parameter store (the configurator proved it by
// logging in). The password is read again; if it is new, it is used at
// once; if the gateway rejected it before configuredAt, that rejection is
// forgotten and the password is tried again at once rather than after
// RetrySameAfter. A rejection after configuredAt is kept: the
// configuration cannot explain it, and each configuration buys at most one
// extra login attempt, so repeated or duplicate events cannot lock the
// gateway out. A zero configuredAt means now.
func (c *Conn) Reconfigured(ctx context.Context, configuredAt time.Time) error {
	pw, err := c.passwords.Password(ctx, c.id, true)
	if err != nil {
		return fmt.Errorf("gateway %s: %w: %w", c.id, errPassword, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if configuredAt.IsZero() || configuredAt.After(now) {
		configuredAt = now
	}
	c.rereadAt = now
	switch {
	case c.client == nil:
		return nil // the first request uses the password just read
	case pw != c.password:
		c.opt.Logger.Info("gateway reconfigured with a new password; using it", "gateway_id", c.id)
	case c.rejectedAt.IsZero():
		return nil // accepted so far: nothing to forget
	case !c.rejectedAt.Before(configuredAt):
		c.opt.Logger.Warn("gateway rejected its password after it was configured; not trying it again before the retry delay",
			"gateway_id", c.id, "retry_in", (c.opt.RetrySameAfter - now.Sub(c.rejectedAt)).Round(time.Second).String())
		return nil
	default:
		c.opt.Logger.Info("gateway reconfigured: trying its password again", "gateway_id", c.id,
			"rejected_for", now.Sub(c.rejectedAt).Round(time.Second).String())
	}
	// A new client: the old one refuses the password for good.
	cl, err := hik.New(c.baseURL, c.user, pw, hik.WithTimeout(c.opt.Timeout))
	if err != nil {
		return fmt.Errorf("gateway %s: %w", c.id, err)
	}
	c.replaceLocked(cl, pw)
	c.rejectedAt = time.Time{}
	return nil
}

// Error kinds, as counted in metrics.
const (
	KindUnreachable    = "unreachable"
	KindTimeout        = "timeout"
	KindBadCredentials = "bad_credentials"
	KindLocked         = "locked"
	KindMalformed      = "malformed"
	KindUnknownStatus  = "unknown_status"
	KindBadMediaURL    = "bad_media_url"
	KindBusy           = "busy"
	KindDeviceError    = "device_error"
	KindNotSupported   = "not_supported"
	KindDeviceOffline  = "device_offline"
	KindBadDevIndex    = "bad_dev_index"
	KindRefused        = "refused"
	KindConfig         = "config"
	KindOther          = "other"
)

// ErrorKind classifies an error of the isapi client.
func ErrorKind(err error) string {
	var (
		bad       *hik.BadCredentialsError
		locked    *hik.LockedError
		malformed *hik.MalformedResponseError
		status    *hik.StatusError
		badURL    *BadMediaURLError
		unknown   *UnknownStatusError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &badURL):
		return KindBadMediaURL
	case errors.As(err, &unknown):
		return KindUnknownStatus
	case errors.As(err, &locked):
		return KindLocked
	case errors.As(err, &bad):
		return KindBadCredentials
	case errors.As(err, &malformed) || errors.Is(err, hik.ErrMalformedResponse):
		return KindMalformed
	case errors.Is(err, hik.ErrHeartbeatTimeout):
		return KindTimeout
	case errors.Is(err, hik.ErrDeviceOffline):
		return KindDeviceOffline
	case errors.Is(err, hik.ErrBadDevIndex):
		return KindBadDevIndex
	case errors.Is(err, hik.ErrBusy):
		return KindBusy
	case errors.Is(err, hik.ErrNotSupported):
		return KindNotSupported
	case errors.As(err, &status) && errors.Is(err, hik.ErrDeviceError):
		return KindDeviceError
	case errors.As(err, &status):
		return KindRefused
	case errors.Is(err, errPassword):
		return KindConfig
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case isTransport(err):
		return KindUnreachable
	}
	return KindOther
}

var errPassword = errors.New("no gateway password")

func isTransport(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// Unreachable reports whether err means the gateway did not answer at all
// (as opposed to answering badly): the connection failed or timed out.
func Unreachable(err error) bool {
	switch ErrorKind(err) {
	case KindUnreachable, KindTimeout:
		return true
	}
	return false
}

var _ app.Gateway = (*Conn)(nil)
