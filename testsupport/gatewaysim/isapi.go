package gatewaysim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Paths of the ISAPI endpoints the simulator serves.
const (
	PathDeviceList      = "/ISAPI/ContentMgmt/DeviceMgmt/deviceList"
	PathChannelInfo     = "/ISAPI/ContentMgmt/DeviceMgmt/channelInfo"
	PathStreamMedia     = "/ISAPI/System/streamMedia"
	PathSubscribe       = "/ISAPI/Event/notification/subscribeDeviceMgmt"
	PathDeviceInfo      = "/ISAPI/System/deviceInfo"
	PathUsers           = "/ISAPI/Security/users"
	PathContentPortMaps = "/ISAPI/System/Network/PortMaps/contentMgmt"
	PathDevicePortMaps  = "/ISAPI/System/Network/PortMaps/devMgmt"
	PathTime            = "/ISAPI/System/time"
	PathReboot          = "/ISAPI/System/reboot"
	PathStatus          = "/ISAPI/System/status"
)

const maxBody = 1 << 20

type route struct {
	handlers  map[string]http.HandlerFunc
	streaming bool
}

func (s *Server) routes() map[string]route {
	return map[string]route{
		PathDeviceList:      {handlers: map[string]http.HandlerFunc{http.MethodPost: s.handleDeviceList}},
		PathChannelInfo:     {handlers: map[string]http.HandlerFunc{http.MethodGet: s.handleChannelInfo}},
		PathStreamMedia:     {handlers: map[string]http.HandlerFunc{http.MethodPost: s.handleStreamMedia}},
		PathSubscribe:       {handlers: map[string]http.HandlerFunc{http.MethodPost: s.handleSubscribe}, streaming: true},
		PathDeviceInfo:      {handlers: map[string]http.HandlerFunc{http.MethodGet: s.getDeviceInfo, http.MethodPut: s.putDeviceInfo}},
		PathUsers:           {handlers: map[string]http.HandlerFunc{http.MethodPut: s.putUsers}},
		PathContentPortMaps: {handlers: map[string]http.HandlerFunc{http.MethodGet: s.getContentPortMaps, http.MethodPut: s.putContentPortMaps}},
		PathDevicePortMaps:  {handlers: map[string]http.HandlerFunc{http.MethodGet: s.getDevicePortMaps, http.MethodPut: s.putDevicePortMaps}},
		PathTime:            {handlers: map[string]http.HandlerFunc{http.MethodGet: s.getTime, http.MethodPut: s.putTime}},
		PathReboot:          {handlers: map[string]http.HandlerFunc{http.MethodPut: s.putReboot}},
		PathStatus:          {handlers: map[string]http.HandlerFunc{http.MethodGet: s.getStatus}},
	}
}

// ServeHTTP is the gateway's ISAPI front: counters, latency faults,
// authentication with lockout, other faults, then the endpoint.
func (s *Server) serveISAPI(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.Path
	s.st.update(func(st *state) { st.counters.Requests[key]++ })
	if !s.awaitHang(r) {
		return
	}

	if lat, _, fired := s.faults.take(r.Method, r.URL.Path, true); fired > 0 {
		s.st.update(func(st *state) { st.counters.FaultsApplied += fired })
		select {
		case <-time.After(lat):
		case <-r.Context().Done():
			return
		}
	}

	now := s.now()
	lf := s.LoginFaults()
	user, password := s.st.credentials()
	outcome, who := s.auth.credentials(r, user, password, lf.BasicOnly, now)
	v, failed := s.login(loginAttempt{
		ip: sourceIP(r), protocol: ProtocolISAPI, user: who, request: r.Method + " " + r.URL.Path,
		presented: r.Header.Get("Authorization") != "", outcome: outcome,
	}, lf, now)
	if v.outcome != authOK {
		if failed && !s.holdBackLogin(r, lf) {
			return
		}
		s.auth.writeUnauthorized(w, r, v, lf, now)
		return
	}
	s.st.update(func(st *state) {
		st.counters.Authorized[key]++
		if r.Method == http.MethodPut {
			st.counters.Puts[r.URL.Path]++
		}
	})

	rt, known := s.router[r.URL.Path]
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail(w, r, codeInvalidOperation, "notSupport", "")
	})
	if known {
		if hf, okm := rt.handlers[r.Method]; okm {
			h = hf
		} else {
			h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fail(w, r, codeInvalidOperation, "methodNotAllowed", "")
			})
		}
	}
	if _, f, fired := s.faults.take(r.Method, r.URL.Path, false); f != nil {
		s.st.update(func(st *state) { st.counters.FaultsApplied += fired })
		s.log.Debug("fault injected", "kind", f.Kind, "path", r.URL.Path)
		if applyFault(w, r, f, h, rt.streaming) {
			return
		}
		r = r.WithContext(withFault(r.Context(), f))
	}
	h.ServeHTTP(w, r)
}

