// SPDX-License-Identifier: GPL-2.0
/*
 * Bytes per flow, summed in the kernel.
 *
 * Hot path: one program run per send or receive call. A socket with a fixed peer (or none
 * known) adds the byte count to counters in its own storage; an unconnected socket talking
 * to several peers adds it to a per-CPU hash entry keyed by (socket cookie, tgid, remote
 * address and port). Who the socket and process are (executable inode, uid, netns,
 * addresses, protocol) is read only when an owner or key is first seen.
 *
 * Cost is counted in program runs: on the VMs this is measured on, running any program costs
 * ~85 ns, more than the work most of them do. So nothing here runs for every packet: TCP
 * reads are counted from sequence numbers in the receive hook (and by the drain iterator and
 * the release hook, for reads the hook does not see, such as splice), and what the hooks
 * need beyond the socket (the destination of a raw or ping send, a DNS answer) is read from
 * the calling system call's arguments (syscall_args.bpf.h). Only the source of a datagram
 * read by a raw or ping socket needs a per-packet hook; the sensor attaches it while such a
 * socket exists (cg_sock_create tells it when one appears).
 *
 * Draining without losing bytes: two tables, flows_a and flows_b, behind `flow_tables`, and
 * two epochs of socket counters; the programs write to the one `control.active_table` names.
 * The sensor flips it, waits one RCU grace period (every program that read the old value has
 * returned), then reads and clears the idle epoch while nothing writes to it.
 *
 * Hooks chosen at load time (the loader sets autoload):
 *   "tracepoint": tp_btf sock_send_length / sock_recv_length (kernel >= 6.3)
 *   "fexit":      fexit inet{,6}_{send,recv}msg, inet_sendpage, packet_{send,recv}msg
 *                 (older kernels)
 * Peers of unconnected sockets are not in the socket, so they are remembered in per-socket
 * state just before the byte hook fires, in the same call:
 *   send, UDP:          cgroup sendmsg4/6 (the destination the caller passed)
 *   send, raw / ping:   the sendto/sendmsg destination (syscall arguments); on kernels
 *                       without bpf_task_pt_regs, net_dev_queue (the IP header)
 *   receive, UDP:       cgroup recvmsg4/6 (the source, when the caller asked for it)
 *   receive, raw/ping:  skb_copy_datagram_iovec (the source in the IP header), on demand
 */
#include "common.bpf.h"
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "compat.bpf.h"
#include "syscall_args.bpf.h"

#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define TCP_ESTABLISHED 1
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LAST_ACK 9
#define TCP_CLOSING 11
#define TCP_NEW_SYN_RECV 12
#define MSG_PEEK 2
#define EEXIST 17
#define E2BIG 7

char LICENSE[] SEC("license") = "GPL";

/* Layout anchors: keep the shared records in this object's BTF for the contract test. */
const volatile struct flow_key nw_btf_flow_key;
const volatile struct flow_value nw_btf_flow_value;
const volatile struct nw_control nw_btf_control;
const volatile struct flow_record nw_btf_flow_record;
const volatile struct dns_event nw_btf_dns_event;
const volatile struct datagram_notice nw_btf_datagram_notice;
const volatile struct sock_slot nw_btf_sock_slot;

/* Set by the loader. */
const volatile bool track_packet_sockets = true;
/*
 * Tracepoint programs run with preemption disabled and never in interrupt context, so per-CPU
 * counters (the flow tables) need no atomic add. fexit trampolines only disable migration:
 * there two tasks can interleave on one CPU, and the loader sets this for the fexit hook set.
 * (A socket's own counters are shared between CPUs and always added atomically.)
 */
const volatile bool preemptible_hooks = false;
/*
 * The hooks may read their system call's arguments (syscall_args.bpf.h): the loader sets it
 * where the kernel has bpf_task_pt_regs() and the architecture's table is known. Without it,
 * net_dev_queue finds raw and ping destinations and dns.bpf.o reads DNS from packets.
 */
const volatile bool syscall_args = false;
/* Never in the compat build: kernels before 5.12 lack bpf_task_pt_regs() too (5.15). */
#define NW_SYSCALL_ARGS (!NW_PRE_5_12 && syscall_args)

