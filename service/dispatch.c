/* dispatch.c: the table of request kinds and the dispatcher (see
 * dispatch.h); the handlers are in ops_*.c. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "codec.h"
#include "dispatch.h"
#include "hk_err.h"
#include "log.h"
#include "ops.h"
#include "reply.h"
#include "server.h"
#include "svckeys.h"
#include "testhooks.h"
#include "wire.h"

int
dispatch_denied(struct dispatch_ctx *ctx, struct dispatch_reply *rep,
    const char *op, const char *key)
{
	if (ctx->client != NULL) {
		clients_denied(ctx->client);
	}
	log_info("denied: client %s may not %s %s%s",
	    ctx->client ? client_id(ctx->client) : "-", op, key ? "key " : "",
	    key ? key : "clients");
	if (key == NULL) {
		return ops_fail(rep, HK_ERR_DENIED,
		    "client '%s' may not %s: "
		    "that needs the grant admin:*",
		    ctx->client ? client_id(ctx->client) : "-", op);
	}
	return ops_fail(rep, HK_ERR_DENIED, "client '%s' may not %s key '%s'",
	    ctx->client ? client_id(ctx->client) : "-", op, key);
}

/* ---- the table ---------------------------------------------------------- */

#define KEY    SUBJECT_KEY
#define CLIENT SUBJECT_CLIENT
#define NONE   SUBJECT_NONE

static const struct dispatch_op ops[] = {
	{ HSMKEY__V1__REQUEST__OP_PING, "ping", 0, NEED_MAC, NONE, NULL,
	    ops_ping },
	{ HSMKEY__V1__REQUEST__OP_HEALTH, "health", 0, NEED_MAC, NONE, NULL,
	    ops_health },
	{ HSMKEY__V1__REQUEST__OP_CREATE, "create", 1, NEED_ADMIN, KEY,
	    "create", ops_create },
	{ HSMKEY__V1__REQUEST__OP_LIST, "list", 0, NEED_SHOWN, NONE, NULL,
	    ops_list },
	{ HSMKEY__V1__REQUEST__OP_DESCRIBE, "describe", 0, NEED_ANY, KEY,
	    "describe", ops_describe },
	{ HSMKEY__V1__REQUEST__OP_SIGN, "sign", 0, NEED_SIGN, KEY, "sign with",
	    ops_sign },
	{ HSMKEY__V1__REQUEST__OP_VERIFY, "verify", 0, NEED_VERIFY, KEY,
	    "verify with", ops_verify },
	{ HSMKEY__V1__REQUEST__OP_PUBKEY, "pubkey", 0, NEED_PUBKEY, KEY,
	    "read the public key of", ops_pubkey },
	{ HSMKEY__V1__REQUEST__OP_ROTATE, "rotate", 1, NEED_ADMIN, KEY,
	    "rotate", ops_rotate },
	{ HSMKEY__V1__REQUEST__OP_PROMOTE, "promote", 1, NEED_ADMIN, KEY,
	    "promote", ops_promote },
	{ HSMKEY__V1__REQUEST__OP_POLICY, "policy", 1, NEED_ADMIN, KEY,
	    "change the policy of", ops_policy },
	{ HSMKEY__V1__REQUEST__OP_DISABLE, "disable", 1, NEED_ADMIN, KEY,
	    "disable", ops_disable },
	{ HSMKEY__V1__REQUEST__OP_DESTROY, "destroy", 1, NEED_ADMIN, KEY,
	    "destroy", ops_destroy },
	{ HSMKEY__V1__REQUEST__OP_CLIENT_ADD, "client-add", 1, NEED_ADMIN_ALL,
	    CLIENT, "manage clients", ops_client_add },
	{ HSMKEY__V1__REQUEST__OP_CLIENT_ROTATE, "client-rotate", 1,
	    NEED_ADMIN_ALL, CLIENT, "manage clients", ops_client_rotate },
	{ HSMKEY__V1__REQUEST__OP_CLIENT_REVOKE, "client-revoke", 1,
	    NEED_ADMIN_ALL, CLIENT, "manage clients", ops_client_revoke },
	{ HSMKEY__V1__REQUEST__OP_CLIENT_LIST, "client-list", 0,
	    NEED_ADMIN_ALL, NONE, "manage clients", ops_client_list },
	{ HSMKEY__V1__REQUEST__OP_STATS, "stats", 0, NEED_SHOWN, NONE, NULL,
	    ops_stats },
	{ HSMKEY__V1__REQUEST__OP_CLIENT_GRANT, "client-grant", 1,
	    NEED_ADMIN_ALL, CLIENT, "manage clients", ops_client_grant },
	{ HSMKEY__V1__REQUEST__OP_KEYSET, "keyset", 0, NEED_PUBKEY_EACH, NONE,
	    "read the public key of", ops_keyset },
};

