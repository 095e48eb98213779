package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version",
		Long:  "Prints bindwatch's version, the commit it was built from and the Go version.",
		Args:  noArgs,
		RunE:  func(*cobra.Command, []string) error { return runVersion() },
	}
}

func runVersion() error {
	rev := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = " " + s.Value
			}
		}
		fmt.Printf("bindwatch %s%s %s\n", version, rev, info.GoVersion)
		return nil
	}
	fmt.Printf("bindwatch %s\n", version)
	return nil
}
