// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * trafficgen: drives known traffic for netwarden's attribution tests and benchmarks.
 *
 * Every mode counts the bytes its own send and receive calls reported (the truth the sensor is
 * checked against) and ends by printing one JSON line: {"sent": N, "recv": M, "pid": P}.
 * Listening modes first print "ready" on stdout (after bind) so the caller can start the peer.
 *
 * usage: trafficgen MODE key=value ...
 *   tcp-listen   port= [host=] [send=] [conns=1] [splice=0] [io_uring=0]
 *   tcp-connect  host= port= [send=] [conns=1] [sendfile=0] [splice=0] [io_uring=0]
 *   udp-listen   port= [host=] [expect=] [quiet_ms=1000] [mmsg=0] [io_uring=0]
 *   udp-send     host= port= count= size= [connected=0] [mmsg=0] [threads=1] [interval_ms=0]
 *                [io_uring=0] [bind_port=0] [shared=0]
 *                (count is per thread; shared=1: the threads send on one socket, each
 *                pinned to its own CPU, so the kernel sees concurrent calls on it)
 *   icmp-echo    host= count= size=            (raw ICMP/ICMPv6 echo, replies counted)
 *   raw-listen   proto= [host=] [expect=] [quiet_ms=1000]
 *   raw-send     host= proto= count= size=
 *   packet-listen ifname= [ethertype=0x88b5] [expect=] [quiet_ms=1000]
 *   packet-send  ifname= count= size= [ethertype=0x88b5]
 *   flood-udp    host= port= seconds= size=    (sender and receiver threads; for benchmarks)
 *   flood-tcp    host= port= seconds= size=    (sender and receiver threads; for benchmarks)
 *   pingpong-udp seconds= size=                 (one thread: send, then receive it; steadier;
 *                                                seconds may be fractional)
 *   pingpong-udp-unconnected seconds= size=     (the same with sendto() on an unconnected
 *                                                socket and recv(): the sensor's worst case)
 *   pingpong-tcp seconds= size=                 (one thread: send, then read it all back)
 *   connect-loop seconds=                       (one thread: connect, accept, reset, close;
 *                                                "sends" counts connections)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic long long total_sent, total_recv;
/* What the TCP sender asked send() for, and how many calls returned less: the partial-send
 * test checks that the sensor counts what was sent, not what was asked for. */
static long long total_requested, partial_sends;
static int argc_g;
static char **argv_g;

static void die(const char *what)
{
	fprintf(stderr, "trafficgen: %s: %s\n", what, strerror(errno));
	exit(2);
}

static const char *opt(const char *key, const char *fallback)
{
	size_t len = strlen(key);

	for (int i = 2; i < argc_g; i++)
		if (!strncmp(argv_g[i], key, len) && argv_g[i][len] == '=')
			return argv_g[i] + len + 1;
	return fallback;
}

static long long opt_num(const char *key, long long fallback)
{
	const char *v = opt(key, NULL);

	return v ? strtoll(v, NULL, 0) : fallback;
}

static double opt_float(const char *key, double fallback)
{
	const char *v = opt(key, NULL);

	return v ? strtod(v, NULL) : fallback;
}

static void report(void)
{
	printf("{\"sent\": %lld, \"recv\": %lld, \"pid\": %d, \"requested\": %lld, "
	       "\"partial\": %lld}\n", (long long)total_sent, (long long)total_recv, getpid(),
	       total_requested, partial_sends);
	fflush(stdout);
}

/* "ready PORT": the listener is bound (to PORT, which the caller may have left to the
 * kernel with port=0; 0 for sockets without ports). */
static void ready(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int port = 0;

	if (fd >= 0 && getsockname(fd, (void *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	printf("ready %d\n", port);
	fflush(stdout);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU time this process used (all threads, user and system). */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* host (numeric v4 or v6) + port -> sockaddr; returns the family. */
static int make_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (void *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			die("bad IPv6 host");
		*len = sizeof(*a);
		return AF_INET6;
	}
	struct sockaddr_in *a = (void *)ss;

	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		die("bad IPv4 host");
	*len = sizeof(*a);
	return AF_INET;
}

static char *payload(size_t size)
{
	char *buf = malloc(size ? size : 1);

	if (!buf)
		die("malloc");
	for (size_t i = 0; i < size; i++)
		buf[i] = (char)('a' + i % 26);
	return buf;
}

/* ---------------- TCP ---------------- */

struct tcp_opts {
	long long send_bytes, chunk;
	int use_sendfile, use_splice, use_uring, sndbuf;
};

static long long send_plain(int fd, const char *buf, long long left, long long max_chunk)
{
	long long chunk = left > max_chunk ? max_chunk : left;
	ssize_t n = send(fd, buf, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);

	total_requested += chunk;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0)
		die("send");
	if (n < chunk)
		partial_sends++;
	return n;
}

static long long recv_plain(int fd, char *buf, int pipefd[2], int use_splice, int devnull)
{
	ssize_t n;

	if (use_splice) {
		n = splice(fd, NULL, pipefd[1], NULL, 65536, SPLICE_F_NONBLOCK);
		if (n > 0) {
			ssize_t left = n;

			while (left > 0) {
				ssize_t m = splice(pipefd[0], NULL, devnull, NULL, left, 0);

				if (m <= 0)
					die("splice to /dev/null");
				left -= m;
			}
		}
	} else {
		n = recv(fd, buf, 65536, MSG_DONTWAIT);
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	if (n < 0)
		die(use_splice ? "splice from socket" : "recv");
	return n;
}

/* Full duplex over one connected socket: send opts->send_bytes, then shut down writing;
 * receive until EOF. poll() keeps both directions moving. */
static void tcp_duplex(int fd, const struct tcp_opts *o)
{
	char *out = payload(o->chunk), *in = malloc(65536);
	long long left = o->send_bytes;
	int pipefd[2] = { -1, -1 }, devnull = open("/dev/null", O_WRONLY);
	int memfd = -1;
	off_t file_off = 0;
	int eof = 0, shut = 0;

	if (o->use_splice && pipe(pipefd))
		die("pipe");
	if (o->use_sendfile && left > 0) {
		memfd = memfd_create("trafficgen", 0);
		for (long long w = 0; w < left;) {
			long long chunk = left - w > 65536 ? 65536 : left - w;
			ssize_t n = write(memfd, out, chunk);

			if (n <= 0)
				die("write memfd");
			w += n;
		}
	}
	while (!eof || !shut) {
		if (!shut && left == 0) {
			shutdown(fd, SHUT_WR);
			shut = 1;
		}
		struct pollfd p = { .fd = fd, .events = (eof ? 0 : POLLIN) | (shut ? 0 : POLLOUT) };

		if (poll(&p, 1, 10000) <= 0)
			die("poll timeout");
		if (!shut && (p.revents & POLLOUT)) {
			long long n;

			if (memfd >= 0) {
				ssize_t s = sendfile(fd, memfd, &file_off, left > 65536 ? 65536 : left);

				if (s < 0 && errno != EAGAIN)
					die("sendfile");
				n = s < 0 ? 0 : s;
			} else {
				n = send_plain(fd, out, left, o->chunk);
			}
			left -= n;
			total_sent += n;
		}
		if (!eof && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
			long long n = recv_plain(fd, in, pipefd, o->use_splice, devnull);

			if (n == 0)
				eof = 1;
			else if (n > 0)
				total_recv += n;
		}
	}
	free(out);
	free(in);
}

/* io_uring: send everything, shut down writing, then receive until EOF. */
static void tcp_uring(int fd, const struct tcp_opts *o)
{
	struct io_uring ring;
	char *out = payload(65536), *in = malloc(65536);
	long long left = o->send_bytes;

	if (io_uring_queue_init(8, &ring, 0))
		die("io_uring_queue_init");
	while (1) {
		int sending = left > 0;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		struct io_uring_cqe *cqe;

		if (sending)
			io_uring_prep_send(sqe, fd, out, left > 65536 ? 65536 : left, 0);
		else
			io_uring_prep_recv(sqe, fd, in, 65536, 0);
		io_uring_submit(&ring);
		if (io_uring_wait_cqe(&ring, &cqe))
			die("io_uring_wait_cqe");
		int res = cqe->res;

		io_uring_cqe_seen(&ring, cqe);
		if (res < 0) {
			errno = -res;
			die(sending ? "io_uring send" : "io_uring recv");
		}
		if (sending) {
			left -= res;
			total_sent += res;
			if (left == 0)
				shutdown(fd, SHUT_WR);
		} else if (res == 0) {
			break;
		} else {
			total_recv += res;
		}
	}
	io_uring_queue_exit(&ring);
	free(out);
	free(in);
}

static void tcp_session(int fd, const struct tcp_opts *o)
{
	if (o->sndbuf && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof(o->sndbuf)))
		die("setsockopt SO_SNDBUF");
	if (o->use_uring)
		tcp_uring(fd, o);
	else
		tcp_duplex(fd, o);
	close(fd);
}

static struct tcp_opts tcp_options(void)
{
	struct tcp_opts o = {
		.send_bytes = opt_num("send", 0),
		.use_sendfile = (int)opt_num("sendfile", 0),
		.use_splice = (int)opt_num("splice", 0),
		.use_uring = (int)opt_num("io_uring", 0),
		/* chunk > the send buffer makes non-blocking sends return short counts */
		.chunk = opt_num("chunk", 65536),
		.sndbuf = (int)opt_num("sndbuf", 0),
	};
	return o;
}

static int listen_socket(int type, int proto)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *host = opt("host", "0.0.0.0");
	int family = make_addr(host, (int)opt_num("port", 0), &ss, &len);
	int fd = socket(family, type, proto), one = 1;

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (void *)&ss, len))
		die("bind");
	return fd;
}

