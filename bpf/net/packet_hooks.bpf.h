/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The per-packet hooks that find raw and ping sockets' peers in IP headers: attached only
 * while such a socket exists, or where the system call's arguments cannot be read.
 */
#ifndef NETWARDEN_NET_PACKET_HOOKS_BPF_H
#define NETWARDEN_NET_PACKET_HOOKS_BPF_H

#include <bpf/bpf_tracing.h>
#include "net/peers.bpf.h"

/*
 * A datagram is being copied to a reader: remember its source. Raw and ping sockets own
 * their queued skbs (skb->sk); UDP skbs have none once queued, and small ones are copied
 * without this tracepoint anyway, so UDP peers come from the cgroup recvmsg hooks.
 */
SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(tp_skb_copy_datagram_iovec, const struct sk_buff *skb, int len)
{
	struct sock *sk = skb->sk;

	if (sk && wants_packet_peer(sk))
		remember_packet_peer(sk, skb, true);
	return 0;
}

/* An unconnected raw or ping socket sends a packet: remember its destination. */
SEC("tp_btf/net_dev_queue")
int BPF_PROG(tp_net_dev_queue, struct sk_buff *skb)
{
	struct sock *sk = skb->sk;

	if (!sk || !wants_packet_peer(sk))
		return 0;
	u16 protocol = nw_sk_protocol(sk);

	if (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE)
		return 0; /* the cgroup sendmsg hooks already saw the destination */
	remember_packet_peer(sk, skb, false);
	return 0;
}

#endif /* NETWARDEN_NET_PACKET_HOOKS_BPF_H */
