package gatewaysim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// adminHandler is the scenario-control API (JSON, no auth, loopback only).
// Routes are documented in services/gateway-sim/README.md.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "rebooting": s.Settings().Rebooting, "hung": s.Hung(), "instanceId": s.InstanceID()})
	})
	mux.HandleFunc("GET /admin/devices", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Devices())
	})
	mux.HandleFunc("GET /admin/devices/{devIndex}", func(w http.ResponseWriter, r *http.Request) {
		d, found := s.Device(r.PathValue("devIndex"))
		if !found {
			adminError(w, http.StatusNotFound, ErrNoDevice)
			return
		}
		writeJSON(w, http.StatusOK, d)
	})
	mux.HandleFunc("POST /admin/devices", func(w http.ResponseWriter, r *http.Request) {
		var spec DeviceSpec
		if !adminDecode(w, r, &spec, true) {
			return
		}
		d, err := s.AddDevice(spec)
		if err != nil {
			adminError(w, statusForErr(err), err)
			return
		}
		writeJSON(w, http.StatusCreated, d)
	})
	mux.HandleFunc("DELETE /admin/devices/{devIndex}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.DeleteDevice(r.PathValue("devIndex")); err != nil {
			adminError(w, statusForErr(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /admin/devices/{devIndex}/status", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Status DeviceStatus `json:"status"`
		}
		if !adminDecode(w, r, &req, false) {
			return
		}
		if err := s.SetStatus(r.PathValue("devIndex"), req.Status); err != nil {
			adminError(w, statusForErr(err), err)
			return
		}
		d, _ := s.Device(r.PathValue("devIndex"))
		writeJSON(w, http.StatusOK, d)
	})
	mux.HandleFunc("PUT /admin/devices/{devIndex}/flap", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Period json.RawMessage `json:"period"`
		}
		if !adminDecode(w, r, &req, false) {
			return
		}
		period, err := parseJSONDuration(req.Period)
		if err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		if err := s.Flap(r.PathValue("devIndex"), period); err != nil {
			adminError(w, statusForErr(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /admin/reboot", func(w http.ResponseWriter, r *http.Request) {
		if d, ok := adminDowntime(w, r); ok {
			s.Reboot(d)
			w.WriteHeader(http.StatusAccepted)
		}
	})
	mux.HandleFunc("POST /admin/hang", func(w http.ResponseWriter, r *http.Request) {
		s.Hang()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /admin/hang", func(w http.ResponseWriter, r *http.Request) {
		s.Unhang()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /admin/replace", func(w http.ResponseWriter, r *http.Request) {
		if d, ok := adminDowntime(w, r); ok {
			writeJSON(w, http.StatusAccepted, map[string]string{"instanceId": s.Replace(d)})
		}
	})
	mux.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if !adminDecode(w, r, &f, false) {
			return
		}
		f, err := s.InjectFault(f)
		if err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusCreated, f)
	})
	mux.HandleFunc("DELETE /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /admin/faults/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !s.ClearFault(r.PathValue("id")) {
			adminError(w, http.StatusNotFound, errors.New("no such fault"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /admin/counters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Counters())
	})
	mux.HandleFunc("DELETE /admin/counters", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCounters()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /admin/login-faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.LoginFaults())
	})
	mux.HandleFunc("PUT /admin/login-faults", func(w http.ResponseWriter, r *http.Request) {
		var f LoginFaults
		if !adminDecode(w, r, &f, true) {
			return
		}
		if err := s.SetLoginFaults(f); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusOK, s.LoginFaults())
	})
	mux.HandleFunc("DELETE /admin/login-faults", func(w http.ResponseWriter, r *http.Request) {
		_ = s.SetLoginFaults(LoginFaults{})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /admin/login-failures", func(w http.ResponseWriter, r *http.Request) {
		s.serveLoginFailures(w, r)
	})
	mux.HandleFunc("GET /admin/settings", func(w http.ResponseWriter, r *http.Request) {
		set := s.Settings()
		writeJSON(w, http.StatusOK, struct {
			Settings
			ClockOffset string `json:"clockOffset"`
			Uptime      string `json:"uptime"`
		}{Settings: set, ClockOffset: set.ClockOffset.String(), Uptime: s.now().Sub(set.BootTime).Truncate(time.Second).String()})
	})
	mux.HandleFunc("POST /admin/password/check", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Password string `json:"password"`
		}
		if !adminDecode(w, r, &req, false) {
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"match": s.CheckPassword(req.Password)})
	})
	mux.HandleFunc("PUT /admin/password", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Password string `json:"password"`
		}
		if !adminDecode(w, r, &req, false) {
			return
		}
		if err := s.SetPassword(req.Password); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /admin/unlock", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			IP string `json:"ip"`
		}
		if !adminDecode(w, r, &req, true) {
			return
		}
		s.Unlock(req.IP)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /admin/subscribers/drop", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int{"dropped": s.DropSubscribers()})
	})
	mux.HandleFunc("POST /admin/scenario", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		sc, err := ParseScenario(body)
		if err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		s.goServe(func() {
			if err := s.RunScenario(s.ctx, sc); err != nil {
				s.log.Error("scenario", "err", err)
			}
		})
		writeJSON(w, http.StatusAccepted, map[string]int{"steps": len(sc.Steps)})
	})
	return loopbackOnly(mux)
}

