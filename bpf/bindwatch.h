/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Records and constants shared between the BPF programs and Go. bpf2go
 * generates the Go mirror of every type and enum here (-type in gen.go), so
 * this file is the one description of the kernel-to-agent contract: the Go
 * side reads records through the generated structs, not hand offsets.
 */
#ifndef BINDWATCH_H
#define BINDWATCH_H

#define TASK_COMM_LEN 16

/*
 * Bumped whenever a record's layout changes. Every ring record carries it,
 * so an agent that finds a pinned ring written by another bindwatch never
 * misreads its records: it counts them as foreign instead.
 */
enum layout_version {
	LAYOUT_VERSION = 2,
};

/* What a record says happened. Values are stable: they cross the ring. */
enum record_kind {
	KIND_BIND = 1,   /* bind() returned */
	KIND_LISTEN = 2, /* listen() returned (ret: 0 or -errno) */
	KIND_CLOSE = 3,  /* a socket stopped listening, or a UDP server was released */
};

/* Bits of sock_event.opts; the first five are bindsnoop's OPTS column "FTNRr". */
enum option_bits {
	OPT_FREEBIND = 1 << 0,
	OPT_TRANSPARENT = 1 << 1,
	OPT_BIND_ADDRESS_NO_PORT = 1 << 2,
	OPT_REUSEADDR = 1 << 3,
	OPT_REUSEPORT = 1 << 4,
	OPT_V6ONLY = 1 << 5,
};

/* The first member of every ring record: what it is and where it stands. */
struct record_header {
	__u64 ts_boot_ns; /* bpf_ktime_get_boot_ns(): counts suspend, unlike ktime_get_ns */
	__u64 seq;        /* per-boot sequence, taken after the filters passed */
	__u16 kind;       /* enum record_kind */
	__u16 layout;     /* LAYOUT_VERSION */
	__u32 _pad;
};

/* One bind, listen or close of an AF_INET or AF_INET6 socket. */
struct sock_event {
	struct record_header hdr;
	__u64 cgroup_id; /* cgroup v2 id of the task */
	__u64 cookie;    /* socket cookie (SO_COOKIE); 0 when it could not be had */
	__u64 listen_ns; /* close: how long the socket listened; 0 unknown */
	__u32 pid;       /* tgid */
	__u32 tid;
	__u32 ppid; /* real_parent's tgid */
	__u32 uid;
	__u32 gid;
	__u32 mntns; /* mount namespace inode */
	__u32 netns; /* network namespace inode of the socket */
	__s32 ret;   /* bind, listen: 0 or -errno */
	__u32 bound_dev_if;
	__u32 backlog;     /* listen: the socket's accept backlog after the call */
	__u16 protocol;    /* sk_protocol: 6 TCP, 17 UDP, 132 SCTP, 262 MPTCP */
	__u16 family;      /* skc_family of the socket */
	__u16 port;        /* effective local port (skc_num) after the call */
	__u16 req_port;    /* bind: port the caller asked for, host order */
	__u16 req_family;  /* bind: sa_family of the caller's sockaddr, or REQ_FAMILY_NONE */
	__u8 opts;         /* enum option_bits */
	__u8 reuse;        /* raw skc_reuse: 1 SO_REUSEADDR, 2 kernel-forced */
	__u8 addr[16];     /* effective address: 4 bytes for AF_INET, else 16 */
	__u8 req_addr[16]; /* requested address, same convention by req_family */
	char comm[TASK_COMM_LEN];
};

/*
 * One (process, fd) holding an inet socket, written by the inventory
 * iterator (iter/task_file) to its seq_file; not a ring record.
 */
struct inventory_entry {
	__u64 cookie;
	__u64 inode;     /* the socket's inode: one socket when the cookie is 0 */
	__u64 cgroup_id; /* the holder's cgroup v2 id */
	__u32 pid;       /* the holder's tgid */
	__u32 fd;
	__u32 uid; /* the holder's real uid */
	__u32 netns;
	__u32 mntns;
	__u32 bound_dev_if;
	__u32 backlog;
	__u16 protocol;
	__u16 family;
	__u16 port;
	__u16 dport; /* remote port: non-zero for a connected socket */
	__u8 state;  /* skc_state: 10 TCP_LISTEN, 7 TCP_CLOSE */
	__u8 opts;
	__u8 userlocks; /* sk_userlocks: 8 SOCK_BINDPORT_LOCK, an explicit port */
	__u8 _pad;
	__u8 addr[16];
	char comm[TASK_COMM_LEN];
};

