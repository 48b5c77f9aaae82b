package app

import "time"

// What the operator CLI (internal/ports/cli) reads besides the tables:
// recorded segments (adapters/s3) and gateways' plain settings
// (adapters/ssm).

// Segment is one recorded segment as its S3 key names it.
type Segment struct {
	Key      string
	Start    time.Time
	Duration time.Duration
	Size     int64
}

// End is when the segment's last frame ends.
func (s Segment) End() time.Time { return s.Start.Add(s.Duration) }

// GatewayInfo is a gateway's plain (String) SSM parameters; a
// SecureString's value is never read.
type GatewayInfo struct {
	ID         string
	Name       string // GatewayName
	ExternalIP string // ExternalIP
	// PasswordParameter and PasswordVersion name the admin password the
	// components log in with (its version, never its value); empty when
	// the gateway has no Password parameter.
	PasswordParameter string
	PasswordVersion   int64
}
