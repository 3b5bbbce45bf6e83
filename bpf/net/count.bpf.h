/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The counting core: adding to the active flow table, counting in a socket's own state, and
 * account(), which chooses between them for every call off the fast path.
 */
#ifndef NETWARDEN_NET_COUNT_BPF_H
#define NETWARDEN_NET_COUNT_BPF_H

#include "net/flow_key.bpf.h"
#include "net/slots.bpf.h"

static __always_inline void add_counts(struct flow_value *value, u64 sent, u64 recv)
{
	if (preemptible_hooks) {
		/* Only amounts that may be non-zero: LLVM turns an atomic add of a constant 0 into
		 * an atomic OR, which kernels before 5.12 refuse ("BPF_STX uses reserved fields"). */
		if (sent)
			__sync_fetch_and_add(&value->sent_bytes, sent);
		if (recv)
			__sync_fetch_and_add(&value->recv_bytes, recv);
	} else {
		value->sent_bytes += sent;
		value->recv_bytes += recv;
	}
}

static __always_inline void *active_table(struct nw_control *ctl)
{
	u32 index = ctl->active_table & 1;

	return bpf_map_lookup_elem(&flow_tables, &index);
}

/* `key`'s entry in the active flow table, or NULL. */
static __always_inline struct flow_value *active_entry(struct nw_control *ctl,
						       const struct flow_key *key)
{
	void *table = active_table(ctl);

	return table ? bpf_map_lookup_elem(table, key) : NULL;
}

/*
 * Add counts to `key` in the active flow table. On a miss the entry is created from
 * `identity` (already filled, counters zero) and the counts.
 */
static __always_inline void table_add(struct nw_control *ctl, const struct flow_key *key,
				      struct flow_value *identity, u64 sent, u64 recv)
{
	void *table = active_table(ctl);
	struct flow_value *value;

	if (!table)
		return;
	value = bpf_map_lookup_elem(table, key);
	if (!value) {
		long err = 0;

		identity->sent_bytes = sent;
		identity->recv_bytes = recv;
		/*
		 * -EEXIST: another CPU inserted the key first; add to this CPU's slot of it. Other
		 * failures may pass: under 5.10 in the kernel matrix, two threads sending on one
		 * socket lost one datagram here now and then, in a map far from full. Try again,
		 * then count the bytes as lost under the reason (full, or another failure).
		 */
		for (int attempt = 0; attempt < 3; attempt++) {
			err = bpf_map_update_elem(table, key, identity, BPF_NOEXIST);
			if (!err)
				break;
			value = bpf_map_lookup_elem(table, key);
			if (value)
				break;
		}
		identity->sent_bytes = identity->recv_bytes = 0;
		if (!err)
			return;
		if (!value) {
			health_add(err == -E2BIG ? NW_HEALTH_FLOW_MAP_FULL
						 : NW_HEALTH_FLOW_INSERT_FAILED, 1);
			health_add(NW_HEALTH_BYTES_UNATTRIBUTED, sent + recv);
			return;
		}
	}
	add_counts(value, sent, recv);
}

/* Hand a socket's counters (both epochs) to the active flow table under its owner. */
static __always_inline void flush_socket_counters(struct nw_control *ctl,
						  struct sock_state *state)
{
	u64 sent, recv;

	if (!state->owner_set)
		return;
	for (u32 epoch = 0; epoch < 2; epoch++) {
		if (take_epoch(state, epoch, &sent, &recv)) {
			struct flow_value identity = state->ident;

			table_add(ctl, &state->key, &identity, sent, recv);
		}
	}
}

/* Hash path: a flow keyed by peer (unconnected sockets) or a socket without counters. */
static __always_inline void account_in_table(struct nw_control *ctl, struct sock *sk,
					     u16 family, struct flow_key *key, bool fixed_peer,
					     struct sock_state *state, u64 bytes, bool is_send)
{
	struct flow_value *value = active_entry(ctl, key);

	if (value) {
		add_counts(value, is_send ? bytes : 0, is_send ? 0 : bytes);
		return;
	}
	struct flow_value fresh = {};

	fill_identity(&fresh, sk, family, key, fixed_peer, state);
	table_add(ctl, key, &fresh, is_send ? bytes : 0, is_send ? 0 : bytes);
}

/*
 * Add to the active epoch of a pair of per-socket counters (a socket state's or its slot's).
 * Always an atomic add: unlike the per-CPU flow tables, a socket's counters are shared by
 * every CPU its threads call from (two threads sending on one UDP socket lost ~0.1% of their
 * bytes to plain adds).
 */
static __always_inline void add_to_counters(u64 *sent_pair, u64 *recv_pair,
					    struct nw_control *ctl, u64 bytes, bool is_send)
{
	u32 epoch = ctl->active_table & 1;

	__sync_fetch_and_add(is_send ? &sent_pair[epoch] : &recv_pair[epoch], bytes);
}

static __always_inline void add_to_socket(struct sock_state *state, struct nw_control *ctl,
					  u64 bytes, bool is_send)
{
	add_to_counters(state->sent, state->recv, ctl, bytes, is_send);
}

