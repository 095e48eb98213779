// Command devkafka runs a Kafka-protocol cluster and a Confluent-compatible
// schema registry in one process, for demos and tests.
//
// It is not for production. The cluster is kfake
// (github.com/twmb/franz-go/pkg/kfake): its data lives in memory unless
// --data-dir is given, nothing is replicated for real, and there is no TLS
// and no authentication. The registry (srfake) is in memory only, always.
//
// When every listener is up it prints one line per address on stdout,
// "broker HOST:PORT" for each broker then "registry URL", so a script can
// wait for them; logs go to stderr. SIGINT or SIGTERM stop it cleanly, saving
// the cluster's state first when --data-dir is set.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintf(os.Stderr, "devkafka: %v\nRun devkafka --help for usage.\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "devkafka: %v\n", err)
		os.Exit(1)
	}
}
