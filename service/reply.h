/*
 * reply.h: the last steps of a request: its reply sealed (MACed with the
 * request's day key, or plain for one that could not be authenticated),
 * and handed on: straight to the transport, or to the audit writer when
 * its audit line must be durable first (group commit).
 *
 * Every state change, denial, unauthenticated or replayed request and
 * (with [audit] signs) every sign is audited before its reply goes out;
 * when the line cannot be written, a sign gets UNAVAILABLE and no
 * signature, a change UNAVAILABLE "was done but is not in the audit log",
 * and a refusal stays what it was.
 *
 * Thread-safety: workers call these at once, each for its own request;
 * replies that wait for the log are sent from the audit writer's thread.
 */
#ifndef HK_REPLY_H
#define HK_REPLY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "audit.h"

struct auth;
struct server;
struct transport;
struct transport_msg;

/* What a request whose audit line fails gets instead of its reply. */
enum reply_failure {
	REPLY_FAIL_SAME = 0, /* its own reply (a denial stays a denial) */
	REPLY_FAIL_SIGN,     /* UNAVAILABLE, no signature */
	REPLY_FAIL_CHANGE,   /* UNAVAILABLE, "was done but not audited" */
};

/* How one request ends: its reply, and what the audit log must say. */
struct outcome {
	struct timespec	   t0;	   /* when it arrived (latency metric) */
	const char	  *op;	   /* the metric's label, static */
	int		   audit;  /* ev must be durable before the reply */
	int		   denial; /* it was refused */
	enum reply_failure failure;
	struct audit_event ev;
	char		   key[65];	       /* ev.key points here */
	char	 reason[HK_AUDIT_STR_MAX + 1]; /* ev.reason points here */
	uint8_t	 sigs[32];
	uint8_t *reply; /* owned; NULL: none to send */
	size_t	 len;
};

/* The start of the busy reply of a request whose reply would find no room
 * to wait for its audit line ([audit] max_waiting). */
#define REPLY_WAITING_FULL "busy: too many replies wait for the audit log"

/* 1 when replies waiting for their audit lines fill [audit] max_waiting:
 * a request that needs a line is refused before it runs. */
int reply_waiting_full(struct server *sv);

/* A Response with only status and message, sealed as the reply to a's
 * request (MACed once a's day key is known).  Caller must free *outp. */
int reply_error(const struct auth *a, int status, const char *message,
    uint8_t **outp, size_t *lenp);

/* The encoded Response body sealed as the reply to a's request.  Caller
 * must free *outp. */
int reply_seal(const struct auth *a, const uint8_t *body, size_t blen,
    uint8_t **outp, size_t *lenp);

/*
 * Sends o's reply on tr to the sender of m, stores it in the replay cache
 * for resends, and observes the latency: at once, or from the audit
 * writer once o->ev is durable when o->audit says so (then m and the
 * reply are taken over).  o->reply is NULL afterwards.
 */
void reply_deliver(struct server *sv, struct transport *tr,
    struct transport_msg *m, struct auth *a, struct outcome *o);

#endif /* HK_REPLY_H */
