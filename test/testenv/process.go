package testenv

import (
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Process is a child process a test started. When the test ends, a process
// still running is killed and reaped, so that no test leaves one behind.
type Process struct {
	Cmd   *exec.Cmd
	limit time.Duration
	out   *syncBuffer
	wait  sync.Once
	done  chan struct{} // closed once Cmd.Wait returned, with its error in err
	err   error
}

// Start starts cmd. What the process writes to a stream the caller left
// unset (Stdout, Stderr) is captured, for Output and for the failure
// messages. limit bounds how long Wait, Stop and Kill wait for the process
// to exit, and how long its output may stay open after it did.
func Start(t testing.TB, cmd *exec.Cmd, limit time.Duration) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, limit: limit, out: &syncBuffer{}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.out
	}
	if cmd.WaitDelay == 0 {
		// A grandchild that inherited the output must not hold Wait.
		cmd.WaitDelay = limit
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd, err)
	}
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = cmd.Process.Kill()
		p.startWait()
		select {
		case <-p.done:
		case <-time.After(limit):
			t.Errorf("%s still running %v after SIGKILL", cmd, limit)
		}
	})
	return p
}

func (p *Process) startWait() {
	p.wait.Do(func() {
		go func() {
			p.err = p.Cmd.Wait()
			close(p.done)
		}()
	})
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} {
	p.startWait()
	return p.done
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Output returns what the process wrote so far to the streams Start
// captures.
func (p *Process) Output() string { return p.out.String() }

// Wait waits for the process to exit and returns how it exited (Cmd.Wait's
// error). It fails t if the process still runs after the limit.
func (p *Process) Wait(t testing.TB) error {
	t.Helper()
	p.startWait()
	select {
	case <-p.done:
		return p.err
	case <-time.After(p.limit):
		t.Fatalf("%s still running after %v; output:\n%s", p.Cmd, p.limit, p.Output())
		return nil
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Stop sends sig and waits for the process as Wait does.
func (p *Process) Stop(t testing.TB, sig os.Signal) error {
	t.Helper()
	if err := p.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.Cmd, err)
	}
	return p.Wait(t)
}

// Kill kills the process with SIGKILL and reaps it.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.Cmd, err)
	}
	_ = p.Wait(t)
}