// holdBackLogin applies the login faults to a failed login's answer: it
// waits out Late401 and, with Lost401, reads the request and closes the
// connection without an answer (it panics with http.ErrAbortHandler). It
// returns false when the answer is no longer wanted (client gone, closing).
func (s *Server) holdBackLogin(r *http.Request, lf LoginFaults) bool {
	if lf.Late401 > 0 {
		t := time.NewTimer(lf.Late401)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		case <-s.ctx.Done():
			return false
		}
	}
	if lf.Lost401 {
		// The whole request is read first: the client has sent it all and
		// waits for an answer that never comes.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
		panic(http.ErrAbortHandler)
	}
	return true
}

// decodeBody reads a required JSON body; on failure it answers and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		fail(w, r, codeInvalidFormat, "badJsonFormat", "unreadable body")
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		fail(w, r, codeInvalidContent, "badParameters", "empty body")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			fail(w, r, codeInvalidContent, "badParameters", "field "+typeErr.Field+" has the wrong type")
		} else {
			fail(w, r, codeInvalidFormat, "badJsonFormat", "")
		}
		return false
	}
	return true
}

func decodeOptionalBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		fail(w, r, codeInvalidFormat, "badJsonFormat", "unreadable body")
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	if err := json.Unmarshal(body, v); err != nil {
		fail(w, r, codeInvalidFormat, "badJsonFormat", "")
		return false
	}
	return true
}

// flexInt accepts 3 or "3".
type flexInt struct {
	set bool
	n   int
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*f = flexInt{set: true, n: n}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return &json.UnmarshalTypeError{Value: "string " + s, Type: nil}
	}
	*f = flexInt{set: true, n: n}
	return nil
}

type deviceJSON struct {
	DevIndex        string       `json:"devIndex"`
	DevName         string       `json:"devName"`
	DevType         string       `json:"devType"`
	DevMode         string       `json:"devMode"`
	ProtocolType    string       `json:"protocolType"`
	DevStatus       DeviceStatus `json:"devStatus"`
	VideoChannelNum int          `json:"videoChannelNum"`
}

