/*
 * dispatch.h: every request kind the service knows, declared once in one
 * table (dispatch.c ops[]): its name, whether it changes state, the grant
 * it needs, what its key name or client id is, and its handler.
 *
 * dispatch() decodes an authenticated request strictly, finds its row
 * (an unknown kind is UNIMPLEMENTED), checks the key name or client id,
 * enforces the grant, refuses a state change the audit log cannot record
 * (fail closed), and only then runs the handler: no handler checks, or can
 * forget, a grant itself.
 *
 * Thread-safe: each worker passes its own session.
 */
#ifndef HK_DISPATCH_H
#define HK_DISPATCH_H

#include "audit_format.h"
#include "hsmkey.pb-c.h"
#include "server.h"

struct dispatch_ctx {
	struct server	     *sv;
	struct token_session *s;
	struct client *client; /* NULL only with the skip-auth test hook */
};

/* The grant a request kind needs before its handler runs. */
enum dispatch_need {
	NEED_MAC = 1,	 /* a valid MAC is enough (ping, health) */
	NEED_SHOWN,	 /* shows only keys the client holds a grant on */
	NEED_ANY,	 /* any grant on the key (describe) */
	NEED_SIGN,	 /* sign on the key */
	NEED_VERIFY,	 /* verify on the key */
	NEED_PUBKEY,	 /* pubkey on the key */
	NEED_ADMIN,	 /* admin on the key */
	NEED_ADMIN_ALL,	 /* admin:* (client management) */
	NEED_PUBKEY_EACH /* pubkey on each of its names (keyset): the
			    handler checks them, since a row has one subject */
};

/* What the request's subject field is. */
enum dispatch_subject {
	SUBJECT_NONE = 0,
	SUBJECT_KEY,   /* "name": a key name, [a-z0-9][a-z0-9._-]{0,63} */
	SUBJECT_CLIENT /* "id": a client id */
};

struct dispatch_reply;

/* One row of the table. */
struct dispatch_op {
	Hsmkey__V1__Request__OpCase kind;
	const char		   *name;    /* "sign": audit log, metrics */
	int			    changes; /* changes state: audited */
	enum dispatch_need	    need;
	enum dispatch_subject	    subject;
	const char		   *verb; /* "sign with": the denial says */
	int (*run)(struct dispatch_ctx *, const Hsmkey__V1__Request *,
	    struct dispatch_reply *);
};

/* The table, for tests: *np rows. */
const struct dispatch_op *dispatch_ops(size_t *np);

/* What a request did, for the audit log and the counters. */
struct dispatch_result {
	const char *op;		   /* "sign", "rotate", ... (static) */
	const char *audit_op;	   /* the audit line's, if not op (static) */
	char	    key[65];	   /* key or client id, "" if none */
	uint32_t    version;	   /* the version used or made, 0 if none */
	uint32_t    items;	   /* signatures made (batch) */
	int	    status;	   /* hk_status of the reply */
	int	    changes_state; /* a state change was asked for */
	int	    has_sigs;	   /* a sign that made signatures: */
	uint8_t	    sigs[32];	   /* SHA-256 of them, concatenated */
	char
	    reason[HK_AUDIT_STR_MAX + 1]; /* the change's reason, "" if none */
};

/*
 * Runs the serialized request req (its envelope's MAC held) for
 * ctx->client; encodes the Response into *outp (caller frees; it may hold
 * a new client secret: zero it) and fills *res.  An error return means no
 * Response could be encoded at all.
 */
int dispatch(struct dispatch_ctx *ctx, const uint8_t *req, size_t len,
    uint8_t **outp, size_t *lenp, struct dispatch_result *res);

/* The PERMISSION_DENIED reply (counted, logged) of ctx's client, which
 * may not verb key (NULL: manage clients); returns HK_ERR_DENIED.  For a
 * handler that checks grants on several keys (keyset). */
int dispatch_denied(struct dispatch_ctx *ctx, struct dispatch_reply *rep,
    const char *verb, const char *key);

/* Encodes a Response with only a status and a message. */
int
dispatch_error(int status, const char *message, uint8_t **outp, size_t *lenp);

#endif /* HK_DISPATCH_H */
