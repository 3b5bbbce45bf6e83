/* SPDX-License-Identifier: GPL-2.0 */
/*
 * DNS answers read by the receive hook from the caller's own buffer (syscall_args.bpf.h),
 * onto the dns_events ring; the sensor parses them.
 */
#ifndef NETWARDEN_NET_DNS_BPF_H
#define NETWARDEN_NET_DNS_BPF_H

#include "syscall_args.bpf.h"
#include "net/sock_state.bpf.h"

/*
 * Copy a DNS answer the caller is receiving from its own buffer to the dns_events ring:
 * `bytes` were just copied there by this call. For TCP it is a piece of the stream, tagged
 * with the socket so the sensor can put the messages back together.
 */
static __noinline int capture_dns(struct sock *sk, u32 bytes, u8 transport)
{
	u64 buf = 0, capacity = 0;

	if (!sk || !nw_receive_buffer(&buf, &capacity)) {
		health_add(NW_HEALTH_DNS_UNREAD, 1);
		return 0;
	}
	if (bytes > capacity) /* a datagram longer than the buffer (MSG_TRUNC) */
		bytes = capacity;
	struct dns_event *event = reserve_or_count(&dns_events, sizeof(*event),
						   NW_HEALTH_DNS_EVENTS_LOST);

	if (!event)
		return 0;
	u32 size = dns_event_start(event, bytes, transport,
				   transport == IPPROTO_TCP ? nw_sock_id(sk) : 0);

	if (size >= NW_DNS_MAX || bpf_probe_read_user(event->payload, size + 1, (void *)buf)) {
		bpf_ringbuf_discard(event, 0);
		health_add(NW_HEALTH_DNS_UNREAD, 1);
		return 0;
	}
	bpf_ringbuf_submit(event, 0);
	return 0;
}

/*
 * May what this UDP socket receives be a DNS answer? Connected to port 53, or an unconnected
 * socket that sent to port 53 or is receiving from it (cg_recvmsg4/6 ran just before).
 */
static __always_inline bool receives_dns(struct sock *sk, struct sock_state *state)
{
	if (sk->__sk_common.skc_dport == bpf_htons(DNS_PORT))
		return true;
	return state && (state->dns_client ||
			 (state->recv_peer_set && state->recv_peer.port == DNS_PORT));
}

#endif /* NETWARDEN_NET_DNS_BPF_H */
