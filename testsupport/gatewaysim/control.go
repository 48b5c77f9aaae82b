package gatewaysim

import (
	"context"
	"crypto/subtle"
	"fmt"
	"time"
)

// Devices lists the cameras in deviceList order.
func (s *Server) Devices() []Device { return s.st.deviceList() }

// Device returns one camera by devIndex.
func (s *Server) Device(devIndex string) (Device, bool) { return s.st.device(devIndex) }

// AddDevice attaches a camera and announces it on the event stream.
func (s *Server) AddDevice(spec DeviceSpec) (Device, error) {
	d, err := s.st.addDevice(spec, s.now())
	if err == nil {
		s.log.Info("device added", "devIndex", d.DevIndex, "name", d.Name, "channels", len(d.Channels))
	}
	return d, err
}

// DeleteDevice detaches a camera: its streams stop at once.
func (s *Server) DeleteDevice(devIndex string) error {
	s.stopFlap(devIndex)
	d, err := s.st.deleteDevice(devIndex, s.now())
	if err != nil {
		return err
	}
	s.dropStreams(d)
	s.log.Info("device deleted", "devIndex", devIndex)
	return nil
}

// SetStatus sets a camera online, offline or asleep. Leaving online cuts its
// RTSP clients.
func (s *Server) SetStatus(devIndex string, status DeviceStatus) error {
	d, prev, err := s.st.setStatus(devIndex, status, s.now())
	if err != nil {
		return err
	}
	if prev != status {
		s.log.Info("device status", "devIndex", devIndex, "status", status)
	}
	if status != StatusOnline {
		s.dropStreams(d)
	}
	return nil
}

// Flap toggles a camera between online and offline every period until
// period is 0, the device is deleted or the server closes.
func (s *Server) Flap(devIndex string, period time.Duration) error {
	if _, found := s.st.device(devIndex); !found {
		return fmt.Errorf("%w: %s", ErrNoDevice, devIndex)
	}
	s.stopFlap(devIndex)
	if period <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	s.flappers[devIndex] = cancel
	s.mu.Unlock()
	s.goServe(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			d, found := s.st.device(devIndex)
			if !found {
				return
			}
			next := StatusOffline
			if d.Status != StatusOnline {
				next = StatusOnline
			}
			if err := s.SetStatus(devIndex, next); err != nil {
				return
			}
		}
	})
	return nil
}

func (s *Server) stopFlap(devIndex string) {
	s.mu.Lock()
	cancel := s.flappers[devIndex]
	delete(s.flappers, devIndex)
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// InjectFault adds a fault; the returned copy carries its ID.
func (s *Server) InjectFault(f Fault) (Fault, error) { return s.faults.add(f) }

// ClearFault removes one fault by ID; it reports whether it existed.
func (s *Server) ClearFault(id string) bool {
	if id == "" {
		return false
	}
	return s.faults.clear(id)
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.clear("") }

// Faults lists the active faults with their remaining counts.
func (s *Server) Faults() []Fault { return s.faults.list() }

// Counters returns a snapshot of the request and login counters.
func (s *Server) Counters() Counters { return s.st.snapshotCounters() }

// ResetCounters zeroes every counter.
func (s *Server) ResetCounters() { s.st.update(func(st *state) { st.resetCountersLocked() }) }

// Settings returns the gateway's current configuration.
func (s *Server) Settings() Settings {
	set := s.st.snapshotSettings()
	s.mu.Lock()
	set.Rebooting = s.rebooting
	s.mu.Unlock()
	return set
}

// CheckPassword reports whether p is the current admin password.
func (s *Server) CheckPassword(p string) bool {
	_, cur := s.st.credentials()
	return subtle.ConstantTimeCompare([]byte(p), []byte(cur)) == 1
}

// SetPassword changes the admin password out of band (an operator at the
// box); it takes effect at once for HTTP and RTSP.
func (s *Server) SetPassword(p string) error {
	if p == "" {
		return fmt.Errorf("gatewaysim: empty password")
	}
	s.st.update(func(st *state) { st.password = p })
	return nil
}

// Unlock lifts the login lockout of one source IP, or of all when ip is "".
func (s *Server) Unlock(ip string) { s.auth.unlock(ip) }

// DropSubscribers cuts every open event stream; it returns how many.
func (s *Server) DropSubscribers() int { return s.st.broker.dropAll() }