static int mode_tcp_listen(void)
{
	struct tcp_opts o = tcp_options();
	int fd = listen_socket(SOCK_STREAM, 0);
	long long conns = opt_num("conns", 1);

	if (listen(fd, 128))
		die("listen");
	ready(fd);
	for (long long i = 0; i < conns; i++) {
		int c = accept(fd, NULL, NULL);

		if (c < 0)
			die("accept");
		tcp_session(c, &o);
	}
	report();
	return 0;
}

static int mode_tcp_connect(void)
{
	struct tcp_opts o = tcp_options();
	struct sockaddr_storage ss;
	socklen_t len;
	int family = make_addr(opt("host", "127.0.0.1"), (int)opt_num("port", 0), &ss, &len);
	long long conns = opt_num("conns", 1);

	for (long long i = 0; i < conns; i++) {
		int fd = socket(family, SOCK_STREAM, 0);

		if (fd < 0)
			die("socket");
		if (connect(fd, (void *)&ss, len))
			die("connect");
		tcp_session(fd, &o);
	}
	report();
	return 0;
}

/* ---------------- UDP ---------------- */

/* Receive datagrams until `expect` arrived or nothing came for quiet_ms after the first. */
static int mode_udp_listen(void)
{
	int fd = listen_socket(SOCK_DGRAM, 0);
	long long expect = opt_num("expect", -1), got = 0;
	int quiet = (int)opt_num("quiet_ms", 1000), mmsg = (int)opt_num("mmsg", 0);
	int uring = (int)opt_num("io_uring", 0);
	int rcvbuf = 8 << 20;
	char *buf = malloc(65536 * 8);
	struct io_uring ring;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (uring && io_uring_queue_init(8, &ring, 0))
		die("io_uring_queue_init");
	ready(fd);
	while (expect < 0 || got < expect) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, got ? quiet : 30000);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (mmsg) {
			struct mmsghdr msgs[8];
			struct iovec iov[8];
			struct sockaddr_storage from[8];

			memset(msgs, 0, sizeof(msgs));
			for (int i = 0; i < 8; i++) {
				iov[i].iov_base = buf + i * 65536;
				iov[i].iov_len = 65536;
				msgs[i].msg_hdr.msg_iov = &iov[i];
				msgs[i].msg_hdr.msg_iovlen = 1;
				msgs[i].msg_hdr.msg_name = &from[i];
				msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
			}
			int n = recvmmsg(fd, msgs, 8, MSG_DONTWAIT, NULL);

			for (int i = 0; i < n; i++) {
				total_recv += msgs[i].msg_len;
				got++;
			}
		} else if (uring) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			struct io_uring_cqe *cqe;

			io_uring_prep_recv(sqe, fd, buf, 65536, 0);
			io_uring_submit(&ring);
			if (io_uring_wait_cqe(&ring, &cqe))
				die("io_uring_wait_cqe");
			if (cqe->res > 0) {
				total_recv += cqe->res;
				got++;
			}
			io_uring_cqe_seen(&ring, cqe);
		} else {
			struct sockaddr_storage from;
			socklen_t flen = sizeof(from);
			ssize_t n = recvfrom(fd, buf, 65536, MSG_DONTWAIT, (void *)&from, &flen);

			if (n >= 0) {
				total_recv += n;
				got++;
			}
		}
	}
	report();
	return 0;
}

