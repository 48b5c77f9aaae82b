package gatewaysim

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
)

// Hikvision ResponseStatus status codes.
const (
	codeOK               = 1
	codeBusy             = 2
	codeDeviceError      = 3
	codeInvalidOperation = 4
	codeInvalidFormat    = 5
	codeInvalidContent   = 6
	codeRebootRequired   = 7
)

var statusStrings = map[int]string{
	codeOK:               "OK",
	codeBusy:             "Device Busy",
	codeDeviceError:      "Device Error",
	codeInvalidOperation: "Invalid Operation",
	codeInvalidFormat:    "Invalid JSON Format",
	codeInvalidContent:   "Invalid Content",
	codeRebootRequired:   "Reboot Required",
}

// errorCodes follow the statusCode<<28 | n pattern of Hikvision errorCode
// values; the individual numbers are unconfirmed.
var errorCodes = map[string]int{
	"ok":                      1,
	"riskPassword":            1,
	"deviceBusy":              0x20000001,
	"serviceUnavailable":      0x20000002,
	"deviceError":             0x30000001,
	"internalError":           0x30000002,
	"notSupport":              0x40000001,
	"lowPrivilege":            0x40000002,
	"badAuthorization":        0x40000003,
	"methodNotAllowed":        0x40000004,
	"invalidOperation":        0x40000006,
	"loginPasswordError":      0x4000000A,
	"cannotSameAsOldPassword": 0x4000000B,
	"deviceIsLocked":          0x4000000C,
	"devOffline":              0x40008001,
	"badDevIndex":             0x40008002,
	"badJsonFormat":           0x50000001,
	"badURLFormat":            0x50000002,
	"badParameters":           0x60000001,
	"badPort":                 0x60000002,
	"badIPv4Address":          0x60000003,
	"rebootRequired":          0x70000001,
}

// responseStatus is the gateway's result/error body. The lock fields appear
// only in 401 answers.
type responseStatus struct {
	XMLName       xml.Name `json:"-" xml:"ResponseStatus"`
	XMLNS         string   `json:"-" xml:"xmlns,attr,omitempty"`
	Version       string   `json:"-" xml:"version,attr,omitempty"`
	RequestURL    string   `json:"requestURL" xml:"requestURL"`
	StatusCode    int      `json:"statusCode" xml:"statusCode"`
	StatusString  string   `json:"statusString" xml:"statusString"`
	SubStatusCode string   `json:"subStatusCode" xml:"subStatusCode"`
	ErrorCode     int      `json:"errorCode,omitempty" xml:"errorCode,omitempty"`
	ErrorMsg      string   `json:"errorMsg,omitempty" xml:"errorMsg,omitempty"`
	LockStatus    string   `json:"lockStatus,omitempty" xml:"lockStatus,omitempty"`
	RetryTimes    *int     `json:"retryTimes,omitempty" xml:"retryTimes,omitempty"`
	ResLockTime   *int     `json:"resLockTime,omitempty" xml:"resLockTime,omitempty"`
}

func newStatus(r *http.Request, code int, sub, msg string) responseStatus {
	rs := responseStatus{StatusCode: code, StatusString: statusStrings[code], SubStatusCode: sub, ErrorMsg: msg}
	if r != nil {
		rs.RequestURL = r.URL.Path
	}
	if code != codeOK {
		rs.ErrorCode = errorCodes[sub]
	}
	return rs
}

// httpStatusFor is the HTTP status the simulator pairs with a statusCode.
func httpStatusFor(code int) int {
	switch code {
	case codeOK, codeRebootRequired:
		return http.StatusOK
	case codeBusy:
		return http.StatusServiceUnavailable
	case codeDeviceError:
		return http.StatusInternalServerError
	case codeInvalidOperation:
		return http.StatusForbidden
	default:
		return http.StatusBadRequest
	}
}

// wantsJSON: with ?format=json ResponseStatus bodies are JSON, otherwise XML
// as on the real device.
func wantsJSON(r *http.Request) bool {
	return r.URL.Query().Get("format") == "json"
}

func writeStatus(w http.ResponseWriter, r *http.Request, httpStatus int, rs responseStatus) {
	if wantsJSON(r) {
		writeJSON(w, httpStatus, rs)
		return
	}
	writeStatusXML(w, httpStatus, rs)
}

func writeStatusXML(w http.ResponseWriter, httpStatus int, rs responseStatus) {
	rs.XMLNS = "http://www.hikvision.com/ver20/XMLSchema"
	rs.Version = "2.0"
	body, _ := xml.MarshalIndent(rs, "", " ")
	w.Header().Set("Content-Type", "application/xml; charset=\"UTF-8\"")
	w.WriteHeader(httpStatus)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}

// fail answers with an error ResponseStatus and the matching HTTP status.
func fail(w http.ResponseWriter, r *http.Request, code int, sub, msg string) {
	writeStatus(w, r, httpStatusFor(code), newStatus(r, code, sub, msg))
}

func ok(w http.ResponseWriter, r *http.Request, sub string) {
	writeStatus(w, r, http.StatusOK, newStatus(r, codeOK, sub, ""))
}

func writeJSON(w http.ResponseWriter, httpStatus int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=\"UTF-8\"")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(body)
}