func (s *Server) handleDeviceList(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SearchDescription *struct {
			SearchID  string   `json:"searchID"`
			Position  *flexInt `json:"position"`
			MaxResult *flexInt `json:"maxResult"`
			Filter    *struct {
				Key          string   `json:"key"`
				DevStatus    []string `json:"devStatus"`
				ProtocolType []string `json:"protocolType"`
			} `json:"Filter"`
		} `json:"SearchDescription"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	sd := req.SearchDescription
	if sd == nil || sd.MaxResult == nil || sd.MaxResult.n <= 0 || (sd.Position != nil && sd.Position.n < 0) {
		fail(w, r, codeInvalidContent, "badParameters", "SearchDescription with maxResult > 0 and position >= 0 required")
		return
	}
	position := 0
	if sd.Position != nil {
		position = sd.Position.n
	}
	maxResult := min(sd.MaxResult.n, s.cfg.MaxResults)
	devs := s.st.deviceList()
	matched := devs[:0]
	for _, d := range devs {
		if f := sd.Filter; f != nil {
			if len(f.DevStatus) > 0 && !containsFold(f.DevStatus, string(d.Status)) {
				continue
			}
			if len(f.ProtocolType) > 0 && !containsFold(f.ProtocolType, d.Protocol) {
				continue
			}
			if f.Key != "" && !strings.Contains(strings.ToLower(d.Name), strings.ToLower(f.Key)) {
				continue
			}
		}
		matched = append(matched, d)
	}
	total := len(matched)
	page := []Device{}
	if position < total {
		page = matched[position:min(total, position+maxResult)]
	}
	type entry struct {
		Device deviceJSON `json:"Device"`
	}
	list := make([]entry, 0, len(page))
	for _, d := range page {
		list = append(list, entry{Device: deviceJSON{
			DevIndex: d.DevIndex, DevName: d.Name, DevType: "IPC", DevMode: d.Model,
			ProtocolType: d.Protocol, DevStatus: d.Status, VideoChannelNum: len(d.Channels),
		}})
	}
	status := "OK"
	switch {
	case len(page) == 0:
		status = "NO MATCH"
	case position+len(page) < total:
		status = "MORE"
	}
	searchID := sd.SearchID
	if searchID == "" {
		searchID = "sim"
	}
	writeJSON(w, http.StatusOK, map[string]any{"SearchResult": map[string]any{
		"searchID":           searchID,
		"responseStatusStrg": status,
		"numOfMatches":       len(page),
		"totalMatches":       total,
		"MatchList":          list,
	}})
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// deviceParam resolves ?devIndex=; on failure it answers and returns false.
func (s *Server) deviceParam(w http.ResponseWriter, r *http.Request) (Device, bool) {
	idx := r.URL.Query().Get("devIndex")
	if idx == "" {
		fail(w, r, codeInvalidContent, "badParameters", "devIndex required")
		return Device{}, false
	}
	d, found := s.st.device(idx)
	if !found {
		fail(w, r, codeInvalidOperation, "badDevIndex", "")
		return Device{}, false
	}
	return d, true
}

func (s *Server) handleChannelInfo(w http.ResponseWriter, r *http.Request) {
	d, found := s.deviceParam(w, r)
	if !found {
		return
	}
	type channel struct {
		ID      int    `json:"id"`
		Name    string `json:"name"`
		Enabled bool   `json:"enabled"`
	}
	type entry struct {
		Channel channel `json:"Channel"`
	}
	list := make([]entry, 0, len(d.Channels))
	for _, c := range d.Channels {
		list = append(list, entry{Channel: channel{ID: c.ID, Name: c.Name, Enabled: true}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"ChannelInfo": map[string]any{
		"devIndex": d.DevIndex, "VideoChannel": list,
	}})
}

// StreamPath is the RTSP URL path of a camera channel:
// /Streaming/Channels/<devIndex>/<channel>0<1 main | 2 sub>.
func StreamPath(devIndex string, channel int, sub bool) string {
	stream := 1
	if sub {
		stream = 2
	}
	return fmt.Sprintf("/Streaming/Channels/%s/%d0%d", devIndex, channel, stream)
}

// parseStreamPath is StreamPath's inverse.
func parseStreamPath(p string) (devIndex string, channel int, sub bool, okp bool) {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	rest, found := strings.CutPrefix(strings.TrimSuffix(p, "/"), "/Streaming/Channels/")
	if !found {
		return "", 0, false, false
	}
	devIndex, id, found := strings.Cut(rest, "/")
	if !found || devIndex == "" || len(id) < 3 || strings.Contains(id, "/") {
		return "", 0, false, false
	}
	n, err := strconv.Atoi(id)
	if err != nil || n <= 0 {
		return "", 0, false, false
	}
	stream := n % 100
	channel = n / 100
	if channel <= 0 || (stream != 1 && stream != 2) {
		return "", 0, false, false
	}
	return devIndex, channel, stream == 2, true
}

func (s *Server) handleStreamMedia(w http.ResponseWriter, r *http.Request) {
	d, found := s.deviceParam(w, r)
	if !found {
		return
	}
	var req struct {
		StreamInfo *struct {
			ID         flexInt `json:"id"`
			StreamType string  `json:"streamType"`
			Method     string  `json:"method"`
		} `json:"StreamInfo"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	si := req.StreamInfo
	if si == nil || !si.ID.set {
		fail(w, r, codeInvalidContent, "badParameters", "StreamInfo.id required")
		return
	}
	if si.StreamType != "" && si.StreamType != "main" && si.StreamType != "sub" {
		fail(w, r, codeInvalidContent, "badParameters", "streamType must be main or sub")
		return
	}
	if !d.hasChannel(si.ID.n) {
		fail(w, r, codeInvalidContent, "badParameters", "no such channel")
		return
	}
	if d.Status != StatusOnline {
		fail(w, r, codeInvalidOperation, "devOffline", "")
		return
	}
	url := "rtsp://" + s.rtspHostPort(r) + StreamPath(d.DevIndex, si.ID.n, si.StreamType == "sub")
	writeJSON(w, http.StatusOK, map[string]any{"MediaAccessInfo": map[string]any{"URL": url}})
}