#undef KEY
#undef CLIENT
#undef NONE

const struct dispatch_op *
dispatch_ops(size_t *np)
{
	*np = sizeof(ops) / sizeof(ops[0]);
	return ops;
}

static const struct dispatch_op *
find_op(Hsmkey__V1__Request__OpCase kind)
{
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (ops[i].kind == kind) {
			return &ops[i];
		}
	}
	return NULL;
}

/* ---- the dispatcher ----------------------------------------------------- */

/*
 * The subject of req (its operation's "name" or "id" field), read through
 * the schema so that the table, not a switch, says which field it is.
 * NULL if the operation has no such field.
 */
static const char *
subject_of(const Hsmkey__V1__Request *req, enum dispatch_subject subject)
{
	const ProtobufCFieldDescriptor *f;
	const ProtobufCMessage	       *op;

	if (subject == SUBJECT_NONE ||
	    (f = protobuf_c_message_descriptor_get_field(
		 &hsmkey__v1__request__descriptor, (unsigned)req->op_case)) ==
		NULL ||
	    f->type != PROTOBUF_C_TYPE_MESSAGE) {
		return NULL;
	}
	op = *(const ProtobufCMessage *const *)((const char *)req + f->offset);
	if (op == NULL ||
	    (f = protobuf_c_message_descriptor_get_field_by_name(
		 op->descriptor, subject == SUBJECT_KEY ? "name" : "id")) ==
		NULL ||
	    f->type != PROTOBUF_C_TYPE_STRING) {
		return NULL;
	}
	return *(const char *const *)((const char *)op + f->offset);
}

/* 1 if ctx's client holds what op needs on subject. */
static int
granted(struct dispatch_ctx *ctx, const struct dispatch_op *op,
    const char *subject)
{
	static const enum client_op on_key[] = {
		[NEED_SIGN] = CLIENT_OP_SIGN,
		[NEED_VERIFY] = CLIENT_OP_VERIFY,
		[NEED_PUBKEY] = CLIENT_OP_PUBKEY,
		[NEED_ADMIN] = CLIENT_OP_ADMIN,
	};

	if (op->need == NEED_SIGN && svckeys_is(subject)) {
		/* the audit key signs checkpoints only, the key set key key
		 * sets: a client that could sign with them could forge them */
		return 0;
	}
	switch (op->need) {
	case NEED_MAC:
	case NEED_SHOWN:       /* the handler shows only what is granted */
	case NEED_PUBKEY_EACH: /* the handler checks every name */
		return 1;
	case NEED_ANY:
		return testhooks_skip_auth() ||
		    clients_any_grant(ctx->sv->clients, ctx->client, subject);
	case NEED_ADMIN_ALL:
		return ops_allowed(ctx, CLIENT_OP_ADMIN, NULL);
	case NEED_SIGN:
	case NEED_VERIFY:
	case NEED_PUBKEY:
	case NEED_ADMIN:
		return ops_allowed(ctx, on_key[op->need], subject);
	}
	return 0;
}

