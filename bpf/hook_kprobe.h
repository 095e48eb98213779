// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Part of bindwatch.c, included by it once, in this order: it needs what the
 * parts before it define. The kprobe + kretprobe variant.
 */

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