// rtspHostPort is the RTSP address as a client of this request can reach it.
func (s *Server) rtspHostPort(r *http.Request) string {
	host, port, err := net.SplitHostPort(s.rtspAddr)
	if err != nil {
		host, port = "", "554"
	}
	if s.cfg.PublicHost != "" {
		host = s.cfg.PublicHost
	} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = r.Host
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
	}
	return net.JoinHostPort(host, port)
}

type deviceInfoJSON struct {
	DeviceName      string `json:"deviceName"`
	DeviceID        string `json:"deviceID"`
	Model           string `json:"model"`
	SerialNumber    string `json:"serialNumber"`
	MacAddress      string `json:"macAddress"`
	FirmwareVersion string `json:"firmwareVersion"`
	FirmwareDate    string `json:"firmwareReleasedDate"`
	DeviceType      string `json:"deviceType"`
}

func (s *Server) getDeviceInfo(w http.ResponseWriter, r *http.Request) {
	set := s.st.snapshotSettings()
	writeJSON(w, http.StatusOK, map[string]any{"DeviceInfo": deviceInfoJSON{
		DeviceName: set.DeviceName, DeviceID: s.gatewayID, Model: s.cfg.Realm,
		SerialNumber: s.cfg.Realm + "20240101CCRR" + s.gatewayID[:8], MacAddress: s.mac,
		FirmwareVersion: "V4.1.0", FirmwareDate: "build 240101", DeviceType: "MediaGateway",
	}})
}

func (s *Server) putDeviceInfo(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DeviceInfo *struct {
			DeviceName *string `json:"deviceName"`
		} `json:"DeviceInfo"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if req.DeviceInfo == nil || req.DeviceInfo.DeviceName == nil {
		fail(w, r, codeInvalidContent, "badParameters", "DeviceInfo.deviceName required")
		return
	}
	name := *req.DeviceInfo.DeviceName
	if n := len([]rune(name)); n == 0 || n > 64 || strings.TrimSpace(name) != name {
		fail(w, r, codeInvalidContent, "badParameters", "deviceName must be 1..64 characters without surrounding spaces")
		return
	}
	s.st.update(func(st *state) { st.settings.DeviceName = name })
	ok(w, r, "ok")
}

func (s *Server) putUsers(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserList []struct {
			User *struct {
				ID            flexInt `json:"id"`
				UserName      string  `json:"userName"`
				Password      *string `json:"password"`
				LoginPassword *string `json:"loginPassword"`
			} `json:"User"`
		} `json:"UserList"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	if len(req.UserList) != 1 || req.UserList[0].User == nil {
		fail(w, r, codeInvalidContent, "badParameters", "UserList must hold one User")
		return
	}
	u := req.UserList[0].User
	admin, current := s.st.credentials()
	if u.UserName != admin || (u.ID.set && u.ID.n != 1) {
		fail(w, r, codeInvalidContent, "badParameters", "unknown user")
		return
	}
	if u.LoginPassword == nil || *u.LoginPassword != current {
		fail(w, r, codeInvalidOperation, "loginPasswordError", "")
		return
	}
	if u.Password == nil {
		fail(w, r, codeInvalidContent, "badParameters", "password required")
		return
	}
	pw := *u.Password
	switch n := len(pw); {
	case n > 16:
		fail(w, r, codeInvalidContent, "badParameters", "password longer than 16 characters")
		return
	case n < 8:
		fail(w, r, codeInvalidContent, "badParameters", "password shorter than 8 characters")
		return
	case pw == current:
		fail(w, r, codeInvalidOperation, "cannotSameAsOldPassword", "")
		return
	}
	s.st.update(func(st *state) { st.password = pw })
	s.log.Info("admin password changed")
	if passwordRisky(pw, admin) {
		ok(w, r, "riskPassword")
		return
	}
	ok(w, r, "ok")
}

