// SPDX-License-Identifier: GPL-2.0
/*
 * Bytes per flow, summed in the kernel.
 *
 * Hot path: one tracepoint run per send or receive call adds the byte count to a per-CPU hash
 * entry keyed by (socket cookie, tgid, remote address, remote port). The identity of the socket
 * and process (executable inode, uid, netns, local address, protocol) is read only when a key is
 * first inserted in a drain window.
 *
 * Draining without losing bytes: two tables, flows_a and flows_b, behind `flow_tables`; the
 * programs write to the one `flow_slot` selects. The sensor flips the slot, waits one RCU grace
 * period (every program that read the old slot has returned), then reads and clears the idle
 * table while nothing writes to it.
 *
 * Hooks chosen at load time (the loader sets autoload):
 *   "tracepoint": tp_btf sock_send_length / sock_recv_length (kernel >= 6.3)
 *   "fexit":      fexit __sock_sendmsg / sock_recvmsg (older kernels)
 * Both share: tcp_rcv_space_adjust (TCP reads that bypass recvmsg, e.g. splice), the
 * sockops birth mark, and the peer hooks below.
 *
 * Peers of unconnected sockets are not in the socket, so they are remembered just before the
 * byte hook fires, in the same call:
 *   send, UDP:         cgroup sendmsg4/6 (the destination the caller passed)   -> socket state
 *   send, raw / ping:  net_dev_queue (the destination in the IP header)        -> socket state
 *   receive, any:      skb_copy_datagram_iovec (the source in the IP header)   -> thread state
 *   receive, UDP:      cgroup recvmsg4/6 (fallback when the copy path skips the tracepoint)
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "compat.bpf.h"
#include "events.h"

#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_UDPLITE 136
#define SOCK_STREAM 1
#define TCP_ESTABLISHED 1
#define TCP_TIME_WAIT 6
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LAST_ACK 9
#define TCP_CLOSING 11
#define TCP_NEW_SYN_RECV 12
#define MSG_PEEK 2
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define EEXIST 17

char LICENSE[] SEC("license") = "GPL";

/* Layout anchors: keep the shared records in this object's BTF for the contract test. */
const volatile struct flow_key nw_btf_flow_key;
const volatile struct flow_value nw_btf_flow_value;

/* Set by the loader: count AF_PACKET sockets (frame injection, sniffers) as well as IP. */
const volatile bool track_packet_sockets = true;

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
	__type(value, u32);
} flow_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NW_HEALTH_COUNTERS);
	__type(key, u32);
	__type(value, u64);
} health SEC(".maps");

/* A peer remembered for the next byte hook; kernel-private, never read by the sensor. */
struct pending_peer {
	u8 addr[NW_ADDR_LEN];
	u16 port;
	u16 family;
	u8 set;
};

/* Per-socket state (freed with the socket). */
struct sock_state {
	u64 tcp_bytes_read; /* TCP payload already attributed on receive */
	u16 local_port;     /* TCP: kept because closing releases the port (inet_num = 0) */
	struct pending_peer send_peer;
	struct pending_peer recv_peer;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_state);
} sock_states SEC(".maps");

/*
 * Per-thread state: the source of the datagram this thread is receiving. A received UDP skb
 * has no owning socket (skb->sk is NULL once queued), so the thread is the link between the
 * copy and the byte count that follows it in the same recvmsg call.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pending_peer);
} thread_recv_peer SEC(".maps");

static __always_inline void health_add(u32 index, u64 amount)
{
	u64 *counter = bpf_map_lookup_elem(&health, &index);

	if (counter)
		__sync_fetch_and_add(counter, amount);
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
static __always_inline bool has_fixed_peer(struct sock *sk)
{
	return sk->__sk_common.skc_state == TCP_ESTABLISHED || nw_sk_type(sk) == SOCK_STREAM;
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
	peer->set = 0;
}

static __always_inline void fill_peer(struct flow_key *key, struct sock *sk, u16 family,
				      bool is_send)
{
	if (family == AF_PACKET)
		return;
	if (has_fixed_peer(sk)) {
		copy_addr(key->remote_addr, sk, family, true);
		key->remote_port = bpf_ntohs(sk->__sk_common.skc_dport);
		return;
	}
	if (!is_send) {
		struct task_struct *task = bpf_get_current_task_btf();
		struct pending_peer *peer = bpf_task_storage_get(&thread_recv_peer, task, 0, 0);

		if (peer && peer->set) {
			take_peer(key, peer, family);
			return;
		}
	}
	struct sock_state *state = bpf_sk_storage_get(&sock_states, sk, 0, 0);

	if (!state)
		return;
	if (is_send && state->send_peer.set)
		take_peer(key, &state->send_peer, family);
	else if (!is_send && state->recv_peer.set)
		take_peer(key, &state->recv_peer, family);
}

static __always_inline void fill_identity(struct flow_value *value, struct sock *sk, u16 family)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct inode *exe = task->mm->exe_file->f_inode; /* NULL-safe: faulting loads read 0 */

	value->exe_ino = exe->i_ino;
	value->exe_dev = exe->i_sb->s_dev;
	value->uid = (u32)bpf_get_current_uid_gid();
	value->cgroup_id = bpf_get_current_cgroup_id();
	value->netns = sk->__sk_common.skc_net.net->ns.inum;
	value->family = family;
	value->protocol = nw_sk_protocol(sk);
	value->sock_type = (u8)nw_sk_type(sk);
	if (family != AF_PACKET) {
		u16 port = sk->__sk_common.skc_num;

		if (!port) { /* a closed TCP socket whose last bytes are being read */
			struct sock_state *state = bpf_sk_storage_get(&sock_states, sk, 0, 0);

			if (state)
				port = state->local_port;
		}
		value->local_port = port;
		copy_addr(value->local_addr, sk, family, false);
	}
	value->flags = NW_FLOW_HAS_IDENTITY;
}

