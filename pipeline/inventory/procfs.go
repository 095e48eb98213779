package inventory

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/bindwatch/bindwatch/bpf"
	"github.com/bindwatch/bindwatch/pipeline/enrich"
)

// SourceProcfs names the fallback walk: /proc/<pid>/fd for holders and
// /proc/<pid>/net/{tcp,udp}{,6} once per network namespace reachable
// through a process. It sees no SCTP sockets, reports MPTCP listeners as the
// TCP subflow they are to /proc, and finds no cookie itself (Take asks one
// through a holder's fd).
const SourceProcfs = "procfs"

// ProcSource walks procRoot as the BPF iterator would.
type ProcSource struct{ Root string }

// Name is SourceProcfs.
func (ProcSource) Name() string { return SourceProcfs }

// procSocket is one line of /proc/net/{tcp,udp}{,6}.
type procSocket struct {
	protocol, family uint16
	addr             [16]byte
	port             uint16
	dport            uint16
	state            uint8
	uid              uint32
}

// Inventory reads every process's fds and each network namespace's socket
// tables, calling fn for each (process, fd) of a listening TCP socket or an
// unconnected UDP socket.
func (s ProcSource) Inventory(fn func(*bpf.InventoryEntry) error) error {
	pids, err := os.ReadDir(s.Root)
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.Root, err)
	}
	tables := map[uint32]map[uint64]procSocket{} // netns -> inode -> socket
	for _, d := range pids {
		pid, err := strconv.ParseUint(d.Name(), 10, 32)
		if err != nil {
			continue
		}
		dir := filepath.Join(s.Root, d.Name())
		netns, err := nsInode(filepath.Join(dir, "ns/net"))
		if err != nil {
			continue // gone, or not ours to see
		}
		table, ok := tables[netns]
		if !ok {
			table = readSocketTables(filepath.Join(dir, "net"))
			tables[netns] = table
		}
		fds, err := os.ReadDir(filepath.Join(dir, "fd"))
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		for _, f := range fds {
			target, err := os.Readlink(filepath.Join(dir, "fd", f.Name()))
			if err != nil || !strings.HasPrefix(target, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]"), 10, 64)
			if err != nil {
				continue
			}
			sock, ok := table[ino]
			if !ok {
				continue
			}
			fd, _ := strconv.ParseUint(f.Name(), 10, 32)
			e := bpf.InventoryEntry{PID: uint32(pid), FD: uint32(fd), UID: sock.uid, NetNS: netns,
				Protocol: sock.protocol, Family: sock.family, Port: sock.port, State: sock.state,
				Addr: sock.addr, Inode: ino}
			// /proc cannot say whether bind() chose the port; a UDP socket
			// listed here is taken as a server (the osquery view).
			e.ExplicitPort = sock.protocol == bpf.ProtoUDP
			copy(e.Comm[:], strings.TrimSpace(string(comm)))
			if err := fn(&e); err != nil {
				return err
			}
		}
	}
	return nil
}

func nsInode(link string) (uint32, error) {
	t, err := os.Readlink(link)
	if err != nil {
		return 0, err
	}
	n, ok := enrich.ParseNetNSLink(t)
	if !ok {
		return 0, fmt.Errorf("%s points to %q, not net:[inode]", link, t)
	}
	return n, nil
}

// readSocketTables reads the listening TCP and unconnected UDP sockets of
// one network namespace, by inode.
func readSocketTables(netDir string) map[uint64]procSocket {
	out := map[uint64]procSocket{}
	for _, t := range []struct {
		file             string
		protocol, family uint16
	}{
		{"tcp", bpf.ProtoTCP, bpf.AFInet}, {"tcp6", bpf.ProtoTCP, bpf.AFInet6},
		{"udp", bpf.ProtoUDP, bpf.AFInet}, {"udp6", bpf.ProtoUDP, bpf.AFInet6},
	} {
		f, err := os.Open(filepath.Join(netDir, t.file))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			if ino, s, ok := parseSocketLine(sc.Text(), t.protocol, t.family); ok {
				out[ino] = s
			}
		}
		f.Close()
	}
	return out
}

// parseSocketLine parses one /proc/net/{tcp,udp}{,6} line; ok is false for
// sockets that neither listen (TCP) nor wait unconnected on a port (UDP).
func parseSocketLine(line string, protocol, family uint16) (uint64, procSocket, bool) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return 0, procSocket{}, false
	}
	local, remote := strings.Split(f[1], ":"), strings.Split(f[2], ":")
	if len(local) != 2 || len(remote) != 2 {
		return 0, procSocket{}, false
	}
	state, err1 := strconv.ParseUint(f[3], 16, 8)
	port, err2 := strconv.ParseUint(local[1], 16, 16)
	dport, err3 := strconv.ParseUint(remote[1], 16, 16)
	uid, err4 := strconv.ParseUint(f[7], 10, 32)
	ino, err5 := strconv.ParseUint(f[9], 10, 64)
	raw, err6 := hex.DecodeString(local[0])
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil || err6 != nil || ino == 0 {
		return 0, procSocket{}, false
	}
	s := procSocket{protocol: protocol, family: family, port: uint16(port), dport: uint16(dport), state: uint8(state), uid: uint32(uid)}
	// The kernel prints each 32-bit word of the address in host order.
	for i := 0; i+4 <= len(raw) && i < 16; i += 4 {
		s.addr[i], s.addr[i+1], s.addr[i+2], s.addr[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	if protocol == bpf.ProtoUDP {
		return ino, s, dport == 0 && port != 0
	}
	return ino, s, state == bpf.TCPListen
}
