// SPDX-License-Identifier: GPL-2.0
/*
 * Inbound port scans: one record per source, local port and kind of probe on `scan_probes`,
 * from signals the kernel raises only for probes, never for ordinary packets:
 *   - kfree_skb with reason NO_SOCKET: a segment or datagram to a port nobody listens on
 *     (the kernel answers it with a RST or an ICMP port unreachable; this fires before the
 *     ICMP rate limit). Reason TCP_FLAGS: a listener discarded a FIN, NULL or XMAS probe.
 *     The skb is the incoming packet: its TCP flags and header length tell the probe kind.
 *   - sock_ops TIMEOUT_INIT on a request socket: a SYN reached an open port; PASSIVE_
 *     ESTABLISHED: the handshake completed (a full connect). Both run once per connection.
 * The `scan_seen` LRU table passes a (source, port, kind) at most once per half window, so a
 * client that connects to one service again and again costs one record per half window.
 * Aggregation (distinct ports per source within the window, the threshold, the allow-list)
 * is the sensor's (netwarden/sensor/scan.py).
 */
#include "common.bpf.h"
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

/* Layout anchor: keep the shared record in this object's BTF for the contract test. */
const volatile struct scan_probe nw_btf_scan_probe;

/* Set by the loader. */
const volatile u64 repeat_after_ns = 30ULL * 1000000000ULL; /* half the detection window */
const volatile u32 has_drop_reason = 1; /* kfree_skb carries a reason (5.17+) */
/* Before 5.17: [start, end) of the kernel functions whose kfree_skb() is the drop of a packet
 * no socket took (tcp_v4_rcv, __udp4_lib_rcv, ... from /proc/kallsyms); 0, 0 when unused. */
#define NW_DROP_SITES 8
const volatile u64 drop_site_start[NW_DROP_SITES] = {};
const volatile u64 drop_site_end[NW_DROP_SITES] = {};

#define TCP_NEW_SYN_RECV 12
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_PSH 0x08
#define TCP_FLAG_URG 0x20
#define TCP_FLAGS_MASK 0x3f /* not ECE/CWR: a SYN may ask for ECN */
/* A kernel connect() sends MSS, SACK-permitted, timestamps and window scale (a 40-byte
 * header, 32 without timestamps); raw scanners send a bare SYN or one with MSS only. */
#define BARE_SYN_MAX_DOFF 6

struct scan_key {
	__u8 remote_addr[NW_ADDR_LEN];
	__u16 local_port;
	__u8 kind;
	__u8 protocol;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384); /* the loader sets [scan] table_entries */
	__type(key, struct scan_key);
	__type(value, u64);
} scan_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} scan_probes SEC(".maps");

/* Is this (source, port, kind) new in the last half window? Records it when it is. */
static __always_inline bool first_in_window(const struct scan_probe *probe, u64 now)
{
	struct scan_key key = {};
	u64 *seen;

	__builtin_memcpy(key.remote_addr, probe->remote_addr, NW_ADDR_LEN);
	key.local_port = probe->local_port;
	key.kind = probe->kind;
	key.protocol = probe->protocol;
	seen = bpf_map_lookup_elem(&scan_seen, &key);
	if (seen && now - *seen < repeat_after_ns)
		return false;
	bpf_map_update_elem(&scan_seen, &key, &now, BPF_ANY);
	return true;
}

static __always_inline void emit(struct scan_probe *probe)
{
	u64 now = bpf_ktime_get_ns();
	struct scan_probe *record;

	if (!first_in_window(probe, now))
		return;
	record = reserve_or_count(&scan_probes, sizeof(*record), NW_HEALTH_SCAN_PROBES_LOST);
	if (!record)
		return;
	probe->timestamp_ns = now;
	__builtin_memcpy(record, probe, sizeof(*record));
	bpf_ringbuf_submit(record, 0);
}

static __always_inline u8 tcp_probe_kind(u8 flags, u8 doff_byte)
{
	flags &= TCP_FLAGS_MASK;
	if (flags & TCP_FLAG_RST)
		return 0; /* a reset to a closed port is an answer to something, not a probe */
	if (flags == TCP_FLAG_SYN)
		return (doff_byte >> 4) <= BARE_SYN_MAX_DOFF ? NW_PROBE_SYN : NW_PROBE_CONNECT_SYN;
	if (flags == 0)
		return NW_PROBE_NULL;
	if (flags == TCP_FLAG_FIN)
		return NW_PROBE_FIN;
	if (flags == (TCP_FLAG_FIN | TCP_FLAG_PSH | TCP_FLAG_URG))
		return NW_PROBE_XMAS;
	return NW_PROBE_OTHER_TCP;
}

/* Addresses and the protocol of the packet at `network`; false when it is not TCP/UDP. */
static __always_inline bool read_ip(struct scan_probe *probe, unsigned char *network)
{
	u8 version = 0;

	bpf_probe_read_kernel(&version, 1, network);
	if ((version >> 4) == 4) {
		probe->family = AF_INET;
		bpf_probe_read_kernel(&probe->protocol, 1, network + 9);
		bpf_probe_read_kernel(probe->remote_addr, 4, network + 12);
		bpf_probe_read_kernel(probe->local_addr, 4, network + 16);
	} else if ((version >> 4) == 6) {
		/* Only a transport header right after the fixed one; probes carry no extensions. */
		probe->family = AF_INET6;
		bpf_probe_read_kernel(&probe->protocol, 1, network + 6);
		bpf_probe_read_kernel(probe->remote_addr, NW_ADDR_LEN, network + 8);
		bpf_probe_read_kernel(probe->local_addr, NW_ADDR_LEN, network + 24);
	} else {
		return false;
	}
	return probe->protocol == IPPROTO_TCP || probe->protocol == IPPROTO_UDP;
}

