package gatewaysim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// DeviceStatus is a camera's registration state as the gateway reports it.
type DeviceStatus string

// Statuses the gateway reports in deviceList.
const (
	StatusOnline  DeviceStatus = "online"
	StatusOffline DeviceStatus = "offline"
	StatusSleep   DeviceStatus = "sleep"
)

func (s DeviceStatus) valid() bool {
	return s == StatusOnline || s == StatusOffline || s == StatusSleep
}

// Device is a camera attached to the gateway.
type Device struct {
	DevIndex string       `json:"devIndex"`
	Name     string       `json:"name"`
	Status   DeviceStatus `json:"status"`
	Model    string       `json:"model"`
	Protocol string       `json:"protocol"`
	Channels []Channel    `json:"channels"`
}

// Channel is one video channel of a camera.
type Channel struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

func (d Device) clone() Device {
	d.Channels = slices.Clone(d.Channels)
	return d
}

func (d Device) hasChannel(id int) bool {
	return slices.ContainsFunc(d.Channels, func(c Channel) bool { return c.ID == id })
}

// DeviceSpec describes a camera to add; zero fields get defaults.
type DeviceSpec struct {
	DevIndex string       `json:"devIndex,omitempty"`
	Name     string       `json:"name,omitempty"`
	Status   DeviceStatus `json:"status,omitempty"`
	Model    string       `json:"model,omitempty"`
	Protocol string       `json:"protocol,omitempty"`
	Channels int          `json:"channels,omitempty"`
}

// Errors returned by the scenario-control methods.
var (
	ErrNoDevice      = errors.New("gatewaysim: no such device")
	ErrDeviceExists  = errors.New("gatewaysim: device already exists")
	ErrInvalidStatus = errors.New("gatewaysim: invalid device status")
)

// EventType is the kind of a device-management notification.
type EventType string

// Event types on the subscribeDeviceMgmt stream.
const (
	EventAdded   EventType = "added"
	EventRemoved EventType = "removed"
	EventOnline  EventType = "online"
	EventOffline EventType = "offline"
	EventSleep   EventType = "sleep"
)

// Event is a device-management notification.
type Event struct {
	Seq      uint64       `json:"seq"`
	Type     EventType    `json:"type"`
	DevIndex string       `json:"devIndex"`
	DevName  string       `json:"devName"`
	Status   DeviceStatus `json:"devStatus"`
	Time     time.Time    `json:"time"`
}

// MgmtPortMaps is the platform port mapping (PortMaps/contentMgmt).
type MgmtPortMaps struct {
	Enabled  bool       `json:"enabled"`
	PortList []MgmtPort `json:"PortList"`
	AddrList []MgmtAddr `json:"AddrList"`
}

// MgmtPort maps one of the gateway's service ports.
type MgmtPort struct {
	Protocol     string `json:"protocol,omitempty"`
	InternalPort int    `json:"internalPort"`
	ExternalPort int    `json:"externalPort"`
}

// MgmtAddr is the public address clients reach the gateway on.
type MgmtAddr struct {
	ExternalIPAddress string `json:"externalIPAddress"`
}

// DevPortMaps is the device-side port mapping (PortMaps/devMgmt).
type DevPortMaps struct {
	Enabled  bool      `json:"enabled"`
	PortList []DevPort `json:"PortList"`
}

// DevPort is either a single port or a range.
type DevPort struct {
	Single *SinglePort `json:"Single,omitempty"`
	Range  *PortRange  `json:"Range,omitempty"`
}

// SinglePort maps one port.
type SinglePort struct {
	Protocol     string `json:"protocol,omitempty"`
	InternalPort int    `json:"internalPort"`
	ExternalPort int    `json:"externalPort"`
}

// PortRange maps a contiguous range of ports.
type PortRange struct {
	Protocol        string `json:"protocol,omitempty"`
	MinInternalPort int    `json:"minInternalPort"`
	MaxInternalPort int    `json:"maxInternalPort"`
	MinExternalPort int    `json:"minExternalPort"`
	MaxExternalPort int    `json:"maxExternalPort"`
}

func (m MgmtPortMaps) clone() MgmtPortMaps {
	m.PortList = slices.Clone(m.PortList)
	m.AddrList = slices.Clone(m.AddrList)
	return m
}

func (m DevPortMaps) clone() DevPortMaps {
	out := DevPortMaps{Enabled: m.Enabled}
	for _, p := range m.PortList {
		var c DevPort
		if p.Single != nil {
			s := *p.Single
			c.Single = &s
		}
		if p.Range != nil {
			r := *p.Range
			c.Range = &r
		}
		out.PortList = append(out.PortList, c)
	}
	return out
}

