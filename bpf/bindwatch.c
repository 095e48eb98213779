// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/*
 * bindwatch: a record per bind() and listen() on an AF_INET or AF_INET6
 * socket, and per socket that stops listening.
 *
 * Three hook variants share one emit path; the loader attaches exactly one
 * for bind and listen:
 *   fexit      inet_bind, inet6_bind, mptcp_bind, inet_listen, mptcp_listen:
 *              arguments and return value in one program, no per-thread state.
 *   kprobe     the same functions, entry + return, the socket stashed per thread.
 *   tracepoint syscalls/sys_exit_bind, sys_exit_listen: need neither
 *              trampolines nor kprobes; the socket is found from the fd in the
 *              task's file table.
 * and, with every variant, for the listener timeline:
 *   tp_btf/inet_sock_set_state  LISTEN -> anything is a socket that stopped
 *              listening (close, shutdown(SHUT_RD), the undo of a failed
 *              listen); CLOSE -> LISTEN stamps when it began. A BTF tracepoint
 *              because it may call bpf_get_socket_cookie and sk storage, which
 *              the classic tracepoint may not, and it needs no trampolines.
 *   cgroup/sock_create  asks for every new inet socket's cookie, so hooks that
 *              cannot call the cookie helper (kprobe, syscall tracepoint) read
 *              a cookie that is already there instead of 0.
 *   cgroup/sock_release  a UDP socket bound to an explicit port is released:
 *              UDP has no state change to trace.
 *   iter/task_file  the inventory of sockets that already exist.
 */

#include "headers/kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "bindwatch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SOCKADDR_IN6_LEN 28
/* A sock_event in the ring buffer: 8-byte header plus the record. */
#define RECORD_BYTES (8 + sizeof(struct sock_event))

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

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KIND_DROP_REASONS * KIND_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} kind_drops SEC(".maps");

/* The boot-clock time until which an agent holds capture: it renews it
 * while it runs. Once past, every program returns at once and counts the
 * skip, so a stopped or removed agent stops costing every bind and stops
 * filling a ring nobody reads. 0: no lease (snoop, capture.orphan_timeout 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lease SEC(".maps");

/* A map rather than rodata so filters can change while attached (SIGHUP). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct capture_config);
} config_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FILTER_PORTS);
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

/* Entry-to-return state for the kprobe variant: bind and listen never nest
 * in one thread except MPTCP's own subflow call, which is skipped. LRU, so a
 * thread that dies inside the call cannot leak an entry forever. */
struct pending_call {
	__u64 sock;  /* struct socket * */
	__u64 uaddr; /* bind: the kernel's copy of the caller's sockaddr */
	__s32 arg;   /* bind: addrlen; listen: backlog */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_PENDING);
	__type(key, __u32);
	__type(value, struct pending_call);
} pending SEC(".maps");

/* Sockets listening now, by cookie: when they began and on which port. The
 * kernel gives an autobound port back before the state change to CLOSE is
 * traced, so the close record takes its port from here. Written when a
 * listen returns and by the inventory, removed at close; LRU, so a host
 * with more listeners than this loses only durations and ports of closes. */
struct listening {
	__u64 start_ns;
	__u16 port;
	__u16 _pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_LISTENING);
	__type(key, __u64);
	__type(value, struct listening);
} listening SEC(".maps");

/* UDP sockets bound to an explicit port, by cookie: their bind record, so
 * that their release can be reported with the address they served. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_UDP_SERVERS);
	__type(key, __u64);
	__type(value, struct sock_event);
} udp_servers SEC(".maps");

/* Room for one sock_event outside the ring: kernels before 6.2 refuse ring
 * memory as a map update's value, so a record to keep is copied here first. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sock_event);
} scratch SEC(".maps");

/* Per-user budgets of bind records, per CPU: no lock, no atomics on the
 * bind path. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, MAX_BUDGET_UIDS);
	__type(key, __u32);
	__type(value, struct uid_budget);
} uid_budgets SEC(".maps");

/* The same for listen and close records: a budget of their own, so a
 * user's bind flood never suppresses its listeners (and a listen flood is
 * answered by the agent retaking the inventory, see pipeline). A map of
 * its own, not a wider value: pinned budgets of an older agent stay
 * compatible. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, MAX_BUDGET_UIDS);
	__type(key, __u32);
	__type(value, struct uid_budget);
} listener_budgets SEC(".maps");

/* The first of the sequence numbers the last reserve_seq run took. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} reserved_seq SEC(".maps");

/* Force the shared types into BTF so bpf2go generates their Go mirrors. */
const struct sock_event *unused_sock_event __attribute__((unused));
const struct inventory_entry *unused_inventory_entry __attribute__((unused));
const struct uid_budget *unused_uid_budget __attribute__((unused));
const enum record_kind *unused_record_kind __attribute__((unused));
const enum option_bits *unused_option_bits __attribute__((unused));
const enum capture_flags *unused_capture_flags __attribute__((unused));
const enum drop_reason *unused_drop_reason __attribute__((unused));
const enum kind_drop_reason *unused_kind_drop_reason __attribute__((unused));
const enum limits *unused_limits __attribute__((unused));
const enum layout_version *unused_layout_version __attribute__((unused));
const enum req_family_none *unused_req_family_none __attribute__((unused));

