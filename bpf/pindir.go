package bpf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// securePinDir makes sure dir can be trusted with the agent's pins, creating
// it 0700 when absent, and refuses it otherwise.
//
// Whoever can write to the pin directory can unpin the links (a blind spot
// from the next restart on) and the sequence counter (numbers reused within
// a boot), or plant maps of their own for the agent to adopt. bpffs is often
// mounted world-writable with the sticky bit, so anyone may make a directory
// there that an operator might then name in capture.pin_dir. The rule is the
// one sshd applies to authorized_keys: the directory must be owned by the
// agent's effective uid and writable by nobody else, and every directory
// above it on bpffs must be owned by root or the agent and, if others may
// write to it, carry the sticky bit (so nobody else can rename the pin
// directory away and put theirs in its place).
func securePinDir(dir string) error {
	dir = filepath.Clean(dir)
	euid := uint32(os.Geteuid())
	if err := checkPinAncestors(filepath.Dir(dir), euid); err != nil {
		return err
	}
	var st unix.Stat_t
	err := unix.Lstat(dir, &st)
	if errors.Is(err, unix.ENOENT) {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating the pin directory: %w", err)
		}
		err = unix.Lstat(dir, &st)
	}
	if err != nil {
		return fmt.Errorf("pin directory %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("pin directory %s is not a directory (mode %s): refusing it", dir, modeText(st.Mode))
	}
	if st.Uid != euid {
		return fmt.Errorf("pin directory %s is owned by uid %d, not the agent's uid %d (mode %s): refusing it; remove it or give it to uid %d with mode 0700",
			dir, st.Uid, euid, modeText(st.Mode), euid)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("pin directory %s (owner uid %d) has mode %s, writable by group or others: refusing it; chmod 0700 it",
			dir, st.Uid, modeText(st.Mode))
	}
	return nil
}

// checkPinAncestors applies the rule to each directory from parent up to the
// top of its bpffs mount: above that, pins are out of reach of renames.
func checkPinAncestors(parent string, euid uint32) error {
	for p := parent; ; p = filepath.Dir(p) {
		var fsst unix.Statfs_t
		if err := unix.Statfs(p, &fsst); err != nil {
			return fmt.Errorf("pin directory parent %s: %w", p, err)
		}
		if fsst.Type != unix.BPF_FS_MAGIC {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("pin directory parent %s: %w", p, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("pin directory parent %s is not a directory (mode %s): refusing it", p, modeText(st.Mode))
		}
		if st.Uid != 0 && st.Uid != euid {
			return fmt.Errorf("pin directory parent %s is owned by uid %d, neither root nor the agent's uid %d (mode %s): refusing it",
				p, st.Uid, euid, modeText(st.Mode))
		}
		if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
			return fmt.Errorf("pin directory parent %s (owner uid %d) has mode %s, writable by group or others without the sticky bit: refusing it",
				p, st.Uid, modeText(st.Mode))
		}
		if p == "/" || p == filepath.Dir(p) {
			return nil
		}
	}
}

// modeText prints permission bits as chmod takes them, sticky bit included.
func modeText(m uint32) string { return fmt.Sprintf("%04o", m&0o7777) }
