package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func policyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy <command>",
		Short: "check an audit policy without starting the audit",
		Long:  "Commands about the audit's policy (configs/policy.yaml).",
	}
	groupCommand(cmd)
	cmd.AddCommand(policyCheckCommand())
	return cmd
}

func policyCheckCommand() *cobra.Command {
	var strict bool
	cmd := &cobra.Command{
		Use:   "check FILE [--strict]",
		Short: "validate an audit policy: the errors the audit would give (exit 78) and its warnings",
		Long: "Parses FILE as bindwatch audit does when it loads or reloads its policy. Prints\n" +
			"each warning (what loads but likely does not mean what it says, such as an allow\n" +
			"rule on comm alone) on standard error, then \"FILE: ok\" with the number of warnings,\n" +
			"and exits 0; or prints the errors the audit would refuse the file with (every one,\n" +
			"with the file, the line, the key and what is allowed) and exits with status 78.\n" +
			"With --strict a warning refuses the file too (status 78), for CI.\n" +
			"Starts nothing and needs no privileges beyond reading the file.",
		Example: "    bindwatch policy check /etc/bindwatch/policy.yaml\n" +
			"    bindwatch policy check --strict policy.yaml   # in CI, before it is deployed",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr(c, fmt.Errorf("want one policy file, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			file := args[0]
			_, warnings, err := readPolicy(file)
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), w)
			}
			if err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			n := len(warnings)
			if strict && n > 0 {
				return &exitError{code: exitConfig, err: fmt.Errorf("policy: %s: %d warning%s, refused by --strict", file, n, plural(n))}
			}
			if n == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", file)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok, %d warning%s\n", file, n, plural(n))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&strict, "strict", false, "refuse the file (exit 78) when it has warnings too")
	return cmd
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
