/* server.c: start-up, workers, request pipeline, shutdown (see server.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "codec.h"
#include "dispatch.h"
#include "envelope.h"
#include "hk_err.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "test_hooks.h"
#include "transport.h"
#include "wire.h"

#define RECV_TIMEOUT_MS 200
#define MAX_OBJECTS	(1 << 22)

static atomic_int stopping;

struct worker {
	pthread_t	      thread;
	struct server	     *sv;
	struct transport     *tr;
	struct token_session *s;
	unsigned int	      id;
};

/* ---- the request pipeline -------------------------------------------- */

/* A reply that could not be authenticated: status and message, no MAC. */
static int
reply_plain(const uint8_t *nonce, size_t nonce_len, int r, const char *message,
    uint8_t **replyp, size_t *lenp)
{
	Hsmkey__V1__ResponseEnvelope re = HSMKEY__V1__RESPONSE_ENVELOPE__INIT;
	uint8_t			    *body = NULL;
	size_t			     blen;
	int			     rv;

	if ((rv = dispatch_error(
		 hk_status_from_err(r), message, &body, &blen)) != 0) {
		return rv;
	}
	re.protocol = HK_PROTOCOL_VERSION;
	re.nonce.data = (uint8_t *)nonce;
	re.nonce.len = nonce_len;
	re.response.data = body;
	re.response.len = blen;
	rv = hk_encode(&re.base, replyp, lenp);
	free(body);
	return rv;
}

/* Wraps body in a ResponseEnvelope MACed with the request's day key. */
static int
reply_sealed(const uint8_t *daykey, const uint8_t *nonce, const uint8_t *body,
    size_t blen, uint8_t **replyp, size_t *lenp)
{
	Hsmkey__V1__ResponseEnvelope re = HSMKEY__V1__RESPONSE_ENVELOPE__INIT;
	uint8_t			     mac[HK_MAC_LEN];
	int			     r;

	if ((r = hk_mac_response(daykey, HK_PROTOCOL_VERSION, nonce,
		 HK_NONCE_LEN, body, blen, mac)) != 0) {
		return r;
	}
	re.protocol = HK_PROTOCOL_VERSION;
	re.nonce.data = (uint8_t *)nonce;
	re.nonce.len = HK_NONCE_LEN;
	re.response.data = (uint8_t *)body;
	re.response.len = blen;
	re.mac.data = mac;
	re.mac.len = HK_MAC_LEN;
	return hk_encode(&re.base, replyp, lenp);
}

static int
envelope_shape(const Hsmkey__V1__Envelope *env, const char **whyp)
{
	if (env->protocol != HK_PROTOCOL_VERSION) {
		*whyp = "unsupported protocol version: this service speaks 1";
		return HK_ERR_PROTOCOL;
	}
	if (!hk_valid_client_id(env->client_id)) {
		*whyp = "invalid client id in the envelope";
		return HK_ERR_INVALID;
	}
	if (env->nonce.len != HK_NONCE_LEN) {
		*whyp = "the envelope's nonce must be 16 bytes";
		return HK_ERR_INVALID;
	}
	if (env->mac.len != HK_MAC_LEN) {
		*whyp = "the envelope's MAC must be 32 bytes";
		return HK_ERR_UNAUTHENTICATED;
	}
	return 0;
}

/* 1 if the UTC day of ts is yesterday, today or tomorrow. */
static int
near_today(uint64_t ts, uint64_t now)
{
	uint64_t day = ts / 86400000, today = now / 86400000;

	return day + 1 >= today && day <= today + 1;
}

