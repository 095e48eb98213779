// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Part of bindwatch.c, included by it once, in this order: it needs what the
 * parts before it define. The maps: the ring, configuration, budgets, per-thread and per-socket state,
 * drop counters, the sequence counter.
 */

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
