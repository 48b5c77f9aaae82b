package redact_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"mediagw/pkg/redact"
)

const secret = `p<a&s>s"w'o/r d\+é€😀`

// encode lists, independently of the package, the encodings a secret
// can take on its way into a string.
func encode(s string) map[string]string {
	jsonOf := func(s string, escapeHTML bool) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(escapeHTML)
		if err := enc.Encode(s); err != nil {
			panic(err)
		}
		out := strings.TrimSpace(b.String())
		return out[1 : len(out)-1]
	}
	var x bytes.Buffer
	_ = xml.EscapeText(&x, []byte(s))
	fmtQ := fmt.Sprintf("%q", s)
	fmtPlusQ := fmt.Sprintf("%+q", s)
	return map[string]string{
		"plain":              s,
		"json":               jsonOf(s, true),
		"json no html":       jsonOf(s, false),
		"json twice":         jsonOf(jsonOf(s, true), true),
		"json slash":         strings.ReplaceAll(jsonOf(s, true), "/", `\/`),
		"query":              url.QueryEscape(s),
		"path":               url.PathEscape(s),
		"url values":         url.Values{"p": {s}}.Encode()[2:],
		"xml":                x.String(),
		"html":               html.EscapeString(s),
		"%q":                 fmtQ[1 : len(fmtQ)-1],
		"%+q":                fmtPlusQ[1 : len(fmtPlusQ)-1],
		"%x":                 fmt.Sprintf("%x", s),
		"%X":                 fmt.Sprintf("%X", s),
		"hex":                hex.EncodeToString([]byte(s)),
		"base64":             base64.StdEncoding.EncodeToString([]byte(s)),
		"base64 url":         base64.URLEncoding.EncodeToString([]byte(s)),
		"base64 raw":         base64.RawStdEncoding.EncodeToString([]byte(s)),
		"base64 raw url":     base64.RawURLEncoding.EncodeToString([]byte(s)),
		"basic header":       base64.StdEncoding.EncodeToString([]byte("admin:" + s)),
		"basic header raw":   base64.RawURLEncoding.EncodeToString([]byte("ad:" + s + "!")),
		"embedded at 1 byte": base64.StdEncoding.EncodeToString([]byte("x" + s + "yz")),
	}
}

func TestEveryEncodingIsRedacted(t *testing.T) {
	s := redact.New()
	s.Add(secret)
	for name, enc := range encode(secret) {
		text := "before " + enc + " after"
		got := s.String(text)
		if got != "before "+redact.Placeholder+" after" {
			t.Errorf("%s: String(%q) = %q", name, text, got)
		}
		assertClean(t, name, got, secret)
	}
}

func TestJSONEscapedPasswordInAReason(t *testing.T) {
	// The case: a password with < and & echoed by the gateway in
	// a JSON body, then quoted in an error.
	const pw = "Tr1<ky&Pass"
	s := redact.New()
	s.Add(pw)
	body, _ := json.Marshal(map[string]string{"password": pw})
	reason := fmt.Sprintf("gateway said: %s (%q)", body, body)
	got := s.String(reason)
	if strings.Contains(got, `\u003c`) || strings.Contains(got, "Tr1") || strings.Count(got, redact.Placeholder) != 2 {
		t.Fatalf("String(%q) = %q", reason, got)
	}
}

func TestOtherTextIsKept(t *testing.T) {
	s := redact.New()
	s.Add("Very-Secret-42")
	for _, text := range []string{
		"", "login failed", "HTTP 401", "Basic YWRtaW46b3RoZXI=", "gw-1 admin " + redact.Placeholder,
		"Very-Secret-4", "very-secret-42",
	} {
		if got := s.String(text); got != text {
			t.Errorf("String(%q) = %q", text, got)
		}
	}
	if got := s.String("a Very-Secret-42 b Very-Secret-42Very-Secret-42"); got != "a [redacted] b [redacted]" {
		t.Errorf("repeated: %q", got)
	}
}

func TestBase64RunAroundTheSecretGoes(t *testing.T) {
	s := redact.New()
	s.Add("hunter22")
	for _, prefix := range []string{"admin:", "a:", "root:", ""} {
		enc := base64.StdEncoding.EncodeToString([]byte(prefix + "hunter22"))
		text := "Authorization: Basic " + enc + "\r\nHost: x"
		if got := s.String(text); got != "Authorization: Basic [redacted]\r\nHost: x" {
			t.Errorf("prefix %q: %q", prefix, got)
		}
	}
	// The run stops at what is not base64, and takes the padding.
	enc := base64.StdEncoding.EncodeToString([]byte("admin:hunter2"))
	if !strings.HasSuffix(enc, "=") {
		t.Fatalf("test needs padding: %s", enc)
	}
	s.Add("hunter2")
	if got := s.String("token=" + enc + ";next"); got != "token=[redacted];next" {
		t.Errorf("run: %q", got)
	}
}

func TestShortSecrets(t *testing.T) {
	s := redact.New()
	s.Add("ab1")
	if got := s.String("tab1e ab1"); got != "tab1e ab1" {
		t.Errorf("a short secret inside a text: %q", got)
	}
	for _, text := range []string{"ab1", "YWIx", "616231"} {
		if got := s.String(text); got != redact.Placeholder {
			t.Errorf("a short secret as the whole text %q: %q", text, got)
		}
	}
	s.Add("")
	if s.Len() != 1 {
		t.Errorf("Len = %d, want 1 (the empty secret is not one)", s.Len())
	}
}