/* Checks the MAC with the day key of the client's secret. */
static int
check_mac(const Hsmkey__V1__Envelope *env, const uint8_t *daykey)
{
	uint8_t mac[HK_MAC_LEN];
	int	r;

	if ((r = hk_mac_request(daykey, env->protocol, env->client_id,
		 env->secret_no, env->nonce.data, env->nonce.len,
		 env->timestamp_ms, env->request.data, env->request.len,
		 mac)) == 0) {
		r = hk_mac_cmp(mac, env->mac.data, HK_MAC_LEN);
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	return r;
}

/* Appends s to buf (cap bytes), cutting it if it does not fit. */
static void
strcat_safe(char *buf, size_t cap, const char *s)
{
	size_t n = strlen(buf);

	if (n < cap) {
		snprintf(buf + n, cap - n, "%s", s);
	}
}

/* ---- replies that wait for their audit line ---------------------------- */

/* What a request whose audit line fails gets instead of its reply. */
enum audit_failure {
	AF_SAME = 0, /* its own reply (a denial stays a denial) */
	AF_SIGN,     /* UNAVAILABLE, no signature */
	AF_CHANGE,   /* UNAVAILABLE, "was done but not audited" */
};

/*
 * A reply whose request is audited: it is sent (and kept in the nonce
 * cache) only once the audit line is durable, by the audit writer thread
 * (group commit), so that a worker goes on with the next request in the
 * meantime.  When the line cannot be written, an UNAVAILABLE reply that
 * says why is sealed and sent instead (no signature).
 */
struct pending {
	struct server	    *sv;
	struct transport    *tr;
	struct transport_msg m; /* owned: routing header */
	struct client	    *cl;
	uint8_t		     nonce[HK_NONCE_LEN];
	uint8_t		     daykey[HK_MAC_LEN];
	struct nonce_entry  *cached; /* to store the reply in, or NULL */
	enum audit_failure   failure;
	uint8_t		    *ok;
	size_t		     oklen;
	const char	    *op; /* static */
	struct timespec	     t0;
};

static void
pending_free(struct pending *p)
{
	if (p->ok != NULL) {
		OPENSSL_cleanse(p->ok, p->oklen); /* may hold a secret */
		free(p->ok);
	}
	OPENSSL_cleanse(p->daykey, sizeof(p->daykey));
	transport_msg_free(&p->m);
	free(p);
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

/* A reply to an authenticated request: MACed with the day key (or plain
 * with the benchmark switch). */
static int
seal(struct server *sv, const uint8_t *daykey, const uint8_t *nonce,
    const uint8_t *body, size_t blen, uint8_t **replyp, size_t *lenp)
{
	Hsmkey__V1__ResponseEnvelope re = HSMKEY__V1__RESPONSE_ENVELOPE__INIT;

	(void)sv;
	if (!test_hooks_skip_auth()) {
		return reply_sealed(daykey, nonce, body, blen, replyp, lenp);
	}
	re.protocol = HK_PROTOCOL_VERSION;
	re.nonce.data = (uint8_t *)nonce;
	re.nonce.len = HK_NONCE_LEN;
	re.response.data = (uint8_t *)body;
	re.response.len = blen;
	return hk_encode(&re.base, replyp, lenp);
}

/* The reply of p's request when its audit line could not be written: the
 * writer's reason, now. */
static int
failed_reply(struct pending *p, uint8_t **replyp, size_t *lenp)
{
	char	 why[PATH_MAX + 160], msg[PATH_MAX + 320];
	uint8_t *body = NULL;
	size_t	 blen;
	int	 r;

	if (audit_ready(p->sv->audit, why, sizeof(why))) {
		snprintf(why, sizeof(why),
		    "audit log %s cannot be written "
		    "(see the service log)",
		    p->sv->cfg->audit_path);
	}
	if (p->failure == AF_CHANGE) {
		snprintf(msg, sizeof(msg),
		    "%s; the %s was done but is not in "
		    "the audit log",
		    why, p->op);
	} else {
		snprintf(
		    msg, sizeof(msg), "%s; no signature was returned", why);
	}
	if ((r = dispatch_error(HSMKEY__V1__STATUS__STATUS_UNAVAILABLE, msg,
		 &body, &blen)) != 0) {
		return r;
	}
	r = seal(p->sv, p->daykey, p->nonce, body, blen, replyp, lenp);
	free(body);
	return r;
}

/* Called by the audit writer once the line is durable (r 0) or not. */
static void
pending_done(void *arg, int r)
{
	struct pending *p = arg;
	uint8_t	       *failed = NULL;
	const uint8_t  *reply = p->ok;
	size_t		len = p->oklen, flen = 0;

	if (r != 0 && p->failure != AF_SAME) {
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
	if (p->tr != NULL && reply != NULL) {
		transport_send(p->tr, &p->m, reply, len);
	}
	observe(p->sv, p->op, &p->t0);
	free(failed);
	pending_free(p);
}

/*
 * Logs ev and hands the reply *replyp on (or an UNAVAILABLE one when the
 * log cannot be written and failure says so).  With a transport the reply
 * is sent later by the audit writer: *replyp becomes NULL and m is taken
 * over.  Without one (server_handle()), waits for the line.
 */
static int
audited_reply(struct server *sv, const struct audit_event *ev,
    struct transport *tr, struct transport_msg *m, struct client *cl,
    const uint8_t *nonce, const uint8_t *daykey, struct nonce_entry *cached,
    enum audit_failure failure, const char *op, const struct timespec *t0,
    uint8_t **replyp, size_t *lenp)
{
	struct pending *p;
	uint8_t	       *failed = NULL;
	size_t		flen = 0;
	int		r;

	if ((p = calloc(1, sizeof(*p))) == NULL) {
		return HK_ERR_NOMEM;
	}
	p->sv = sv;
	p->cl = cl;
	p->op = op;
	p->t0 = *t0;
	p->failure = failure;
	memcpy(p->nonce, nonce, HK_NONCE_LEN);
	memcpy(p->daykey, daykey, HK_MAC_LEN);
	if (tr == NULL) {
		/* synchronous: wait here; the caller stores and observes */
		r = audit_log(sv->audit, ev);
		if (r != 0 && failure != AF_SAME) {
			OPENSSL_cleanse(*replyp, *lenp);
			free(*replyp);
			*replyp = NULL;
			*lenp = 0;
			if ((r = failed_reply(p, &failed, &flen)) == 0) {
				*replyp = failed;
				*lenp = flen;
			}
		}
		pending_free(p);
		return r == HK_ERR_UNAVAILABLE ? 0 : r;
	}
	p->tr = tr;
	p->ok = *replyp;
	p->oklen = *lenp;
	p->cached = cached;
	p->m = *m;
	memset(m, 0, sizeof(*m));
	*replyp = NULL;
	*lenp = 0;
	if ((r = audit_submit(sv->audit, ev, pending_done, p)) != 0) {
		/* too many waiting: the failure reply, now */
		log_err_r(r, "audit: event not queued");
		pending_done(p, HK_ERR_UNAVAILABLE);
	}
	return 0;
}

static int handle(struct server *, struct token_session *, struct transport *,
    struct transport_msg *, const uint8_t *, size_t, uint8_t **, size_t *);

int
server_handle(struct server *sv, struct token_session *s, const uint8_t *msg,
    size_t len, uint8_t **replyp, size_t *lenp)
{
	return handle(sv, s, NULL, NULL, msg, len, replyp, lenp);
}

int
server_handle_msg(struct server *sv, struct token_session *s,
    struct transport *tr, struct transport_msg *m, uint8_t **replyp,
    size_t *lenp)
{
	return handle(sv, s, tr, m, m->body, m->len, replyp, lenp);
}

/*
 * The pipeline.  Every state change, denial, unauthenticated or replayed
 * request and (with [audit] signs) every sign is audited before its reply
 * goes out: see audited_reply().
 */
static int
handle(struct server *sv, struct token_session *s, struct transport *tr,
    struct transport_msg *m, const uint8_t *msg, size_t len, uint8_t **replyp,
    size_t *lenp)
{
	struct audit_event     ev;
	struct timespec	       t0;
	enum audit_failure     failure = AF_SAME;
	const char	      *mop = "malformed";
	int		       audit = 0, denial = 0, changes = 0;
	Hsmkey__V1__Envelope  *env = NULL;
	Hsmkey__V1__Request   *req = NULL;
	struct dispatch_ctx    ctx;
	struct dispatch_result res;
	struct client	      *cl = NULL;
	token_obj_t	       key = TOKEN_OBJ_NONE;
	uint8_t		       daykey[HK_MAC_LEN], *body = NULL;
	size_t		       blen;
	uint64_t	       now = hk_now_ms(), skew, used_ms = 0;
	const char	      *why = NULL;
	char		       msgbuf[PATH_MAX + 256];
	struct nonce_entry    *cached = NULL;
	int		       r;

	*replyp = NULL;
	*lenp = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&ev, 0, sizeof(ev));
	memset(&res, 0, sizeof(res));
	memset(daykey, 0, sizeof(daykey));
	if ((r = hk_decode_strict(&hsmkey__v1__envelope__descriptor, msg, len,
		 (ProtobufCMessage **)&env)) != 0) {
		log_info("malformed envelope (%zu bytes) dropped with an "
			 "error reply",
		    len);
		observe(sv, mop, &t0);
		return reply_plain(NULL, 0, HK_ERR_DECODE,
		    "malformed "
		    "request envelope",
		    replyp, lenp);
	}
	ev.client = hk_valid_client_id(env->client_id) ? env->client_id : "?";
	ev.secret = env->secret_no;
	ev.key = "";
	ev.nonce = env->nonce.data;
	ev.nonce_len = env->nonce.len;
	ev.op = "unauthenticated";
	ev.status = HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED;
	if ((r = envelope_shape(env, &why)) != 0) {
		log_info("bad envelope from '%s': %s",
		    hk_valid_client_id(env->client_id) ? env->client_id : "?",
		    why);
		r = reply_plain(
		    env->nonce.data, env->nonce.len, r, why, replyp, lenp);
		goto out;
	}
	/* 1. MAC with the client's secret, kept in the token */
	if (test_hooks_skip_auth()) {
		goto authenticated;
	}
	if ((r = clients_secret(sv->clients, env->client_id, env->secret_no,
		 now, &cl, &key, &why)) != 0) {
		log_warnx("unauthenticated request from client '%s' secret "
			  "%" PRIu32 ": %s",
		    env->client_id, env->secret_no, why);
		snprintf(msgbuf, sizeof(msgbuf),
		    "request not authenticated: "
		    "%s (client '%s', secret %" PRIu32 ")",
		    why, env->client_id, env->secret_no);
		r = reply_plain(env->nonce.data, env->nonce.len,
		    HK_ERR_UNAUTHENTICATED, msgbuf, replyp, lenp);
		mop = "unauthenticated";
		audit = 1;
		goto out;
	}
	/* the replay cache is read after the MAC: let its memory load now */
	nonce_cache_prefetch(sv->nonces, cl, env->nonce.data);
	/* only the days around today can pass the clock check later: do no
	 * token work for any other (at most three day keys per secret) */
	if (!near_today(env->timestamp_ms, now)) {
		log_warnx("client '%s': timestamp a day or more off",
		    env->client_id);
		r = reply_plain(env->nonce.data, env->nonce.len,
		    HK_ERR_UNAUTHENTICATED,
		    "request not authenticated: "
		    "timestamp is a day or more off the service clock",
		    replyp, lenp);
		mop = "unauthenticated";
		audit = denial = 1;
		goto out;
	}
	if ((r = clients_day_key(cl, s, env->secret_no, key,
		 hk_mac_day(env->timestamp_ms), daykey)) != 0 ||
	    (r = check_mac(env, daykey)) != 0) {
		if (r != HK_ERR_MAC) {
			log_err_r(r, "cannot check the MAC of client '%s'",
			    env->client_id);
			r = reply_plain(env->nonce.data, env->nonce.len,
			    HK_ERR_UNAVAILABLE,
			    "the token cannot check MACs "
			    "now; try again",
			    replyp, lenp);
			goto out;
		}
		log_warnx("bad MAC from client '%s' secret %" PRIu32,
		    env->client_id, env->secret_no);
		clients_denied(cl);
		r = reply_plain(env->nonce.data, env->nonce.len,
		    HK_ERR_UNAUTHENTICATED,
		    "request not authenticated: MAC "
		    "does not verify (wrong secret, or the request was "
		    "altered)",
		    replyp, lenp);
		mop = "unauthenticated";
		audit = denial = 1;
		goto out;
	}
	/* 2. clock window, and nothing from before this process started */
	skew = env->timestamp_ms > now ? env->timestamp_ms - now
				       : now - env->timestamp_ms;
	if (skew > sv->cfg->clock_window_ms ||
	    env->timestamp_ms < sv->start_ms) {
		if (env->timestamp_ms < sv->start_ms &&
		    skew <= sv->cfg->clock_window_ms) {
			snprintf(msgbuf, sizeof(msgbuf),
			    "request not "
			    "authenticated: its timestamp is older than the "
			    "service's start");
		} else {
			snprintf(msgbuf, sizeof(msgbuf),
			    "request not "
			    "authenticated: timestamp is %" PRIu64
			    " ms %s the "
			    "service clock (window %" PRIu64 " s)",
			    skew,
			    env->timestamp_ms > now ? "ahead of" : "behind",
			    sv->cfg->clock_window_ms / 1000);
		}
		log_warnx("client '%s': %s", env->client_id, msgbuf + 27);
		clients_denied(cl);
		r = dispatch_error(
		    hk_status_from_err(HK_ERR_CLOCK), msgbuf, &body, &blen);
		if (r == 0) {
			r = reply_sealed(
			    daykey, env->nonce.data, body, blen, replyp, lenp);
		}
		mop = "unauthenticated";
		audit = denial = 1;
		goto out;
	}
	/* 3. nonce: the same bytes get the same reply, others a REPLAY.
	 * The verified MAC stands for the request's bytes: it covers every
	 * field of the envelope but itself, and the envelope re-encodes to
	 * exactly what was received. */
	r = nonce_cache_begin(sv->nonces, cl, client_nonce_count(cl),
	    env->nonce.data, env->mac.data, env->timestamp_ms, now, &cached,
	    replyp, lenp);
	switch (r) {
	case NONCE_NEW:
		break;
	case NONCE_ANSWERED:
		log_debug("client '%s': resent request answered from the "
			  "cache",
		    env->client_id);
		mop = "resent";
		r = 0;
		goto out;
	case NONCE_IN_FLIGHT:
		/* its first execution answers it */
		mop = "resent";
		r = 0;
		goto out;
	case HK_ERR_REPLAY:
		log_warnx(
		    "replay from client '%s': nonce reused", env->client_id);
		clients_denied(cl);
		if ((r = dispatch_error(hk_status_from_err(HK_ERR_REPLAY),
			 "request rejected: its nonce was already used", &body,
			 &blen)) == 0) {
			r = reply_sealed(
			    daykey, env->nonce.data, body, blen, replyp, lenp);
		}
		mop = ev.op = "replay";
		ev.status = HSMKEY__V1__STATUS__STATUS_REPLAY;
		audit = denial = 1;
		goto out;
	default:
		log_warnx("client '%s': nonce cache full, request refused",
		    env->client_id);
		if ((r = dispatch_error(hk_status_from_err(HK_ERR_EXHAUSTED),
			 "too many requests in the clock window: slow down",
			 &body, &blen)) == 0) {
			r = reply_sealed(
			    daykey, env->nonce.data, body, blen, replyp, lenp);
		}
		mop = ev.op = "rate-limited";
		ev.status = HSMKEY__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
		audit = denial = 1;
		goto out;
	}
	used_ms = now; /* the secret was used: its request passed */
authenticated:
	/* 4. only now parse the request, strictly */
	if (hk_decode_strict(&hsmkey__v1__request__descriptor,
		env->request.data, env->request.len,
		(ProtobufCMessage **)&req) != 0) {
		r = dispatch_error(hk_status_from_err(HK_ERR_DECODE),
		    "malformed request", &body, &blen);
	} else if ((mop = dispatch_op_name(req, &changes)) != NULL &&
	    changes && !audit_ready(sv->audit, msgbuf, sizeof(msgbuf) - 24)) {
		/* fail closed: a change that cannot be audited is not made */
		log_warnx("client '%s': %s refused: the audit log cannot be "
			  "written",
		    env->client_id, mop);
		strcat_safe(msgbuf, sizeof(msgbuf), "; nothing was done");
		r = dispatch_error(HSMKEY__V1__STATUS__STATUS_UNAVAILABLE,
		    msgbuf, &body, &blen);
	} else {
		ctx.sv = sv;
		ctx.s = s;
		ctx.client = cl;
		r = dispatch(&ctx, req, &body, &blen, &res);
		ev.op = res.op;
		ev.key = res.key;
		ev.version = res.version;
		ev.items = res.items;
		ev.status = res.status;
		ev.sigs = res.has_sigs ? res.sigs : NULL;
		denial =
		    res.status == HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED;
		audit = res.changes_state || denial ||
		    (strcmp(res.op, "sign") == 0 && audit_signs(sv->audit));
		/* a sign or change whose line fails gets UNAVAILABLE */
		if (res.status == HSMKEY__V1__STATUS__STATUS_OK) {
			failure = res.changes_state ? AF_CHANGE
			    : res.has_sigs	    ? AF_SIGN
						    : AF_SAME;
		}
	}
	if (r != 0) {
		goto out;
	}
	if (cached != NULL) {
		/* the reply's MAC hides the wait for the entry's memory */
		nonce_cache_prefetch_reply(cached);
	}
	r = seal(sv, daykey, env->nonce.data, body, blen, replyp, lenp);
out:
	if (cl != NULL && env != NULL) {
		clients_secret_count(
		    sv->clients, cl, env->secret_no, denial, used_ms);
	}
	if (r == 0 && audit && *replyp != NULL && sv->audit != NULL) {
		r = audited_reply(sv, &ev, tr, m, cl, env->nonce.data, daykey,
		    cached, failure, mop, &t0, replyp, lenp);
		if (r == 0 && tr != NULL) {
			cached = NULL; /* pending_done() stores the reply */
			mop = NULL;    /* and observes the time */
		} else if (r != 0 && *replyp != NULL) {
			/* fail closed: never a reply that was not audited */
			OPENSSL_cleanse(*replyp, *lenp);
			free(*replyp);
			*replyp = NULL;
			*lenp = 0;
		}
	}
	if (mop != NULL) {
		observe(sv, mop, &t0);
	}
	OPENSSL_cleanse(daykey, sizeof(daykey));
	if (cached != NULL) {
		nonce_cache_finish(sv->nonces, cached, r == 0 ? *replyp : NULL,
		    r == 0 ? *lenp : 0);
	}
	if (body != NULL) {
		OPENSSL_cleanse(body, blen); /* may hold a new secret */
		free(body);
	}
	if (req != NULL) {
		protobuf_c_message_free_unpacked(&req->base, NULL);
	}
	if (env != NULL) {
		protobuf_c_message_free_unpacked(&env->base, NULL);
	}
	return r;
}

/* ---- workers ---------------------------------------------------------- */

static void *
worker_main(void *arg)
{
	struct worker	    *w = arg;
	struct transport_msg m;
	uint8_t		    *reply;
	size_t		     len;
	int		     r;

	while (!atomic_load(&stopping)) {
		if ((r = transport_recv(w->tr, &m)) != 0) {
			if (r == HK_ERR_UNAVAILABLE) {
				break;
			}
			continue;
		}
		r = server_handle_msg(w->sv, w->s, w->tr, &m, &reply, &len);
		if (r != 0) {
			log_err_r(r, "worker %u: request failed", w->id);
			if (reply_plain(NULL, 0, HK_ERR_INTERNAL,
				"internal "
				"error: see the service log",
				&reply, &len) != 0) {
				reply = NULL;
			}
		}
		if (reply != NULL) {
			transport_send(w->tr, &m, reply, len);
			free(reply);
		}
		transport_msg_free(&m);
	}
	return NULL;
}

struct ticker {
	pthread_t	      thread;
	struct server	     *sv;
	struct token_session *s;
};

static void *
ticker_main(void *arg)
{
	struct ticker *t = arg;
	int	       i;

	while (!atomic_load(&stopping)) {
		keyring_tick(t->sv->kr, t->s, hk_now_ms(), &stopping);
		nonce_cache_sweep(t->sv->nonces, hk_now_ms());
		for (i = 0; i < 10 && !atomic_load(&stopping); i++) {
			usleep(100 * 1000);
		}
	}
	return NULL;
}

/* ---- start-up --------------------------------------------------------- */

static void
sanitise_fds(void)
{
	int fd;

	/* make sure 0, 1 and 2 are open so no socket or file lands there */
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2) {
		;
	}
	if (fd > 2) {
		close(fd);
	}
}

/* No core files and no ptrace attach by the same user: the process holds
 * day keys and replies with new secrets.  Refuses to run otherwise. */
static int
harden(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) != 0) {
		log_warn("setrlimit(RLIMIT_CORE)");
		return HK_ERR_SYSTEM;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 ||
	    prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) {
		log_warn("prctl(PR_SET_DUMPABLE)");
		return HK_ERR_SYSTEM;
	}
	return 0;
}

