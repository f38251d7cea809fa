/* reply.c: replies sealed and handed on, after the audit log when it must
 * be (see reply.h). */
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "dispatch.h"
#include "hk_err.h"
#include "log.h"
#include "metrics.h"
#include "nonce.h"
#include "reply.h"
#include "seal.h"
#include "secmem.h"
#include "server.h"
#include "transport.h"

static const uint8_t *
auth_nonce(const struct auth *a, size_t *lenp)
{
	if (a->env == NULL) {
		*lenp = 0;
		return NULL;
	}
	*lenp = a->env->nonce.len;
	return a->env->nonce.data;
}

int
reply_seal(const struct auth *a, const uint8_t *body, size_t blen,
    uint8_t **outp, size_t *lenp)
{
	const uint8_t *nonce;
	size_t	       nlen;

	nonce = auth_nonce(a, &nlen);
	return hk_seal_response(a->maced ? a->daykey : NULL, a->reply_secret,
	    nonce, nlen, body, blen, outp, lenp);
}

/* A Response of status and message, sealed with daykey (NULL: plain) as
 * the reply to nonce (secret_no: hk_seal_response()'s).  Caller must free
 * *outp. */
static int
seal_error(const uint8_t *daykey, uint32_t secret_no, const uint8_t *nonce,
    size_t nonce_len, int status, const char *message, uint8_t **outp,
    size_t *lenp)
{
	uint8_t *body = NULL;
	size_t	 blen;
	int	 r;

	*outp = NULL;
	*lenp = 0;
	if ((r = dispatch_error(status, message, &body, &blen)) == 0) {
		r = hk_seal_response(daykey, secret_no, nonce, nonce_len, body,
		    blen, outp, lenp);
	}
	free(body);
	return r;
}

int
reply_error(const struct auth *a, int status, const char *message,
    uint8_t **outp, size_t *lenp)
{
	const uint8_t *nonce;
	size_t	       nlen;

	nonce = auth_nonce(a, &nlen);
	return seal_error(a->maced ? a->daykey : NULL, a->reply_secret, nonce,
	    nlen, status, message, outp, lenp);
}

static void
observe(struct server *sv, const char *op, const struct timespec *t0)
{
	struct timespec t1;
	int64_t		ns;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000000 +
	    (t1.tv_nsec - t0->tv_nsec);
	metrics_observe(sv->metrics, op, ns > 0 ? (uint64_t)ns : 0);
}

static void
free_secretly(uint8_t *p, size_t len)
{
	if (p != NULL) {
		OPENSSL_cleanse(p, len); /* may hold a new client secret */
		free(p);
	}
}

/* ---- replies that wait for their audit line ---------------------------- */

/*
 * A reply whose request is audited: it is sent (and kept in the replay
 * cache) only once the audit line is durable, by the audit writer thread,
 * so that a worker goes on with the next request in the meantime.  When
 * the line cannot be written, a reply that says why is sealed and sent
 * instead (no signature).
 */
struct pending {
	struct server	    *sv;
	struct transport    *tr;
	struct transport_msg m; /* owned: routing header */
	int		     maced;
	uint8_t		    *daykey; /* the request's: a hk_secmem slot */
	uint32_t	     reply_secret; /* auth's */
	uint8_t		     nonce[HK_NONCE_LEN];
	size_t		     nonce_len;
	struct nonce_entry  *cached; /* to store the reply in, or NULL */
	enum reply_failure   failure;
	uint8_t		    *ok;
	size_t		     oklen;
	const char	    *op; /* static */
	struct timespec	     t0;
	uint64_t	     cost; /* in sv->waiting_bytes */
};

static void
pending_free(struct pending *p)
{
	atomic_fetch_sub(&p->sv->waiting_bytes, p->cost);
	free_secretly(p->ok, p->oklen);
	hk_secmem_slot_free(p->daykey);
	transport_msg_free(&p->m);
	free(p);
}

/* The reply of p's request when its audit line could not be written: the
 * writer's reason, now. */
static int
failed_reply(struct pending *p, uint8_t **replyp, size_t *lenp)
{
	char why[PATH_MAX + 160], msg[PATH_MAX + 320];

	if (audit_ready(p->sv->audit, why, sizeof(why))) {
		snprintf(why, sizeof(why),
		    "audit log %s cannot be written (see the service log)",
		    p->sv->cfg->audit_path);
	}
	if (p->failure == REPLY_FAIL_CHANGE) {
		snprintf(msg, sizeof(msg),
		    "%s; the %s was done but is not in the audit log", why,
		    p->op);
	} else {
		snprintf(
		    msg, sizeof(msg), "%s; no signature was returned", why);
	}
	return seal_error(p->maced ? p->daykey : NULL, p->reply_secret,
	    p->nonce, p->nonce_len, HSMKEY__V1__STATUS__STATUS_UNAVAILABLE,
	    msg, replyp, lenp);
}

