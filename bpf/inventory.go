package bpf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// InventoryEntry is one (process, fd) holding an inet socket that listens,
// or a UDP socket bound to a port and not connected, as the task_file
// iterator saw it. One socket held by several processes or fds gives
// several entries with one Cookie.
type InventoryEntry struct {
	Cookie uint64
	// Inode is the socket's inode number: it tells sockets apart when the
	// cookie is 0 (while they live; it is reused after).
	Inode    uint64
	CgroupID uint64
	PID      uint32
	FD       uint32
	UID      uint32
	NetNS    uint32
	MntNS    uint32
	BoundIf  uint32
	Backlog  uint32
	Protocol uint16
	Family   uint16
	Port     uint16
	// State is skc_state: TCPListen for listeners.
	State uint8
	Opts  Opts
	// ExplicitPort is set when the port was chosen by a bind, not the kernel.
	ExplicitPort bool
	Addr         [16]byte
	Comm         [16]byte
}

// TCPListen is the kernel's TCP_LISTEN state.
const TCPListen = 10

// sockBindPortLock is SOCK_BINDPORT_LOCK: bind() was given a port.
const sockBindPortLock = 8

// EffectiveAddr is the socket's local address.
func (e *InventoryEntry) EffectiveAddr() netip.Addr { return addrOf(e.Family, &e.Addr) }

// CommString is the holder's comm up to its NUL.
func (e *InventoryEntry) CommString() string {
	n := 0
	for n < len(e.Comm) && e.Comm[n] != 0 {
		n++
	}
	return string(e.Comm[:n])
}

const inventoryEntrySize = int(unsafe.Sizeof(bindwatchInventoryEntry{}))

// loadInventory loads the iterator (5.8+; without it the agent's inventory
// reads /proc) and, apart, the sequence reservation program, which numbers
// the inventory's records either way.
func (p *Probe) loadInventory(spec *ebpf.CollectionSpec, opts ebpf.CollectionOptions, log *slog.Logger) {
	opts.MapReplacements = p.coll.Maps
	if coll, err := loadPrograms(spec, []string{"reserve_seq"}, opts); err != nil {
		log.Warn("no sequence numbers for the inventory's records: no inventory", "reason", err)
	} else {
		p.extra = append(p.extra, coll)
		p.reserve = coll.Programs["reserve_seq"]
	}
	coll, err := loadPrograms(spec, []string{"iter_task_file"}, opts)
	if err != nil {
		log.Info("no BPF socket iterator; the inventory reads /proc instead", "reason", err)
		return
	}
	p.extra = append(p.extra, coll)
	p.inventory = coll.Programs["iter_task_file"]
}

// ErrNoIterator is returned by Inventory when the iterator did not load.
var ErrNoIterator = errors.New("the BPF task_file iterator is not available")

// Inventory walks every task's open files once, calling fn for each entry.
// It stops at fn's first error. An EAGAIN from the kernel (a read that made
// no output after many objects) is retried: the walk goes on where it was.
func (p *Probe) Inventory(fn func(*InventoryEntry) error) error {
	if p.inventory == nil {
		return ErrNoIterator
	}
	it, err := link.AttachIter(link.IterOptions{Program: p.inventory})
	if err != nil {
		return fmt.Errorf("attaching the task_file iterator: %w", err)
	}
	defer it.Close()
	rc, err := it.Open()
	if err != nil {
		return fmt.Errorf("opening the task_file iterator: %w", err)
	}
	defer rc.Close()
	r := bufio.NewReaderSize(retryEAGAIN{rc}, 64*inventoryEntrySize)
	buf := make([]byte, inventoryEntrySize)
	var e InventoryEntry
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading the task_file iterator: %w", err)
		}
		decodeInventory(buf, &e)
		if err := fn(&e); err != nil {
			return err
		}
	}
}

func decodeInventory(b []byte, e *InventoryEntry) {
	r := (*bindwatchInventoryEntry)(unsafe.Pointer(&b[0]))
	*e = InventoryEntry{
		Cookie: r.Cookie, Inode: r.Inode, CgroupID: r.CgroupId, PID: r.Pid, FD: r.Fd, UID: r.Uid, NetNS: r.Netns,
		MntNS: r.Mntns, BoundIf: r.BoundDevIf, Backlog: r.Backlog, Protocol: r.Protocol,
		Family: r.Family, Port: r.Port, State: r.State, Opts: Opts(r.Opts),
		ExplicitPort: r.Userlocks&sockBindPortLock != 0, Addr: r.Addr,
		Comm: *(*[16]byte)(unsafe.Pointer(&r.Comm)),
	}
}

// retryEAGAIN reads on when the iterator says EAGAIN: the kernel ends a
// read that produced nothing after a million objects, and the next read
// goes on from there.
type retryEAGAIN struct{ r io.Reader }

func (r retryEAGAIN) Read(b []byte) (int, error) {
	for tries := 0; ; tries++ {
		n, err := r.r.Read(b)
		if errors.Is(err, unix.EAGAIN) && n == 0 && tries < 1000 {
			continue
		}
		return n, err
	}
}

// ReserveSeq takes n numbers from the kernel's sequence counter at once and
// returns the first, for records the agent makes itself: they share the
// kernel's numbering, so a gap anywhere still means a loss.
func (p *Probe) ReserveSeq(n uint64) (uint64, error) {
	if p.reserve == nil {
		return 0, errors.New("the sequence reservation program did not load")
	}
	p.reserving.Lock()
	defer p.reserving.Unlock()
	ret, err := p.reserve.Run(&ebpf.RunOptions{Context: []uint64{n}})
	if err != nil {
		return 0, fmt.Errorf("reserving %d sequence numbers: %w", n, err)
	}
	if ret != 0 {
		return 0, fmt.Errorf("reserving %d sequence numbers: program returned %d", n, ret)
	}
	var first uint64
	if err := p.coll.Maps["reserved_seq"].Lookup(uint32(0), &first); err != nil {
		return 0, fmt.Errorf("reading the reserved sequence numbers: %w", err)
	}
	return first, nil
}

// LoadInventory loads the socket iterator alone, attaching nothing: what
// `bindwatch listeners` uses to list what listens now without capturing.
func LoadInventory() (*Probe, error) {
	spec, err := prepareSpec()
	if err != nil {
		return nil, err
	}
	// Every map of the object is made; the ring need not be large.
	spec.Maps["events"].MaxEntries = 4096
	coll, err := loadPrograms(spec, []string{"iter_task_file"}, ebpf.CollectionOptions{})
	if err != nil {
		return nil, fmt.Errorf("loading the socket iterator: %w", err)
	}
	return &Probe{coll: coll, inventory: coll.Programs["iter_task_file"]}, nil
}