/* Creates the directories of ipc endpoints with mode 0750. */
static int
make_ipc_dirs(const struct config *cfg)
{
	char   dir[PATH_MAX], *slash;
	size_t i;

	for (i = 0; i < cfg->nlisten; i++) {
		if (strncmp(cfg->listen[i], "ipc://", 6) != 0) {
			continue;
		}
		if (snprintf(dir, sizeof(dir), "%s", cfg->listen[i] + 6) >=
		    (int)sizeof(dir)) {
			return HK_ERR_CONFIG;
		}
		if ((slash = strrchr(dir, '/')) == NULL || slash == dir) {
			continue;
		}
		*slash = '\0';
		if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
			log_warn("mkdir %s", dir);
			return HK_ERR_SYSTEM;
		}
	}
	return 0;
}

/* Opens the token and loads keys and clients: shared by run and
 * bootstrap. */
static int
server_open(
    struct server *sv, const struct config *cfg, struct token_session **sp)
{
	struct token_object *objs = NULL;
	size_t		     nobjs = 0;
	struct keyring_opts  ko;
	char		     host[HOST_NAME_MAX + 1], instance[256];
	int		     r;

	memset(sv, 0, sizeof(*sv));
	*sp = NULL;
	sv->cfg = cfg;
	sv->start_ms = hk_now_ms();
	if ((r = token_open(
		 &sv->tok, cfg->module, cfg->token_uri, cfg->pin_file)) != 0) {
		log_err_r(r, "cannot open the token %s", cfg->token_uri);
		return r;
	}
	if ((r = token_session_open(sv->tok, sp)) != 0) {
		log_err_r(r, "cannot open a token session");
		return r;
	}
	if ((r = token_list_all(*sp, "hsmkey", MAX_OBJECTS, &objs, &nobjs)) !=
	    0) {
		log_err_r(r, "cannot list the token's objects");
		free(objs);
		return r;
	}
	if (gethostname(host, sizeof(host)) != 0) {
		snprintf(host, sizeof(host), "localhost");
	}
	host[sizeof(host) - 1] = '\0';
	snprintf(instance, sizeof(instance), "%s/%ld/%" PRIu64, host,
	    (long)getpid(), sv->start_ms);
	memset(&ko, 0, sizeof(ko));
	ko.destroy_delay_s = cfg->destroy_delay_s;
	ko.default_verify_grace_s = cfg->default_verify_grace_s;
	ko.instance = instance;
	if ((r = keyring_load(&sv->kr, sv->tok, *sp, objs, nobjs, &ko)) != 0) {
		log_err_r(r, "cannot load the keys");
	} else if ((r = clients_load(&sv->clients, *sp, objs, nobjs,
			cfg->secret_lifetime_s)) != 0) {
		log_err_r(r, "cannot load the clients");
	}
	free(objs);
	return r;
}

