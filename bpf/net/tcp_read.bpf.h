/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TCP reads, claimed from the socket's sequence numbers (so splice() and zero-copy receives
 * count too) by whichever of the receive hook, the drain iterator and the release hook sees
 * them first.
 */
#ifndef NETWARDEN_NET_TCP_READ_BPF_H
#define NETWARDEN_NET_TCP_READ_BPF_H

#include "net/count.bpf.h"

/*
 * TCP payload the reader has consumed: bytes_received minus what still waits in the queue
 * (rcv_nxt - copied_seq). Every path that consumes TCP data (recvmsg, splice, zero-copy
 * receive) advances copied_seq, so the growth of this total is what was read, whichever way.
 */
static __always_inline u64 tcp_consumed(u64 received, u32 next, u32 copied, u8 tcp_state)
{
	u32 unread = next - copied;

	if (received < unread)
		return 0;
	u64 consumed = received - unread;

	/* tcp_rcv_nxt_update() counts the peer's FIN in bytes_received (it is one sequence
	 * number) and reading it advances copied_seq: once the FIN is in and nothing is unread,
	 * the reader has consumed it, and it is not a byte of data. */
	if (unread == 0 && consumed > 0 &&
	    (tcp_state == TCP_CLOSE_WAIT || tcp_state == TCP_LAST_ACK ||
	     tcp_state == TCP_CLOSING || tcp_state == TCP_CLOSE))
		consumed -= 1;
	return consumed;
}

/*
 * Claim the growth of `consumed` since the last claim. The receive hook, the drain iterator
 * and the release hook all claim, so the baseline moves by compare-and-swap and each byte is
 * claimed once. `locked`: the caller holds the socket lock (tcp_rcv_space_adjust does), or
 * the kernel lacks compare-and-swap (before 5.12, where only that hook claims).
 */
static __always_inline u64 claim_tcp_read(struct sock_state *state, u64 consumed, bool locked)
{
	if (locked || NW_PRE_5_12) {
		u64 seen = state->tcp_bytes_read;

		if (consumed <= seen)
			return 0;
		state->tcp_bytes_read = consumed;
		return consumed - seen;
	}
	for (int attempt = 0; attempt < 4; attempt++) {
		u64 seen = state->tcp_bytes_read;

		if (consumed <= seen)
			return 0;
		if (__sync_val_compare_and_swap(&state->tcp_bytes_read, seen, consumed) == seen)
			return consumed - seen;
	}
	return 0;
}

/* tcp_consumed() of a socket a tracing program or an iterator has (a BTF pointer); false
 * when it is no TCP socket. */
static __always_inline bool tcp_sock_consumed(void *sk, u64 *consumed)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	if (!tp)
		return false;
	*consumed = tcp_consumed(tp->bytes_received, tp->rcv_nxt, tp->copied_seq,
				 ((struct sock_common *)sk)->skc_state);
	return true;
}

/* Reads up to `consumed` and not yet claimed were the socket's previous owner's (its calls
 * took the fast path, where reads are left to the drain iterator): count them under it. */
static __always_inline void claim_for_previous_owner(struct nw_control *ctl,
						     struct sock_state *state, u64 consumed,
						     bool locked)
{
	u64 theirs = claim_tcp_read(state, consumed, locked);

	if (theirs)
		add_to_socket(state, ctl, theirs, false);
}

/*
 * TCP receive, from a hook in the reader's own context, off the fast path (on it, reads are
 * left to the drain iterator to claim). `known_new` is the size of the read in progress
 * when the caller knows it; it sets the baseline for sockets born before the sensor
 * (sockops marks the ones born after, whose reads all count), and it is the part of what
 * is unclaimed that belongs to this caller when another process owned the socket before.
 */
static __always_inline void account_tcp_read(struct nw_control *ctl, struct sock *sk,
					     u16 family, u64 known_new, bool locked,
					     struct sock_state *state, const struct caller *caller)
{
	u64 consumed;

	if (!tcp_sock_consumed(sk, &consumed))
		return;
	if (!state)
		state = sock_state_of(sk, false);
	if (!state) {
		/* Not marked at birth by sockops: it predates the sensor. Count only this read. */
		state = sock_state_made(sk);
		if (!state)
			return;
		state->tcp_bytes_read = consumed > known_new ? consumed - known_new : 0;
		state->local_port = sk->__sk_common.skc_num;
	}
	if (state->fast_tgid && (state->fast_tgid != caller->tgid ||
				 state->fast_mm != caller->mm) && consumed > known_new)
		/* Reads before this one were the previous owner's. */
		claim_for_previous_owner(ctl, state, consumed - known_new, locked);
	u64 grown = claim_tcp_read(state, consumed, locked);

	if (grown)
		account(ctl, sk, family, grown, false, state, caller);
}

/*
 * Another process sends on a TCP socket whose reads the drain iterator claims (the fast
 * path): what was read so far was the previous owner's, so claim it for them before the
 * owner changes.
 */
static __always_inline void claim_reads_of_previous_owner(struct nw_control *ctl,
							  struct sock *sk,
							  struct sock_state *state)
{
	u64 consumed;

	if (tcp_sock_consumed(sk, &consumed))
		claim_for_previous_owner(ctl, state, consumed, false);
}

#endif /* NETWARDEN_NET_TCP_READ_BPF_H */
