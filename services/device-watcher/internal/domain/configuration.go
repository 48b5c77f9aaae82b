package domain

// LoginFacts are what decides whether a login to a gateway may be sent
// before the gateway is configured (AwaitsConfiguration).
type LoginFacts struct {
	// Credential is the credential the login would carry
	// ("<parameter>@<version>").
	Credential string
	// Accepted is the credential the login budget's ledger last saw the
	// gateway accept, by any component ("": none).
	Accepted string
	// Configured: the configurator has configured the gateway
	// (GatewayConfigured heard, or noted on the gateway's lease).
	Configured bool
	// Bootstrap: the gateway has a BootstrapPassword parameter, so it may
	// still have its factory password.
	Bootstrap bool
}

// AwaitsConfiguration reports whether a login with f.Credential must wait
// until the gateway is configured. A gateway that may still be
// factory-fresh (it has a bootstrap password) and that nobody said was
// configured would reject the configured password, and every such try is
// one of the 5 failed logins that lock the gateway. A credential the
// gateway accepted before, a configured gateway, or one without a
// bootstrap password is logged in to at once.
func AwaitsConfiguration(f LoginFacts) bool {
	return f.Bootstrap && !f.Configured && (f.Accepted == "" || f.Accepted != f.Credential)
}