/*
 * bpf_rdonly_cast (Linux 6.2+) turns a kernel address into a pointer whose
 * fields the program may load directly: one load each, where
 * bpf_probe_read_kernel is a helper call each (and the verifier inlines the
 * cast itself to a move). It is a weak kfunc: on an older kernel the loader
 * leaves have_rdonly_cast() a constant 0 and the verifier drops the direct
 * path, so the probe-read path below each use runs there instead. Loads
 * through the cast pointer are fault-safe, as probe reads are.
 */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define have_rdonly_cast() (!!bpf_rdonly_cast)
#define rdonly(type, p) \
	((struct type *)bpf_rdonly_cast((const void *)(p), bpf_core_type_id_kernel(struct type)))

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);
	if (n)
		*n += 1;
}

static __always_inline void count_kind_drop(__u32 reason, __u16 kind)
{
	__u32 slot = reason * KIND_SLOTS + (kind & (KIND_SLOTS - 1));
	__u64 *n = bpf_map_lookup_elem(&kind_drops, &slot);
	if (n)
		*n += 1;
}

/* This object's generation, set by the loader (see capture_config). */
const volatile __u32 generation = 0;

/* The configuration, or NULL when programs of another generation are the
 * ones reporting, or when the lease ran out: every program returns at once
 * then. */
static __always_inline struct capture_config *config(void)
{
	__u32 zero = 0;
	struct capture_config *cfg = bpf_map_lookup_elem(&config_map, &zero);
	__u64 *until;

	if (!cfg || cfg->generation != generation)
		return NULL;
	until = bpf_map_lookup_elem(&lease, &zero);
	if (until && *until && bpf_ktime_get_boot_ns() > *until) {
		count_drop(DROP_ORPHANED);
		return NULL;
	}
	return cfg;
}

/* The configuration when listen and close records are wanted. */
static __always_inline struct capture_config *listener_config(void)
{
	struct capture_config *cfg = config();

	if (!cfg || !(cfg->flags & CAPTURE_LISTENERS))
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

/* Whether the current task is inside system call nr (x86-64 numbering): a
 * bind or listen made through io_uring, by a 32-bit task or by the kernel
 * is not, and the syscall tracepoints never see it. */
static __always_inline bool in_syscall(long nr)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	return regs && (long)regs->orig_ax == nr;
}

static __always_inline bool is_mptcp_subflow(struct sock *sk)
{
	if (!bpf_core_field_exists(struct tcp_sock, is_mptcp))
		return false;
	if (have_rdonly_cast()) {
		if (rdonly(sock, sk)->sk_protocol != IPPROTO_TCP)
			return false;
		return BPF_CORE_READ_BITFIELD(rdonly(tcp_sock, sk), is_mptcp);
	}
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return false;
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	return BPF_CORE_READ_BITFIELD_PROBED(tp, is_mptcp);
}

/* The option bits of inet_sock's inet_flags word (6.6+). */
static __always_inline __u8 inet_flag_options(unsigned long flags)
{
	__u8 opts = 0;

	if (flags & (1UL << INET_FLAGS_FREEBIND))
		opts |= OPT_FREEBIND;
	if (flags & (1UL << INET_FLAGS_TRANSPARENT))
		opts |= OPT_TRANSPARENT;
	if (flags & (1UL << INET_FLAGS_BIND_ADDRESS_NO_PORT))
		opts |= OPT_BIND_ADDRESS_NO_PORT;
	return opts;
}

/* The option bits kept in inet_sock: FREEBIND, TRANSPARENT, BIND_ADDRESS_NO_PORT,
 * bitfields before 6.6, bits of inet_flags since. */
static __always_inline __u8 inet_options(struct sock *sk)
{
	if (bpf_core_field_exists(struct inet_sock___pre_6_6, freebind)) {
		struct inet_sock___pre_6_6 *old = (void *)sk;
		__u8 opts = 0;

		if (BPF_CORE_READ_BITFIELD_PROBED(old, freebind))
			opts |= OPT_FREEBIND;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, transparent))
			opts |= OPT_TRANSPARENT;
		if (BPF_CORE_READ_BITFIELD_PROBED(old, bind_address_no_port))
			opts |= OPT_BIND_ADDRESS_NO_PORT;
		return opts;
	}
	if (have_rdonly_cast())
		return inet_flag_options(rdonly(inet_sock, sk)->inet_flags);
	return inet_flag_options(BPF_CORE_READ((struct inet_sock *)sk, inet_flags));
}

/* The accept backlog listen() set. An MPTCP socket keeps it on its first
 * subflow, which is the socket that really listens. */
static __always_inline __u32 listen_backlog(struct sock *sk)
{
	if (have_rdonly_cast()) {
		struct sock *s = rdonly(sock, sk);

		if (s->sk_protocol == IPPROTO_MPTCP && rdonly(mptcp_sock, sk)->first)
			s = rdonly(mptcp_sock, sk)->first;
		return s->sk_max_ack_backlog;
	}
	if (BPF_CORE_READ(sk, sk_protocol) == IPPROTO_MPTCP) {
		struct mptcp_sock *msk = (void *)sk;
		struct sock *first = BPF_CORE_READ(msk, first);

		if (first)
			return BPF_CORE_READ(first, sk_max_ack_backlog);
	}
	return BPF_CORE_READ(sk, sk_max_ack_backlog);
}

/* The socket's cookie as stored: 0 until someone asked for it. Hooks that
 * may not call bpf_get_socket_cookie read it here; cgroup/sock_create and
 * the inventory ask for every socket's, so it is there when they look. */