/*
 * The most fields, at every depth, of a request worth unpacking: a sign
 * batch of HK_MAX_BATCH items of two fields each and a few more.  Counted
 * in the wire bytes first: protobuf-c allocates for every field it reads.
 */
#define REQUEST_MAX_FIELDS (3 * HK_MAX_BATCH + 64)

/*
 * Decodes req strictly, after counting its fields.  A request whose
 * operation is a field this service does not know (a newer client's) is
 * UNIMPLEMENTED; anything else that does not decode strictly is malformed.
 */
static int
decode(struct dispatch_reply *rep, const uint8_t *buf, size_t len,
    Hsmkey__V1__Request **reqp)
{
	Hsmkey__V1__Request *lax;
	uint32_t	     tag = 0;
	size_t		     nfields;

	*reqp = NULL;
	if (hk_pb_count_fields(&hsmkey__v1__request__descriptor, buf, len,
		REQUEST_MAX_FIELDS, &nfields) == HK_ERR_TOO_LARGE) {
		return ops_fail(rep, HK_ERR_TOO_LARGE,
		    "request of over %d fields; a sign batch holds at most %d "
		    "items",
		    REQUEST_MAX_FIELDS, HK_MAX_BATCH);
	}
	if (hk_decode_strict(&hsmkey__v1__request__descriptor, buf, len,
		(ProtobufCMessage **)reqp) == 0) {
		return 0;
	}
	*reqp = NULL;
	if ((lax = hsmkey__v1__request__unpack(NULL, len, buf)) != NULL) {
		if (lax->op_case == HSMKEY__V1__REQUEST__OP__NOT_SET &&
		    lax->base.n_unknown_fields == 1) {
			tag = lax->base.unknown_fields[0].tag;
		}
		hsmkey__v1__request__free_unpacked(lax, NULL);
	}
	if (tag != 0) {
		return ops_fail(rep, HK_ERR_UNSUPPORTED,
		    "unknown request kind %" PRIu32 ": this service "
		    "(hsmkeyd %s) does not implement it",
		    tag, HSMKEY_VERSION);
	}
	return ops_fail(rep, HK_ERR_DECODE, "malformed request");
}

/* A request's reason (Request.reason): only a change takes one, and only
 * one its audit line can hold without an escape.  Copied into res. */
static int
check_reason(const Hsmkey__V1__Request *req, const struct dispatch_op *op,
    struct dispatch_reply *rep, struct dispatch_result *res)
{
	const char *why;

	if (req->reason == NULL || *req->reason == '\0') {
		return 0;
	}
	if (!op->changes) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "invalid reason: %s changes nothing, only changes take a "
		    "reason",
		    op->name);
	}
	if (hk_audit_reason_check(req->reason, strlen(req->reason), &why) !=
	    0) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "invalid reason: %s (at most %d bytes of printable UTF-8, "
		    "no \" or \\)",
		    why, HK_AUDIT_STR_MAX);
	}
	snprintf(res->reason, sizeof(res->reason), "%s", req->reason);
	return 0;
}

/* Everything before the handler: the row, the subject, the reason, the
 * grant, and that the audit log can record a change. */
