package testenv

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcessOutputAndExit(t *testing.T) {
	p := Start(t, exec.Command("/bin/sh", "-c", "echo out; echo err >&2; exit 3"), 10*time.Second)
	err := p.Wait(t)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("Wait = %v, want exit status 3", err)
	}
	if out := p.Output(); !strings.Contains(out, "out\n") || !strings.Contains(out, "err\n") {
		t.Fatalf("output %q, want both streams", out)
	}
	if err := p.Wait(t); !errors.As(err, &exit) {
		t.Fatalf("a second Wait = %v, want the same exit", err)
	}
}

func TestProcessStop(t *testing.T) {
	p := Start(t, exec.Command("sleep", "60"), 10*time.Second)
	err := p.Stop(t, syscall.SIGTERM)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("Stop = %v, want death by SIGTERM", err)
	}
}

// A process the test leaves running is killed and reaped when it ends.
func TestProcessKilledAtCleanup(t *testing.T) {
	var p *Process
	t.Run("leaves it running", func(t *testing.T) {
		p = Start(t, exec.Command("sleep", "60"), 10*time.Second)
	})
	select {
	case <-p.done:
	default:
		t.Fatal("the process is not reaped after its test ended")
	}
	if ws := p.Cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
		t.Fatalf("process ended with %v, want SIGKILL", p.Cmd.ProcessState)
	}
}