static __always_inline __u64 stored_cookie(struct sock *sk)
{
	if (have_rdonly_cast())
		return rdonly(sock, sk)->__sk_common.skc_cookie.counter;
	return BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
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
	req->family = REQ_FAMILY_NONE;
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

/* Whether uid may have one more record of this kind now: binds draw on
 * one bucket, listens and closes on another. Root is not budgeted: the
 * budget keeps users from crowding out others, and root's records are the
 * ones it protects. A record over budget is counted for its user (the agent
 * reports the counts) and among the drops, and takes no sequence number:
 * the report says what is missing instead of a gap. */
static __always_inline bool within_budget(const struct capture_config *cfg, __u32 uid, __u64 now,
					  __u16 kind)
{
	bool listener = kind != KIND_BIND;
	struct uid_budget *b;

	if (!cfg->budget_per_sec || uid == 0)
		return true;
	if (listener)
		b = bpf_map_lookup_elem(&listener_budgets, &uid);
	else
		b = bpf_map_lookup_elem(&uid_budgets, &uid);
	if (!b) {
		struct uid_budget fresh = {.last_ns = now, .tokens = cfg->budget_burst ? cfg->budget_burst - 1 : 0};
		if (listener)
			bpf_map_update_elem(&listener_budgets, &uid, &fresh, BPF_NOEXIST);
		else
			bpf_map_update_elem(&uid_budgets, &uid, &fresh, BPF_NOEXIST);
		return true;
	}
	__u64 elapsed = now - b->last_ns;
	if (elapsed > 10000000000ULL) /* longer than 10 s: the bucket is full anyway */
		elapsed = 10000000000ULL;
	__u64 add = elapsed * cfg->budget_per_sec / 1000000000ULL;
	if (add) {
		__u64 tokens = b->tokens + add;
		b->tokens = tokens > cfg->budget_burst ? cfg->budget_burst : tokens;
		b->last_ns = now;
	}
	if (!b->tokens) {
		b->suppressed++;
		count_drop(DROP_BUDGET);
		count_kind_drop(KIND_DROP_BUDGET, kind);
		return false;
	}
	b->tokens--;
	return true;
}

/* Takes the next sequence number: only once every filter passed, so a gap
 * means a lost record. */
static __always_inline bool next_seq(__u64 *seq)
{
	__u32 zero = 0;
	__u64 *seqp = bpf_map_lookup_elem(&seq_counter, &zero);

	if (!seqp)
		return false;
	*seq = __sync_fetch_and_add(seqp, 1);
	return true;
}

/* Whether a record of this kind may be reserved with unread bytes in the
 * ring: binds stop at bind_limit, the rest is the listeners'. Counted when
 * not, after the record took its sequence number: a refused bind is a gap,
 * like a full ring. */
static __always_inline bool ring_room(const struct capture_config *cfg, __u16 kind, __u64 unread)
{
	if (kind != KIND_BIND || !cfg->bind_limit || unread < cfg->bind_limit)
		return true;
	count_kind_drop(KIND_DROP_RESERVED, kind);
	return false;
}

/* Reserves a record, or counts why not. */
static __always_inline struct sock_event *reserve(__u16 kind)
{
	struct sock_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		count_drop(DROP_RINGBUF_FULL);
		count_kind_drop(KIND_DROP_RING_FULL, kind);
	}
	return e;
}

/* Submits a record, waking the reader once per crossing of the watermark
 * rather than per record. unread is the ring's fill after the record's
 * reservation, as the caller queried it before (one query serves both the
 * bind limit and the wakeup). */
static __always_inline void submit_at(struct sock_event *e, const struct capture_config *cfg, __u64 unread)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (unread >= cfg->wakeup_bytes && unread - RECORD_BYTES < cfg->wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void submit(struct sock_event *e, const struct capture_config *cfg)
{
	submit_at(e, cfg, bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA));
}

/* What a call adds to the socket's own state in a record. */
struct call {
	__u16 kind;
	__s32 ret;
	__u64 cookie;
	__u64 uaddr; /* bind: the caller's sockaddr */
	__s32 addrlen;
	bool user_addr;
	bool mptcp_subflow;
	__u32 backlog;
	__u64 listen_ns;
	__u16 closed_port; /* close: the port it listened on */
};

/* The reuse and v6only bits of skc, which both fill paths can read
 * directly (the socket itself, or a copy of its first bytes), with the
 * inet options into the record. */
static __always_inline void fill_reuse(struct sock_event *e, struct sock_common *skc, __u8 opts)
{
	e->reuse = BPF_CORE_READ_BITFIELD(skc, skc_reuse);
	if (e->reuse)
		opts |= OPT_REUSEADDR;
	if (BPF_CORE_READ_BITFIELD(skc, skc_reuseport))
		opts |= OPT_REUSEPORT;
	if (BPF_CORE_READ_BITFIELD(skc, skc_ipv6only))
		opts |= OPT_V6ONLY;
	e->opts = opts;
}

/* The record's socket fields by direct loads (see bpf_rdonly_cast). */
static __always_inline void fill_sock_direct(struct sock_event *e, struct sock *raw)
{
	struct sock *sk = rdonly(sock, raw);
	struct sock_common *skc = &sk->__sk_common;
	__u32 *addr = (__u32 *)e->addr;
	__u8 opts = inet_options(raw);

	e->netns = skc->skc_net.net->ns.inum;
	e->bound_dev_if = skc->skc_bound_dev_if;
	e->protocol = sk->sk_protocol;
	fill_reuse(e, skc, opts);
	if (e->family == AF_INET) {
		addr[0] = skc->skc_rcv_saddr;
		addr[1] = addr[2] = addr[3] = 0;
	} else {
		addr[0] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[0];
		addr[1] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[1];
		addr[2] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[2];
		addr[3] = skc->skc_v6_rcv_saddr.in6_u.u6_addr32[3];
	}
}

