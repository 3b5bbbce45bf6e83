/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The byte hooks: one program run per send and receive call. Two sets, chosen at load time;
 * the owner-generation programs that keep the slots honest; compat mode's TCP read hook.
 */
#ifndef NETWARDEN_NET_BYTE_HOOKS_BPF_H
#define NETWARDEN_NET_BYTE_HOOKS_BPF_H

#include <bpf/bpf_tracing.h>
#include "net/tcp_read.bpf.h"
#include "net/dns.bpf.h"
#include "net/peers.bpf.h"

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
 * A send off the fast path. `addressed`: the call may have given a destination (its msghdr's
 * msg_name; the tracepoint does not say, so there it is true). Compat mode looks no state up
 * for a socket with a fixed peer; for a connected UDP socket's sendto() elsewhere it has to,
 * or such a datagram would count under the connected peer. Full mode looks the state up
 * anyway (fast_state()).
 */
static __always_inline void send_slow_path(struct nw_control *ctl, struct sock *sk, u16 family,
					   int ret, bool addressed, struct sock_state *state,
					   const struct caller *caller)
{
	if (state && state->fast_tgid && state->fast_tcp &&
	    (state->fast_tgid != caller->tgid || state->fast_mm != caller->mm))
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
	account(ctl, sk, family, ret, true, state, caller);
}

/* A receive off the fast path: TCP by sequence numbers, the rest by `ret`; DNS captured. */
static __always_inline void recv_slow_path(struct nw_control *ctl, struct sock *sk, u16 family,
					   int ret, struct sock_state *state,
					   const struct caller *caller)
{
	bool tcp = family != AF_PACKET && is_tcp(sk);

	if (tcp && ctl->tcp_read_hooked)
		return; /* counted by tp_tcp_rcv_space_adjust (compat mode, no fast path) */
	if (tcp) {
		account_tcp_read(ctl, sk, family, ret, false, state, caller);
		if (NW_SYSCALL_ARGS && sk->__sk_common.skc_dport == bpf_htons(DNS_PORT))
			capture_dns(sk, ret, IPPROTO_TCP);
		return;
	}
	bool dns = NW_SYSCALL_ARGS && family != AF_PACKET &&
		   nw_sk_protocol(sk) == IPPROTO_UDP && receives_dns(sk, state);

	account(ctl, sk, family, ret, false, state, caller);
	if (dns)
		capture_dns(sk, ret, IPPROTO_UDP);
}

/*
 * One body for both directions (`is_send` is a constant in each program): the slot, then
 * the socket's own state, then the slow path of the direction. `flags`: the receive's
 * (MSG_PEEK is not counted). `addressed`: see send_slow_path(). A TCP receive on either fast
 * path counts nothing here: the drain iterator claims what was read, from the sequence
 * numbers.
 */
static __always_inline void on_bytes(struct sock *sk, int ret, int flags, bool is_send,
				     bool addressed)
{
	if (!sk || ret <= 0 || (!is_send && (flags & MSG_PEEK)))
		return;
	u16 family = sk->__sk_common.skc_family;

	if (!tracked_family(family))
		return;
	struct nw_control *ctl = get_control();

	if (!ctl)
		return;
	struct sock_slot *slot = slot_fast_path(sk);

	if (slot) {
		if (is_send || !slot->tcp)
			add_to_counters(slot->sent, slot->recv, ctl, ret, is_send);
		return;
	}
	struct caller caller;
	struct sock_state *state = fast_state(sk, family);

	current_caller(&caller);
	if (state && fast_path_holds(sk, state, &caller, is_send)) {
		bool tcp = state->fast_tcp;

		if (is_send || !tcp)
			add_to_socket(state, ctl, ret, is_send);
		if (state->slot_cookie) /* another thread of the owner, or a new generation */
			arm_slot(sk, state);
		if (!is_send && NW_SYSCALL_ARGS &&
		    (sk->__sk_common.skc_dport == bpf_htons(DNS_PORT) || state->dns_client))
			capture_dns(sk, ret, tcp ? IPPROTO_TCP : IPPROTO_UDP);
		return;
	}
	if (is_send)
		send_slow_path(ctl, sk, family, ret, addressed, state, &caller);
	else
		recv_slow_path(ctl, sk, family, ret, state, &caller);
}

/* ---- byte hooks, set "tracepoint" (kernel >= 6.3) ---- */

/* sock_send_length and sock_recv_length have the same arguments. The tracepoint does not say
 * whether a send was given a destination: `addressed` is true. */
#define TP_SOCK_LENGTH(direction, is_send)							\
SEC("tp_btf/sock_" #direction "_length")						\
int BPF_PROG(tp_sock_##direction##_length, struct sock *sk, int ret, int flags)		\
{											\
	on_bytes(sk, ret, flags, is_send, true);					\
	return 0;									\
}

TP_SOCK_LENGTH(send, true)
TP_SOCK_LENGTH(recv, false)

/*
 * A new task may have a dead task's kernel stack, and an exec gives a task another address
 * space: either way a slot's (thread, generation) may no longer be its owner. Renewing the
 * generation sends every slot's next call to the sk_storage path, which re-arms it. Before
 * the new task runs (copy_process()) and before the exec'd program runs.
 */
#define RENEW_OWNER_GENERATION_ON(tracepoint, prog)					\
SEC("tp_btf/" #tracepoint)								\
int BPF_PROG(prog)									\
{											\
	__sync_fetch_and_add(&owner_generation, 1);					\
	return 0;									\
}

RENEW_OWNER_GENERATION_ON(task_newtask, tp_owner_task_new)
RENEW_OWNER_GENERATION_ON(sched_process_exec, tp_owner_exec)

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
	on_bytes(sock->sk, ret, 0, true, msg->msg_name != NULL);			\
	return 0;								\
}

#define FEXIT_RECVMSG(fn)								\
SEC("fexit/" #fn)								\
int BPF_PROG(fexit_##fn, struct socket *sock, struct msghdr *msg, size_t size, int flags,	\
	     int ret)								\
{										\
	on_bytes(sock->sk, ret, flags, false, false);					\
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
	on_bytes(sock->sk, ret, 0, true, false);
	return 0;
}

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

#endif /* NETWARDEN_NET_BYTE_HOOKS_BPF_H */