// passwordRisky mimics Hikvision's "weak" rating: fewer than two character
// classes, or the user name inside the password.
func passwordRisky(pw, user string) bool {
	var lower, upper, digit, other bool
	for _, c := range pw {
		switch {
		case unicode.IsLower(c):
			lower = true
		case unicode.IsUpper(c):
			upper = true
		case unicode.IsDigit(c):
			digit = true
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, other} {
		if b {
			classes++
		}
	}
	return classes < 2 || (user != "" && strings.Contains(strings.ToLower(pw), strings.ToLower(user)))
}

func (s *Server) getContentPortMaps(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"MgmtPortMaps": s.st.snapshotSettings().ContentPortMaps})
}

func validPort(p int, allowZero bool) bool {
	return (p >= 1 || (allowZero && p == 0)) && p <= 65535
}

func (s *Server) putContentPortMaps(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MgmtPortMaps *MgmtPortMaps `json:"MgmtPortMaps"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	m := req.MgmtPortMaps
	if m == nil {
		fail(w, r, codeInvalidContent, "badParameters", "MgmtPortMaps required")
		return
	}
	for _, p := range m.PortList {
		if !validPort(p.InternalPort, false) || !validPort(p.ExternalPort, true) {
			fail(w, r, codeInvalidContent, "badPort", "")
			return
		}
	}
	for _, a := range m.AddrList {
		if ip := net.ParseIP(a.ExternalIPAddress); ip == nil || ip.To4() == nil {
			fail(w, r, codeInvalidContent, "badIPv4Address", "")
			return
		}
	}
	s.st.update(func(st *state) {
		st.settings.ContentPortMaps = m.clone()
		st.settings.RebootRequired = true
	})
	writeStatus(w, r, http.StatusOK, newStatus(r, codeRebootRequired, "rebootRequired", ""))
}

func (s *Server) getDevicePortMaps(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"DevPortMaps": s.st.snapshotSettings().DevicePortMaps})
}

func (s *Server) putDevicePortMaps(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DevPortMaps *DevPortMaps `json:"DevPortMaps"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	m := req.DevPortMaps
	if m == nil {
		fail(w, r, codeInvalidContent, "badParameters", "DevPortMaps required")
		return
	}
	for _, p := range m.PortList {
		switch {
		case (p.Single == nil) == (p.Range == nil):
			fail(w, r, codeInvalidContent, "badParameters", "each PortList entry needs exactly one of Single or Range")
			return
		case p.Single != nil && (!validPort(p.Single.InternalPort, false) || !validPort(p.Single.ExternalPort, true)):
			fail(w, r, codeInvalidContent, "badPort", "")
			return
		case p.Range != nil:
			g := p.Range
			if !validPort(g.MinInternalPort, false) || !validPort(g.MaxInternalPort, false) || g.MinInternalPort > g.MaxInternalPort {
				fail(w, r, codeInvalidContent, "badPort", "")
				return
			}
			// An unmapped range (external 0-0) is allowed; a mapped one must be as long as the internal one.
			if !(g.MinExternalPort == 0 && g.MaxExternalPort == 0) &&
				(!validPort(g.MinExternalPort, false) || !validPort(g.MaxExternalPort, false) ||
					g.MaxExternalPort-g.MinExternalPort != g.MaxInternalPort-g.MinInternalPort) {
				fail(w, r, codeInvalidContent, "badPort", "")
				return
			}
		}
	}
	s.st.update(func(st *state) {
		st.settings.DevicePortMaps = m.clone()
		st.settings.RebootRequired = true
	})
	writeStatus(w, r, http.StatusOK, newStatus(r, codeRebootRequired, "rebootRequired", ""))
}

