/* auth.c: envelope -> authenticated client or ready refusal (see auth.h). */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "clients.h"
#include "envelope.h"
#include "hk_err.h"
#include "log.h"
#include "nonce.h"
#include "reply.h"
#include "secmem.h"
#include "server.h"
#include "testhooks.h"
#include "wire.h"

#define MSG_MAX 512

/* The one reply to every request that did not prove its sender: which of
 * client id, secret number or MAC was wrong goes to the log only. */
#define NOT_AUTHENTICATED                                               \
	"request not authenticated (unknown client or secret, expired " \
	"secret, or bad MAC: the service log says which)"

/* A MAC check that fails, as long as a real one: an unknown client or
 * secret takes as long to refuse as a wrong MAC. */
static const uint8_t no_key[HK_MAC_LEN];

/* Ends a with verdict AUTH_REFUSED and the error reply status/message. */
static int
refuse(struct auth *a, int err, const char *op, int audit, int denial,
    const char *message)
{
	a->verdict = AUTH_REFUSED;
	a->op = op;
	a->status = hk_status_from_err(err);
	a->audit = audit;
	a->denial = denial;
	if (denial && a->client != NULL) {
		clients_denied(a->client);
	}
	return reply_error(a, a->status, message, &a->reply, &a->reply_len);
}

/* A refusal that is counted, not audited line by line (audit_refused()):
 * one that anyone can send, with no secret, as often as they like. */
static int
refuse_counted(struct auth *a, int err, const char *op, const char *reason,
    int denial, const char *message)
{
	a->reason = reason;
	return refuse(a, err, op, 0, denial, message);
}

/* The client id of an envelope, fit for a log line. */
static const char *
env_client(const Hsmkey__V1__Envelope *env)
{
	return env != NULL && hk_valid_client_id(env->client_id)
	    ? env->client_id
	    : "?";
}

/*
 * The service log's lines about refused requests: at most LOG_BURST a
 * second, then one line saying how many were left out.  Anyone can make
 * them, so they must not fill a disk either.
 */
#define LOG_BURST 10

static struct {
	pthread_mutex_t lock;
	uint64_t	second, lines, dropped;
} loglim = { PTHREAD_MUTEX_INITIALIZER, 0, 0, 0 };

/* 1 when a line may be written now; then *skipped: how many were left out
 * before it.  Called with loglim.lock held. */
static int
log_allowed(uint64_t now_s, uint64_t *skipped)
{
	if (now_s != loglim.second) {
		loglim.second = now_s;
		loglim.lines = 0;
	}
	*skipped = 0;
	if (loglim.lines >= LOG_BURST) {
		loglim.dropped++;
		return 0;
	}
	loglim.lines++;
	*skipped = loglim.dropped;
	loglim.dropped = 0;
	return 1;
}

void
auth_tick(void)
{
	uint64_t now_s = hk_mono_ms() / 1000, skipped = 0;

	/* only once the second that left them out is over */
	pthread_mutex_lock(&loglim.lock);
	if (now_s != loglim.second && loglim.dropped > 0) {
		(void)log_allowed(now_s, &skipped);
	}
	pthread_mutex_unlock(&loglim.lock);
	if (skipped > 0) {
		log_warnx("%" PRIu64 " more refusals not logged", skipped);
	}
}

static void
refused_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
refused_log(const char *fmt, ...)
{
	char	 line[MSG_MAX];
	uint64_t skipped;
	va_list	 ap;
	int	 ok;

	pthread_mutex_lock(&loglim.lock);
	ok = log_allowed(hk_mono_ms() / 1000, &skipped);
	pthread_mutex_unlock(&loglim.lock);
	if (!ok) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (skipped > 0) {
		log_warnx("%s (%" PRIu64 " more refusals not logged)", line,
		    skipped);
	} else {
		log_warnx("%s", line);
	}
}

/* 1 if the UTC day of ts is yesterday, today or tomorrow. */
static int
near_today(uint64_t ts, uint64_t now)
{
	uint64_t day = ts / 86400000, today = now / 86400000;

	return day + 1 >= today && day <= today + 1;
}

/* The end of step 1 once the MAC was computed (r: 0 when it held). */
static int
mac_verdict(struct auth *a, int r)
{
	const Hsmkey__V1__Envelope *env = a->env;

	if (r == HK_ERR_MAC) {
		refused_log("bad MAC from client '%s' %s %" PRIu32,
		    env->client_id,
		    env->secret_no != 0 ? "secret" : "(no secret named), live",
		    env->secret_no != 0 ? env->secret_no : (uint32_t)a->tried);
		return refuse_counted(a, HK_ERR_UNAUTHENTICATED,
		    "unauthenticated", "bad-mac", 1, NOT_AUTHENTICATED);
	}
	if (r != 0) {
		log_err_r(
		    r, "cannot check the MAC of client '%s'", env->client_id);
		return refuse_counted(a, HK_ERR_UNAVAILABLE, "unauthenticated",
		    "token", 0, "the token cannot check MACs now; try again");
	}
	a->maced = 1; /* from here on, refusals are MACed */
	return 0;
}

