/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The drain: socket iterators write each socket's idle epoch of counters to the sensor.
 */
#ifndef NETWARDEN_NET_ITERATORS_BPF_H
#define NETWARDEN_NET_ITERATORS_BPF_H

#include <bpf/bpf_tracing.h>
#include "net/tcp_read.bpf.h"

/*
 * Drain: for every TCP and UDP socket of the sensor's network namespace with state, write
 * the idle epoch's counters (the sensor flipped the epoch and waited an RCU grace period
 * first, so nothing adds to them now), and for TCP what was read but not yet claimed (reads
 * the receive hook does not see, like splice). The socket iterators, not one over the
 * storage map: kernels may refuse map-element iterators (this machine's 6.18 does, EPERM)
 * while the socket ones load, and account() keeps counters only in sockets these walk.
 */
/*
 * Keep what was just taken in `carry` too, in the same program run as the exchange that
 * took it: a sensor killed while reading the iterator's output loses nothing, the next
 * one finds it there. Only the iterator and the sensor's drain thread write `carry`.
 */
static __always_inline void carry_add(const struct nw_control *ctl,
				      const struct flow_record *record)
{
	struct carry_key key = { .key = record->key, .batch = ctl->carry_batch };
	struct carry_value *kept, fresh = {};

	if (!key.batch)
		return;
	kept = bpf_map_lookup_elem(&carry, &key);
	if (!kept) {
		fresh.value = record->value;
		if (!bpf_map_update_elem(&carry, &key, &fresh, BPF_NOEXIST))
			return;
		kept = bpf_map_lookup_elem(&carry, &key);
		if (!kept) {
			health_add(NW_HEALTH_CARRY_FULL, 1);
			return;
		}
	}
	__sync_fetch_and_add(&kept->value.sent_bytes, record->value.sent_bytes);
	__sync_fetch_and_add(&kept->value.recv_bytes, record->value.recv_bytes);
}

static __always_inline int drain_socket(struct bpf_iter_meta *meta, void *sk, bool tcp)
{
	struct nw_control *ctl = get_control();

	if (NW_PRE_5_12 || !ctl || !sk)
		return 0; /* no socket counters there; the loader leaves these programs out */
	/* Through the map, not a pointer of the iterator: atomic exchanges need a map value. */
	struct sock_state *state = bpf_sk_storage_get(&sock_states, sk, 0, 0);
	struct flow_record record;
	u64 sent, recv, consumed, read = 0;

	if (!state || !state->owner_set)
		return 0;
	if (tcp && !ctl->tcp_read_hooked && tcp_sock_consumed(sk, &consumed))
		read = claim_tcp_read(state, consumed, false);
	if (!take_epoch(state, ctl->active_table ^ 1, &sent, &recv) && !read)
		return 0;
	record.key = state->key;
	record.value = state->ident;
	record.value.sent_bytes = sent;
	record.value.recv_bytes = recv + read;
	carry_add(ctl, &record);
	bpf_seq_write(meta->seq, &record, sizeof(record));
	return 0;
}

SEC("iter/tcp")
int iter_drain_tcp(struct bpf_iter__tcp *ctx)
{
	return drain_socket(ctx->meta, ctx->sk_common, true);
}

SEC("iter/udp")
int iter_drain_udp(struct bpf_iter__udp *ctx)
{
	return drain_socket(ctx->meta, ctx->udp_sk, false);
}

#endif /* NETWARDEN_NET_ITERATORS_BPF_H */
