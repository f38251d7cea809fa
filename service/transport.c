/* transport.c: raw nanomsg REP socket (see transport.h). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/filter.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "envelope.h"
#include "hk_err.h"
#include "log.h"
#include "nnmsg.h"
#include "transport.h"

#define MAX_LISTENERS 8
#define GUARD_MS      10    /* the guard counts at least this often */
#define GUARD_LOG_MS  10000 /* at most one "at the limit" line this often */

struct transport {
	int	   sock;
	int	   tcp[MAX_LISTENERS]; /* nanomsg's listening tcp sockets */
	size_t	   ntcp;
	size_t	   max_conns; /* 0: no guard */
	int	   guarding;  /* the guard thread runs */
	int	   shut;      /* listeners drop new connections */
	uint64_t   logged_ms; /* the last "at the limit" line */
	int	   ep;	      /* the guard's epoll of the tcp listeners */
	atomic_int stop;
	pthread_t  guard;
};

/*
 * Finds the listening tcp socket nanomsg made for the endpoint just bound
 * (nanomsg keeps it to itself) among the process's descriptors: one
 * accepting connections that is not yet known.  Only setsockopt() of a
 * socket filter is ever done with it.
 */
static int
find_listener(struct transport *t)
{
	struct sockaddr_storage sa;
	struct dirent	       *de;
	socklen_t		sl, ol;
	size_t			i;
	DIR		       *d;
	int			fd, acc, known, found = -1;

	if ((d = opendir("/proc/self/fd")) == NULL) {
		return -1;
	}
	while (found < 0 && (de = readdir(d)) != NULL) {
		fd = (int)strtol(de->d_name, NULL, 10);
		acc = 0;
		ol = sizeof(acc);
		sl = sizeof(sa);
		if (de->d_name[0] == '.' || fd == dirfd(d) ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol) !=
			0 ||
		    !acc ||
		    getsockname(fd, (struct sockaddr *)&sa, &sl) != 0 ||
		    (sa.ss_family != AF_INET && sa.ss_family != AF_INET6)) {
			continue;
		}
		for (i = known = 0; i < t->ntcp; i++) {
			known |= t->tcp[i] == fd;
		}
		if (!known) {
			found = fd;
		}
	}
	closedir(d);
	return found;
}

/* Attaches (shut) or detaches a filter that drops every packet to each
 * tcp listener: new connections wait in their SYN retries. */
