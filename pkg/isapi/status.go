package isapi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"reflect"
	"strconv"
	"strings"
)

// ResponseStatus status codes.
const (
	StatusOK               = 1
	StatusBusy             = 2
	StatusDeviceError      = 3
	StatusInvalidOperation = 4
	StatusInvalidFormat    = 5
	StatusInvalidContent   = 6
	StatusRebootRequired   = 7
)

// ResponseStatus is the gateway's result body for writes and errors.
type ResponseStatus struct {
	RequestURL    string
	StatusCode    int
	StatusString  string
	SubStatusCode string
	ErrorCode     int
	ErrorMsg      string
	// Lockout fields, in 401 answers of newer firmware.
	LockStatus  string
	RetryTimes  int // -1 when absent
	ResLockTime int // seconds; -1 when absent
}

// OK reports a success: statusCode 1 (ok or riskPassword) or 7 (the
// change is stored but needs a reboot).
func (rs *ResponseStatus) OK() bool {
	return rs.StatusCode == StatusOK || rs.StatusCode == StatusRebootRequired
}

// RebootRequired reports statusCode 7: the change takes effect after a reboot.
func (rs *ResponseStatus) RebootRequired() bool { return rs.StatusCode == StatusRebootRequired }

// RiskyPassword reports a password accepted but rated weak.
func (rs *ResponseStatus) RiskyPassword() bool { return rs.SubStatusCode == "riskPassword" }

// Locked reports the lock fields say this client is locked out.
func (rs *ResponseStatus) Locked() bool {
	return strings.EqualFold(rs.LockStatus, "lock") || rs.SubStatusCode == "deviceIsLocked"
}

// wireStatus decodes both JSON spellings (numbers or strings).
type wireStatus struct {
	RequestURL    string   `json:"requestURL" xml:"requestURL"`
	StatusCode    *flexInt `json:"statusCode" xml:"statusCode"`
	StatusString  string   `json:"statusString" xml:"statusString"`
	SubStatusCode string   `json:"subStatusCode" xml:"subStatusCode"`
	ErrorCode     *flexInt `json:"errorCode" xml:"errorCode"`
	ErrorMsg      string   `json:"errorMsg" xml:"errorMsg"`
	LockStatus    string   `json:"lockStatus" xml:"lockStatus"`
	RetryTimes    *flexInt `json:"retryTimes" xml:"retryTimes"`
	ResLockTime   *flexInt `json:"resLockTime" xml:"resLockTime"`
}

func (w *wireStatus) status() (*ResponseStatus, bool) {
	if w.StatusCode == nil {
		return nil, false
	}
	rs := &ResponseStatus{
		RequestURL: w.RequestURL, StatusCode: w.StatusCode.Int(), StatusString: w.StatusString,
		SubStatusCode: w.SubStatusCode, ErrorMsg: w.ErrorMsg, LockStatus: w.LockStatus,
		RetryTimes: -1, ResLockTime: -1,
	}
	if w.ErrorCode != nil {
		rs.ErrorCode = w.ErrorCode.Int()
	}
	if w.RetryTimes != nil {
		rs.RetryTimes = w.RetryTimes.Int()
	}
	if w.ResLockTime != nil {
		rs.ResLockTime = w.ResLockTime.Int()
	}
	return rs, true
}

// ParseResponseStatus finds a ResponseStatus in a body: JSON (top level
// or under "ResponseStatus") or XML (any namespace). ok is false when the
// body holds none.
func ParseResponseStatus(body []byte) (rs *ResponseStatus, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, false
	}
	switch body[0] {
	case '{':
		var top struct {
			wireStatus
			Wrapped *wireStatus `json:"ResponseStatus"`
		}
		if err := json.Unmarshal(body, &top); err != nil {
			return nil, false
		}
		if top.Wrapped != nil {
			if rs, ok := top.Wrapped.status(); ok {
				return rs, true
			}
		}
		return top.wireStatus.status()
	case '<':
		var w wireStatus
		// encoding/xml matches local names when the struct gives no
		// namespace, so any xmlns (ver10, ver20, isapi.org) is accepted.
		var root struct {
			XMLName xml.Name
			wireStatus
		}
		if err := xml.Unmarshal(body, &root); err != nil || root.XMLName.Local != "ResponseStatus" {
			return nil, false
		}
		w = root.wireStatus
		return w.status()
	}
	return nil, false
}

// flexInt is an integer the gateway may write as 3, "3" or 3.0.
type flexInt struct{ v int }

func (f flexInt) Int() int { return f.v }

// intType is what a flexInt decodes to, for its errors.
var intType = reflect.TypeFor[int]()

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" {
		return nil
	}
	kind := "number"
	if len(s) >= 2 && s[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = strings.TrimSpace(str)
		if s == "" {
			return nil
		}
		kind = "string"
	} else if s != "" && (s[0] == '{' || s[0] == '[' || s[0] == 't' || s[0] == 'f') {
		kind = "non-number"
	}
	if !f.parse(s) {
		// Type must be set: UnmarshalTypeError.Error() dereferences it (a
		// nil Type printed as "%!v(PANIC=Error method: ...)"). Value names
		// the kind only: the gateway's text stays out of error messages.
		return &json.UnmarshalTypeError{Value: kind, Type: intType}
	}
	return nil
}

func (f *flexInt) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var s string
	if err := d.DecodeElement(&s, &start); err != nil {
		return err
	}
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	if !f.parse(s) {
		return errNotInteger
	}
	return nil
}

var errNotInteger = errors.New("not an integer")

// parse reads s as an integer (or a float in range) and reports success.
func (f *flexInt) parse(s string) bool {
	if n, err := strconv.ParseInt(s, 0, 64); err == nil && n >= -1<<31 && n < 1<<32 {
		f.v = int(n)
		return true
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x != x || x > 1<<31 || x < -(1<<31) {
		return false
	}
	f.v = int(x)
	return true
}

func (f flexInt) MarshalJSON() ([]byte, error) { return []byte(strconv.Itoa(f.v)), nil }

// flexBool is a boolean written true or "true".
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch strings.Trim(strings.ToLower(strings.TrimSpace(string(b))), `"`) {
	case "true", "1", "yes", "on":
		*f = true
	case "false", "0", "no", "off", "", "null":
		*f = false
	default:
		return &json.UnmarshalTypeError{Value: "non-boolean", Type: reflect.TypeFor[bool]()}
	}
	return nil
}
