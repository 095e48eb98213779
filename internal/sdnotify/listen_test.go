package sdnotify

import (
	"errors"
	"testing"
)

// Sockets meant for another process (LISTEN_PID not ours: a parent that
// did not unset them) or none at all are not taken.
func TestListenersNotOurs(t *testing.T) {
	for _, env := range []map[string]string{
		{},
		{ListenFDsVar: "1", ListenPIDVar: "1"},
		{ListenFDsVar: "0", ListenPIDVar: "4242"},
		{ListenFDsVar: "x", ListenPIDVar: "4242"},
	} {
		_, err := listeners(func(k string) string { return env[k] }, 4242)
		if !errors.Is(err, ErrNoListeners) {
			t.Errorf("%v: %v, want ErrNoListeners", env, err)
		}
	}
}
