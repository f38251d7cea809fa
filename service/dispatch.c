/* dispatch.c: request handlers (see dispatch.h). */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "codec.h"
#include "convert.h"
#include "crypto.h"
#include "dispatch.h"
#include "envelope.h"
#include "hk_err.h"
#include "log.h"
#include "test_hooks.h"
#include "wire.h"

#define ARENA_MAX (HK_MAX_BATCH * 2 + 64)

/*
 * Everything a Response points to is registered here and released after
 * the Response is encoded.
 */
struct arena_item {
	void *p;
	void (*fn)(void *);
};

/* Most replies hold a few items: those live in the reply itself, a batch
 * sign's grow on the heap (a fixed 2,064-item array per request made every
 * request a 33 KiB allocation). */
#define ARENA_INLINE 8

struct arena {
	struct arena_item  inl[ARENA_INLINE];
	struct arena_item *items;
	size_t		   n;
	size_t		   cap;
	int		   full;
};

struct dispatch_reply {
	Hsmkey__V1__Response resp;
	struct arena	     arena;
	char		     msg[512];
	uint32_t	     version; /* for dispatch_result */
	uint32_t	     items;
	int		     has_sigs;
	uint8_t		     sigs[32]; /* audit receipt */
};

static void
key_info_free_cb(void *p)
{
	convert_key_info_free(p);
}

static void *
arena_add(struct arena *a, void *p, void (*fn)(void *))
{
	struct arena_item *grown;
	size_t		   cap;

	if (p == NULL) {
		return NULL;
	}
	if (a->items == NULL) {
		a->items = a->inl;
		a->cap = ARENA_INLINE;
	}
	if (a->n == a->cap) {
		cap = a->cap * 4;
		if (a->n >= ARENA_MAX ||
		    (grown = calloc(cap, sizeof(*grown))) == NULL) {
			a->full = 1;
			fn(p);
			return NULL;
		}
		memcpy(grown, a->items, a->n * sizeof(*grown));
		if (a->items != a->inl) {
			free(a->items);
		}
		a->items = grown;
		a->cap = cap;
	}
	a->items[a->n].p = p;
	a->items[a->n].fn = fn;
	a->n++;
	return p;
}

static void *
arena_calloc(struct arena *a, size_t n, size_t size)
{
	return arena_add(a, calloc(n == 0 ? 1 : n, size), free);
}

static void
arena_release(struct arena *a)
{
	size_t i;

	for (i = a->n; i > 0; i--) {
		a->items[i - 1].fn(a->items[i - 1].p);
	}
	a->n = 0;
	if (a->items != NULL && a->items != a->inl) {
		free(a->items);
	}
	a->items = NULL;
	a->cap = 0;
}

static int fail(struct dispatch_reply *rep, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the reply to the status of r with a one-line message. */
static int
fail(struct dispatch_reply *rep, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rep->msg, sizeof(rep->msg), fmt, ap);
	va_end(ap);
	rep->resp.status = hk_status_from_err(r);
	rep->resp.message = rep->msg;
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT__NOT_SET;
	return r;
}

static int
denied(struct dispatch_ctx *ctx, struct dispatch_reply *rep, const char *op,
    const char *key)
{
	if (ctx->client != NULL) {
		clients_denied(ctx->client);
	}
	log_info("denied: client %s may not %s %s%s",
	    ctx->client ? client_id(ctx->client) : "-", op, key ? "key " : "",
	    key ? key : "clients");
	if (key == NULL) {
		return fail(rep, HK_ERR_DENIED,
		    "client '%s' may not %s: "
		    "that needs the grant admin:*",
		    ctx->client ? client_id(ctx->client) : "-", op);
	}
	return fail(rep, HK_ERR_DENIED, "client '%s' may not %s key '%s'",
	    ctx->client ? client_id(ctx->client) : "-", op, key);
}

static int
allowed(struct dispatch_ctx *ctx, enum client_op op, const char *key)
{
	if (test_hooks_skip_auth()) {
		return 1;
	}
	return clients_allowed(ctx->sv->clients, ctx->client, op, key);
}

