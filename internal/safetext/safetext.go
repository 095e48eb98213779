// Package safetext makes text that comes from the kernel or /proc (a
// thread's comm, an interface name, a host name) safe to put in an Avro
// string, a JSON string and a terminal, without losing any of it.
//
// Anyone can set their own comm to any 15 bytes (prctl PR_SET_NAME), so a
// comm may be invalid UTF-8, which Avro strings must not be (consumers fail
// to decode the message), or carry escape sequences and newlines that move a
// terminal's cursor or split a table row. Escape is the one place that turns
// such bytes into text; everything that takes text from the kernel or /proc
// into a record or a table goes through it.
//
// The rule, lossless and reversible by Unescape:
//
//   - a backslash becomes two backslashes (`\\`);
//   - each byte that is not part of valid UTF-8 becomes `\xNN` (two
//     lowercase hex digits);
//   - so does each byte of a control character: C0 (U+0000–U+001F), DEL
//     (U+007F) and C1 (U+0080–U+009F, which some terminals obey as ESC
//     sequences), and of the Unicode line and paragraph separators and
//     bidirectional overrides and isolates (U+2028–U+202E, U+2066–U+2069),
//     which reorder or break what a terminal shows;
//   - every other byte is kept.
//
// Text of printable ASCII without a backslash, nearly every comm, is
// returned as it is, without allocating.
package safetext

import (
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Escape returns s with the bytes the package rule names escaped; s itself
// when nothing needs to be.
func Escape(s string) string {
	i := cleanPrefix(s)
	if i == len(s) {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	return string(appendEscaped(b, s[i:]))
}

// Bytes is Escape of string(b), with one allocation (the string's) when
// nothing needs escaping.
func Bytes(b []byte) string {
	i := cleanPrefixBytes(b)
	if i == len(b) {
		return string(b)
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	return string(appendEscaped(out, string(b[i:])))
}

// Append appends the escaped form of s to dst.
func Append(dst []byte, s string) []byte {
	i := cleanPrefix(s)
	dst = append(dst, s[:i]...)
	return appendEscaped(dst, s[i:])
}

// cleanPrefix is the length of the leading printable ASCII of s, backslash
// excluded: the part the slow path need not look at.
func cleanPrefix(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return i
		}
	}
	return len(s)
}

func cleanPrefixBytes(b []byte) int {
	for i, c := range b {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return i
		}
	}
	return len(b)
}

func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			if c == '\\' {
				b = append(b, '\\', '\\')
			} else {
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
			for j := i; j < i+size; j++ {
				b = append(b, '\\', 'x', hexDigits[s[j]>>4], hexDigits[s[j]&0xf])
			}
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// unsafeRune reports the characters a terminal acts on or reorders by.
func unsafeRune(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r <= 0x9f) ||
		(r >= 0x2028 && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// Unescape reverses Escape: `\\` to a backslash, `\xNN` to byte NN. It
// reports false for text Escape cannot have made.
func Unescape(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b = append(b, s[i])
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			b = append(b, '\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x' && isHex(s[i+2]) && isHex(s[i+3]):
			b = append(b, unhex(s[i+2])<<4|unhex(s[i+3]))
			i += 3
		default:
			return "", false
		}
	}
	return string(b), true
}

func isHex(c byte) bool { return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// Fit cuts escaped text to at most n characters for a fixed-width column,
// never inside an escape (a cut `\x1` would read as other bytes).
func Fit(s string, n int) string {
	chars := 0
	for i := 0; i < len(s); {
		size := 1
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == 'x':
			size = 4
		case s[i] == '\\':
			size = 2
		case s[i] >= utf8.RuneSelf:
			_, size = utf8.DecodeRuneInString(s[i:])
			if chars+1 > n {
				return s[:i]
			}
			chars++
			i += size
			continue
		}
		size = min(size, len(s)-i)
		if chars+size > n {
			return s[:i]
		}
		chars += size
		i += size
	}
	return s
}
