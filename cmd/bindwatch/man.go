package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCommand writes the manual pages (make man): hidden, since users read
// the pages it makes.
func manCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-man DIR",
		Short:  "write bindwatch.1 and a page per command into DIR",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE:   func(_ *cobra.Command, args []string) error { return writeManPages(args[0]) },
	}
}

// writeManPages writes bindwatch.1 and bindwatch-CMD.1 for each command
// into dir. The date is SOURCE_DATE_EPOCH's when set, so that a build is
// reproducible.
func writeManPages(dir string) error {
	root := newRootCmd()
	root.InitDefaultHelpCmd()
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		c.Use = manSynopsis(c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	date := time.Now()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		date = time.Unix(n, 0).UTC()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return doc.GenManTree(root, &doc.GenManHeader{
		Section: "1",
		Date:    &date,
		Source:  "bindwatch " + version,
		Manual:  "bindwatch manual",
	}, dir)
}

// manSynopsis is the Use of c for a manual page (cobra/doc's Markdown): a
// wrapped line joined, each further form a line of its own, in bold like
// the first.
func manSynopsis(c *cobra.Command) string {
	parent := ""
	if c.HasParent() {
		parent = c.Parent().CommandPath() + " "
	}
	var b strings.Builder
	// Markdown would take <command> for HTML.
	use := strings.NewReplacer("<", `\<`, ">", `\>`).Replace(c.Use)
	for i, line := range strings.Split(use, "\n") {
		switch {
		case i == 0:
			b.WriteString(line)
		case strings.HasPrefix(line, " "):
			b.WriteString(" " + strings.TrimSpace(line))
		default:
			b.WriteString("**  \n**" + parent + line)
		}
	}
	return b.String()
}