struct udp_sender {
	struct sockaddr_storage to;
	socklen_t to_len;
	int family, connected, mmsg, uring;
	long long count;
	size_t size;
	long interval_ms;
	int bind_port;
	int shared_fd;  /* >= 0: every thread sends on this socket (and leaves it open) */
	_Atomic int next_cpu;
};

/* A socket for one sender: bound and connected as asked. */
static int udp_sender_socket(const struct udp_sender *s)
{
	int fd = socket(s->family, SOCK_DGRAM, 0);

	if (fd < 0)
		die("socket");
	if (s->bind_port) {
		struct sockaddr_storage local;
		socklen_t llen;

		make_addr(s->family == AF_INET6 ? "::" : "0.0.0.0", s->bind_port, &local, &llen);
		if (bind(fd, (void *)&local, llen))
			die("bind");
	}
	if (s->connected && connect(fd, (void *)&s->to, s->to_len))
		die("connect");
	return fd;
}

static void *udp_send_thread(void *arg)
{
	struct udp_sender *s = arg;
	int fd = s->shared_fd >= 0 ? s->shared_fd : udp_sender_socket(s);
	char *buf = payload(s->size);
	struct io_uring ring;

	if (s->shared_fd >= 0) {
		/* Spread the threads over the CPUs: calls on the socket then truly overlap. */
		cpu_set_t cpus;
		int n = (int)sysconf(_SC_NPROCESSORS_ONLN);

		CPU_ZERO(&cpus);
		CPU_SET(atomic_fetch_add(&s->next_cpu, 1) % (n > 0 ? n : 1), &cpus);
		pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	}
	if (s->uring && io_uring_queue_init(8, &ring, 0))
		die("io_uring_queue_init");
	for (long long i = 0; i < s->count;) {
		if (s->mmsg) {
			struct mmsghdr msgs[8];
			struct iovec iov = { .iov_base = buf, .iov_len = s->size };
			int batch = s->count - i > 8 ? 8 : (int)(s->count - i);

			memset(msgs, 0, sizeof(msgs));
			for (int j = 0; j < batch; j++) {
				msgs[j].msg_hdr.msg_iov = &iov;
				msgs[j].msg_hdr.msg_iovlen = 1;
				if (!s->connected) {
					msgs[j].msg_hdr.msg_name = &s->to;
					msgs[j].msg_hdr.msg_namelen = s->to_len;
				}
			}
			int n = sendmmsg(fd, msgs, batch, 0);

			if (n < 0)
				die("sendmmsg");
			for (int j = 0; j < n; j++)
				total_sent += msgs[j].msg_len;
			i += n;
		} else if (s->uring) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			struct io_uring_cqe *cqe;

			io_uring_prep_send(sqe, fd, buf, s->size, 0);
			io_uring_submit(&ring);
			if (io_uring_wait_cqe(&ring, &cqe))
				die("io_uring_wait_cqe");
			if (cqe->res < 0) {
				errno = -cqe->res;
				die("io_uring send");
			}
			total_sent += cqe->res;
			io_uring_cqe_seen(&ring, cqe);
			i++;
		} else {
			ssize_t n = s->connected
				? send(fd, buf, s->size, 0)
				: sendto(fd, buf, s->size, 0, (void *)&s->to, s->to_len);

			if (n < 0 && errno == ENOBUFS)
				continue; /* the queue is full: not sent, not counted; try again */
			if (n < 0)
				die("send");
			total_sent += n;
			i++;
		}
		if (s->interval_ms)
			usleep(s->interval_ms * 1000);
	}
	if (s->shared_fd < 0)
		close(fd);
	free(buf);
	return NULL;
}

