package main

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"

	"github.com/spf13/pflag"
)

const usageHead = `devkafka runs a Kafka cluster and a schema registry in one process.

FOR DEMOS AND TESTS ONLY, NOT FOR PRODUCTION: data is kept in memory unless
--data-dir is given, there is no TLS and no authentication, and the schema
registry never persists. Brokers listen on consecutive ports from --listen's.

When ready it prints "broker HOST:PORT" per broker and "registry URL" on
stdout. SIGINT or SIGTERM stop it.

Usage: devkafka [flags]

`

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ error }

// options is the parsed command line.
type options struct {
	brokers          []netip.AddrPort // consecutive ports, or all :0 for random ones
	registry         *netip.AddrPort
	topics           []string
	partitions       int32
	dataDir          string
	allowNonLoopback bool
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := pflag.NewFlagSet("devkafka", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9092", "address of the first broker; the others take the next ports (port 0: random ports)")
	n := fs.Int("brokers", 3, "number of brokers")
	registry := fs.String("registry", "", "also serve a schema registry on this address, e.g. 127.0.0.1:8081")
	topics := fs.StringArray("topic", nil, "create this topic if it does not exist (repeatable)")
	partitions := fs.Int32("partitions", 3, "partitions of each --topic")
	dataDir := fs.String("data-dir", "", "persist the cluster here and reload it on start (default: in memory)")
	allow := fs.Bool("allow-non-loopback", false, "permit listening on an address other hosts can reach")
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return options{}, err
		}
		return options{}, usageError{err}
	}
	if fs.NArg() > 0 {
		return options{}, usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *n < 1 {
		return options{}, usageError{fmt.Errorf("--brokers %d: need at least 1", *n)}
	}
	if *partitions < 1 {
		return options{}, usageError{fmt.Errorf("--partitions %d: need at least 1", *partitions)}
	}
	first, err := listenAddr("--listen", *listen, *allow)
	if err != nil {
		return options{}, usageError{err}
	}
	o := options{topics: *topics, partitions: *partitions, dataDir: *dataDir, allowNonLoopback: *allow}
	if o.brokers, err = consecutive(first, *n); err != nil {
		return options{}, usageError{err}
	}
	if *registry != "" {
		r, err := listenAddr("--registry", *registry, *allow)
		if err != nil {
			return options{}, usageError{err}
		}
		o.registry = &r
	}
	return o, nil
}

// listenAddr parses an IP:port (or localhost:port) to listen on. kfake
// advertises the address it listens on, so a wildcard address would send
// clients to 0.0.0.0; and anything but loopback exposes an unauthenticated
// broker, so it takes --allow-non-loopback.
func listenAddr(flag, s string, allowNonLoopback bool) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s %q: want IP:port: %w", flag, s, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s %q: port: %w", flag, s, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s %q: want an IP address or localhost, not a host name", flag, s)
	}
	switch {
	case ip.IsUnspecified():
		return netip.AddrPort{}, fmt.Errorf("%s %q: name one address: brokers advertise the address they listen on, and clients cannot connect to %s", flag, s, ip)
	case !ip.IsLoopback() && !allowNonLoopback:
		return netip.AddrPort{}, fmt.Errorf("%s %q is not a loopback address: devkafka has no authentication; add --allow-non-loopback to expose it anyway", flag, s)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
}

// consecutive gives n brokers the ports from first's on; port 0 gives each a
// random port instead.
func consecutive(first netip.AddrPort, n int) ([]netip.AddrPort, error) {
	if first.Port() != 0 && int(first.Port())+n-1 > 65535 {
		return nil, fmt.Errorf("--listen %s with --brokers %d: ports past 65535", first, n)
	}
	out := make([]netip.AddrPort, n)
	for i := range out {
		port := first.Port()
		if port != 0 {
			port += uint16(i)
		}
		out[i] = netip.AddrPortFrom(first.Addr(), port)
	}
	return out, nil
}