/*
 * The common case, decided from the socket's state and two socket fields: its owner calls
 * again, no per-call peer is pending, and it still is where the drain iterators find it
 * (a TCP socket not yet CLOSE, a UDP socket still bound to the peer it was captured with).
 * Everything else about it (netns, protocol, addresses) cannot change, so it was checked
 * once, when the owner was captured. Per call this costs a storage lookup, the pid and a
 * few loads; on the VMs measured here a program run costs ~85 ns before it does anything,
 * so the rest has to stay this small.
 */
static __always_inline bool fast_path_holds(struct sock *sk, struct sock_state *state,
					    const struct caller *caller, bool is_send)
{
	if (state->fast_mm != caller->mm || state->fast_tgid != caller->tgid)
		return false;
	if (is_send ? state->send_peer_set : state->recv_peer_set)
		return false;
	return still_drained(sk, state->fast_tcp, state->fast_dport);
}

/*
 * Count in the socket's own state. A new owner (another process now uses the socket) or a
 * new peer (a UDP socket connected elsewhere) first hands the counters so far to the table
 * under the old identity.
 */
static __always_inline void account_in_socket(struct nw_control *ctl, struct sock *sk,
					      u16 family, struct sock_state *state,
					      const struct caller *caller, bool fixed_peer, u64 bytes,
					      bool is_send)
{
	u16 dport = bpf_ntohs(sk->__sk_common.skc_dport);
	u32 tgid = caller->tgid;

	if (!state->owner_set || state->key.tgid != tgid || state->fast_mm != caller->mm ||
	    state->ident.remote_port != dport) {
		flush_socket_counters(ctl, state);
		__builtin_memset(&state->key, 0, sizeof(state->key));
		__builtin_memset(&state->ident, 0, sizeof(state->ident));
		state->key.sock_cookie = nw_sock_id(sk);
		state->key.tgid = tgid;
		state->key.exec_id = exec_id_of(caller);
		fill_identity(&state->ident, sk, family, &state->key, fixed_peer, state);
		state->owner_set = 1;
	}
	/* Only TCP and UDP sockets get here (drained_by_iterators()). */
	state->fast_tcp = nw_sk_protocol(sk) == IPPROTO_TCP;
	state->fast_dport = sk->__sk_common.skc_dport;
	state->fast_mm = caller->mm;
	state->fast_tgid = tgid;
	add_to_socket(state, ctl, bytes, is_send);
	if (ctl->socket_slots)
		arm_slot(sk, state);
}

/*
 * Can the socket keep its counts in its own state? Only where the drain iterators reach it:
 * TCP and UDP (not UDP-Lite, raw or ping: other tables) in the sensor's network namespace,
 * while hashed (a TCP socket in CLOSE is not; a UDP socket sending or receiving has a port).
 */
static __always_inline bool drained_by_iterators(struct sock *sk, struct nw_control *ctl)
{
	u16 protocol = nw_sk_protocol(sk);

	if (protocol == IPPROTO_TCP) {
		if (sk->__sk_common.skc_state == TCP_CLOSE)
			return false;
	} else if (protocol != IPPROTO_UDP || !sk->__sk_common.skc_num) {
		return false;
	}
	return sk->__sk_common.skc_net.net->ns.inum == ctl->drain_netns;
}

/* Everything but the fast path: capture an owner, or count in the flow table. */
static __always_inline void account(struct nw_control *ctl, struct sock *sk, u16 family,
				    u64 bytes, bool is_send, struct sock_state *state,
				    const struct caller *caller)
{
	bool fixed_peer = has_fixed_peer(sk, family);
	/* Socket counters are taken out by atomic exchange, which kernels before 5.12 lack
	 * (the constant leaves that code out of their object). */
	bool counters = !NW_PRE_5_12 && ctl->socket_counters && drained_by_iterators(sk, ctl);

	if (!state && (counters || !fixed_peer))
		state = sock_state_of(sk, counters);
	if (!NW_PRE_5_12 && !counters && state && state->owner_set) {
		/* It left what the iterators walk (a reset TCP socket leaves the hash): hand the
		 * counters over now, not at release, so a sensor stopping in between loses none. */
		flush_socket_counters(ctl, state);
		release_slot(state);
		state->owner_set = 0;
		state->fast_mm = 0;
		state->fast_tgid = 0;
	}
	struct pending_peer *peer = NULL;

	if (state) {
		if (is_send && state->send_peer_set) {
			/* sendto() an address: the datagram goes there, connected socket or not */
			peer = &state->send_peer;
			state->send_peer_set = 0;
		} else if (!is_send && state->recv_peer_set) {
			/* what a connected socket receives comes from its peer */
			if (!fixed_peer)
				peer = &state->recv_peer;
			state->recv_peer_set = 0;
		}
	}
	if (peer)
		fixed_peer = false; /* this datagram's own peer, not the socket's */
	if (counters && state && !peer) {
		account_in_socket(ctl, sk, family, state, caller, fixed_peer, bytes, is_send);
		return;
	}
	struct flow_key key = {};

	key.sock_cookie = nw_sock_id(sk);
	key.tgid = caller->tgid;
	key.exec_id = exec_id_of(caller);
	if (peer)
		take_peer(&key, peer, family);
	account_in_table(ctl, sk, family, &key, fixed_peer, state, bytes, is_send);
}

#endif /* NETWARDEN_NET_COUNT_BPF_H */