static int mode_udp_send(void)
{
	struct udp_sender s = {
		.connected = (int)opt_num("connected", 0), .mmsg = (int)opt_num("mmsg", 0),
		.uring = (int)opt_num("io_uring", 0), .count = opt_num("count", 1),
		.size = (size_t)opt_num("size", 100), .interval_ms = opt_num("interval_ms", 0),
		.bind_port = (int)opt_num("bind_port", 0), .shared_fd = -1,
	};
	int threads = (int)opt_num("threads", 1);
	pthread_t tids[64];

	s.family = make_addr(opt("host", "127.0.0.1"), (int)opt_num("port", 0), &s.to, &s.to_len);
	if (threads < 1 || threads > 64)
		die("threads must be 1..64");
	if (opt_num("shared", 0))
		s.shared_fd = udp_sender_socket(&s);
	for (int t = 0; t < threads; t++)
		pthread_create(&tids[t], NULL, udp_send_thread, &s);
	for (int t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	if (s.shared_fd >= 0)
		close(s.shared_fd);
	report();
	return 0;
}

/* ---------------- ICMP, raw IP, AF_PACKET ---------------- */

static uint16_t checksum(const void *data, size_t len)
{
	const uint16_t *p = data;
	uint32_t sum = 0;

	for (; len > 1; len -= 2)
		sum += *p++;
	if (len)
		sum += *(const uint8_t *)p;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static int mode_icmp_echo(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int family = make_addr(opt("host", "127.0.0.1"), 0, &ss, &len);
	int v6 = family == AF_INET6;
	int fd = socket(family, SOCK_RAW, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	long long count = opt_num("count", 5), replies = 0;
	size_t size = (size_t)opt_num("size", 56) + 8;
	char *pkt = payload(size), in[65536];
	uint16_t id = (uint16_t)getpid();

	if (fd < 0)
		die("raw icmp socket");
	for (long long seq = 0; seq < count; seq++) {
		struct icmphdr *h = (void *)pkt;

		memset(h, 0, sizeof(*h));
		h->type = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
		h->un.echo.id = htons(id);
		h->un.echo.sequence = htons((uint16_t)seq);
		if (!v6) /* the kernel fills the ICMPv6 checksum */
			h->checksum = checksum(pkt, size);
		ssize_t n = sendto(fd, pkt, size, 0, (void *)&ss, len);

		if (n < 0)
			die("sendto");
		total_sent += n;
		/* Read until our reply (a raw socket also sees other ICMP traffic: count it all,
		 * since the sensor counts every byte this socket receives). */
		while (1) {
			struct pollfd p = { .fd = fd, .events = POLLIN };

			if (poll(&p, 1, 2000) <= 0)
				break;
			ssize_t r = recv(fd, in, sizeof(in), 0);

			if (r <= 0)
				break;
			total_recv += r;
			const uint8_t *icmp = (const uint8_t *)in + (v6 ? 0 : (in[0] & 0xf) * 4);
			uint8_t reply_type = v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY;

			if (icmp[0] == reply_type && ntohs(*(uint16_t *)(icmp + 4)) == id) {
				replies++;
				break;
			}
		}
	}
	fprintf(stderr, "icmp replies: %lld\n", replies);
	report();
	return 0;
}

static int quiet_receive(int fd, long long expect, int quiet)
{
	char buf[65536];
	long long got = 0;

	ready(-1);
	while (expect < 0 || got < expect) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, got ? quiet : 30000) <= 0)
			break;
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n > 0) {
			total_recv += n;
			got++;
		}
	}
	report();
	return 0;
}

