package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// run serves until ctx is done, then stops everything.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("component", "devkafka")

	cluster, err := startCluster(o, log)
	if err != nil {
		return err
	}
	defer func() {
		// With --data-dir, Close saves the state the next start reloads.
		cluster.Close()
		log.Info("cluster stopped", "data_dir", o.dataDir)
	}()

	var registryURL string
	if o.registry != nil {
		ln, err := net.Listen("tcp", o.registry.String())
		if err != nil {
			return fmt.Errorf("schema registry: %w", err)
		}
		srv := &http.Server{Handler: srfake.NewRegistry().Handler(), ReadHeaderTimeout: 10 * time.Second}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				log.Warn("schema registry shutdown", "error", err)
			}
			if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("schema registry", "error", err)
			}
		}()
		registryURL = "http://" + ln.Addr().String()
	}

	// The ready lines come last, once every listener accepts.
	for _, a := range cluster.ListenAddrs() {
		fmt.Fprintf(stdout, "broker %s\n", a)
	}
	if registryURL != "" {
		fmt.Fprintf(stdout, "registry %s\n", registryURL)
	}
	log.Info("ready: for demos and tests only, no authentication", "brokers", cluster.ListenAddrs(), "registry", registryURL, "data_dir", o.dataDir)
	<-ctx.Done()
	log.Info("stopping", "cause", context.Cause(ctx))
	return nil
}

// startCluster starts kfake on the requested addresses and creates the
// topics that are not there yet (a reloaded --data-dir may have them).
func startCluster(o options, log *slog.Logger) (*kfake.Cluster, error) {
	ports := make([]int, len(o.brokers))
	for i, a := range o.brokers {
		ports[i] = int(a.Port())
	}
	host := o.brokers[0].Addr().String()
	opts := []kfake.Opt{
		kfake.Ports(ports...),
		kfake.WithLogger(kfakeLogger{log.With("component", "kfake")}),
		// kfake always asks for 127.0.0.1; listen on the host we were given.
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort(host, port))
		}),
	}
	if o.dataDir != "" {
		opts = append(opts, kfake.DataDir(o.dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start kafka cluster on %v: %w", o.brokers, err)
	}
	for _, t := range o.topics {
		if c.TopicInfo(t) != nil {
			if have := len(c.PartitionInfos(t)); have != int(o.partitions) {
				log.Warn("topic exists with another partition count; keeping it", "topic", t, "partitions", have, "requested", o.partitions)
			}
			continue
		}
		if err := c.CreateTopic(t, o.partitions, nil); err != nil {
			c.Close()
			return nil, fmt.Errorf("create topic %s: %w", t, err)
		}
		log.Info("topic created", "topic", t, "partitions", o.partitions)
	}
	return c, nil
}

// kfakeLogger passes kfake's warnings and errors to slog.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error(fmt.Sprintf(format, args...))
	case kfake.LogLevelWarn:
		l.log.Warn(fmt.Sprintf(format, args...))
	}
}