/*
 * Where direct loads are not allowed, everything emit needs from struct
 * sock_common lies in its first bytes (family, port, both local addresses,
 * the reuse and v6only bits, the bound device, the netns), so it is copied
 * with one helper call and read from the copy at CO-RE-relocated offsets: a
 * probe read per field would cost more than the rest of the program.
 */
#define SKC_COPY_BYTES 96

/* The record's socket fields from that copy, and probe reads. */
static __always_inline void fill_sock_copied(struct sock_event *e, struct sock_common *skc, struct sock *sk)
{
	__u8 opts = inet_options(sk);

	e->netns = BPF_CORE_READ(skc->skc_net.net, ns.inum);
	e->bound_dev_if = skc->skc_bound_dev_if;
	e->protocol = BPF_CORE_READ(sk, sk_protocol);
	fill_reuse(e, skc, opts);
	__builtin_memset(e->addr, 0, sizeof(e->addr));
	if (e->family == AF_INET)
		__builtin_memcpy(e->addr, &skc->skc_rcv_saddr, 4);
	else
		__builtin_memcpy(e->addr, &skc->skc_v6_rcv_saddr, 16);
}

static __always_inline void emit(const struct capture_config *cfg, struct sock *sk, const struct call *c)
{
	__u64 skc_copy[SKC_COPY_BYTES / 8];
	struct sock_common *skc = (void *)skc_copy;
	struct requested req = {.family = REQ_FAMILY_NONE};
	struct sock_event *e;
	__u16 family, port;
	__u32 zero = 0;
	__u64 seq;

	if (!sk)
		return;
	if (c->ret != 0 && !(cfg->flags & CAPTURE_ERRORS))
		return;
	if (have_rdonly_cast()) {
		family = rdonly(sock, sk)->__sk_common.skc_family;
		port = rdonly(sock, sk)->__sk_common.skc_num;
	} else {
		if (bpf_probe_read_kernel(skc_copy, sizeof(skc_copy), sk))
			return;
		family = skc->skc_family;
		port = skc->skc_num;
	}
	if (family != AF_INET && family != AF_INET6)
		return;
	if (c->kind == KIND_CLOSE && c->closed_port)
		port = c->closed_port;
	if (c->kind == KIND_BIND)
		read_requested(&req, c->uaddr, c->addrlen, c->user_addr);
	if (!port_wanted(cfg, port, req.port))
		return;
	__u64 uid_gid = bpf_get_current_uid_gid();
	__u64 now = bpf_ktime_get_boot_ns();
	if (!within_budget(cfg, (__u32)uid_gid, now, c->kind))
		return;
	if (!next_seq(&seq))
		return;
	__u64 unread = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (!ring_room(cfg, c->kind, unread))
		return;
	e = reserve(c->kind);
	if (!e)
		return;

	struct task_struct *task = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	e->hdr.ts_boot_ns = now;
	e->hdr.seq = seq;
	e->hdr.kind = c->kind;
	e->hdr.layout = LAYOUT_VERSION;
	e->hdr._pad = 0;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->cookie = c->cookie;
	e->listen_ns = c->listen_ns;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->ppid = task->real_parent->tgid;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->mntns = task->nsproxy->mnt_ns->ns.inum;
	e->ret = c->ret;
	e->backlog = c->backlog;
	e->family = family;
	e->port = port;
	e->req_port = req.port;
	e->req_family = req.family;
	if (have_rdonly_cast())
		fill_sock_direct(e, sk);
	else
		fill_sock_copied(e, skc, sk);
	/* A subflow is TCP to the kernel but MPTCP to the caller who made it. */
	if (c->mptcp_subflow)
		e->protocol = IPPROTO_MPTCP;
	__builtin_memcpy(e->req_addr, req.addr, sizeof(e->req_addr));
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	if (c->kind == KIND_LISTEN && c->ret == 0 && c->cookie != 0) {
		struct listening l = {.start_ns = e->hdr.ts_boot_ns, .port = port};
		struct listening *was = bpf_map_lookup_elem(&listening, &c->cookie);

		/* A second listen() only changes the backlog: it began earlier. */
		if (was && was->start_ns)
			l.start_ns = was->start_ns;
		bpf_map_update_elem(&listening, &c->cookie, &l, BPF_ANY);
	}
	/* A UDP socket bound to a port its caller chose is a server: remember
	 * it, so its release can be reported (UDP has no state to trace). */
	if (c->kind == KIND_BIND && c->ret == 0 && e->protocol == IPPROTO_UDP && req.port != 0 &&
	    c->cookie != 0 && (cfg->flags & CAPTURE_LISTENERS)) {
		struct sock_event *copy = bpf_map_lookup_elem(&scratch, &zero);

		if (copy) {
			__builtin_memcpy(copy, e, sizeof(*e));
			bpf_map_update_elem(&udp_servers, &c->cookie, copy, BPF_ANY);
		}
	}
	submit_at(e, cfg, unread + RECORD_BYTES);
}

/* ---- fexit ---------------------------------------------------------------- */

static __always_inline int fexit_bind(struct socket *sock, struct sockaddr *uaddr, int addrlen,
				      int ret, bool outer_mptcp)
{
	struct capture_config *cfg = config();
	struct call c = {.kind = KIND_BIND, .ret = ret, .uaddr = (__u64)uaddr, .addrlen = addrlen};
	struct sock *sk;

	if (!cfg || !task_wanted(cfg))
		return 0;
	sk = sock->sk;
	if (!sk)
		return 0;
	if (!outer_mptcp) {
		c.mptcp_subflow = is_mptcp_subflow(sk);
		if (c.mptcp_subflow && (cfg->flags & MPTCP_HOOKED))
			return 0;
	}
	c.cookie = bpf_get_socket_cookie(sk);
	emit(cfg, sk, &c);
	return 0;
}

