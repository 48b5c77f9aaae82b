// Package simgateway stands the simulated gateway's machine in for an EC2
// instance (recovery.Instances) in local runs (`make run`): its status is
// the simulator's admin health, a reboot is POST /admin/reboot and a
// replacement POST /admin/replace (a new machine id, same address, the
// gateway's settings and cameras as they were), through the simulator's
// admin API (services/gateway-sim). Every gateway id maps to the one
// simulator at the admin URL. There are no snapshots and no Elastic IP.
package simgateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
)

// Sim is the simulator's admin API.
type Sim struct {
	base string
	hc   *http.Client
	poll time.Duration
	log  *slog.Logger
}

// Options tune Sim.
type Options struct {
	Timeout time.Duration // each admin request (default 5 s)
	Poll    time.Duration // while waiting for a replacement to come up (default 250 ms)
	Logger  *slog.Logger
}

// New returns the adapter for the simulator whose admin API is at adminURL.
func New(adminURL string, o Options) *Sim {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sim{base: strings.TrimRight(adminURL, "/"), hc: &http.Client{Timeout: o.Timeout}, poll: o.Poll, log: o.Logger}
}

var _ recovery.Instances = (*Sim)(nil)

type health struct {
	OK         bool   `json:"ok"`
	Rebooting  bool   `json:"rebooting"`
	Hung       bool   `json:"hung"`
	InstanceID string `json:"instanceId"`
}

func (s *Sim) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return fmt.Errorf("simulator admin %s %s: %w", method, path, err)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("simulator admin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("simulator admin %s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("simulator admin %s %s: %w", method, path, err)
		}
	}
	return nil
}

func (s *Sim) health(ctx context.Context) (health, error) {
	var h health
	err := s.call(ctx, http.MethodGet, "/admin/healthz", nil, &h)
	return h, err
}

// Status is the simulated machine: up (its admin API answers and it is not
// rebooting) is fine; rebooting is no verdict. A hung gateway software is
// not a machine fault (the API check sees it), as on EC2.
func (s *Sim) Status(ctx context.Context, gw string) (recovery.InstanceStatus, error) {
	h, err := s.health(ctx)
	if err != nil {
		return recovery.InstanceStatus{}, err
	}
	st := recovery.InstanceStatus{InstanceID: h.InstanceID}
	switch {
	case h.Rebooting:
		st.Detail = fmt.Sprintf("simulated machine %s is rebooting", h.InstanceID)
	default:
		ok := h.OK
		st.OK = &ok
		st.Detail = fmt.Sprintf("simulated machine %s is up (gateway software hung: %t)", h.InstanceID, h.Hung)
	}
	return st, nil
}

// Reboot reboots the simulated machine.
func (s *Sim) Reboot(ctx context.Context, gw string) (string, error) {
	h, err := s.health(ctx)
	if err != nil {
		return "", err
	}
	if err := s.call(ctx, http.MethodPost, "/admin/reboot", map[string]any{}, nil); err != nil {
		return h.InstanceID, err
	}
	s.log.InfoContext(ctx, "simulator: machine reboot asked", "gateway", gw, "instance", h.InstanceID)
	return h.InstanceID, nil
}

// Replace replaces the simulated machine, unless prev says it was done
// and the simulator runs that new machine; then it waits for it to be up.
func (s *Sim) Replace(ctx context.Context, gw, imageID string, prev *domain.Replacement, save func(domain.Replacement) error) (domain.Replacement, error) {
	h, err := s.health(ctx)
	if err != nil {
		return domain.Replacement{}, err
	}
	var r domain.Replacement
	if prev != nil {
		r = *prev
	}
	if r.NewInstanceID == "" || h.InstanceID != r.NewInstanceID {
		var out struct {
			InstanceID string `json:"instanceId"`
		}
		if err := s.call(ctx, http.MethodPost, "/admin/replace", map[string]any{}, &out); err != nil {
			return r, err
		}
		r = domain.Replacement{OldInstanceID: h.InstanceID, NewInstanceID: out.InstanceID, ImageID: imageID}
		if err := save(r); err != nil {
			return r, err
		}
		s.log.InfoContext(ctx, "simulator: machine replaced", "gateway", gw, "old_instance", r.OldInstanceID, "new_instance", r.NewInstanceID)
	}
	for {
		h, err := s.health(ctx)
		if err == nil && !h.Rebooting && h.InstanceID == r.NewInstanceID {
			return r, nil
		}
		t := time.NewTimer(s.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return r, fmt.Errorf("the simulated replacement %s is not up yet: %w", r.NewInstanceID, ctx.Err())
		case <-t.C:
		}
	}
}

// Retire has nothing to do: the old simulated machine is gone already.
func (s *Sim) Retire(ctx context.Context, gw string, r domain.Replacement) error { return nil }
