// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Part of bindwatch.c, included by it once, in this order: it needs what the
 * parts before it define. The inventory iterator and the sequence reservation program.
 */

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