static void
shut_listeners(struct transport *t, int shut)
{
	struct sock_filter drop[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog  prog = { 1, drop };
	size_t		   i;
	int		   none = 0;

	for (i = 0; i < t->ntcp; i++) {
		if (shut) {
			setsockopt(t->tcp[i], SOL_SOCKET, SO_ATTACH_FILTER,
			    &prog, sizeof(prog));
		} else {
			setsockopt(t->tcp[i], SOL_SOCKET, SO_DETACH_FILTER,
			    &none, sizeof(none));
		}
	}
	t->shut = shut;
}

/* Connections open now, the accepted ones still in their SP header
 * included (nanomsg counts a connection as current only after it). */
static uint64_t
connections(const struct transport *t)
{
	uint64_t in = nn_get_statistic(t->sock, NN_STAT_ACCEPTED_CONNECTIONS);
	uint64_t out = nn_get_statistic(t->sock, NN_STAT_DROPPED_CONNECTIONS) +
	    nn_get_statistic(t->sock, NN_STAT_BROKEN_CONNECTIONS);

	return in > out ? in - out : 0;
}

/*
 * The connection limit nanomsg lacks: the guard wakes at each connection
 * that comes to a tcp listener (edge-triggered, beside nanomsg's own
 * epoll) and at least every GUARD_MS, and counts; at max_conns the tcp
 * listeners stop taking new connections, below 15/16 of it they take them
 * again.  What nanomsg accepts before the door shuts (its listen backlog
 * holds 100 already) is TRANSPORT_OVERSHOOT.
 */
static void *
guard_main(void *arg)
{
	struct transport  *t = arg;
	struct epoll_event ev[MAX_LISTENERS];
	uint64_t	   n;

	while (!atomic_load(&t->stop)) {
		epoll_wait(t->ep, ev, MAX_LISTENERS, GUARD_MS);
		n = connections(t);
		if (!t->shut && n >= t->max_conns) {
			shut_listeners(t, 1);
			if (hk_mono_ms() - t->logged_ms >= GUARD_LOG_MS) {
				t->logged_ms = hk_mono_ms();
				log_warnx("%" PRIu64 " connections: at the "
					  "limit ([service] max_connections), "
					  "new tcp connections wait",
				    n);
			}
		} else if (t->shut && n < t->max_conns - t->max_conns / 16) {
			shut_listeners(t, 0);
		}
	}
	return NULL;
}

int
transport_guard(struct transport *t, size_t max_conns)
{
	struct epoll_event ev;
	size_t		   i;

	t->max_conns = max_conns;
	if (max_conns == 0 || t->ntcp == 0) {
		return 0;
	}
	if ((t->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		log_warn("epoll_create1");
		return HK_ERR_SYSTEM;
	}
	for (i = 0; i < t->ntcp; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN | EPOLLET;
		if (epoll_ctl(t->ep, EPOLL_CTL_ADD, t->tcp[i], &ev) != 0) {
			log_warn("epoll_ctl");
			return HK_ERR_SYSTEM;
		}
	}
	if (pthread_create(&t->guard, NULL, guard_main, t) != 0) {
		return HK_ERR_SYSTEM;
	}
	t->guarding = 1;
	return 0;
}

static int
bind_one(struct transport *t, const char *url, long gid)
{
	const char *path = NULL;
	mode_t	    old;
	int	    eid;

	if (strncmp(url, "ipc://", 6) == 0) {
		path = url + 6;
	}
	old = umask(007);
	eid = nn_bind(t->sock, url);
	umask(old);
	if (eid < 0) {
		log_warnx(
		    "cannot listen on %s: %s", url, nn_strerror(nn_errno()));
		return HK_ERR_SYSTEM;
	}
	if (strncmp(url, "tcp://", 6) == 0) {
		if (t->ntcp < MAX_LISTENERS &&
		    (t->tcp[t->ntcp] = find_listener(t)) >= 0) {
			t->ntcp++;
		} else {
			log_warnx("%s: its listening socket is not found: no "
				  "connection limit on it",
			    url);
		}
	}
	if (path != NULL) {
		if (chmod(path, 0660) != 0) {
			log_warn("chmod %s", path);
			return HK_ERR_SYSTEM;
		}
		if (gid != -1 && chown(path, (uid_t)-1, (gid_t)gid) != 0) {
			log_warn("chown %s", path);
			return HK_ERR_SYSTEM;
		}
	}
	log_info("listening on %s", url);
	return 0;
}

int
transport_open(struct transport **tp, char *const *urls, size_t nurls,
    size_t max_msg, int recv_timeout_ms, long gid)
{
	struct transport *t;
	int		  maxsz, r = HK_ERR_SYSTEM;
	size_t		  i;

	*tp = NULL;
	if (max_msg > INT32_MAX) {
		return HK_ERR_INVALID;
	}
	maxsz = (int)max_msg;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		return HK_ERR_NOMEM;
	}
	t->ep = -1;
	if ((t->sock = nn_socket(AF_SP_RAW, NN_REP)) < 0) {
		log_warnx("nn_socket: %s", nn_strerror(nn_errno()));
		free(t);
		return HK_ERR_SYSTEM;
	}
	if (nn_setsockopt(t->sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &maxsz,
		sizeof(maxsz)) < 0 ||
	    nn_setsockopt(t->sock, NN_SOL_SOCKET, NN_RCVTIMEO,
		&recv_timeout_ms, sizeof(recv_timeout_ms)) < 0) {
		log_warnx("nn_setsockopt: %s", nn_strerror(nn_errno()));
		goto out;
	}
	for (i = 0; i < nurls; i++) {
		if ((r = bind_one(t, urls[i], gid)) != 0) {
			goto out;
		}
	}
	/* success */
	*tp = t;
	t = NULL;
	r = 0;
out:
	transport_close(t);
	return r;
}

int
transport_recv(struct transport *t, struct transport_msg *m)
{
	struct nn_msghdr hdr;
	struct nn_iovec	 iov;
	void		*body = NULL, *control = NULL;
	int		 n;

	memset(m, 0, sizeof(*m));
	nnmsg_hdr(&hdr, &iov, &body, &control);
	if ((n = nn_recvmsg(t->sock, &hdr, 0)) < 0) {
		switch (nn_errno()) {
		case ETIMEDOUT:
		case EAGAIN:
		case EINTR:
			return HK_ERR_TIMEOUT;
		case EBADF:
		case ETERM:
			return HK_ERR_UNAVAILABLE;
		default:
			log_warnx("nn_recvmsg: %s", nn_strerror(nn_errno()));
			return HK_ERR_TIMEOUT;
		}
	}
	m->body = body;
	m->body_nn = body;
	m->len = (size_t)n;
	m->hdr = control;
	return 0;
}

int
transport_send(struct transport *t, struct transport_msg *m,
    const uint8_t *reply, size_t len)
{
	struct nn_msghdr hdr;
	struct nn_iovec	 iov;
	void		*chunk, *control;

	if (m->hdr == NULL) {
		return HK_ERR_INTERNAL;
	}
	if ((chunk = nn_allocmsg(len, 0)) == NULL) {
		return HK_ERR_NOMEM;
	}
	if (len > 0) {
		memcpy(chunk, reply, len);
	}
	control = m->hdr;
	nnmsg_hdr(&hdr, &iov, &chunk, &control);
	if (nn_sendmsg(t->sock, &hdr, 0) < 0) {
		/* on failure nanomsg keeps ownership with us */
		log_warnx("nn_sendmsg: %s", nn_strerror(nn_errno()));
		nn_freemsg(chunk);
		return HK_ERR_SYSTEM;
	}
	/* on success the header chunk was consumed too */
	m->hdr = NULL;
	return 0;
}

void
transport_msg_drop_body(struct transport_msg *m)
{
	if (m->body_nn != NULL) {
		nn_freemsg(m->body_nn);
	}
	m->body_nn = NULL;
	m->body = NULL;
	m->len = 0;
}

void
transport_msg_free(struct transport_msg *m)
{
	if (m->body_nn != NULL) {
		nn_freemsg(m->body_nn);
	}
	if (m->hdr != NULL) {
		nn_freemsg(m->hdr);
	}
	memset(m, 0, sizeof(*m));
}

void
transport_close(struct transport *t)
{
	if (t == NULL) {
		return;
	}
	if (t->guarding) {
		atomic_store(&t->stop, 1);
		pthread_join(t->guard, NULL);
	}
	if (t->ep >= 0) {
		close(t->ep);
	}
	nn_close(t->sock);
	free(t);
}
