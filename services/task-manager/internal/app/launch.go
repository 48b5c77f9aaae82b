package app

// What both launchers (adapters/ecs, adapters/local) share: the spec of a
// recording task and the recorder's settings interface, i.e. the
// environment a recorder process is started with. That environment carries
// no secret: the RTSP password stays in SSM and only its parameter's name
// is passed.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"mediagw/pkg/gatewayid"
	"mediagw/services/task-manager/internal/domain"
)

// Spec is one recording task to start: a device's channels.
type Spec struct {
	Device   string
	Gateway  string
	Channels []domain.Channel
	// Token names this launch; the task carries it so that reconciliation
	// can tell the device's current task from an orphan.
	Token string
}

// deviceIndexPattern is what a device index may be: the recorder puts it
// in S3 keys and directory names, and refuses anything else (the same
// pattern as services/recorder's). Gateway ids are checked by
// mediagw/pkg/gatewayid, which also refuses ':'.
var deviceIndexPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

// ValidDeviceIndex checks a device index (not a gateway id: see
// gatewayid.Parse).
func ValidDeviceIndex(s string) error {
	if !deviceIndexPattern.MatchString(s) {
		return fmt.Errorf("device index %q: want letters, digits, '_', '.', ':' or '-' (up to 128, not starting with a symbol): %w", s, domain.ErrInvalid)
	}
	return nil
}

// validGateway checks a gateway id.
func validGateway(s string) error {
	if _, err := gatewayid.Parse(s); err != nil {
		return fmt.Errorf("%w: %w", err, domain.ErrInvalid)
	}
	return nil
}

// Validate checks that a recorder can run the spec; its errors wrap
// domain.ErrInvalid.
func (s Spec) Validate() error {
	if err := validGateway(s.Gateway); err != nil {
		return err
	}
	if err := ValidDeviceIndex(s.Device); err != nil {
		return err
	}
	if len(s.Channels) == 0 {
		return fmt.Errorf("device %s: no channels: %w", s.Device, domain.ErrInvalid)
	}
	for _, c := range s.Channels {
		if _, had, err := domain.CleanMediaURL(c.MediaURL); err != nil || had {
			return fmt.Errorf("device %s channel %d: media URL unusable (must be rtsp without credentials): %w", s.Device, c.Number, domain.ErrInvalid)
		}
		if strings.ContainsAny(c.MediaURL, ", ") {
			return fmt.Errorf("device %s channel %d: media URL contains ',' or a space: %w", s.Device, c.Number, domain.ErrInvalid)
		}
	}
	return nil
}

// The recorder's environment variables (services/recorder/main.go).
const (
	EnvGateway       = "RECORDER_GATEWAY_ID"
	EnvDevice        = "RECORDER_DEVICE_INDEX"
	EnvChannels      = "RECORDER_CHANNELS" // <channel>=<rtsp url>[,…]
	EnvRTSPUser      = "RECORDER_RTSP_USER"
	EnvPasswordParam = "RECORDER_RTSP_PASSWORD_PARAM" // SSM parameter NAME, never the value
	EnvSegmentLength = "RECORDER_SEGMENT_LENGTH"
	EnvBucket        = "RECORDER_BUCKET"
	EnvKeyPrefix     = "RECORDER_KEY_PREFIX"
	EnvSpoolDir      = "RECORDER_SPOOL_DIR"
	// EnvLoginBudgetTable is the login-budget table every login to a
	// gateway goes through (the topology's mediagw-login-budget).
	EnvLoginBudgetTable = "LOGIN_BUDGET_TABLE"
	EnvHTTPAddr         = "HTTP_ADDR"
	EnvStopTimeout      = "SHUTDOWN_GRACE"
	// EnvLaunchToken is read by no recorder; it is there so that a task's
	// own settings say which launch made it (ECS tags say it too).
	EnvLaunchToken = "MEDIAGW_LAUNCH_TOKEN"
)

// Recorder is the recorder settings the task-manager decides for every task.
type Recorder struct {
	RTSPUser string
	// PasswordParameter is the SSM parameter name of the RTSP password; a
	// "{gateway}" in it is replaced by the gateway id.
	PasswordParameter string
	SegmentLength     time.Duration
	Bucket            string
	KeyPrefix         string
	// LoginBudgetTable is the login-budget table (its real name): the
	// recorder logs in to the gateway only through that budget.
	LoginBudgetTable string
	// HTTPAddr is where the recorder serves /metrics ("" leaves its default).
	HTTPAddr string
	// StopTimeout is the recorder's SHUTDOWN_GRACE: the time it has after
	// SIGTERM to close its segment and upload the spool.
	StopTimeout time.Duration
}

// Var is one environment variable.
type Var struct{ Name, Value string }

// Env is the recorder's environment for spec; spoolDir "" leaves the
// recorder's default.
func (r Recorder) Env(spec Spec, spoolDir string) []Var {
	chs := make([]string, len(spec.Channels))
	for i, c := range spec.Channels {
		chs[i] = strconv.Itoa(int(c.Number)) + "=" + c.MediaURL
	}
	env := []Var{
		{EnvGateway, spec.Gateway},
		{EnvDevice, spec.Device},
		{EnvChannels, strings.Join(chs, ",")},
		{EnvBucket, r.Bucket},
		{EnvKeyPrefix, r.KeyPrefix},
		{EnvLoginBudgetTable, r.LoginBudgetTable},
		{EnvLaunchToken, spec.Token},
	}
	if r.RTSPUser != "" {
		env = append(env, Var{EnvRTSPUser, r.RTSPUser})
	}
	if r.PasswordParameter != "" {
		env = append(env, Var{EnvPasswordParam, strings.ReplaceAll(r.PasswordParameter, "{gateway}", spec.Gateway)})
	}
	if r.SegmentLength > 0 {
		env = append(env, Var{EnvSegmentLength, r.SegmentLength.String()})
	}
	if spoolDir != "" {
		env = append(env, Var{EnvSpoolDir, spoolDir})
	}
	if r.HTTPAddr != "" {
		env = append(env, Var{EnvHTTPAddr, r.HTTPAddr})
	}
	if r.StopTimeout > 0 {
		env = append(env, Var{EnvStopTimeout, r.StopTimeout.String()})
	}
	return env
}

// ParseChannels reads the channel numbers back from RECORDER_CHANNELS.
func ParseChannels(s string) []int32 {
	var out []int32
	for _, part := range strings.Split(s, ",") {
		id, _, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(id); err == nil {
			out = append(out, int32(n))
		}
	}
	return out
}