static int mode_raw_listen(void)
{
	int proto = (int)opt_num("proto", 253);
	int family = strchr(opt("host", "0.0.0.0"), ':') ? AF_INET6 : AF_INET;
	int fd = socket(family, SOCK_RAW, proto);

	if (fd < 0)
		die("raw socket");
	return quiet_receive(fd, opt_num("expect", -1), (int)opt_num("quiet_ms", 1000));
}

static int mode_raw_send(void)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int family = make_addr(opt("host", "127.0.0.1"), 0, &ss, &len);
	int fd = socket(family, SOCK_RAW, (int)opt_num("proto", 253));
	long long count = opt_num("count", 10);
	size_t size = (size_t)opt_num("size", 100);
	char *buf = payload(size);

	if (fd < 0)
		die("raw socket");
	for (long long i = 0; i < count; i++) {
		ssize_t n = sendto(fd, buf, size, 0, (void *)&ss, len);

		if (n < 0)
			die("sendto");
		total_sent += n;
	}
	report();
	return 0;
}

static int packet_socket(struct sockaddr_ll *ll)
{
	int ethertype = (int)opt_num("ethertype", 0x88b5);
	int fd = socket(AF_PACKET, SOCK_RAW, htons(ethertype));

	if (fd < 0)
		die("packet socket");
	memset(ll, 0, sizeof(*ll));
	ll->sll_family = AF_PACKET;
	ll->sll_protocol = htons(ethertype);
	ll->sll_ifindex = (int)if_nametoindex(opt("ifname", "lo"));
	if (!ll->sll_ifindex)
		die("no such interface");
	if (bind(fd, (void *)ll, sizeof(*ll)))
		die("bind packet socket");
	return fd;
}