SEC("fexit/inet_bind")
int BPF_PROG(fexit_inet_bind, struct socket *sock, struct sockaddr *uaddr, int addrlen, int ret)
{
	return fexit_bind(sock, uaddr, addrlen, ret, false);
}

SEC("fexit/inet6_bind")
int BPF_PROG(fexit_inet6_bind, struct socket *sock, struct sockaddr *uaddr, int addrlen, int ret)
{
	return fexit_bind(sock, uaddr, addrlen, ret, false);
}

SEC("fexit/mptcp_bind")
int BPF_PROG(fexit_mptcp_bind, struct socket *sock, struct sockaddr *uaddr, int addrlen, int ret)
{
	return fexit_bind(sock, uaddr, addrlen, ret, true);
}

static __always_inline int fexit_listen(struct socket *sock, int ret, bool outer_mptcp)
{
	struct capture_config *cfg = listener_config();
	struct call c = {.kind = KIND_LISTEN, .ret = ret};
	struct sock *sk;

	if (!cfg || !task_wanted(cfg))
		return 0;
	sk = sock->sk;
	if (!sk)
		return 0;
	if (!outer_mptcp) {
		c.mptcp_subflow = is_mptcp_subflow(sk);
		if (c.mptcp_subflow && (cfg->flags & MPTCP_HOOKED))
			return 0;
	}
	c.cookie = bpf_get_socket_cookie(sk);
	c.backlog = listen_backlog(sk);
	emit(cfg, sk, &c);
	return 0;
}

/* Read after the call: an autobound listen has its port only now. */
SEC("fexit/inet_listen")
int BPF_PROG(fexit_inet_listen, struct socket *sock, int backlog, int ret)
{
	return fexit_listen(sock, ret, false);
}

SEC("fexit/mptcp_listen")
int BPF_PROG(fexit_mptcp_listen, struct socket *sock, int backlog, int ret)
{
	return fexit_listen(sock, ret, true);
}

/* SCTP's listen is its own (a module's function): hooked when loaded. */
SEC("fexit/sctp_inet_listen")
int BPF_PROG(fexit_sctp_listen, struct socket *sock, int backlog, int ret)
{
	return fexit_listen(sock, ret, true);
}

/* ---- kprobe + kretprobe ---------------------------------------------------- */

static __always_inline void stash(__u64 sock, __u64 uaddr, __s32 arg)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_call p = {.sock = sock, .uaddr = uaddr, .arg = arg};

	if (bpf_map_update_elem(&pending, &tid, &p, BPF_ANY))
		count_drop(DROP_PENDING_FULL);
}

/* Returns the stashed call of this thread and forgets it. */
static __always_inline bool unstash(struct pending_call *out)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending_call *p = bpf_map_lookup_elem(&pending, &tid);

	if (!p)
		return false;
	*out = *p;
	bpf_map_delete_elem(&pending, &tid);
	return true;
}

static __always_inline int kretprobe_emit(struct capture_config *cfg, __u16 kind, int ret)
{
	struct pending_call p;

	/* Checked before the stash is taken: during a generation flip the
	 * return probes of both generations run, and only one may take it. */
	if (!cfg || !unstash(&p))
		return 0;
	/* Outside BPF_CORE_READ: its relocations must not reach our own struct. */
	struct socket *sock = (struct socket *)p.sock;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	struct call c = {.kind = kind, .ret = ret, .cookie = stored_cookie(sk)};

	c.mptcp_subflow = is_mptcp_subflow(sk);
	if (kind == KIND_BIND) {
		c.uaddr = p.uaddr;
		c.addrlen = p.arg;
	} else {
		c.backlog = listen_backlog(sk);
	}
	emit(cfg, sk, &c);
	return 0;
}

/* Entry of inet_bind, inet6_bind and inet_listen. On kernels where the
 * MPTCP functions call these for their subflow, the subflow is skipped here
 * so the outer call keeps this thread's stash. */
static __always_inline int kprobe_stash(struct socket *sock, __u64 uaddr, __s32 arg, bool listen)
{
	struct capture_config *cfg = listen ? listener_config() : config();

	if (!cfg || !task_wanted(cfg))
		return 0;
	if ((cfg->flags & MPTCP_HOOKED) && is_mptcp_subflow(BPF_CORE_READ(sock, sk)))
		return 0;
	stash((__u64)sock, uaddr, arg);
	return 0;
}

SEC("kprobe/inet_bind")
int BPF_KPROBE(kprobe_inet_bind, struct socket *sock, struct sockaddr *uaddr, int addrlen)
{
	return kprobe_stash(sock, (__u64)uaddr, addrlen, false);
}

/* Entry of MPTCP's and SCTP's own functions: their call is the one to
 * report, so there is no subflow to skip. */
static __always_inline int kprobe_stash_outer(const struct capture_config *cfg, struct socket *sock,
					      __u64 uaddr, __s32 arg)
{
	if (!cfg || !task_wanted(cfg))
		return 0;
	stash((__u64)sock, uaddr, arg);
	return 0;
}

SEC("kprobe/mptcp_bind")
int BPF_KPROBE(kprobe_mptcp_bind, struct socket *sock, struct sockaddr *uaddr, int addrlen)
{
	return kprobe_stash_outer(config(), sock, (__u64)uaddr, addrlen);
}

