/* ops_clients.c: client management (see ops.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "convert.h"
#include "crypto.h"
#include "hk_err.h"
#include "log.h"
#include "ops.h"
#include "wire.h"

static void
secret_resp_free(void *p)
{
	Hsmkey__V1__ClientSecretResponse *cs = p;

	OPENSSL_cleanse(cs->secret.data, cs->secret.len);
	free(cs->secret.data);
	free(cs->id);
	free(cs);
}

static int
secret_result(struct dispatch_reply *rep, const char *id, uint8_t *secret,
    uint32_t number, uint64_t expires)
{
	Hsmkey__V1__ClientSecretResponse *cs;
	uint8_t				 *copy;

	if ((cs = calloc(1, sizeof(*cs))) == NULL ||
	    (copy = malloc(HK_SECRET_LEN)) == NULL) {
		free(cs);
		OPENSSL_cleanse(secret, HK_SECRET_LEN);
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	hsmkey__v1__client_secret_response__init(cs);
	memcpy(copy, secret, HK_SECRET_LEN);
	OPENSSL_cleanse(secret, HK_SECRET_LEN);
	cs->secret.data = copy;
	cs->secret.len = HK_SECRET_LEN;
	cs->id = strdup(id);
	cs->secret_no = number;
	rep->version = number;
	cs->expires_ms = expires;
	/* a full arena frees cs (and the secret copy) at once */
	if (ops_keep(rep, cs, secret_resp_free) == NULL || cs->id == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	return ops_result(
	    rep, HSMKEY__V1__RESPONSE__RESULT_CLIENT_SECRET, cs, NULL);
}

/* 0 if grants are 1..CLIENTS_MAX_GRANTS valid "OP:GLOB", else the
 * reply's error. */
static int
check_grants(struct dispatch_reply *rep, char *const *grants, size_t n)
{
	const char    *glob;
	enum client_op op;
	size_t	       i;

	if (n == 0 || n > CLIENTS_MAX_GRANTS) {
		return ops_fail(rep, HK_ERR_INVALID, "give 1 to %d grants",
		    CLIENTS_MAX_GRANTS);
	}
	for (i = 0; i < n; i++) {
		if (clients_parse_grant(grants[i], &op, &glob) != 0) {
			return ops_fail(rep, HK_ERR_INVALID,
			    "invalid grant '%s': "
			    "use OP:GLOB with OP sign, verify, pubkey or "
			    "admin",
			    grants[i]);
		}
	}
	return 0;
}

int
ops_client_add(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__ClientAddRequest *req = rq->client_add;
	uint8_t				    secret[HK_SECRET_LEN];
	uint64_t			    expires;
	uint32_t			    number;
	int				    r;

	if ((r = check_grants(rep, req->grants, req->n_grants)) != 0) {
		return r;
	}
	r = clients_add(ctx->sv->clients, ctx->s, req->id, req->grants,
	    req->n_grants, secret, &number, &expires);
	if (r == HK_ERR_EXISTS) {
		return ops_fail(rep, r, "client '%s' already exists", req->id);
	}
	if (r != 0) {
		return ops_fail(rep, r, "cannot add client '%s': %s", req->id,
		    hk_strerror(r));
	}
	return secret_result(rep, req->id, secret, number, expires);
}

int
ops_client_rotate(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__ClientRotateRequest *req = rq->client_rotate;
	uint8_t				       secret[HK_SECRET_LEN];
	uint64_t			       expires;
	uint32_t			       number;
	int				       r;

	r = clients_rotate(
	    ctx->sv->clients, ctx->s, req->id, secret, &number, &expires);
	if (r == HK_ERR_NOT_FOUND) {
		return ops_fail(rep, r, "client '%s' not found", req->id);
	}
	if (r == HK_ERR_EXHAUSTED) {
		return ops_fail(rep, r,
		    "client '%s' has %d live secrets: revoke "
		    "an old one first",
		    req->id, CLIENTS_MAX_SECRETS);
	}
	if (r != 0) {
		return ops_fail(rep, r, "cannot rotate client '%s': %s",
		    req->id, hk_strerror(r));
	}
	return secret_result(rep, req->id, secret, number, expires);
}

int
ops_client_revoke(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__ClientRevokeRequest *req = rq->client_revoke;
	static Hsmkey__V1__PingResponse done = HSMKEY__V1__PING_RESPONSE__INIT;
	int				r;

	r = clients_revoke(ctx->sv->clients, ctx->s, req->id, req->secret_no);
	if (r == HK_ERR_NOT_FOUND) {
		return ops_fail(rep, r,
		    "client '%s' has no live secret %" PRIu32, req->id,
		    req->secret_no);
	}
	if (r != 0) {
		/* refused from now on, but not yet durable: say so */
		return ops_fail(rep, r,
		    "secret %" PRIu32
		    " of client '%s' is refused from now on, "
		    "but the token did not record its revocation (%s): run "
		    "the "
		    "revoke again",
		    req->secret_no, req->id, hk_strerror(r));
	}
	return ops_result(rep, HSMKEY__V1__RESPONSE__RESULT_PING, &done, NULL);
}

int
ops_client_list(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	Hsmkey__V1__ClientListResponse *cl = NULL;
	struct clients_info	       *infos;
	size_t				n;
	int				r;

	(void)rq;
	if ((r = clients_list(ctx->sv->clients, &infos, &n)) == 0) {
		r = convert_client_list(infos, n, &cl);
		free(infos);
	}
	if (r != 0) {
		return ops_fail(rep, r, "cannot list clients");
	}
	return ops_result(rep, HSMKEY__V1__RESPONSE__RESULT_CLIENT_LIST, cl,
	    convert_client_list_free);
}

int
ops_client_grant(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__ClientGrantRequest *req = rq->client_grant;
	struct clients_info		     *info;
	Hsmkey__V1__ClientInfo		     *ci;
	int				      r;

	if ((r = check_grants(rep, req->grants, req->n_grants)) != 0) {
		return r;
	}
	/* the reply's strings point into info: both live in the arena */
	if ((info = ops_calloc(rep, 1, sizeof(*info))) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	r = clients_grant(ctx->sv->clients, ctx->s, req->id, req->grants,
	    req->n_grants, info);
	if (r == HK_ERR_NOT_FOUND) {
		return ops_fail(rep, r, "client '%s' not found", req->id);
	}
	if (r != 0) {
		return ops_fail(rep, r,
		    "cannot set the grants of client '%s': "
		    "%s; they are as they were",
		    req->id, hk_strerror(r));
	}
	if ((ci = convert_client_info(info)) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	return ops_result(
	    rep, HSMKEY__V1__RESPONSE__RESULT_CLIENT_INFO, ci, free);
}