struct flow_table {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384); /* the loader sets the configured size */
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} flows_a SEC(".maps"), flows_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, u32);
	__array(values, struct flow_table);
} flow_tables SEC(".maps") = {
	.values = { &flows_a, &flows_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct nw_control);
} control SEC(".maps");

/* DNS answers read by the receive hook (syscall_args); the sensor parses them. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* the loader sets the configured size */
} dns_events SEC(".maps");

/* Raw and ping sockets appearing while the datagram-source hook is detached. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} datagram_notices SEC(".maps");

/* Raw and ping sockets created since the sensor started and not yet released: while any
 * lives, the sensor keeps the datagram-source hook attached. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, s64);
} datagram_sockets SEC(".maps");

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

static __always_inline struct nw_control *get_control(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&control, &zero);
}

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

/* Who is using the socket and what it is: read once per flow key (or socket owner). */
static __always_inline void fill_identity(struct flow_value *value, struct sock *sk, u16 family,
					  const struct flow_key *key, bool fixed_peer,
					  struct sock_state *state)
{
	nw_current_exe(&value->exe_ino, &value->exe_dev);
	value->uid = (u32)bpf_get_current_uid_gid();
	value->cgroup_id = bpf_get_current_cgroup_id();
	value->netns = sk->__sk_common.skc_net.net->ns.inum;
	value->family = family;
	value->protocol = nw_sk_protocol(sk);
	value->sock_type = (u8)nw_sk_type(sk);
	value->flags = NW_FLOW_HAS_IDENTITY;
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
	void *table = active_table(ctl);
	struct flow_value *value;

	if (!table)
		return;
	value = bpf_map_lookup_elem(table, key);
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
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	if (!tp)
		return;
	u64 consumed = tcp_consumed(tp->bytes_received, tp->rcv_nxt, tp->copied_seq,
				    sk->__sk_common.skc_state);

	if (!state)
		state = sock_state_of(sk, false);
	if (!state) {
		/* Not marked at birth by sockops: it predates the sensor. Count only this read. */
		state = sock_state_of(sk, true);
		if (!state) {
			health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
			return;
		}
		state->tcp_bytes_read = consumed > known_new ? consumed - known_new : 0;
		state->local_port = sk->__sk_common.skc_num;
	}
	if (state->fast_tgid && (state->fast_tgid != caller->tgid ||
				 state->fast_mm != caller->mm) && consumed > known_new) {
		/* Reads before this one, unclaimed on the fast path, were the previous owner's. */
		u64 theirs = claim_tcp_read(state, consumed - known_new, locked);

		if (theirs)
			add_to_socket(state, ctl, theirs, false);
	}
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
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

	if (!tp)
		return;
	u64 theirs = claim_tcp_read(state, tcp_consumed(tp->bytes_received, tp->rcv_nxt,
							tp->copied_seq,
							sk->__sk_common.skc_state), false);

	if (theirs)
		add_to_socket(state, ctl, theirs, false);
}

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

/* Raw and ping (ICMP datagram) sockets: their peers are per packet, in no socket field. */
static __always_inline bool is_raw_or_ping(u16 sock_type, u16 protocol)
{
	return sock_type == SOCK_RAW ||
	       (sock_type == SOCK_DGRAM && (protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6));
}

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
	struct sock_state *state = sock_state_of(sk, true);

	if (!state) {
		health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
		return NULL;
	}
	state->send_peer = peer;
	state->send_peer_set = 1;
	return state;
}

/*
 * The socket's state when the fast path may apply (full mode, an IP socket), else NULL; and
 * whether it does. One storage lookup, shared with the slow path.
 */
static __always_inline struct sock_state *fast_state(struct sock *sk, u16 family)
{
	if (NW_PRE_5_12 || family == AF_PACKET)
		return NULL;
	return bpf_sk_storage_get(&sock_states, sk, 0, 0);
}