/* A request whose client or secret is not there (why says which), refused
 * after a MAC check as long as a real one. */
static int
no_secret(struct auth *a, const char *why)
{
	const Hsmkey__V1__Envelope *env = a->env;

	(void)hk_check_request(env, no_key);
	refused_log("unauthenticated request from client '%s' secret "
		    "%" PRIu32 "%s: %s",
	    env_client(env), env->secret_no,
	    env->secret_no == 0 ? " (none named)" : "", why);
	return refuse_counted(a, HK_ERR_UNAUTHENTICATED, "unauthenticated",
	    why, 0, NOT_AUTHENTICATED);
}

/*
 * Step 1 of a request that names no secret (secret_no 0, PROTOCOL.md):
 * its MAC is checked with the day key of every live secret of the client
 * (a few: CLIENTS_MAX_SECRETS), all of them whichever matches, and the
 * match is taken with masks, not branches, so that the time tells nothing
 * of which secret made it.  It grows with how many live secrets the client
 * has (an unknown client takes as long as one with a single secret): no
 * secret, and padding to CLIENTS_MAX_SECRETS checks cost 9% of sign
 * throughput against 2% (tests/auth_bench.sh, HK_AUTH_BENCH_UNNAMED).  The
 * reply says which secret matched (a->reply_secret).
 */
static int
check_any_secret(
    struct server *sv, struct token_session *s, struct auth *a, uint64_t now)
{
	const Hsmkey__V1__Envelope *env = a->env;
	struct clients_key	    keys[CLIENTS_MAX_SECRETS];
	const char		   *why = NULL;
	uint32_t		    day = hk_mac_day(env->timestamp_ms);
	uint32_t		    matched = 0, mask;
	uint8_t			   *dk, m8;
	size_t			    i, j, n = 0;
	int			    r = 0;

	if (clients_live_secrets(sv->clients, env->client_id, now, &a->client,
		keys, &n, &why) != 0) {
		return no_secret(a, why);
	}
	nonce_cache_prefetch(sv->nonces, a->client, env->nonce.data);
	if ((a->daykey = hk_secmem_slot_alloc()) == NULL) {
		return HK_ERR_NOMEM;
	}
	if ((dk = hk_secmem_slot_alloc()) == NULL) {
		return HK_ERR_NOMEM;
	}
	memset(a->daykey, 0, HK_MAC_LEN);
	for (i = 0; i < n; i++) {
		if ((r = clients_day_key(a->client, s, keys[i].number,
			 keys[i].key, day, dk)) != 0) {
			break; /* the token's trouble, not the MAC's */
		}
		mask =
		    (uint32_t)0 - (uint32_t)(hk_check_request(env, dk) == 0);
		m8 = (uint8_t)mask;
		matched = (matched & ~mask) | (keys[i].number & mask);
		for (j = 0; j < HK_MAC_LEN; j++) {
			a->daykey[j] =
			    (uint8_t)((a->daykey[j] & ~m8) | (dk[j] & m8));
		}
	}
	hk_secmem_slot_free(dk);
	a->tried = n;
	log_debug("client '%s' named no secret: %zu tried, %" PRIu32
		  " matched",
	    env->client_id, n, matched);
	if (r == 0 && matched == 0) {
		r = HK_ERR_MAC;
	}
	a->secret_no = matched;
	a->reply_secret = matched;
	return mac_verdict(a, r);
}

/* Step 1: the client's secret, and the MAC with its day key. */
static int
check_secret_and_mac(
    struct server *sv, struct token_session *s, struct auth *a, uint64_t now)
{
	const Hsmkey__V1__Envelope *env = a->env;
	const char		   *why = NULL;
	token_obj_t		    key = TOKEN_OBJ_NONE;
	int			    r;

	a->secret_no = env->secret_no; /* 0: found below, if it matches */
	/* only the days around today can pass the clock check later: do no
	 * work for any other (at most three day keys per secret) */
	if (!near_today(env->timestamp_ms, now)) {
		refused_log("request from '%s': timestamp a day or more off",
		    env_client(env));
		return refuse_counted(a, HK_ERR_UNAUTHENTICATED,
		    "unauthenticated", "clock", 0,
		    "request not authenticated: timestamp is a day or more "
		    "off the service clock");
	}
	if (env->secret_no == 0) {
		return check_any_secret(sv, s, a, now);
	}
	if (clients_secret(sv->clients, env->client_id, env->secret_no, now,
		&a->client, &key, &why) != 0) {
		return no_secret(a, why);
	}
	/* the replay cache is read after the MAC: let its memory load now */
	nonce_cache_prefetch(sv->nonces, a->client, env->nonce.data);
	/* the day key is copied into locked memory only */
	if ((a->daykey = hk_secmem_slot_alloc()) == NULL) {
		return HK_ERR_NOMEM;
	}
	if ((r = clients_day_key(a->client, s, env->secret_no, key,
		 hk_mac_day(env->timestamp_ms), a->daykey)) == 0) {
		r = hk_check_request(env, a->daykey);
	}
	return mac_verdict(a, r);
}

