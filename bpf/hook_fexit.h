// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Part of bindwatch.c, included by it once, in this order: it needs what the
 * parts before it define. The fexit variant.
 */

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
