package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Password limits the gateway enforces or rates: longer than 16 is refused,
// a single character class or the user name inside is "risky".
const (
	MinPasswordLen = 8
	MaxPasswordLen = 16
	MinCharClasses = 2
)

// ErrWeakPassword is wrapped by every password policy violation. Messages
// describe the rule broken, never the password.
var ErrWeakPassword = errors.New("password policy")

// CheckPassword rejects a desired password the gateway would refuse or rate
// weak, before anything is sent to the gateway: 8–16 printable ASCII
// characters without spaces, at least two of lower case, upper case, digits
// and symbols, and not containing the user name.
func CheckPassword(pw Secret, user string) error {
	v := pw.Reveal()
	if n := len(v); n < MinPasswordLen || n > MaxPasswordLen {
		return fmt.Errorf("%w: the password has %d characters; the gateway needs %d to %d", ErrWeakPassword, n, MinPasswordLen, MaxPasswordLen)
	}
	var lower, upper, digit, symbol bool
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= '0' && c <= '9':
			digit = true
		case c > ' ' && c < 0x7f:
			symbol = true
		default:
			return fmt.Errorf("%w: character %d of the password is a space, a control character or not ASCII", ErrWeakPassword, i+1)
		}
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, symbol} {
		if b {
			classes++
		}
	}
	if classes < MinCharClasses {
		return fmt.Errorf("%w: the password uses %d character class; mix at least %d of lower case, upper case, digits and symbols", ErrWeakPassword, classes, MinCharClasses)
	}
	if user != "" && strings.Contains(strings.ToLower(v), strings.ToLower(user)) {
		return fmt.Errorf("%w: the password contains the user name %q", ErrWeakPassword, user)
	}
	return nil
}
