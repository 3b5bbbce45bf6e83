/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The arguments of the system call a byte hook runs inside, read from the task's saved user
 * registers (bpf_task_pt_regs(), 5.15: 20fb7de8f0c1 "bpf: Add bpf_task_pt_regs() helper").
 *
 * Why: the send and receive hooks run for every call anyway, and the user's own buffer and
 * destination address are right there. Reading them only for the few sockets that need it
 * (DNS answers, the destination of an unconnected raw or ping send) replaces hooks that ran
 * for every packet of every socket (net_dev_queue, a cgroup_skb program), and a program run
 * costs ~85 ns on this kind of VM whether or not it does anything.
 *
 * Only the calls below are recognised; anything else (recvmmsg/sendmmsg, io_uring, a 32-bit
 * task, a kernel thread) reads as "unknown" and the caller falls back. The loader enables
 * this only on x86-64 and arm64 (the two tables below) and only where the kernel has the
 * helper; otherwise the per-packet hooks are used.
 */
#ifndef NETWARDEN_SYSCALL_ARGS_BPF_H
#define NETWARDEN_SYSCALL_ARGS_BPF_H

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>

#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD 0x00200000

#if defined(__TARGET_ARCH_x86)
/* arch/x86/entry/syscalls/syscall_64.tbl */
#define NW_NR_READ 0
#define NW_NR_READV 19
#define NW_NR_SENDTO 44
#define NW_NR_RECVFROM 45
#define NW_NR_SENDMSG 46
#define NW_NR_RECVMSG 47

struct pt_regs {
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
	unsigned long orig_ax;
} __attribute__((preserve_access_index));

static __always_inline long nw_syscall_nr(struct pt_regs *regs)
{
	return (long)regs->orig_ax;
}

/* Argument `n` (1-based) of the system call; the fourth is in r10, not rcx. */
static __always_inline u64 nw_syscall_arg(struct pt_regs *regs, int n)
{
	switch (n) {
	case 1: return regs->di;
	case 2: return regs->si;
	case 3: return regs->dx;
	case 4: return regs->r10;
	case 5: return regs->r8;
	default: return regs->r9;
	}
}
#elif defined(__TARGET_ARCH_arm64)
/* include/uapi/asm-generic/unistd.h */
#define NW_NR_READ 63
#define NW_NR_READV 65
#define NW_NR_SENDTO 206
#define NW_NR_RECVFROM 207
#define NW_NR_SENDMSG 211
#define NW_NR_RECVMSG 212

/* The general registers are user_pt_regs at the start of pt_regs (as libbpf's own
 * PT_REGS macros read them); x0 is overwritten by the return value, so the first argument
 * is orig_x0. */
struct user_pt_regs {
	u64 regs[31];
} __attribute__((preserve_access_index));

struct pt_regs {
	u64 orig_x0;
	__s32 syscallno;
} __attribute__((preserve_access_index));

static __always_inline long nw_syscall_nr(struct pt_regs *regs)
{
	return regs->syscallno;
}

static __always_inline u64 nw_syscall_arg(struct pt_regs *regs, int n)
{
	if (n == 1)
		return regs->orig_x0;
	return ((struct user_pt_regs *)regs)->regs[(n - 1) & 7];
}
#else
#error "syscall_args.bpf.h: add this architecture's system call numbers and registers"
#endif

/* struct user_msghdr and struct iovec as a 64-bit process passes them (UAPI). */
struct nw_user_msghdr {
	u64 name;
	u32 namelen;
	u32 _pad;
	u64 iov;
	u64 iovlen;
};

struct nw_iovec {
	u64 base;
	u64 len;
};

/* Keep `x` in a register of its own: a load from the registers that clang merged with one
 * from the stack copy of a msghdr would reach one instruction with two pointer types, which
 * the verifier refuses ("same insn cannot be used with different pointers"). */
#define NW_OPAQUE(x) asm volatile("" : "+r"(x))

/* The registers of the calling process's system call, or NULL from a kernel thread or an
 * io_uring worker (their saved registers are not a system call's). */
static __always_inline struct pt_regs *nw_syscall_regs(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (task->flags & (PF_KTHREAD | PF_IO_WORKER))
		return NULL;
	return (struct pt_regs *)bpf_task_pt_regs(task);
}

/*
 * Where a receive call is copying to: the user buffer of read/recv/recvfrom, or the first
 * iovec of recvmsg/readv. False when the call is not one of those.
 */
static __always_inline bool nw_receive_buffer(u64 *buf, u64 *capacity)
{
	struct pt_regs *regs = nw_syscall_regs();
	struct nw_user_msghdr msg;
	struct nw_iovec iov;
	u64 iov_ptr;

	if (!regs)
		return false;
	long nr = nw_syscall_nr(regs);
	u64 arg2 = nw_syscall_arg(regs, 2);
	u64 arg3 = nw_syscall_arg(regs, 3);

	NW_OPAQUE(arg2);
	NW_OPAQUE(arg3);
	if (nr == NW_NR_READ || nr == NW_NR_RECVFROM) {
		*buf = arg2;
		*capacity = arg3;
		return *buf != 0;
	}
	if (nr == NW_NR_RECVMSG) {
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)arg2) || !msg.iovlen)
			return false;
		iov_ptr = msg.iov;
	} else if (nr == NW_NR_READV) {
		iov_ptr = arg2;
	} else {
		return false;
	}
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)iov_ptr))
		return false;
	*buf = iov.base;
	*capacity = iov.len;
	return *buf != 0;
}

/* The destination address a sendto/sendmsg call passed (user memory), and its length. */
static __always_inline bool nw_send_destination(u64 *addr, u32 *addr_len)
{
	struct pt_regs *regs = nw_syscall_regs();
	struct nw_user_msghdr msg;

	if (!regs)
		return false;
	long nr = nw_syscall_nr(regs);
	u64 arg2 = nw_syscall_arg(regs, 2);
	u64 arg5 = nw_syscall_arg(regs, 5);
	u64 arg6 = nw_syscall_arg(regs, 6);

	NW_OPAQUE(arg2);
	NW_OPAQUE(arg5);
	NW_OPAQUE(arg6);
	if (nr == NW_NR_SENDTO) {
		*addr = arg5;
		*addr_len = (u32)arg6;
	} else if (nr == NW_NR_SENDMSG) {
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)arg2))
			return false;
		*addr = msg.name;
		*addr_len = msg.namelen;
	} else {
		return false;
	}
	return *addr != 0;
}

#endif /* NETWARDEN_SYSCALL_ARGS_BPF_H */