/*
 * `addressed`: the call may have given a destination (its msghdr's msg_name; the tracepoint
 * does not say, so there it is true). Compat mode looks no state up for a socket with a
 * fixed peer; for a connected UDP socket's sendto() elsewhere it has to, or such a datagram
 * would count under the connected peer. Full mode looks the state up anyway (fast_state()).
 */
static __always_inline void on_send(struct sock *sk, int ret, bool addressed)
{
	if (!sk || ret <= 0)
		return;
	u16 family = sk->__sk_common.skc_family;

	if (!tracked_family(family))
		return;
	struct nw_control *ctl = get_control();

	if (!ctl)
		return;
	struct sock_slot *slot = slot_fast_path(sk);

	if (slot) {
		add_to_counters(slot->sent, slot->recv, ctl, ret, true);
		return;
	}
	struct caller caller;
	struct sock_state *state = fast_state(sk, family);

	current_caller(&caller);
	if (state && fast_path_holds(sk, state, &caller, true)) {
		add_to_socket(state, ctl, ret, true);
		if (state->slot_cookie) /* another thread of the owner, or a new generation */
			arm_slot(sk, state);
		return;
	}
	if (state && state->fast_tgid && state->fast_tcp &&
	    (state->fast_tgid != caller.tgid || state->fast_mm != caller.mm))
		claim_reads_of_previous_owner(ctl, sk, state);
	if (NW_SYSCALL_ARGS && family != AF_PACKET &&
	    sk->__sk_common.skc_state != TCP_ESTABLISHED &&
	    is_raw_or_ping(nw_sk_type(sk), nw_sk_protocol(sk))) {
		struct sock_state *with_peer = remember_send_destination(sk, family);

		if (with_peer)
			state = with_peer;
	}
	if (NW_PRE_5_12 && addressed && family != AF_PACKET &&
	    sk->__sk_common.skc_state == TCP_ESTABLISHED && !is_tcp(sk))
		/* A connected datagram socket's sendto(): account() looks no state up for a
		 * socket with a fixed peer, but the cgroup sendmsg hook left the address there. */
		state = sock_state_of(sk, false);
	account(ctl, sk, family, ret, true, state, &caller);
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

static __always_inline void on_recv(struct sock *sk, int ret, int flags)
{
	if (!sk || ret <= 0 || (flags & MSG_PEEK))
		return;
	u16 family = sk->__sk_common.skc_family;

	if (!tracked_family(family))
		return;
	struct nw_control *ctl = get_control();

	if (!ctl)
		return;
	struct sock_slot *slot = slot_fast_path(sk);

	if (slot) {
		/* TCP: the drain iterator claims what was read, from the sequence numbers. */
		if (!slot->tcp)
			add_to_counters(slot->sent, slot->recv, ctl, ret, false);
		return;
	}
	struct caller caller;
	struct sock_state *state = fast_state(sk, family);

	current_caller(&caller);
	if (state && fast_path_holds(sk, state, &caller, false)) {
		bool tcp = state->fast_tcp;

		/* TCP: the drain iterator claims what was read, from the sequence numbers. */
		if (!tcp)
			add_to_socket(state, ctl, ret, false);
		if (state->slot_cookie)
			arm_slot(sk, state);
		if (NW_SYSCALL_ARGS && (sk->__sk_common.skc_dport == bpf_htons(DNS_PORT) ||
					state->dns_client))
			capture_dns(sk, ret, tcp ? IPPROTO_TCP : IPPROTO_UDP);
		return;
	}
	bool tcp = family != AF_PACKET && is_tcp(sk);

	if (tcp && ctl->tcp_read_hooked)
		return; /* counted by tp_tcp_rcv_space_adjust (compat mode, no fast path) */
	if (tcp) {
		account_tcp_read(ctl, sk, family, ret, false, state, &caller);
		if (NW_SYSCALL_ARGS && sk->__sk_common.skc_dport == bpf_htons(DNS_PORT))
			capture_dns(sk, ret, IPPROTO_TCP);
		return;
	}
	bool dns = NW_SYSCALL_ARGS && family != AF_PACKET &&
		   nw_sk_protocol(sk) == IPPROTO_UDP && receives_dns(sk, state);

	account(ctl, sk, family, ret, false, state, &caller);
	if (dns)
		capture_dns(sk, ret, IPPROTO_UDP);
}

/* ---- byte hooks, set "tracepoint" (kernel >= 6.3) ---- */

SEC("tp_btf/sock_send_length")
int BPF_PROG(tp_sock_send_length, struct sock *sk, int ret, int flags)
{
	on_send(sk, ret, true);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tp_sock_recv_length, struct sock *sk, int ret, int flags)
{
	on_recv(sk, ret, flags);
	return 0;
}

/*
 * A new task may have a dead task's kernel stack, and an exec gives a task another address
 * space: either way a slot's (thread, generation) may no longer be its owner. Renewing the
 * generation sends every slot's next call to the sk_storage path, which re-arms it. Before
 * the new task runs (copy_process()) and before the exec'd program runs.
 */
SEC("tp_btf/task_newtask")
int BPF_PROG(tp_owner_task_new)
{
	__sync_fetch_and_add(&owner_generation, 1);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(tp_owner_exec)
{
	__sync_fetch_and_add(&owner_generation, 1);
	return 0;
}

/*
 * ---- byte hooks, set "fexit" (kernels without the tracepoints) ----
 *
 * One level below the socket layer, on the protocol functions every path reaches: on 6.1
 * sendmmsg/recvmmsg take sock_{send,recv}msg_nosec for all but the first message (inline,
 * bypassing __sock_sendmsg and sock_recvmsg), and sendfile takes sendpage, which bypasses
 * sendmsg entirely until 6.5 (the kernel matrix found both). A hook on sock_sendmsg loads
 * there and counts nothing for sendto at all.
 */

/* sendmsg(sock, msg, size) and recvmsg(sock, msg, size, flags) have the same shape in
 * every protocol family hooked here. */
#define FEXIT_SENDMSG(fn)								\
SEC("fexit/" #fn)								\
int BPF_PROG(fexit_##fn, struct socket *sock, struct msghdr *msg, size_t size, int ret)	\
{										\
	on_send(sock->sk, ret, msg->msg_name != NULL);				\
	return 0;								\
}

#define FEXIT_RECVMSG(fn)								\
SEC("fexit/" #fn)								\
int BPF_PROG(fexit_##fn, struct socket *sock, struct msghdr *msg, size_t size, int flags,	\
	     int ret)								\
{										\
	on_recv(sock->sk, ret, flags);						\
	return 0;								\
}

FEXIT_SENDMSG(inet_sendmsg)
FEXIT_SENDMSG(inet6_sendmsg)
FEXIT_SENDMSG(packet_sendmsg)
FEXIT_RECVMSG(inet_recvmsg)
FEXIT_RECVMSG(inet6_recvmsg)
FEXIT_RECVMSG(packet_recvmsg)

SEC("fexit/inet_sendpage")
int BPF_PROG(fexit_inet_sendpage, struct socket *sock, struct page *page, int offset,
	     size_t size, int flags, long ret)
{
	on_send(sock->sk, ret, false);
	return 0;
}

/* ---- shared ---- */

/*
 * Compat mode only (kernels before 5.12, no compare-and-swap for the receive hook to claim
 * reads with): every TCP read ends here after copied_seq moved, recvmsg, splice and
 * tcp_read_sock users alike, under the socket lock. Elsewhere reads are claimed in the
 * receive hook, the drain iterator and the release hook, one program run fewer per read.
 */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(tp_tcp_rcv_space_adjust, struct sock *sk)
{
	u16 family = sk->__sk_common.skc_family;
	struct nw_control *ctl = get_control();
	struct caller caller;

	if (!ctl || (family != AF_INET && family != AF_INET6))
		return 0;
	current_caller(&caller);
	account_tcp_read(ctl, sk, family, 0, true, NULL, &caller);
	return 0;
}

/* Mark TCP sockets born while the sensor runs: all their received bytes are new. */
SEC("sockops")
int sockops_birth(struct bpf_sock_ops *ops)
{
	struct bpf_sock *sk = ops->sk;

	if (!sk)
		return 1;
	if (ops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB ||
	    ops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
		struct sock_state *state = sock_state_of_ctx(sk, true);

		if (state)
			state->local_port = (u16)ops->local_port;
		else
			health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
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
	struct sock_state *state = sock_state_of_ctx(sk, true);

	if (!state) {
		health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
		return 1;
	}
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
	nw_current_exe(&ident->exe_ino, &ident->exe_dev);
	ident->uid = (u32)bpf_get_current_uid_gid();
	ident->cgroup_id = bpf_get_current_cgroup_id();
	ident->netns = BPF_CORE_READ(ks, __sk_common.skc_net.net, ns.inum);
	ident->family = family;
	ident->protocol = (u16)sk->protocol;
	ident->sock_type = (u8)sk->type;
	ident->flags = NW_FLOW_HAS_IDENTITY;
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
 * Drain: for every TCP and UDP socket of the sensor's network namespace with state, write
 * the idle epoch's counters (the sensor flipped the epoch and waited an RCU grace period
 * first, so nothing adds to them now), and for TCP what was read but not yet claimed (reads
 * the receive hook does not see, like splice). The socket iterators, not one over the
 * storage map: kernels may refuse map-element iterators (this machine's 6.18 does, EPERM)
 * while the socket ones load, and account() keeps counters only in sockets these walk.
 */
static __always_inline int drain_socket(struct bpf_iter_meta *meta, void *sk, bool tcp)
{
	struct nw_control *ctl = get_control();

	if (NW_PRE_5_12 || !ctl || !sk)
		return 0; /* no socket counters there; the loader leaves these programs out */
	/* Through the map, not a pointer of the iterator: atomic exchanges need a map value. */
	struct sock_state *state = bpf_sk_storage_get(&sock_states, sk, 0, 0);
	struct flow_record record;
	u64 sent, recv, read = 0;

	if (!state || !state->owner_set)
		return 0;
	if (tcp && !ctl->tcp_read_hooked) {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);

		if (tp)
			read = claim_tcp_read(state, tcp_consumed(
				tp->bytes_received, tp->rcv_nxt, tp->copied_seq,
				((struct sock_common *)sk)->skc_state), false);
	}
	if (!take_epoch(state, ctl->active_table ^ 1, &sent, &recv) && !read)
		return 0;
	record.key = state->key;
	record.value = state->ident;
	record.value.sent_bytes = sent;
	record.value.recv_bytes = recv + read;
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

static __always_inline void remember_sock_peer(struct bpf_sock *sk, bool is_send, u16 family,
					       const void *addr, u32 port_be)
{
	struct sock_state *state;

	if (!sk)
		return;
	state = sock_state_of_ctx(sk, true);
	if (!state) {
		health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
		return;
	}
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

SEC("cgroup/sendmsg4")
int cg_sendmsg4(struct bpf_sock_addr *ctx)
{
	u32 ip = ctx->user_ip4;

	remember_sock_peer(ctx->sk, true, AF_INET, &ip, ctx->user_port);
	return 1;
}

SEC("cgroup/sendmsg6")
int cg_sendmsg6(struct bpf_sock_addr *ctx)
{
	u32 ip[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };

	remember_sock_peer(ctx->sk, true, AF_INET6, ip, ctx->user_port);
	return 1;
}

SEC("cgroup/recvmsg4")
int cg_recvmsg4(struct bpf_sock_addr *ctx)
{
	u32 ip = ctx->user_ip4;

	remember_sock_peer(ctx->sk, false, AF_INET, &ip, ctx->user_port);
	return 1;
}

SEC("cgroup/recvmsg6")
int cg_recvmsg6(struct bpf_sock_addr *ctx)
{
	u32 ip[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };

	remember_sock_peer(ctx->sk, false, AF_INET6, ip, ctx->user_port);
	return 1;
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
	struct sock_state *state = sock_state_of(sk, true);

	if (!state) {
		health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
		return;
	}
	if (want_source) {
		state->recv_peer = peer;
		state->recv_peer_set = 1;
	} else {
		state->send_peer = peer;
		state->send_peer_set = 1;
	}
}

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
