/* transport.c: raw nanomsg REP socket (see transport.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "hk_err.h"
#include "log.h"
#include "nnmsg.h"
#include "transport.h"

struct transport {
	int sock;
};

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
	if (t != NULL) {
		nn_close(t->sock);
		free(t);
	}
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
	nn_close(t->sock);
	free(t);
}
