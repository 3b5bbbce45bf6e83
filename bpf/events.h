/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every record that crosses a map or ring buffer between the kernel and the sensor.
 *
 * Fields are ordered largest first so no struct needs `packed` and the layout is the same for
 * clang's BPF target and for ctypes. The one Python mirror is netwarden/sensor/bpf_records.py;
 * tests/contract/test_btf_layout.py compares the two through the BTF of the built objects.
 */
#ifndef NETWARDEN_EVENTS_H
#define NETWARDEN_EVENTS_H

#define NW_ADDR_LEN 16
#define NW_COMM_LEN 16
#define NW_PATH_LEN 256
#define NW_ARGS_LEN 256

/*
 * Key of the per-flow byte counters. One entry per socket (by its never-reused cookie), per
 * process using it (and per program that process ran: exec_id), per remote peer. The peer is
 * in the key only for unconnected sockets (one UDP or raw socket talks to many peers); a
 * connected socket's peer is fixed, so its key leaves the peer zero and the value records it
 * once.
 */
struct flow_key {
	__u64 sock_cookie;
	__u32 tgid;
	__u16 remote_port;   /* host byte order; 0 where the protocol has no ports */
	__u16 exec_id;       /* bits of the process's address space, which exec replaces: a
	                      * socket kept across exec starts a new entry, whose identity
	                      * names the new executable */
	__u8 remote_addr[NW_ADDR_LEN]; /* IPv4 in the first 4 bytes, network byte order */
};

/* flow_value.flags */
#define NW_FLOW_HAS_IDENTITY 1 /* this CPU's slot holds the identity fields below */

/*
 * Counters of one flow key in one drain window, plus the identity of the socket and process,
 * filled once when the key is inserted. The map is per-CPU: counters are summed over CPUs by
 * the sensor, identity is taken from the slot that has NW_FLOW_HAS_IDENTITY set.
 */
struct flow_value {
	__u64 sent_bytes;
	__u64 recv_bytes;
	__u64 exe_ino;
	__u64 cgroup_id;
	__u32 exe_dev;       /* kernel dev_t: major << 20 | minor */
	__u32 uid;
	__u32 netns;         /* network namespace inode */
	__u16 family;        /* AF_* */
	__u16 protocol;      /* IPPROTO_* for IP sockets, ethertype (network order) for packet */
	__u16 local_port;
	__u16 remote_port;
	__u8 sock_type;      /* SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, ... */
	__u8 flags;
	__u8 local_addr[NW_ADDR_LEN];
	__u8 remote_addr[NW_ADDR_LEN];
};

/* One flow's counters as the socket-drain iterator writes them (same meaning as the maps). */
struct flow_record {
	struct flow_key key;
	struct flow_value value;
};

/* The single entry of the `control` array: what the sensor tells the programs at run time. */
struct nw_control {
	__u32 active_table;    /* which epoch the programs write: flows_a/b and socket counters */
	__u32 tcp_read_hooked; /* tcp_rcv_space_adjust is attached (compat mode): TCP reads are
	                        * counted there, not in the receive hook */
	__u32 socket_counters; /* sock_release and the drain iterators are attached: TCP and UDP
	                        * sockets with a fixed peer count in their own storage instead of
	                        * a hash entry */
	__u32 drain_netns;     /* inode of the network namespace the drain iterators walk (the
	                        * sensor's): sockets elsewhere use the hash, which is read whole */
	__u32 datagram_hook;   /* skb_copy_datagram_iovec is attached (sources of datagrams read
	                        * by raw and ping sockets); while it is not, a new raw or ping
	                        * socket sends a datagram_notice */
	__u32 socket_slots;    /* socket_counters, and the programs that renew owner_generation
	                        * are attached: sockets may count through sock_slots */
	__u64 carry_batch;     /* the write window the drain in progress belongs to: what the
	                        * drain takes is kept in `carry` under it until the store has
	                        * committed that window (0: no carry) */
	__u64 move_seq;        /* the drain in progress, numbered: the flow table it empties
	                        * into `carry` marks each entry it added to (carry_value) */
};

/*
 * `carry`: what the drains took out of the flow tables and the sockets and the store has not
 * committed yet, per write window (`batch`). Survives the sensor's process while pinned, so
 * a restart after kill -9 writes it (or finds it committed and discards it).
 */
struct carry_key {
	struct flow_key key;
	__u64 batch;
};

struct carry_value {
	struct flow_value value; /* counters summed, identity from the first drain */
	__u64 moved_seq;         /* the last drain that added a flow-table entry to it */
};

/*
 * An entry of the `sock_slots` array: the byte hooks' helper-free fast path for one socket
 * (net.bpf.c has the whole story). Kernel-private but for tests, which read it.
 */
#define NW_SOCK_SLOTS 16384 /* entries; a power of two (the index is cookie % NW_SOCK_SLOTS) */

struct sock_slot {
	__u64 cookie;          /* the socket holding the slot; 0: free */
	__u64 thread;          /* kernel stack block of the thread that armed it; 0: disarmed */
	__u32 generation;      /* owner_generation when it was armed */
	__u16 dport;           /* UDP: the peer port it was armed with (network order) */
	__u8 tcp;              /* check the TCP state (else the UDP port) */
	__u8 unused;
	__u64 sent[2];         /* per epoch, like the socket state's counters */
	__u64 recv[2];
	__u64 pad;             /* one slot per 64-byte cache line */
};