func TestPlaceholderCannotSpellTheSecret(t *testing.T) {
	for _, sec := range []string{"d]ab", "[red", "acted]", "]]]]", "dacted][re"} {
		s := redact.New()
		s.Add(sec)
		for _, text := range []string{sec + "ab", "x" + sec + sec + "d]", "[redacted]", sec + "[redacted]" + sec} {
			got := s.String(text)
			assertClean(t, sec, got, sec)
		}
	}
}

func TestNilRegistry(t *testing.T) {
	var s *redact.Secrets
	s.Add("whatever")
	err := errors.New("x")
	if s.String("whatever") != "whatever" || s.Error(err) != err || s.Len() != 0 {
		t.Fatal("a nil registry changed something")
	}
	h := slog.NewTextHandler(&bytes.Buffer{}, nil)
	if s.Handler(h) != h {
		t.Fatal("a nil registry wrapped the handler")
	}
}

type typedNil struct{ msg *string }

func (e *typedNil) Error() string { return *e.msg }

func TestError(t *testing.T) {
	s := redact.New()
	s.Add("S3cr3t-pw")
	base := &fs.PathError{Op: "open", Path: "/tmp/S3cr3t-pw", Err: fs.ErrNotExist}
	err := fmt.Errorf("reading: %w", base)
	red := s.Error(err)
	if red.Error() != "reading: open /tmp/[redacted]: file does not exist" {
		t.Errorf("Error() = %q", red.Error())
	}
	var pe *fs.PathError
	if !errors.Is(red, fs.ErrNotExist) || !errors.As(red, &pe) || pe != base {
		t.Errorf("errors.Is/As lost: %v", red)
	}
	clean := errors.New("nothing to hide")
	if s.Error(clean) != clean {
		t.Error("an error without secrets was replaced")
	}
	if s.Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
	var tn *typedNil
	got := s.Error(tn)
	if text := fmt.Sprint(got); strings.Contains(text, "%!") || !errors.Is(got, tn) {
		t.Errorf("typed nil: %q", text)
	}
}

type stringer struct{ pw string }

func (s stringer) String() string { return "user:" + s.pw }

type valuer struct{ pw string }

func (v valuer) LogValue() slog.Value { return slog.StringValue("pw=" + v.pw) }

func TestHandler(t *testing.T) {
	const pw = "Log<Secret&1"
	for _, mk := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	} {
		var buf bytes.Buffer
		s := redact.New()
		s.Add(pw)
		log := slog.New(s.Handler(mk(&buf))).With("with", "x "+pw).WithGroup("g")
		log.Info("message "+pw,
			"str", pw,
			"err", fmt.Errorf("wrapped: %w", errors.New("inner "+pw)),
			"stringer", stringer{pw},
			"map", map[string]string{"k": pw},
			"valuer", valuer{pw},
			"group", slog.GroupValue(slog.String("in", pw), slog.Int("n", 3)),
			"n", 42,
			pw, "as a key",
		)
		out := buf.String()
		assertClean(t, "log line", out, pw)
		for _, want := range []string{"42", "message [redacted]", "wrapped: inner [redacted]", "user:[redacted]"} {
			if !strings.Contains(out, want) {
				t.Errorf("log line lacks %q: %s", want, out)
			}
		}
	}
}

func TestConcurrentAddAndUse(t *testing.T) {
	s := redact.New()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() { defer wg.Done(); s.Add(fmt.Sprintf("secret-%04d", i)) }()
		go func() { defer wg.Done(); _ = s.String("secret-0001 secret-0002") }()
	}
	wg.Wait()
	if got := s.String("secret-0003 secret-0007"); got != "[redacted] [redacted]" || s.Len() != 8 {
		t.Fatalf("after concurrent adds: %q (%d)", got, s.Len())
	}
}

// assertClean fails when out still holds sec in any encoding, including
// inside a base64 run at any alignment.
func assertClean(t *testing.T, name, out, sec string) {
	t.Helper()
	if len(sec) < redact.MinLen {
		return
	}
	for encName, enc := range encode(sec) {
		if strings.Contains(out, enc) {
			t.Errorf("%s: output holds the %s encoding %q: %q", name, encName, enc, out)
		}
	}
	for _, run := range base64Runs(out) {
		for off := range 4 {
			if off >= len(run) {
				break
			}
			for _, alpha := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				r := strings.TrimRight(run[off:], "=")
				r = r[:len(r)-len(r)%4]
				if b, err := alpha.DecodeString(r); err == nil && bytes.Contains(b, []byte(sec)) {
					t.Errorf("%s: output holds the secret in base64: %q", name, out)
				}
			}
		}
	}
}

func base64Runs(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("+/-_=", r))
	})
}

func FuzzString(f *testing.F) {
	f.Add(secret, "x", "y", "")
	f.Add("d]ab", "[redacted", "ab", "admin:")
	f.Add("hunter22", "Basic ", "", "a:")
	f.Fuzz(func(t *testing.T, sec, before, after, b64prefix string) {
		if len(sec) < redact.MinLen || len(sec) > 64 {
			return
		}
		s := redact.New()
		s.Add(sec)
		var text strings.Builder
		text.WriteString(before)
		for _, enc := range encode(sec) {
			text.WriteString(enc)
			text.WriteString(after)
		}
		text.WriteString(base64.StdEncoding.EncodeToString([]byte(b64prefix + sec + after)))
		out := s.String(text.String())
		assertClean(t, "fuzz", out, sec)
		if again := s.String(out); again != out {
			t.Fatalf("not idempotent: %q -> %q", out, again)
		}
	})
}
