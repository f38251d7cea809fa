/*
 * dispatch_test.c: the dispatch table, walked row by row on a real SoftHSM
 * token: every request kind that needs a grant is denied without it
 * (before its handler runs: nothing changes), and gets past the grant
 * check with exactly that grant; every kind of the schema has a row;
 * names are checked before grants; an unknown kind is UNIMPLEMENTED.
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "dispatch.h"
#include "hk_err.h"
#include "testserver.h"
#include "testutil.h"
#include "wire.h"

static struct testserver *ts;
static const char	 *reason; /* build() sets it as Request.reason */

static void
need_server(void)
{
	ts = testserver_get();
}

/* A client with exactly the grants given (NULL-terminated). */
static struct client *
client_with(const char *id, const char *const *grants)
{
	uint8_t	       secret[HK_SECRET_LEN];
	uint32_t       no;
	struct client *cl = NULL;
	token_obj_t    key;
	const char    *why;

	testserver_client(ts, id, grants, secret, &no);
	PASS(clients_secret(
	    ts->sv.clients, id, no, hk_now_ms(), &cl, &key, &why));
	return cl;
}

/*
 * The serialized Request of kind, built from the schema alone: its
 * operation message with "name" (or "id") set to subject when it has
 * one.  Caller must free *outp.
 */
static void
build(Hsmkey__V1__Request__OpCase kind, const char *subject, uint8_t **outp,
    size_t *lenp)
{
	Hsmkey__V1__Request		  req = HSMKEY__V1__REQUEST__INIT;
	const ProtobufCFieldDescriptor	 *f, *sf;
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage		 *op;

	f = protobuf_c_message_descriptor_get_field(
	    &hsmkey__v1__request__descriptor, (unsigned)kind);
	TRUE(f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE);
	d = f->descriptor;
	TRUE((op = calloc(1, d->sizeof_message)) != NULL);
	protobuf_c_message_init(d, op);
	if ((sf = protobuf_c_message_descriptor_get_field_by_name(
		 d, "name")) == NULL) {
		sf = protobuf_c_message_descriptor_get_field_by_name(d, "id");
	}
	if (sf != NULL) {
		*(const char **)((char *)op + sf->offset) = subject;
	}
	if ((sf = protobuf_c_message_descriptor_get_field_by_name(
		 d, "names")) != NULL &&
	    sf->label == PROTOBUF_C_LABEL_REPEATED) {
		/* a request naming several keys (keyset): just subject */
		*(size_t *)((char *)op + sf->quantifier_offset) = 1;
		*(const char *const **)((char *)op + sf->offset) = &subject;
	}
	req.op_case = kind;
	if (reason != NULL) {
		req.reason = (char *)reason;
	}
	*(ProtobufCMessage **)((char *)&req + f->offset) = op;
	PASS(hk_encode(&req.base, outp, lenp));
	free(op);
}

/* Dispatches bytes for cl; the status of the reply. */
static int
run_bytes(struct client *cl, const uint8_t *buf, size_t len,
    struct dispatch_result *res)
{
	struct dispatch_ctx   ctx = { &ts->sv, ts->s, cl };
	Hsmkey__V1__Response *resp;
	uint8_t		     *out;
	size_t		      olen;
	int		      status;

	PASS(dispatch(&ctx, buf, len, &out, &olen, res));
	TRUE((resp = hsmkey__v1__response__unpack(NULL, olen, out)) != NULL);
	status = resp->status;
	EQ_INT(status, res->status);
	hsmkey__v1__response__free_unpacked(resp, NULL);
	free(out);
	return status;
}

static int
run_kind(struct client *cl, Hsmkey__V1__Request__OpCase kind,
    const char *subject, struct dispatch_result *res)
{
	uint8_t *buf;
	size_t	 len;
	int	 status;

	build(kind, subject, &buf, &len);
	status = run_bytes(cl, buf, len, res);
	free(buf);
	return status;
}

/* The grant that satisfies exactly what a row needs on key k1. */
static const char *
grant_for(enum dispatch_need need)
{
	switch (need) {
	case NEED_SIGN:
		return "sign:k1";
	case NEED_VERIFY:
		return "verify:k1";
	case NEED_PUBKEY:
		return "pubkey:k1";
	case NEED_ADMIN:
		return "admin:k1";
	case NEED_ADMIN_ALL:
		return "admin:*";
	case NEED_ANY:
	case NEED_PUBKEY_EACH:
		return "pubkey:k1";
	default:
		return NULL;
	}
}

