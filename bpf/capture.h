// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Part of bindwatch.c, included by it once, in this order: it needs what the
 * parts before it define. What every hook shares before a record is made: which tasks and ports are
 * wanted, the budgets, sequence numbers, ring room and reservation.
 */

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
