package gatewayid

import (
	"fmt"
	"net/url"
	"strings"
)

// Endpoint is a gateway and the base URL of its ISAPI: one entry of the
// GATEWAYS setting of every service that talks to gateways.
type Endpoint struct {
	ID  ID
	URL string
}

// ParseEndpoints reads GATEWAYS entries "<id>=<http base URL>". A URL is
// never repeated in an error (it might carry a password), and one that
// carries credentials is refused: passwords come from SSM.
func ParseEndpoints(entries []string) ([]Endpoint, error) {
	var out []Endpoint
	seen := map[ID]bool{}
	for _, e := range entries {
		rawID, raw, ok := strings.Cut(e, "=")
		rawID, raw = strings.TrimSpace(rawID), strings.TrimSpace(raw)
		if !ok {
			return nil, fmt.Errorf("%q: want <gateway-id>=<http base URL>", e)
		}
		id, err := Parse(rawID)
		if err != nil {
			return nil, fmt.Errorf("%q: want <gateway-id>=<http base URL>: %w", e, err)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("gateway %s: not an http(s)://host[:port] URL", id)
		}
		if u.User != nil {
			return nil, fmt.Errorf("gateway %s: the URL must not carry credentials (the password comes from SSM)", id)
		}
		if seen[id] {
			return nil, fmt.Errorf("gateway %s listed twice", id)
		}
		seen[id] = true
		out = append(out, Endpoint{ID: id, URL: raw})
	}
	return out, nil
}
