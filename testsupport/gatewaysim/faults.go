package gatewaysim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FaultKind is what an injected fault does to a matching request. Faults
// other than latency fire after authentication, so auth behaviour is intact.
type FaultKind string

// Fault kinds.
const (
	// FaultLatency delays the answer by Latency (before authentication).
	FaultLatency FaultKind = "latency"
	// FaultHTTPStatus answers HTTPStatus (default 500) with an HTML body, or
	// a JSON deviceBusy ResponseStatus for 503.
	FaultHTTPStatus FaultKind = "httpStatus"
	// FaultErrorStatus answers HTTP 200 carrying an error ResponseStatus
	// (StatusCode default 3, SubStatusCode default per code).
	FaultErrorStatus FaultKind = "errorStatus"
	// FaultXMLStatus answers an XML ResponseStatus although JSON was asked
	// (StatusCode default 3; HTTP status from the code unless HTTPStatus set).
	FaultXMLStatus FaultKind = "xmlStatus"
	// FaultMalformed answers 200 with a body that is not valid JSON. On the
	// event stream: one malformed part, then the stream goes on.
	FaultMalformed FaultKind = "malformed"
	// FaultTruncated sends headers for the full body, half the body, then
	// cuts the connection. On the event stream: half a part, then cut.
	FaultTruncated FaultKind = "truncated"
	// FaultDrop closes the connection without any answer.
	FaultDrop FaultKind = "drop"
)

// Fault is one injected misbehaviour.
type Fault struct {
	ID string `json:"id,omitempty"`
	// Path selects requests by URL path: "" or "*" all, "prefix*" a prefix,
	// otherwise a path.Match pattern (e.g. "/ISAPI/System/time").
	Path string `json:"path"`
	// Method restricts the fault to one HTTP method; empty matches all.
	Method        string        `json:"method,omitempty"`
	Kind          FaultKind     `json:"kind"`
	Latency       time.Duration `json:"-"`
	HTTPStatus    int           `json:"httpStatus,omitempty"`
	StatusCode    int           `json:"statusCode,omitempty"`
	SubStatusCode string        `json:"subStatusCode,omitempty"`
	// Count is how many requests the fault hits before it expires; 0 means
	// until cleared. Remaining reports what is left.
	Count     int `json:"count,omitempty"`
	Remaining int `json:"remaining,omitempty"`
}

type faultJSON struct {
	alias
	Latency json.RawMessage `json:"latency,omitempty"`
}

type alias Fault