static __always_inline void add_bytes(struct flow_value *value, u64 bytes, bool is_send)
{
	if (is_send) {
		__sync_fetch_and_add(&value->sent_bytes, bytes);
		__sync_fetch_and_add(&value->sent_msgs, 1);
	} else {
		__sync_fetch_and_add(&value->recv_bytes, bytes);
		__sync_fetch_and_add(&value->recv_msgs, 1);
	}
}

static __always_inline void account(struct sock *sk, u16 family, u64 bytes, bool is_send)
{
	struct flow_key key = {};
	struct flow_value *value;
	u32 zero = 0;

	u32 *slot = bpf_map_lookup_elem(&flow_slot, &zero);
	if (!slot)
		return;
	u32 index = *slot & 1;
	void *table = bpf_map_lookup_elem(&flow_tables, &index);
	if (!table)
		return;

	key.sock_cookie = nw_sock_id(sk);
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	fill_peer(&key, sk, family, is_send);

	value = bpf_map_lookup_elem(table, &key);
	if (!value) {
		struct flow_value fresh = {};

		fill_identity(&fresh, sk, family);
		add_bytes(&fresh, bytes, is_send);
		long err = bpf_map_update_elem(table, &key, &fresh, BPF_NOEXIST);
		if (!err)
			return;
		/* Another CPU inserted the key first: add to this CPU's slot of it. */
		value = err == -EEXIST ? bpf_map_lookup_elem(table, &key) : NULL;
		if (!value) {
			health_add(NW_HEALTH_FLOW_MAP_FULL, 1);
			health_add(NW_HEALTH_BYTES_UNATTRIBUTED, bytes);
			return;
		}
	}
	add_bytes(value, bytes, is_send);
}

/*
 * TCP receive: attribute the growth of "payload the application has consumed", i.e.
 * bytes_received minus what still waits in the queue (rcv_nxt - copied_seq). Every path that
 * consumes TCP data (recvmsg, splice, zero-copy receive) advances copied_seq, so both TCP
 * hooks can call this and each byte is counted once. `known_new` is the size of the read in
 * progress when the caller knows it; it sets the baseline for sockets born before the sensor.
 */