static int
admit(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *req,
    struct dispatch_reply *rep, struct dispatch_result *res,
    const struct dispatch_op **opp)
{
	const struct dispatch_op *op;
	const char		 *subject;
	char			  why[PATH_MAX + 160];
	int			  r;

	if ((op = find_op(req->op_case)) == NULL) {
		return ops_fail(
		    rep, HK_ERR_INVALID, "the request names no operation");
	}
	res->op = op->name;
	/* a refused attempt at a change is audited as one */
	res->changes_state = op->changes;
	subject = subject_of(req, op->subject);
	if (op->subject == SUBJECT_KEY && !hk_valid_key_name(subject)) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "invalid key name: use [a-z0-9][a-z0-9._-]{0,63}");
	}
	if (op->subject == SUBJECT_CLIENT && !hk_valid_client_id(subject)) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "invalid client id: use [A-Za-z0-9][A-Za-z0-9._@-]{0,63}");
	}
	if (subject != NULL) {
		snprintf(res->key, sizeof(res->key), "%s", subject);
	}
	if ((r = check_reason(req, op, rep, res)) != 0) {
		return r;
	}
	if (!granted(ctx, op, subject)) {
		return dispatch_denied(ctx, rep, op->verb,
		    op->subject == SUBJECT_KEY ? subject : NULL);
	}
	if (op->changes && !audit_ready(ctx->sv->audit, why, sizeof(why))) {
		/* fail closed: a change that cannot be audited is not made */
		log_warnx("client '%s': %s refused: the audit log cannot be "
			  "written",
		    ctx->client != NULL ? client_id(ctx->client) : "-",
		    op->name);
		res->changes_state = 0; /* its line could not be written */
		return ops_fail(
		    rep, HK_ERR_UNAVAILABLE, "%s; nothing was done", why);
	}
	if (audit_wants(ctx->sv->audit, op->name, op->changes) &&
	    reply_waiting_full(ctx->sv)) {
		/* its reply would have no room to wait for its line */
		return ops_fail(rep, HK_ERR_EXHAUSTED, "%s",
		    REPLY_WAITING_FULL "; nothing was done, try again later");
	}
	*opp = op;
	return 0;
}

/* Encodes rep's Response into *outp, or a short error if it is too large. */
static int
encode(struct dispatch_reply *rep, uint8_t **outp, size_t *lenp)
{
	int r;

	if (rep->resp.status == HSMKEY__V1__STATUS__STATUS_OK &&
	    rep->arena.full) {
		ops_fail(rep, HK_ERR_NOMEM, "reply too large");
	}
	r = hk_encode(&rep->resp.base, outp, lenp);
	if (r == HK_ERR_TOO_LARGE) {
		ops_release(rep);
		ops_fail(rep, r, "reply exceeds %d bytes", HK_MAX_MESSAGE);
		r = hk_encode(&rep->resp.base, outp, lenp);
	}
	return r;
}

int
dispatch(struct dispatch_ctx *ctx, const uint8_t *buf, size_t len,
    uint8_t **outp, size_t *lenp, struct dispatch_result *res)
{
	const struct dispatch_op *op = NULL;
	struct dispatch_reply	 *rep;
	Hsmkey__V1__Request	 *req = NULL;
	int			  r;

	*outp = NULL;
	*lenp = 0;
	memset(res, 0, sizeof(*res));
	res->op = "malformed";
	/* the arena is large: keep it off the worker's stack */
	if ((rep = calloc(1, sizeof(*rep))) == NULL) {
		return HK_ERR_NOMEM;
	}
	hsmkey__v1__response__init(&rep->resp);
	rep->resp.status = HSMKEY__V1__STATUS__STATUS_OK;
	if (decode(rep, buf, len, &req) == 0 &&
	    admit(ctx, req, rep, res, &op) == 0) {
		op->run(ctx, req, rep);
	}
	r = encode(rep, outp, lenp);
	res->status = rep->resp.status;
	res->version = rep->version;
	res->audit_op = rep->audit_op;
	if (rep->resp.status == HSMKEY__V1__STATUS__STATUS_OK) {
		res->items = rep->items;
		if (rep->has_sigs) {
			res->has_sigs = 1;
			memcpy(res->sigs, rep->sigs, sizeof(res->sigs));
		}
	}
	ops_release(rep);
	free(rep);
	if (req != NULL) {
		hsmkey__v1__request__free_unpacked(req, NULL);
	}
	return r;
}

int
dispatch_error(int status, const char *message, uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Response resp = HSMKEY__V1__RESPONSE__INIT;

	resp.status = status;
	resp.message = (char *)message;
	return hk_encode(&resp.base, outp, lenp);
}
