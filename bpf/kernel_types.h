/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel structures netwarden reads, declared by hand for CO-RE.
 *
 * Only the fields we touch are listed. preserve_access_index makes clang emit a relocation for
 * every access, and libbpf resolves it against the running kernel's BTF at load time, so field
 * order and the omitted fields do not matter. This replaces the 134k-line generated vmlinux.h:
 * the object shrinks ~5x and no kernel headers are needed anywhere (the failure that made
 * BCC-based predecessors uninstallable).
 *
 * UAPI types (bpf_sock_addr, map and program type constants) come from <linux/bpf.h>; they are
 * a stable ABI and must not be redeclared here.
 */
#ifndef NETWARDEN_KERNEL_TYPES_H
#define NETWARDEN_KERNEL_TYPES_H

#include <linux/types.h>
#include <linux/bpf.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s64 s64;
typedef int pid_t;
typedef unsigned int dev_t;
typedef _Bool bool;
typedef unsigned long size_t;

#define true 1
#define false 0

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct in6_addr {
	union {
		__u8 u6_addr8[16];
		__be32 u6_addr32[4];
	} in6_u;
};

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

typedef struct {
	s64 counter;
} atomic64_t;

struct sock_common {
	union {
		struct {
			__be32 skc_daddr;
			__be32 skc_rcv_saddr;
		};
	};
	union {
		struct {
			__be16 skc_dport;
			__u16 skc_num;
		};
	};
	unsigned short skc_family;
	volatile unsigned char skc_state;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
	atomic64_t skc_cookie; /* 0 until a cookie is asked for (bpf_get_socket_cookie()) */
};

struct socket;

struct sock {
	struct sock_common __sk_common;
	/* A bitfield before 5.6; read only through BPF_CORE_READ_BITFIELD_PROBED. */
	u16 sk_protocol;
	u16 sk_type;
	struct socket *sk_socket;
};

struct tcp_sock {
	u64 bytes_received;
	u32 copied_seq;
	u32 rcv_nxt;
};

struct sk_buff {
	struct sock *sk;
	unsigned char *head;
	__be16 protocol;
	__u16 transport_header;
	__u16 network_header;
};

struct super_block {
	dev_t s_dev;
};

struct inode {
	unsigned long i_ino;
	struct super_block *i_sb;
};

struct file {
	struct inode *f_inode;
};

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
	struct file *exe_file;
};

struct task_struct {
	unsigned int flags;
	pid_t pid;
	pid_t tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	u64 start_time;
	char comm[16];
};

struct linux_binprm {
	struct file *file;
	const char *filename;
};

struct socket {
	struct sock *sk;
};

/* A socket and its inode are allocated together (SOCK_INODE()). */
struct socket_alloc {
	struct socket socket;
	struct inode vfs_inode;
};

/* A sendmsg call's message: msg_name is the destination it was given, or NULL. */
struct msghdr {
	void *msg_name;
};

struct page;
struct seq_file;
struct bpf_map;

struct bpf_iter_meta {
	struct seq_file *seq;
	u64 session_id;
	u64 seq_num;
};

struct udp_sock;

/* Contexts of the socket iterators (iter/tcp, iter/udp; both since 5.9). */
struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
	__u32 uid;
};

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
	__u32 uid;
	int bucket;
};

/* Why the kernel freed a packet (5.17+; values move between kernels: read with CO-RE). */
enum skb_drop_reason {
	SKB_DROP_REASON_NO_SOCKET = 3,
	SKB_DROP_REASON_TCP_FLAGS = 30,
};

#pragma clang attribute pop

#endif /* NETWARDEN_KERNEL_TYPES_H */
