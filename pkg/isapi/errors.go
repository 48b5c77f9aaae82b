package isapi

import (
	"errors"
	"fmt"
	"net/http"
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
	// ErrMalformedResponse: the gateway's answer could not be understood.
	ErrMalformedResponse = errors.New("isapi: malformed response")
)

// StatusError is an error answer: an HTTP status and, when the body had
// one, the gateway's ResponseStatus.
type StatusError struct {
	Method     string
	Path       string
	HTTPStatus int
	Status     *ResponseStatus // nil when the body carried none
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("isapi: %s %s: HTTP %d", e.Method, e.Path, e.HTTPStatus)
	if rs := e.Status; rs != nil {
		msg += fmt.Sprintf(", statusCode %d (%s) %s", rs.StatusCode, rs.StatusString, rs.SubStatusCode)
		if rs.ErrorMsg != "" {
			msg += ": " + rs.ErrorMsg
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
	return target == ErrLocked || (e.PasswordRejected && target == ErrBadCredentials)
}

// MalformedResponseError: the body could not be decoded as expected.
type MalformedResponseError struct {
	Method      string
	Path        string
	HTTPStatus  int
	ContentType string
	Err         error
}

func (e *MalformedResponseError) Error() string {
	return fmt.Sprintf("isapi: %s %s: malformed response (HTTP %d, %s): %v", e.Method, e.Path, e.HTTPStatus, e.ContentType, e.Err)
}

// Is matches ErrMalformedResponse.
func (e *MalformedResponseError) Is(target error) bool { return target == ErrMalformedResponse }

func (e *MalformedResponseError) Unwrap() error { return e.Err }