static __always_inline void dropped(struct sk_buff *skb, bool tcp_flags_only)
{
	struct scan_probe probe = {};
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *transport = head + BPF_CORE_READ(skb, transport_header);
	u8 header[14] = {};
	u16 port, remote_port;

	if (!read_ip(&probe, head + BPF_CORE_READ(skb, network_header)))
		return;
	if (probe.protocol == IPPROTO_UDP && tcp_flags_only)
		return;
	if (bpf_probe_read_kernel(header, probe.protocol == IPPROTO_TCP ? 14 : 4, transport))
		return;
	__builtin_memcpy(&port, header + 2, 2);
	probe.local_port = bpf_ntohs(port);
	__builtin_memcpy(&port, header, 2);
	remote_port = bpf_ntohs(port);
	if (probe.protocol == IPPROTO_UDP)
		probe.kind = NW_PROBE_UDP;
	else
		probe.kind = tcp_probe_kind(header[13], header[12]);
	/* From a service port to an ephemeral one, anything but a SYN is a late answer to a
	 * socket that has gone (a DNS reply after the resolver gave up, a server's FIN after a
	 * reset): many of those reach many local ports and are no scan. */
	if (remote_port < 1024 && probe.local_port >= 1024 && probe.kind != NW_PROBE_SYN &&
	    probe.kind != NW_PROBE_CONNECT_SYN)
		return;
	if (probe.kind)
		emit(&probe);
}

/*
 * Kernels before 5.17 (c504e5c2f964 "net: skb: introduce kfree_skb_reason()") say only where
 * a packet was freed: the receive functions' own kfree_skb() is, mostly, "no socket" (the
 * other drops there, bad checksums, are rare and each touches one port). FIN/NULL/XMAS probes
 * of open ports are freed without the tracepoint there (tcp_drop() calls __kfree_skb()).
 */
static __always_inline bool at_drop_site(u64 location)
{
	for (int i = 0; i < NW_DROP_SITES; i++) {
		if (location >= drop_site_start[i] && location < drop_site_end[i])
			return true;
	}
	return false;
}

/*
 * Every freed-not-consumed packet passes here, but ordinary traffic is consumed
 * (consume_skb), not dropped: this runs for drops. The reason is an enum whose values move
 * between kernels, hence CO-RE; TCP_FLAGS is newer than NO_SOCKET (5.19). Where there is no
 * reason the loader leaves has_drop_reason 0 and the verifier never sees the read of the
 * third argument (a read-only global is a known constant: the branch is dead code).
 */
SEC("tp_btf/kfree_skb")
int tp_kfree_skb(u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	u32 reason;

	if (!has_drop_reason) {
		if (at_drop_site(ctx[1]))
			dropped(skb, false);
		return 0;
	}
	reason = (u32)ctx[2];
	if (reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET))
		dropped(skb, false);
	else if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_TCP_FLAGS) &&
		 reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_TCP_FLAGS))
		dropped(skb, true);
	return 0;
}

SEC("sockops")
int sockops_scan(struct bpf_sock_ops *skops)
{
	struct scan_probe probe = {};

	switch (skops->op) {
	case BPF_SOCK_OPS_TIMEOUT_INIT:
		/* Also asked for an outgoing connect(); a request socket is an incoming SYN. */
		if (skops->state != TCP_NEW_SYN_RECV)
			return 1;
		probe.kind = NW_PROBE_REQUEST;
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		probe.kind = NW_PROBE_ESTABLISHED;
		break;
	default:
		return 1;
	}
	probe.protocol = IPPROTO_TCP;
	probe.local_port = (u16)skops->local_port;
	probe.family = (u16)skops->family;
	/* Every field read once, unconditionally: clang would otherwise merge the two families'
	 * loads into one through a computed context pointer, which the verifier refuses. */
	u32 remote[4] = {skops->remote_ip6[0], skops->remote_ip6[1], skops->remote_ip6[2],
			 skops->remote_ip6[3]};
	u32 local[4] = {skops->local_ip6[0], skops->local_ip6[1], skops->local_ip6[2],
			skops->local_ip6[3]};
	u32 remote4 = skops->remote_ip4, local4 = skops->local_ip4;

	for (int i = 0; i < 4; i++) {
		barrier_var(remote[i]);
		barrier_var(local[i]);
	}
	barrier_var(remote4);
	barrier_var(local4);

	if (probe.family == AF_INET) {
		__builtin_memcpy(probe.remote_addr, &remote4, 4);
		__builtin_memcpy(probe.local_addr, &local4, 4);
	} else if (probe.family == AF_INET6) {
		__builtin_memcpy(probe.remote_addr, remote, NW_ADDR_LEN);
		__builtin_memcpy(probe.local_addr, local, NW_ADDR_LEN);
	} else {
		return 1;
	}
	emit(&probe);
	return 1;
}