static int mode_packet_listen(void)
{
	struct sockaddr_ll ll;
	int fd = packet_socket(&ll);

	return quiet_receive(fd, opt_num("expect", -1), (int)opt_num("quiet_ms", 1000));
}

static int mode_packet_send(void)
{
	struct sockaddr_ll ll;
	int fd = packet_socket(&ll);
	long long count = opt_num("count", 10);
	size_t size = (size_t)opt_num("size", 100);
	char *frame = payload(size < 60 ? 60 : size);
	int ethertype = (int)opt_num("ethertype", 0x88b5);

	if (size < 60)
		size = 60;
	memset(frame, 0xff, 6); /* broadcast destination */
	memset(frame + 6, 0x02, 6); /* a locally administered source */
	frame[12] = (char)(ethertype >> 8);
	frame[13] = (char)(ethertype & 0xff);
	for (long long i = 0; i < count; i++) {
		ssize_t n = send(fd, frame, size, 0);

		if (n < 0)
			die("send frame");
		total_sent += n;
	}
	report();
	return 0;
}

/* ---------------- floods (benchmarks) ---------------- */

struct flood {
	struct sockaddr_storage to;
	socklen_t to_len;
	int family, tcp;
	size_t size;
	double until;
	int listen_fd;
};

static void *flood_receiver(void *arg)
{
	struct flood *f = arg;
	char *buf = malloc(1 << 16);
	int fd = f->listen_fd;

	if (f->tcp) {
		fd = accept(f->listen_fd, NULL, NULL);
		if (fd < 0)
			die("accept");
	}
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (1) {
		ssize_t n = recv(fd, buf, 1 << 16, 0);

		if (n > 0)
			total_recv += n;
		else if (n == 0 || now_s() > f->until + 1.0)
			break;
	}
	free(buf);
	return NULL;
}

