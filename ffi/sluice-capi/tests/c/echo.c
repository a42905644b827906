/*
 * An echo server over Sluice's C ABI (include/sluice.h): one connection on port 7,
 * everything it reads written back, then a clean close when the client closes.
 *
 * usage: echo STACK_SOCKET PEER_SOCKET FLAGS
 *
 * The stack exchanges IPv4 packets with a peer over Unix datagram sockets
 * (sluice_init_unix), so a test can play the network from another process. The program
 * uses the calls a real server uses: a nonblocking listener in an epoll set, accept,
 * read / write, shutdown via close, and errno.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>

#include "sluice.h"

static int fail(const char *what)
{
	fprintf(stderr, "echo: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: echo STACK_SOCKET PEER_SOCKET FLAGS\n");
		return 2;
	}
	if (sluice_init_unix(argv[1], argv[2], argv[3]) != 0)
		return fail("sluice_init_unix");

	/* Before init nothing works; after it, errors are errno as on Linux. */
	if (sluice_close(42) != -1 || errno != EBADF)
		return fail("close(42) should fail with EBADF");

	int l = sluice_socket(AF_INET, SOCK_STREAM, 0);
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
	if (sluice_listen(l, 8) != 0)
		return fail("listen");
	int fl = sluice_fcntl(l, F_GETFL, 0);
	if (fl < 0 || sluice_fcntl(l, F_SETFL, fl | O_NONBLOCK) != 0)
		return fail("fcntl");

	int ep = sluice_epoll_create1(0);
	if (ep < 0)
		return fail("epoll_create1");
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = l };
	if (sluice_epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev) != 0)
		return fail("epoll_ctl");
	printf("listening\n");
	fflush(stdout);

	struct epoll_event out[4];
	int n = sluice_epoll_wait(ep, out, 4, 10000);
	if (n != 1 || out[0].data.fd != l)
		return fail("epoll_wait: no connection");

	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	int c = sluice_accept(l, (struct sockaddr *)&peer, &plen);
	if (c < 0)
		return fail("accept");
	if (sluice_accept(l, NULL, NULL) != -1 || errno != EAGAIN)
		return fail("second accept should fail with EAGAIN");
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
	printf("accepted %s:%u\n", ip, ntohs(peer.sin_port));

	int nodelay = 1;
	sluice_setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof(nodelay));

	size_t total = 0;
	char buf[4096];
	for (;;) {
		ssize_t r = sluice_read(c, buf, sizeof(buf));
		if (r < 0)
			return fail("read");
		if (r == 0)
			break; /* the client closed */
		ssize_t w = sluice_write(c, buf, (size_t)r);
		if (w != r)
			return fail("write");
		total += (size_t)r;
	}
	if (sluice_close(c) != 0 || sluice_close(l) != 0 || sluice_close(ep) != 0)
		return fail("close");
	/* Let the FIN go out and its ACK come back before the process exits. */
	for (int i = 0; i < 200; i++) {
		sluice_service();
		struct pollfd none;
		sluice_poll(&none, 0, 1);
	}
	printf("echoed %zu bytes\n", total);
	sluice_fini();
	return 0;
}
