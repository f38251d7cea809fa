/*
 * resend_proxy.c: a nanomsg REQ/REP proxy that loses the first reply, so
 * that a test can check what happens when the connection fails between a
 * request and its reply (nanomsg REQ then resends the request byte for
 * byte after NN_REQ_RESEND_IVL).
 *
 *   resend_proxy drop|reopen FRONT_URL SERVICE_URL
 *
 * FRONT_URL: a raw REP socket the client connects to; SERVICE_URL: the
 * service, reached through a raw REQ socket.  Requests go through as they
 * are, with their routing headers, and so do replies, except:
 *   drop    the first reply is thrown away;
 *   reopen  after the first request is forwarded, the front socket is
 *           closed (the client's connection breaks) and bound again, so
 *           its reply has nowhere to go.
 * Prints "ready" when listening, and on SIGTERM or SIGINT one line:
 * "requests N replies N dropped N", then exits 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "nnmsg.h"

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
front_open(const char *url)
{
	int s, i;

	if ((s = nn_socket(AF_SP_RAW, NN_REP)) < 0) {
		return -1;
	}
	/* the old endpoint may take a moment to go away */
	for (i = 0; i < 50; i++) {
		if (nn_bind(s, url) >= 0) {
			return s;
		}
		usleep(20 * 1000);
	}
	nn_close(s);
	return -1;
}

/* Moves one message from `from` to `to` (headers included); 1 moved, 0
 * none waiting, -1 error.  drop: receive it and throw it away. */
static int
move(int from, int to, int drop)
{
	struct nn_msghdr hdr;
	struct nn_iovec	 iov;
	void		*body = NULL, *control = NULL;
	int		 n;

	nnmsg_hdr(&hdr, &iov, &body, &control);
	if ((n = nn_recvmsg(from, &hdr, NN_DONTWAIT)) < 0) {
		return nn_errno() == EAGAIN ? 0 : -1;
	}
	if (drop) {
		nn_freemsg(body);
		if (control != NULL) {
			nn_freemsg(control);
		}
		return 1;
	}
	/* on success nn_sendmsg owns body and control */
	iov.iov_base = &body;
	iov.iov_len = NN_MSG;
	if (nn_sendmsg(to, &hdr, 0) < 0) {
		nn_freemsg(body);
		if (control != NULL) {
			nn_freemsg(control);
		}
		return -1;
	}
	return 1;
}

int
main(int argc, char **argv)
{
	struct nn_pollfd pfd[2];
	struct sigaction sa;
	long		 requests = 0, replies = 0, dropped = 0;
	int		 front, back, reopen, r;

	if (argc != 4 ||
	    (strcmp(argv[1], "drop") != 0 && strcmp(argv[1], "reopen") != 0)) {
		fprintf(stderr,
		    "usage: resend_proxy drop|reopen FRONT_URL "
		    "SERVICE_URL\n");
		return 2;
	}
	reopen = strcmp(argv[1], "reopen") == 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((front = front_open(argv[2])) < 0 ||
	    (back = nn_socket(AF_SP_RAW, NN_REQ)) < 0 ||
	    nn_connect(back, argv[3]) < 0) {
		fprintf(stderr, "resend_proxy: %s\n", nn_strerror(nn_errno()));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		pfd[0].fd = front;
		pfd[0].events = NN_POLLIN;
		pfd[1].fd = back;
		pfd[1].events = NN_POLLIN;
		if (nn_poll(pfd, 2, 100) <= 0) {
			continue;
		}
		if (pfd[0].revents & NN_POLLIN) {
			if ((r = move(front, back, 0)) < 0) {
				fprintf(stderr, "resend_proxy: forward: %s\n",
				    nn_strerror(nn_errno()));
			}
			if (r > 0 && ++requests == 1 && reopen) {
				nn_close(front);
				if ((front = front_open(argv[2])) < 0) {
					fprintf(stderr,
					    "resend_proxy: "
					    "rebind: %s\n",
					    nn_strerror(nn_errno()));
					return 1;
				}
			}
		}
		if (pfd[1].revents & NN_POLLIN) {
			/* in reopen mode the first reply goes to a pipe
			 * that is gone: nanomsg drops it */
			r = move(back, front, !reopen && replies == 0);
			if (r > 0) {
				if (!reopen && replies == 0) {
					dropped++;
				}
				replies++;
			}
		}
	}
	printf("requests %ld replies %ld dropped %ld\n", requests, replies,
	    dropped);
	nn_close(front);
	nn_close(back);
	return 0;
}
