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
/* Its parts, each in bpf/net/ (headers by concern; one compilation unit): */
#include "net/maps.bpf.h"       /* settings, flow tables, control, rings */
#include "net/sock_state.bpf.h" /* per-socket state, in both builds */
#include "net/flow_key.bpf.h"   /* socket kinds, the caller, flow identity */
#include "net/slots.bpf.h"      /* the helper-free fast path */
#include "net/count.bpf.h"      /* the counting core: account() */
#include "net/tcp_read.bpf.h"   /* TCP reads claimed from sequence numbers */
#include "net/dns.bpf.h"        /* DNS answers from the reader's buffer */
#include "net/peers.bpf.h"      /* peers not in the socket */
/* The programs: */
#include "net/byte_hooks.bpf.h"   /* sets "tracepoint" and "fexit", owner generation */
#include "net/cgroup.bpf.h"       /* sockops, sock_create/release, sendmsg/recvmsg */
#include "net/iterators.bpf.h"    /* the drain */
#include "net/packet_hooks.bpf.h" /* raw and ping peers from packets */

char LICENSE[] SEC("license") = "GPL";

/* Layout anchors: keep the shared records in this object's BTF for the contract test. */
const volatile struct flow_key nw_btf_flow_key;
const volatile struct flow_value nw_btf_flow_value;
const volatile struct nw_control nw_btf_control;
const volatile struct flow_record nw_btf_flow_record;
const volatile struct dns_event nw_btf_dns_event;
const volatile struct datagram_notice nw_btf_datagram_notice;
const volatile struct sock_slot nw_btf_sock_slot;
const volatile struct carry_key nw_btf_carry_key;
const volatile struct carry_value nw_btf_carry_value;
