/* fuzz_reqs.c: one Request of every kind (see fuzz_reqs.h). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_reqs.h"
#include "hk_err.h"

/* The parts a request is built from; they live while it is packed. */
struct parts {
	Hsmkey__V1__PingRequest		ping;
	Hsmkey__V1__HealthRequest	health;
	Hsmkey__V1__CreateRequest	create;
	Hsmkey__V1__ListRequest		list;
	Hsmkey__V1__DescribeRequest	describe;
	Hsmkey__V1__SignRequest		sign;
	Hsmkey__V1__SignItem		items[3];
	Hsmkey__V1__SignItem	       *itemp[3];
	Hsmkey__V1__VerifyRequest	verify;
	Hsmkey__V1__PubkeyRequest	pubkey;
	Hsmkey__V1__RotateRequest	rotate;
	Hsmkey__V1__PromoteRequest	promote;
	Hsmkey__V1__PolicyRequest	policy;
	Hsmkey__V1__U64Value		grace, every;
	Hsmkey__V1__DisableRequest	disable;
	Hsmkey__V1__DestroyRequest	destroy;
	Hsmkey__V1__ClientAddRequest	client_add;
	char			       *grants[2];
	Hsmkey__V1__ClientRotateRequest client_rotate;
	Hsmkey__V1__ClientRevokeRequest client_revoke;
	Hsmkey__V1__ClientListRequest	client_list;
	Hsmkey__V1__StatsRequest	stats;
	Hsmkey__V1__ClientGrantRequest	client_grant;
	Hsmkey__V1__KeySetRequest	keyset;
	char			       *names[2];
};

static uint8_t digest32[32] = { 0x9f, 0x86, 0xd0, 0x81, 0x88, 0x4c, 0x7d, 0x65,
	0x9a, 0x2f, 0xea, 0xa0, 0xc5, 0x5a, 0xd0, 0x15 };
static uint8_t message[] = "a message to sign";

#define OP(x) HSMKEY__V1__REQUEST__OP_##x

static void
build_ping(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__ping_request__init(&p->ping);
	q->op_case = OP(PING);
	q->ping = &p->ping;
}

static void
build_health(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__health_request__init(&p->health);
	q->op_case = OP(HEALTH);
	q->health = &p->health;
}

static void
build_create(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__create_request__init(&p->create);
	p->create.name = "k3";
	p->create.alg = HSMKEY__V1__ALGORITHM__ALG_ECDSA_P256;
	q->op_case = OP(CREATE);
	q->create = &p->create;
}

static void
build_list(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__list_request__init(&p->list);
	q->op_case = OP(LIST);
	q->list = &p->list;
}

static void
build_describe(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__describe_request__init(&p->describe);
	p->describe.name = "k1";
	q->op_case = OP(DESCRIBE);
	q->describe = &p->describe;
}

/* A sign of n items on key: a digest, then messages. */
static void
sign_of(Hsmkey__V1__Request *q, struct parts *p, const char *key, size_t n)
{
	size_t i;

	hsmkey__v1__sign_request__init(&p->sign);
	for (i = 0; i < n; i++) {
		hsmkey__v1__sign_item__init(&p->items[i]);
		if (i == 0) {
			p->items[i].digest.data = digest32;
			p->items[i].digest.len = sizeof(digest32);
		} else {
			p->items[i].message.data = message;
			p->items[i].message.len = sizeof(message) - 1;
		}
		p->itemp[i] = &p->items[i];
	}
	p->sign.name = (char *)key;
	p->sign.items = p->itemp;
	p->sign.n_items = n;
	q->op_case = OP(SIGN);
	q->sign = &p->sign;
}

static void
build_sign(Hsmkey__V1__Request *q, struct parts *p)
{
	sign_of(q, p, "k1", 1);
}

static void
build_sign_batch(Hsmkey__V1__Request *q, struct parts *p)
{
	sign_of(q, p, "k1", 3);
	p->sign.format = HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW;
}

static void
build_sign_ed25519(Hsmkey__V1__Request *q, struct parts *p)
{
	sign_of(q, p, "k2", 2);
	p->items[0].digest.len = 0; /* Ed25519 signs messages only */
	p->items[0].message.data = message;
	p->items[0].message.len = sizeof(message) - 1;
}

static void
build_verify(Hsmkey__V1__Request *q, struct parts *p)
{
	static uint8_t sig[72] = { 0x30, 0x44, 0x02, 0x20 };

	hsmkey__v1__verify_request__init(&p->verify);
	p->verify.name = "k1";
	p->verify.version = 1;
	p->verify.digest.data = digest32;
	p->verify.digest.len = sizeof(digest32);
	p->verify.signature.data = sig;
	p->verify.signature.len = sizeof(sig);
	q->op_case = OP(VERIFY);
	q->verify = &p->verify;
}

static void
build_pubkey(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__pubkey_request__init(&p->pubkey);
	p->pubkey.name = "k1";
	q->op_case = OP(PUBKEY);
	q->pubkey = &p->pubkey;
}

static void
build_rotate(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__rotate_request__init(&p->rotate);
	p->rotate.name = "k2";
	p->rotate.stage = 1;
	q->op_case = OP(ROTATE);
	q->rotate = &p->rotate;
}

