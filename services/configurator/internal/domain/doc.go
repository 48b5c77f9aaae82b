// Package domain is the configurator's domain: the settings a gateway
// should have (from its parameters), the password policy, the time-zone
// conversion, the plan that turns the gateway's current settings into the
// desired ones, the Secret type that never prints, and how failures are
// classified. It talks to nothing: the gateway and AWS are behind the
// interfaces of internal/app. Standard library only, plus mediagw/pkg/hiktz
// (the gateway's time-zone strings, itself standard library only).
package domain
