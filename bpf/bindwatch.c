// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * bindwatch: one record per bind() on an AF_INET or AF_INET6 socket.
 *
 * Three hook variants share one emit path; the loader attaches exactly one:
 *   fexit      inet_bind, inet6_bind, mptcp_bind: arguments and return value
 *              in one program, no per-thread state.
 *   kprobe     the same functions, entry + return, the socket stashed per thread.
 *   tracepoint syscalls/sys_exit_bind: needs neither trampolines nor kprobes;
 *              the socket is found from the fd in the task's file table.
 */

#include "headers/kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "bindwatch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MAX_PORTS 1024
#define MAX_SET_ENTRIES 1024
#define MAX_PENDING 10240
#define SOCKADDR_IN6_LEN 28
/* A bind_event in the ring buffer: 8-byte header plus the record. */
#define RECORD_BYTES (8 + sizeof(struct bind_event))

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by the loader */
} events SEC(".maps");

/* Kept apart from .bss so the loader can pin it: the sequence must survive
 * agent restarts within a boot, or (host, boot, seq) would repeat. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seq_counter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* A map rather than rodata so filters can change while attached (SIGHUP). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct capture_config);
} config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u16);
	__type(value, __u8);
} filter_ports SEC(".maps");

/* Same key and value types as bcc's --cgroupmap and --mntnsmap maps, so a map
 * pinned for bindsnoop works here; the loader swaps in the pinned one. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SET_ENTRIES);
	__type(key, __u64);
	__type(value, __u64);
} cgroup_set SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SET_ENTRIES);
	__type(key, __u64);
	__type(value, __u32);
} mntns_set SEC(".maps");

/* Entry-to-return state for the kprobe and tracepoint variants. LRU, so a
 * thread that dies inside bind() cannot leak an entry forever. */
struct pending_bind {
	__u64 sock;    /* kprobe: struct socket *; tracepoint: the fd */
	__u64 uaddr;   /* caller's sockaddr: kernel copy (kprobe) or user pointer (tracepoint) */
	__s32 addrlen;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_PENDING);
	__type(key, __u32);
	__type(value, struct pending_bind);
} pending SEC(".maps");

/* Forces the event type into BTF so bpf2go can generate its Go mirror. */
const struct bind_event *unused_bind_event __attribute__((unused));

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);
	if (n)
		*n += 1;
}

/* This object's generation, set by the loader (see capture_config). */
const volatile __u32 generation = 0;

/* The configuration, or NULL when programs of another generation are the
 * ones reporting: every program returns at once then. */
static __always_inline struct capture_config *config(void)
{
	__u32 zero = 0;
	struct capture_config *cfg = bpf_map_lookup_elem(&config_map, &zero);

	if (!cfg || cfg->generation != generation)
		return NULL;
	return cfg;
}

/* Filters that depend only on the calling task: applied at entry, so the
 * kprobe and tracepoint variants stash nothing for tasks nobody asked about. */
static __always_inline bool task_wanted(const struct capture_config *cfg)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if ((cfg->flags & FILTER_PID) && (__u32)(pid_tgid >> 32) != cfg->pid)
		return false;
	if ((cfg->flags & FILTER_UID) && (__u32)bpf_get_current_uid_gid() != cfg->uid)
		return false;
	if (cfg->flags & FILTER_CGROUP) {
		__u64 cgid = bpf_get_current_cgroup_id();
		if (!bpf_map_lookup_elem(&cgroup_set, &cgid))
			return false;
	}
	if (cfg->flags & FILTER_MNTNS) {
		__u64 mntns = bpf_get_current_task_btf()->nsproxy->mnt_ns->ns.inum;
		if (!bpf_map_lookup_elem(&mntns_set, &mntns))
			return false;
	}
	return true;
}

static __always_inline bool is_mptcp_subflow(struct sock *sk)
{
	if (!bpf_core_field_exists(struct tcp_sock, is_mptcp))
		return false;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return false;
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	return BPF_CORE_READ_BITFIELD_PROBED(tp, is_mptcp);
}

