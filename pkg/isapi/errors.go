package isapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Sentinel errors, matched with errors.Is against anything a Client returns.
var (
	// ErrBadCredentials: the gateway rejected the user/password (or the
	// client refuses to retry a password the gateway already rejected).
	ErrBadCredentials = errors.New("isapi: bad credentials")
	// ErrLocked: the gateway locked this source IP out after failed logins.
	ErrLocked = errors.New("isapi: locked out")
	// ErrDeviceOffline: the addressed camera is not online.
	ErrDeviceOffline = errors.New("isapi: device offline")
	// ErrBadDevIndex: no camera with that devIndex.
	ErrBadDevIndex = errors.New("isapi: unknown devIndex")
	// ErrNotSupported: the gateway does not support this path or method.
	ErrNotSupported = errors.New("isapi: not supported")
	// ErrBusy: the gateway is busy (statusCode 2, HTTP 503); retry later.
	ErrBusy = errors.New("isapi: device busy")
	// ErrDeviceError: internal gateway error (statusCode 3, HTTP 5xx).
	ErrDeviceError = errors.New("isapi: device error")
	// ErrInvalidOperation: the request was refused (statusCode 4, other sub-statuses).
	ErrInvalidOperation = errors.New("isapi: invalid operation")
	// ErrInvalidFormat: the gateway could not parse the request (statusCode 5).
	ErrInvalidFormat = errors.New("isapi: invalid request format")
	// ErrInvalidContent: the request's values were refused (statusCode 6).
	ErrInvalidContent = errors.New("isapi: invalid content")
	// ErrMalformedResponse: the gateway's answer could not be understood,
	// or a write's answer did not prove it (no ResponseStatus).
	ErrMalformedResponse = errors.New("isapi: malformed response")
	// ErrInsecureAuth: the gateway offers only Basic authentication over
	// plain HTTP; the client refuses to send the password in clear text.
	ErrInsecureAuth = errors.New("isapi: insecure authentication refused")
	// ErrCredentialsBound: SetCredentials on a client made WithLoginGate.
	ErrCredentialsBound = errors.New("isapi: the client's credentials are bound to its login gate")
)

// Texts a gateway sends are never copied into error messages as they are:
// only tokens of this shape (status strings, sub-status codes) are, so
// that an echoed request (with a password in it) cannot end up in a log
// line or an event. The structs keep the full, redacted values.
var (
	safeTokenRE = regexp.MustCompile(`^[A-Za-z0-9 _.-]{1,64}$`)
	safeTypeRE  = regexp.MustCompile(`^[A-Za-z0-9.+-]{1,64}/[A-Za-z0-9.+-]{1,64}$`)
	safePathRE  = regexp.MustCompile(`^[A-Za-z0-9_.]{1,128}$`)
)

// safeToken returns s when it has the shape of a status token, else "".
func safeToken(s string) string {
	if safeTokenRE.MatchString(s) {
		return s
	}
	return ""
}

// safeContentType returns the media type of a Content-Type header when it
// looks like one.
func safeContentType(ct string) string {
	if ct == "" {
		return "no content type"
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !safeTypeRE.MatchString(mt) {
		return "unreadable content type"
	}
	return mt
}

// safeDetail describes err without the parts of the body a decoder may
// quote (a character, a number's digits), and survives an Error method
// that panics.
func safeDetail(err error) string {
	if err == nil {
		return ""
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) && syn != nil {
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ != nil {
		kind, _, _ := strings.Cut(typ.Value, " ")
		msg := "a JSON " + safeToken(kind)
		if f := typ.Field; safePathRE.MatchString(f) {
			msg += " at " + f
		}
		if typ.Type != nil {
			msg += " where " + typ.Type.String() + " was expected"
		}
		return msg
	}
	return errorText(err)
}

// errorText is err.Error(), or a placeholder when that panics (a typed nil).
func errorText(err error) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = fmt.Sprintf("unprintable %T", err)
		}
	}()
	return err.Error()
}

// safeError keeps a decoder's error for errors.Is/As but prints it with
// safeDetail.
type safeError struct{ err error }

func (e safeError) Error() string { return safeDetail(e.err) }
func (e safeError) Unwrap() error { return e.err }

// quietError says msg and unwraps to err, whose text would quote what
// the gateway sent.
type quietError struct {
	msg string
	err error
}

func (e *quietError) Error() string { return e.msg }
func (e *quietError) Unwrap() error { return e.err }

// InsecureAuthError: the gateway asked for Basic authentication over
// plain HTTP, which would send the password in clear text; nothing with
// the password was sent.
type InsecureAuthError struct {
	Gateway string // WithGatewayName, or the host
	Method  string
	Path    string
}

func (e *InsecureAuthError) Error() string {
	if e == nil {
		return "isapi: insecure authentication refused"
	}
	return fmt.Sprintf("isapi: gateway %s offers only Basic authentication over plain HTTP; refusing to send the password in clear text (%s %s): enable Digest on the gateway or reach it over https://",
		e.Gateway, e.Method, e.Path)
}

// Is matches ErrInsecureAuth.
func (e *InsecureAuthError) Is(target error) bool { return target == ErrInsecureAuth }

