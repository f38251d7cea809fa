/*
 * ops.h: the request handlers, one per request kind, and what they share.
 * dispatch.c's table names each handler; the dispatcher has checked the
 * key name or client id and the grant before a handler runs, so a handler
 * does neither.  A handler fills the Response in its dispatch_reply and
 * returns 0, or an hk_err after ops_fail() set the error status.
 *
 *   ops_service.c  ping, health, stats
 *   ops_sign.c     sign, verify, pubkey
 *   ops_keys.c     create, describe, list, rotate, promote, policy,
 *                  disable, destroy
 *   ops_clients.c  client add, rotate, revoke, list, grant
 *   ops_keyset.c   keyset (JSON Web Key Sets, signed or not)
 *
 * Thread-safe: each worker passes its own session and reply.
 */
#ifndef HK_OPS_H
#define HK_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "dispatch.h"
#include "hsmkey.pb-c.h"

/*
 * Everything a Response points to is registered in the reply's arena and
 * released after the Response is encoded.  Most replies hold a few items:
 * those live in the reply itself; a batch sign's grow on the heap.
 */
struct arena_item {
	void *p;
	void (*fn)(void *);
};

#define ARENA_INLINE 8

struct arena {
	struct arena_item  inl[ARENA_INLINE];
	struct arena_item *items;
	size_t		   n;
	size_t		   cap;
	int full; /* an item could not be kept: reply too large */
};

struct dispatch_reply {
	Hsmkey__V1__Response resp;
	struct arena	     arena;
	char		     msg[512];
	uint32_t	     version; /* for dispatch_result */
	uint32_t	     items;
	int		     has_sigs;
	uint8_t		     sigs[32]; /* audit receipt */
	/* the audit line's op when it is not the row's name (static):
	 * "rotate-emergency", "destroy-cancel" */
	const char *audit_op;
};

/* Keeps p until the reply is released, then fn(p); returns p, or NULL
 * (p freed at once, arena marked full) when it cannot. */
void *ops_keep(struct dispatch_reply *rep, void *p, void (*fn)(void *));
/* calloc() kept in the reply's arena; NULL when out of memory. */
void *ops_calloc(struct dispatch_reply *rep, size_t n, size_t size);
/* Frees everything the reply's arena keeps. */
void ops_release(struct dispatch_reply *rep);

/*
 * Makes msg the reply's result of kind (the Response field of that
 * number), kept until the reply is released and then fn(msg) unless fn is
 * NULL.  0, or an out-of-memory reply (msg freed) when it cannot be kept.
 */
int ops_result(struct dispatch_reply *rep,
    Hsmkey__V1__Response__ResultCase kind, void *msg, void (*fn)(void *));

/* Sets the reply to the status of r with a one-line message; returns r. */
int ops_fail(struct dispatch_reply *rep, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The reply of a keyring failure r for key name, version (0: none). */
int ops_key_error(struct dispatch_reply *rep, int r, const char *name,
    uint32_t version, const char *what);
/* The reply: key name described, version the one used or made. */
int ops_key_result(struct dispatch_reply *rep, struct keyring *kr,
    const char *name, uint32_t version);

/* 1 if ctx's client holds op on key (NULL: on every key). */
int ops_allowed(struct dispatch_ctx *ctx, enum client_op op, const char *key);
/* 1 if the client of ctx (arg, a struct dispatch_ctx) holds any grant on
 * key name: what list and stats show. */
int ops_shown(void *arg, const char *name);

#define OPS_HANDLER(name)                                                 \
	int name(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq, \
	    struct dispatch_reply *rep)

OPS_HANDLER(ops_ping);
OPS_HANDLER(ops_health);
OPS_HANDLER(ops_stats);
OPS_HANDLER(ops_sign);
OPS_HANDLER(ops_verify);
OPS_HANDLER(ops_pubkey);
OPS_HANDLER(ops_create);
OPS_HANDLER(ops_describe);
OPS_HANDLER(ops_list);
OPS_HANDLER(ops_rotate);
OPS_HANDLER(ops_promote);
OPS_HANDLER(ops_policy);
OPS_HANDLER(ops_disable);
OPS_HANDLER(ops_destroy);
OPS_HANDLER(ops_client_add);
OPS_HANDLER(ops_client_rotate);
OPS_HANDLER(ops_client_revoke);
OPS_HANDLER(ops_client_list);
OPS_HANDLER(ops_client_grant);
OPS_HANDLER(ops_keyset);

#endif /* HK_OPS_H */
