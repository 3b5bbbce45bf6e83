/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Peers that are not in the socket (unconnected UDP, raw and ping sockets), remembered in
 * its state just before the byte hook of the same call: from the system call's destination,
 * a cgroup sock_addr hook, or the IP header of the packet.
 */
#ifndef NETWARDEN_NET_PEERS_BPF_H
#define NETWARDEN_NET_PEERS_BPF_H

#include "syscall_args.bpf.h"
#include "net/slots.bpf.h"

/* The destination an unconnected raw or ping send was given, from its system call. */
static __always_inline struct sock_state *remember_send_destination(struct sock *sk,
								    u16 family)
{
	struct pending_peer peer = {};
	u8 sockaddr[24] = {};
	u64 addr = 0;
	u32 addr_len = 0;

	if (!nw_send_destination(&addr, &addr_len) ||
	    bpf_probe_read_user(sockaddr, sizeof(sockaddr), (void *)addr))
		return NULL;
	u16 sa_family = *(u16 *)sockaddr;

	/* sockaddr_in: the address at offset 4; sockaddr_in6: at 8. Raw and ping sockets have
	 * no ports (a ping socket's sin_port is its echo id), as read_packet_peer() has it. */
	if (sa_family == AF_INET && addr_len >= 8)
		__builtin_memcpy(peer.addr, sockaddr + 4, 4);
	else if (sa_family == AF_INET6 && family == AF_INET6 && addr_len >= 24)
		__builtin_memcpy(peer.addr, sockaddr + 8, NW_ADDR_LEN);
	else
		return NULL;
	peer.family = sa_family;
	struct sock_state *state = sock_state_made(sk);

	if (!state)
		return NULL;
	state->send_peer = peer;
	state->send_peer_set = 1;
	return state;
}

static __always_inline void remember_sock_peer(struct bpf_sock *sk, bool is_send, u16 family,
					       const void *addr, u32 port_be)
{
	struct sock_state *state;

	if (!sk)
		return;
	state = sock_state_made_ctx(sk);
	if (!state)
		return;
	struct pending_peer *peer = is_send ? &state->send_peer : &state->recv_peer;

	__builtin_memset(peer->addr, 0, NW_ADDR_LEN);
	if (family == AF_INET)
		__builtin_memcpy(peer->addr, addr, 4);
	else
		__builtin_memcpy(peer->addr, addr, NW_ADDR_LEN);
	peer->port = bpf_ntohs((u16)port_be);
	peer->family = family;
	if (is_send) {
		state->send_peer_set = 1;
		if (peer->port == DNS_PORT)
			state->dns_client = 1;
	} else {
		state->recv_peer_set = 1;
	}
	disarm_slot(state); /* the byte hook must see the peer */
}

/*
 * Read the peer address (source or destination) and port of an IP packet. `want_source`
 * selects the source; ports are read for UDP only (ICMP and raw protocols have none we use).
 */
static __always_inline bool read_packet_peer(const struct sk_buff *skb, bool want_source,
					     struct pending_peer *peer)
{
	unsigned char *head = skb->head;
	u16 nh = skb->network_header;
	u16 ethertype = bpf_ntohs(skb->protocol);
	u8 first = 0, next_proto = 0;

	/* Only IP packets carry the headers below. */
	if (ethertype != ETH_P_IP && ethertype != ETH_P_IPV6)
		return false;
	if (bpf_probe_read_kernel(&first, 1, head + nh))
		return false;
	__builtin_memset(peer->addr, 0, NW_ADDR_LEN);
	if ((first >> 4) == 4) {
		bpf_probe_read_kernel(&next_proto, 1, head + nh + 9);
		bpf_probe_read_kernel(peer->addr, 4, head + nh + (want_source ? 12 : 16));
		peer->family = AF_INET;
	} else if ((first >> 4) == 6) {
		bpf_probe_read_kernel(&next_proto, 1, head + nh + 6);
		bpf_probe_read_kernel(peer->addr, 16, head + nh + (want_source ? 8 : 24));
		peer->family = AF_INET6;
	} else {
		return false;
	}
	peer->port = 0;
	if (next_proto == IPPROTO_UDP || next_proto == IPPROTO_UDPLITE) {
		__be16 port = 0;

		bpf_probe_read_kernel(&port, 2, head + skb->transport_header + (want_source ? 0 : 2));
		peer->port = bpf_ntohs(port);
	}
	return true;
}

/*
 * A datagram socket (not TCP, not connected) that can take a peer from a packet: the
 * datagram and send-path hooks below run for every packet, so this check must stay cheap.
 */
static __always_inline bool wants_packet_peer(struct sock *sk)
{
	u8 state = sk->__sk_common.skc_state;
	u16 family = sk->__sk_common.skc_family;

	/* Request and timewait minisocks end after sock_common: check before reading more. */
	if (state == TCP_ESTABLISHED || state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV)
		return false;
	return (family == AF_INET || family == AF_INET6) && nw_sk_type(sk) != SOCK_STREAM;
}

static __always_inline void remember_packet_peer(struct sock *sk, const struct sk_buff *skb,
						 bool want_source)
{
	struct pending_peer peer = {};

	if (!read_packet_peer(skb, want_source, &peer))
		return;
	struct sock_state *state = sock_state_made(sk);

	if (!state)
		return;
	if (want_source) {
		state->recv_peer = peer;
		state->recv_peer_set = 1;
	} else {
		state->send_peer = peer;
		state->send_peer_set = 1;
	}
}

#endif /* NETWARDEN_NET_PEERS_BPF_H */