static void
build_promote(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__promote_request__init(&p->promote);
	p->promote.name = "k2";
	p->promote.version = 2;
	q->op_case = OP(PROMOTE);
	q->promote = &p->promote;
}

static void
build_policy(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__policy_request__init(&p->policy);
	hsmkey__v1__u64_value__init(&p->grace);
	hsmkey__v1__u64_value__init(&p->every);
	p->grace.value = 3600;
	p->every.value = 90 * 24 * 3600;
	p->policy.name = "k1";
	p->policy.verify_grace_s = &p->grace;
	p->policy.rotate_every_s = &p->every;
	q->op_case = OP(POLICY);
	q->policy = &p->policy;
}

static void
build_disable(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__disable_request__init(&p->disable);
	p->disable.name = "k2";
	p->disable.version = 1;
	q->op_case = OP(DISABLE);
	q->disable = &p->disable;
}

static void
build_destroy(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__destroy_request__init(&p->destroy);
	p->destroy.name = "k2";
	p->destroy.version = 1;
	q->op_case = OP(DESTROY);
	q->destroy = &p->destroy;
}

static void
build_client_add(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__client_add_request__init(&p->client_add);
	p->grants[0] = "sign:k1";
	p->grants[1] = "verify:*";
	p->client_add.id = "newcomer";
	p->client_add.grants = p->grants;
	p->client_add.n_grants = 2;
	q->op_case = OP(CLIENT_ADD);
	q->client_add = &p->client_add;
}

static void
build_client_rotate(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__client_rotate_request__init(&p->client_rotate);
	p->client_rotate.id = "victim";
	q->op_case = OP(CLIENT_ROTATE);
	q->client_rotate = &p->client_rotate;
}

static void
build_client_revoke(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__client_revoke_request__init(&p->client_revoke);
	p->client_revoke.id = "victim";
	p->client_revoke.secret_no = 1;
	q->op_case = OP(CLIENT_REVOKE);
	q->client_revoke = &p->client_revoke;
}

static void
build_client_list(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__client_list_request__init(&p->client_list);
	q->op_case = OP(CLIENT_LIST);
	q->client_list = &p->client_list;
}

static void
build_stats(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__stats_request__init(&p->stats);
	q->op_case = OP(STATS);
	q->stats = &p->stats;
}

static void
build_client_grant(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__client_grant_request__init(&p->client_grant);
	p->client_grant.id = "victim";
	p->grants[0] = "sign:k*";
	p->grants[1] = "verify:*";
	p->client_grant.n_grants = 2;
	p->client_grant.grants = p->grants;
	q->op_case = OP(CLIENT_GRANT);
	q->client_grant = &p->client_grant;
}

static void
build_keyset(Hsmkey__V1__Request *q, struct parts *p)
{
	hsmkey__v1__key_set_request__init(&p->keyset);
	p->names[0] = "k1";
	p->names[1] = "k2";
	p->keyset.names = p->names;
	p->keyset.n_names = 2;
	p->keyset.signed_ = 1;
	q->op_case = OP(KEYSET);
	q->keyset = &p->keyset;
}

static const struct {
	const char *name;
	void (*build)(Hsmkey__V1__Request *, struct parts *);
} kinds[] = {
	{ "ping", build_ping },
	{ "health", build_health },
	{ "create", build_create },
	{ "list", build_list },
	{ "describe", build_describe },
	{ "sign", build_sign },
	{ "sign-batch", build_sign_batch },
	{ "sign-ed25519", build_sign_ed25519 },
	{ "verify", build_verify },
	{ "pubkey", build_pubkey },
	{ "rotate", build_rotate },
	{ "promote", build_promote },
	{ "policy", build_policy },
	{ "disable", build_disable },
	{ "destroy", build_destroy },
	{ "client-add", build_client_add },
	{ "client-rotate", build_client_rotate },
	{ "client-revoke", build_client_revoke },
	{ "client-list", build_client_list },
	{ "stats", build_stats },
	{ "client-grant", build_client_grant },
	{ "keyset", build_keyset },
};

#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

size_t
fuzz_req_count(void)
{
	return NKINDS;
}

/* Packs q into *outp. */
static int
pack(const Hsmkey__V1__Request *q, uint8_t **outp, size_t *lenp)
{
	size_t len = hsmkey__v1__request__get_packed_size(q);

	if ((*outp = malloc(len > 0 ? len : 1)) == NULL) {
		return HK_ERR_NOMEM;
	}
	*lenp = hsmkey__v1__request__pack(q, *outp);
	return 0;
}

int
fuzz_req_pack(size_t i, const char **namep, uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request q;
	struct parts	    p;

	*outp = NULL;
	*lenp = 0;
	if (i >= NKINDS) {
		return HK_ERR_INVALID;
	}
	memset(&p, 0, sizeof(p));
	hsmkey__v1__request__init(&q);
	kinds[i].build(&q, &p);
	*namep = kinds[i].name;
	return pack(&q, outp, lenp);
}

int
fuzz_req_create(
    const char *name, Hsmkey__V1__Algorithm alg, uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request	  q;
	Hsmkey__V1__CreateRequest c;

	hsmkey__v1__request__init(&q);
	hsmkey__v1__create_request__init(&c);
	c.name = (char *)name;
	c.alg = alg;
	q.op_case = OP(CREATE);
	q.create = &c;
	return pack(&q, outp, lenp);
}