/* On the `datagram_notices` ring buffer: a raw or ping socket was created while the hook
 * that reads the sources of its datagrams was detached (the sensor attaches it). */
struct datagram_notice {
	__u32 tgid;
	__u16 family;
	__u8 sock_type;
	__u8 protocol;
};

/* proc_event.kind */
#define NW_PROC_EXEC 1
#define NW_PROC_FORK 2
#define NW_PROC_EXIT 3

/* Process lifecycle, on the `proc_events` ring buffer. */
struct proc_event {
	__u64 timestamp_ns;  /* CLOCK_MONOTONIC */
	__u64 exe_ino;
	__u64 start_time_ns; /* task start (CLOCK_MONOTONIC); tells a reused pid apart */
	__u32 kind;
	__u32 pid;           /* tgid of the process */
	__u32 ppid;          /* tgid of the real parent */
	__u32 exe_dev;
	__u32 uid;
	__u32 args_len;      /* bytes of args[] used (NUL-separated argv) */
	char comm[NW_COMM_LEN];
	char filename[NW_PATH_LEN]; /* exec: the path given to execve (a script for #!) */
	char args[NW_ARGS_LEN];
};

#define NW_DNS_MAX 1536 /* DNS payload bytes copied; longer answers are parsed as far as kept */

/*
 * A DNS response on the `dns_events` ring buffer. From the receive hook (net.bpf.o): what one
 * receive call copied to the reader, a whole datagram for UDP, a piece of the byte stream of
 * socket `sock_cookie` for TCP. From the packet fallback (dns.bpf.o): a UDP payload, or a TCP
 * segment's payload (sock_cookie 0).
 */
struct dns_event {
	__u64 sock_cookie;   /* TCP from the receive hook: the stream it belongs to; else 0 */
	__u16 length;        /* bytes of payload[] used */
	__u8 transport;      /* IPPROTO_UDP or IPPROTO_TCP */
	__u8 truncated;      /* the packet held more than NW_DNS_MAX bytes */
	__u8 payload[NW_DNS_MAX];
};

/* scan_probe.kind: what the probe of one local port looked like (bpf/scan.bpf.c) */
#define NW_PROBE_SYN 1          /* closed TCP port: a bare SYN with few options (raw scanner) */
#define NW_PROBE_CONNECT_SYN 2  /* closed TCP port: a SYN with a kernel connect()'s options */
#define NW_PROBE_FIN 3          /* FIN alone */
#define NW_PROBE_NULL 4         /* no flags at all */
#define NW_PROBE_XMAS 5         /* FIN+PSH+URG */
#define NW_PROBE_OTHER_TCP 6    /* any other segment a port with no socket dropped (ACK, ...) */
#define NW_PROBE_UDP 7          /* a datagram to a UDP port with no socket */
#define NW_PROBE_REQUEST 8      /* open TCP port: a SYN made a request (half-open so far) */
#define NW_PROBE_ESTABLISHED 9  /* open TCP port: the handshake completed (full connect) */

/*
 * One probe of a local port, on the `scan_probes` ring buffer: at most one per source, port and
 * kind within the configured window (the kernel's `scan_seen` table drops repeats).
 */
struct scan_probe {
	__u64 timestamp_ns;  /* CLOCK_MONOTONIC */
	__u16 family;        /* AF_INET or AF_INET6 */
	__u16 local_port;    /* host byte order */
	__u8 kind;           /* NW_PROBE_* */
	__u8 protocol;       /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 remote_addr[NW_ADDR_LEN]; /* IPv4 in the first 4 bytes, network byte order */
	__u8 local_addr[NW_ADDR_LEN];
};

/* Indices of the per-CPU `health` counter array. */
#define NW_HEALTH_FLOW_MAP_FULL 0      /* a new flow key could not be inserted */
#define NW_HEALTH_BYTES_UNATTRIBUTED 1 /* bytes of those flows, counted here instead */
#define NW_HEALTH_PROC_EVENTS_LOST 2   /* ring buffer full: a process event was dropped */
#define NW_HEALTH_SOCK_STORAGE_FAIL 3  /* no per-socket state: a peer or TCP read was missed */
#define NW_HEALTH_DNS_EVENTS_LOST 4    /* ring buffer full: a DNS answer was dropped */
#define NW_HEALTH_DNS_UNREAD 5         /* a DNS answer's receive call could not be read
                                        * (recvmmsg, io_uring): its names are missing */
#define NW_HEALTH_FLOW_INSERT_FAILED 6 /* a new flow key's insert failed for another reason
                                        * than a full map (its bytes: BYTES_UNATTRIBUTED) */
#define NW_HEALTH_SCAN_PROBES_LOST 7  /* ring buffer full: a scan probe was dropped */
#define NW_HEALTH_CARRY_FULL 8        /* a socket's drained counters could not be kept in
                                        * `carry`: written, but not safe from a crash */
#define NW_HEALTH_COUNTERS 9

#endif /* NETWARDEN_EVENTS_H */