/* Return probe of inet_bind and inet6_bind, and of inet_listen. A stashed
 * MPTCP socket means this call runs inside the MPTCP function for its
 * subflow: that stash belongs to the outer call, whose return probe reports
 * it once the addresses are copied. */
static __always_inline int kretprobe_inner(__u16 kind, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct capture_config *cfg = config();
	struct pending_call *p;
	struct socket *sock;

	if (!cfg)
		return 0;
	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	sock = (struct socket *)p->sock;
	if (BPF_CORE_READ(sock, sk, sk_protocol) == IPPROTO_MPTCP)
		return 0;
	return kretprobe_emit(cfg, kind, ret);
}

SEC("kretprobe/inet_bind")
int BPF_KRETPROBE(kretprobe_inet_bind, int ret)
{
	return kretprobe_inner(KIND_BIND, ret);
}

SEC("kretprobe/mptcp_bind")
int BPF_KRETPROBE(kretprobe_mptcp_bind, int ret)
{
	return kretprobe_emit(config(), KIND_BIND, ret);
}

SEC("kprobe/inet_listen")
int BPF_KPROBE(kprobe_inet_listen, struct socket *sock, int backlog)
{
	return kprobe_stash(sock, 0, backlog, true);
}

SEC("kprobe/mptcp_listen")
int BPF_KPROBE(kprobe_mptcp_listen, struct socket *sock, int backlog)
{
	return kprobe_stash_outer(listener_config(), sock, 0, backlog);
}

SEC("kretprobe/inet_listen")
int BPF_KRETPROBE(kretprobe_inet_listen, int ret)
{
	return kretprobe_inner(KIND_LISTEN, ret);
}

SEC("kretprobe/mptcp_listen")
int BPF_KRETPROBE(kretprobe_mptcp_listen, int ret)
{
	return kretprobe_emit(config(), KIND_LISTEN, ret);
}

SEC("kprobe/sctp_inet_listen")
int BPF_KPROBE(kprobe_sctp_listen, struct socket *sock, int backlog)
{
	return kprobe_stash_outer(listener_config(), sock, 0, backlog);
}

SEC("kretprobe/sctp_inet_listen")
int BPF_KRETPROBE(kretprobe_sctp_listen, int ret)
{
	return kretprobe_emit(config(), KIND_LISTEN, ret);
}

/* ---- syscall tracepoints --------------------------------------------------- */

/* The socket behind fd in task's file table. A call that succeeded proves
 * fd is a socket; after a failure it may be any file (bind can fail before
 * the fd is looked at), so the inode type and the socket's back pointer are
 * checked: an O_PATH fd of a socket inode has no socket behind it. fd is
 * the int the kernel used: the register's upper 32 bits are not part of it
 * (a caller can set them to hide from a check that reads the whole register). */
static __always_inline struct socket *socket_from_fd(struct task_struct *task, int fd, __s32 ret)
{
	struct fdtable *fdt = task->files->fdt;
	struct file *f = NULL;
	struct socket *sock;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]) || !f)
		return NULL;
	if (have_rdonly_cast()) {
		struct file *rf = rdonly(file, f);

		sock = rdonly(socket, rf->private_data);
		if (!sock || ret == 0)
			return sock;
		if ((rf->f_inode->i_mode & S_IFMT) != S_IFSOCK)
			return NULL;
		if ((__u64)sock->file != (__u64)f)
			return NULL;
		return sock;
	}
	sock = BPF_CORE_READ(f, private_data);
	if (!sock || ret == 0)
		return sock;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return NULL;
	if (BPF_CORE_READ(sock, file) != f)
		return NULL;
	return sock;
}

/* The socket of the syscall this task is leaving; a call that succeeded on a
 * socket the program cannot find is counted, never silently skipped. */
static __always_inline struct sock *syscall_sock(struct pt_regs *regs, struct task_struct *task,
						 __s32 ret)
{
	struct socket *sock = socket_from_fd(task, (int)regs->di, ret);

	if (!sock) {
		if (ret == 0)
			count_drop(DROP_NO_SOCKET);
		return NULL;
	}
	if (have_rdonly_cast())
		return rdonly(socket, sock)->sk;
	return BPF_CORE_READ(sock, sk);
}

/*
 * Only the exit is hooked: the arguments are still in the registers the
 * task saved at syscall entry, so no entry program and no per-thread map are
 * needed. On x86-64 they are di, si, dx. exiting_sock is the socket of the
 * bind or listen being left, with those registers; NULL when there is
 * nothing to report (not a socket, filtered out, or not found: counted).
 */
static __always_inline struct sock *exiting_sock(const struct capture_config *cfg, __s32 ret,
						 struct pt_regs **regs)
{
	struct task_struct *task;

	if (ret == -ENOTSOCK || ret == -EBADF)
		return NULL;
	if (!cfg || !task_wanted(cfg))
		return NULL;
	task = bpf_get_current_task_btf();
	*regs = (struct pt_regs *)bpf_task_pt_regs(task);
	return syscall_sock(*regs, task, ret);
}

SEC("tracepoint/syscalls/sys_exit_bind")
int tracepoint_exit_bind(struct trace_event_raw_sys_exit *ctx)
{
	struct capture_config *cfg = config();
	struct pt_regs *regs;
	struct sock *sk = exiting_sock(cfg, ctx->ret, &regs);

	if (!sk)
		return 0;
	struct call c = {
		.kind = KIND_BIND,
		.ret = ctx->ret,
		.cookie = stored_cookie(sk),
		.uaddr = regs->si,
		.addrlen = (__s32)regs->dx,
		.user_addr = true,
	};
	emit(cfg, sk, &c);
	return 0;
}

