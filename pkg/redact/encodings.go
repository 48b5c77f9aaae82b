package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// encodings lists the forms of sec this package searches for (see the
// package documentation), sec itself first.
func encodings(sec string) []string {
	jsonHTML, jsonPlain := jsonEscape(sec, true), jsonEscape(sec, false)
	out := []string{
		sec,
		jsonHTML, jsonPlain,
		strings.ReplaceAll(jsonHTML, "/", `\/`), strings.ReplaceAll(jsonPlain, "/", `\/`),
		jsonASCII(sec, true, false), jsonASCII(sec, true, true),
		jsonASCII(sec, false, false), jsonASCII(sec, false, true),
		jsonEscape(jsonHTML, true), jsonEscape(jsonPlain, false),
		url.QueryEscape(sec), lowerHexEscapes(url.QueryEscape(sec)),
		url.PathEscape(sec), lowerHexEscapes(url.PathEscape(sec)),
		xmlEscape(sec), html.EscapeString(sec),
		markupEscape(sec, "&quot;", "&apos;"), markupEscape(sec, `"`, "'"),
		quoteInner(strconv.Quote(sec)), quoteInner(strconv.QuoteToASCII(sec)),
		hex.EncodeToString([]byte(sec)), strings.ToUpper(hex.EncodeToString([]byte(sec))),
		base64.StdEncoding.EncodeToString([]byte(sec)), base64.URLEncoding.EncodeToString([]byte(sec)),
		base64.RawStdEncoding.EncodeToString([]byte(sec)), base64.RawURLEncoding.EncodeToString([]byte(sec)),
	}
	return dedupe(out)
}

// jsonEscape is s as encoding/json writes it inside a string, without the
// quotes.
func jsonEscape(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(s) // a string always encodes
	out := strings.TrimSuffix(b.String(), "\n")
	return out[1 : len(out)-1]
}

// jsonASCII is s JSON-escaped with every non-ASCII character as \uXXXX
// (UTF-16 surrogate pairs beyond the basic plane), as Python's json.dumps
// and many other encoders write it.
func jsonASCII(s string, escapeHTML, upper bool) string {
	hexFmt := `\u%04x`
	if upper {
		hexFmt = `\u%04X`
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20, escapeHTML && (r == '<' || r == '>' || r == '&'):
			fmt.Fprintf(&b, hexFmt, r)
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, hexFmt+hexFmt, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&b, hexFmt, r)
		}
	}
	return b.String()
}

// lowerHexEscapes writes the %XX escapes of s in lower case.
func lowerHexEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s)) // a bytes.Buffer does not fail
	return b.String()
}

// markupEscape escapes <, > and &, and the quotes as given.
func markupEscape(s, dq, sq string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, dq, "'", sq).Replace(s)
}

func quoteInner(q string) string { return q[1 : len(q)-1] }

// base64Cores returns, for each of the three alignments the secret's first
// byte can have inside a longer base64 text, the characters of the
// encoding that depend on the secret's bytes only, in both alphabets.
// Character i of an encoding covers bits [6i, 6i+6) of the input; with k
// bytes before the secret, those bits lie within the secret for
// ceil(8k/6) <= i < floor(8(k+n)/6).
func base64Cores(sec string) []string {
	var out []string
	n := len(sec)
	for k := range 3 {
		in := append(make([]byte, k), sec...)
		enc := base64.StdEncoding.EncodeToString(in)
		from, to := (8*k+5)/6, 8*(k+n)/6
		if to-from < MinLen {
			continue
		}
		core := enc[from:to]
		out = append(out, core, strings.NewReplacer("+", "-", "/", "_").Replace(core))
	}
	return out
}

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_'
}

// base64Run widens [from, to) to the run of base64 characters around it
// (either alphabet), with its trailing padding.
func base64Run(text string, from, to int) span {
	for from > 0 && isBase64Char(text[from-1]) {
		from--
	}
	for to < len(text) && isBase64Char(text[to]) {
		to++
	}
	for pad := 0; pad < 2 && to < len(text) && text[to] == '='; pad++ {
		to++
	}
	return span{from, to}
}
