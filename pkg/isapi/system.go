package isapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"mediagw/pkg/hiktz"
)

// ISAPI paths of the gateway's own settings.
const (
	pathDeviceInfo      = "/ISAPI/System/deviceInfo"
	pathUsers           = "/ISAPI/Security/users"
	pathContentPortMaps = "/ISAPI/System/Network/PortMaps/contentMgmt"
	pathDevicePortMaps  = "/ISAPI/System/Network/PortMaps/devMgmt"
	pathTime            = "/ISAPI/System/time"
	pathReboot          = "/ISAPI/System/reboot"
	pathStatus          = "/ISAPI/System/status"
)

func missing(r request, what string) error {
	return &MalformedResponseError{Method: r.method, Path: r.path, HTTPStatus: http.StatusOK, ContentType: "application/json", Err: errors.New("no " + what)}
}

// DeviceInfo is the gateway's identity. Unknown members are kept for PUT.
type DeviceInfo struct {
	DeviceName      string `json:"deviceName"`
	DeviceID        string `json:"deviceID,omitempty"`
	Model           string `json:"model,omitempty"`
	SerialNumber    string `json:"serialNumber,omitempty"`
	MacAddress      string `json:"macAddress,omitempty"`
	FirmwareVersion string `json:"firmwareVersion,omitempty"`
	DeviceType      string `json:"deviceType,omitempty"`
	extra           extra
}

type plainDeviceInfo DeviceInfo

// UnmarshalJSON keeps unknown members.
func (d *DeviceInfo) UnmarshalJSON(b []byte) error {
	return decodeKeeping(b, (*plainDeviceInfo)(d), &d.extra)
}

// MarshalJSON writes the known members over the kept ones.
func (d DeviceInfo) MarshalJSON() ([]byte, error) {
	return encodeMerged(d.extra, plainDeviceInfo(d))
}

// DeviceInfo reads the gateway's identity and name.
func (c *Client) DeviceInfo(ctx context.Context) (*DeviceInfo, error) {
	r := request{method: http.MethodGet, path: pathDeviceInfo}
	var out struct {
		DeviceInfo *DeviceInfo `json:"DeviceInfo"`
	}
	if _, err := c.do(ctx, r, nil, &out); err != nil {
		return nil, err
	}
	if out.DeviceInfo == nil {
		return nil, missing(r, "DeviceInfo")
	}
	return out.DeviceInfo, nil
}

// PutDeviceInfo writes DeviceInfo back (read it with DeviceInfo first).
func (c *Client) PutDeviceInfo(ctx context.Context, d *DeviceInfo) (*ResponseStatus, error) {
	return c.do(ctx, request{method: http.MethodPut, path: pathDeviceInfo}, map[string]any{"DeviceInfo": d}, nil)
}

// SetDeviceName renames the gateway (read, edit, write back).
func (c *Client) SetDeviceName(ctx context.Context, name string) (*ResponseStatus, error) {
	d, err := c.DeviceInfo(ctx)
	if err != nil {
		return nil, err
	}
	d.DeviceName = name
	return c.PutDeviceInfo(ctx, d)
}

// ChangePassword sets a new password for the client's user, proving the
// current one with loginPassword. On success the client switches to the
// new password at once (the old one stops working on the gateway). A weak
// but accepted password answers RiskyPassword(). If the answer is lost
// (timeout), the caller cannot know whether the change happened: try the
// new password with SetCredentials (or, on a client made WithLoginGate, a
// new client).
func (c *Client) ChangePassword(ctx context.Context, newPassword string) (*ResponseStatus, error) {
	c.mu.Lock()
	user, current := c.user, c.password
	c.mu.Unlock()
	// The gateway may echo the request, new password and all.
	c.secrets.Add(newPassword)
	in := map[string]any{"UserList": []any{map[string]any{"User": map[string]any{
		"id": 1, "userName": user, "password": newPassword, "loginPassword": current,
	}}}}
	rs, err := c.do(ctx, request{method: http.MethodPut, path: pathUsers}, in, nil)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.user == user && c.password == current {
		c.password = newPassword
		c.gen++
		c.verified = true // the gateway just accepted it
	}
	// The gateway now holds newPassword: a refusal remembered from before
	// the change no longer says anything about it.
	delete(c.rejected, c.credKey(user, newPassword))
	c.mu.Unlock()
	return rs, nil
}

