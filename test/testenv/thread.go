package testenv

import (
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// OnDisposableThread runs fn on an OS thread of its own, not the process's
// main thread, and lets that thread exit afterwards instead of returning it
// to the scheduler: for tests that change a thread's namespaces
// (unshare(CLONE_NEWNET)), or want a tid that is not the pid. The main
// thread is never used, since Go keeps it and /proc/<pid>/ns/* follow it.
func OnDisposableThread(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the thread leaves with whatever fn changed.
		runtime.LockOSThread()
		if unix.Gettid() != os.Getpid() {
			fn()
			return
		}
		inner := make(chan struct{})
		go func() {
			defer close(inner)
			runtime.LockOSThread()
			fn()
		}()
		<-inner
		// The main thread changed nothing: it may go back.
		runtime.UnlockOSThread()
	}()
	<-done
}
