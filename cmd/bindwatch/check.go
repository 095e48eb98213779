package main

// bindwatch config check and bindwatch policy check: each loads one file
// as its program would (the agent its configuration, the audit its
// policy), starts nothing, and exits 78 (EX_CONFIG) with every error the
// program would refuse the file with.

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/bindwatch/bindwatch/internal/config"
)

// checkGroup is "bindwatch NAME", a group holding one check command.
func checkGroup(name, short, long string, check *cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: name + " <command>", Short: short, Long: long}
	groupCommand(cmd)
	cmd.AddCommand(check)
	return cmd
}

// oneFile accepts exactly one argument, the file of what.
func oneFile(what string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageErr(c, fmt.Errorf("want one %s file, got %d arguments", what, len(args)))
		}
		return nil
	}
}

func configCommand() *cobra.Command {
	return checkGroup("config", "check an agent configuration without starting the agent",
		"Commands about the agent's configuration (configs/bindwatch.yaml).", configCheckCommand())
}

func configCheckCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check FILE [--KEY VALUE ...]",
		Short: "validate an agent configuration: the errors run would give, exit 78",
		Long: "Loads FILE as bindwatch run --config FILE would, with the BINDWATCH_* variables\n" +
			"and these flags over it, and prints \"FILE: ok\", or the errors run would refuse\n" +
			"it with (every key, value, source and what is allowed) and exits with status 78.\n" +
			"Starts nothing and needs no privileges beyond reading the file.",
		Example: "    bindwatch config check /etc/bindwatch/bindwatch.yaml",
		Args:    oneFile("configuration"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := config.Load(args[0], os.Environ(), cmd.Flags()); err != nil {
				return &exitError{code: exitConfig, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", args[0])
			return nil
		},
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}

func policyCommand() *cobra.Command {
	return checkGroup("policy", "check an audit policy without starting the audit",
		"Commands about the audit's policy (configs/policy.yaml).", policyCheckCommand())
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
		Args: oneFile("policy"),
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
