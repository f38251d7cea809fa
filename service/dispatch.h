/*
 * dispatch.h: one handler per request type, behind one switch.  Handlers
 * run after the envelope was authenticated; each checks the client's grant
 * first.  Thread-safe: each worker passes its own session.
 */
#ifndef HK_DISPATCH_H
#define HK_DISPATCH_H

#include "hsmkey.pb-c.h"
#include "server.h"

struct dispatch_ctx {
	struct server	     *sv;
	struct token_session *s;
	struct client *client; /* NULL only with the skip-auth test hook */
};

/* What a request did, for the audit log and the counters. */
struct dispatch_result {
	const char *op;		   /* "sign", "rotate", ... (static) */
	char	    key[65];	   /* key or client id, "" if none */
	uint32_t    version;	   /* the version used or made, 0 if none */
	uint32_t    items;	   /* signatures made (batch) */
	int	    status;	   /* hk_status of the reply */
	int	    changes_state; /* create, rotate, ..., client_* */
	int	    has_sigs;	   /* a sign that made signatures: */
	uint8_t	    sigs[32];	   /* SHA-256 of them, concatenated */
};

/* The operation name and whether it changes state, from the request alone
 * (before it runs). */
const char *
dispatch_op_name(const Hsmkey__V1__Request *req, int *changes_statep);

/* Executes req; encodes the Response into *outp (caller frees) and fills
 * *res. */
int dispatch(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *req,
    uint8_t **outp, size_t *lenp, struct dispatch_result *res);

/* Encodes a Response with only a status and a message. */
int
dispatch_error(int status, const char *message, uint8_t **outp, size_t *lenp);

#endif /* HK_DISPATCH_H */
