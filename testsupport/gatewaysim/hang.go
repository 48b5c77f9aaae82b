package gatewaysim

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"
)

// Hang makes the gateway software hang, as a stuck box does: every ISAPI
// request (logins included) is read and never answered until the client
// gives up or the hang ends; RTSP streams are cut and new ones refused.
// The admin API still answers. A reboot (Reboot, or the ISAPI reboot — which
// cannot be asked while hung), a replacement (Replace) or Unhang ends it;
// the cameras come back with the gateway.
func (s *Server) Hang() {
	s.mu.Lock()
	if s.hung != nil || s.closed {
		s.mu.Unlock()
		return
	}
	s.hung = make(chan struct{})
	s.mu.Unlock()
	s.st.broker.dropAll() // event streams end; new ones hang like any request
	for _, d := range s.st.deviceList() {
		s.dropStreams(d)
	}
	s.log.Info("gateway hangs")
}

// Unhang ends a hang without a reboot.
func (s *Server) Unhang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unhangLocked()
}

// Hung reports whether the gateway hangs now.
func (s *Server) Hung() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hung != nil
}

func (s *Server) unhangLocked() {
	if s.hung != nil {
		close(s.hung)
		s.hung = nil
		s.log.Info("gateway hang ended")
	}
}

// awaitHang holds an ISAPI request while the gateway hangs. It returns
// false when the request is to be dropped unanswered (the client gave up,
// or the gateway went down meanwhile).
func (s *Server) awaitHang(r *http.Request) bool {
	s.mu.Lock()
	hung := s.hung
	s.mu.Unlock()
	if hung == nil {
		return true
	}
	select {
	case <-hung:
		// Ended by Unhang: answer; ended by a reboot: the connection is
		// being cut, nothing to answer.
		s.mu.Lock()
		down := s.rebooting || s.closed
		s.mu.Unlock()
		return !down
	case <-r.Context().Done():
		return false
	}
}

// InstanceID names the simulated machine; Replace gives a new one.
func (s *Server) InstanceID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.instanceID
}

// Replace stands in for replacing the gateway's machine from a snapshot:
// the old one stops at once and a new one (a new InstanceID) comes up on
// the same addresses after downtime (Config.RebootDowntime if 0), with the
// gateway's settings and cameras as they were (restored from the
// snapshot), uptime from 0, no faults, no hang, no login locks. It
// returns the new instance id at once; WaitUp waits for the new machine.
func (s *Server) Replace(downtime time.Duration) string {
	s.ClearFaults()
	s.mu.Lock()
	s.instanceID = newInstanceID()
	id := s.instanceID
	s.unhangLocked()
	s.mu.Unlock()
	s.log.Info("gateway replaced", "instance", id)
	s.startReboot(downtime, 0)
	return id
}

// newInstanceID looks like an EC2 instance id, to read as one in logs.
func newInstanceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "i-sim" + hex.EncodeToString(b)[:13]
}
