/* transport.c: nanomsg REQ transport of the client (see transport.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>

#include "codec.h"
#include "hsmkey.h"
#include "transport.h"

/* A reply may be a full message plus its envelope. */
#define HK_RCVMAX (HK_MAX_MESSAGE + 4096)
/* REQ resends the same bytes when no reply came in this long. */
#define HK_RESEND_IVL_MS 2000

struct hk_transport {
	int   sock;
	char *url;
};

static int
now_ms_mono(long long *msp)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		return -1;
	}
	*msp = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return 0;
}

static void
fmt_seconds(char *s, size_t len, int ms)
{
	if (ms % 1000 == 0) {
		snprintf(s, len, "%d", ms / 1000);
	} else {
		snprintf(s, len, "%d.%03d", ms / 1000, ms % 1000);
		/* "0.300" -> "0.3" */
		while (s[strlen(s) - 1] == '0') {
			s[strlen(s) - 1] = '\0';
		}
	}
}

static int
map_errno(const struct hk_transport *t, int e, const char *what,
    int timeout_ms, char *err, size_t errlen)
{
	char secs[32];

	if (e == ETIMEDOUT || e == EAGAIN) {
		fmt_seconds(secs, sizeof(secs), timeout_ms);
		snprintf(err, errlen,
		    "no reply from %s within %s s: "
		    "is hsmkeyd running?",
		    t->url, secs);
		return HSMKEY_ETIMEOUT;
	}
	snprintf(err, errlen, "%s %s: %s", what, t->url, nn_strerror(e));
	return HSMKEY_ECONNECT;
}

int
hk_transport_open(
    struct hk_transport **tp, const char *url, char *err, size_t errlen)
{
	struct hk_transport *t = NULL;
	int		     r = HSMKEY_ECONNECT, v, e;

	*tp = NULL;
	if (url == NULL || *url == '\0') {
		snprintf(err, errlen, "no service URL");
		return HSMKEY_EINVAL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->url = strdup(url)) == NULL) {
		snprintf(err, errlen, "out of memory");
		r = HSMKEY_ENOMEM;
		goto out;
	}
	t->sock = -1;
	if ((t->sock = nn_socket(AF_SP, NN_REQ)) < 0) {
		e = nn_errno();
		snprintf(err, errlen, "cannot make a socket for %s: %s", url,
		    nn_strerror(e));
		goto out;
	}
	v = HK_RCVMAX;
	if (nn_setsockopt(
		t->sock, NN_SOL_SOCKET, NN_RCVMAXSIZE, &v, sizeof(v)) != 0) {
		goto sockopt;
	}
	v = HK_RESEND_IVL_MS;
	if (nn_setsockopt(t->sock, NN_REQ, NN_REQ_RESEND_IVL, &v, sizeof(v)) !=
	    0) {
		goto sockopt;
	}
	if (nn_connect(t->sock, url) < 0) {
		e = nn_errno();
		if (e == EINVAL || e == EPROTONOSUPPORT || e == ENODEV ||
		    e == ENAMETOOLONG) {
			snprintf(err, errlen,
			    "invalid URL '%s': use "
			    "ipc://PATH or tcp://HOST:PORT",
			    url);
			r = HSMKEY_EINVAL;
		} else {
			snprintf(err, errlen, "cannot connect to %s: %s", url,
			    nn_strerror(e));
		}
		goto out;
	}
	/* success */
	*tp = t;
	t = NULL;
	r = 0;
	goto out;
sockopt:
	e = nn_errno();
	snprintf(err, errlen, "cannot set socket options: %s", nn_strerror(e));
out:
	hk_transport_close(t);
	return r;
}

void
hk_transport_close(struct hk_transport *t)
{
	if (t == NULL) {
		return;
	}
	if (t->sock >= 0) {
		nn_close(t->sock);
	}
	free(t->url);
	free(t);
}

static int
set_timeout(int sock, int opt, long long ms)
{
	int v = ms < 1 ? 1 : (ms > 0x7fffffff ? 0x7fffffff : (int)ms);

	return nn_setsockopt(sock, NN_SOL_SOCKET, opt, &v, sizeof(v));
}

int
hk_transport_roundtrip(struct hk_transport *t, int timeout_ms,
    const uint8_t *req, size_t len, uint8_t **replyp, size_t *lenp, char *err,
    size_t errlen)
{
	long long deadline, now;
	void	 *msg = NULL;
	uint8_t	 *copy = NULL;
	int	  n, e, r = HSMKEY_ECONNECT;

	*replyp = NULL;
	*lenp = 0;
	if (now_ms_mono(&now) != 0) {
		snprintf(err, errlen, "clock_gettime: %s", strerror(errno));
		return HSMKEY_ECONNECT;
	}
	deadline = now + timeout_ms;
	for (;;) {
		if (set_timeout(t->sock, NN_SNDTIMEO, deadline - now) != 0) {
			e = nn_errno();
			return map_errno(
			    t, e, "cannot send to", timeout_ms, err, errlen);
		}
		if (nn_send(t->sock, req, len, 0) >= 0) {
			break;
		}
		if ((e = nn_errno()) != EINTR) {
			return map_errno(
			    t, e, "cannot send to", timeout_ms, err, errlen);
		}
		now_ms_mono(&now);
		if (now >= deadline) {
			return map_errno(
			    t, ETIMEDOUT, "", timeout_ms, err, errlen);
		}
	}
	for (;;) {
		now_ms_mono(&now);
		if (now >= deadline) {
			return map_errno(
			    t, ETIMEDOUT, "", timeout_ms, err, errlen);
		}
		if (set_timeout(t->sock, NN_RCVTIMEO, deadline - now) != 0) {
			e = nn_errno();
			return map_errno(t, e, "cannot receive from",
			    timeout_ms, err, errlen);
		}
		if ((n = nn_recv(t->sock, &msg, NN_MSG, 0)) >= 0) {
			break;
		}
		if ((e = nn_errno()) != EINTR) {
			return map_errno(t, e, "cannot receive from",
			    timeout_ms, err, errlen);
		}
	}
	if ((size_t)n > HK_RCVMAX) {
		snprintf(err, errlen, "reply from %s is too large (%d bytes)",
		    t->url, n);
		r = HSMKEY_EPROTO;
		goto out;
	}
	if ((copy = malloc((size_t)n + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		r = HSMKEY_ENOMEM;
		goto out;
	}
	memcpy(copy, msg, (size_t)n);
	/* success */
	*replyp = copy;
	*lenp = (size_t)n;
	r = 0;
out:
	/* a reply may carry a new client secret */
	explicit_bzero(msg, (size_t)n);
	nn_freemsg(msg);
	return r;
}

void
hk_transport_free_reply(uint8_t *reply, size_t len)
{
	if (reply == NULL) {
		return;
	}
	explicit_bzero(reply, len);
	free(reply);
}
