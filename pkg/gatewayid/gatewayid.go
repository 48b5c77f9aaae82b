// Package gatewayid is the one definition of a gateway id: the name a
// gateway has in events, tables, SSM parameter paths
// (<root>/gateways/<id>/Password) and S3 keys. Every service validates it
// here, so an id one service accepts is accepted by all; the GATEWAYS
// setting (id=URL entries) is read here for the same reason.
package gatewayid

import (
	"fmt"
	"regexp"
)

// ID is a validated gateway id.
type ID string

// MaxLen is the longest id accepted.
const MaxLen = 128

// SSM parameter names allow only [a-zA-Z0-9_.-] in a path segment, so ':'
// and '/' are refused here rather than by AWS half-way through a run.
var pattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// Parse validates s as a gateway id.
func Parse(s string) (ID, error) {
	if !pattern.MatchString(s) {
		return "", fmt.Errorf("gateway id %q: want 1 to %d letters, digits, '.', '_' or '-', starting with a letter or digit", s, MaxLen)
	}
	return ID(s), nil
}

// Valid reports whether s is a gateway id.
func Valid(s string) bool { return pattern.MatchString(s) }

// String returns the id.
func (id ID) String() string { return string(id) }