static const char *
subject_for(const struct dispatch_op *op)
{
	return op->subject == SUBJECT_CLIENT ? "someone" : "k1";
}

static void
test_denied_without_grant(void)
{
	static const char *const unrelated[] = { "admin:other-*", "sign:other",
		NULL };
	const struct dispatch_op *ops;
	struct dispatch_result	  res;
	struct client		 *cl;
	size_t			  i, n, denied = 0;
	uint32_t		  keys, versions;

	need_server();
	cl = client_with("nogrant", unrelated);
	ops = dispatch_ops(&n);
	for (i = 0; i < n; i++) {
		int st = run_kind(cl, ops[i].kind, subject_for(&ops[i]), &res);

		EQ_STR(res.op, ops[i].name);
		if (ops[i].need == NEED_MAC || ops[i].need == NEED_SHOWN) {
			if (st != HSMKEY__V1__STATUS__STATUS_OK) {
				HK_TFAIL("%s needs no grant, got status %d",
				    ops[i].name, st);
			}
			continue;
		}
		if (st != HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED) {
			HK_TFAIL("%s without its grant: status %d, want "
				 "PERMISSION_DENIED",
			    ops[i].name, st);
		}
		denied++;
	}
	TRUE(denied >= 14);
	/* no handler ran: nothing was made */
	keyring_totals(ts->sv.kr, &keys, &versions);
	EQ_INT(keys, 0);
}

static void
test_granted_passes(void)
{
	const struct dispatch_op *ops;
	struct dispatch_result	  res;
	size_t			  i, n;
	char			  id[32];

	need_server();
	ops = dispatch_ops(&n);
	for (i = 0; i < n; i++) {
		const char *grants[] = { grant_for(ops[i].need), NULL };
		int	    st;

		if (grants[0] == NULL) {
			continue;
		}
		snprintf(id, sizeof(id), "granted-%zu", i);
		st = run_kind(client_with(id, grants), ops[i].kind,
		    subject_for(&ops[i]), &res);
		if (st == HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED) {
			HK_TFAIL("%s with the grant %s was denied",
			    ops[i].name, grants[0]);
		}
	}
}

/* Every operation of the schema has one row; the rows that change state
 * are exactly these. */
static void
test_table_complete(void)
{
	static const char *const changing[] = { "create", "rotate", "promote",
		"policy", "disable", "destroy", "client-add", "client-rotate",
		"client-revoke", "client-grant", NULL };
	const ProtobufCMessageDescriptor *d = &hsmkey__v1__request__descriptor;
	const struct dispatch_op	 *ops;
	size_t i, j, n, rows, nchanging = 0, kinds = 0;

	ops = dispatch_ops(&rows);
	for (i = 0; i < d->n_fields; i++) {
		/* the operations are the oneof; reason is beside it */
		if (!(d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
			continue;
		}
		kinds++;
		for (j = 0, n = 0; j < rows; j++) {
			n += (uint32_t)ops[j].kind == d->fields[i].id;
		}
		if (n != 1) {
			HK_TFAIL("request kind %s has %zu rows",
			    d->fields[i].name, n);
		}
	}
	EQ_INT(rows, kinds);
	for (i = 0; i < rows; i++) {
		int listed = 0;

		TRUE(ops[i].run != NULL && ops[i].name != NULL);
		TRUE(ops[i].need == NEED_MAC || ops[i].need == NEED_SHOWN ||
		    ops[i].verb != NULL);
		for (j = 0; changing[j] != NULL; j++) {
			listed |= strcmp(changing[j], ops[i].name) == 0;
		}
		EQ_INT(ops[i].changes, listed);
		/* the client sends reasons by the same fact */
		EQ_INT(hk_request_changes(ops[i].kind), ops[i].changes);
		nchanging += listed;
	}
	EQ_INT(nchanging, 10);
}

/* Names are checked before the grant; odd requests get their status. */
static void
test_refusals(void)
{
	static const char *const everything[] = { "admin:*", "sign:*", NULL };
	static const uint8_t	 newer[] = { 0x9a, 0x06, 0x00 }; /* field 99 */
	static const uint8_t	 junk[] = { 0xff, 0xff, 0xff };
	struct dispatch_result	 res;
	struct client		*nogrant, *admin;

	need_server();
	nogrant = client_with(
	    "nothing", (const char *const[]){ "verify:zzz", NULL });
	admin = client_with("admin", everything);
	EQ_INT(
	    run_kind(nogrant, HSMKEY__V1__REQUEST__OP_SIGN, "Bad/Name", &res),
	    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	EQ_INT(run_kind(nogrant, HSMKEY__V1__REQUEST__OP_CLIENT_ROTATE,
		   "bad id", &res),
	    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	/* client ids, also for a client allowed to manage clients */
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_CLIENT_ROTATE, "bad id",
		   &res),
	    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_CLIENT_REVOKE, "a/../b",
		   &res),
	    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_CLIENT_REVOKE,
		   "x123456789012345678901234567890123456789012345678901234567"
		   "8901234",
		   &res),
	    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	/* the service keys sign checkpoints and key sets only, whatever
	 * the grants */
	EQ_INT(run_kind(
		   admin, HSMKEY__V1__REQUEST__OP_SIGN, "hsmkey-audit", &res),
	    HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED);
	EQ_INT(run_kind(
		   admin, HSMKEY__V1__REQUEST__OP_SIGN, "hsmkey-keyset", &res),
	    HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED);
	EQ_INT(run_bytes(admin, newer, sizeof(newer), &res),
	    HSMKEY__V1__STATUS__STATUS_UNIMPLEMENTED);
	EQ_INT(run_bytes(admin, junk, sizeof(junk), &res),
	    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	EQ_STR(res.op, "malformed");
	EQ_INT(run_bytes(admin, junk, 0, &res),
	    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	/* with the grant, the handler runs: the key is made */
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_CREATE, "k2", &res),
	    HSMKEY__V1__STATUS__STATUS_OK);
	EQ_INT(res.changes_state, 1);
	EQ_STR(res.key, "k2");
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_CREATE, "k2", &res),
	    HSMKEY__V1__STATUS__STATUS_ALREADY_EXISTS);
}

