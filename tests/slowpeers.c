/*
 * slowpeers.c: hostile tcp peers for tests/test_hostile.sh, speaking
 * nanomsg's wire directly (no libnanomsg): the SP header "\0SP\0" +
 * protocol (REQ 48, 0x30) + 2 reserved bytes, answered by "\0SP\0" + REP (49);
 * then frames of an 8-byte big-endian length and the payload (a REQ's
 * payload starts with its 4-byte request id, top bit set).
 *
 *   slowpeers HOST PORT N MODE SIZE HOLD_S
 *
 * opens N connections, each doing MODE:
 *   idle	 the SP header only
 *   partial	 a frame announcing SIZE bytes and all of them but one
 *   oversize	 a frame announcing SIZE bytes (over the service's limit)
 *   empty	 a frame of length 0
 *   noshake	 nothing at all (not even the SP header)
 *   hangup	 a frame of SIZE bytes in full, closed at once (a request
 *		 whose peer leaves before the reply)
 * prints "ready OPEN SHAKEN" once every connection is set up (or after
 * 5 s), then holds them HOLD_S seconds and prints "closed K": how many the
 * service closed meanwhile.  Exit 0, or 1 on a local error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "envelope.h"

#define SETUP_MS 5000

enum mode { IDLE, PARTIAL, OVERSIZE, EMPTY, NOSHAKE, HANGUP };

static const struct {
	const char *name;
	enum mode   mode;
} modes[] = { { "idle", IDLE }, { "partial", PARTIAL },
	{ "oversize", OVERSIZE }, { "empty", EMPTY }, { "noshake", NOSHAKE },
	{ "hangup", HANGUP } };

struct peer {
	int	       fd;
	const uint8_t *hello;  /* the SP header, until it is sent */
	int	       shaken; /* the service's SP header arrived */
	size_t	       got;    /* of it */
	int	       closed; /* by the service */
};

static int
parse_mode(const char *s, enum mode *m)
{
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(s, modes[i].name) == 0) {
			*m = modes[i].mode;
			return 0;
		}
	}
	return -1;
}

/* Writes all of buf to a non-blocking fd, waiting for room up to the
 * set-up deadline; -1 when the service closed it or time ran out. */
static int
send_all(int fd, const uint8_t *buf, size_t len, uint64_t deadline)
{
	struct pollfd pfd = { fd, POLLOUT, 0 };
	ssize_t	      n;

	while (len > 0) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return -1;
		}
		if (hk_mono_ms() >= deadline ||
		    poll(&pfd, 1, (int)(deadline - hk_mono_ms())) < 0) {
			return -1;
		}
	}
	return 0;
}

/* The frame a mode sends after the SP header (none for idle): its
 * header announcing SIZE bytes (0 for empty), then all of them (hangup),
 * all but one (partial) or the first 4 KiB at most (oversize). */
static int
send_frame(int fd, enum mode m, size_t size, uint64_t deadline)
{
	uint8_t *buf;
	size_t	 announced, sent, i;
	int	 r;

	if (m == IDLE || m == NOSHAKE) {
		return 0;
	}
	announced = m == EMPTY ? 0 : size;
	sent = announced;
	if (m == PARTIAL) {
		sent = size - 1;
	} else if (m == OVERSIZE && size > 4096) {
		sent = 4096;
	}
	if ((buf = calloc(1, 8 + (sent < 4 ? 4 : sent))) == NULL) {
		return -1;
	}
	for (i = 0; i < 8; i++) {
		buf[i] = (uint8_t)((uint64_t)announced >> (56 - 8 * i));
	}
	buf[8] = 0x80; /* request id 0x80000001 */
	buf[11] = 1;
	r = send_all(fd, buf, 8 + sent, deadline);
	free(buf);
	return r;
}