/* Called by the audit writer once the line is durable (r 0) or not. */
static void
pending_done(void *arg, int r)
{
	struct pending *p = arg;
	uint8_t	       *failed = NULL;
	const uint8_t  *reply = p->ok;
	size_t		len = p->oklen, flen = 0;

	if (r != 0 && p->failure != REPLY_FAIL_SAME) {
		if (failed_reply(p, &failed, &flen) == 0) {
			reply = failed;
			len = flen;
		} else {
			/* never the unaudited reply: none at all */
			reply = NULL;
			len = 0;
		}
	}
	if (p->cached != NULL) {
		nonce_cache_finish(p->sv->nonces, p->cached, reply, len);
	}
	if (reply != NULL) {
		transport_send(p->tr, &p->m, reply, len);
	}
	observe(p->sv, p->op, &p->t0);
	free(failed);
	pending_free(p);
}

int
reply_waiting_full(struct server *sv)
{
	return sv->audit != NULL && sv->cfg != NULL &&
	    atomic_load(&sv->waiting_bytes) >= sv->cfg->audit_max_waiting;
}

/*
 * Takes cost bytes of the room for replies waiting for the audit log
 * ([audit] max_waiting); 0, or HK_ERR_EXHAUSTED when it is full.  A change
 * always gets its room: it was made and its line must be written.
 */
static int
take_room(struct server *sv, const struct outcome *o, uint64_t cost)
{
	uint64_t was;

	was = atomic_fetch_add(&sv->waiting_bytes, cost);
	if (o->failure != REPLY_FAIL_CHANGE &&
	    was + cost > sv->cfg->audit_max_waiting) {
		atomic_fetch_sub(&sv->waiting_bytes, cost);
		return HK_ERR_EXHAUSTED;
	}
	return 0;
}

/* Hands o's reply to the audit writer; 0 when it has taken it over.  The
 * request's bytes are freed first: only the reply and its routing wait. */
static int
hand_to_audit(struct server *sv, struct transport *tr, struct transport_msg *m,
    struct auth *a, struct outcome *o)
{
	struct pending *p;
	const uint8_t  *nonce;
	uint64_t	cost = sizeof(*p) + o->len;
	int		r;

	if ((r = take_room(sv, o, cost)) != 0) {
		return r;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		atomic_fetch_sub(&sv->waiting_bytes, cost);
		return HK_ERR_NOMEM;
	}
	p->cost = cost;
	p->sv = sv;
	p->tr = tr;
	p->op = o->op;
	p->t0 = o->t0;
	p->failure = o->failure;
	p->maced = a->maced;
	p->daykey = a->daykey; /* handed on, not copied */
	a->daykey = NULL;
	p->reply_secret = a->reply_secret;
	if ((nonce = auth_nonce(a, &p->nonce_len)) != NULL) {
		p->nonce_len =
		    p->nonce_len > HK_NONCE_LEN ? HK_NONCE_LEN : p->nonce_len;
		memcpy(p->nonce, nonce, p->nonce_len);
	}
	p->cached = a->cached;
	a->cached = NULL;
	p->ok = o->reply;
	p->oklen = o->len;
	o->reply = NULL;
	o->len = 0;
	transport_msg_drop_body(m);
	p->m = *m;
	memset(m, 0, sizeof(*m));
	if ((r = audit_submit(sv->audit, &o->ev, pending_done, p)) != 0) {
		/* too many waiting: the failure reply, now */
		log_err_r(r, "audit: event not queued");
		pending_done(p, HK_ERR_UNAVAILABLE);
	}
	return 0;
}

void
reply_deliver(struct server *sv, struct transport *tr, struct transport_msg *m,
    struct auth *a, struct outcome *o)
{
	int r, keep = 1;

	if (o->reply != NULL && o->audit && sv->audit != NULL) {
		if ((r = hand_to_audit(sv, tr, m, a, o)) == 0) {
			return;
		}
		/* fail closed: never a reply that was not audited, and none
		 * kept for a resend */
		free_secretly(o->reply, o->len);
		o->reply = NULL;
		if (r == HK_ERR_EXHAUSTED) {
			r = reply_error(a,
			    HSMKEY__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
			    REPLY_WAITING_FULL
			    "; nothing was returned, try again later",
			    &o->reply, &o->len);
		} else {
			log_err_r(r, "reply not audited, not sent");
			r = reply_error(a, HSMKEY__V1__STATUS__STATUS_INTERNAL,
			    "internal error: see the service log", &o->reply,
			    &o->len);
		}
		if (r != 0) {
			o->reply = NULL;
		}
		keep = 0;
	}
	if (a->cached != NULL) {
		nonce_cache_finish(sv->nonces, a->cached,
		    keep ? o->reply : NULL, keep ? o->len : 0);
		a->cached = NULL;
	}
	if (o->reply != NULL) {
		transport_send(tr, m, o->reply, o->len);
	}
	if (o->op != NULL) {
		observe(sv, o->op, &o->t0);
	}
	free_secretly(o->reply, o->len);
	o->reply = NULL;
	o->len = 0;
}
