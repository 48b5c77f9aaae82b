// Package redact keeps secrets (passwords) out of every string mediagw
// produces: log lines, error texts, event reasons. It is the one choke
// point for that. A process makes one Secrets registry in its wiring (a
// service gets it from service.Runtime.Secrets), registers each secret as
// it reads it, and every text that leaves the process passes through the
// registry: log records through Handler, errors that reach events through
// Error, other texts through String.
//
// A registered secret is found in every encoding it can take on its way
// into a string:
//   - as is;
//   - JSON-escaped: Go's encoding/json with and without HTML escaping
//     (\u003c, \u0026), with every non-ASCII character as \uXXXX (lower- or
//     upper-case hex), with "/" as "\/", and escaped twice (a JSON text
//     inside a JSON string);
//   - URL-escaped: query (url.QueryEscape, space as "+") and path
//     (url.PathEscape), with upper- or lower-case hex;
//   - XML/HTML-escaped: encoding/xml, html.EscapeString, named (&quot;
//     &apos;) or no escaping of quotes;
//   - Go-quoted: strconv.Quote (fmt's %q) and strconv.QuoteToASCII (%+q);
//   - hexadecimal (fmt's %x and %X);
//   - base64, standard and URL alphabets, padded or not, also when the
//     secret is part of a longer base64 text such as the credentials of an
//     HTTP Basic header, base64("admin:"+secret). There the bytes of the
//     secret start at one of three alignments; at each, the characters that
//     depend only on the secret are a fixed "core", and a core found in a
//     text makes the whole run of base64 characters around it go.
//
// What is found is replaced by Placeholder. In the rare case where the
// placeholder and the text around it spell a secret again, that text is
// cut out instead, so that String's result never contains one.
//
// Secrets shorter than MinLen bytes are not searched for inside texts:
// they would blank out ordinary words and numbers. A text that is exactly
// such a secret (or one of its encodings) is still replaced. The gateway
// refuses passwords shorter than 8 characters, so this concerns only
// secrets that are wrong anyway.
//
// Encodings this package does not know (base64 broken into lines,
// encodings of encodings beyond the ones above, a secret cut in two) are
// not found: the first defence stays not to put secrets into texts.
package redact

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Placeholder replaces every secret found.
const Placeholder = "[redacted]"

// MinLen is the shortest secret searched for inside texts (see the package
// documentation).
const MinLen = 4

// Secrets is a registry of secrets. The zero value is not usable: make one
// with New. It is safe for concurrent use; a nil *Secrets redacts nothing.
type Secrets struct {
	mu   sync.Mutex
	seen map[string]struct{}
	m    atomic.Pointer[matcher]
}

// New returns an empty registry.
func New() *Secrets {
	s := &Secrets{seen: map[string]struct{}{}}
	s.m.Store(&matcher{})
	return s
}

// Add registers secrets; from now on every String, Error and log record
// redacts them. Adding the same secret twice, or an empty one, does
// nothing. Secrets stay registered for the life of the registry: an old
// password is still worth hiding. On a nil registry Add does nothing.
func (s *Secrets) Add(secrets ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.m.Load()
	next := &matcher{exact: old.exact, cores: old.cores, whole: old.whole}
	changed := false
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		if _, dup := s.seen[sec]; dup {
			continue
		}
		s.seen[sec] = struct{}{}
		changed = true
		next = next.with(sec)
	}
	if changed {
		s.m.Store(next)
	}
}

// Len is the number of secrets registered.
func (s *Secrets) Len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// String returns text with every registered secret, in every encoding
// this package knows, replaced by Placeholder.
func (s *Secrets) String(text string) string {
	if s == nil || text == "" {
		return text
	}
	return s.m.Load().redact(text)
}

// Error returns err unchanged when its text contains no secret, and
// otherwise an error whose Error() is the redacted text and which unwraps
// to err, so errors.Is and errors.As still see err and everything it
// wraps. An error whose Error method panics (a typed nil, say) is replaced
// by one saying so, still unwrapping to it. Error(nil) is nil.
func (s *Secrets) Error(err error) error {
	if err == nil {
		return nil
	}
	text, ok := errorText(err)
	if !ok {
		return &redactedError{text: text, err: err}
	}
	if red := s.String(text); red != text {
		return &redactedError{text: red, err: err}
	}
	return err
}

// errorText calls err.Error(), surviving a panic in it.
func errorText(err error) (text string, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			text, ok = fmt.Sprintf("%T (its Error method panicked)", err), false
		}
	}()
	return err.Error(), true
}

type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// Handler wraps h so that every record's message, every string attribute,
// every error attribute (as its redacted text) and any other value whose
// JSON or text form holds a secret (as its redacted text) is redacted
// before h sees it; attributes added with WithAttrs too. A nil registry
// returns h.
func (s *Secrets) Handler(h slog.Handler) slog.Handler {
	if s == nil {
		return h
	}
	return &handler{s: s, h: h}
}

