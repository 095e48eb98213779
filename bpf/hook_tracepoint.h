// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Part of bindwatch.c, included by it once, in this order: it needs what the
 * parts before it define. The syscall tracepoint variant.
 */

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
