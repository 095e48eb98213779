package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Variables of socket activation (sd_listen_fds(3)).
const (
	ListenFDsVar   = "LISTEN_FDS"
	ListenPIDVar   = "LISTEN_PID"
	ListenNamesVar = "LISTEN_FDNAMES"
)

// listenFDsStart is the first passed descriptor: after stdin, out and err.
const listenFDsStart = 3

// ErrNoListeners means the service manager passed no socket.
var ErrNoListeners = errors.New("no socket passed by the service manager (LISTEN_FDS unset or not for this process)")

// Listeners returns the listening sockets systemd passed this process by
// socket activation, in the order of the socket unit's Listen*= lines. The
// variables are unset, as sd_listen_fds(3) does with unset_environment, so
// nothing started later mistakes them for its own.
func Listeners() ([]net.Listener, error) {
	defer func() {
		os.Unsetenv(ListenFDsVar)
		os.Unsetenv(ListenPIDVar)
		os.Unsetenv(ListenNamesVar)
	}()
	return listeners(os.Getenv, os.Getpid())
}

func listeners(getenv func(string) string, pid int) ([]net.Listener, error) {
	if p, err := strconv.Atoi(getenv(ListenPIDVar)); err != nil || p != pid {
		return nil, ErrNoListeners
	}
	n, err := strconv.Atoi(getenv(ListenFDsVar))
	if err != nil || n <= 0 {
		return nil, ErrNoListeners
	}
	var out []net.Listener
	for fd := listenFDsStart; fd < listenFDsStart+n; fd++ {
		unix.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "LISTEN_FD_"+strconv.Itoa(fd))
		l, err := net.FileListener(f)
		f.Close() // FileListener holds its own duplicate
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, fmt.Errorf("socket %d passed by the service manager: %w", fd, err)
		}
		out = append(out, l)
	}
	return out, nil
}