/* The option bits kept in inet_sock: FREEBIND, TRANSPARENT, BIND_ADDRESS_NO_PORT. */
static __always_inline __u8 inet_options(struct sock *sk)
{
	__u8 opts = 0;

	if (bpf_core_field_exists(struct inet_sock___pre_6_6, freebind)) {
		struct inet_sock___pre_6_6 *old = (void *)sk;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, freebind))
			opts |= OPT_FREEBIND;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, transparent))
			opts |= OPT_TRANSPARENT;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, bind_address_no_port))
			opts |= OPT_BIND_ADDRESS_NO_PORT;
	} else {
		struct inet_sock *inet = (void *)sk;
		unsigned long flags = BPF_CORE_READ(inet, inet_flags);
		if (flags & (1UL << INET_FLAGS_FREEBIND))
			opts |= OPT_FREEBIND;
		if (flags & (1UL << INET_FLAGS_TRANSPARENT))
			opts |= OPT_TRANSPARENT;
		if (flags & (1UL << INET_FLAGS_BIND_ADDRESS_NO_PORT))
			opts |= OPT_BIND_ADDRESS_NO_PORT;
	}
	return opts;
}

/*
 * The sockaddr as the caller passed it. The socket's own fields are zeroed
 * when bind fails, so this is the only record of what a failed bind wanted.
 * Layout: family at 0, port at 2, IPv4 address at 4, IPv6 address at 8.
 */
struct requested {
	__u16 family;
	__u16 port;
	__u8 addr[16];
};

/* Copies the caller's sockaddr. Reads no more than the caller passed, since
 * a short sockaddr may end at a page boundary; the sizes are constants so
 * the verifier needs no bounds reasoning. */
static __always_inline long copy_sockaddr(__u8 *buf, __u32 size, __u64 uaddr, bool user)
{
	if (user)
		return bpf_probe_read_user(buf, size, (void *)uaddr);
	return bpf_probe_read_kernel(buf, size, (void *)uaddr);
}

static __always_inline void read_requested(struct requested *req, __u64 uaddr, __s32 addrlen,
					   bool user)
{
	__u8 buf[SOCKADDR_IN6_LEN] = {};
	long err;

	/* Until read, the request is unknown: a family no socket has. */
	req->family = REQ_FAMILY_UNREADABLE;
	if (!uaddr)
		return;
	if (addrlen >= SOCKADDR_IN6_LEN)
		err = copy_sockaddr(buf, SOCKADDR_IN6_LEN, uaddr, user);
	else if (addrlen >= 24) /* SIN6_LEN_RFC2133: no scope id */
		err = copy_sockaddr(buf, 24, uaddr, user);
	else if (addrlen >= 8) /* up to the end of sockaddr_in's address */
		err = copy_sockaddr(buf, 8, uaddr, user);
	else if (addrlen >= 4) /* family and port */
		err = copy_sockaddr(buf, 4, uaddr, user);
	else
		return;
	if (err)
		return;

	req->family = buf[0] | (buf[1] << 8);
	req->port = (buf[2] << 8) | buf[3];
	if (req->family == AF_INET6)
		__builtin_memcpy(req->addr, &buf[8], 16);
	else /* AF_INET, or AF_UNSPEC which inet_bind reads as sockaddr_in */
		__builtin_memcpy(req->addr, &buf[4], 4);
}

static __always_inline bool port_wanted(const struct capture_config *cfg, __u16 port,
					__u16 req_port)
{
	if (!(cfg->flags & FILTER_PORTS))
		return true;
	/* The requested port too: a failed bind leaves the effective one at 0. */
	return bpf_map_lookup_elem(&filter_ports, &port) ||
	       bpf_map_lookup_elem(&filter_ports, &req_port);
}

/*
 * Everything emit needs from struct sock_common lies in its first bytes
 * (family, port, both local addresses, the reuse and v6only bits, the bound
 * device, the netns), so it is copied with one helper call and read from the
 * copy at CO-RE-relocated offsets: a probe read per field would cost more
 * than the rest of the program.
 */
#define SKC_COPY_BYTES 96

