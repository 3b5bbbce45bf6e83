/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every BPF object here shares: the uapi numbers they compare against, the per-CPU
 * `health` counters (indices in events.h) and the one way a dropped ring-buffer record is
 * counted. Each object is still its own compilation unit and gets its own copy of the map;
 * the sensor reads each object's `health` on its own.
 */
#ifndef NETWARDEN_COMMON_BPF_H
#define NETWARDEN_COMMON_BPF_H

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include "events.h"

/* uapi numbers (<linux/socket.h>, <linux/in.h>, <linux/if_ether.h>): no kernel headers here. */
#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ICMPV6 58
#define IPPROTO_UDPLITE 136
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define DNS_PORT 53

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NW_HEALTH_COUNTERS);
	__type(key, u32);
	__type(value, u64);
} health SEC(".maps");

static __always_inline void health_add(u32 index, u64 amount)
{
	u64 *counter = bpf_map_lookup_elem(&health, &index);

	if (counter)
		__sync_fetch_and_add(counter, amount);
}

/* A record on `ring`, or NULL with the loss counted under health index `lost`. */
static __always_inline void *reserve_or_count(void *ring, u64 size, u32 lost)
{
	void *record = bpf_ringbuf_reserve(ring, size, 0);

	if (!record)
		health_add(lost, 1);
	return record;
}

/*
 * Start a DNS record of `bytes` of payload (at least 1 for a valid copy): set its header and
 * return the copy size minus one. The caller copies only when that is below NW_DNS_MAX, and
 * then copies it plus one. The size must be provably within 1..NW_DNS_MAX: 6.1's verifier
 * does not learn "not 0" from a test against 0 ("R3 min value is outside of the allowed
 * memory range"), but it follows the arithmetic of that check.
 */
static __always_inline u32 dns_event_start(struct dns_event *event, u32 bytes, u8 transport,
					   u64 sock_cookie)
{
	u32 length = bytes > NW_DNS_MAX ? NW_DNS_MAX : bytes;
	u32 size = length - 1;

	event->sock_cookie = sock_cookie;
	event->transport = transport;
	event->truncated = bytes > NW_DNS_MAX;
	event->length = length;
	/* Opaque to clang, which would otherwise fold the arithmetic back into `length`. */
	asm volatile("" : "+r"(size));
	return size;
}

#endif /* NETWARDEN_COMMON_BPF_H */
