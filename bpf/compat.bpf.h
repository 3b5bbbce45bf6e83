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
 * Kernels before 5.12 lack BPF features the full programs use. bpf/Makefile builds this
 * source twice: net.bpf.o, and net_compat.bpf.o with NW_BUILD_PRE_5_12 defined. A read-only
 * global tested at load time would not do: 5.10's verifier checks every instruction's
 * encoding before it looks at which ones can run, and refuses an atomic exchange even on a
 * branch it would never take ("BPF_STX uses reserved fields"). The loader picks the object
 * by probing for that instruction, the newest of the features below. What the constant
 * switches, each shim naming its kernel change:
 *   - bpf_get_socket_cookie() in tracing programs: 5.12 (c5dbb89fc2ac): nw_sock_id() below;
 *   - bpf_get_current_task_btf(): 5.11 (3ca1032ab7ab): nw_current_exe() below;
 *   - bpf_sk_storage_get() in tracing programs: 5.11 (8e4597c627fb): net.bpf.c keeps the
 *     per-socket state in a hash map keyed by socket address instead (sock_state_get());
 *   - atomic exchange and compare-and-swap: 5.12 (5ffa25502b5a): no socket counters (their
 *     epochs are taken out by exchange), and TCP reads outside the socket lock are counted
 *     with a plain update (account_tcp_read()).
 */
#ifdef NW_BUILD_PRE_5_12
#define NW_PRE_5_12 1
#else
#define NW_PRE_5_12 0
#endif

/*
 * A socket's id in flow keys: its cookie (never reused). Before 5.12, its inode number, as
 * unique among live and recent sockets (get_next_ino()): the socket's address will not do,
 * the next socket often gets the same one at once (150 short connections in one drain window
 * came out as one flow). A socket without a file any more (closed, still draining) falls
 * back to its address, which no inode number can equal.
 */
static __always_inline u64 nw_sock_id(struct sock *sk)
{
	if (!NW_PRE_5_12)
		return bpf_get_socket_cookie(sk);
	struct socket_alloc *file_side = (struct socket_alloc *)sk->sk_socket;
	u64 ino = 0;

	if (file_side)
		ino = BPF_CORE_READ(file_side, vfs_inode.i_ino);
	return ino ? ino : (u64)(unsigned long)sk;
}

/* Inode and device of the current process's executable (zero for kernel threads). */
static __always_inline void nw_current_exe(u64 *ino, u32 *dev)
{
	if (NW_PRE_5_12) {
		/* Probed reads: bpf_get_current_task() gives a number, not a BTF pointer. */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		*ino = BPF_CORE_READ(task, mm, exe_file, f_inode, i_ino);
		*dev = BPF_CORE_READ(task, mm, exe_file, f_inode, i_sb, s_dev);
		return;
	}
	struct task_struct *task = bpf_get_current_task_btf();
	struct inode *exe = task->mm->exe_file->f_inode; /* NULL-safe: faulting loads read 0 */

	*ino = exe->i_ino;
	*dev = exe->i_sb->s_dev;
}

#endif /* NETWARDEN_COMPAT_BPF_H */