static __always_inline void emit(struct sock *sk, __u64 uaddr, __s32 addrlen, bool user_addr,
				 __s32 ret, bool mptcp_subflow)
{
	struct capture_config *cfg = config();
	__u64 skc_copy[SKC_COPY_BYTES / 8];
	struct sock_common *skc = (void *)skc_copy;
	struct requested req = {};
	struct bind_event *e;
	__u64 *seqp;
	__u32 zero = 0;
	__u16 family, port;

	if (!cfg || !sk)
		return;
	if (ret != 0 && !(cfg->flags & CAPTURE_ERRORS))
		return;
	if (bpf_probe_read_kernel(skc_copy, sizeof(skc_copy), sk))
		return;
	family = skc->skc_family;
	if (family != AF_INET && family != AF_INET6)
		return;
	port = skc->skc_num;
	read_requested(&req, uaddr, addrlen, user_addr);
	if (!port_wanted(cfg, port, req.port))
		return;

	/* Numbered only after every filter passed, so a gap means a lost record. */
	seqp = bpf_map_lookup_elem(&seq_counter, &zero);
	if (!seqp)
		return;
	__u64 seq = __sync_fetch_and_add(seqp, 1);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_RINGBUF_FULL);
		return;
	}

	struct task_struct *task = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	__u8 opts = inet_options(sk);

	e->ts_boot_ns = bpf_ktime_get_boot_ns();
	e->seq = seq;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->ppid = task->real_parent->tgid;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->mntns = task->nsproxy->mnt_ns->ns.inum;
	e->netns = BPF_CORE_READ(skc->skc_net.net, ns.inum);
	e->ret = ret;
	e->bound_dev_if = skc->skc_bound_dev_if;
	/* A subflow is TCP to the kernel but MPTCP to the caller who made it. */
	e->protocol = mptcp_subflow ? IPPROTO_MPTCP : BPF_CORE_READ(sk, sk_protocol);
	e->family = family;
	e->port = port;
	e->req_port = req.port;
	e->req_family = req.family;
	e->reuse = BPF_CORE_READ_BITFIELD(skc, skc_reuse);
	if (e->reuse)
		opts |= OPT_REUSEADDR;
	if (BPF_CORE_READ_BITFIELD(skc, skc_reuseport))
		opts |= OPT_REUSEPORT;
	if (BPF_CORE_READ_BITFIELD(skc, skc_ipv6only))
		opts |= OPT_V6ONLY;
	e->opts = opts;
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	if (family == AF_INET)
		__builtin_memcpy(e->addr, &skc->skc_rcv_saddr, 4);
	else
		__builtin_memcpy(e->addr, &skc->skc_v6_rcv_saddr, 16);
	__builtin_memcpy(e->req_addr, req.addr, sizeof(e->req_addr));
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	/* Wake the reader once per crossing of the watermark, not per record. */
	__u64 unread = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 flags = BPF_RB_NO_WAKEUP;
	if (unread >= cfg->wakeup_bytes && unread - RECORD_BYTES < cfg->wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* ---- fexit ---------------------------------------------------------------- */

static __always_inline int fexit_inet(struct socket *sock, struct sockaddr *uaddr, int addrlen,
				      int ret)
{
	struct capture_config *cfg = config();
	bool subflow;

	if (!cfg || !task_wanted(cfg))
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	subflow = is_mptcp_subflow(sk);
	if (subflow && (cfg->flags & MPTCP_HOOKED))
		return 0;
	emit(sk, (__u64)uaddr, addrlen, false, ret, subflow);
	return 0;
}

SEC("fexit/inet_bind")
int BPF_PROG(fexit_inet_bind, struct socket *sock, struct sockaddr *uaddr, int addrlen, int ret)
{
	return fexit_inet(sock, uaddr, addrlen, ret);
}

SEC("fexit/inet6_bind")
int BPF_PROG(fexit_inet6_bind, struct socket *sock, struct sockaddr *uaddr, int addrlen, int ret)
{
	return fexit_inet(sock, uaddr, addrlen, ret);
}

SEC("fexit/mptcp_bind")
int BPF_PROG(fexit_mptcp_bind, struct socket *sock, struct sockaddr *uaddr, int addrlen, int ret)
{
	struct capture_config *cfg = config();

	if (!cfg || !task_wanted(cfg))
		return 0;
	emit(BPF_CORE_READ(sock, sk), (__u64)uaddr, addrlen, false, ret, false);
	return 0;
}

/* ---- kprobe + kretprobe ---------------------------------------------------- */

static __always_inline void stash(__u64 sock, __u64 uaddr, __s32 addrlen)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_bind p = {.sock = sock, .uaddr = uaddr, .addrlen = addrlen};

	if (bpf_map_update_elem(&pending, &tid, &p, BPF_ANY))
		count_drop(DROP_PENDING_FULL);
}

