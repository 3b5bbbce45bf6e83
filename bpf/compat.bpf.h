/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel-version shims, each naming the kernel change that forced it. Nothing else in bpf/
 * may test for a kernel version.
 */
#ifndef NETWARDEN_COMPAT_BPF_H
#define NETWARDEN_COMPAT_BPF_H

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/*
 * sk_protocol and sk_type were bitfields until 5.6 (bf9765145b85 "sock: Make sk_protocol a
 * 16-bit value"). The CO-RE bitfield read handles both layouts. It is a direct load, valid in
 * tracing programs whose `sk` is a BTF pointer (the PROBED variant costs a helper call per
 * read, which the per-packet paths cannot afford).
 */
static __always_inline u16 nw_sk_protocol(struct sock *sk)
{
	return BPF_CORE_READ_BITFIELD(sk, sk_protocol);
}

static __always_inline u16 nw_sk_type(struct sock *sk)
{
	return BPF_CORE_READ_BITFIELD(sk, sk_type);
}

/*
 * bpf_get_socket_cookie() became callable from tracing programs in 5.12 (c5dbb89fc2ac "bpf:
 * Expose bpf_get_socket_cookie to tracing programs"). The loader clears this before load on
 * older kernels; the verifier then never sees the call, and the socket's address stands in for
 * its cookie (unique while the socket lives, which covers one drain window in practice).
 */
const volatile bool have_tracing_socket_cookie = true;

static __always_inline u64 nw_sock_id(struct sock *sk)
{
	if (have_tracing_socket_cookie)
		return bpf_get_socket_cookie(sk);
	return (u64)(unsigned long)sk;
}

#endif /* NETWARDEN_COMPAT_BPF_H */
