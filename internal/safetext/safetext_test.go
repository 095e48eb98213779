package safetext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"sshd", "sshd"},
		{"", ""},
		{"kworker/0:1-events", "kworker/0:1-events"},
		// The attack: invalid UTF-8, a terminal escape, a newline.
		{"\xff\xfe\x1b[2J\n", `\xff\xfe\x1b[2J\x0a`},
		{`a\b`, `a\\b`},
		{`\x41`, `\\x41`}, // a literal backslash-x stays distinguishable
		{"tab\there\r", `tab\x09here\x0d`},
		{"del\x7f", `del\x7f`},
		{"csi\u009b31m", `csi\xc2\x9b31m`},     // C1 CSI, valid UTF-8
		{"rlo\u202etxt", `rlo\xe2\x80\xaetxt`}, // bidi override
		{"café 🐳", "café 🐳"},                   // printable UTF-8 kept
		{"cut\xe2\x82", `cut\xe2\x82`},         // a rune cut at 15 bytes
		{"\x00", `\x00`},
	} {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := Bytes([]byte(tt.in)); got != tt.want {
			t.Errorf("Bytes(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := string(Append([]byte("x"), tt.in)); got != "x"+tt.want {
			t.Errorf("Append(%q) = %q", tt.in, got)
		}
		if back, ok := Unescape(tt.want); !ok || back != tt.in {
			t.Errorf("Unescape(%q) = %q, %v; want %q", tt.want, back, ok, tt.in)
		}
	}
}

func TestEscapeDoesNotAllocateForASCII(t *testing.T) {
	s := "nginx: worker"
	b := []byte("nginx")
	if n := testing.AllocsPerRun(100, func() { _ = Escape(s) }); n != 0 {
		t.Errorf("Escape of ASCII: %v allocations", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Bytes(b) }); n > 1 {
		t.Errorf("Bytes of ASCII: %v allocations; want the string's only", n)
	}
}

func TestFit(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"python3", 12, "python3"},
		{"0123456789abcdef", 12, "0123456789ab"},
		{`\xff\xfe\x1b[2J\x0a`, 12, `\xff\xfe\x1b`},
		{`ab\xff\xfe\x1b`, 12, `ab\xff\xfe`},
		{`abcdefghij\\z`, 12, `abcdefghij\\`},
		{`abcdefghijk\\`, 12, `abcdefghijk`},
		{"café 🐳 whale!", 7, "café 🐳 "},
	} {
		if got := Fit(tt.in, tt.n); got != tt.want {
			t.Errorf("Fit(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"sshd", "\xff\xfe\x1b[2J\n", `a\b`, "\u009b", "\u2066x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if !utf8.ValidString(e) {
			t.Fatalf("Escape(%q) = %q: not UTF-8", s, e)
		}
		for _, r := range e {
			if unsafeRune(r) {
				t.Fatalf("Escape(%q) = %q keeps %U", s, e, r)
			}
		}
		if back, ok := Unescape(e); !ok || back != s {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", s, back, ok)
		}
		if f := Fit(e, 12); !strings.HasPrefix(e, f) {
			t.Fatalf("Fit(%q) = %q", e, f)
		}
	})
}
