package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestTimezoneFromHours(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"8", "CST-8:00:00"},
		{"+8", "CST-8:00:00"},
		{" 8 ", "CST-8:00:00"},
		{"0", "CST+0:00:00"},
		{"-0", "CST+0:00:00"},
		{"14", "CST-14:00:00"},
		{"-5", "CST+5:00:00"},
		{"-12", "CST+12:00:00"},
		{"5.5", "CST-5:30:00"},
		{"+5:30", "CST-5:30:00"},
		{"-3.5", "CST+3:30:00"},
		{"-3:30", "CST+3:30:00"},
		{"-0.5", "CST+0:30:00"},
		{"-0:30", "CST+0:30:00"},
		{"5.75", "CST-5:45:00"},
		{"5:45", "CST-5:45:00"},
		{"12.75", "CST-12:45:00"},
		{"9.50", "CST-9:30:00"},
	} {
		got, err := TimezoneFromHours(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("TimezoneFromHours(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestTimezoneFromHoursRejectsBadInput(t *testing.T) {
	for _, in := range []string{"", " ", "abc", "8h", "UTC+8", "15", "-13", "14.25", "5.3", "5.1", "1e1",
		"NaN", "Inf", "0x8", "5:3", "5:60", "5:", ":30", "8:00:00", "1_0", "99999999999999999999"} {
		got, err := TimezoneFromHours(in)
		if err == nil || !errors.Is(err, ErrBadTimezone) {
			t.Errorf("TimezoneFromHours(%q) = %q, %v; want ErrBadTimezone", in, got, err)
		}
	}
}

func TestSameZone(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"CST-8:00:00", "CST-8:00:00", true},
		{"CST+0:00:00", "CST-0:00:00", true},
		{"CST-8:00:00", "CST-8", true},
		{"CST-8:00:00", "CST+8:00:00", false},
		{"CST-5:30:00", "CST-5:00:00", false},
		{"CST-8:00:00", "CST-8:00:00DST01:00:00,M3.2.0/02:00:00,M11.1.0/02:00:00", false},
		{"garbage", "CST-8:00:00", false},
	} {
		if got := SameZone(tc.a, tc.b); got != tc.same {
			t.Errorf("SameZone(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"Mgw-Local-2026", true},
		{"abcd1234", true},
		{"Abcdefgh", true},
		{"Abcdefgh12345678", true},   // 16
		{"Abcdefgh123456789", false}, // 17
		{"Ab1-xyz", false},           // 7
		{"abcdefghij", false},        // one class
		{"1234567890", false},
		{"Admin-12345", false}, // contains the user
		{"Pass word1", false},  // space
		{"Pässword12", false},  // not ASCII
		{"Pass\tword1", false},
		{"", false},
	} {
		err := CheckPassword(NewSecret(tc.pw), "admin")
		if (err == nil) != tc.ok {
			t.Errorf("CheckPassword(%q) = %v, want ok=%v", tc.pw, err, tc.ok)
		}
		if err != nil {
			if !errors.Is(err, ErrWeakPassword) {
				t.Errorf("CheckPassword(%q): %v is not ErrWeakPassword", tc.pw, err)
			}
			if tc.pw != "" && strings.Contains(err.Error(), tc.pw) {
				t.Errorf("CheckPassword error shows the password: %v", err)
			}
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := NewSecret("Very-Secret-42")
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "pw", s, "struct", struct{ P Secret }{s})
	b, _ := json.Marshal(struct{ P Secret }{s})
	d := Desired{Password: s, Bootstrap: s}
	for _, out := range []string{
		fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", d, d, d), logs.String(), string(b),
		fmt.Errorf("wrapped: %v", s).Error(),
	} {
		if strings.Contains(out, "Very-Secret-42") || strings.Contains(out, fmt.Sprintf("%x", "Very-Secret-42")) {
			t.Fatalf("secret printed: %s", out)
		}
	}
	if s.Reveal() != "Very-Secret-42" {
		t.Fatal("Reveal lost the value")
	}
	if got := Redact("login with Very-Secret-42 failed", s); got != "login with [redacted] failed" {
		t.Fatalf("Redact: %q", got)
	}
	// A password with < and & as a gateway's JSON echo carries it.
	amp := NewSecret("Pa<ss&word1")
	if got := Redact(`gateway said {"password":"Pa\u003css\u0026word1"}`, amp); got != `gateway said {"password":"[redacted]"}` {
		t.Fatalf("Redact of a JSON-escaped password: %q", got)
	}
}

func params(kv map[string]string, secure ...string) Parameters {
	p := Parameters{}
	for k, v := range kv {
		p[k] = Param{Value: NewSecret(v)}
	}
	for _, k := range secure {
		if v, ok := p[k]; ok {
			v.Secure = true
			p[k] = v
		}
	}
	return p
}

func seedParams() Parameters {
	return params(map[string]string{
		ParamGatewayName: "gw-east-1", ParamPassword: "Mgw-Local-2026", ParamBootstrapPassword: "Factory-Pass1",
		ParamTimezone: "5.5", ParamExternalIP: "198.51.100.7",
	}, ParamPassword, ParamBootstrapPassword)
}

func TestDesiredFrom(t *testing.T) {
	d, err := DesiredFrom(seedParams(), "", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "gw-east-1" || d.Password.Reveal() != "Mgw-Local-2026" || d.Bootstrap.Reveal() != "Factory-Pass1" ||
		d.TimeMode != TimeModeNTP || d.TimeZone != "CST-5:30:00" || d.ExternalIP != "198.51.100.7" {
		t.Fatalf("desired = %+v", d)
	}
	d, err = DesiredFrom(seedParams(), "203.0.113.9", "admin")
	if err != nil || d.ExternalIP != "203.0.113.9" {
		t.Fatalf("the event's Elastic IP must win: %q, %v", d.ExternalIP, err)
	}

	p := seedParams()
	p[ParamTimeMode] = Param{Value: NewSecret("manual")}
	p[ParamContentPorts] = Param{Value: NewSecret("80:8080, 554:10554")}
	if d, err = DesiredFrom(p, "", "admin"); err != nil || d.TimeMode != TimeModeManual || d.ContentPorts[80] != 8080 || d.ContentPorts[554] != 10554 {
		t.Fatalf("optional parameters: %+v, %v", d, err)
	}
}

func TestDesiredFromNamesEveryBadParameter(t *testing.T) {
	p := params(map[string]string{
		ParamGatewayName: "gw", ParamPassword: "short", ParamTimezone: "25", ParamExternalIP: "not-an-ip",
		ParamTimeMode: "gps", ParamDevicePorts: "7660:0",
	}, ParamPassword)
	_, err := DesiredFrom(p, "", "admin")
	if err == nil {
		t.Fatal("bad parameters accepted")
	}
	for _, want := range []string{ParamPassword, ParamTimezone, "not-an-ip", ParamTimeMode, ParamDevicePorts} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "short") {
		t.Errorf("error shows the password: %v", err)
	}

	// A password stored as a plain String is refused, as the seed's prototype did it.
	p = seedParams()
	p[ParamPassword] = Param{Value: NewSecret("Mgw-Local-2026")}
	if _, err := DesiredFrom(p, "", "admin"); err == nil || !strings.Contains(err.Error(), "SecureString") {
		t.Fatalf("plain String password: %v", err)
	}
	// Missing required parameters.
	if _, err := DesiredFrom(Parameters{}, "", "admin"); err == nil || !errors.Is(err, ErrBadParameter) ||
		!strings.Contains(err.Error(), ParamGatewayName) || !strings.Contains(err.Error(), ParamTimezone) {
		t.Fatalf("no parameters: %v", err)
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.5:80": "http://10.0.0.5:80", "gw.local": "http://gw.local", "https://10.0.0.5:8443/": "https://10.0.0.5:8443",
		"http://127.0.0.1:1234": "http://127.0.0.1:1234",
	} {
		if got, err := BaseURL(in); err != nil || got != want {
			t.Errorf("BaseURL(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "ftp://x", "http://admin:pw@10.0.0.5", "10.0.0.5:99999", "http://10.0.0.5/ISAPI", "http://"} {
		if got, err := BaseURL(in); err == nil {
			t.Errorf("BaseURL(%q) = %q, want an error", in, got)
		}
	}
}

func TestParsePortOverrides(t *testing.T) {
	o, err := ParsePortOverrides(" 80:8080,7662:17662 ,")
	if err != nil || len(o) != 2 || o[80] != 8080 || o[7662] != 17662 {
		t.Fatalf("%v, %v", o, err)
	}
	for _, in := range []string{"80", "80:", "a:b", "0:80", "80:70000", "80:1,80:2"} {
		if _, err := ParsePortOverrides(in); err == nil {
			t.Errorf("ParsePortOverrides(%q) accepted", in)
		}
	}
}

// factory is what a fresh gateway reports (like the simulator).
func factory() Current {
	return Current{
		Name: "Media Gateway",
		Time: TimeSettings{Mode: TimeModeManual, Zone: "CST-8:00:00"},
		Content: ContentPortMaps{
			Ports: []Port{
				{Protocol: "HTTP", InternalMin: 80, InternalMax: 80},
				{Protocol: "RTSP", InternalMin: 554, InternalMax: 554},
			},
			ExternalIPs: []string{"0.0.0.0"},
		},
		Device: DevicePortMaps{Ports: []Port{
			{Protocol: "ISUP", InternalMin: 7660, InternalMax: 7660},
			{Protocol: "ISUPStream", Range: true, InternalMin: 7662, InternalMax: 7700},
		}},
	}
}

func desired() Desired {
	d, err := DesiredFrom(seedParams(), "", "admin")
	if err != nil {
		panic(err)
	}
	return d
}

func TestPlanFactoryGatewayChangesEverythingOnce(t *testing.T) {
	p := NewPlan(factory(), desired(), time.Now())
	var got []string
	for _, s := range p.Steps {
		got = append(got, fmt.Sprintf("%s/%v", s.Setting, s.NeedsReboot))
	}
	want := "name/false time/false portmap.contentMgmt/true portmap.devMgmt/true"
	if strings.Join(got, " ") != want {
		t.Fatalf("steps = %v, want %s", got, want)
	}
	if !p.NeedsReboot() {
		t.Fatal("port maps changed without a reboot")
	}
	c := p.Target.Content
	if !c.Enabled || c.ExternalIPs[0] != "198.51.100.7" || len(c.ExternalIPs) != 1 || c.Ports[0].ExternalMin != 80 || c.Ports[1].ExternalMin != 554 {
		t.Fatalf("content target = %+v", c)
	}
	r := p.Target.Device.Ports[1]
	if !p.Target.Device.Enabled || r.ExternalMin != 7662 || r.ExternalMax != 7700 || r.Protocol != "ISUPStream" {
		t.Fatalf("device target = %+v", p.Target.Device)
	}

	// The gateway as the plan leaves it needs nothing more.
	after := Current{Name: p.Target.Name, Time: TimeSettings{Mode: TimeModeNTP, Zone: "CST-5:30:00"}, Content: p.Target.Content, Device: p.Target.Device}
	if again := NewPlan(after, desired(), time.Now()); !again.Empty() {
		t.Fatalf("second plan not empty: %+v", again.Steps)
	}
}

func TestPlanOnlyWhatDiffers(t *testing.T) {
	d := desired()
	cur := factory()
	cur.Name = d.Name
	cur.Time = TimeSettings{Mode: TimeModeNTP, Zone: "CST-5:30:00"}
	cur.Content = d.ContentTarget(cur.Content)
	cur.Device = d.DeviceTarget(cur.Device)
	cur.Device.Ports[0].ExternalMin, cur.Device.Ports[0].ExternalMax = 1, 1
	p := NewPlan(cur, d, time.Now())
	if len(p.Steps) != 1 || p.Steps[0].Setting != SettingDevicePortMaps {
		t.Fatalf("steps = %+v", p.Steps)
	}
	if m := p.Target.Mismatch(SettingDevicePortMaps, cur); !strings.Contains(m, "7660→1") {
		t.Fatalf("mismatch = %q", m)
	}

	// A time zone change alone needs no reboot.
	cur.Device = d.DeviceTarget(cur.Device)
	cur.Time.Zone = "CST-8:00:00"
	if p = NewPlan(cur, d, time.Now()); len(p.Steps) != 1 || p.Steps[0].Setting != SettingTime || p.NeedsReboot() {
		t.Fatalf("steps = %+v", p.Steps)
	}
}

func TestPlanPortOverrides(t *testing.T) {
	d := desired()
	d.ContentPorts = PortOverrides{80: 8080}
	d.DevicePorts = PortOverrides{7662: 17662}
	p := NewPlan(factory(), d, time.Now())
	if got := p.Target.Content.Ports[0]; got.ExternalMin != 8080 || got.ExternalMax != 8080 {
		t.Fatalf("content port 80 → %+v", got)
	}
	if got := p.Target.Content.Ports[1]; got.ExternalMin != 554 {
		t.Fatalf("content port 554 → %+v", got)
	}
	if got := p.Target.Device.Ports[1]; got.ExternalMin != 17662 || got.ExternalMax != 17700 {
		t.Fatalf("device range → %+v", got)
	}
}

func TestPlanManualClock(t *testing.T) {
	d := desired()
	d.TimeMode = TimeModeManual
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cur := Current{Time: TimeSettings{Mode: TimeModeManual, Zone: d.TimeZone, Clock: now.Add(10 * time.Second)}}
	p := NewPlan(cur, d, now)
	if !p.Target.Matches(SettingTime, cur) {
		t.Fatalf("10 s drift should be tolerated: %s", p.Target.Mismatch(SettingTime, cur))
	}
	if _, off := p.Target.Time.Clock.Zone(); off != 5*3600+1800 {
		t.Fatalf("manual clock zone offset %d, want +5:30", off)
	}
	cur.Time.Clock = now.Add(-2 * time.Minute)
	if p = NewPlan(cur, d, now); p.Target.Matches(SettingTime, cur) {
		t.Fatal("2 min drift not corrected")
	}
}

func TestFailClassification(t *testing.T) {
	transient := &OpError{Op: "GET /x", Kind: KindTransient, Err: errors.New("timeout")}
	if f := Fail(StepConnect, transient); !f.Retryable || f.Step != StepConnect || !strings.Contains(f.Reason, "timeout") {
		t.Fatalf("transient: %+v", f)
	}
	locked := &OpError{Kind: KindLocked, LockRemaining: 29 * time.Minute, Err: errors.New("locked")}
	if f := Fail(StepLogin, fmt.Errorf("wrapped: %w", locked)); f.Retryable || f.LockRemaining != 29*time.Minute {
		t.Fatalf("locked: %+v", f)
	}
	for _, err := range []error{&OpError{Kind: KindRejected, Err: errors.New("401")}, &OpError{Kind: KindPermanent, Err: errors.New("badParameters")}, errors.New("unclassified")} {
		if f := Fail("time", err); f.Retryable {
			t.Fatalf("%v classified retryable", err)
		}
	}
}

func TestDesiredKeepsWhereThePasswordsCameFrom(t *testing.T) {
	p := Parameters{
		ParamGatewayName:       {Value: NewSecret("gw")},
		ParamPassword:          {Value: NewSecret("Mgw-Local-2026"), Secure: true, Name: "/r/gateways/gw/Password", Version: 3},
		ParamBootstrapPassword: {Value: NewSecret("Factory-Pass1"), Secure: true, Name: "/r/factory", Version: 1},
		ParamTimezone:          {Value: NewSecret("0")},
	}
	d, err := DesiredFrom(p, "198.51.100.1", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if d.PasswordParam.Name != "/r/gateways/gw/Password" || d.PasswordParam.Version != 3 ||
		d.BootstrapParam.Name != "/r/factory" || d.BootstrapParam.Version != 1 {
		t.Fatalf("%+v %+v", d.PasswordParam, d.BootstrapParam)
	}
}

func TestPendingConfigurationRoundTrip(t *testing.T) {
	since := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	p := PendingConfiguration{GatewayID: "gw-1", Address: "10.0.0.1:80", ElasticIP: "198.51.100.1",
		BootstrapParameter: "/mediagw/b", Since: since, NotBefore: since.Add(30 * time.Minute)}
	v, err := EncodePendingConfiguration(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePendingConfiguration(v)
	if err != nil || got != p {
		t.Fatalf("%+v, %v (from %s)", got, err, v)
	}
	if v, _ := EncodePendingConfiguration(PendingConfiguration{GatewayID: "gw-1", Address: "a", Since: since}); strings.Contains(v, "not_before") || strings.Contains(v, "retry") {
		t.Fatalf("zero fields written: %s", v)
	}
	for _, bad := range []string{"", "{", `{"address":"a"}`, `{"gateway_id":"gw"}`} {
		if _, err := DecodePendingConfiguration(bad); !errors.Is(err, ErrBadParameter) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
