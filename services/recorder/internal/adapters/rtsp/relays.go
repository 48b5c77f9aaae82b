package rtsp

import "mediagw/services/recorder/internal/app"

// Relays opens one Proxy per channel (app.Relays).
type Relays struct{}

var _ app.Relays = Relays{}

// Open starts a relay for the channel's upstream on a free loopback port.
func (Relays) Open(spec app.RelaySpec) (app.Relay, error) {
	p, err := Listen(Config{
		Gateway: spec.Gateway, Upstream: spec.Upstream, Login: spec.Login, AuthFailed: spec.AuthFailed,
		Playing: spec.Playing, Logger: spec.Logger,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}
