package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runBinary runs bindwatch with args and returns its exit status, stdout
// and stderr.
func runBinary(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// TestConfigCheck: config check says ok for a good file, and for a bad one
// prints exactly what run prints and exits 78, like run.
func TestConfigCheck(t *testing.T) {
	good := "../../configs/bindwatch.yaml"
	if code, out, errOut := runBinary(t, "config", "check", good); code != 0 || out != good+": ok\n" || errOut != "" {
		t.Errorf("config check %s: exit %d, stdout %q, stderr %q; want 0, %q", good, code, out, errOut, good+": ok\n")
	}

	dir := t.TempDir()
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown-key.yaml", "kafka:\n  topik: x\n", []string{`kafka.topik: unknown key (did you mean "kafka.topic"?)`}},
		{"bad-value.yaml", "kafka:\n  acks: two\n", []string{`kafka.acks: "two" is not allowed; want one of all, one, none`}},
		{"both.yaml", "spool:\n  fsync: sometimes\nlog:\n  levle: debug\n", []string{`spool.fsync: "sometimes"`, "always, batch, never", "log.levle: unknown key"}},
	} {
		path := filepath.Join(dir, c.name)
		if err := os.WriteFile(path, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runBinary(t, "config", "check", path)
		if code != exitConfig || out != "" {
			t.Errorf("config check %s: exit %d, stdout %q; want %d and nothing", c.name, code, out, exitConfig)
		}
		if !strings.HasPrefix(errOut, "bindwatch config check: config: ") {
			t.Errorf("config check %s: stderr %q lacks the prefix", c.name, errOut)
		}
		for _, w := range append(c.want, "(in "+path+")") {
			if !strings.Contains(errOut, w) {
				t.Errorf("config check %s: stderr lacks %q:\n%s", c.name, w, errOut)
			}
		}
		// The agent refuses the same file with the same words, and the
		// same status.
		runCode, _, runErr := runBinary(t, "run", "--config", path)
		if runCode != code || strings.Replace(runErr, "bindwatch run: ", "bindwatch config check: ", 1) != errOut {
			t.Errorf("config check %s differs from run:\nexit %d: %s\nrun exit %d: %s", c.name, code, errOut, runCode, runErr)
		}
	}

	// Flags and variables are layered over the file as run layers them.
	if code, _, errOut := runBinary(t, "config", "check", good, "--kafka.acks", "two"); code != exitConfig ||
		!strings.Contains(errOut, `kafka.acks: "two" is not allowed; want one of all, one, none (from --kafka.acks)`) {
		t.Errorf("config check --kafka.acks two: exit %d, stderr:\n%s", code, errOut)
	}
	for _, args := range [][]string{{"config", "check"}, {"config", "check", good, good}} {
		if code, _, errOut := runBinary(t, args...); code != 2 || !strings.HasPrefix(errOut, "bindwatch config check: want one configuration file") {
			t.Errorf("bindwatch %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut)
		}
	}
}

// commandsOf lists c and every command under it that a user can run or
// read about.
func commandsOf(c *cobra.Command) []*cobra.Command {
	cmds := []*cobra.Command{c}
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			cmds = append(cmds, commandsOf(sub)...)
		}
	}
	return cmds
}

// TestHelp: every command answers -h on stdout with exit status 0, names
// itself in its usage line and lists every one of its flags.
func TestHelp(t *testing.T) {
	root := newRootCmd()
	root.InitDefaultHelpFlag()
	for _, c := range commandsOf(root) {
		args := append(strings.Fields(c.CommandPath())[1:], "-h")
		code, out, errOut := runBinary(t, args...)
		if code != 0 || errOut != "" {
			t.Errorf("bindwatch %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
			continue
		}
		if !strings.HasPrefix(out, "usage: "+c.CommandPath()) {
			t.Errorf("bindwatch %s: help does not start with its usage:\n%s", strings.Join(args, " "), out)
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if c.HasAvailableSubCommands() && f.Name == "help" {
				return // a command of commands lists those instead
			}
			if !strings.Contains(out, "--"+f.Name) || (f.Shorthand != "" && !strings.Contains(out, "-"+f.Shorthand+", --"+f.Name)) {
				t.Errorf("bindwatch %s: help lacks --%s", strings.Join(args, " "), f.Name)
			}
		})
	}
}

