/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-socket state: the peer remembered for the next byte hook, the owner and its counters,
 * held in sk_storage (or, before 5.12, in a hash map keyed by the socket's address), and the
 * way a program turns a pointer into a number to key that map.
 */
#ifndef NETWARDEN_NET_SOCK_STATE_BPF_H
#define NETWARDEN_NET_SOCK_STATE_BPF_H

#include "net/maps.bpf.h"

/* A peer remembered for the next byte hook; kernel-private, never read by the sensor. Its
 * "is set" flag lives in the hot part of sock_state. */
struct pending_peer {
	u8 addr[NW_ADDR_LEN];
	u16 port;
	u16 family;
};

/*
 * Per-socket state (freed with the socket; kernel-private). A TCP or UDP socket with a fixed
 * peer (or none known) in the sensor's network namespace counts its bytes here, in two
 * epochs like the two flow tables, under the owner identity captured when the socket was
 * first used by its current process. The counters leave through flush_socket_counters()
 * (owner change, sock_release) or the drain iterator, each moving them with an atomic
 * exchange so every byte is counted once.
 *
 * The first fields are what every call on such a socket reads and writes (the fast path,
 * fast_path_holds()): they share a cache line.
 */
struct sock_state {
	u64 sent[2];
	u64 recv[2];
	u64 fast_mm;                /* the owner's address space (changes at exec), with ... */
	u32 fast_tgid;              /* ... its tgid, while its calls may take the fast path */
	__be16 fast_dport;          /* UDP: the peer port the owner was captured with */
	u8 fast_tcp;                /* the fast path checks the TCP state (else the UDP port) */
	u8 send_peer_set;           /* send_peer / recv_peer hold a peer for the next call */
	u8 recv_peer_set;
	u8 dns_client;              /* it sent to port 53: what it receives may be DNS answers */
	u8 owner_set;
	u8 datagram_counted;        /* a raw/ping socket counted in datagram_sockets */
	u64 tcp_bytes_read;         /* TCP payload already attributed on receive */
	u16 local_port;             /* TCP: kept because closing releases the port (inet_num = 0) */
	struct flow_key key;        /* cookie and owner tgid; peer zero */
	struct flow_value ident;    /* owner identity; its counters stay zero */
	struct pending_peer send_peer;
	struct pending_peer recv_peer;
	u64 slot_cookie;            /* the socket holds sock_slots[slot_cookie % NW_SOCK_SLOTS] */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_state);
} sock_states SEC(".maps");

/*
 * Before 5.12 (NW_PRE_5_12, see compat.bpf.h) tracing programs cannot reach sk_storage, so
 * the same state lives here, keyed by the socket's address: created where sk_storage would
 * be, deleted by cg_sock_release so a later socket at that address starts clean.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, struct sock_state);
} sock_states_by_addr SEC(".maps");

/* Never written: the zeroed value new sock_states_by_addr entries are made from (a
 * sock_state on the stack would not fit beside the callers' flow keys and identities). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct sock_state);
} sock_state_zero SEC(".maps");

/* Where a cgroup program turns its socket pointer into a number (nw_ctx_sock_addr()). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} sock_addr_scratch SEC(".maps");

/*
 * A socket's state, created when missing if `create`. `sk` is the socket as the program has
 * it (a kernel pointer in tracing programs, the context's bpf_sock in cgroup programs) and
 * `addr` its address as a number, which only the pre-5.12 hash uses.
 */
static __always_inline struct sock_state *sock_state_get(void *sk, u64 addr, bool create)
{
	struct sock_state *state;
	u32 zero = 0;

	if (!NW_PRE_5_12)
		return bpf_sk_storage_get(&sock_states, sk, 0,
					  create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (!addr) /* nw_ctx_sock_addr() failed: no entry every such socket would share */
		return NULL;
	state = bpf_map_lookup_elem(&sock_states_by_addr, &addr);
	if (state || !create)
		return state;
	struct sock_state *blank = bpf_map_lookup_elem(&sock_state_zero, &zero);

	if (!blank)
		return NULL;
	/* NOEXIST: when another CPU created it first, both use that entry. A full map fails
	 * the lookup below, and the caller counts it as NW_HEALTH_SOCK_STORAGE_FAIL. */
	bpf_map_update_elem(&sock_states_by_addr, &addr, blank, BPF_NOEXIST);
	return bpf_map_lookup_elem(&sock_states_by_addr, &addr);
}

/* The state of a socket reached from a tracing program (a kernel pointer). */
static __always_inline struct sock_state *sock_state_of(struct sock *sk, bool create)
{
	return sock_state_get(sk, (u64)(unsigned long)sk, create);
}

/*
 * A pointer as a number: the verifier allows comparing pointers, not arithmetic on them.
 * Before 5.11 ("bpf: Permit pointers on stack for helper calls") a helper may not read a
 * socket pointer from the stack either, so a cgroup program's socket could not be a map key
 * (sock_states_by_addr, before 5.12). But a program allowed to leak pointers (the sensor
 * runs with CAP_PERFMON) may store one in a map value, and what it loads back is a number.
 * The slot is per CPU; the compare catches a program in an interrupt (sockops in softirq)
 * that used it in between.
 */
static __always_inline u64 nw_pointer_value(const void *ptr)
{
	u32 zero = 0;

	for (int attempt = 0; attempt < 3; attempt++) {
		volatile u64 *slot = bpf_map_lookup_elem(&sock_addr_scratch, &zero);

		if (!slot)
			return 0;
		*slot = (u64)(unsigned long)ptr;
		u64 value = *slot;

		/* The low halves only: were the whole values compared, the compiler would return
		 * the pointer itself (equal, as far as it knows), and that is no number. */
		if ((u32)value == (u32)(unsigned long)ptr)
			return value;
	}
	return 0;
}

/* A cgroup program's socket address as a number, to key sock_states_by_addr as the tracing
 * programs do (before 5.12 only). */
static __always_inline u64 nw_ctx_sock_addr(struct bpf_sock *sk)
{
	return nw_pointer_value(sk);
}

/* The state of a cgroup program's socket. */
static __always_inline struct sock_state *sock_state_of_ctx(struct bpf_sock *sk, bool create)
{
	return sock_state_get(sk, NW_PRE_5_12 ? nw_ctx_sock_addr(sk) : 0, create);
}

/* A socket's state made where it must exist (a peer or a read to remember): NULL is a
 * failure, counted as NW_HEALTH_SOCK_STORAGE_FAIL. One for each kind of socket pointer. */
static __always_inline struct sock_state *count_if_missing(struct sock_state *state)
{
	if (!state)
		health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
	return state;
}

static __always_inline struct sock_state *sock_state_made(struct sock *sk)
{
	return count_if_missing(sock_state_of(sk, true));
}

static __always_inline struct sock_state *sock_state_made_ctx(struct bpf_sock *sk)
{
	return count_if_missing(sock_state_of_ctx(sk, true));
}

#endif /* NETWARDEN_NET_SOCK_STATE_BPF_H */
