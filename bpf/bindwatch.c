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

/* The program, in parts (each is included once, in this order). */
#include "maps.h"
#include "capture.h"
#include "emit.h"
#include "hook_fexit.h"
#include "hook_kprobe.h"
#include "hook_tracepoint.h"
#include "timeline.h"
#include "iter.h"