// TestExitStatuses: what the command line as a whole answers.
func TestExitStatuses(t *testing.T) {
	for _, c := range []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{nil, 2, "", "usage: bindwatch <command> [flags]\n"},
		{[]string{"help"}, 0, "usage: bindwatch <command> [flags]\n", ""},
		{[]string{"--help"}, 0, "usage: bindwatch <command> [flags]\n", ""},
		{[]string{"help", "snoop"}, 0, "usage: bindwatch snoop [-t]", ""},
		{[]string{"snop"}, 2, "", "bindwatch: unknown command \"snop\"; did you mean snoop?\n\nusage: bindwatch <command> [flags]\n"},
		{[]string{"--bogus"}, 2, "", "bindwatch: unknown flag: --bogus\n"},
		{[]string{"config"}, 2, "", "usage: bindwatch config <command>\n"},
		{[]string{"config", "nope"}, 2, "", "bindwatch config: unknown command \"nope\"\n"},
		{[]string{"policy"}, 2, "", "usage: bindwatch policy <command>\n"},
		{[]string{"policy", "chek"}, 2, "", "bindwatch policy: unknown command \"chek\"; did you mean check?\n"},
		{[]string{"version", "extra"}, 2, "", "bindwatch version: unexpected argument \"extra\"\n"},
		{[]string{"version"}, 0, "bindwatch ", ""},
		{[]string{"run", "--config", "/nonexistent/bindwatch.yaml"}, 78, "", "bindwatch run: config: open /nonexistent/bindwatch.yaml: no such file or directory\n"},
		{[]string{"consume", "--max", "-1"}, 2, "", "bindwatch consume: --max and --timeout cannot be negative\n\n      --config string"},
	} {
		code, out, errOut := runBinary(t, c.args...)
		if code != c.code || !strings.HasPrefix(out, c.stdout) || !strings.HasPrefix(errOut, c.stderr) || (c.stdout == "" && out != "") {
			t.Errorf("bindwatch %s: exit %d, want %d\nstdout: %q, want it to start with %q\nstderr: %q, want it to start with %q",
				strings.Join(c.args, " "), code, c.code, out, c.stdout, errOut, c.stderr)
		}
	}
}

// TestCompletion: cobra's completion scripts for each shell, and the
// completion of commands and flags they call back into.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runBinary(t, "completion", shell)
		if code != 0 || errOut != "" || !strings.Contains(out, "__complete") || !strings.Contains(out, "bindwatch") {
			t.Errorf("completion %s: exit %d, stderr %q, %d bytes", shell, code, errOut, len(out))
		}
	}
	_, out, _ := runBinary(t, "__complete", "")
	for _, name := range []string{"snoop", "run", "config", "policy", "listeners", "audit", "completion"} {
		if !strings.Contains(out, "\n"+name+"\t") && !strings.HasPrefix(out, name+"\t") {
			t.Errorf("commands completed: %q lacks %s", out, name)
		}
	}
	if _, out, _ := runBinary(t, "__complete", "snoop", "--dur"); !strings.HasPrefix(out, "--duration\t") {
		t.Errorf("snoop --dur completes to %q", out)
	}
	if _, out, _ := runBinary(t, "__complete", "snoop", "--hook", ""); !strings.HasPrefix(out, "auto\nfexit\nkprobe\ntracepoint\n:4\n") {
		t.Errorf("snoop --hook completes to %q", out)
	}
}

// TestManPages: bindwatch.1 and a page per command, each naming all of its
// flags.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1764547200")
	if err := writeManPages(dir); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	root.InitDefaultHelpFlag()
	want := map[string]bool{}
	for _, c := range commandsOf(root) {
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		want[name] = true
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", c.CommandPath(), err)
			continue
		}
		page := string(b)
		if !strings.Contains(page, `.TH "`+strings.ToUpper(strings.TrimSuffix(name, ".1"))+`" "1" "Dec 2025"`) {
			t.Errorf("%s: no title line, or not dated SOURCE_DATE_EPOCH:\n%s", name, page)
		}
		if c.Short != "" && !strings.Contains(page, c.Short) {
			t.Errorf("%s lacks the summary %q", name, c.Short)
		}
		c.NonInheritedFlags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden {
				return
			}
			flag := `\fB--` + f.Name + `\fP`
			if f.Shorthand != "" {
				flag = `\fB-` + f.Shorthand + `\fP, ` + flag
			}
			if !strings.Contains(page, flag) {
				t.Errorf("%s lacks %s", name, flag)
			}
		})
	}
	for _, cmd := range []string{"bindwatch.1", "bindwatch-snoop.1", "bindwatch-run.1", "bindwatch-config-check.1", "bindwatch-policy-check.1", "bindwatch-completion.1"} {
		if !want[cmd] {
			t.Errorf("no page %s expected", cmd)
		}
	}
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		if !want[f.Name()] {
			t.Errorf("unexpected page %s (a hidden command's?)", f.Name())
		}
	}
	if len(files) != len(want) {
		t.Errorf("%d pages, want %d", len(files), len(want))
	}
}