// MgmtPortMaps is the platform-side NAT mapping (PortMaps/contentMgmt).
type MgmtPortMaps struct {
	Enabled  bool       `json:"enabled"`
	PortList []MgmtPort `json:"PortList"`
	AddrList []MgmtAddr `json:"AddrList"`
	extra    extra
}

// MgmtPort maps one of the gateway's service ports.
type MgmtPort struct {
	Protocol     string `json:"protocol,omitempty"`
	InternalPort int    `json:"internalPort"`
	ExternalPort int    `json:"externalPort"`
	extra        extra
}

// MgmtAddr is the public address of the gateway.
type MgmtAddr struct {
	ExternalIPAddress string `json:"externalIPAddress"`
	extra             extra
}

// DevPortMaps is the device-side NAT mapping (PortMaps/devMgmt).
type DevPortMaps struct {
	Enabled  bool      `json:"enabled"`
	PortList []DevPort `json:"PortList"`
	extra    extra
}

// DevPort is a single port or a range; exactly one is set.
type DevPort struct {
	Single *SinglePort `json:"Single,omitempty"`
	Range  *PortRange  `json:"Range,omitempty"`
	extra  extra
}

// SinglePort maps one port.
type SinglePort struct {
	Protocol     string `json:"protocol,omitempty"`
	InternalPort int    `json:"internalPort"`
	ExternalPort int    `json:"externalPort"`
	extra        extra
}

// PortRange maps a range of ports.
type PortRange struct {
	Protocol        string `json:"protocol,omitempty"`
	MinInternalPort int    `json:"minInternalPort"`
	MaxInternalPort int    `json:"maxInternalPort"`
	MinExternalPort int    `json:"minExternalPort"`
	MaxExternalPort int    `json:"maxExternalPort"`
	extra           extra
}

type (
	plainMgmtPortMaps MgmtPortMaps
	plainMgmtPort     MgmtPort
	plainMgmtAddr     MgmtAddr
	plainDevPortMaps  DevPortMaps
	plainDevPort      DevPort
	plainSinglePort   SinglePort
	plainPortRange    PortRange
)

// UnmarshalJSON keeps unknown members.
func (m *MgmtPortMaps) UnmarshalJSON(b []byte) error {
	return decodeKeeping(b, (*plainMgmtPortMaps)(m), &m.extra)
}

// MarshalJSON writes the known members over the kept ones.
func (m MgmtPortMaps) MarshalJSON() ([]byte, error) {
	return encodeMerged(m.extra, plainMgmtPortMaps(m))
}

// UnmarshalJSON keeps unknown members.
func (m *MgmtPort) UnmarshalJSON(b []byte) error {
	return decodeKeeping(b, (*plainMgmtPort)(m), &m.extra)
}

// MarshalJSON writes the known members over the kept ones.
func (m MgmtPort) MarshalJSON() ([]byte, error) { return encodeMerged(m.extra, plainMgmtPort(m)) }

// UnmarshalJSON keeps unknown members.
func (m *MgmtAddr) UnmarshalJSON(b []byte) error {
	return decodeKeeping(b, (*plainMgmtAddr)(m), &m.extra)
}

// MarshalJSON writes the known members over the kept ones.
func (m MgmtAddr) MarshalJSON() ([]byte, error) { return encodeMerged(m.extra, plainMgmtAddr(m)) }

// UnmarshalJSON keeps unknown members.
func (m *DevPortMaps) UnmarshalJSON(b []byte) error {
	return decodeKeeping(b, (*plainDevPortMaps)(m), &m.extra)
}

// MarshalJSON writes the known members over the kept ones.
func (m DevPortMaps) MarshalJSON() ([]byte, error) {
	return encodeMerged(m.extra, plainDevPortMaps(m))
}

// UnmarshalJSON keeps unknown members.
func (p *DevPort) UnmarshalJSON(b []byte) error {
	return decodeKeeping(b, (*plainDevPort)(p), &p.extra)
}