// Settings is the gateway's configuration as a test may assert it. The
// password is deliberately absent: use Server.CheckPassword.
type Settings struct {
	DeviceName      string        `json:"deviceName"`
	AdminUser       string        `json:"adminUser"`
	TimeMode        string        `json:"timeMode"`
	TimeZone        string        `json:"timeZone"`
	ClockOffset     time.Duration `json:"clockOffset"`
	ContentPortMaps MgmtPortMaps  `json:"contentPortMaps"`
	DevicePortMaps  DevPortMaps   `json:"devicePortMaps"`
	// RebootRequired is set by a port-map change and cleared by a reboot.
	RebootRequired bool      `json:"rebootRequired"`
	BootTime       time.Time `json:"bootTime"`
	Rebooting      bool      `json:"rebooting"`
}

// Counters are what the gateway saw, for test assertions.
type Counters struct {
	// FailedLogins counts wrong credentials per source IP, ISAPI and RTSP:
	// the failures that drive the lockout (never reset by a successful
	// login or by reboot; ResetCounters clears it). Credentials refused
	// because the IP is locked are not in it; LoginFailures has both.
	FailedLogins map[string]int `json:"failedLogins"`
	// LoginFailures is the ledger of every failed login, oldest first:
	// wrong credentials and credentials sent while locked, with time,
	// source IP, protocol, user and how it was answered.
	LoginFailures LoginLedger `json:"loginFailures"`
	// LoginFailuresDropped counts the oldest records dropped from the
	// ledger beyond its 10000.
	LoginFailuresDropped int `json:"loginFailuresDropped"`
	// Lockouts counts how many times a source IP got locked (ISAPI or RTSP).
	Lockouts map[string]int `json:"lockouts"`
	// Requests counts every ISAPI request received, keyed "METHOD /path",
	// including unauthenticated challenges.
	Requests map[string]int `json:"requests"`
	// Authorized counts requests that passed authentication, keyed "METHOD /path".
	Authorized map[string]int `json:"authorized"`
	// Puts counts authorized PUT requests per path.
	Puts map[string]int `json:"puts"`
	// Reboots counts reboots (ISAPI or scenario).
	Reboots int `json:"reboots"`
	// Subscribers is the number of currently open event streams.
	Subscribers int `json:"subscribers"`
	// FaultsApplied counts injected faults that fired.
	FaultsApplied int `json:"faultsApplied"`
}

// state is the gateway's data model, guarded by mu.
type state struct {
	mu       sync.Mutex
	devices  []*Device
	byIndex  map[string]*Device
	nextCam  int
	seed     string
	password string
	settings Settings
	counters Counters
	broker   *broker
}

func newState(cfg Config, httpPort, rtspPort int, now time.Time) *state {
	st := &state{
		byIndex:  map[string]*Device{},
		seed:     cfg.DeviceIDSeed,
		password: cfg.AdminPassword,
		broker:   newBroker(),
		settings: Settings{
			DeviceName: cfg.DeviceName,
			AdminUser:  cfg.AdminUser,
			TimeMode:   cfg.TimeMode,
			TimeZone:   cfg.TimeZone,
			BootTime:   now,
			ContentPortMaps: MgmtPortMaps{
				PortList: []MgmtPort{
					{Protocol: "HTTP", InternalPort: httpPort},
					{Protocol: "RTSP", InternalPort: rtspPort},
					{Protocol: "SDK", InternalPort: 8000},
				},
				AddrList: []MgmtAddr{{ExternalIPAddress: "0.0.0.0"}},
			},
			DevicePortMaps: DevPortMaps{
				PortList: []DevPort{
					{Single: &SinglePort{Protocol: "ISUP", InternalPort: 7660}},
					{Single: &SinglePort{Protocol: "ISUPMedia", InternalPort: 7661}},
					{Range: &PortRange{Protocol: "ISUPStream", MinInternalPort: 7662, MaxInternalPort: 7700}},
				},
			},
		},
	}
	st.resetCountersLocked()
	return st
}

func (st *state) resetCountersLocked() {
	subs := st.counters.Subscribers
	st.counters = Counters{
		FailedLogins:  map[string]int{},
		LoginFailures: LoginLedger{},
		Lockouts:      map[string]int{},
		Requests:      map[string]int{},
		Authorized:    map[string]int{},
		Puts:          map[string]int{},
		Subscribers:   subs,
	}
}

func (st *state) newDevIndexLocked(camNo int) string {
	if st.seed != "" {
		id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(st.seed+"/"+strconv.Itoa(camNo)))
		if _, taken := st.byIndex[strings.ToUpper(id.String())]; !taken {
			return strings.ToUpper(id.String())
		}
	}
	return strings.ToUpper(uuid.NewString())
}

