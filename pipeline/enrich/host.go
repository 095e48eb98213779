package enrich

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bindwatch/bindwatch/internal/safetext"
)

// Identity names the host every record comes from. It is read once at start:
// machine-id and boot id cannot change while the agent runs, and a renamed
// host keeps its host id, which is what consumers key on.
type Identity struct {
	Hostname string
	// HostID is /etc/machine-id: 32 lowercase hex digits.
	HostID string
	// BootID is the kernel's random boot id, a UUID in text form.
	BootID string
}

// ReadIdentity reads the host's identity. rootFS holds etc/machine-id (the
// host's / seen from the agent, "/" outside a container); procRoot is a
// procfs mount. A non-empty hostname overrides the kernel's.
func ReadIdentity(rootFS, procRoot, hostname string) (Identity, error) {
	var id Identity
	if hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return id, fmt.Errorf("reading the hostname: %w", err)
		}
		hostname = h
	}
	id.Hostname = safetext.Escape(hostname)

	path := filepath.Join(rootFS, "etc", "machine-id")
	b, err := os.ReadFile(path)
	if err != nil {
		return id, fmt.Errorf("reading the host id: %w", err)
	}
	if id.HostID, err = parseMachineID(string(b)); err != nil {
		return id, fmt.Errorf("%s: %w", path, err)
	}

	path = filepath.Join(procRoot, "sys", "kernel", "random", "boot_id")
	if b, err = os.ReadFile(path); err != nil {
		return id, fmt.Errorf("reading the boot id: %w", err)
	}
	if id.BootID, err = parseBootID(string(b)); err != nil {
		return id, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

// parseMachineID accepts what machine-id(5) specifies: 32 lowercase hex
// digits and a newline. systemd writes "uninitialized" before first boot
// completes; that must not become a Kafka key shared by every new host.
func parseMachineID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) != 32 || !isLowerHex(s) {
		return "", fmt.Errorf("machine id %q is not 32 lowercase hex digits", truncate(s, 40))
	}
	return s, nil
}

// parseBootID accepts the kernel's format, 8-4-4-4-12 lowercase hex.
func parseBootID(s string) (string, error) {
	s = strings.TrimSpace(s)
	ok := len(s) == 36
	for i := 0; ok && i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			ok = s[i] == '-'
		default:
			ok = isLowerHex(s[i : i+1])
		}
	}
	if !ok {
		return "", fmt.Errorf("boot id %q is not a UUID", truncate(s, 40))
	}
	return s, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