static int mode_flood(int tcp)
{
	struct flood f = { .tcp = tcp, .size = (size_t)opt_num("size", 16) };
	pthread_t rx;
	long long sends = 0;

	f.family = make_addr(opt("host", "127.0.0.1"), (int)opt_num("port", 0), &f.to, &f.to_len);
	f.listen_fd = socket(f.family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	int big = 16 << 20;

	setsockopt(f.listen_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (bind(f.listen_fd, (void *)&f.to, f.to_len))
		die("bind");
	getsockname(f.listen_fd, (void *)&f.to, &f.to_len);
	if (tcp && listen(f.listen_fd, 1))
		die("listen");
	f.until = now_s() + (double)opt_num("seconds", 3);
	pthread_create(&rx, NULL, flood_receiver, &f);
	int fd = socket(f.family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);

	if (connect(fd, (void *)&f.to, f.to_len))
		die("connect");
	if (tcp) {
		int one = 1;

		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	char *buf = payload(f.size);
	double start = now_s(), cpu_start = cpu_s();

	while (1) {
		if ((sends & 1023) == 0 && now_s() > f.until)
			break;
		ssize_t n = send(fd, buf, f.size, 0);

		if (n > 0) {
			total_sent += n;
			sends++;
		} else if (n < 0 && errno != ENOBUFS && errno != EAGAIN) {
			die("send");
		}
	}
	double elapsed = now_s() - start;

	close(fd);
	pthread_join(rx, NULL);
	printf("{\"sent\": %lld, \"recv\": %lld, \"pid\": %d, \"sends\": %lld, \"seconds\": %.3f, "
	       "\"cpu_seconds\": %.4f}\n", (long long)total_sent, (long long)total_recv, getpid(),
	       sends, elapsed, cpu_s() - cpu_start);
	return 0;
}

/* One thread sends `size` bytes on one end of a loopback connection and reads them back
 * from the other: no second thread, no cross-CPU wakeups, so run-to-run noise is small. */
static int mode_pingpong(int tcp, int unconnected)
{
	size_t size = (size_t)opt_num("size", 16);
	double seconds = opt_float("seconds", 3);
	struct sockaddr_storage ss;
	socklen_t len;
	int family = make_addr("127.0.0.1", 0, &ss, &len);
	int lfd = socket(family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0), a, b;
	char *buf = payload(size), *in = malloc(size);
	long long rounds = 0;

	if (bind(lfd, (void *)&ss, len))
		die("bind");
	getsockname(lfd, (void *)&ss, &len);
	a = socket(family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
	if (tcp) {
		int one = 1;

		listen(lfd, 1);
		if (connect(a, (void *)&ss, len))
			die("connect");
		b = accept(lfd, NULL, NULL);
		setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else {
		if (!unconnected && connect(a, (void *)&ss, len))
			die("connect");
		b = lfd;
	}
	double start = now_s(), until = start + seconds, cpu_start = cpu_s();

	while (1) {
		if ((rounds & 255) == 0 && now_s() > until)
			break;
		ssize_t n = unconnected ? sendto(a, buf, size, 0, (void *)&ss, len)
					: send(a, buf, size, 0);

		if (n <= 0)
			die("send");
		total_sent += n;
		for (ssize_t got = 0; got < n;) {
			ssize_t r = recv(b, in, size - got, 0);

			if (r <= 0)
				die("recv");
			got += r;
			total_recv += r;
		}
		rounds++;
	}
	double elapsed = now_s() - start, cpu = cpu_s() - cpu_start;

	printf("{\"sent\": %lld, \"recv\": %lld, \"pid\": %d, \"sends\": %lld, \"seconds\": %.3f, "
	       "\"cpu_seconds\": %.4f}\n", (long long)total_sent, (long long)total_recv, getpid(),
	       rounds, elapsed, cpu);
	return 0;
}

/* One thread opens loopback TCP connections one after another: what runs once per
 * connection (sock_ops, state changes) shows here, not in the byte workloads. The client
 * closes with a reset (SO_LINGER 0), so no TIME_WAIT exhausts the ports. */
static int mode_connect_loop(void)
{
	double seconds = opt_float("seconds", 3);
	struct sockaddr_storage ss;
	socklen_t len;
	int family = make_addr("127.0.0.1", 0, &ss, &len);
	int lfd = socket(family, SOCK_STREAM, 0);
	struct linger reset = {.l_onoff = 1, .l_linger = 0};
	long long rounds = 0;

	if (bind(lfd, (void *)&ss, len) || listen(lfd, 128))
		die("listen");
	getsockname(lfd, (void *)&ss, &len);
	double start = now_s(), until = start + seconds, cpu_start = cpu_s();

	while (1) {
		if ((rounds & 15) == 0 && now_s() > until)
			break;
		int a = socket(family, SOCK_STREAM, 0), b;

		if (connect(a, (void *)&ss, len))
			die("connect");
		b = accept(lfd, NULL, NULL);
		if (b < 0)
			die("accept");
		setsockopt(a, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		close(a);
		close(b);
		rounds++;
	}
	double elapsed = now_s() - start, cpu = cpu_s() - cpu_start;

	printf("{\"sent\": 0, \"recv\": 0, \"pid\": %d, \"sends\": %lld, \"seconds\": %.3f, "
	       "\"cpu_seconds\": %.4f}\n", getpid(), rounds, elapsed, cpu);
	return 0;
}

int main(int argc, char **argv)
{
	argc_g = argc;
	argv_g = argv;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: trafficgen MODE key=value ...\n");
		return 64;
	}
	const char *mode = argv[1];

	if (!strcmp(mode, "tcp-listen"))
		return mode_tcp_listen();
	if (!strcmp(mode, "tcp-connect"))
		return mode_tcp_connect();
	if (!strcmp(mode, "udp-listen"))
		return mode_udp_listen();
	if (!strcmp(mode, "udp-send"))
		return mode_udp_send();
	if (!strcmp(mode, "icmp-echo"))
		return mode_icmp_echo();
	if (!strcmp(mode, "raw-listen"))
		return mode_raw_listen();
	if (!strcmp(mode, "raw-send"))
		return mode_raw_send();
	if (!strcmp(mode, "packet-listen"))
		return mode_packet_listen();
	if (!strcmp(mode, "packet-send"))
		return mode_packet_send();
	if (!strcmp(mode, "flood-udp"))
		return mode_flood(0);
	if (!strcmp(mode, "flood-tcp"))
		return mode_flood(1);
	if (!strcmp(mode, "pingpong-udp"))
		return mode_pingpong(0, 0);
	if (!strcmp(mode, "pingpong-udp-unconnected"))
		return mode_pingpong(0, 1);
	if (!strcmp(mode, "pingpong-tcp"))
		return mode_pingpong(1, 0);
	if (!strcmp(mode, "connect-loop"))
		return mode_connect_loop();
	fprintf(stderr, "trafficgen: unknown mode %s\n", mode);
	return 64;
}
