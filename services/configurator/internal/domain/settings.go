package domain

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Parameter names under <PARAMETER_ROOT>/gateways/<gateway-id>/.
const (
	ParamGatewayName       = "GatewayName"       // String, required
	ParamPassword          = "Password"          // SecureString, required
	ParamBootstrapPassword = "BootstrapPassword" // SecureString, optional
	ParamTimezone          = "Timezone"          // String, required: hours east of UTC
	ParamExternalIP        = "ExternalIP"        // String: used when the event carries no Elastic IP
	ParamTimeMode          = "TimeMode"          // String, optional: NTP (default) or manual
	ParamContentPorts      = "ContentPorts"      // String, optional: platform port overrides "80:8080,554:10554"
	ParamDevicePorts       = "DevicePorts"       // String, optional: device port overrides "7660:17660"
	// ParamPendingReboot is written by the configurator itself before a
	// change that needs a reboot and deleted once the reboot is verified:
	// a run that dies in between leaves it, and the next run reboots even
	// though the settings already read as desired.
	ParamPendingReboot = "PendingReboot"
	// ParamPendingConfiguration is written by the configurator when a run
	// found no password it may or can log in with (see
	// PendingConfiguration) and deleted when a run succeeds.
	ParamPendingConfiguration = "PendingConfiguration"
)

// Time modes.
const (
	TimeModeNTP    = "NTP"
	TimeModeManual = "manual"
)

// ErrBadParameter is wrapped by every error about a parameter's value or absence.
var ErrBadParameter = errors.New("bad parameter")

// Param is one parameter value as stored. Every value is kept as a Secret
// so that none is printed by accident; Secure says it was a SecureString.
// Name (the full parameter name) and Version identify the value without
// revealing it: a password's login credential is its name and version.
type Param struct {
	Value   Secret
	Secure  bool
	Name    string
	Version int64
}

// Parameters are a gateway's parameters by short name (ParamGatewayName...).
type Parameters map[string]Param

func (p Parameters) text(name string) (string, bool) {
	v, ok := p[name]
	if !ok {
		return "", false
	}
	return strings.TrimSpace(v.Value.Reveal()), true
}

// Desired is what a gateway should look like.
type Desired struct {
	Name string
	// Password is the admin password the gateway must end with; Bootstrap
	// is the factory one it may still have (zero when unknown).
	Password  Secret
	Bootstrap Secret
	// PasswordParam and BootstrapParam are the parameters the passwords
	// came from (name and version).
	PasswordParam, BootstrapParam Param
	TimeMode                      string
	// TimeZone is in the gateway's form, e.g. "CST-8:00:00".
	TimeZone string
	// ExternalIP is the Elastic IP the port mappings point at.
	ExternalIP string
	// ContentPorts and DevicePorts override external ports by internal port;
	// a port not listed keeps external = internal.
	ContentPorts PortOverrides
	DevicePorts  PortOverrides
}

// DesiredFrom builds the desired settings from the gateway's parameters.
// elasticIP, when not empty, wins over the ExternalIP parameter (the event
// knows the address of the instance that exists now).
func DesiredFrom(p Parameters, elasticIP, user string) (Desired, error) {
	var d Desired
	var errs []error
	need := func(name string) string {
		v, ok := p.text(name)
		if !ok || v == "" {
			errs = append(errs, fmt.Errorf("%w: %s is not set", ErrBadParameter, name))
		}
		return v
	}
	d.Name = need(ParamGatewayName)
	if d.Name != "" {
		if n := len([]rune(d.Name)); n > 64 || strings.ContainsAny(d.Name, "\x00\r\n\t") {
			errs = append(errs, fmt.Errorf("%w: %s must be 1 to 64 characters on one line", ErrBadParameter, ParamGatewayName))
		}
	}
	if pw, ok := p[ParamPassword]; !ok || pw.Value.IsZero() {
		errs = append(errs, fmt.Errorf("%w: %s is not set", ErrBadParameter, ParamPassword))
	} else if !pw.Secure {
		errs = append(errs, fmt.Errorf("%w: %s must be a SecureString parameter", ErrBadParameter, ParamPassword))
	} else if err := CheckPassword(pw.Value, user); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", ParamPassword, err))
	} else {
		d.Password, d.PasswordParam = pw.Value, pw
	}
	if bp, ok := p[ParamBootstrapPassword]; ok && !bp.Value.IsZero() {
		if !bp.Secure {
			errs = append(errs, fmt.Errorf("%w: %s must be a SecureString parameter", ErrBadParameter, ParamBootstrapPassword))
		} else {
			d.Bootstrap, d.BootstrapParam = bp.Value, bp
		}
	}
	if tz := need(ParamTimezone); tz != "" {
		zone, err := TimezoneFromHours(tz)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrBadParameter, ParamTimezone, err))
		}
		d.TimeZone = zone
	}
	d.TimeMode = TimeModeNTP
	if m, ok := p.text(ParamTimeMode); ok && m != "" {
		switch {
		case strings.EqualFold(m, TimeModeNTP):
		case strings.EqualFold(m, TimeModeManual):
			d.TimeMode = TimeModeManual
		default:
			errs = append(errs, fmt.Errorf("%w: %s %q: want NTP or manual", ErrBadParameter, ParamTimeMode, m))
		}
	}
	d.ExternalIP = strings.TrimSpace(elasticIP)
	if d.ExternalIP == "" {
		d.ExternalIP, _ = p.text(ParamExternalIP)
	}
	if d.ExternalIP == "" {
		errs = append(errs, fmt.Errorf("%w: no Elastic IP in the event and %s is not set", ErrBadParameter, ParamExternalIP))
	} else if ip := net.ParseIP(d.ExternalIP); ip == nil || ip.To4() == nil {
		errs = append(errs, fmt.Errorf("%w: external IP %q is not an IPv4 address", ErrBadParameter, d.ExternalIP))
	}
	for _, o := range []struct {
		name string
		into *PortOverrides
	}{{ParamContentPorts, &d.ContentPorts}, {ParamDevicePorts, &d.DevicePorts}} {
		if v, ok := p.text(o.name); ok && v != "" {
			po, err := ParsePortOverrides(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: %s: %w", ErrBadParameter, o.name, err))
			}
			*o.into = po
		}
	}
	return d, errors.Join(errs...)
}

