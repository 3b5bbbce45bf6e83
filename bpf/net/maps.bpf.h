/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every part of net.bpf.o reads: the settings the loader writes between open and load,
 * the two flow tables behind `flow_tables` and the `control` block that names the active one,
 * the rings, and the uapi numbers only this object compares against.
 */
#ifndef NETWARDEN_NET_MAPS_BPF_H
#define NETWARDEN_NET_MAPS_BPF_H

#include "common.bpf.h"
#include "compat.bpf.h"

#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define TCP_ESTABLISHED 1
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LAST_ACK 9
#define TCP_CLOSING 11
#define TCP_NEW_SYN_RECV 12
#define MSG_PEEK 2
#define EEXIST 17
#define E2BIG 7

/* Set by the loader. */
const volatile bool track_packet_sockets = true;
/*
 * Tracepoint programs run with preemption disabled and never in interrupt context, so per-CPU
 * counters (the flow tables) need no atomic add. fexit trampolines only disable migration:
 * there two tasks can interleave on one CPU, and the loader sets this for the fexit hook set.
 * (A socket's own counters are shared between CPUs and always added atomically.)
 */
const volatile bool preemptible_hooks = false;
/*
 * The hooks may read their system call's arguments (syscall_args.bpf.h): the loader sets it
 * where the kernel has bpf_task_pt_regs() and the architecture's table is known. Without it,
 * net_dev_queue finds raw and ping destinations and dns.bpf.o reads DNS from packets.
 */
const volatile bool syscall_args = false;
/* Never in the compat build: kernels before 5.12 lack bpf_task_pt_regs() too (5.15). */
#define NW_SYSCALL_ARGS (!NW_PRE_5_12 && syscall_args)

struct flow_table {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384); /* the loader sets the configured size */
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} flows_a SEC(".maps"), flows_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, u32);
	__array(values, struct flow_table);
} flow_tables SEC(".maps") = {
	.values = { &flows_a, &flows_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct nw_control);
} control SEC(".maps");

/*
 * Drained but not yet committed to the store (events.h); the loader sets the size. Not
 * preallocated: it holds a window or two of flows, and a full-size one would be megabytes
 * of memory held for nothing most of the time. Only the iterators (tracing programs, which
 * may allocate) and the sensor write it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, struct carry_key);
	__type(value, struct carry_value);
} carry SEC(".maps");

/* DNS answers read by the receive hook (syscall_args); the sensor parses them. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* the loader sets the configured size */
} dns_events SEC(".maps");

/* Raw and ping sockets appearing while the datagram-source hook is detached. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} datagram_notices SEC(".maps");

/* Raw and ping sockets created since the sensor started and not yet released: while any
 * lives, the sensor keeps the datagram-source hook attached. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, s64);
} datagram_sockets SEC(".maps");

static __always_inline struct nw_control *get_control(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&control, &zero);
}

#endif /* NETWARDEN_NET_MAPS_BPF_H */
