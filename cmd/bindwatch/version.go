package main

import (
	"fmt"
	"runtime/debug"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func runVersion(args []string) error {
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
