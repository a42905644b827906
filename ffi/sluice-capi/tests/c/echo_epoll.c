/*
 * A multi-connection echo server over Sluice's C ABI on a DPDK port: nonblocking
 * sockets in one epoll set, everything each connection reads written back, each
 * connection closed once its client closed and the echo went out.
 *
 * usage: echo_epoll FLAGS SECONDS
 *
 * FLAGS go to sluice_init_dpdk (e.g. "--port=tap:sl0 --ip=198.18.0.2/24"). The server
 * listens on port 7 and runs until SIGTERM or SIGINT (exit 0 after closing everything),
 * or at most SECONDS (exit 3). It prints "connections=N bytes=M" at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sluice.h"

#define MAX_CONNS 64
#define BUF 65536

struct conn {
	int fd;
	size_t len, off; /* pending echo: buf[off..len] */
	int eof;
	unsigned events; /* registered interest */
	char buf[BUF];
};

static volatile sig_atomic_t stop;
static struct conn *conns[MAX_CONNS];
static unsigned long long total_bytes, total_conns;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int fail(const char *what)
{
	fprintf(stderr, "echo_epoll: %s: %s\n", what, strerror(errno));
	return 1;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void drop_conn(int ep, int i)
{
	struct conn *c = conns[i];
	sluice_epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	sluice_close(c->fd);
	free(c);
	conns[i] = NULL;
}

/* Moves data for connection i as far as it goes without blocking; 0 or -1 (dropped). */
static int serve(int ep, int i)
{
	struct conn *c = conns[i];
	for (;;) {
		if (c->off < c->len) {
			ssize_t w = sluice_write(c->fd, c->buf + c->off, c->len - c->off);
			if (w < 0 && errno == EAGAIN)
				break;
			if (w < 0) {
				fprintf(stderr, "echo_epoll: write: %s\n", strerror(errno));
				drop_conn(ep, i);
				return -1;
			}
			c->off += (size_t)w;
			total_bytes += (unsigned long long)w;
			continue;
		}
		c->off = c->len = 0;
		if (c->eof)
			break;
		ssize_t r = sluice_read(c->fd, c->buf, BUF);
		if (r < 0 && errno == EAGAIN)
			break;
		if (r < 0) {
			fprintf(stderr, "echo_epoll: read: %s\n", strerror(errno));
			drop_conn(ep, i);
			return -1;
		}
		if (r == 0)
			c->eof = 1;
		c->len = (size_t)r;
	}
	if (c->eof && c->off == c->len) {
		drop_conn(ep, i); /* a FIN after the echo */
		return 0;
	}
	unsigned want = c->off < c->len ? EPOLLOUT : EPOLLIN;
	if (want != c->events) {
		struct epoll_event ev = { .events = want, .data.u32 = (uint32_t)i };
		if (sluice_epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
			fail("epoll_ctl MOD");
			drop_conn(ep, i);
			return -1;
		}
		c->events = want;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: echo_epoll FLAGS SECONDS\n");
		return 2;
	}
	double limit = atof(argv[2]);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if (sluice_init_dpdk(argv[1]) != 0)
		return fail("sluice_init_dpdk");

	int l = sluice_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (l < 0)
		return fail("socket");
	int one = 1;
	if (sluice_setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
		return fail("setsockopt");
	struct sockaddr_in addr;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons(7);
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	if (sluice_bind(l, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		return fail("bind");
	if (sluice_listen(l, 32) != 0)
		return fail("listen");
	int ep = sluice_epoll_create1(0);
	if (ep < 0)
		return fail("epoll_create1");
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = MAX_CONNS };
	if (sluice_epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) != 0)
		return fail("epoll_ctl ADD listener");
	printf("listening\n");
	fflush(stdout);

	double t0 = now_s();
	int timed_out = 0;
	struct epoll_event out[16];
	while (!stop) {
		if (now_s() - t0 > limit) {
			timed_out = 1;
			break;
		}
		int n = sluice_epoll_wait(ep, out, 16, 100);
		if (n < 0 && errno == EINTR)
			continue; /* a signal (SIGTERM sets `stop`): look again */
		if (n < 0)
			return fail("epoll_wait");
		for (int k = 0; k < n; k++) {
			uint32_t i = out[k].data.u32;
			if (i != MAX_CONNS) {
				if (conns[i] != NULL)
					serve(ep, (int)i);
				continue;
			}
			for (;;) {
				int c = sluice_accept4(l, NULL, NULL, SOCK_NONBLOCK);
				if (c < 0 && errno == EAGAIN)
					break;
				if (c < 0)
					return fail("accept4");
				int slot = 0;
				while (slot < MAX_CONNS && conns[slot] != NULL)
					slot++;
				if (slot == MAX_CONNS) {
					sluice_close(c);
					continue;
				}
				struct conn *cn = calloc(1, sizeof(*cn));
				if (cn == NULL)
					return fail("calloc");
				cn->fd = c;
				cn->events = EPOLLIN;
				conns[slot] = cn;
				total_conns++;
				struct epoll_event cev = { .events = EPOLLIN, .data.u32 = (uint32_t)slot };
				if (sluice_epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0)
					return fail("epoll_ctl ADD");
				serve(ep, slot);
			}
		}
	}
	for (int i = 0; i < MAX_CONNS; i++)
		if (conns[i] != NULL)
			drop_conn(ep, i);
	if (sluice_close(l) != 0 || sluice_close(ep) != 0)
		return fail("close");
	/* Let the last FINs and ACKs go out. */
	for (int i = 0; i < 100; i++) {
		sluice_service();
		struct pollfd none;
		sluice_poll(&none, 0, 1);
	}
	printf("connections=%llu bytes=%llu %s\n", total_conns, total_bytes,
	       timed_out ? "time-limit" : "stopped");
	sluice_fini();
	return timed_out ? 3 : 0;
}
