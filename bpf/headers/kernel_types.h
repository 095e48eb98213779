/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The few kernel types bindwatch reads, declared by hand instead of a
 * multi-megabyte vmlinux.h. Every struct carries preserve_access_index, so
 * field offsets are relocated against the running kernel's BTF at load time
 * (CO-RE): only the names and types of the fields we touch must match, not
 * the layout.
 */
#ifndef BINDWATCH_KERNEL_TYPES_H
#define BINDWATCH_KERNEL_TYPES_H

/* Tells bpf_tracing.h to use the kernel's pt_regs field names (di, si, ax). */
#define __VMLINUX_H__

#include <linux/types.h>
#include <linux/bpf.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef _Bool bool;
#define true 1
#define false 0

struct sockaddr;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
	unsigned long si;
	unsigned long di;
	unsigned long dx;
	unsigned long cx;
	unsigned long r8;
	unsigned long r9;
	unsigned long ax;
	unsigned long orig_ax;
	unsigned long sp;
	unsigned long ip;
};

struct trace_event_raw_sys_enter {
	long id;
	unsigned long args[6];
};

struct trace_event_raw_sys_exit {
	long id;
	long ret;
};

struct ns_common {
	unsigned int inum;
};

struct mnt_namespace {
	struct ns_common ns;
};

struct net;

struct nsproxy {
	struct mnt_namespace *mnt_ns;
	struct net *net_ns;
};

struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
};

struct file {
	struct inode *f_inode;
	void *private_data;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct cred {
	struct {
		unsigned int val;
	} uid;
};

struct kernfs_node {
	__u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct nsproxy *nsproxy;
	struct files_struct *files;
	const struct cred *cred;
	struct css_set *cgroups;
	char comm[16];
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__be32 u6_addr32[4];
	} in6_u;
};

struct sock_common {
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	unsigned char skc_reuse : 4;
	unsigned char skc_reuseport : 1;
	unsigned char skc_ipv6only : 1;
	int skc_bound_dev_if;
	possible_net_t skc_net;
	struct in6_addr skc_v6_rcv_saddr;
	/* atomic64_t; 0 until someone asked for the socket's cookie. */
	struct {
		__s64 counter;
	} skc_cookie;
};

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	__u16 sk_type;
	/* u8 since 6.x, a 4-bit field before: read with the probed bitfield macro. */
	__u8 sk_userlocks : 4;
	__u32 sk_max_ack_backlog;
};

struct socket {
	short type;
	struct file *file;
	struct sock *sk;
};

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
};

struct bpf_iter__task_file {
	union {
		struct bpf_iter_meta *meta;
	};
	union {
		struct task_struct *task;
	};
	__u32 fd;
	union {
		struct file *file;
	};
};

/* Linux 6.6 folded the option bitfields into inet_flags (bit numbers below). */
struct inet_sock {
	unsigned long inet_flags;
};

/* Before 6.6 the options were bitfields; CO-RE picks whichever layout exists. */
struct inet_sock___pre_6_6 {
	__u8 freebind : 1;
	__u8 transparent : 1;
	__u8 bind_address_no_port : 1;
};

struct mptcp_sock {
	struct sock *first;
};

/* A bool since 6.x; declared as a bitfield so the probed read fits both. */
struct tcp_sock {
	__u8 is_mptcp : 1;
};

#pragma clang attribute pop

#define INET_FLAGS_FREEBIND 11
#define INET_FLAGS_TRANSPARENT 15
#define INET_FLAGS_BIND_ADDRESS_NO_PORT 18

#define AF_UNSPEC 0
#define AF_INET 2
#define AF_INET6 10

#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_SCTP 132
#define IPPROTO_MPTCP 262

#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LISTEN 10

#define SOCK_BINDPORT_LOCK 8

/* x86-64 system call numbers. */
#define NR_bind 49
#define NR_listen 50

#define EBADF 9
#define ENOTSOCK 88

#define S_IFMT 00170000
#define S_IFSOCK 0140000

#endif /* BINDWATCH_KERNEL_TYPES_H */