const isoLocal = "2006-01-02T15:04:05-07:00"

// deviceTime renders t on the gateway's clock (offset by a manual setting)
// in its configured zone.
func (s *Server) deviceTime(t time.Time) string {
	set := s.st.snapshotSettings()
	off, err := parseTimeZone(set.TimeZone)
	if err != nil {
		off = 0
	}
	return t.Add(set.ClockOffset).In(time.FixedZone("", int(off/time.Second))).Format(isoLocal)
}

func (s *Server) getTime(w http.ResponseWriter, r *http.Request) {
	set := s.st.snapshotSettings()
	writeJSON(w, http.StatusOK, map[string]any{"Time": map[string]any{
		"timeMode":  set.TimeMode,
		"localTime": s.deviceTime(s.now()),
		"timeZone":  set.TimeZone,
	}})
}

func (s *Server) putTime(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Time *struct {
			TimeMode  *string `json:"timeMode"`
			LocalTime *string `json:"localTime"`
			TimeZone  *string `json:"timeZone"`
		} `json:"Time"`
	}
	if !decodeBody(w, r, &req) {
		return
	}
	t := req.Time
	if t == nil {
		fail(w, r, codeInvalidContent, "badParameters", "Time required")
		return
	}
	set := s.st.snapshotSettings()
	mode, zone, offset := set.TimeMode, set.TimeZone, set.ClockOffset
	if t.TimeMode != nil {
		if *t.TimeMode != "NTP" && *t.TimeMode != "manual" {
			fail(w, r, codeInvalidContent, "badParameters", "timeMode must be NTP or manual")
			return
		}
		mode = *t.TimeMode
	}
	if t.TimeZone != nil {
		if _, err := parseTimeZone(*t.TimeZone); err != nil {
			fail(w, r, codeInvalidContent, "badParameters", "bad timeZone")
			return
		}
		zone = *t.TimeZone
	}
	switch {
	case mode == "NTP":
		offset = 0 // the simulated NTP sync is perfect
	case t.LocalTime != nil:
		lt, err := time.Parse(time.RFC3339, *t.LocalTime)
		if err != nil {
			fail(w, r, codeInvalidContent, "badParameters", "bad localTime")
			return
		}
		offset = lt.Sub(s.now())
	}
	s.st.update(func(st *state) {
		st.settings.TimeMode, st.settings.TimeZone, st.settings.ClockOffset = mode, zone, offset
	})
	ok(w, r, "ok")
}

func (s *Server) putReboot(w http.ResponseWriter, r *http.Request) {
	ok(w, r, "ok")
	_ = http.NewResponseController(w).Flush()
	// Go down only once the answer is on its way, like the real box.
	s.startReboot(0, 100*time.Millisecond)
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	set := s.st.snapshotSettings()
	now := s.now()
	type cpu struct {
		CPUDescription string `json:"cpuDescription"`
		CPUUtilization int    `json:"cpuUtilization"`
	}
	type mem struct {
		MemoryDescription string  `json:"memoryDescription"`
		MemoryUsage       float64 `json:"memoryUsage"`
		MemoryAvailable   float64 `json:"memoryAvailable"`
	}
	devices := len(s.st.deviceList())
	writeJSON(w, http.StatusOK, map[string]any{"DeviceStatus": map[string]any{
		"currentDeviceTime": s.deviceTime(now),
		"deviceUpTime":      int(now.Sub(set.BootTime) / time.Second),
		"CPUList":           []map[string]cpu{{"CPU": {CPUDescription: "ARM", CPUUtilization: min(95, 5+devices/4)}}},
		"MemoryList":        []map[string]mem{{"Memory": {MemoryDescription: "DDR", MemoryUsage: 512 + float64(devices), MemoryAvailable: 3584 - float64(devices)}}},
	}})
}