// MarshalJSON writes the known members over the kept ones; the kind not
// set is dropped.
func (p DevPort) MarshalJSON() ([]byte, error) {
	var drop []string
	if p.Single == nil {
		drop = append(drop, "Single")
	}
	if p.Range == nil {
		drop = append(drop, "Range")
	}
	return encodeMerged(p.extra, plainDevPort(p), drop...)
}

// UnmarshalJSON keeps unknown members.
func (p *SinglePort) UnmarshalJSON(b []byte) error {
	return decodeKeeping(b, (*plainSinglePort)(p), &p.extra)
}

// MarshalJSON writes the known members over the kept ones.
func (p SinglePort) MarshalJSON() ([]byte, error) { return encodeMerged(p.extra, plainSinglePort(p)) }

// UnmarshalJSON keeps unknown members.
func (p *PortRange) UnmarshalJSON(b []byte) error {
	return decodeKeeping(b, (*plainPortRange)(p), &p.extra)
}

// MarshalJSON writes the known members over the kept ones.
func (p PortRange) MarshalJSON() ([]byte, error) { return encodeMerged(p.extra, plainPortRange(p)) }

// ContentPortMaps reads the platform port mapping.
func (c *Client) ContentPortMaps(ctx context.Context) (*MgmtPortMaps, error) {
	r := request{method: http.MethodGet, path: pathContentPortMaps}
	var out struct {
		MgmtPortMaps *MgmtPortMaps `json:"MgmtPortMaps"`
	}
	if _, err := c.do(ctx, r, nil, &out); err != nil {
		return nil, err
	}
	if out.MgmtPortMaps == nil {
		return nil, missing(r, "MgmtPortMaps")
	}
	return out.MgmtPortMaps, nil
}

// SetContentPortMaps writes the platform port mapping; the gateway applies
// it after a reboot (RebootRequired()).
func (c *Client) SetContentPortMaps(ctx context.Context, m *MgmtPortMaps) (*ResponseStatus, error) {
	return c.do(ctx, request{method: http.MethodPut, path: pathContentPortMaps}, map[string]any{"MgmtPortMaps": m}, nil)
}

// DevicePortMaps reads the device-side port mapping.
func (c *Client) DevicePortMaps(ctx context.Context) (*DevPortMaps, error) {
	r := request{method: http.MethodGet, path: pathDevicePortMaps}
	var out struct {
		DevPortMaps *DevPortMaps `json:"DevPortMaps"`
	}
	if _, err := c.do(ctx, r, nil, &out); err != nil {
		return nil, err
	}
	if out.DevPortMaps == nil {
		return nil, missing(r, "DevPortMaps")
	}
	return out.DevPortMaps, nil
}

// SetDevicePortMaps writes the device-side port mapping (applied after a reboot).
func (c *Client) SetDevicePortMaps(ctx context.Context, m *DevPortMaps) (*ResponseStatus, error) {
	return c.do(ctx, request{method: http.MethodPut, path: pathDevicePortMaps}, map[string]any{"DevPortMaps": m}, nil)
}

// Time modes.
const (
	TimeModeNTP    = "NTP"
	TimeModeManual = "manual"
)

// TimeSettings is the gateway's clock configuration.
type TimeSettings struct {
	Mode string `json:"timeMode"`
	// LocalTime is the gateway's clock as it answered (RFC 3339 with the
	// zone offset). On SetTime it is sent only when non-empty, to set a
	// manual clock.
	LocalTime string `json:"localTime,omitempty"`
	// TimeZone is POSIX style with the inverted sign: "CST-8:00:00" is UTC+8.
	TimeZone string `json:"timeZone"`
	extra    extra
}

type plainTimeSettings TimeSettings

// UnmarshalJSON keeps unknown members.
func (t *TimeSettings) UnmarshalJSON(b []byte) error {
	return decodeKeeping(b, (*plainTimeSettings)(t), &t.extra)
}

