// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Part of bindwatch.c, included by it once, in this order: it needs what the
 * parts before it define. Filling a record from the socket, and emitting it.
 */

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
