/* ops_keys.c: key management: create, describe, list, rotate, promote,
 * policy, disable, destroy (see ops.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "crypto.h"
#include "hk_err.h"
#include "log.h"
#include "ops.h"
#include "wire.h"

int
ops_create(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__CreateRequest *req = rq->create;
	int				 r;

	if (hk_alg_info(hk_alg_from_wire(req->alg)) == NULL) {
		return ops_fail(rep, HK_ERR_INVALID, "unknown algorithm");
	}
	if ((r = keyring_create(ctx->sv->kr, ctx->s, req->name,
		 hk_alg_from_wire(req->alg))) != 0) {
		return ops_key_error(rep, r, req->name, 0, "create");
	}
	return ops_key_result(rep, ctx->sv->kr, req->name, 1);
}

int
ops_describe(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	return ops_key_result(rep, ctx->sv->kr, rq->describe->name, 0);
}

int
ops_list(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	Hsmkey__V1__ListResponse *l = NULL;
	struct keyring_info	 *infos;
	size_t			  n;
	int			  r;

	(void)rq;
	if ((r = keyring_list(ctx->sv->kr, ops_shown, ctx, &infos, &n)) == 0) {
		r = convert_key_list(infos, n, &l);
		keyring_list_free(infos, n);
	}
	if (r != 0) {
		return ops_fail(rep, r, "cannot list keys");
	}
	return ops_result(
	    rep, HSMKEY__V1__RESPONSE__RESULT_LIST, l, convert_key_list_free);
}

int
ops_rotate(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__RotateRequest *req = rq->rotate;
	uint32_t			 newv;
	int				 r;

	if (req->emergency) {
		rep->audit_op = "rotate-emergency";
	}
	if (req->stage && req->emergency) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "an emergency rotation makes the new version primary at "
		    "once: it cannot be staged");
	}
	r = keyring_rotate(ctx->sv->kr, ctx->s, req->name, req->expect,
	    (req->stage ? KEYRING_ROTATE_STAGE : 0) |
		(req->emergency ? KEYRING_ROTATE_EMERGENCY : 0),
	    &newv);
	if (r == HK_ERR_PRECONDITION) {
		return ops_fail(rep, r,
		    "key '%s' is no longer at v%" PRIu32 ": "
		    "another rotation won (see 'hsmkey describe %s')",
		    req->name, req->expect, req->name);
	}
	if (r != 0) {
		return ops_key_error(rep, r, req->name, 0, "rotate");
	}
	return ops_key_result(rep, ctx->sv->kr, req->name, newv);
}

int
ops_promote(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__PromoteRequest *req = rq->promote;
	int				  r;

	if ((r = keyring_promote(
		 ctx->sv->kr, ctx->s, req->name, req->version)) != 0) {
		if (r == HK_ERR_PRECONDITION) {
			return ops_fail(rep, r,
			    "version %" PRIu32 " of key '%s' "
			    "is not pending (or a newer version signs)",
			    req->version, req->name);
		}
		return ops_key_error(
		    rep, r, req->name, req->version, "promote");
	}
	return ops_key_result(rep, ctx->sv->kr, req->name, req->version);
}

int
ops_policy(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__PolicyRequest *req = rq->policy;
	struct keyring_policy_change	 ch;
	const char			*too_long;
	int				 r;

	convert_policy_change(req, &ch);
	if ((too_long = keyring_policy_too_long(&ch)) != NULL) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "the %s of key '%s' may be at most 100 years (%" PRIu64
		    " s): nothing was changed",
		    too_long, req->name, (uint64_t)HK_DURATION_MAX_S);
	}
	if ((r = keyring_policy(ctx->sv->kr, ctx->s, req->name, &ch)) != 0) {
		return ops_key_error(
		    rep, r, req->name, 0, "change the policy of");
	}
	return ops_key_result(rep, ctx->sv->kr, req->name, 0);
}

/* What disable, destroy and cancel do, and what each says when the
 * version's state refuses it (the state and whether it is the primary). */
enum version_change { VC_DISABLE, VC_DESTROY, VC_CANCEL };

static const struct {
	const char *what; /* ops_key_error()'s verb */
	const char *audit_op;
	int (*run)(
	    struct keyring *, struct token_session *, const char *, uint32_t);
} version_changes[] = {
	[VC_DISABLE] = { "disable", NULL, keyring_disable },
	[VC_DESTROY] = { "destroy", NULL, keyring_destroy },
	[VC_CANCEL] = { "cancel the destruction of", "destroy-cancel",
	    keyring_cancel_destroy },
};

/* The reply of a change c refused by version's state. */
static int
refused_by_state(struct dispatch_ctx *ctx, enum version_change c,
    const char *name, uint32_t version, struct dispatch_reply *rep)
{
	int	      primary, r = HK_ERR_PRECONDITION;
	enum lc_state st;
	const char   *stn;

	(void)keyring_state(ctx->sv->kr, name, version, &st, &primary);
	stn = lifecycle_state_name(st);

	if (st == LC_DESTROYED) {
		return ops_fail(rep, r,
		    "version %" PRIu32 " of key '%s' is destroyed: its key "
		    "objects are gone from the token",
		    version, name);
	}
	if (c == VC_CANCEL) {
		return ops_fail(rep, r,
		    "version %" PRIu32 " of key '%s' is %s, not "
		    "destroy-scheduled: there is no destruction to cancel",
		    version, name, stn);
	}
	if (primary) {
		return ops_fail(rep, r,
		    "version %" PRIu32 " of key '%s' is the primary: rotate "
		    "first (or rotate --emergency), then destroy it",
		    version, name);
	}
	return ops_fail(rep, r,
	    "version %" PRIu32 " of key '%s' is %s: disable it first", version,
	    name, stn);
}

static int
change_version(struct dispatch_ctx *ctx, const char *name, uint32_t version,
    enum version_change c, struct dispatch_reply *rep)
{
	int r;

	rep->audit_op = version_changes[c].audit_op;
	if (version == 0) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "name the version (--version "
		    "N)");
	}
	r = version_changes[c].run(ctx->sv->kr, ctx->s, name, version);
	if (r == HK_ERR_PRECONDITION) {
		return refused_by_state(ctx, c, name, version, rep);
	}
	if (r != 0) {
		return ops_key_error(
		    rep, r, name, version, version_changes[c].what);
	}
	return ops_key_result(rep, ctx->sv->kr, name, version);
}

int
ops_disable(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	return change_version(
	    ctx, rq->disable->name, rq->disable->version, VC_DISABLE, rep);
}

int
ops_destroy(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	return change_version(ctx, rq->destroy->name, rq->destroy->version,
	    rq->destroy->cancel ? VC_CANCEL : VC_DESTROY, rep);
}