/* Step 2: the clock window, and nothing from before this process. */
static int
check_clock(struct server *sv, struct auth *a, uint64_t now)
{
	uint64_t ts = a->env->timestamp_ms, window = sv->cfg->clock_window_ms;
	uint64_t skew = ts > now ? ts - now : now - ts;
	char	 msg[MSG_MAX];

	if (skew <= window && ts >= sv->start_ms) {
		return 0;
	}
	if (skew <= window) {
		snprintf(msg, sizeof(msg),
		    "request not authenticated: its timestamp is older than "
		    "the service's start");
	} else {
		snprintf(msg, sizeof(msg),
		    "request not authenticated: timestamp is %" PRIu64
		    " ms %s the service clock (window %" PRIu64 " s)",
		    skew, ts > now ? "ahead of" : "behind", window / 1000);
	}
	/* a captured request sent again later has a MAC that holds: anyone
	 * who saw it can do that, so it is counted like the others */
	refused_log("client '%s': %s", a->env->client_id, msg + 27);
	return refuse_counted(
	    a, HK_ERR_CLOCK, "unauthenticated", "clock", 1, msg);
}

/*
 * Step 3: the nonce.  The same bytes get the same reply, others a REPLAY.
 * The verified MAC stands for the request's bytes: it covers every field
 * of the envelope but itself, and the envelope re-encodes to exactly what
 * was received.
 */
static int
check_nonce(struct server *sv, struct auth *a, uint64_t now)
{
	const Hsmkey__V1__Envelope *env = a->env;
	int			    r;

	r = nonce_cache_begin(sv->nonces, a->client,
	    client_nonce_count(a->client), env->nonce.data, env->mac.data,
	    env->timestamp_ms, now, &a->cached, &a->reply, &a->reply_len);
	switch (r) {
	case NONCE_NEW:
		return 0;
	case NONCE_ANSWERED:
		log_debug("client '%s': resent request answered from the "
			  "cache",
		    env->client_id);
		a->verdict = AUTH_ANSWERED;
		a->op = "resent";
		return 0;
	case NONCE_IN_FLIGHT:
		/* its first execution answers it */
		a->verdict = AUTH_IN_FLIGHT;
		a->op = "resent";
		return 0;
	case HK_ERR_REPLAY:
		refused_log(
		    "replay from client '%s': nonce reused", env->client_id);
		return refuse_counted(a, HK_ERR_REPLAY, "replay", "replay", 1,
		    "request rejected: its nonce was already used");
	default:
		log_warnx("client '%s': nonce cache full, request refused",
		    env->client_id);
		return refuse(a, HK_ERR_EXHAUSTED, "rate-limited", 1, 1,
		    "too many requests in the clock window: slow down");
	}
}

int
auth_check(struct server *sv, struct token_session *s, const uint8_t *msg,
    size_t len, uint64_t now, struct auth *a)
{
	const char *why = NULL;
	int	    r;

	memset(a, 0, sizeof(*a)); /* AUTH_PASSED until a check refuses */
	if ((r = hk_open_request(msg, len, &a->env, &why)) != 0) {
		if (a->env == NULL) {
			refused_log("malformed envelope (%zu bytes) dropped "
				    "with an error reply",
			    len);
		} else {
			refused_log("bad envelope from '%s': %s",
			    env_client(a->env), why);
		}
		return refuse_counted(a, r, "malformed", "malformed", 0, why);
	}
	if (testhooks_skip_auth()) {
		return 0;
	}
	if ((r = check_secret_and_mac(sv, s, a, now)) != 0 ||
	    a->verdict != AUTH_PASSED || (r = check_clock(sv, a, now)) != 0 ||
	    a->verdict != AUTH_PASSED || (r = check_nonce(sv, a, now)) != 0 ||
	    a->verdict != AUTH_PASSED) {
		return r;
	}
	a->used_ms = now; /* the secret was used: its request passed */
	return 0;
}

void
auth_finish(struct server *sv, struct auth *a, int denied)
{
	if (a->client != NULL && a->env != NULL) {
		clients_secret_count(
		    sv->clients, a->client, a->secret_no, denied, a->used_ms);
	}
	hk_secmem_slot_free(a->daykey);
	nonce_reply_free(a->reply, a->reply_len); /* may hold a new secret */
	hk_envelope_free(a->env);
	memset(a, 0, sizeof(*a));
}