/* Returns the stashed call of this thread and forgets it. */
static __always_inline bool unstash(struct pending_bind *out)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_bind *p = bpf_map_lookup_elem(&pending, &tid);

	if (!p)
		return false;
	*out = *p;
	bpf_map_delete_elem(&pending, &tid);
	return true;
}

static __always_inline int kretprobe_emit(int ret)
{
	struct pending_bind p;

	/* Checked before the stash is taken: during a generation flip the
	 * return probes of both generations run, and only one may take it. */
	if (!config() || !unstash(&p))
		return 0;
	/* Outside BPF_CORE_READ: its relocations must not reach our own struct. */
	struct socket *sock = (struct socket *)p.sock;
	struct sock *sk = BPF_CORE_READ(sock, sk);

	emit(sk, p.uaddr, p.addrlen, false, ret, is_mptcp_subflow(sk));
	return 0;
}

/* Attached to inet_bind and inet6_bind. On kernels where mptcp_bind calls
 * inet_bind for its subflow, the subflow is skipped here so the outer
 * mptcp_bind call keeps this thread's stash. */
SEC("kprobe/inet_bind")
int BPF_KPROBE(kprobe_inet_bind, struct socket *sock, struct sockaddr *uaddr, int addrlen)
{
	struct capture_config *cfg = config();

	if (!cfg || !task_wanted(cfg))
		return 0;
	if ((cfg->flags & MPTCP_HOOKED) && is_mptcp_subflow(BPF_CORE_READ(sock, sk)))
		return 0;
	stash((__u64)sock, (__u64)uaddr, addrlen);
	return 0;
}

SEC("kprobe/mptcp_bind")
int BPF_KPROBE(kprobe_mptcp_bind, struct socket *sock, struct sockaddr *uaddr, int addrlen)
{
	struct capture_config *cfg = config();

	if (!cfg || !task_wanted(cfg))
		return 0;
	stash((__u64)sock, (__u64)uaddr, addrlen);
	return 0;
}

/* Return probe of inet_bind and inet6_bind. A stashed MPTCP socket means this
 * inet_bind runs inside mptcp_bind for its subflow: that stash belongs to the
 * outer call, whose return probe reports it once the addresses are copied. */
SEC("kretprobe/inet_bind")
int BPF_KRETPROBE(kretprobe_inet_bind, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_bind *p;
	struct socket *sock;

	if (!config())
		return 0;
	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	sock = (struct socket *)p->sock;
	if (BPF_CORE_READ(sock, sk, sk_protocol) == IPPROTO_MPTCP)
		return 0;
	return kretprobe_emit(ret);
}

SEC("kretprobe/mptcp_bind")
int BPF_KRETPROBE(kretprobe_mptcp_bind, int ret)
{
	return kretprobe_emit(ret);
}

/* The socket behind fd in task's file table. A bind that succeeded proves
 * fd is a socket; after a failure it may be any file (bind can fail before
 * the fd is looked at), so the inode type and the socket's back pointer are
 * checked: an O_PATH fd of a socket inode has no socket behind it. */
static __always_inline struct socket *socket_from_fd(struct task_struct *task, __u64 fd, __s32 ret)
{
	struct fdtable *fdt = task->files->fdt;
	struct file *f = NULL;
	struct socket *sock;

	if (fd >= fdt->max_fds)
		return NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]) || !f)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock || ret == 0)
		return sock;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	if (BPF_CORE_READ(sock, file) != f)
		return NULL;
	return sock;
}

/* ---- syscall tracepoint --------------------------------------------------- */

/*
 * Only the exit is hooked: bind's arguments are still in the registers the
 * task saved at syscall entry, so no entry program and no per-thread map are
 * needed. On x86-64 they are di (fd), si (sockaddr), dx (length).
 */
SEC("tracepoint/syscalls/sys_exit_bind")
int tracepoint_exit_bind(struct trace_event_raw_sys_exit *ctx)
{
	struct capture_config *cfg = config();
	struct task_struct *task;
	struct pt_regs *regs;
	struct socket *sock;
	__s32 ret = ctx->ret;

	/* Not a socket: nothing to report. */
	if (ret == -ENOTSOCK || ret == -EBADF)
		return 0;
	if (!cfg || !task_wanted(cfg))
		return 0;
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	sock = socket_from_fd(task, regs->di, ret);
	if (!sock)
		return 0;
	emit(BPF_CORE_READ(sock, sk), regs->si, (__s32)regs->dx, true, ret, false);
	return 0;
}