/* listen(fd, backlog): the socket's port is read after the call, so an
 * autobound listen reports the port the kernel chose. The fd's socket is the
 * MPTCP socket itself, reported once, as MPTCP. */
SEC("tracepoint/syscalls/sys_exit_listen")
int tracepoint_exit_listen(struct trace_event_raw_sys_exit *ctx)
{
	struct capture_config *cfg = listener_config();
	struct pt_regs *regs;
	struct sock *sk = exiting_sock(cfg, ctx->ret, &regs);

	if (!sk)
		return 0;
	struct call c = {
		.kind = KIND_LISTEN,
		.ret = ctx->ret,
		.cookie = stored_cookie(sk),
		.backlog = listen_backlog(sk),
	};
	emit(cfg, sk, &c);
	return 0;
}

/* ---- listener timeline, every variant -------------------------------------- */

/*
 * Every TCP, MPTCP and SCTP listen passes CLOSE -> LISTEN (inside listen,
 * before an autobound port is chosen) and every end of listening passes
 * LISTEN -> another state: close, shutdown(SHUT_RD), or the undo of a
 * listen that failed. The MPTCP socket and its TCP subflow both change
 * state; the subflow is skipped so MPTCP is reported once, as MPTCP.
 */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tp_btf_sock_set_state, struct sock *sk, int oldstate, int newstate)
{
	struct capture_config *cfg;
	struct listening *l;

	if (newstate == TCP_LISTEN) {
		if (oldstate == TCP_LISTEN)
			return 0;
		/* Asked now so that the listen hook, which may not ask, finds it. */
		__u64 cookie = bpf_get_socket_cookie(sk);
		/* With the syscall hook, a listen from elsewhere (io_uring) is
		 * reported here: as it begins, so an autobound port may still be
		 * 0; a failure shows as the close that follows at once. */
		cfg = listener_config();
		if (!cfg || !(cfg->flags & REPORT_OFF_SYSCALL) || in_syscall(NR_listen))
			return 0;
		if (is_mptcp_subflow(sk) || !task_wanted(cfg))
			return 0;
		struct call c = {.kind = KIND_LISTEN, .cookie = cookie, .backlog = listen_backlog(sk)};
		emit(cfg, sk, &c);
		return 0;
	}
	/* LISTEN -> SYN_RECV is a new connection's socket cloned from the
	 * listener, not the listener: only the end states count. SCTP's close
	 * leaves LISTENING for CLOSING. */
	if (oldstate != TCP_LISTEN)
		return 0;
	if (newstate != TCP_CLOSE && !(newstate == TCP_CLOSE_WAIT && sk->sk_protocol == IPPROTO_SCTP))
		return 0;
	cfg = listener_config();
	if (!cfg || is_mptcp_subflow(sk) || !task_wanted(cfg))
		return 0;
	struct call c = {.kind = KIND_CLOSE, .cookie = bpf_get_socket_cookie(sk)};
	l = bpf_map_lookup_elem(&listening, &c.cookie);
	if (l) {
		if (l->start_ns)
			c.listen_ns = bpf_ktime_get_boot_ns() - l->start_ns;
		c.closed_port = l->port;
		bpf_map_delete_elem(&listening, &c.cookie);
	}
	emit(cfg, sk, &c);
	return 0;
}

/* Every new inet socket gets its cookie now, for the hooks that can only
 * read it. The socket is never refused. */
SEC("cgroup/sock_create")
int cgroup_sock_create(struct bpf_sock *ctx)
{
	bpf_get_socket_cookie(ctx);
	return 1;
}

/* A released UDP socket that was bound to an explicit port: reported with
 * the address of its bind, by whoever releases it. */
SEC("cgroup/sock_release")
int cgroup_sock_release(struct bpf_sock *ctx)
{
	struct capture_config *cfg;
	struct sock_event *bound, *e;
	__u64 cookie, seq;

	if (ctx->protocol != IPPROTO_UDP)
		return 1;
	cfg = listener_config();
	if (!cfg)
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	bound = bpf_map_lookup_elem(&udp_servers, &cookie);
	if (!bound)
		return 1;
	if (!next_seq(&seq))
		goto out;
	e = reserve(KIND_CLOSE);
	if (!e)
		goto out;
	__builtin_memcpy(e, bound, sizeof(*e));
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	e->listen_ns = now - bound->hdr.ts_boot_ns;
	e->hdr.ts_boot_ns = now;
	e->hdr.seq = seq;
	e->hdr.kind = KIND_CLOSE;
	e->ret = 0;
	e->req_family = REQ_FAMILY_NONE;
	e->req_port = 0;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->cgroup_id = bpf_get_current_cgroup_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	submit(e, cfg);
out:
	bpf_map_delete_elem(&udp_servers, &cookie);
	return 1;
}

/*
 * With the syscall hook, a bind that does not pass the bind system call
 * (io_uring's IORING_OP_BIND, a 32-bit task's) is reported from here, after
 * it succeeded, inside the kernel's bind path. The socket is seen only as
 * the post-bind context shows it: its address, port and protocol, not its
 * options, bound device nor what the caller asked for.
 */
