package sdnotify_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bindwatch/bindwatch/internal/sdnotify"
)

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	cases := []struct {
		name      string
		usec, pid string
		want      time.Duration
		wantErr   string
	}{
		{"off", "", "", 0, ""},
		{"off even with a pid", "", self, 0, ""},
		{"on, no pid", "30000000", "", 30 * time.Second, ""},
		{"on for this process", "30000000", self, 30 * time.Second, ""},
		{"on for another process", "30000000", strconv.Itoa(os.Getpid() + 1), 0, ""},
		{"sub-second", "500", "", 500 * time.Microsecond, ""},
		{"zero", "0", "", 0, "WATCHDOG_USEC=\"0\""},
		{"not a number", "30s", "", 0, "WATCHDOG_USEC=\"30s\""},
		{"negative", "-1", "", 0, "WATCHDOG_USEC"},
		{"overflows a Duration", "18446744073709551615", "", 0, "WATCHDOG_USEC"},
		{"bad pid", "30000000", "self", 0, "WATCHDOG_PID=\"self\""},
		{"zero pid", "30000000", "0", 0, "WATCHDOG_PID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := sdnotify.New(env(sdnotify.SocketVar, "/run/systemd/notify",
				sdnotify.WatchdogUSecVar, c.usec, sdnotify.WatchdogPIDVar, c.pid), os.Getpid())
			got, err := n.WatchdogInterval()
			if got != c.want {
				t.Errorf("interval %v, want %v", got, c.want)
			}
			if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

// TestKeepAlive drives KeepAlive through a healthy spell, an unhealthy one
// and a recovery, and checks each datagram systemd would get.
func TestKeepAlive(t *testing.T) {
	m := abstractSocket(t)
	// 20 ms: pings every 10 ms.
	n := sdnotify.New(env(sdnotify.SocketVar, m.socket, sdnotify.WatchdogUSecVar, "20000"), os.Getpid())
	if err := n.Ready("publishing"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.receive(); got != "READY=1\nSTATUS=publishing" {
		t.Fatalf("datagram %q", got)
	}
	stalled := errors.New("ring buffer reader stalled for 40s")
	script := []error{nil, nil, stalled, stalled, stalled, nil, nil}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	healthy := func() error {
		if calls == len(script)-1 {
			cancel()
		}
		err := script[calls]
		calls++
		return err
	}
	start := time.Now()
	if err := n.KeepAlive(ctx, healthy, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	// Six ticks of 10 ms after the first check.
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("KeepAlive took %v for %d checks at 10 ms: not pinging at half the interval", d, len(script))
	}
	for i, want := range []string{
		"WATCHDOG=1",
		"WATCHDOG=1",
		"STATUS=unhealthy, watchdog not fed: ring buffer reader stalled for 40s",
		// Nothing while still unhealthy; the status comes back on recovery.
		"WATCHDOG=1\nSTATUS=publishing",
		"WATCHDOG=1",
	} {
		if got, _ := m.receive(); got != want {
			t.Errorf("datagram %d: %q, want %q", i, got, want)
		}
	}
	m.nothingPending()
}

func TestKeepAliveOff(t *testing.T) {
	m := abstractSocket(t)
	never := func() error { t.Error("health checked with the watchdog off"); return nil }
	for _, c := range []struct {
		name    string
		env     func(string) string
		wantErr bool
	}{
		{"no watchdog", env(sdnotify.SocketVar, m.socket), false},
		{"watchdog of another process", env(sdnotify.SocketVar, m.socket, sdnotify.WatchdogUSecVar, "20000",
			sdnotify.WatchdogPIDVar, strconv.Itoa(os.Getpid()+1)), false},
		{"no socket", env(sdnotify.WatchdogUSecVar, "20000"), false},
		{"malformed", env(sdnotify.SocketVar, m.socket, sdnotify.WatchdogUSecVar, "soon"), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- sdnotify.New(c.env, os.Getpid()).KeepAlive(context.Background(), never, nil) }()
			select {
			case err := <-done:
				if (err != nil) != c.wantErr {
					t.Errorf("KeepAlive: %v, want error %v", err, c.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("KeepAlive kept running with the watchdog off")
			}
		})
	}
	m.nothingPending()
}
