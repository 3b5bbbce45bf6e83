/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Programs attached to the cgroup2 root: sockops (TCP sockets born while the sensor runs),
 * socket creation and release, and the sendmsg/recvmsg hooks that give unconnected UDP
 * sockets their peers.
 */
#ifndef NETWARDEN_NET_CGROUP_BPF_H
#define NETWARDEN_NET_CGROUP_BPF_H

#include "net/tcp_read.bpf.h"
#include "net/peers.bpf.h"

/* Mark TCP sockets born while the sensor runs: all their received bytes are new. */
SEC("sockops")
int sockops_birth(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;

	if (!sk)
		return 1;
	if (ops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ||
	    ops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
		struct sock_state *state = sock_state_made_ctx(sk);

		if (state)
			state->local_port = (u16)ops->local_port;
	}
	return 1;
}

static __always_inline void count_datagram_socket(struct sock_state *state, s64 delta)
{
	u32 zero = 0;
	s64 *live = bpf_map_lookup_elem(&datagram_sockets, &zero);

	if (live)
		__sync_fetch_and_add(live, delta);
}

/*
 * A raw or ping socket is being created: count it, and when the hook that reads the sources
 * of such sockets' datagrams is detached, wake the sensor to attach it. Once per socket.
 */
SEC("cgroup/sock_create")
int cg_sock_create(struct bpf_sock *sk)
{
	if (!is_raw_or_ping(sk->type, sk->protocol))
		return 1;
	struct sock_state *state = sock_state_made_ctx(sk);

	if (!state)
		return 1;
	if (!state->datagram_counted) {
		state->datagram_counted = 1;
		count_datagram_socket(state, 1);
	}
	struct nw_control *ctl = get_control();

	if (ctl && !ctl->datagram_hook) {
		struct datagram_notice notice = {
			.tgid = bpf_get_current_pid_tgid() >> 32,
			.family = (u16)sk->family,
			.sock_type = (u8)sk->type,
			.protocol = (u8)sk->protocol,
		};

		bpf_ringbuf_output(&datagram_notices, &notice, sizeof(notice), BPF_RB_FORCE_WAKEUP);
	}
	return 1;
}

/* The process closing a socket as its owner, for counts no earlier caller owned (a socket
 * read only by splice). Family and type come from the cgroup context; ports and addresses,
 * which a release program may not read there, through probed reads of the socket. */
static __always_inline void capture_closing_owner(struct bpf_sock *sk, u64 addr,
						  struct sock_state *state)
{
	struct flow_value *ident = &state->ident;
	struct sock *ks = (struct sock *)addr;
	u16 family = (u16)sk->family;

	__builtin_memset(&state->key, 0, sizeof(state->key));
	__builtin_memset(ident, 0, sizeof(*ident));
	state->key.sock_cookie = bpf_get_socket_cookie(sk);
	state->key.tgid = bpf_get_current_pid_tgid() >> 32;
	fill_caller_identity(ident);
	ident->netns = BPF_CORE_READ(ks, __sk_common.skc_net.net, ns.inum);
	ident->family = family;
	ident->protocol = (u16)sk->protocol;
	ident->sock_type = (u8)sk->type;
	ident->local_port = BPF_CORE_READ(ks, __sk_common.skc_num) ?: state->local_port;
	ident->remote_port = bpf_ntohs(BPF_CORE_READ(ks, __sk_common.skc_dport));
	if (family == AF_INET) {
		bpf_probe_read_kernel(ident->local_addr, 4, &ks->__sk_common.skc_rcv_saddr);
		bpf_probe_read_kernel(ident->remote_addr, 4, &ks->__sk_common.skc_daddr);
	} else {
		bpf_probe_read_kernel(ident->local_addr, NW_ADDR_LEN,
				      &ks->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(ident->remote_addr, NW_ADDR_LEN,
				      &ks->__sk_common.skc_v6_daddr);
	}
	state->owner_set = 1;
}

/* TCP payload read since the last claim (by splice, say) and not yet counted: count it now,
 * while the closing socket still knows copied_seq. */
static __always_inline void claim_final_tcp_read(struct nw_control *ctl, struct bpf_sock *sk,
						 struct sock_state *state)
{
	u64 addr = nw_ctx_sock_addr(sk);

	if (!addr)
		return;
	struct tcp_sock *tp = (struct tcp_sock *)addr;
	u64 consumed = tcp_consumed(BPF_CORE_READ(tp, bytes_received), BPF_CORE_READ(tp, rcv_nxt),
				    BPF_CORE_READ(tp, copied_seq), (u8)sk->state);
	u64 grown = claim_tcp_read(state, consumed, false);

	if (!grown)
		return;
	if (!state->owner_set)
		capture_closing_owner(sk, addr, state);
	add_to_socket(state, ctl, grown, false);
}

/*
 * The socket is closing: no call can add to it any more, so hand its counters over. Before
 * 5.12 there are no socket counters, and its hash entry goes (sk_storage goes by itself).
 */
SEC("cgroup/sock_release")
int cg_sock_release(struct bpf_sock *sk)
{
	if (NW_PRE_5_12) {
		u64 addr = nw_ctx_sock_addr(sk);
		struct sock_state *state = bpf_map_lookup_elem(&sock_states_by_addr, &addr);

		if (state && state->datagram_counted)
			count_datagram_socket(state, -1);
		bpf_map_delete_elem(&sock_states_by_addr, &addr);
		return 1;
	}
	struct nw_control *ctl = get_control();
	struct sock_state *state = bpf_sk_storage_get(&sock_states, sk, 0, 0);

	if (!ctl || !state)
		return 1;
	if (state->datagram_counted) {
		state->datagram_counted = 0;
		count_datagram_socket(state, -1);
	}
	if (sk->protocol == IPPROTO_TCP && sk->type == SOCK_STREAM && !ctl->tcp_read_hooked)
		claim_final_tcp_read(ctl, sk, state);
	flush_socket_counters(ctl, state);
	release_slot(state);
	return 1;
}

/*
 * The peer an unconnected UDP socket's sendmsg is given (send) or its recvmsg gets (receive),
 * for the byte hook of the same call. One body for the four programs, which differ only in
 * direction and family (both constants in each).
 */
static __always_inline int remember_ctx_peer(struct bpf_sock_addr *ctx, bool is_send,
					     u16 family)
{
	u32 ip[4] = {};

	if (family == AF_INET) {
		ip[0] = ctx->user_ip4;
	} else {
		ip[0] = ctx->user_ip6[0];
		ip[1] = ctx->user_ip6[1];
		ip[2] = ctx->user_ip6[2];
		ip[3] = ctx->user_ip6[3];
	}
	remember_sock_peer(ctx->sk, is_send, family, ip, ctx->user_port);
	return 1;
}

#define CG_SOCK_ADDR_PEER(hook, is_send, family)					\
SEC("cgroup/" #hook)									\
int cg_##hook(struct bpf_sock_addr *ctx)						\
{											\
	return remember_ctx_peer(ctx, is_send, family);					\
}

CG_SOCK_ADDR_PEER(sendmsg4, true, AF_INET)
CG_SOCK_ADDR_PEER(sendmsg6, true, AF_INET6)
CG_SOCK_ADDR_PEER(recvmsg4, false, AF_INET)
CG_SOCK_ADDR_PEER(recvmsg6, false, AF_INET6)

#endif /* NETWARDEN_NET_CGROUP_BPF_H */