/* Reports a keyring lookup failure for name/version. */
static int
key_error(struct dispatch_reply *rep, int r, const char *name,
    uint32_t version, const char *what)
{
	switch (r) {
	case HK_ERR_NOT_FOUND:
		if (version == 0) {
			return fail(rep, r, "key '%s' not found", name);
		}
		return fail(
		    rep, r, "key '%s' has no version %" PRIu32, name, version);
	case HK_ERR_PRECONDITION:
		if (version == 0) {
			return fail(rep, r,
			    "key '%s' has no active version "
			    "to %s",
			    name, what);
		}
		return fail(rep, r,
		    "version %" PRIu32 " of key '%s' may not "
		    "%s in its state",
		    version, name, what);
	case HK_ERR_EXISTS:
		return fail(rep, r, "key '%s' already exists", name);
	case HK_ERR_PKCS11:
	case HK_ERR_UNAVAILABLE:
		return fail(rep, r,
		    "the token failed to %s key '%s': see the "
		    "service log",
		    what, name);
	default:
		return fail(rep, r, "cannot %s key '%s': %s", what, name,
		    hk_strerror(r));
	}
}

static int
set_key_result(struct dispatch_reply *rep, struct keyring *kr,
    const char *name, uint32_t version)
{
	Hsmkey__V1__KeyResponse *kresp;
	Hsmkey__V1__KeyInfo	*info = NULL;
	struct keyring_info	 ki;
	int			 r;

	if ((r = keyring_info(kr, name, &ki)) == 0) {
		r = convert_key_info(&ki, &info);
	}
	keyring_info_clear(&ki);
	if (r != 0) {
		return fail(rep, r, "cannot describe key '%s'", name);
	}
	arena_add(&rep->arena, info, key_info_free_cb);
	if ((kresp = arena_calloc(&rep->arena, 1, sizeof(*kresp))) == NULL) {
		return fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	hsmkey__v1__key_response__init(kresp);
	kresp->key = info;
	kresp->version = version;
	rep->version = version;
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_KEY;
	rep->resp.key = kresp;
	return 0;
}

/* ---- handlers --------------------------------------------------------- */

static int
handle_ping(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	static Hsmkey__V1__PingResponse pong = HSMKEY__V1__PING_RESPONSE__INIT;

	(void)ctx;
	(void)rq;
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_PING;
	rep->resp.ping = &pong;
	return 0;
}

static int
handle_health(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	Hsmkey__V1__HealthResponse *h;
	struct server		   *sv = ctx->sv;

	(void)rq;
	if ((h = arena_calloc(&rep->arena, 1, sizeof(*h))) == NULL) {
		return fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	hsmkey__v1__health_response__init(h);
	h->version = HSMKEY_VERSION;
	h->token_ok = token_healthy(sv->tok);
	h->token_label = (char *)token_label(sv->tok);
	h->token_state = (char *)token_state(sv->tok);
	keyring_totals(sv->kr, &h->keys, &h->versions);
	h->uptime_s = (hk_now_ms() - sv->start_ms) / 1000;
	h->workers = sv->workers;
	h->protocol = HK_PROTOCOL_VERSION;
	if ((h->audit_state = arena_calloc(&rep->arena, 1, PATH_MAX + 128)) ==
	    NULL) {
		return fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	h->audit_ok = audit_health(sv->audit, h->audit_state, PATH_MAX + 128);
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_HEALTH;
	rep->resp.health = h;
	return 0;
}

/*
 * Checks message/digest and formats against alg and gives the bytes that
 * the token or the verifier takes: the digest, or the message for ed25519.
 */
static int
sign_input(struct dispatch_reply *rep, const struct hk_alg_info *ai,
    const ProtobufCBinaryData *msg, const ProtobufCBinaryData *digest,
    uint8_t *dbuf, const uint8_t **inp, size_t *inlenp)
{
	int r;

	if (msg->len > 0 && digest->len > 0) {
		return fail(rep, HK_ERR_INVALID,
		    "give a message or a digest, "
		    "not both");
	}
	if (msg->len == 0 && digest->len == 0) {
		return fail(rep, HK_ERR_INVALID, "message is empty");
	}
	if (digest->len > 0 && (ai->allows & HK_ALLOW_DIGEST) == 0) {
		return fail(rep, HK_ERR_INVALID,
		    "%s signs the message itself: a digest is refused",
		    ai->name);
	}
	if (ai->md == NULL) {
		*inp = msg->data;
		*inlenp = msg->len;
		return 0;
	}
	if (digest->len > 0) {
		if (digest->len != ai->digest_len) {
			return fail(rep, HK_ERR_INVALID,
			    "digest is %zu bytes; "
			    "%s takes a %zu-byte %s digest",
			    digest->len, ai->name, ai->digest_len, ai->hash);
		}
		*inp = digest->data;
		*inlenp = digest->len;
		return 0;
	}
	if ((r = crypto_digest(ai, msg->data, msg->len, dbuf, inlenp)) != 0) {
		return fail(rep, r, "cannot hash the message");
	}
	*inp = dbuf;
	return 0;
}

/* The table row of alg into *aip, once the formats asked of it are ones
 * it allows. */
static int
check_formats(struct dispatch_reply *rep, hk_alg alg, int format, int padding,
    const struct hk_alg_info **aip)
{
	const struct hk_alg_info *ai;

	if ((*aip = ai = hk_alg_info(alg)) == NULL) {
		return fail(rep, HK_ERR_INTERNAL,
		    "key of unknown algorithm %d", (int)alg);
	}
	if (format == HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW &&
	    (ai->allows & HK_ALLOW_RAW) == 0) {
		return fail(rep, HK_ERR_INVALID,
		    "raw r||s signatures are for "
		    "ECDSA keys only");
	}
	if (format != HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW &&
	    format != HSMKEY__V1__SIG_FORMAT__SIGFMT_DEFAULT) {
		return fail(rep, HK_ERR_INVALID, "unknown signature format");
	}
	if (padding == HSMKEY__V1__RSA_PADDING__RSA_PADDING_PKCS1V15 &&
	    (ai->allows & HK_ALLOW_PKCS1) == 0) {
		return fail(rep, HK_ERR_INVALID,
		    "PKCS#1 v1.5 is for RSA keys "
		    "only");
	}
	if (padding != HSMKEY__V1__RSA_PADDING__RSA_PADDING_PKCS1V15 &&
	    padding != HSMKEY__V1__RSA_PADDING__RSA_PADDING_PSS) {
		return fail(rep, HK_ERR_INVALID, "unknown RSA padding");
	}
	return 0;
}

/* 1 if the primary changed since sg was looked up; sg becomes the new. */
static int
resign(struct dispatch_ctx *ctx, const Hsmkey__V1__SignRequest *req,
    struct keyring_signer *sg)
{
	struct keyring_signer now;

	if (keyring_signer(ctx->sv->kr, req->name, 0, &now) != 0 ||
	    now.version == sg->version || now.alg != sg->alg) {
		return 0;
	}
	*sg = now;
	return 1;
}

/* The audit receipt of a sign: SHA-256 of its signatures' bytes, one after
 * the other in item order (what the client received). */
static int
sigs_receipt(const Hsmkey__V1__SignResponse *sresp, uint8_t out[32])
{
	EVP_MD_CTX *md;
	size_t	    i;
	int	    ok;

	if ((md = EVP_MD_CTX_new()) == NULL) {
		return HK_ERR_NOMEM;
	}
	ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
	for (i = 0; ok && i < sresp->n_signatures; i++) {
		ok = EVP_DigestUpdate(md, sresp->signatures[i].data,
			 sresp->signatures[i].len) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(md, out, NULL) == 1;
	EVP_MD_CTX_free(md);
	return ok ? 0 : HK_ERR_INTERNAL;
}

static int
handle_sign(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__SignRequest *req = rq->sign;
	Hsmkey__V1__SignResponse      *sresp;
	struct keyring_signer	       sg;
	uint8_t			       dbuf[CRYPTO_MAX_DIGEST], info[64];
	const uint8_t		      *in;
	size_t			       i, inlen, siglen, infolen;
	const struct hk_alg_info      *ai;
	enum hk_scheme		       scheme;
	int			       r;

	if (req->n_items == 0) {
		return fail(rep, HK_ERR_INVALID, "nothing to sign");
	}
	if (req->n_items > HK_MAX_BATCH) {
		return fail(rep, HK_ERR_TOO_LARGE,
		    "batch of %zu items; the "
		    "limit is %d",
		    req->n_items, HK_MAX_BATCH);
	}
	if ((r = keyring_signer(ctx->sv->kr, req->name, req->version, &sg)) !=
	    0) {
		return key_error(rep, r, req->name, req->version, "sign");
	}
	if ((r = check_formats(
		 rep, sg.alg, req->format, req->rsa_padding, &ai)) != 0) {
		return r;
	}
	scheme = hk_alg_scheme(ai,
	    req->rsa_padding == HSMKEY__V1__RSA_PADDING__RSA_PADDING_PKCS1V15);
	if ((sresp = arena_calloc(&rep->arena, 1, sizeof(*sresp))) == NULL ||
	    (sresp->signatures = arena_calloc(&rep->arena, req->n_items,
		 sizeof(*sresp->signatures))) == NULL) {
		return fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	{
		ProtobufCBinaryData *sigs = sresp->signatures;

		hsmkey__v1__sign_response__init(sresp);
		sresp->signatures = sigs;
	}
	for (i = 0; i < req->n_items; i++) {
		const Hsmkey__V1__SignItem *it = req->items[i];
		uint8_t			   *sig;

		if ((r = sign_input(rep, ai, &it->message, &it->digest, dbuf,
			 &in, &inlen)) != 0) {
			keyring_count(sg.v, KR_ERROR, 1);
			return r;
		}
		if (scheme == HK_SCHEME_RSA_PKCS1) {
			infolen = sizeof(info);
			if ((r = crypto_digest_info(
				 in, inlen, info, &infolen)) != 0) {
				return fail(
				    rep, r, "cannot encode the digest");
			}
			in = info;
			inlen = infolen;
		}
		if ((sig = arena_calloc(&rep->arena, 1, CRYPTO_MAX_SIG)) ==
		    NULL) {
			return fail(rep, HK_ERR_NOMEM, "out of memory");
		}
		siglen = CRYPTO_MAX_SIG;
		r = token_sign(
		    ctx->s, sg.priv, scheme, in, inlen, sig, &siglen);
		if (r != 0 && i == 0 && req->version == 0 &&
		    resign(ctx, req, &sg)) {
			/* a rotation retired the primary between lookup and
			 * C_Sign (the token refused it): use the new one */
			siglen = CRYPTO_MAX_SIG;
			r = token_sign(
			    ctx->s, sg.priv, scheme, in, inlen, sig, &siglen);
		}
		if (r != 0) {
			keyring_count(sg.v, KR_ERROR, 1);
			log_err_r(
			    r, "sign %s v%" PRIu32, req->name, sg.version);
			return key_error(
			    rep, r, req->name, sg.version, "sign with");
		}
		if (scheme == HK_SCHEME_ECDSA &&
		    req->format != HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW &&
		    (r = crypto_ecdsa_raw_to_der(
			 sig, &siglen, CRYPTO_MAX_SIG)) != 0) {
			return fail(rep, r, "cannot encode the signature");
		}
		sresp->signatures[i].data = sig;
		sresp->signatures[i].len = siglen;
	}
	if (rep->arena.full) {
		return fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	sresp->n_signatures = req->n_items;
	sresp->version = sg.version;
	rep->version = sg.version;
	rep->items = (uint32_t)req->n_items;
	if (sigs_receipt(sresp, rep->sigs) == 0) {
		rep->has_sigs = 1;
	}
	keyring_count(sg.v, KR_SIGN, req->n_items);
	keyring_want_copy(ctx->sv->kr, ctx->s, sg.v);
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_SIGN;
	rep->resp.sign = sresp;
	return 0;
}

static int
handle_verify(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__VerifyRequest *req = rq->verify;
	Hsmkey__V1__VerifyResponse	*vresp;
	struct kr_version		*v = NULL;
	EVP_PKEY			*pkey = NULL;
	uint8_t				 dbuf[CRYPTO_MAX_DIGEST];
	const uint8_t			*in;
	size_t				 inlen;
	hk_alg				 alg;
	const struct hk_alg_info	*ai;
	enum lc_state			 state = LC_NONE;
	uint64_t			 retire = 0;
	int				 r, lookup;

	if (req->version == 0) {
		return fail(rep, HK_ERR_INVALID,
		    "the signature names no key "
		    "version");
	}
	if (req->signature.len == 0 || req->signature.len > CRYPTO_MAX_SIG) {
		return fail(rep, HK_ERR_INVALID,
		    "signature is empty or too "
		    "long");
	}
	lookup = keyring_verifier(ctx->sv->kr, ctx->s, req->name, req->version,
	    &alg, &pkey, &state, &retire, &v);
	if (lookup != 0 && lookup != HK_ERR_PRECONDITION) {
		return key_error(
		    rep, lookup, req->name, req->version, "verify with");
	}
	if ((vresp = arena_calloc(&rep->arena, 1, sizeof(*vresp))) == NULL) {
		EVP_PKEY_free(pkey);
		return fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	hsmkey__v1__verify_response__init(vresp);
	vresp->version = req->version;
	rep->version = req->version;
	vresp->state = convert_state(state);
	vresp->retire_ms = retire;
	if ((r = check_formats(
		 rep, alg, req->format, req->rsa_padding, &ai)) != 0 ||
	    (r = sign_input(rep, ai, &req->message, &req->digest, dbuf, &in,
		 &inlen)) != 0) {
		EVP_PKEY_free(pkey);
		return r;
	}
	if (lookup == 0) {
		r = crypto_verify(pkey, ai, in, inlen, req->signature.data,
		    req->signature.len,
		    req->format == HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW,
		    req->rsa_padding ==
			HSMKEY__V1__RSA_PADDING__RSA_PADDING_PKCS1V15);
		EVP_PKEY_free(pkey);
		if (r != 0 && r != HK_ERR_BAD_SIGNATURE) {
			return fail(
			    rep, r, "cannot verify: %s", hk_strerror(r));
		}
		vresp->valid = r == 0;
	}
	/* else: a version that may not verify (disabled, destroyed) */
	keyring_count(v, KR_VERIFY, 1);
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_VERIFY;
	rep->resp.verify = vresp;
	return 0;
}

static int
handle_pubkey(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__PubkeyRequest *req = rq->pubkey;
	Hsmkey__V1__PubkeyResponse	*presp;
	EVP_PKEY			*pkey = NULL;
	uint8_t				*der = NULL;
	char				*pem = NULL;
	size_t				 len;
	uint32_t			 version;
	hk_alg				 alg;
	int				 r;

	if ((r = keyring_pubkey(ctx->sv->kr, ctx->s, req->name, req->version,
		 &version, &alg, &der, &len)) != 0) {
		return key_error(rep, r, req->name, req->version,
		    "export the public key of");
	}
	arena_add(&rep->arena, der, free);
	if ((r = crypto_pubkey_parse(der, len, &pkey)) != 0 ||
	    (r = crypto_pubkey_pem(pkey, &pem)) != 0) {
		EVP_PKEY_free(pkey);
		return fail(rep, r, "cannot encode the public key");
	}
	EVP_PKEY_free(pkey);
	arena_add(&rep->arena, pem, free);
	if ((presp = arena_calloc(&rep->arena, 1, sizeof(*presp))) == NULL) {
		return fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	hsmkey__v1__pubkey_response__init(presp);
	presp->version = version;
	rep->version = version;
	presp->alg = hk_alg_to_wire(alg);
	presp->der.data = der;
	presp->der.len = len;
	presp->pem = pem;
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_PUBKEY;
	rep->resp.pubkey = presp;
	return 0;
}

static int
handle_create(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__CreateRequest *req = rq->create;
	int				 r;

	if (hk_alg_info(hk_alg_from_wire(req->alg)) == NULL) {
		return fail(rep, HK_ERR_INVALID, "unknown algorithm");
	}
	if ((r = keyring_create(ctx->sv->kr, ctx->s, req->name,
		 hk_alg_from_wire(req->alg))) != 0) {
		return key_error(rep, r, req->name, 0, "create");
	}
	return set_key_result(rep, ctx->sv->kr, req->name, 1);
}

static int
handle_describe(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	return set_key_result(rep, ctx->sv->kr, rq->describe->name, 0);
}

static int
list_filter(void *arg, const char *name)
{
	struct dispatch_ctx *ctx = arg;

	return test_hooks_skip_auth() ||
	    clients_any_grant(ctx->sv->clients, ctx->client, name);
}

static void
infos_free_cb(void *p)
{
	convert_key_list_free(p);
}

static int
handle_list(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	Hsmkey__V1__ListResponse *l = NULL;
	struct keyring_info	 *infos;
	size_t			  n;
	int			  r;

	(void)rq;
	if ((r = keyring_list(ctx->sv->kr, list_filter, ctx, &infos, &n)) ==
	    0) {
		r = convert_key_list(infos, n, &l);
		keyring_list_free(infos, n);
	}
	if (r != 0) {
		return fail(rep, r, "cannot list keys");
	}
	arena_add(&rep->arena, l, infos_free_cb);
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_LIST;
	rep->resp.list = l;
	return 0;
}

static int
handle_rotate(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__RotateRequest *req = rq->rotate;
	uint32_t			 newv;
	int				 r;

	r = keyring_rotate(
	    ctx->sv->kr, ctx->s, req->name, req->expect, req->stage, &newv);
	if (r == HK_ERR_PRECONDITION) {
		return fail(rep, r,
		    "key '%s' is no longer at v%" PRIu32 ": "
		    "another rotation won (see 'hsmkey describe %s')",
		    req->name, req->expect, req->name);
	}
	if (r != 0) {
		return key_error(rep, r, req->name, 0, "rotate");
	}
	return set_key_result(rep, ctx->sv->kr, req->name, newv);
}

static int
handle_promote(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__PromoteRequest *req = rq->promote;
	int				  r;

	if ((r = keyring_promote(
		 ctx->sv->kr, ctx->s, req->name, req->version)) != 0) {
		if (r == HK_ERR_PRECONDITION) {
			return fail(rep, r,
			    "version %" PRIu32 " of key '%s' "
			    "is not pending (or a newer version signs)",
			    req->version, req->name);
		}
		return key_error(rep, r, req->name, req->version, "promote");
	}
	return set_key_result(rep, ctx->sv->kr, req->name, req->version);
}

static int
handle_policy(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__PolicyRequest *req = rq->policy;
	struct keyring_policy_change	 ch;
	int				 r;

	convert_policy_change(req, &ch);
	if ((r = keyring_policy(ctx->sv->kr, ctx->s, req->name, &ch)) != 0) {
		return key_error(rep, r, req->name, 0, "change the policy of");
	}
	return set_key_result(rep, ctx->sv->kr, req->name, 0);
}

static int
handle_disable(struct dispatch_ctx *ctx, const char *name, uint32_t version,
    int destroy, struct dispatch_reply *rep)
{
	int r;

	if (version == 0) {
		return fail(rep, HK_ERR_INVALID,
		    "name the version (--version "
		    "N)");
	}
	r = destroy ? keyring_destroy(ctx->sv->kr, ctx->s, name, version)
		    : keyring_disable(ctx->sv->kr, ctx->s, name, version);
	if (r == HK_ERR_PRECONDITION) {
		return fail(rep, r,
		    destroy ? "version %" PRIu32 " of key "
			      "'%s' is active: disable it first"
			    : "version %" PRIu32 " of key '%s' is destroyed",
		    version, name);
	}
	if (r != 0) {
		return key_error(
		    rep, r, name, version, destroy ? "destroy" : "disable");
	}
	return set_key_result(rep, ctx->sv->kr, name, version);
}

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
		return fail(rep, HK_ERR_NOMEM, "out of memory");
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
	if (arena_add(&rep->arena, cs, secret_resp_free) == NULL ||
	    cs->id == NULL) {
		return fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_CLIENT_SECRET;
	rep->resp.client_secret = cs;
	return 0;
}

static int
handle_client_add(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__ClientAddRequest *req = rq->client_add;
	uint8_t				    secret[HK_SECRET_LEN];
	const char			   *glob;
	enum client_op			    op;
	uint64_t			    expires;
	uint32_t			    number;
	size_t				    i;
	int				    r;

	if (req->n_grants == 0 || req->n_grants > CLIENTS_MAX_GRANTS) {
		return fail(rep, HK_ERR_INVALID, "give 1 to %d grants",
		    CLIENTS_MAX_GRANTS);
	}
	for (i = 0; i < req->n_grants; i++) {
		if (clients_parse_grant(req->grants[i], &op, &glob) != 0) {
			return fail(rep, HK_ERR_INVALID,
			    "invalid grant '%s': "
			    "use OP:GLOB with OP sign, verify, pubkey or "
			    "admin",
			    req->grants[i]);
		}
	}
	r = clients_add(ctx->sv->clients, ctx->s, req->id, req->grants,
	    req->n_grants, secret, &number, &expires);
	if (r == HK_ERR_EXISTS) {
		return fail(rep, r, "client '%s' already exists", req->id);
	}
	if (r != 0) {
		return fail(rep, r, "cannot add client '%s': %s", req->id,
		    hk_strerror(r));
	}
	return secret_result(rep, req->id, secret, number, expires);
}

static int
handle_client_rotate(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
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
		return fail(rep, r, "client '%s' not found", req->id);
	}
	if (r == HK_ERR_EXHAUSTED) {
		return fail(rep, r,
		    "client '%s' has %d live secrets: revoke "
		    "an old one first",
		    req->id, CLIENTS_MAX_SECRETS);
	}
	if (r != 0) {
		return fail(rep, r, "cannot rotate client '%s': %s", req->id,
		    hk_strerror(r));
	}
	return secret_result(rep, req->id, secret, number, expires);
}

static int
handle_client_revoke(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__ClientRevokeRequest *req = rq->client_revoke;
	static Hsmkey__V1__PingResponse done = HSMKEY__V1__PING_RESPONSE__INIT;
	int				r;

	r = clients_revoke(ctx->sv->clients, ctx->s, req->id, req->secret_no);
	if (r == HK_ERR_NOT_FOUND) {
		return fail(rep, r, "client '%s' has no live secret %" PRIu32,
		    req->id, req->secret_no);
	}
	if (r != 0) {
		return fail(rep, r, "cannot revoke: %s", hk_strerror(r));
	}
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_PING;
	rep->resp.ping = &done;
	return 0;
}

static void
client_list_free_cb(void *p)
{
	convert_client_list_free(p);
}

static int
handle_client_list(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
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
		return fail(rep, r, "cannot list clients");
	}
	arena_add(&rep->arena, cl, client_list_free_cb);
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_CLIENT_LIST;
	rep->resp.client_list = cl;
	return 0;
}

static void
stats_free_cb(void *p)
{
	convert_stats_free(p);
}

static int
handle_stats(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	Hsmkey__V1__StatsResponse   *st = NULL;
	struct keyring_vstats	    *vs = NULL;
	struct clients_secret_stats *ss = NULL;
	size_t			     i, nv = 0, ns = 0, kept = 0;
	int			     r;

	(void)rq;
	/* secrets: admin:* sees every client's, others their own */
	if ((r = keyring_stats(ctx->sv->kr, &vs, &nv)) == 0 &&
	    (r = clients_secret_stats(ctx->sv->clients,
		 allowed(ctx, CLIENT_OP_ADMIN, NULL) ? NULL : ctx->client, &ss,
		 &ns)) == 0) {
		for (i = 0; i < nv; i++) {
			if (list_filter(ctx, vs[i].key)) {
				vs[kept++] = vs[i];
			}
		}
		r = convert_stats(vs, kept, ss, ns, &st);
	}
	free(vs);
	free(ss);
	if (r != 0) {
		return fail(rep, r, "cannot read the counters");
	}
	if (arena_add(&rep->arena, st, stats_free_cb) == NULL) {
		return fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT_STATS;
	rep->resp.stats = st;
	return 0;
}

static int
handle_disable_op(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	return handle_disable(
	    ctx, rq->disable->name, rq->disable->version, 0, rep);
}

static int
handle_destroy_op(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	return handle_disable(
	    ctx, rq->destroy->name, rq->destroy->version, 1, rep);
}

/* ---- the table ---------------------------------------------------------- */

#define KEY    SUBJECT_KEY
#define CLIENT SUBJECT_CLIENT
#define NONE   SUBJECT_NONE

static const struct dispatch_op ops[] = {
	{ HSMKEY__V1__REQUEST__OP_PING, "ping", 0, NEED_MAC, NONE, NULL,
	    handle_ping },
	{ HSMKEY__V1__REQUEST__OP_HEALTH, "health", 0, NEED_MAC, NONE, NULL,
	    handle_health },
	{ HSMKEY__V1__REQUEST__OP_CREATE, "create", 1, NEED_ADMIN, KEY,
	    "create", handle_create },
	{ HSMKEY__V1__REQUEST__OP_LIST, "list", 0, NEED_SHOWN, NONE, NULL,
	    handle_list },
	{ HSMKEY__V1__REQUEST__OP_DESCRIBE, "describe", 0, NEED_ANY, KEY,
	    "describe", handle_describe },
	{ HSMKEY__V1__REQUEST__OP_SIGN, "sign", 0, NEED_SIGN, KEY, "sign with",
	    handle_sign },
	{ HSMKEY__V1__REQUEST__OP_VERIFY, "verify", 0, NEED_VERIFY, KEY,
	    "verify with", handle_verify },
	{ HSMKEY__V1__REQUEST__OP_PUBKEY, "pubkey", 0, NEED_PUBKEY, KEY,
	    "read the public key of", handle_pubkey },
	{ HSMKEY__V1__REQUEST__OP_ROTATE, "rotate", 1, NEED_ADMIN, KEY,
	    "rotate", handle_rotate },
	{ HSMKEY__V1__REQUEST__OP_PROMOTE, "promote", 1, NEED_ADMIN, KEY,
	    "promote", handle_promote },
	{ HSMKEY__V1__REQUEST__OP_POLICY, "policy", 1, NEED_ADMIN, KEY,
	    "change the policy of", handle_policy },
	{ HSMKEY__V1__REQUEST__OP_DISABLE, "disable", 1, NEED_ADMIN, KEY,
	    "disable", handle_disable_op },
	{ HSMKEY__V1__REQUEST__OP_DESTROY, "destroy", 1, NEED_ADMIN, KEY,
	    "destroy", handle_destroy_op },
	{ HSMKEY__V1__REQUEST__OP_CLIENT_ADD, "client-add", 1, NEED_ADMIN_ALL,
	    CLIENT, "manage clients", handle_client_add },
	{ HSMKEY__V1__REQUEST__OP_CLIENT_ROTATE, "client-rotate", 1,
	    NEED_ADMIN_ALL, CLIENT, "manage clients", handle_client_rotate },
	{ HSMKEY__V1__REQUEST__OP_CLIENT_REVOKE, "client-revoke", 1,
	    NEED_ADMIN_ALL, CLIENT, "manage clients", handle_client_revoke },
	{ HSMKEY__V1__REQUEST__OP_CLIENT_LIST, "client-list", 0,
	    NEED_ADMIN_ALL, NONE, "manage clients", handle_client_list },
	{ HSMKEY__V1__REQUEST__OP_STATS, "stats", 0, NEED_SHOWN, NONE, NULL,
	    handle_stats },
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

	if (op->need == NEED_SIGN && strcmp(subject, AUDIT_KEY_NAME) == 0) {
		/* the audit key signs checkpoints only: a client that could
		 * sign with it could forge them */
		return 0;
	}
	switch (op->need) {
	case NEED_MAC:
	case NEED_SHOWN: /* the handler shows only what is granted */
		return 1;
	case NEED_ANY:
		return test_hooks_skip_auth() ||
		    clients_any_grant(ctx->sv->clients, ctx->client, subject);
	case NEED_ADMIN_ALL:
		return allowed(ctx, CLIENT_OP_ADMIN, NULL);
	case NEED_SIGN:
	case NEED_VERIFY:
	case NEED_PUBKEY:
	case NEED_ADMIN:
		return allowed(ctx, on_key[op->need], subject);
	}
	return 0;
}

/*
 * Decodes req strictly.  A request whose operation is a field this
 * service does not know (a newer client's) is UNIMPLEMENTED; anything
 * else that does not decode strictly is malformed.
 */
static int
decode(struct dispatch_reply *rep, const uint8_t *buf, size_t len,
    Hsmkey__V1__Request **reqp)
{
	Hsmkey__V1__Request *lax;
	uint32_t	     tag = 0;

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
		return fail(rep, HK_ERR_UNSUPPORTED,
		    "unknown request kind %" PRIu32 ": this service "
		    "(hsmkeyd %s) does not implement it",
		    tag, HSMKEY_VERSION);
	}
	return fail(rep, HK_ERR_DECODE, "malformed request");
}

/* Everything before the handler: the row, the subject, the grant, and
 * that the audit log can record a change. */
static int
admit(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *req,
    struct dispatch_reply *rep, struct dispatch_result *res,
    const struct dispatch_op **opp)
{
	const struct dispatch_op *op;
	const char		 *subject;
	char			  why[PATH_MAX + 160];

	if ((op = find_op(req->op_case)) == NULL) {
		return fail(
		    rep, HK_ERR_INVALID, "the request names no operation");
	}
	res->op = op->name;
	subject = subject_of(req, op->subject);
	if (op->subject == SUBJECT_KEY && !hk_valid_key_name(subject)) {
		return fail(rep, HK_ERR_INVALID,
		    "invalid key name: use [a-z0-9][a-z0-9._-]{0,63}");
	}
	if (op->subject == SUBJECT_CLIENT && !hk_valid_client_id(subject)) {
		return fail(rep, HK_ERR_INVALID,
		    "invalid client id: use [A-Za-z0-9][A-Za-z0-9._@-]{0,63}");
	}
	if (subject != NULL) {
		snprintf(res->key, sizeof(res->key), "%s", subject);
	}
	if (!granted(ctx, op, subject)) {
		return denied(ctx, rep, op->verb,
		    op->subject == SUBJECT_KEY ? subject : NULL);
	}
	if (op->changes && !audit_ready(ctx->sv->audit, why, sizeof(why))) {
		/* fail closed: a change that cannot be audited is not made */
		log_warnx("client '%s': %s refused: the audit log cannot be "
			  "written",
		    ctx->client != NULL ? client_id(ctx->client) : "-",
		    op->name);
		return fail(
		    rep, HK_ERR_UNAVAILABLE, "%s; nothing was done", why);
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
		fail(rep, HK_ERR_NOMEM, "reply too large");
	}
	r = hk_encode(&rep->resp.base, outp, lenp);
	if (r == HK_ERR_TOO_LARGE) {
		arena_release(&rep->arena);
		fail(rep, r, "reply exceeds %d bytes", HK_MAX_MESSAGE);
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
		res->changes_state = op->changes;
		op->run(ctx, req, rep);
	}
	r = encode(rep, outp, lenp);
	res->status = rep->resp.status;
	res->version = rep->version;
	if (rep->resp.status == HSMKEY__V1__STATUS__STATUS_OK) {
		res->items = rep->items;
		if (rep->has_sigs) {
			res->has_sigs = 1;
			memcpy(res->sigs, rep->sigs, sizeof(res->sigs));
		}
	}
	arena_release(&rep->arena);
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
