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
/* A receive waits this long at a time, then looks at the connection. */
#define HK_POLL_MS 100
/* This many fast drops by the service in one call end it: closed within
 * this long of its connection (a handshake times out after 1 s). */
#define HK_DROPS_MAX	3
#define HK_FAST_DROP_MS 500
/* A request this small cannot be over a service's receive limit. */
#define HK_SMALL_REQUEST 8192

struct hk_transport {
	int   sock;
	int   eid; /* the connect endpoint, -1 after park() */
	char *url;
};

/*
 * One call: its limits and what the connection did during it.  nanomsg
 * counts a connection as established before its handshake and as current
 * after it; one the service closes at once (a request over its receive
 * limit) is a fast drop, one whose handshake timed out (a stopped
 * service) is not.
 */
struct hk_watch {
	long long start, deadline; /* monotonic ms */
	long long down_since;	   /* -1: connected at the last look */
	int	  timeout_ms, connect_ms;
	size_t	  len;	  /* of the request */
	int	  up;	  /* connected at the start or at a look since */
	uint64_t  est;	  /* the established counter at the last look */
	uint64_t  broken; /* the broken counter at the last look */
	long long est_ms; /* when est last grew (or the start) */
	unsigned  fast;	  /* fast drops in this call */
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
		    "no reply from %s within %s s: connected, but "
		    "hsmkeyd does not answer (stopped or hung?)",
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
	t->eid = -1;
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
	if ((t->eid = nn_connect(t->sock, url)) < 0) {
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

/* A socket statistic; 0 when nanomsg cannot tell. */
static uint64_t
stat_get(const struct hk_transport *t, int which)
{
	uint64_t v = nn_get_statistic(t->sock, which);

	return v == (uint64_t)-1 ? 0 : v;
}

/* Whether a connection is up (its handshake done: REQ can send on it). */
static int
link_up(const struct hk_transport *t)
{
	return stat_get(t, NN_STAT_CURRENT_CONNECTIONS) > 0;
}

/*
 * Drops the connection after a call that failed, so that REQ cannot
 * deliver the abandoned request later (it would resend it on every
 * reconnect until the next send): the next call sends first and connects
 * again (reconnect()).
 */
static void
park(struct hk_transport *t)
{
	if (t->eid >= 0) {
		nn_shutdown(t->sock, t->eid);
		t->eid = -1;
	}
}

static int
reconnect(struct hk_transport *t, char *err, size_t errlen)
{
	int e;

	if (t->eid >= 0) {
		return 0;
	}
	if ((t->eid = nn_connect(t->sock, t->url)) < 0) {
		e = nn_errno();
		snprintf(err, errlen, "cannot connect to %s: %s", t->url,
		    nn_strerror(e));
		return HSMKEY_ECONNECT;
	}
	return 0;
}

/* Hands req to REQ (it sends when connected, and resends). */
static int
send_request(struct hk_transport *t, const struct hk_watch *w,
    const uint8_t *req, size_t len, char *err, size_t errlen)
{
	long long now = w->start;
	int	  e;

	for (;;) {
		if (set_timeout(t->sock, NN_SNDTIMEO, w->deadline - now) !=
		    0) {
			e = nn_errno();
			return map_errno(t, e, "cannot send to", w->timeout_ms,
			    err, errlen);
		}
		if (nn_send(t->sock, req, len, 0) >= 0) {
			break;
		}
		if ((e = nn_errno()) != EINTR) {
			return map_errno(t, e, "cannot send to", w->timeout_ms,
			    err, errlen);
		}
		now_ms_mono(&now);
		if (now >= w->deadline) {
			return map_errno(
			    t, ETIMEDOUT, "", w->timeout_ms, err, errlen);
		}
	}
	return reconnect(t, err, errlen);
}

/* Whether the request may have reached the service in this call. */
static int
maybe_delivered(const struct hk_watch *w)
{
	return w->up || w->fast > 0;
}

/* The error of a call whose connection is down: never made, or lost. */
static int
link_error(const struct hk_transport *t, const struct hk_watch *w, char *err,
    size_t errlen)
{
	char secs[32];

	fmt_seconds(secs, sizeof(secs), w->connect_ms);
	if (!maybe_delivered(w)) {
		snprintf(err, errlen,
		    "cannot reach %s: nothing answers (no connection "
		    "within %s s): is hsmkeyd running?",
		    t->url, secs);
		return HSMKEY_ECONNECT;
	}
	snprintf(err, errlen,
	    "connection to %s lost with the request in flight, not back "
	    "within %s s (did hsmkeyd stop?): it may or may not have been "
	    "done",
	    t->url, secs);
	return HSMKEY_ECONNLOST;
}

/*
 * Checks the connection after a receive slice that brought nothing:
 * 0 to wait on, or an error when it has been down for connect_ms, or
 * when the service closed it HK_DROPS_MAX times in this call (a request
 * over its receive limit is dropped, and REQ resends it at each
 * reconnect).
 */
static int
check_link(const struct hk_transport *t, struct hk_watch *w, long long now,
    char *err, size_t errlen)
{
	uint64_t est = stat_get(t, NN_STAT_ESTABLISHED_CONNECTIONS);
	uint64_t broken = stat_get(t, NN_STAT_BROKEN_CONNECTIONS);

	if (broken > w->broken && now - w->est_ms <= HK_FAST_DROP_MS) {
		w->fast += (unsigned)(broken - w->broken);
	}
	w->broken = broken;
	if (est > w->est) {
		w->est = est;
		w->est_ms = now;
	}
	if (w->fast >= HK_DROPS_MAX) {
		snprintf(err, errlen,
		    "connection closed by the service %u times after a "
		    "request of %zu bytes%s",
		    w->fast, w->len,
		    w->len > HK_SMALL_REQUEST ? " (over its [service] "
						"max_request?)"
					      : " (see the hsmkeyd log)");
		return HSMKEY_ECONNLOST;
	}
	if (link_up(t)) {
		w->up = 1;
		w->down_since = -1;
		return 0;
	}
	if (w->down_since < 0) {
		w->down_since = now;
	}
	if (now - w->down_since >= w->connect_ms || now >= w->deadline) {
		return link_error(t, w, err, errlen);
	}
	return 0;
}

/* Receives the reply in short slices, watching the connection. */
static int
await_reply(struct hk_transport *t, struct hk_watch *w, void **msgp, char *err,
    size_t errlen)
{
	long long now = w->start;
	int	  n, e, r;

	for (;;) {
		now_ms_mono(&now);
		if (now >= w->deadline) {
			if (!link_up(t)) {
				return link_error(t, w, err, errlen);
			}
			return map_errno(
			    t, ETIMEDOUT, "", w->timeout_ms, err, errlen);
		}
		if (set_timeout(t->sock, NN_RCVTIMEO,
			w->deadline - now < HK_POLL_MS ? w->deadline - now
						       : HK_POLL_MS) != 0) {
			e = nn_errno();
			return map_errno(t, e, "cannot receive from",
			    w->timeout_ms, err, errlen);
		}
		if ((n = nn_recv(t->sock, msgp, NN_MSG, 0)) >= 0) {
			return n;
		}
		if ((e = nn_errno()) != EINTR && e != EAGAIN &&
		    e != ETIMEDOUT) {
			return map_errno(t, e, "cannot receive from",
			    w->timeout_ms, err, errlen);
		}
		now_ms_mono(&now);
		if ((r = check_link(t, w, now, err, errlen)) != 0) {
			return r;
		}
	}
}

int
hk_transport_roundtrip(struct hk_transport *t, int timeout_ms, int connect_ms,
    const uint8_t *req, size_t len, uint8_t **replyp, size_t *lenp, char *err,
    size_t errlen)
{
	struct hk_watch w;
	void	       *msg = NULL;
	uint8_t	       *copy = NULL;
	int		n = 0, r = HSMKEY_ECONNECT;

	*replyp = NULL;
	*lenp = 0;
	memset(&w, 0, sizeof(w));
	if (now_ms_mono(&w.start) != 0) {
		snprintf(err, errlen, "clock_gettime: %s", strerror(errno));
		return HSMKEY_ECONNECT;
	}
	w.timeout_ms = timeout_ms;
	w.connect_ms = connect_ms;
	w.deadline = w.start + timeout_ms;
	w.down_since = w.start;
	w.len = len;
	w.up = t->eid >= 0 && link_up(t);
	w.est = stat_get(t, NN_STAT_ESTABLISHED_CONNECTIONS);
	w.broken = stat_get(t, NN_STAT_BROKEN_CONNECTIONS);
	w.est_ms = w.start;
	if ((r = send_request(t, &w, req, len, err, errlen)) != 0 ||
	    (r = n = await_reply(t, &w, &msg, err, errlen)) < 0) {
		park(t);
		n = 0;
		goto out;
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
	if (msg != NULL) {
		/* a reply may carry a new client secret */
		explicit_bzero(msg, (size_t)n);
		nn_freemsg(msg);
	}
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
