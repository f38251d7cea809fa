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
	struct server		*sv;
	struct token_session	*s;
	struct client		*client;	/* NULL only when skip_auth */
};

/* Executes req; encodes the Response into *outp (caller frees). */
int	dispatch(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *req,
	    uint8_t **outp, size_t *lenp);

/* Encodes a Response with only a status and a message. */
int	dispatch_error(int status, const char *message, uint8_t **outp,
	    size_t *lenp);

#endif /* HK_DISPATCH_H */
