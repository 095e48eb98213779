package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/bindwatch/bindwatch/internal/config"
)

func configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config <command>",
		Short: "check an agent configuration without starting the agent",
		Long:  "Commands about the agent's configuration (configs/bindwatch.yaml).",
	}
	groupCommand(cmd)
	cmd.AddCommand(configCheckCommand())
	return cmd
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
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErr(c, fmt.Errorf("want one configuration file, got %d arguments", len(args)))
			}
			return nil
		},
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
