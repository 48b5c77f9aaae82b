package domain

import "time"

// Lease is a held lease on a gateway: while it lasts, its holder is the
// one instance that watches the gateway and writes its state.
//
// Token is a fencing token that grows with every acquisition; every state
// write is conditional on (Holder, Token), so a holder that lost the lease
// without noticing (a long pause) cannot write.
type Lease struct {
	ID     string
	Holder string
	Token  int64
	// Expires is the expiry written with the last acquisition or renewal.
	Expires time.Time
	// Configured is the last configuration of the gateway noted on the
	// lease by any instance (GatewayConfigured), as of the last acquisition
	// or renewal; zero if none.
	Configured time.Time
}

// LeaseID is the id of the lease on a gateway.
func LeaseID(gatewayID string) string { return "device-watcher/" + gatewayID }

// State is what is stored of one gateway: its announced cameras, its
// reachability, and the changes stored but perhaps not announced yet.
type State struct {
	Devices []Device
	Gateway Gateway
	// Pending are changes stored but maybe not announced, in order.
	Pending []Change
}
