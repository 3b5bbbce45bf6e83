// SPDX-License-Identifier: GPL-2.0
/*
 * DNS answers as the kernel delivers them to sockets, for any resolver (glibc, musl, static
 * Go, Python's own code): a cgroup_skb/ingress program at the cgroup2 root sees every packet
 * received by every socket, in every network namespace. Packets from port 53 (UDP, or TCP
 * segments that carry payload) are copied to a ring buffer; the sensor parses them.
 *
 * It runs for every received packet, so the common case (not DNS) must exit after a handful
 * of loads. It never drops or changes a packet: it always returns 1 (allow).
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "events.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define DNS_PORT 53

char LICENSE[] SEC("license") = "GPL";

/* Layout anchor: keep the shared record in this object's BTF for the contract test. */
const volatile struct dns_event nw_btf_dns_event;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* the loader sets the configured size */
} dns_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NW_HEALTH_COUNTERS);
	__type(key, u32);
	__type(value, u64);
} health SEC(".maps");

/* Offset of the transport header, or 0 if this is not a UDP/TCP packet we read. */
static __always_inline u32 transport_offset(struct __sk_buff *skb, u8 *proto)
{
	u8 first;

	if (bpf_skb_load_bytes(skb, 0, &first, 1))
		return 0;
	if ((first >> 4) == 4) {
		if (bpf_skb_load_bytes(skb, 9, proto, 1))
			return 0;
		return (first & 0xf) * 4;
	}
	if ((first >> 4) == 6) {
		/* No extension headers: DNS answers do not carry them. */
		if (bpf_skb_load_bytes(skb, 6, proto, 1))
			return 0;
		return 40;
	}
	return 0;
}

SEC("cgroup_skb/ingress")
int dns_ingress(struct __sk_buff *skb)
{
	u8 proto = 0;
	__be16 sport;
	u32 l4 = transport_offset(skb, &proto);

	if (!l4 || (proto != IPPROTO_UDP && proto != IPPROTO_TCP))
		return 1;
	if (bpf_skb_load_bytes(skb, l4, &sport, 2) || sport != bpf_htons(DNS_PORT))
		return 1;

	u32 payload = l4 + 8; /* UDP header */
	if (proto == IPPROTO_TCP) {
		u8 doff;

		if (bpf_skb_load_bytes(skb, l4 + 12, &doff, 1))
			return 1;
		payload = l4 + (doff >> 4) * 4;
	}
	if (payload >= skb->len)
		return 1; /* a bare ACK or an empty datagram */
	u32 length = skb->len - payload;
	struct dns_event *event = bpf_ringbuf_reserve(&dns_events, sizeof(*event), 0);

	if (!event) {
		u32 index = NW_HEALTH_DNS_EVENTS_LOST;
		u64 *lost = bpf_map_lookup_elem(&health, &index);

		if (lost)
			__sync_fetch_and_add(lost, 1);
		return 1;
	}
	event->truncated = length > NW_DNS_MAX;
	if (length > NW_DNS_MAX)
		length = NW_DNS_MAX;
	event->transport = proto;
	event->length = length;
	/* The size must be provably within 1..NW_DNS_MAX. 6.1's verifier does not learn
	 * "not 0" from a test against 0 ("R3 min value is outside of the allowed memory
	 * range"), but it follows arithmetic: (length - 1) checked below NW_DNS_MAX, plus 1. */
	u32 size = length - 1;

	/* Opaque to clang, which would otherwise fold the arithmetic back into `length`. */
	asm volatile("" : "+r"(size));
	if (size >= NW_DNS_MAX ||
	    bpf_skb_load_bytes(skb, payload, event->payload, size + 1)) {
		bpf_ringbuf_discard(event, 0);
		return 1;
	}
	bpf_ringbuf_submit(event, 0);
	return 1;
}