/* req_family when the record has no requested address: the sockaddr could
 * not be read (a bad pointer, a length under 4), or the call takes none
 * (listen, close). No address family has this number. */
enum req_family_none {
	REQ_FAMILY_NONE = 0xffff,
};

/* capture_config.flags */
enum capture_flags {
	FILTER_PID = 1 << 0,
	FILTER_UID = 1 << 1,
	FILTER_PORTS = 1 << 2,
	FILTER_CGROUP = 1 << 3,
	FILTER_MNTNS = 1 << 4,
	CAPTURE_ERRORS = 1 << 5,
	/* Set when mptcp_bind/mptcp_listen are hooked: inet_bind and
	 * inet_listen then skip subflows. */
	MPTCP_HOOKED = 1 << 6,
	/* Report listen and close records, not only binds. */
	CAPTURE_LISTENERS = 1 << 7,
	/* The syscall tracepoint hook is in use: binds and listens that do not
	 * pass the bind and listen system calls (io_uring, 32-bit compat) are
	 * reported from inside the kernel's bind and listen paths instead. */
	REPORT_OFF_SYSCALL = 1 << 8,
};

/* What to report, and when to wake the reader; written by the loader. */
struct capture_config {
	__u32 flags;
	__u32 pid;
	__u32 uid;
	/* Records are submitted without waking the reader, which polls on a
	 * timer: a wakeup is an IPI, which costs microseconds per bind inside
	 * a VM. Only crossing this many unread bytes forces one. */
	__u32 wakeup_bytes;
	/* Only programs loaded with this generation report: a new agent loads
	 * its programs beside the pinned ones of the last, then flips this, so
	 * that no bind is reported twice or missed across an upgrade. */
	__u32 generation;
	/* Records a non-root user may have per second on each CPU, and how
	 * many at once (the bucket's size): beyond, its records are counted in
	 * uid_budget and dropped, so one user's flood cannot push everyone's
	 * records out of the ring. 0: no budget. */
	__u32 budget_per_sec;
	__u32 budget_burst;
	/* Bytes in the ring (unread, or read and not yet delivered) from
	 * which bind records are refused: the rest of the ring is kept for
	 * listen and close records, so a bind storm that fills every buffer
	 * of the agent never costs a listener. 0: no limit. */
	__u32 bind_limit;
};

/* A non-root user's budget on one CPU (token bucket), and what it cost. */
struct uid_budget {
	__u64 last_ns;    /* when tokens were last added */
	__u32 tokens;
	__u32 _pad;
	__u64 suppressed; /* records dropped over budget, ever */
};

/* Indexes of the per-CPU drop counter array. */
enum drop_reason {
	DROP_RINGBUF_FULL = 0,
	DROP_PENDING_FULL = 1,
	/* A bind or listen returned but the program found no socket behind
	 * its fd: the call cannot be reported. */
	DROP_NO_SOCKET = 2,
	/* Skipped: no agent renewed the lease in time (see the lease map). */
	DROP_ORPHANED = 3,
	/* Over a user's budget (capture_config.budget_per_sec). */
	DROP_BUDGET = 4,
	DROP_REASONS = 5,
};

/*
 * What the per-kind drop counters (kind_drops, per CPU) count: slot
 * reason * KIND_SLOTS + kind, kind an enum record_kind. A map apart from
 * drops, whose size pinned maps of older agents fix.
 */
enum kind_drop_reason {
	KIND_DROP_RING_FULL = 0, /* no room in the ring */
	KIND_DROP_RESERVED = 1,  /* a bind over capture_config.bind_limit */
	KIND_DROP_BUDGET = 2,    /* over its user's budget */
	KIND_DROP_REASONS = 3,
	KIND_SLOTS = 4,
};

/* Kernel limits of the filter maps, shared with Go's validation. */
enum limits {
	MAX_FILTER_PORTS = 1024,
	MAX_SET_ENTRIES = 1024,
	MAX_PENDING = 10240,
	MAX_UDP_SERVERS = 65536,
	MAX_LISTENING = 65536,
	MAX_BUDGET_UIDS = 4096,
};

#endif /* BINDWATCH_H */