static int
open_peer(struct peer *p, const struct sockaddr_in *sa, enum mode m)
{
	static const uint8_t hello[8] = { 0, 'S', 'P', 0, 0, 48, 0, 0 };
	int		     one = 1;

	memset(p, 0, sizeof(*p));
	if ((p->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		return -1;
	}
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(p->fd, F_SETFL, fcntl(p->fd, F_GETFL) | O_NONBLOCK);
	/* a service out of descriptors leaves connections in its backlog:
	 * never wait for one here */
	if (connect(p->fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 &&
	    errno != EINPROGRESS) {
		return -1;
	}
	p->hello = m == NOSHAKE ? NULL : hello;
	return 0;
}

/* Sends p's SP header once connected; reads what the service sent: its
 * SP header, or the end. */
static void
serve_peer(struct peer *p, short revents)
{
	uint8_t buf[512];
	ssize_t n;

	if (p->hello != NULL && (revents & POLLOUT) != 0) {
		if (send(p->fd, p->hello, 8, MSG_NOSIGNAL) != 8) {
			p->closed = 1;
			return;
		}
		p->hello = NULL;
	}
	if ((revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
		return;
	}

	while ((n = recv(p->fd, buf, sizeof(buf), 0)) > 0) {
		p->got += (size_t)n;
		if (p->got >= 8) {
			p->shaken = 1;
		}
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		p->closed = 1;
	}
}

/* Polls every open peer until deadline (or until each is shaken). */
static void
watch(struct peer *peers, size_t n, uint64_t deadline, int until_shaken)
{
	struct pollfd *pfd;
	size_t	      *who, i, k, waiting;

	pfd = calloc(n, sizeof(*pfd));
	who = calloc(n, sizeof(*who));
	while (pfd != NULL && who != NULL && hk_mono_ms() < deadline) {
		for (i = k = waiting = 0; i < n; i++) {
			if (peers[i].fd < 0 || peers[i].closed) {
				continue;
			}
			waiting += !peers[i].shaken;
			pfd[k].fd = peers[i].fd;
			pfd[k].events = peers[i].hello ? POLLOUT : POLLIN;
			who[k++] = i;
		}
		if (k == 0 || (until_shaken && waiting == 0)) {
			break;
		}
		if (poll(pfd, k, 100) <= 0) {
			continue;
		}
		for (i = 0; i < k; i++) {
			serve_peer(&peers[who[i]], pfd[i].revents);
		}
	}
	free(who);
	free(pfd);
}

static void
raise_nofile(size_t n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n + 64) {
		rl.rlim_cur = rl.rlim_max < n + 64 ? rl.rlim_max : n + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	struct peer	  *peers;
	enum mode	   m;
	size_t		   n, size, i, open_n = 0, shaken = 0, closed = 0;
	uint64_t	   hold, deadline;

	if (argc != 7 || parse_mode(argv[4], &m) != 0) {
		fprintf(stderr,
		    "usage: slowpeers HOST PORT N "
		    "idle|partial|oversize|empty|noshake|hangup "
		    "SIZE HOLD_S\n");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)strtoul(argv[2], NULL, 10));
	n = strtoul(argv[3], NULL, 10);
	size = strtoul(argv[5], NULL, 10);
	hold = strtoull(argv[6], NULL, 10) * 1000;
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || n == 0 ||
	    (m == PARTIAL && size < 2) ||
	    (peers = calloc(n, sizeof(*peers))) == NULL) {
		fprintf(stderr, "slowpeers: bad arguments\n");
		return 1;
	}
	raise_nofile(n);
	deadline = hk_mono_ms() + SETUP_MS;
	for (i = 0; i < n; i++) {
		if (open_peer(&peers[i], &sa, m) != 0) {
			perror("slowpeers: connect");
			if (peers[i].fd >= 0) {
				close(peers[i].fd);
			}
			peers[i].fd = -1;
			continue;
		}
		open_n++;
	}
	watch(peers, n, deadline, 1);
	for (i = 0; i < n; i++) {
		if (peers[i].fd < 0 || peers[i].closed) {
			continue;
		}
		if (!peers[i].shaken) {
			continue; /* still in the service's backlog */
		}
		shaken++;
		if (send_frame(peers[i].fd, m, size, deadline) != 0) {
			peers[i].closed = 1;
		} else if (m == HANGUP) {
			close(peers[i].fd);
			peers[i].fd = -1;
		}
	}
	printf("ready %zu %zu\n", open_n, shaken);
	fflush(stdout);
	watch(peers, n, hk_mono_ms() + hold, 0);
	for (i = 0; i < n; i++) {
		closed += peers[i].fd >= 0 && peers[i].closed;
		if (peers[i].fd >= 0) {
			close(peers[i].fd);
		}
	}
	printf("closed %zu\n", closed);
	free(peers);
	return 0;
}
