// Package docs holds bindwatch's documentation pages. Its test keeps their
// links working: every relative link in README.md and docs/*.md must name a
// file that exists and, into a Markdown file, a heading (or an explicit
// anchor) that exists there.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

var (
	// [text](target) or [text](target "title"); images too.
	linkRE = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// [label]: target
	refRE     = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$`)
	headingRE = regexp.MustCompile(`^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
	anchorRE  = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	codeRE    = regexp.MustCompile("``(?:[^`]|`[^`])+?``|`(?:[^`\\n]|\\n[^`\\n])*`")
)

// pages are the Markdown files the test reads, relative to this directory.
func pages(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join("..", "README.md")}, files...)
}

// TestRelativeLinks fails on a relative link to a missing file or to a
// missing #anchor, in README.md and every docs/*.md.
func TestRelativeLinks(t *testing.T) {
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		a := Anchors(string(b))
		anchors[path] = a
		return a, nil
	}
	checked := 0
	for _, page := range pages(t) {
		b, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range Links(string(b)) {
			target := l.Target
			if isExternal(target) {
				continue
			}
			checked++
			file, frag, _ := strings.Cut(target, "#")
			path := page
			if file != "" {
				path = filepath.Join(filepath.Dir(page), filepath.FromSlash(file))
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s:%d: link %q: no file %s", page, l.Line, target, path)
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(path, ".md") {
				continue
			}
			a, err := anchorsOf(path)
			if err != nil {
				t.Errorf("%s:%d: link %q: %v", page, l.Line, target, err)
				continue
			}
			if !a[frag] {
				t.Errorf("%s:%d: link %q: %s has no heading or anchor #%s", page, l.Line, target, path, frag)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found: is the test reading the right files?")
	}
}

func isExternal(target string) bool {
	for _, p := range []string{"http://", "https://", "mailto:", "//"} {
		if strings.HasPrefix(target, p) {
			return true
		}
	}
	return false
}

// Link is a link's target and the line it is on.
type Link struct {
	Target string
	Line   int
}

// Links returns the links of a Markdown text, outside fenced code blocks and
// code spans (which may run over a line break, not over a blank line).
func Links(text string) []Link {
	lines := strings.Split(text, "\n")
	fence := ""
	for i, line := range lines {
		if f := fenceOf(line); f != "" {
			if fence == "" {
				fence = f
			} else if strings.HasPrefix(f, fence) {
				fence = ""
			}
			lines[i] = ""
			continue
		}
		if fence != "" {
			lines[i] = ""
		}
	}
	// Blank out code spans, keeping their line breaks so line numbers hold.
	text = codeRE.ReplaceAllStringFunc(strings.Join(lines, "\n"), func(span string) string {
		return strings.Repeat("\n", strings.Count(span, "\n"))
	})
	var links []Link
	for i, line := range strings.Split(text, "\n") {
		for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
			links = append(links, Link{m[1], i + 1})
		}
		for _, m := range refRE.FindAllStringSubmatch(line, -1) {
			links = append(links, Link{m[1], i + 1})
		}
	}
	return links
}

func fenceOf(line string) string {
	s := strings.TrimLeft(line, " ")
	if len(line)-len(s) > 3 {
		return ""
	}
	for _, c := range []string{"```", "~~~"} {
		if strings.HasPrefix(s, c) {
			n := len(s) - len(strings.TrimLeft(s, c[:1]))
			return s[:n]
		}
	}
	return ""
}

// Anchors returns the anchors a Markdown text has on GitHub: one per heading
// (Slug, with -1, -2, ... for repeats) and each explicit <a id> or <a name>.
func Anchors(text string) map[string]bool {
	a := map[string]bool{}
	seen := map[string]int{}
	fence := ""
	for _, line := range strings.Split(text, "\n") {
		if f := fenceOf(line); f != "" {
			if fence == "" {
				fence = f
			} else if strings.HasPrefix(f, fence) {
				fence = ""
			}
			continue
		}
		if fence != "" {
			continue
		}
		for _, m := range anchorRE.FindAllStringSubmatch(line, -1) {
			a[m[1]] = true
		}
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		s := Slug(m[2])
		if n := seen[s]; n > 0 {
			a[s+"-"+itoa(n)] = true
		} else {
			a[s] = true
		}
		seen[s]++
	}
	return a
}

// Slug is GitHub's anchor for a heading: lower case, spaces to -, and every
// character but letters, digits, - and _ dropped (markup such as backticks
// and link brackets with it).
func Slug(heading string) string {
	// A link in a heading keeps its text only.
	heading = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Layout": "layout",
		"Integrity findings: records that do not verify":      "integrity-findings-records-that-do-not-verify",
		"Storms (`test/storm.sh`)":                            "storms-teststormsh",
		"Performance (measured here: 2 shared cores, go1.26)": "performance-measured-here-2-shared-cores-go126",
		"snoop --listen, and bindwatch listeners":             "snoop---listen-and-bindwatch-listeners",
		"Whose words: `trust`":                                "whose-words-trust",
	} {
		if got := Slug(heading); got != want {
			t.Errorf("Slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

func TestAnchorsRepeatedHeadings(t *testing.T) {
	a := Anchors("# Metrics\n```\n# not a heading\n```\n## Metrics\n### Metrics\n<a id=\"x\"></a>\n")
	for _, want := range []string{"metrics", "metrics-1", "metrics-2", "x"} {
		if !a[want] {
			t.Errorf("no anchor %q in %v", want, a)
		}
	}
	if a["not-a-heading"] {
		t.Errorf("a heading in a code block made an anchor")
	}
}

func TestLinksSkipsCode(t *testing.T) {
	text := "a [x](one.md) `code\nspan [y](two.md)` and [z](three.md#a)\n```\n[w](four.md)\n```\n``[v](five.md)``\n"
	var got []string
	for _, l := range Links(text) {
		got = append(got, l.Target)
	}
	if strings.Join(got, " ") != "one.md three.md#a" {
		t.Errorf("Links = %q, want one.md and three.md#a", got)
	}
	if l := Links(text); len(l) == 2 && l[1].Line != 2 {
		t.Errorf("three.md#a on line %d, want 2", l[1].Line)
	}
}