static void
server_close(struct server *sv, struct token_session *s)
{
	nonce_cache_free(sv->nonces);
	clients_free(sv->clients);
	keyring_free(sv->kr);
	token_session_close(s);
	token_close(sv->tok);
	memset(sv, 0, sizeof(*sv));
}

static long
socket_gid(const struct config *cfg)
{
	struct group *gr;

	if (cfg->socket_group == NULL) {
		return -1;
	}
	if ((gr = getgrnam(cfg->socket_group)) == NULL) {
		log_warnx("unknown socket_group %s", cfg->socket_group);
		return -2;
	}
	return (long)gr->gr_gid;
}

int
server_run(const struct config *cfg, int foreground)
{
	struct server	      sv;
	struct token_session *s0 = NULL;
	struct worker	     *w = NULL;
	struct ticker	      tk;
	struct transport     *tr = NULL;
	sigset_t	      set;
	unsigned int	      i, started = 0;
	long		      gid;
	int		      r, sig, ticking = 0;

	memset(&tk, 0, sizeof(tk));
	sanitise_fds();
	if ((r = harden()) != 0) {
		return r;
	}
	if ((gid = socket_gid(cfg)) == -2) {
		return HK_ERR_CONFIG;
	}
	if ((r = make_ipc_dirs(cfg)) != 0) {
		return r;
	}
	if (!foreground && daemon(0, 0) != 0) {
		log_warn("daemon");
		return HK_ERR_SYSTEM;
	}
	/* PKCS#11 only after any fork */
	if ((r = server_open(&sv, cfg, &s0)) != 0) {
		server_close(&sv, s0);
		return r;
	}
	sv.workers = cfg->workers;
	if (sv.workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		sv.workers = n > 0 && n < 256 ? (unsigned int)n : 2;
	}
	if ((r = nonce_cache_new(&sv.nonces, cfg->clock_window_ms,
		 cfg->nonce_per_client, cfg->nonce_total,
		 cfg->reply_cache_bytes)) != 0) {
		goto out;
	}
	if ((r = metrics_new(&sv.metrics)) != 0 ||
	    (r = audit_open(&sv.audit, cfg, sv.tok, sv.kr, s0)) != 0) {
		goto out;
	}
	/* signals go to this thread only, via sigwait() */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* a file size limit fails the audit write (EFBIG, fail closed)
	 * instead of killing the service */
	signal(SIGXFSZ, SIG_IGN);

	if ((r = transport_open(&tr, cfg->listen, cfg->nlisten,
		 HK_MAX_MESSAGE + 4096, RECV_TIMEOUT_MS, gid)) != 0) {
		goto out;
	}
	if ((w = calloc(sv.workers, sizeof(*w))) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	for (i = 0; i < sv.workers; i++) {
		w[i].sv = &sv;
		w[i].tr = tr;
		w[i].id = i;
		if ((r = token_session_open(sv.tok, &w[i].s)) != 0) {
			log_err_r(r, "worker %u: cannot open a session", i);
			goto stop;
		}
		if ((r = pthread_create(
			 &w[i].thread, NULL, worker_main, &w[i])) != 0) {
			log_warnx("pthread_create: %s", strerror(r));
			token_session_close(w[i].s);
			w[i].s = NULL;
			r = HK_ERR_SYSTEM;
			goto stop;
		}
		started++;
	}
	tk.sv = &sv;
	tk.s = s0;
	if (pthread_create(&tk.thread, NULL, ticker_main, &tk) == 0) {
		ticking = 1;
	}
	if ((r = metrics_start(sv.metrics, &sv)) != 0) {
		goto stop;
	}
	log_info("ready: hsmkeyd %s, %u workers, token '%s'", HSMKEY_VERSION,
	    sv.workers, token_label(sv.tok));
	for (;;) {
		if (sigwait(&set, &sig) != 0) {
			continue;
		}
		if (sig == SIGHUP) {
			if (sv.audit != NULL) {
				log_info("SIGHUP: rotating the audit log");
				audit_rotate(sv.audit);
			} else {
				log_info("SIGHUP: no audit log to rotate");
			}
			continue;
		}
		log_info("signal %d: stopping", sig);
		break;
	}
	r = 0;
stop:
	/* workers finish the request in hand, then see the flag */
	atomic_store(&stopping, 1);
	for (i = 0; i < started; i++) {
		pthread_join(w[i].thread, NULL);
	}
	if (ticking) {
		pthread_join(tk.thread, NULL);
	}
	/* replies still waiting for the log go out before the transport
	 * closes; the log ends with a checkpoint */
	audit_close(sv.audit);
	sv.audit = NULL;
	metrics_stop(sv.metrics);
	for (i = 0; i < sv.workers && w != NULL; i++) {
		token_session_close(w[i].s);
	}
out:
	free(w);
	audit_close(sv.audit);
	sv.audit = NULL;
	transport_close(tr);
	metrics_free(sv.metrics);
	server_close(&sv, s0);
	if (r == 0) {
		log_info("stopped");
	}
	return r;
}

/* ---- bootstrap -------------------------------------------------------- */

int
server_bootstrap(
    const struct config *cfg, const char *id, const char *out_path)
{
	static char	     *grants[] = { "admin:*", "sign:*", "verify:*",
			 "pubkey:*" };
	struct server	      sv;
	struct token_session *s = NULL;
	uint8_t		      secret[HK_SECRET_LEN];
	char		     *b64 = NULL;
	uint64_t	      expires;
	uint32_t	      number;
	FILE		     *f = NULL;
	int		      fd = -1, r;

	sanitise_fds();
	if ((r = harden()) != 0) {
		return r;
	}
	if (!hk_valid_client_id(id)) {
		log_warnx("invalid client id '%s': use "
			  "[A-Za-z0-9][A-Za-z0-9._@-]{0,63}",
		    id);
		return HK_ERR_INVALID;
	}
	if ((r = server_open(&sv, cfg, &s)) != 0) {
		goto out;
	}
	if (cfg->audit_path != NULL && (r = audit_ensure_key(sv.kr, s)) != 0) {
		goto out;
	}
	if (clients_any_admin(sv.clients)) {
		log_warnx(
		    "an admin client exists already: bootstrap refused "
		    "(use 'hsmkey client add' with an admin credential)");
		r = HK_ERR_EXISTS;
		goto out;
	}
	/* the file first, so that a secret is never made and then lost */
	if ((fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		 0600)) < 0) {
		log_warn("cannot create %s", out_path);
		r = HK_ERR_SYSTEM;
		goto out;
	}
	if ((r = clients_add(sv.clients, s, id, grants,
		 sizeof(grants) / sizeof(grants[0]), secret, &number,
		 &expires)) != 0) {
		log_err_r(r, "cannot create client %s", id);
		goto out;
	}
	r = hk_base64_encode(secret, sizeof(secret), &b64);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (r != 0) {
		goto out;
	}
	if (fchmod(fd, 0600) != 0 || (f = fdopen(fd, "w")) == NULL) {
		log_warn("cannot write %s", out_path);
		r = HK_ERR_SYSTEM;
		goto out;
	}
	fd = -1;
	fprintf(f,
	    "# hsmkey credentials of client %s: keep this file "
	    "secret (mode 0600)\n[client]\nid = %s\nsecret = %s\n"
	    "secret_no = %" PRIu32 "\nconnect = %s\n",
	    id, id, b64, number, cfg->listen[0]);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		log_warn("cannot write %s", out_path);
		r = HK_ERR_SYSTEM;
		goto out;
	}
	log_info("created admin client %s; credentials in %s", id, out_path);
	r = 0;
out:
	if (b64 != NULL) {
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
	}
	if (f != NULL) {
		fclose(f);
	}
	if (fd >= 0) {
		close(fd);
		unlink(out_path);
	}
	if (r != 0 && f != NULL) {
		unlink(out_path);
	}
	server_close(&sv, s);
	return r;
}