// addDevice adds a camera and publishes "added" (and its status if not online).
func (st *state) addDevice(spec DeviceSpec, now time.Time) (Device, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if spec.Status == "" {
		spec.Status = StatusOnline
	}
	if !spec.Status.valid() {
		return Device{}, fmt.Errorf("%w: %q", ErrInvalidStatus, spec.Status)
	}
	if spec.Channels < 0 || spec.Channels > 256 {
		return Device{}, fmt.Errorf("gatewaysim: channels %d out of range 1..256", spec.Channels)
	}
	st.nextCam++
	camNo := st.nextCam
	if spec.DevIndex == "" {
		spec.DevIndex = st.newDevIndexLocked(camNo)
	} else if strings.ContainsAny(spec.DevIndex, "/?# ") {
		return Device{}, fmt.Errorf("gatewaysim: devIndex %q must not contain '/', '?', '#' or spaces", spec.DevIndex)
	}
	if _, exists := st.byIndex[spec.DevIndex]; exists {
		return Device{}, fmt.Errorf("%w: %s", ErrDeviceExists, spec.DevIndex)
	}
	if spec.Name == "" {
		spec.Name = fmt.Sprintf("Camera %03d", camNo)
	}
	if spec.Model == "" {
		spec.Model = "DS-2CD2143G2-I"
	}
	if spec.Protocol == "" {
		spec.Protocol = "ISUP"
	}
	if spec.Channels == 0 {
		spec.Channels = 1
	}
	d := &Device{DevIndex: spec.DevIndex, Name: spec.Name, Status: spec.Status, Model: spec.Model, Protocol: spec.Protocol}
	for ch := 1; ch <= spec.Channels; ch++ {
		d.Channels = append(d.Channels, Channel{ID: ch, Name: fmt.Sprintf("%s ch%d", spec.Name, ch)})
	}
	st.devices = append(st.devices, d)
	st.byIndex[d.DevIndex] = d
	st.publishLocked(EventAdded, d, now)
	if d.Status != StatusOnline {
		st.publishLocked(eventFor(d.Status), d, now)
	}
	return d.clone(), nil
}

func eventFor(s DeviceStatus) EventType {
	switch s {
	case StatusOffline:
		return EventOffline
	case StatusSleep:
		return EventSleep
	default:
		return EventOnline
	}
}

func (st *state) publishLocked(t EventType, d *Device, now time.Time) {
	st.broker.publish(Event{Type: t, DevIndex: d.DevIndex, DevName: d.Name, Status: d.Status, Time: now})
}

func (st *state) deleteDevice(devIndex string, now time.Time) (Device, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	d, okd := st.byIndex[devIndex]
	if !okd {
		return Device{}, fmt.Errorf("%w: %s", ErrNoDevice, devIndex)
	}
	delete(st.byIndex, devIndex)
	st.devices = slices.DeleteFunc(st.devices, func(x *Device) bool { return x == d })
	st.publishLocked(EventRemoved, d, now)
	return d.clone(), nil
}

// setStatus changes a camera's status; it reports the previous status. An
// unchanged status publishes nothing.
func (st *state) setStatus(devIndex string, s DeviceStatus, now time.Time) (Device, DeviceStatus, error) {
	if !s.valid() {
		return Device{}, "", fmt.Errorf("%w: %q", ErrInvalidStatus, s)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	d, okd := st.byIndex[devIndex]
	if !okd {
		return Device{}, "", fmt.Errorf("%w: %s", ErrNoDevice, devIndex)
	}
	prev := d.Status
	if prev != s {
		d.Status = s
		st.publishLocked(eventFor(s), d, now)
	}
	return d.clone(), prev, nil
}

func (st *state) device(devIndex string) (Device, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	d, okd := st.byIndex[devIndex]
	if !okd {
		return Device{}, false
	}
	return d.clone(), true
}

// findDevice resolves a scenario reference: a devIndex or a camera name.
func (st *state) findDevice(ref string) (Device, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if d, okd := st.byIndex[ref]; okd {
		return d.clone(), true
	}
	for _, d := range st.devices {
		if d.Name == ref {
			return d.clone(), true
		}
	}
	return Device{}, false
}

func (st *state) deviceList() []Device {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]Device, len(st.devices))
	for i, d := range st.devices {
		out[i] = d.clone()
	}
	return out
}

func (st *state) snapshotSettings() Settings {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.settings
	s.ContentPortMaps = s.ContentPortMaps.clone()
	s.DevicePortMaps = s.DevicePortMaps.clone()
	return s
}

func (st *state) snapshotCounters() Counters {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.counters
	c.FailedLogins = maps.Clone(c.FailedLogins)
	c.LoginFailures = slices.Clone(c.LoginFailures)
	c.Lockouts = maps.Clone(c.Lockouts)
	c.Requests = maps.Clone(c.Requests)
	c.Authorized = maps.Clone(c.Authorized)
	c.Puts = maps.Clone(c.Puts)
	return c
}

func (st *state) credentials() (string, string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.settings.AdminUser, st.password
}

func (st *state) update(f func(*state)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(st)
}
