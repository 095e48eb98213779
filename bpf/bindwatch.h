/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Records shared between the BPF program and the Go decoder (bpf/event.go).
 * The layout is explicit and padded by hand: the Go side decodes it at fixed
 * offsets without reflection, and a test compares those offsets with the
 * bpf2go-generated mirror of this struct.
 */
#ifndef BINDWATCH_H
#define BINDWATCH_H

#define TASK_COMM_LEN 16

/* Bits of bind_event.opts; the first five are bindsnoop's OPTS column "FTNRr". */
#define OPT_FREEBIND (1 << 0)
#define OPT_TRANSPARENT (1 << 1)
#define OPT_BIND_ADDRESS_NO_PORT (1 << 2)
#define OPT_REUSEADDR (1 << 3)
#define OPT_REUSEPORT (1 << 4)
#define OPT_V6ONLY (1 << 5)

struct bind_event {
	__u64 ts_boot_ns;  /* bpf_ktime_get_boot_ns(): counts suspend, unlike ktime_get_ns */
	__u64 seq;         /* per-boot sequence, taken after the filters passed */
	__u64 cgroup_id;   /* cgroup v2 id of the task */
	__u32 pid;         /* tgid */
	__u32 tid;
	__u32 ppid;        /* real_parent's tgid */
	__u32 uid;
	__u32 gid;
	__u32 mntns;       /* mount namespace inode */
	__u32 netns;       /* network namespace inode of the socket */
	__s32 ret;         /* 0 or -errno */
	__u32 bound_dev_if;
	__u16 protocol;    /* sk_protocol: 6 TCP, 17 UDP, 132 SCTP, 262 MPTCP */
	__u16 family;      /* skc_family of the socket */
	__u16 port;        /* effective local port (skc_num) after the bind */
	__u16 req_port;    /* port the caller asked for, host order */
	__u16 req_family;  /* sa_family of the caller's sockaddr, or REQ_FAMILY_UNREADABLE */
	__u8 opts;         /* OPT_* bits */
	__u8 reuse;        /* raw skc_reuse: 1 SO_REUSEADDR, 2 kernel-forced */
	__u8 addr[16];     /* effective address: 4 bytes for AF_INET, else 16 */
	__u8 req_addr[16]; /* requested address, same convention by req_family */
	char comm[TASK_COMM_LEN];
};

/* req_family when the caller's sockaddr could not be read (a bad pointer, a
 * length under 4): no address family has this number. */
#define REQ_FAMILY_UNREADABLE 0xffff

/* capture_config.flags */
#define FILTER_PID (1 << 0)
#define FILTER_UID (1 << 1)
#define FILTER_PORTS (1 << 2)
#define FILTER_CGROUP (1 << 3)
#define FILTER_MNTNS (1 << 4)
#define CAPTURE_ERRORS (1 << 5)
/* Set when the mptcp_bind hook is attached: inet_bind then skips subflows. */
#define MPTCP_HOOKED (1 << 6)

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
	__u32 _pad;
};

/* Indexes of the per-CPU drop counter array. */
enum drop_reason {
	DROP_RINGBUF_FULL = 0,
	DROP_PENDING_FULL = 1,
	DROP_REASONS = 2,
};

#endif /* BINDWATCH_H */