static __always_inline int post_bind(struct bpf_sock *ctx, bool v6)
{
	struct capture_config *cfg = config();
	struct task_struct *task;
	struct sock_event *e;
	__u16 port;
	__u64 seq;

	if (!cfg || !(cfg->flags & REPORT_OFF_SYSCALL) || in_syscall(NR_bind))
		return 1;
	if (!task_wanted(cfg))
		return 1;
	port = ctx->src_port;
	if (!port_wanted(cfg, port, port))
		return 1;
	__u64 uid_gid = bpf_get_current_uid_gid();
	__u64 now = bpf_ktime_get_boot_ns();
	if (!within_budget(cfg, (__u32)uid_gid, now, KIND_BIND))
		return 1;
	if (!next_seq(&seq))
		return 1;
	__u64 unread = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (!ring_room(cfg, KIND_BIND, unread))
		return 1;
	e = reserve(KIND_BIND);
	if (!e)
		return 1;
	task = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.ts_boot_ns = now;
	e->hdr.seq = seq;
	e->hdr.kind = KIND_BIND;
	e->hdr.layout = LAYOUT_VERSION;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->cookie = bpf_get_socket_cookie(ctx);
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->ppid = task->real_parent->tgid;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->mntns = task->nsproxy->mnt_ns->ns.inum;
	e->netns = task->nsproxy->net_ns->ns.inum;
	e->protocol = ctx->protocol;
	e->family = ctx->family;
	e->port = port;
	e->req_family = REQ_FAMILY_NONE;
	if (v6) {
		__u32 *a = (__u32 *)e->addr;
		a[0] = ctx->src_ip6[0];
		a[1] = ctx->src_ip6[1];
		a[2] = ctx->src_ip6[2];
		a[3] = ctx->src_ip6[3];
	} else {
		__u32 *a = (__u32 *)e->addr;
		a[0] = ctx->src_ip4;
	}
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	submit_at(e, cfg, unread + RECORD_BYTES);
	return 1;
}

SEC("cgroup/post_bind4")
int cgroup_post_bind4(struct bpf_sock *ctx)
{
	return post_bind(ctx, false);
}

SEC("cgroup/post_bind6")
int cgroup_post_bind6(struct bpf_sock *ctx)
{
	return post_bind(ctx, true);
}

/* ---- inventory ------------------------------------------------------------- */

/*
 * One entry per (process, fd) holding an inet socket that listens, or a UDP
 * socket that is not connected: every network namespace in one pass, no
 * setns. The agent groups entries by cookie into one record per socket with
 * its holders.
 */
SEC("iter/task_file")
int iter_task_file(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct inventory_entry e = {};
	struct socket *sock;
	struct sock *sk;

	if (!task || !file)
		return 0;
	/* NULL for anything but a socket's file. */
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = sock->sk;
	if (!sk)
		return 0;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (e.family != AF_INET && e.family != AF_INET6)
		return 0;
	e.protocol = BPF_CORE_READ(sk, sk_protocol);
	e.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	e.dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	if (e.protocol == IPPROTO_UDP) {
		if (e.dport != 0)
			return 0;
	} else if (e.state != TCP_LISTEN) {
		return 0;
	}
	if (is_mptcp_subflow(sk))
		return 0;
	e.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (e.protocol == IPPROTO_UDP && e.port == 0)
		return 0;
	/* Read, not asked for: a socket reached through its file is not a
	 * pointer the cookie helper takes. 0 when nobody asked yet; the agent
	 * then asks through a copy of the fd (pidfd_getfd + SO_COOKIE). */
	e.cookie = stored_cookie(sk);
	e.inode = file->f_inode->i_ino;
	e.cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	e.pid = task->tgid;
	e.fd = ctx->fd;
	e.uid = task->cred->uid.val;
	e.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	e.mntns = task->nsproxy ? task->nsproxy->mnt_ns->ns.inum : 0;
	e.bound_dev_if = BPF_CORE_READ(sk, __sk_common.skc_bound_dev_if);
	e.backlog = listen_backlog(sk);
	e.userlocks = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_userlocks);
	e.opts = inet_options(sk);
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_reuse))
		e.opts |= OPT_REUSEADDR;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_reuseport))
		e.opts |= OPT_REUSEPORT;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_ipv6only))
		e.opts |= OPT_V6ONLY;
	if (e.family == AF_INET)
		BPF_CORE_READ_INTO(&e.addr, sk, __sk_common.skc_rcv_saddr);
	else
		BPF_CORE_READ_INTO(&e.addr, sk, __sk_common.skc_v6_rcv_saddr);
	__builtin_memcpy(e.comm, task->comm, sizeof(e.comm));
	/* So that its close, when it comes, knows the port it listened on. */
	if (e.state == TCP_LISTEN && e.cookie && !bpf_map_lookup_elem(&listening, &e.cookie)) {
		struct listening l = {.port = e.port};
		bpf_map_update_elem(&listening, &e.cookie, &l, BPF_NOEXIST);
	}
	bpf_seq_write(seq, &e, sizeof(e));
	return 0;
}

/*
 * Takes ctx->args[0] sequence numbers at once for records the agent makes
 * (the inventory), so they share the kernel's numbering and a gap anywhere
 * still means a loss. Never attached: the agent runs it with
 * BPF_PROG_TEST_RUN and reads the first number from reserved_seq.
 */
SEC("raw_tracepoint/bindwatch_reserve_seq")
int reserve_seq(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	__u64 *seqp = bpf_map_lookup_elem(&seq_counter, &zero);
	__u64 *out = bpf_map_lookup_elem(&reserved_seq, &zero);

	if (!seqp || !out)
		return 1;
	*out = __sync_fetch_and_add(seqp, ctx->args[0]);
	return 0;
}
