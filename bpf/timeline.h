// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Part of bindwatch.c, included by it once, in this order: it needs what the
 * parts before it define. The listener timeline, with every variant: ends of listening, UDP servers
 * released, cookies asked for.
 */

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