type handler struct {
	s *Secrets
	h slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if h.s.m.Load().empty() {
		return h.h.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, h.s.String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.s.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.s.attr(a)
	}
	return &handler{s: h.s, h: h.h.WithAttrs(red)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{s: h.s, h: h.h.WithGroup(h.s.String(name))}
}

// attr redacts one attribute. Attributes added by WithAttrs are redacted
// with the secrets known then; that is why secrets should be registered
// before loggers carrying them are derived.
func (s *Secrets) attr(a slog.Attr) slog.Attr {
	a.Key = s.String(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(s.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = s.attr(ga)
		}
		a.Value = slog.GroupValue(toAttrs(red)...)
	case slog.KindAny:
		a.Value = s.anyValue(v)
	default:
		a.Value = v
	}
	return a
}

func toAttrs(as []any) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = a.(slog.Attr)
	}
	return out
}

// anyValue redacts a value of any type: an error becomes its redacted
// text (what the JSON and text handlers would print, minus secrets); any
// other value is kept as is unless its JSON or fmt form holds a secret,
// then it becomes that form, redacted.
func (s *Secrets) anyValue(v slog.Value) slog.Value {
	x := v.Any()
	if err, ok := x.(error); ok {
		text, _ := errorText(err)
		return slog.StringValue(s.String(text))
	}
	forms := []string{safeSprint(x)}
	if b, err := json.Marshal(x); err == nil {
		forms = append(forms, string(b))
	}
	for _, f := range forms {
		if red := s.String(f); red != f {
			return slog.StringValue(s.String(forms[0]))
		}
	}
	return v
}

func safeSprint(x any) (out string) {
	defer func() {
		if r := recover(); r != nil {
			out = fmt.Sprintf("%T (unprintable)", x)
		}
	}()
	return fmt.Sprintf("%+v", x)
}

// matcher is an immutable set of patterns; Add swaps in a new one.
type matcher struct {
	exact []string            // replaced where found, longest first
	cores []string            // base64 cores: the base64 run around them is replaced
	whole map[string]struct{} // short secrets: replaced only as the whole text
}

func (m *matcher) empty() bool {
	return len(m.exact) == 0 && len(m.cores) == 0 && len(m.whole) == 0
}

// with returns a matcher that also finds sec.
func (m *matcher) with(sec string) *matcher {
	next := &matcher{exact: m.exact, cores: m.cores, whole: m.whole}
	encs := encodings(sec)
	if len(sec) < MinLen {
		w := make(map[string]struct{}, len(m.whole)+len(encs))
		for k := range m.whole {
			w[k] = struct{}{}
		}
		for _, e := range encs {
			w[e] = struct{}{}
		}
		next.whole = w
		return next
	}
	next.exact = dedupe(append(append([]string(nil), m.exact...), encs...))
	next.cores = dedupe(append(append([]string(nil), m.cores...), base64Cores(sec)...))
	return next
}

func dedupe(ss []string) []string {
	seen := make(map[string]struct{}, len(ss))
	out := ss[:0]
	for _, s := range ss {
		if _, dup := seen[s]; dup || s == "" {
			continue
		}
		seen[s] = struct{}{}
		out = append(out, s)
	}
	// Longest first only matters for readability of the intervals; the
	// merge below makes the result independent of the order.
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

type span struct{ from, to int }

// find returns the spans of text to replace, merged and sorted.
func (m *matcher) find(text string) []span {
	var spans []span
	for _, p := range m.exact {
		for i := 0; i+len(p) <= len(text); {
			j := strings.Index(text[i:], p)
			if j < 0 {
				break
			}
			spans = append(spans, span{i + j, i + j + len(p)})
			i += j + 1
		}
	}
	for _, c := range m.cores {
		for i := 0; i+len(c) <= len(text); {
			j := strings.Index(text[i:], c)
			if j < 0 {
				break
			}
			run := base64Run(text, i+j, i+j+len(c))
			spans = append(spans, run)
			i = run.to // the whole run goes: nothing in it needs looking at again
		}
	}
	if len(spans) == 0 {
		return nil
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
	merged := spans[:1]
	for _, sp := range spans[1:] {
		last := &merged[len(merged)-1]
		if sp.from <= last.to { // overlapping or touching
			last.to = max(last.to, sp.to)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

func replace(text string, spans []span, with string) string {
	var b strings.Builder
	b.Grow(len(text))
	prev := 0
	for _, sp := range spans {
		b.WriteString(text[prev:sp.from])
		b.WriteString(with)
		prev = sp.to
	}
	b.WriteString(text[prev:])
	return b.String()
}

func (m *matcher) redact(text string) string {
	if _, ok := m.whole[text]; ok {
		return Placeholder
	}
	spans := m.find(text)
	if spans == nil {
		return text
	}
	out := replace(text, spans, Placeholder)
	// The placeholder and its neighbours may spell a secret again (a
	// secret such as "d]ab" before "ab"). A few more rounds settle the
	// ordinary cases; past them, what is found is cut out, which ends
	// because every round shortens the text.
	for round := 0; ; round++ {
		spans = m.find(out)
		if spans == nil {
			return out
		}
		with := Placeholder
		if round >= 2 {
			with = ""
		}
		out = replace(out, spans, with)
	}
}