// MarshalJSON writes Latency as a Go duration string.
func (f Fault) MarshalJSON() ([]byte, error) {
	w := struct {
		alias
		Latency string `json:"latency,omitempty"`
	}{alias: alias(f)}
	if f.Latency > 0 {
		w.Latency = f.Latency.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON accepts latency as "250ms" or a number of seconds.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var w faultJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*f = Fault(w.alias)
	d, err := parseJSONDuration(w.Latency)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	f.Latency = d
	return nil
}

// parseJSONDuration reads "1.5s"-style strings or numbers of seconds.
func parseJSONDuration(raw json.RawMessage) (time.Duration, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if secs, err := strconv.ParseFloat(s, 64); err == nil {
			return time.Duration(secs * float64(time.Second)), nil
		}
		return time.ParseDuration(s)
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err != nil {
		return 0, fmt.Errorf("want a duration like \"2s\" or a number of seconds, got %s", raw)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

func (f Fault) validate() error {
	switch f.Kind {
	case FaultLatency:
		if f.Latency <= 0 {
			return fmt.Errorf("gatewaysim: latency fault needs a positive latency")
		}
	case FaultHTTPStatus:
		if f.HTTPStatus != 0 && (f.HTTPStatus < 400 || f.HTTPStatus > 599) {
			return fmt.Errorf("gatewaysim: httpStatus %d not in 400..599", f.HTTPStatus)
		}
	case FaultErrorStatus, FaultXMLStatus:
		if f.StatusCode != 0 && (f.StatusCode < 1 || f.StatusCode > 7) {
			return fmt.Errorf("gatewaysim: statusCode %d not in 1..7", f.StatusCode)
		}
	case FaultMalformed, FaultTruncated, FaultDrop:
	default:
		return fmt.Errorf("gatewaysim: unknown fault kind %q", f.Kind)
	}
	if f.Count < 0 {
		return fmt.Errorf("gatewaysim: negative fault count")
	}
	if f.Path != "" && !strings.HasSuffix(f.Path, "*") {
		if _, err := path.Match(f.Path, "/"); err != nil {
			return fmt.Errorf("gatewaysim: fault path %q: %w", f.Path, err)
		}
	}
	return nil
}

func (f *Fault) matches(method, p string) bool {
	if f.Method != "" && !strings.EqualFold(f.Method, method) {
		return false
	}
	switch {
	case f.Path == "" || f.Path == "*":
		return true
	case strings.HasSuffix(f.Path, "*") && !strings.ContainsAny(f.Path[:len(f.Path)-1], "*?["):
		return strings.HasPrefix(p, f.Path[:len(f.Path)-1])
	default:
		m, _ := path.Match(f.Path, p)
		return m
	}
}

type faultSet struct {
	mu     sync.Mutex
	nextID int
	faults []*Fault
}

func (fs *faultSet) add(f Fault) (Fault, error) {
	if err := f.validate(); err != nil {
		return Fault{}, err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	f.ID = "f" + strconv.Itoa(fs.nextID)
	f.Remaining = f.Count
	fs.faults = append(fs.faults, &f)
	return f, nil
}

func (fs *faultSet) clear(id string) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if id == "" {
		n := len(fs.faults)
		fs.faults = nil
		return n > 0
	}
	for i, f := range fs.faults {
		if f.ID == id {
			fs.faults = append(fs.faults[:i], fs.faults[i+1:]...)
			return true
		}
	}
	return false
}

func (fs *faultSet) list() []Fault {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]Fault, len(fs.faults))
	for i, f := range fs.faults {
		out[i] = *f
	}
	return out
}

// take returns the total latency and the first non-latency fault matching
// the request, consuming one use of each fault that fires.
func (fs *faultSet) take(method, p string, latencyOnly bool) (time.Duration, *Fault, int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var latency time.Duration
	var hit *Fault
	fired := 0
	kept := fs.faults[:0]
	for _, f := range fs.faults {
		fire := false
		if f.matches(method, p) {
			if f.Kind == FaultLatency && latencyOnly {
				latency += f.Latency
				fire = true
			} else if f.Kind != FaultLatency && !latencyOnly && hit == nil {
				c := *f
				hit = &c
				fire = true
			}
		}
		if fire {
			fired++
			if f.Count > 0 {
				f.Remaining--
				if f.Remaining <= 0 {
					continue
				}
			}
		}
		kept = append(kept, f)
	}
	fs.faults = kept
	return latency, hit, fired
}

type faultKey struct{}

func withFault(ctx context.Context, f *Fault) context.Context {
	return context.WithValue(ctx, faultKey{}, f)
}

func faultFrom(ctx context.Context) *Fault {
	f, _ := ctx.Value(faultKey{}).(*Fault)
	return f
}

// applyFault answers a request according to f. It returns false when the
// handler should still run (stream faults are applied by the handler).
func applyFault(w http.ResponseWriter, r *http.Request, f *Fault, next http.Handler, streaming bool) bool {
	switch f.Kind {
	case FaultDrop:
		panic(http.ErrAbortHandler)
	case FaultHTTPStatus:
		code := f.HTTPStatus
		if code == 0 {
			code = http.StatusInternalServerError
		}
		if code == http.StatusServiceUnavailable {
			fail(w, r, codeBusy, "deviceBusy", "injected fault")
			return true
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><h1>%d %s</h1></body></html>\n", code, http.StatusText(code), code, http.StatusText(code))
		return true
	case FaultErrorStatus, FaultXMLStatus:
		code := f.StatusCode
		if code == 0 {
			code = codeDeviceError
		}
		sub := f.SubStatusCode
		if sub == "" {
			sub = defaultSubStatus(code)
		}
		rs := newStatus(r, code, sub, "injected fault")
		if f.Kind == FaultErrorStatus {
			writeStatus(w, r, http.StatusOK, rs)
			return true
		}
		hs := f.HTTPStatus
		if hs == 0 {
			hs = httpStatusFor(code)
		}
		writeStatusXML(w, hs, rs)
		return true
	case FaultMalformed, FaultTruncated:
		if streaming {
			return false
		}
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		body := rec.body.Bytes()
		if f.Kind == FaultMalformed {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"statusCode":1,"statusString":"OK",<html>` + "\x00"))
			return true
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.code)
		_, _ = w.Write(body[:len(body)/2])
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
	return false
}

func defaultSubStatus(code int) string {
	switch code {
	case codeOK:
		return "ok"
	case codeBusy:
		return "deviceBusy"
	case codeDeviceError:
		return "deviceError"
	case codeInvalidOperation:
		return "invalidOperation"
	case codeInvalidFormat:
		return "badJsonFormat"
	case codeInvalidContent:
		return "badParameters"
	default:
		return "rebootRequired"
	}
}

// recorder buffers a handler's answer so a fault can mangle it.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code = code
		r.wrote = true
	}
}