// MarshalJSON writes the known members over the kept ones; an empty
// LocalTime is not sent (an echoed old clock value would set it back).
func (t TimeSettings) MarshalJSON() ([]byte, error) {
	if t.LocalTime == "" {
		return encodeMerged(t.extra, plainTimeSettings(t), "localTime")
	}
	return encodeMerged(t.extra, plainTimeSettings(t))
}

// Local parses LocalTime.
func (t *TimeSettings) Local() (time.Time, error) {
	lt, err := time.Parse(time.RFC3339, t.LocalTime)
	if err != nil {
		return time.Time{}, &quietError{msg: "isapi: localTime is not an RFC 3339 time", err: err}
	}
	return lt, nil
}

// UTCOffset is the standard-time offset east of UTC that TimeZone means.
func (t *TimeSettings) UTCOffset() (time.Duration, error) {
	return hiktz.Parse(t.TimeZone)
}

// Time reads the gateway's clock settings.
func (c *Client) Time(ctx context.Context) (*TimeSettings, error) {
	r := request{method: http.MethodGet, path: pathTime}
	var out struct {
		Time *TimeSettings `json:"Time"`
	}
	if _, err := c.do(ctx, r, nil, &out); err != nil {
		return nil, err
	}
	if out.Time == nil {
		return nil, missing(r, "Time")
	}
	return out.Time, nil
}

// SetTime writes the clock settings (clear LocalTime unless setting a
// manual clock).
func (c *Client) SetTime(ctx context.Context, t *TimeSettings) (*ResponseStatus, error) {
	return c.do(ctx, request{method: http.MethodPut, path: pathTime}, map[string]any{"Time": t}, nil)
}

// Reboot asks the gateway to restart; it stops answering for a while.
func (c *Client) Reboot(ctx context.Context) (*ResponseStatus, error) {
	return c.do(ctx, request{method: http.MethodPut, path: pathReboot}, nil, nil)
}

// SystemStatus is the gateway's health summary.
type SystemStatus struct {
	// CurrentDeviceTime is the gateway's clock (zero if unparsable).
	CurrentDeviceTime time.Time
	// UpTime is the time since the last boot.
	UpTime time.Duration
	// CPUUtilization lists each CPU's load in percent.
	CPUUtilization []int
	// MemoryUsageMB and MemoryAvailableMB sum the memory list.
	MemoryUsageMB, MemoryAvailableMB float64
}

// Status reads the gateway's health summary.
func (c *Client) Status(ctx context.Context) (*SystemStatus, error) {
	r := request{method: http.MethodGet, path: pathStatus}
	var out struct {
		DeviceStatus *struct {
			CurrentDeviceTime string   `json:"currentDeviceTime"`
			DeviceUpTime      *flexInt `json:"deviceUpTime"`
			CPUList           []struct {
				CPU struct {
					CPUUtilization flexInt `json:"cpuUtilization"`
				} `json:"CPU"`
			} `json:"CPUList"`
			MemoryList []struct {
				Memory struct {
					MemoryUsage     json.Number `json:"memoryUsage"`
					MemoryAvailable json.Number `json:"memoryAvailable"`
				} `json:"Memory"`
			} `json:"MemoryList"`
		} `json:"DeviceStatus"`
	}
	if _, err := c.do(ctx, r, nil, &out); err != nil {
		return nil, err
	}
	ds := out.DeviceStatus
	if ds == nil || ds.DeviceUpTime == nil {
		return nil, missing(r, "DeviceStatus.deviceUpTime")
	}
	st := &SystemStatus{UpTime: time.Duration(ds.DeviceUpTime.Int()) * time.Second}
	if t, err := time.Parse(time.RFC3339, ds.CurrentDeviceTime); err == nil {
		st.CurrentDeviceTime = t
	}
	for _, cpu := range ds.CPUList {
		st.CPUUtilization = append(st.CPUUtilization, cpu.CPU.CPUUtilization.Int())
	}
	for _, m := range ds.MemoryList {
		u, _ := m.Memory.MemoryUsage.Float64()
		a, _ := m.Memory.MemoryAvailable.Float64()
		st.MemoryUsageMB += u
		st.MemoryAvailableMB += a
	}
	return st, nil
}
