/*
 * auth.h: from a received request envelope to an authenticated client, or
 * to the ready reply that answers it instead (PROTOCOL.md "What the
 * service checks, in order"):
 *
 *   envelope decodes strictly, its shape holds
 *   -> the timestamp's day is near today            UNAUTHENTICATED, unMACed
 *   -> the client and its secret are live          UNAUTHENTICATED, unMACed
 *      (secret_no 0: it has a live secret)
 *   -> the MAC verifies with that day's key         UNAUTHENTICATED, unMACed
 *      (secret_no 0: with one of its live secrets', every one tried)
 *   -> the timestamp is in the clock window         UNAUTHENTICATED, MACed
 *   -> the nonce is new (a resend gets its reply)   REPLAY / RESOURCE_EXHAUSTED
 *
 * Nothing of the request itself is parsed here: that is dispatch's, once
 * this module said the MAC holds.
 *
 * Thread-safety: any number of workers call auth_check() at once, each
 * with its own token session and struct auth.
 */
#ifndef HK_AUTH_H
#define HK_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "seal.h"

struct client;
struct nonce_entry;
struct server;
struct token_session;

enum auth_verdict {
	AUTH_PASSED = 0, /* a->client may run a->env->request */
	AUTH_REFUSED,	 /* a->reply is the error that answers it */
	AUTH_ANSWERED,	 /* a resend: a->reply is the stored reply */
	AUTH_IN_FLIGHT,	 /* a resend of a request still running: no reply */
};

/* One request's authentication; filled by auth_check(). */
struct auth {
	enum auth_verdict     verdict;
	Hsmkey__V1__Envelope *env;  /* NULL when it did not decode */
	struct client	   *client; /* NULL: unknown (or the skip-auth hook) */
	int		    maced;  /* daykey is set: replies are MACed */
	uint8_t		   *daykey; /* HK_MAC_LEN bytes, a hk_secmem slot */
	struct nonce_entry *cached; /* AUTH_PASSED: where its reply is kept */
	uint64_t	    used_ms; /* the secret passed every check at */
	/* the secret the request was made with: the one it named, or the
	 * one whose MAC matched a request that named none (secret_no 0);
	 * 0 when none is known.  reply_secret: the same for a request that
	 * named none (its reply says which matched, PROTOCOL.md), else 0 */
	uint32_t secret_no;
	uint32_t reply_secret;
	size_t	 tried; /* secret_no 0: how many live secrets were tried */
	/* how a request that did not pass ends: */
	const char *op;	    /* "unauthenticated", "replay", ... */
	int	    status; /* its wire status */
	int	    audit;  /* the refusal has its own audit line */
	const char *reason; /* or is counted (audit_refused()) as this */
	int	    denial; /* it counts as denied for its secret */
	uint8_t	   *reply;  /* AUTH_REFUSED, AUTH_ANSWERED */
	size_t	    reply_len;
};

/*
 * Checks the envelope msg at now_ms and fills *a (see enum auth_verdict).
 * Returns 0, or an error when no reply can be made at all (out of
 * memory).  Caller must auth_finish(a) after any call.
 */
int auth_check(struct server *sv, struct token_session *s, const uint8_t *msg,
    size_t len, uint64_t now_ms, struct auth *a);

/* Says how many refusals the service log left out (it takes a few a
 * second); the ticker calls it every second. */
void auth_tick(void);

/* Counts the request against its secret (denied: it was refused, here or
 * by dispatch), zeroes the day key and frees what *a holds (a->daykey
 * may have been handed on: then it is NULL). */
void auth_finish(struct server *sv, struct auth *a, int denied);

#endif /* HK_AUTH_H */