static __always_inline void account_tcp_read(struct sock *sk, u16 family, u64 known_new)
{
	/* The verifier types `sk` as struct sock, so tcp_sock fields go through probe reads. */
	struct tcp_sock *tp = (void *)sk;
	u32 copied = BPF_CORE_READ(tp, copied_seq);
	u32 next = BPF_CORE_READ(tp, rcv_nxt);
	u64 received = BPF_CORE_READ(tp, bytes_received);
	u32 unread = next - copied;

	if (received < unread)
		return;
	u64 consumed = received - unread;
	u8 tcp_state = sk->__sk_common.skc_state;

	/* tcp_rcv_nxt_update() counts the peer's FIN in bytes_received (it is one sequence
	 * number) and reading it advances copied_seq: once the FIN is in and nothing is unread,
	 * the reader has consumed it, and it is not a byte of data. */
	if (unread == 0 && consumed > 0 &&
	    (tcp_state == TCP_CLOSE_WAIT || tcp_state == TCP_LAST_ACK ||
	     tcp_state == TCP_CLOSING || tcp_state == TCP_CLOSE))
		consumed -= 1;
	struct sock_state *state = bpf_sk_storage_get(&sock_states, sk, 0, 0);

	if (!state) {
		/* Not marked at birth by sockops: it predates the sensor. Count only this read. */
		state = bpf_sk_storage_get(&sock_states, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (!state) {
			health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
			return;
		}
		state->tcp_bytes_read = consumed > known_new ? consumed - known_new : 0;
		state->local_port = sk->__sk_common.skc_num;
	}
	for (int attempt = 0; attempt < 4; attempt++) {
		u64 seen = state->tcp_bytes_read;

		if (consumed <= seen)
			return;
		if (__sync_val_compare_and_swap(&state->tcp_bytes_read, seen, consumed) == seen) {
			account(sk, family, consumed - seen, false);
			return;
		}
	}
}

static __always_inline void on_send(struct sock *sk, int ret)
{
	if (!sk || ret <= 0)
		return;
	u16 family = sk->__sk_common.skc_family;

	if (tracked_family(family))
		account(sk, family, ret, true);
}

static __always_inline void on_recv(struct sock *sk, int ret, int flags)
{
	if (!sk || ret <= 0 || (flags & MSG_PEEK))
		return;
	u16 family = sk->__sk_common.skc_family;

	if (!tracked_family(family))
		return;
	if (family != AF_PACKET && is_tcp(sk))
		account_tcp_read(sk, family, ret);
	else
		account(sk, family, ret, false);
}

/* ---- byte hooks, set "tracepoint" (kernel >= 6.3) ---- */

SEC("tp_btf/sock_send_length")
int BPF_PROG(tp_sock_send_length, struct sock *sk, int ret, int flags)
{
	on_send(sk, ret);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tp_sock_recv_length, struct sock *sk, int ret, int flags)
{
	on_recv(sk, ret, flags);
	return 0;
}

/* ---- byte hooks, set "fexit" (kernels without the tracepoints) ---- */

SEC("fexit/__sock_sendmsg")
int BPF_PROG(fexit_sock_sendmsg, struct socket *sock, struct msghdr *msg, int ret)
{
	on_send(sock->sk, ret);
	return 0;
}

SEC("fexit/sock_recvmsg")
int BPF_PROG(fexit_sock_recvmsg, struct socket *sock, struct msghdr *msg, int flags, int ret)
{
	on_recv(sock->sk, ret, flags);
	return 0;
}

/* ---- shared ---- */

/* TCP data consumed outside recvmsg (splice, tcp_read_sock users) still ends here. */
SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(tp_tcp_rcv_space_adjust, struct sock *sk)
{
	u16 family = sk->__sk_common.skc_family;

	if (family == AF_INET || family == AF_INET6)
		account_tcp_read(sk, family, 0);
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
		struct sock_state *state = bpf_sk_storage_get(&sock_states, sk, 0,
							      BPF_SK_STORAGE_GET_F_CREATE);
		if (state)
			state->local_port = (u16)ops->local_port;
		else
			health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
	}
	return 1;
}

static __always_inline void remember_sock_peer(struct bpf_sock *sk, bool is_send, u16 family,
					       const void *addr, u32 port_be)
{
	struct sock_state *state;

	if (!sk)
		return;
	state = bpf_sk_storage_get(&sock_states, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
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
	peer->set = 1;
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

	/* Only IP packets carry the headers below (unix and netlink skbs pass here too). */
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
	if (next_proto == IPPROTO_TCP)
		return false;
	peer->port = 0;
	if (next_proto == IPPROTO_UDP || next_proto == IPPROTO_UDPLITE) {
		__be16 port = 0;

		bpf_probe_read_kernel(&port, 2, head + skb->transport_header + (want_source ? 0 : 2));
		peer->port = bpf_ntohs(port);
	}
	peer->set = 1;
	return true;
}

/* A datagram (UDP, raw, ping) is being copied to the reading thread: remember its source. */
SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(tp_skb_copy_datagram_iovec, const struct sk_buff *skb, int len)
{
	struct pending_peer peer = {};
	struct task_struct *task;
	struct pending_peer *slot;

	if (!read_packet_peer(skb, true, &peer))
		return 0;
	task = bpf_get_current_task_btf();
	slot = bpf_task_storage_get(&thread_recv_peer, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!slot) {
		health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
		return 0;
	}
	*slot = peer;
	return 0;
}

/* An unconnected raw or ping socket sends a packet: remember its destination. */
SEC("tp_btf/net_dev_queue")
int BPF_PROG(tp_net_dev_queue, struct sk_buff *skb)
{
	struct sock *sk = skb->sk;
	struct pending_peer peer = {};

	if (!sk)
		return 0;
	u8 state = sk->__sk_common.skc_state;
	u16 family = sk->__sk_common.skc_family;

	/* Request and timewait minisocks end after sock_common: check before reading more. */
	if (state == TCP_TIME_WAIT || state == TCP_NEW_SYN_RECV || state == TCP_ESTABLISHED)
		return 0;
	if ((family != AF_INET && family != AF_INET6) || nw_sk_type(sk) == SOCK_STREAM)
		return 0;
	u16 protocol = nw_sk_protocol(sk);

	if (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE)
		return 0; /* the cgroup sendmsg hooks already saw the destination */
	if (!read_packet_peer(skb, false, &peer))
		return 0;
	struct sock_state *st = bpf_sk_storage_get(&sock_states, sk, 0,
						   BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		health_add(NW_HEALTH_SOCK_STORAGE_FAIL, 1);
		return 0;
	}
	st->send_peer = peer;
	return 0;
}