/* A reason: taken by changes only, checked before the grant and before
 * anything is done, and handed on for the audit line. */
static void
test_reason(void)
{
	static const char *const everything[] = { "admin:*", "sign:*", NULL };
	static const char *const bad[] = { "a\nb", "q\"x", "b\\s", "\xc3(",
		NULL };
	struct dispatch_result	 res;
	struct client		*admin, *nogrant;
	char			 big[HK_AUDIT_STR_MAX + 2];
	size_t			 i;

	need_server();
	admin = client_with("reasoned", everything);
	nogrant = client_with(
	    "noreason", (const char *const[]){ "verify:zzz", NULL });
	reason = "INC-7 r\xc3\xa9sum\xc3\xa9";
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_CREATE, "r1", &res),
	    HSMKEY__V1__STATUS__STATUS_OK);
	EQ_STR(res.reason, reason);
	/* a denied change keeps its reason for its audit line */
	EQ_INT(run_kind(nogrant, HSMKEY__V1__REQUEST__OP_ROTATE, "r1", &res),
	    HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED);
	EQ_STR(res.reason, reason);
	/* not on what changes nothing */
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_DESCRIBE, "r1", &res),
	    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_SIGN, "r1", &res),
	    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	/* refused ones: nothing is made */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; bad[i] != NULL; i++) {
		reason = bad[i];
		EQ_INT(run_kind(
			   admin, HSMKEY__V1__REQUEST__OP_CREATE, "r2", &res),
		    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	}
	reason = big;
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_CREATE, "r2", &res),
	    HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT);
	big[HK_AUDIT_STR_MAX] = '\0';
	reason = NULL;
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_DESCRIBE, "r2", &res),
	    HSMKEY__V1__STATUS__STATUS_NOT_FOUND);
	/* 200 bytes are enough */
	reason = big;
	EQ_INT(run_kind(admin, HSMKEY__V1__REQUEST__OP_CREATE, "r2", &res),
	    HSMKEY__V1__STATUS__STATUS_OK);
	EQ_INT(strlen(res.reason), HK_AUDIT_STR_MAX);
	reason = NULL;
}

TEST_LIST = {
	{ "table_complete", test_table_complete },
	{ "denied_without_grant", test_denied_without_grant },
	{ "granted_passes", test_granted_passes },
	{ "refusals", test_refusals },
	{ "reason", test_reason },
	{ "close", testserver_test_close },
	{ NULL, NULL },
};

TEST_MAIN
