package domain

import (
	"fmt"
	"log/slog"

	"mediagw/pkg/redact"
)

// Secret holds a password. Every way of printing it (fmt verbs, slog,
// JSON) shows a placeholder, so a Secret that ends up in a log line or an
// error message by mistake does not leak; only Reveal gives the value.
type Secret struct{ value string }

// NewSecret wraps a password.
func NewSecret(s string) Secret { return Secret{value: s} }

// Reveal returns the password, for the one call that must send it.
func (s Secret) Reveal() string { return s.value }

// IsZero reports an empty secret.
func (s Secret) IsZero() bool { return s.value == "" }

// Equal compares two secrets.
func (s Secret) Equal(o Secret) bool { return s.value == o.value }

const redacted = redact.Placeholder

// String never shows the value.
func (s Secret) String() string { return redacted }

// GoString never shows the value.
func (s Secret) GoString() string { return "domain.Secret{" + redacted + "}" }

// Format covers every fmt verb (%v, %+v, %#v, %s, %q, %x...).
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", redacted)
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// LogValue keeps the value out of slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON keeps the value out of JSON.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText keeps the value out of text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Redact replaces the secrets in text, in every encoding pkg/redact knows
// (plain, JSON-, URL-, XML-escaped, Go-quoted, hex, base64 also inside a
// longer base64 text); the last line of defence for messages built from a
// gateway's or AWS's own words. Secrets shorter than redact.MinLen are
// replaced only when they are the whole text: they would blank out
// ordinary words, and the password policy forbids them anyway.
func Redact(text string, secrets ...Secret) string {
	r := redact.New()
	for _, s := range secrets {
		r.Add(s.value)
	}
	return r.String(text)
}