// TestPolicyCheck: policy check runs the audit's parse. A good file is ok;
// one with warnings is ok with them printed (and refused with --strict);
// one with errors is refused, exit 78, with every error and warning, each
// with the file, the line and the key, in the words the audit refuses it
// with.
func TestPolicyCheck(t *testing.T) {
	good := "../../configs/policy.yaml"
	if code, out, errOut := runBinary(t, "policy", "check", good); code != 0 || out != good+": ok\n" || errOut != "" {
		t.Errorf("policy check %s: exit %d, stdout %q, stderr %q; want 0, %q", good, code, out, errOut, good+": ok\n")
	}

	dir := t.TempDir()
	warned := filepath.Join(dir, "warned.yaml")
	writeFile(t, warned, "rules:\n  - name: avahi\n    action: allow\n    match:\n      comm: avahi-daemon\n      port: 5353\n")
	wantWarning := "policy: " + warned + ":5: warning: rules[0].match.comm: comm is what a process calls itself"
	code, out, errOut := runBinary(t, "policy", "check", warned)
	if code != 0 || out != warned+": ok, 1 warning\n" || !strings.HasPrefix(errOut, wantWarning) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("policy check %s: exit %d, stdout %q, stderr %q; want 0, the warning", warned, code, out, errOut)
	}
	code, out, errOut = runBinary(t, "policy", "check", "--strict", warned)
	if code != exitConfig || out != "" || !strings.HasPrefix(errOut, wantWarning) ||
		!strings.Contains(errOut, "bindwatch policy check: policy: "+warned+": 1 warning, refused by --strict") {
		t.Errorf("policy check --strict %s: exit %d, stdout %q, stderr %q; want %d, the warning", warned, code, out, errOut, exitConfig)
	}

	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "rules:\n  - name: avahi\n    action: allow\n    match:\n      comm: avahi-daemon\n  - name: office\n    action: allow\n    match:\n      addr: 10.0.0.0/40\n      prot: TCP\n")
	code, out, errOut = runBinary(t, "policy", "check", bad)
	if code != exitConfig || out != "" {
		t.Errorf("policy check %s: exit %d, stdout %q; want %d and nothing", bad, code, out, exitConfig)
	}
	for _, w := range []string{
		"policy: " + bad + ":5: warning: rules[0].match.comm: ",
		"bindwatch policy check: policy: " + bad + `:9: rules[1].match.addr: "10.0.0.0/40" is not a CIDR or an address`,
		"policy: " + bad + ":10: rules[1].match.prot: unknown key (allowed: host, container, exe, comm, ",
	} {
		if !strings.Contains(errOut, w) {
			t.Errorf("policy check %s: stderr lacks %q:\n%s", bad, w, errOut)
		}
	}
	// The audit refuses the same file with the same errors.
	_, _, auditErr := runBinary(t, "audit", "--config", "testdata/audit-good.yaml", "--policy", bad)
	if i := strings.Index(errOut, "bindwatch policy check: "); i < 0 || strings.TrimPrefix(errOut[i:], "bindwatch policy check: ") != strings.TrimPrefix(auditErr, "bindwatch audit: ") {
		t.Errorf("policy check and audit differ:\n%s\n%s", errOut, auditErr)
	}

	missing := filepath.Join(dir, "missing.yaml")
	if code, _, errOut := runBinary(t, "policy", "check", missing); code != exitConfig || !strings.Contains(errOut, missing) {
		t.Errorf("policy check %s: exit %d, stderr %q; want %d naming the file", missing, code, errOut, exitConfig)
	}
	for _, args := range [][]string{{"policy", "check"}, {"policy", "check", good, good}} {
		if code, _, errOut := runBinary(t, args...); code != 2 || !strings.HasPrefix(errOut, "bindwatch policy check: want one policy file") {
			t.Errorf("bindwatch %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut)
		}
	}
}