// BaseURL turns an event's gateway address ("10.0.0.5:80", or a URL) into
// the base URL of its HTTP API.
func BaseURL(address string) (string, error) {
	a := strings.TrimSpace(address)
	if a == "" {
		return "", errors.New("no gateway address")
	}
	if !strings.Contains(a, "://") {
		a = "http://" + a
	}
	u, err := url.Parse(a)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("gateway address %q: want host:port or http(s)://host:port", address)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("gateway address %q: bad port", address)
		}
	}
	return u.Scheme + "://" + u.Host, nil
}

// PortOverrides maps an internal port (for a range, its first port) to the
// external port (for a range, the first external port).
type PortOverrides map[int]int

// ParsePortOverrides reads "internal:external" pairs separated by commas,
// e.g. "80:8080, 7660:17660".
func ParsePortOverrides(s string) (PortOverrides, error) {
	out := PortOverrides{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		in, ex, ok := strings.Cut(f, ":")
		i, err1 := strconv.Atoi(strings.TrimSpace(in))
		e, err2 := strconv.Atoi(strings.TrimSpace(ex))
		if !ok || err1 != nil || err2 != nil || i < 1 || i > 65535 || e < 1 || e > 65535 {
			return nil, fmt.Errorf("%q: want internal:external ports between 1 and 65535", f)
		}
		if _, dup := out[i]; dup {
			return nil, fmt.Errorf("internal port %d listed twice", i)
		}
		out[i] = e
	}
	return out, nil
}

func (o PortOverrides) external(internal int) int {
	if e, ok := o[internal]; ok {
		return e
	}
	return internal
}

// Port is one mapping: a single port (Range false, Min == Max) or a range.
type Port struct {
	Protocol    string
	Range       bool
	InternalMin int
	InternalMax int
	ExternalMin int // 0 when unmapped
	ExternalMax int
}

// ContentPortMaps is the platform-side mapping (contentMgmt).
type ContentPortMaps struct {
	Enabled     bool
	Ports       []Port
	ExternalIPs []string
}

// DevicePortMaps is the device-side mapping (devMgmt).
type DevicePortMaps struct {
	Enabled bool
	Ports   []Port
}

// TimeSettings is the gateway's clock configuration.
type TimeSettings struct {
	Mode string
	Zone string
	// Clock is the gateway's local time as read (zero when unknown); on a
	// target it is the time to set in manual mode, zero for "leave it".
	Clock time.Time
}

// Current is what the gateway reports. Read fills the settings one by one.
type Current struct {
	Name    string
	Time    TimeSettings
	Content ContentPortMaps
	Device  DevicePortMaps
}

func mapPorts(ports []Port, o PortOverrides) []Port {
	out := make([]Port, 0, len(ports))
	for _, p := range ports {
		ext := o.external(p.InternalMin)
		p.ExternalMin, p.ExternalMax = ext, ext+(p.InternalMax-p.InternalMin)
		out = append(out, p)
	}
	return out
}

// ContentTarget is the desired platform mapping for the ports the gateway
// has: enabled, every port mapped, the Elastic IP as external address.
func (d Desired) ContentTarget(cur ContentPortMaps) ContentPortMaps {
	return ContentPortMaps{Enabled: true, Ports: mapPorts(cur.Ports, d.ContentPorts), ExternalIPs: []string{d.ExternalIP}}
}

// DeviceTarget is the desired device mapping: enabled, every port mapped.
func (d Desired) DeviceTarget(cur DevicePortMaps) DevicePortMaps {
	return DevicePortMaps{Enabled: true, Ports: mapPorts(cur.Ports, d.DevicePorts)}
}

// Equal compares mappings entry by entry.
func (m ContentPortMaps) Equal(o ContentPortMaps) bool {
	return m.Enabled == o.Enabled && slices.Equal(m.Ports, o.Ports) && slices.Equal(m.ExternalIPs, o.ExternalIPs)
}

// Equal compares mappings entry by entry.
func (m DevicePortMaps) Equal(o DevicePortMaps) bool {
	return m.Enabled == o.Enabled && slices.Equal(m.Ports, o.Ports)
}
