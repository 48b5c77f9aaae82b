package app

// What both launchers (adapters/ecs, adapters/local) share: the spec of a
// recording task and the recorder's settings interface, i.e. the
// environment a recorder process is started with. That environment carries
// no secret: the RTSP password stays in SSM and only its parameter's name
// is passed.

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"mediagw/pkg/gatewayid"
	"mediagw/services/task-manager/internal/domain"
)

// Spec is one recording task to start: a device's channels, and those of
// the other devices of the same gateway packed beside it.
type Spec struct {
	Device   string
	Gateway  string
	Channels []domain.Channel
	// Packed are other devices of Gateway the same task records (the
	// recorder's <device>/<channel>=<url> entries); empty with
	// TASK_CAPACITY 1.
	Packed []PackedDevice
	// Token names this launch; the task carries it so that reconciliation
	// can tell the device's current task from an orphan.
	Token string
}

// PackedDevice is a device recorded by another device's task.
type PackedDevice struct {
	Device   string
	Channels []domain.Channel
}

// ChannelCount is the number of channels the task records, packed devices
// included: what its size follows.
func (s Spec) ChannelCount() int {
	n := len(s.Channels)
	for _, p := range s.Packed {
		n += len(p.Channels)
	}
	return n
}

// PackedDevices are the packed devices' indexes.
func (s Spec) PackedDevices() []string {
	var out []string
	for _, p := range s.Packed {
		out = append(out, p.Device)
	}
	return out
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
	seen := map[string]bool{s.Device: true}
	for _, p := range s.Packed {
		if err := ValidDeviceIndex(p.Device); err != nil {
			return err
		}
		if seen[p.Device] {
			return fmt.Errorf("device %s: packed twice into one task: %w", p.Device, domain.ErrInvalid)
		}
		seen[p.Device] = true
	}
	if err := validChannels(s.Device, s.Channels); err != nil {
		return err
	}
	for _, p := range s.Packed {
		if err := validChannels(p.Device, p.Channels); err != nil {
			return err
		}
	}
	return nil
}

func validChannels(device string, chs []domain.Channel) error {
	if len(chs) == 0 {
		return fmt.Errorf("device %s: no channels: %w", device, domain.ErrInvalid)
	}
	for _, c := range chs {
		if _, had, err := domain.CleanMediaURL(c.MediaURL); err != nil || had {
			return fmt.Errorf("device %s channel %d: media URL unusable (must be rtsp without credentials): %w", device, c.Number, domain.ErrInvalid)
		}
		if strings.ContainsAny(c.MediaURL, ", ") {
			return fmt.Errorf("device %s channel %d: media URL contains ',' or a space: %w", device, c.Number, domain.ErrInvalid)
		}
	}
	return nil
}

// The recorder's environment variables (services/recorder/main.go).
const (
	EnvGateway       = "RECORDER_GATEWAY_ID"
	EnvDevice        = "RECORDER_DEVICE_INDEX"
	EnvChannels      = "RECORDER_CHANNELS" // <channel>=<rtsp url>[,…]; a packed device's: <device>/<channel>=<rtsp url>
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
	chs := make([]string, 0, spec.ChannelCount())
	for _, c := range spec.Channels {
		chs = append(chs, strconv.Itoa(int(c.Number))+"="+c.MediaURL)
	}
	for _, p := range spec.Packed {
		for _, c := range p.Channels {
			chs = append(chs, p.Device+"/"+strconv.Itoa(int(c.Number))+"="+c.MediaURL)
		}
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

// ParseChannels reads the task's own device's channel numbers back from
// RECORDER_CHANNELS (packed devices' entries are not among them).
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

// ParsePackedDevices reads the packed devices back from RECORDER_CHANNELS,
// in the order of their first entry.
func ParsePackedDevices(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		id, _, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		if dev, _, packed := strings.Cut(id, "/"); packed && dev != "" && !slices.Contains(out, dev) {
			out = append(out, dev)
		}
	}
	return out
}
