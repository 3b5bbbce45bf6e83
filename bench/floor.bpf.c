// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of bench/sensor_overhead.py: two programs that do nothing, on the two
 * tracepoints the sensor's byte hooks use. What they cost is what any per-call hook costs on
 * this machine (the tracepoint, the program dispatch, the cache lines they touch), and no
 * sensor built on these hooks can cost less.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sock_send_length")
int floor_send(void *ctx)
{
	return 0;
}

SEC("tp_btf/sock_recv_length")
int floor_recv(void *ctx)
{
	return 0;
}
