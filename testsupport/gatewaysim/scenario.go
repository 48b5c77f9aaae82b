package gatewaysim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Action is what a scenario step does.
type Action string

// Scenario actions.
const (
	ActionAddDevice       Action = "addDevice"       // name, devIndex, channels, status, model, protocol
	ActionDeleteDevice    Action = "deleteDevice"    // device
	ActionSetStatus       Action = "setStatus"       // device, status
	ActionFlap            Action = "flap"            // device, period ("0s" stops)
	ActionReboot          Action = "reboot"          // downtime (optional)
	ActionInjectFault     Action = "injectFault"     // fault
	ActionClearFaults     Action = "clearFaults"     //
	ActionDropSubscribers Action = "dropSubscribers" //
	ActionSetPassword     Action = "setPassword"     // password
	ActionUnlock          Action = "unlock"          // ip (optional: all)
)

// Scenario is a timed list of steps, loadable from JSON or YAML:
//
//	steps:
//	  - {at: 0s, action: addDevice, name: Lobby, channels: 2}
//	  - {at: 5s, action: setStatus, device: Lobby, status: offline}
//	  - {at: 8s, action: injectFault, fault: {path: /ISAPI/System/status, kind: httpStatus, httpStatus: 503, count: 2}}
type Scenario struct {
	Steps []Step
}

// Step is one scenario action at an offset from the scenario's start.
type Step struct {
	At     time.Duration
	Action Action
	// Device names the target camera by devIndex or by name (initial
	// cameras are named "Camera 001", "Camera 002", ...).
	Device   string
	Add      DeviceSpec // for addDevice
	Status   DeviceStatus
	Period   time.Duration
	Downtime time.Duration
	Fault    *Fault
	Password string
	IP       string
}

type stepJSON struct {
	At       json.RawMessage `json:"at"`
	Action   Action          `json:"action"`
	Device   string          `json:"device"`
	DevIndex string          `json:"devIndex"`
	Name     string          `json:"name"`
	Channels int             `json:"channels"`
	Model    string          `json:"model"`
	Protocol string          `json:"protocol"`
	Status   DeviceStatus    `json:"status"`
	Period   json.RawMessage `json:"period"`
	Downtime json.RawMessage `json:"downtime"`
	Fault    *Fault          `json:"fault"`
	Password string          `json:"password"`
	IP       string          `json:"ip"`
}

// LoadScenario reads a scenario file (JSON, or YAML otherwise).
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gatewaysim: scenario: %w", err)
	}
	sc, err := ParseScenario(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return sc, nil
}

// ParseScenario parses a scenario document, JSON or YAML, and validates it.
func ParseScenario(data []byte) (*Scenario, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] != '{' {
		// YAML is converted to JSON so both share one decoder.
		var doc any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("gatewaysim: scenario yaml: %w", err)
		}
		j, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("gatewaysim: scenario yaml: %w", err)
		}
		trimmed = j
	}
	var doc struct {
		Steps []stepJSON `json:"steps"`
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields() // a typo in a scenario should not pass silently
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("gatewaysim: scenario: %w", err)
	}
	sc := &Scenario{}
	for i, w := range doc.Steps {
		st, err := w.step()
		if err != nil {
			return nil, fmt.Errorf("gatewaysim: scenario step %d (%s): %w", i+1, w.Action, err)
		}
		sc.Steps = append(sc.Steps, st)
	}
	return sc, nil
}

func (w stepJSON) step() (Step, error) {
	st := Step{
		Action: w.Action, Device: w.Device, Status: w.Status, Fault: w.Fault, Password: w.Password, IP: w.IP,
		Add: DeviceSpec{DevIndex: w.DevIndex, Name: w.Name, Channels: w.Channels, Model: w.Model, Protocol: w.Protocol, Status: w.Status},
	}
	var err error
	if st.At, err = parseJSONDuration(w.At); err != nil {
		return st, fmt.Errorf("at: %w", err)
	}
	if st.Period, err = parseJSONDuration(w.Period); err != nil {
		return st, fmt.Errorf("period: %w", err)
	}
	if st.Downtime, err = parseJSONDuration(w.Downtime); err != nil {
		return st, fmt.Errorf("downtime: %w", err)
	}
	return st, st.validate()
}

func (st Step) validate() error {
	if st.At < 0 {
		return errors.New("negative at")
	}
	needDevice := func() error {
		if st.Device == "" {
			return errors.New("device (devIndex or name) required")
		}
		return nil
	}
	switch st.Action {
	case ActionAddDevice:
		if st.Add.Status != "" && !st.Add.Status.valid() {
			return fmt.Errorf("%w: %q", ErrInvalidStatus, st.Add.Status)
		}
	case ActionDeleteDevice:
		return needDevice()
	case ActionSetStatus:
		if !st.Status.valid() {
			return fmt.Errorf("%w: %q", ErrInvalidStatus, st.Status)
		}
		return needDevice()
	case ActionFlap:
		return needDevice()
	case ActionInjectFault:
		if st.Fault == nil {
			return errors.New("fault required")
		}
		return st.Fault.validate()
	case ActionSetPassword:
		if st.Password == "" {
			return errors.New("password required")
		}
	case ActionReboot, ActionClearFaults, ActionDropSubscribers, ActionUnlock:
	default:
		return fmt.Errorf("unknown action %q", st.Action)
	}
	return nil
}

// RunScenario plays the steps in order of At, relative to now, and returns
// when the last one ran or ctx ends. A failing step is logged and the
// scenario goes on; the failures are returned together.
func (s *Server) RunScenario(ctx context.Context, sc *Scenario) error {
	steps := slices.Clone(sc.Steps)
	slices.SortStableFunc(steps, func(a, b Step) int { return int(a.At - b.At) })
	start := time.Now()
	var errs []error
	for i, st := range steps {
		if wait := time.Until(start.Add(st.At)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if err := s.runStep(st); err != nil {
			err = fmt.Errorf("step %d (%s at %s): %w", i+1, st.Action, st.At, err)
			s.log.Warn("scenario step failed", "err", err)
			errs = append(errs, err)
			continue
		}
		s.log.Info("scenario step", "action", st.Action, "at", st.At, "device", st.Device)
	}
	return errors.Join(errs...)
}

func (s *Server) runStep(st Step) error {
	device := func() (string, error) {
		d, found := s.st.findDevice(st.Device)
		if !found {
			return "", fmt.Errorf("%w: %s", ErrNoDevice, st.Device)
		}
		return d.DevIndex, nil
	}
	switch st.Action {
	case ActionAddDevice:
		_, err := s.AddDevice(st.Add)
		return err
	case ActionDeleteDevice:
		idx, err := device()
		if err != nil {
			return err
		}
		return s.DeleteDevice(idx)
	case ActionSetStatus:
		idx, err := device()
		if err != nil {
			return err
		}
		return s.SetStatus(idx, st.Status)
	case ActionFlap:
		idx, err := device()
		if err != nil {
			return err
		}
		return s.Flap(idx, st.Period)
	case ActionReboot:
		s.Reboot(st.Downtime)
	case ActionInjectFault:
		_, err := s.InjectFault(*st.Fault)
		return err
	case ActionClearFaults:
		s.ClearFaults()
	case ActionDropSubscribers:
		s.DropSubscribers()
	case ActionSetPassword:
		return s.SetPassword(st.Password)
	case ActionUnlock:
		s.Unlock(st.IP)
	}
	return nil
}
