package systemd_test

import (
	"bufio"
	_ "embed"
	"strings"
	"testing"
)

// unitFile is bindwatch.service, the file under test.
const unitFile = "bindwatch.service"

// directive returns the values of every assignment to key in a unit file's
// text, in order ("Key=a b" gives "a b"). Comments and sections are
// skipped; the unit uses no line continuations.
func directive(text, key string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// unitText is the unit, built into the test binary: the VM tier runs it
// where only a package's testdata/ comes along.
//
//go:embed bindwatch.service
var unitText string

func readUnit(t *testing.T) string {
	t.Helper()
	if unitText == "" {
		t.Fatalf("%s is empty", unitFile)
	}
	return unitText
}

func TestDirective(t *testing.T) {
	text := "[Service]\n# Key=commented\nKey=a b\n  Other=x\nKey=\nKeyX=no\n"
	cases := []struct {
		key  string
		want []string
	}{
		{"Key", []string{"a b", ""}},
		{"Other", []string{"x"}},
		{"Missing", nil},
	}
	for _, c := range cases {
		got := directive(text, c.key)
		if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("directive(%q) = %q, want %q", c.key, got, c.want)
		}
	}
}