// StatusError is an error answer: an HTTP status and, when the body had
// one, the gateway's ResponseStatus (its texts redacted of the client's
// passwords). Error() shows statusCode, and statusString and
// subStatusCode when they look like status tokens; never errorMsg or
// requestURL, which echo what the gateway was sent.
type StatusError struct {
	Method     string
	Path       string
	HTTPStatus int
	Status     *ResponseStatus // nil when the body carried none
}

func (e *StatusError) Error() string {
	if e == nil {
		return "isapi: error answer"
	}
	msg := fmt.Sprintf("isapi: %s %s: HTTP %d", e.Method, e.Path, e.HTTPStatus)
	if rs := e.Status; rs != nil {
		msg += fmt.Sprintf(", statusCode %d", rs.StatusCode)
		if s := safeToken(rs.StatusString); s != "" {
			msg += " (" + s + ")"
		}
		if s := safeToken(rs.SubStatusCode); s != "" {
			msg += " " + s
		}
	}
	return msg
}

// Is maps the answer to the sentinel errors: the ResponseStatus decides
// when present, the HTTP status otherwise.
func (e *StatusError) Is(target error) bool {
	return e.kind() == target
}

func (e *StatusError) kind() error {
	if e == nil {
		return nil
	}
	if rs := e.Status; rs != nil && rs.StatusCode != 0 {
		switch rs.StatusCode {
		case StatusBusy:
			return ErrBusy
		case StatusDeviceError:
			return ErrDeviceError
		case StatusInvalidOperation:
			switch rs.SubStatusCode {
			case "notSupport", "methodNotAllowed":
				return ErrNotSupported
			case "devOffline", "deviceOffline":
				return ErrDeviceOffline
			case "badDevIndex":
				return ErrBadDevIndex
			case "badAuthorization":
				return ErrBadCredentials
			case "deviceIsLocked":
				return ErrLocked
			}
			return ErrInvalidOperation
		case StatusInvalidFormat:
			return ErrInvalidFormat
		case StatusInvalidContent:
			return ErrInvalidContent
		}
	}
	switch s := e.HTTPStatus; {
	case s == http.StatusServiceUnavailable:
		return ErrBusy
	case s >= 500:
		return ErrDeviceError
	case s == http.StatusForbidden || s == http.StatusNotFound || s == http.StatusMethodNotAllowed || s == http.StatusNotImplemented:
		return ErrNotSupported
	case s == http.StatusBadRequest:
		return ErrInvalidContent
	case s == http.StatusUnauthorized:
		return ErrBadCredentials
	}
	return ErrDeviceError
}

// BadCredentialsError: the gateway answered 401 to this user/password.
// The Client will not send that password again (FromCache reports a
// refusal without a request) until it is given another one.
type BadCredentialsError struct {
	User string
	// RetryTimes is the number of attempts the gateway still allows before
	// locking, or -1 when it did not say.
	RetryTimes int
	FromCache  bool
}

func (e *BadCredentialsError) Error() string {
	if e == nil {
		return ErrBadCredentials.Error()
	}
	msg := fmt.Sprintf("isapi: gateway rejected the password of user %q", e.User)
	if e.FromCache {
		msg += " earlier; set other credentials before retrying"
	}
	if e.RetryTimes >= 0 {
		msg += fmt.Sprintf(" (%d attempts left before lockout)", e.RetryTimes)
	}
	return msg
}

// Is matches ErrBadCredentials.
func (e *BadCredentialsError) Is(target error) bool { return target == ErrBadCredentials }

// LockedError: the gateway refuses this source IP for TimeLeft (0 when it
// did not say), whatever the password.
type LockedError struct {
	TimeLeft time.Duration
	// PasswordRejected is set when this very attempt had a wrong password
	// (the one that triggered the lock); it also matches ErrBadCredentials.
	PasswordRejected bool
	FromCache        bool
}

func (e *LockedError) Error() string {
	if e == nil {
		return ErrLocked.Error()
	}
	msg := "isapi: gateway locked this client out after failed logins"
	if e.TimeLeft > 0 {
		msg += fmt.Sprintf(", %s left", e.TimeLeft.Round(time.Second))
	}
	if e.PasswordRejected {
		msg += " (the password was rejected)"
	}
	return msg
}

// Is matches ErrLocked, and ErrBadCredentials when the password was rejected.
func (e *LockedError) Is(target error) bool {
	if e == nil {
		return target == ErrLocked
	}
	return target == ErrLocked || (e.PasswordRejected && target == ErrBadCredentials)
}

// MalformedResponseError: the body could not be decoded as expected, or a
// write's answer did not prove it. Error() names the media type and says
// what was wrong without quoting the body.
type MalformedResponseError struct {
	Method      string
	Path        string
	HTTPStatus  int
	ContentType string
	Err         error // what was wrong; may be nil
}

func (e *MalformedResponseError) Error() string {
	if e == nil {
		return ErrMalformedResponse.Error()
	}
	msg := fmt.Sprintf("isapi: %s %s: malformed response (HTTP %d, %s)", e.Method, e.Path, e.HTTPStatus, safeContentType(e.ContentType))
	if e.Err != nil {
		msg += ": " + safeDetail(e.Err)
	}
	return msg
}

// Is matches ErrMalformedResponse.
func (e *MalformedResponseError) Is(target error) bool { return target == ErrMalformedResponse }

func (e *MalformedResponseError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}