func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ip := net.ParseIP(sourceIP(r)); ip == nil || !ip.IsLoopback() {
			adminError(w, http.StatusForbidden, errors.New("admin API is loopback only"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func adminDecode(w http.ResponseWriter, r *http.Request, v any, optional bool) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		adminError(w, http.StatusBadRequest, err)
		return false
	}
	if len(body) == 0 && optional {
		return true
	}
	if err := json.Unmarshal(body, v); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

func statusForErr(err error) int {
	switch {
	case errors.Is(err, ErrNoDevice):
		return http.StatusNotFound
	case errors.Is(err, ErrDeviceExists):
		return http.StatusConflict
	default:
		return http.StatusBadRequest
	}
}

func adminError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// serveLoginFailures answers the failed-login ledger, filtered by the
// optional query parameters ip, protocol and since (RFC 3339), with totals;
// window (a duration) adds the most failed logins within any window that long.
func (s *Server) serveLoginFailures(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	l := s.LoginFailures()
	if ip := q.Get("ip"); ip != "" {
		l = l.ByIP(ip)
	}
	if p := q.Get("protocol"); p != "" {
		l = l.ByProtocol(p)
	}
	if since := q.Get("since"); since != "" {
		t, err := time.Parse(time.RFC3339Nano, since)
		if err != nil {
			adminError(w, http.StatusBadRequest, fmt.Errorf("since: %w", err))
			return
		}
		l = l.Since(t)
	}
	out := struct {
		Total       int            `json:"total"`
		ByIP        map[string]int `json:"byIP"`
		Window      string         `json:"window,omitempty"`
		MaxInWindow *int           `json:"maxInWindow,omitempty"`
		Records     LoginLedger    `json:"records"`
	}{Total: len(l), ByIP: l.CountByIP(), Records: l}
	if win := q.Get("window"); win != "" {
		d, err := parseJSONDuration(json.RawMessage(strconv.Quote(win)))
		if err != nil || d <= 0 {
			adminError(w, http.StatusBadRequest, fmt.Errorf("window %q: want a positive duration like 30m", win))
			return
		}
		n := l.MaxInWindow(d)
		out.Window, out.MaxInWindow = d.String(), &n
	}
	writeJSON(w, http.StatusOK, out)
}

// adminDowntime reads the optional {"downtime": ...} body of a reboot or a
// replacement; false means the error is answered.
func adminDowntime(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	var req struct {
		Downtime json.RawMessage `json:"downtime"`
	}
	if !adminDecode(w, r, &req, true) {
		return 0, false
	}
	d, err := parseJSONDuration(req.Downtime)
	if err != nil {
		adminError(w, http.StatusBadRequest, err)
		return 0, false
	}
	return d, true
}
