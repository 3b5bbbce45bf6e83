/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What a flow key and its identity are made of: the kind of socket, its addresses, the
 * calling process (tgid and address space) and who it is (executable, user, cgroup, netns).
 */
#ifndef NETWARDEN_NET_FLOW_KEY_BPF_H
#define NETWARDEN_NET_FLOW_KEY_BPF_H

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "net/sock_state.bpf.h"

static __always_inline bool tracked_family(u16 family)
{
	return family == AF_INET || family == AF_INET6 ||
	       (family == AF_PACKET && track_packet_sockets);
}

static __always_inline bool is_tcp(struct sock *sk)
{
	return nw_sk_type(sk) == SOCK_STREAM && nw_sk_protocol(sk) == IPPROTO_TCP;
}

/* True for sockets whose peer is fixed in the socket: TCP, and connected UDP/raw/ping. */
static __always_inline bool has_fixed_peer(struct sock *sk, u16 family)
{
	return family == AF_PACKET || sk->__sk_common.skc_state == TCP_ESTABLISHED ||
	       nw_sk_type(sk) == SOCK_STREAM;
}

static __always_inline void copy_addr(u8 *dst, struct sock *sk, u16 family, bool remote)
{
	if (family == AF_INET) {
		__be32 a = remote ? sk->__sk_common.skc_daddr : sk->__sk_common.skc_rcv_saddr;

		__builtin_memcpy(dst, &a, 4);
	} else if (family == AF_INET6) {
		if (remote)
			bpf_probe_read_kernel(dst, NW_ADDR_LEN, &sk->__sk_common.skc_v6_daddr);
		else
			bpf_probe_read_kernel(dst, NW_ADDR_LEN, &sk->__sk_common.skc_v6_rcv_saddr);
	}
}

/* Move a remembered peer into a flow key (the caller consumes its flag). */
static __always_inline void take_peer(struct flow_key *key, struct pending_peer *peer,
				      u16 family)
{
	if (family == AF_INET6 && peer->family == AF_INET) {
		/* An IPv4 peer of a dual-stack socket: write it as ::ffff:a.b.c.d. */
		key->remote_addr[10] = 0xff;
		key->remote_addr[11] = 0xff;
		__builtin_memcpy(&key->remote_addr[12], peer->addr, 4);
	} else {
		__builtin_memcpy(key->remote_addr, peer->addr, NW_ADDR_LEN);
	}
	key->remote_port = peer->port;
}

/* Who is calling, in a flow identity: executable, user and cgroup. */
static __always_inline void fill_caller_identity(struct flow_value *value)
{
	nw_current_exe(&value->exe_ino, &value->exe_dev);
	value->uid = (u32)bpf_get_current_uid_gid();
	value->cgroup_id = bpf_get_current_cgroup_id();
	value->flags = NW_FLOW_HAS_IDENTITY;
}

/* Who is using the socket and what it is: read once per flow key (or socket owner). */
static __always_inline void fill_identity(struct flow_value *value, struct sock *sk, u16 family,
					  const struct flow_key *key, bool fixed_peer,
					  struct sock_state *state)
{
	fill_caller_identity(value);
	value->netns = sk->__sk_common.skc_net.net->ns.inum;
	value->family = family;
	value->protocol = nw_sk_protocol(sk);
	value->sock_type = (u8)nw_sk_type(sk);
	if (family == AF_PACKET)
		return;
	u16 port = sk->__sk_common.skc_num;

	if (!port && state) /* a closed TCP socket whose last bytes are being read */
		port = state->local_port;
	value->local_port = port;
	copy_addr(value->local_addr, sk, family, false);
	if (fixed_peer) {
		copy_addr(value->remote_addr, sk, family, true);
		value->remote_port = bpf_ntohs(sk->__sk_common.skc_dport);
	} else {
		__builtin_memcpy(value->remote_addr, key->remote_addr, NW_ADDR_LEN);
		value->remote_port = key->remote_port;
	}
}

/*
 * Who is calling: the process (tgid) and its address space, which exec replaces. A socket
 * kept across exec (one the new program inherited) then gets a new owner with the new
 * executable's identity; the tgid alone would not notice.
 */
struct caller {
	u64 mm;
	u32 tgid;
};

static __always_inline void current_caller(struct caller *caller)
{
	if (NW_PRE_5_12) {
		/* No bpf_get_current_task_btf() before 5.11: a probed read. */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		caller->tgid = bpf_get_current_pid_tgid() >> 32;
		caller->mm = (u64)(unsigned long)BPF_CORE_READ(task, mm);
		return;
	}
	struct task_struct *task = bpf_get_current_task_btf();

	caller->tgid = task->tgid;
	caller->mm = (u64)(unsigned long)task->mm;
}

/* A flow key's exec_id: 16 bits that differ between the address spaces (mm_structs, slab
 * objects of a few hundred bytes) a process has before and after an exec. Off the fast path
 * only: the pointer has to become a number first. */
static __always_inline u16 exec_id_of(const struct caller *caller)
{
	u64 mm = nw_pointer_value((const void *)(unsigned long)caller->mm);

	return (u16)((mm >> 6) ^ (mm >> 22));
}

/* Raw and ping (ICMP datagram) sockets: their peers are per packet, in no socket field. */
static __always_inline bool is_raw_or_ping(u16 sock_type, u16 protocol)
{
	return sock_type == SOCK_RAW ||
	       (sock_type == SOCK_DGRAM && (protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6));
}

#endif /* NETWARDEN_NET_FLOW_KEY_BPF_H */
