package domain

import (
	"fmt"
	"time"
)

// Setting names one configurable part of the gateway; the names are what
// GatewayConfigured.changed and GatewayConfigurationFailed.step carry.
type Setting string

// Settings, in the order they are applied.
const (
	SettingPassword        Setting = "password"
	SettingName            Setting = "name"
	SettingTime            Setting = "time"
	SettingContentPortMaps Setting = "portmap.contentMgmt"
	SettingDevicePortMaps  Setting = "portmap.devMgmt"
)

// ReadableSettings are the settings read from the gateway and compared.
var ReadableSettings = []Setting{SettingName, SettingTime, SettingContentPortMaps, SettingDevicePortMaps}

// NeedsReboot reports whether a change of s takes effect only after a reboot.
func (s Setting) NeedsReboot() bool {
	return s == SettingContentPortMaps || s == SettingDevicePortMaps
}

// ClockTolerance is how far a manual clock may drift before it is set again.
const ClockTolerance = 30 * time.Second

// Target is the full state a gateway should reach, derived from Desired and
// what the gateway has (its port lists).
type Target struct {
	Name    string
	Time    TimeSettings
	Content ContentPortMaps
	Device  DevicePortMaps
}

// Step is one write.
type Step struct {
	Setting     Setting
	NeedsReboot bool
}

// Plan is the ordered writes that bring the gateway to Target.
type Plan struct {
	Target Target
	Steps  []Step
}

// NeedsReboot reports whether any step needs a reboot to take effect.
func (p Plan) NeedsReboot() bool {
	for _, s := range p.Steps {
		if s.NeedsReboot {
			return true
		}
	}
	return false
}

// Empty reports a gateway that already has every desired setting.
func (p Plan) Empty() bool { return len(p.Steps) == 0 }

// NewPlan compares the current settings with the desired ones. now is the
// real time, for a manual clock.
func NewPlan(cur Current, d Desired, now time.Time) Plan {
	t := Target{
		Name:    d.Name,
		Time:    TimeSettings{Mode: d.TimeMode, Zone: d.TimeZone},
		Content: d.ContentTarget(cur.Content),
		Device:  d.DeviceTarget(cur.Device),
	}
	if d.TimeMode == TimeModeManual {
		if off, err := parseGatewayZone(d.TimeZone); err == nil {
			t.Time.Clock = now.In(time.FixedZone("", int(off.east/time.Second)))
		}
	}
	p := Plan{Target: t}
	for _, s := range ReadableSettings {
		if !t.Matches(s, cur) {
			p.Steps = append(p.Steps, Step{Setting: s, NeedsReboot: s.NeedsReboot()})
		}
	}
	return p
}

// Matches reports whether the gateway's current value of s is the target's.
func (t Target) Matches(s Setting, cur Current) bool {
	return t.Mismatch(s, cur) == ""
}

// Mismatch describes how the current value of s differs from the target,
// or returns "" when it matches. It never mentions passwords.
func (t Target) Mismatch(s Setting, cur Current) string {
	switch s {
	case SettingName:
		if cur.Name != t.Name {
			return fmt.Sprintf("name is %q, want %q", cur.Name, t.Name)
		}
	case SettingTime:
		if cur.Time.Mode != t.Time.Mode {
			return fmt.Sprintf("time mode is %q, want %q", cur.Time.Mode, t.Time.Mode)
		}
		if !SameZone(cur.Time.Zone, t.Time.Zone) {
			return fmt.Sprintf("time zone is %q, want %q", cur.Time.Zone, t.Time.Zone)
		}
		if t.Time.Mode == TimeModeManual && !t.Time.Clock.IsZero() {
			if cur.Time.Clock.IsZero() {
				return "the gateway did not report its clock"
			}
			if d := cur.Time.Clock.Sub(t.Time.Clock).Abs(); d > ClockTolerance {
				return fmt.Sprintf("manual clock is off by %s", d.Round(time.Second))
			}
		}
	case SettingContentPortMaps:
		if !cur.Content.Equal(t.Content) {
			return fmt.Sprintf("platform port mapping is %s, want %s", describeContent(cur.Content), describeContent(t.Content))
		}
	case SettingDevicePortMaps:
		if !cur.Device.Equal(t.Device) {
			return fmt.Sprintf("device port mapping is %s, want %s", describePorts(cur.Device.Enabled, cur.Device.Ports), describePorts(t.Device.Enabled, t.Device.Ports))
		}
	default:
		return fmt.Sprintf("unknown setting %q", s)
	}
	return ""
}

func describeContent(m ContentPortMaps) string {
	return fmt.Sprintf("%s to %v", describePorts(m.Enabled, m.Ports), m.ExternalIPs)
}

func describePorts(enabled bool, ports []Port) string {
	s := "disabled"
	if enabled {
		s = "enabled"
	}
	s += " ["
	for i, p := range ports {
		if i > 0 {
			s += " "
		}
		if p.Range {
			s += fmt.Sprintf("%d-%d→%d-%d", p.InternalMin, p.InternalMax, p.ExternalMin, p.ExternalMax)
		} else {
			s += fmt.Sprintf("%d→%d", p.InternalMin, p.ExternalMin)
		}
	}
	return s + "]"
}

// Describe renders the current value of s for logs.
func (c Current) Describe(s Setting) string {
	switch s {
	case SettingName:
		return fmt.Sprintf("%q", c.Name)
	case SettingTime:
		return c.Time.Mode + " " + c.Time.Zone
	case SettingContentPortMaps:
		return describeContent(c.Content)
	case SettingDevicePortMaps:
		return describePorts(c.Device.Enabled, c.Device.Ports)
	}
	return ""
}
