/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Socket slots: the byte hooks' fast path without a helper call, and the taking of a pair of
 * per-socket counters (a state's or a slot's) by atomic exchange.
 */
#ifndef NETWARDEN_NET_SLOTS_BPF_H
#define NETWARDEN_NET_SLOTS_BPF_H

#include <bpf/bpf_endian.h>
#include "net/sock_state.bpf.h"

/*
 * The fast path without a helper call. Finding a socket's state (bpf_sk_storage_get) and the
 * caller (bpf_get_current_task_btf) are calls, and a call costs ~10-20 ns where returns are
 * mitigated (retpolines, SRSO): most of what a byte hook added to an empty program. So a
 * socket whose owner was captured also takes a slot in this array, found from the socket's
 * cookie (a field, never reused) by an inlined lookup. The slot names the thread that armed
 * it (the 16 KiB block of its kernel stack: live tasks' stacks never overlap) and the
 * owner_generation of that moment; a call from that thread in that generation counts in the
 * slot, under the state's owner identity, and reads nothing else. A task is only created
 * (its stack may be a dead task's) or exec'd (its mm changes) with the generation renewed,
 * so (thread, generation) stands for one (tgid, mm): the owner the state holds. Everything
 * else - another thread, a new generation, a pending peer (disarmed), a socket whose slot
 * another holds - takes the sk_storage path, which re-arms. The slot's counters are the
 * state's: take_epoch() takes both, and the slot is freed when its socket leaves the
 * iterators or closes.
 */
#define NW_STACK_BLOCK_SHIFT 14

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NW_SOCK_SLOTS);
	__type(key, u32);
	__type(value, struct sock_slot);
} sock_slots SEC(".maps");

/* Renewed whenever a task is created or execs (tp_owner_task_new, tp_owner_exec). */
u32 owner_generation;

static __always_inline u32 current_generation(void)
{
	return *(volatile u32 *)&owner_generation;
}

static __always_inline struct sock_slot *slot_of(u64 cookie)
{
	u32 index = (u32)cookie & (NW_SOCK_SLOTS - 1);

	return bpf_map_lookup_elem(&sock_slots, &index);
}

/* The slot a socket's state holds, or NULL. */
static __always_inline struct sock_slot *held_slot(struct sock_state *state)
{
	if (NW_PRE_5_12 || !state->slot_cookie)
		return NULL;
	struct sock_slot *slot = slot_of(state->slot_cookie);

	return slot && slot->cookie == state->slot_cookie ? slot : NULL;
}

/* Add one epoch's pair of counters (a socket state's or a slot's) to *sent and *recv,
 * leaving them zero: an atomic exchange, so each byte is taken exactly once. */
static __always_inline void take_counters(u64 *sent_pair, u64 *recv_pair, u32 epoch, u64 *sent,
					  u64 *recv)
{
	*sent += __sync_lock_test_and_set(&sent_pair[epoch & 1], 0);
	*recv += __sync_lock_test_and_set(&recv_pair[epoch & 1], 0);
}

/* Take one epoch's counters out of a socket's state and its slot. */
static __always_inline bool take_epoch(struct sock_state *state, u32 epoch, u64 *sent,
				       u64 *recv)
{
	struct sock_slot *slot = held_slot(state);

	*sent = *recv = 0;
	take_counters(state->sent, state->recv, epoch, sent, recv);
	if (slot)
		take_counters(slot->sent, slot->recv, epoch, sent, recv);
	return *sent || *recv;
}

/* Disarm the socket's slot: its next call takes the sk_storage path (a peer is pending). */
static __always_inline void disarm_slot(struct sock_state *state)
{
	struct sock_slot *slot = held_slot(state);

	if (slot)
		slot->thread = 0;
}

/* Free the socket's slot, its counters already taken (flush_socket_counters()): the socket
 * closes or left the iterators, so no call can count in it any more. */
static __always_inline void release_slot(struct sock_state *state)
{
	struct sock_slot *slot = held_slot(state);

	state->slot_cookie = 0;
	if (!slot)
		return;
	slot->thread = 0;
	__sync_lock_test_and_set(&slot->cookie, 0);
}

/*
 * The calling thread as a number: the 16 KiB block of its kernel stack this program's frame
 * is in (0 if the pointer could not be made a number). Two live tasks never share one.
 */
static __always_inline u64 current_thread(void)
{
	u64 frame = 0;

	return nw_pointer_value(&frame) >> NW_STACK_BLOCK_SHIFT;
}

/*
 * Is a socket whose owner was captured still where the drain iterators find it: a TCP socket
 * not yet CLOSE, a UDP socket still bound and connected to the peer port it was captured
 * with (`dport`, network order)? Two socket fields; the rest cannot change.
 */
static __always_inline bool still_drained(struct sock *sk, bool tcp, u16 dport)
{
	if (tcp)
		return sk->__sk_common.skc_state != TCP_CLOSE;
	return sk->__sk_common.skc_num && sk->__sk_common.skc_dport == dport;
}

/*
 * Arm the socket's slot for the calling thread, claiming it first if it is free. Not for
 * sockets whose answers may be DNS (their receive hook reads them, off the slot path).
 */
static __always_inline void arm_slot(struct sock *sk, struct sock_state *state)
{
	u64 cookie = state->key.sock_cookie;

	if (NW_PRE_5_12 || !cookie || state->dns_client ||
	    sk->__sk_common.skc_dport == bpf_htons(DNS_PORT))
		return;
	struct sock_slot *slot = slot_of(cookie);

	if (!slot)
		return;
	if (slot->cookie != cookie) {
		if (state->slot_cookie ||
		    __sync_val_compare_and_swap(&slot->cookie, 0, cookie) != 0)
			return; /* another socket holds it: this one keeps the sk_storage path */
		state->slot_cookie = cookie;
		/* A free slot counts nothing; were it not so, those bytes have no owner. */
		u64 stray_sent = 0, stray_recv = 0;

		for (u32 epoch = 0; epoch < 2; epoch++)
			take_counters(slot->sent, slot->recv, epoch, &stray_sent, &stray_recv);
		if (stray_sent + stray_recv)
			health_add(NW_HEALTH_BYTES_UNATTRIBUTED, stray_sent + stray_recv);
	}
	slot->tcp = state->fast_tcp;
	slot->dport = state->fast_dport;
	slot->generation = current_generation();
	slot->thread = current_thread();
}

/*
 * The socket's slot when this call may count there: the thread that armed it calls again
 * in the same generation, and the socket still is where the iterators find it (as
 * fast_path_holds()). Loads only, no call.
 */
static __always_inline struct sock_slot *slot_fast_path(struct sock *sk)
{
	if (NW_PRE_5_12)
		return NULL;
	u64 cookie = sk->__sk_common.skc_cookie.counter;

	if (!cookie)
		return NULL;
	struct sock_slot *slot = slot_of(cookie);

	if (!slot || slot->cookie != cookie ||
	    slot->generation != current_generation() ||
	    slot->thread != current_thread())
		return NULL;
	return still_drained(sk, slot->tcp, slot->dport) ? slot : NULL;
}

#endif /* NETWARDEN_NET_SLOTS_BPF_H */
