/* ops_sign.c: sign, verify and pubkey (see ops.h). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "codec.h"
#include "convert.h"
#include "crypto.h"
#include "hk_err.h"
#include "log.h"
#include "ops.h"
#include "wire.h"

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
		return ops_fail(rep, HK_ERR_INVALID,
		    "give a message or a digest, "
		    "not both");
	}
	if (msg->len == 0 && digest->len == 0) {
		return ops_fail(rep, HK_ERR_INVALID, "message is empty");
	}
	if (digest->len > 0 && (ai->allows & HK_ALLOW_DIGEST) == 0) {
		return ops_fail(rep, HK_ERR_INVALID,
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
			return ops_fail(rep, HK_ERR_INVALID,
			    "digest is %zu bytes; "
			    "%s takes a %zu-byte %s digest",
			    digest->len, ai->name, ai->digest_len, ai->hash);
		}
		*inp = digest->data;
		*inlenp = digest->len;
		return 0;
	}
	if ((r = crypto_digest(ai, msg->data, msg->len, dbuf, inlenp)) != 0) {
		return ops_fail(rep, r, "cannot hash the message");
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
		return ops_fail(rep, HK_ERR_INTERNAL,
		    "key of unknown algorithm %d", (int)alg);
	}
	if (format == HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW &&
	    (ai->allows & HK_ALLOW_RAW) == 0) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "raw r||s signatures are for "
		    "ECDSA keys only");
	}
	if (format != HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW &&
	    format != HSMKEY__V1__SIG_FORMAT__SIGFMT_DEFAULT) {
		return ops_fail(
		    rep, HK_ERR_INVALID, "unknown signature format");
	}
	if (padding == HSMKEY__V1__RSA_PADDING__RSA_PADDING_PKCS1V15 &&
	    (ai->allows & HK_ALLOW_PKCS1) == 0) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "PKCS#1 v1.5 is for RSA keys "
		    "only");
	}
	if (padding != HSMKEY__V1__RSA_PADDING__RSA_PADDING_PKCS1V15 &&
	    padding != HSMKEY__V1__RSA_PADDING__RSA_PADDING_PSS) {
		return ops_fail(rep, HK_ERR_INVALID, "unknown RSA padding");
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

/* What signing one item needs, fixed for the whole batch. */
struct signing {
	struct dispatch_ctx	      *ctx;
	const Hsmkey__V1__SignRequest *req;
	struct keyring_signer	       sg;
	const struct hk_alg_info      *ai;
	enum hk_scheme		       scheme;
};

/* Signs item i of the batch into *outp (kept in rep's arena). */
static int
sign_item(struct signing *g, size_t i, struct dispatch_reply *rep,
    ProtobufCBinaryData *outp)
{
	const Hsmkey__V1__SignItem *it = g->req->items[i];
	uint8_t			    dbuf[CRYPTO_MAX_DIGEST], info[64], *sig;
	const uint8_t		   *in;
	size_t			    inlen, siglen = CRYPTO_MAX_SIG;
	int			    r;

	if ((r = sign_input(rep, g->ai, &it->message, &it->digest, dbuf, &in,
		 &inlen)) != 0) {
		keyring_count(g->sg.v, KR_ERROR, 1);
		return r;
	}
	if (g->scheme == HK_SCHEME_RSA_PKCS1) {
		siglen = sizeof(info);
		if ((r = crypto_digest_info(in, inlen, info, &siglen)) != 0) {
			return ops_fail(rep, r, "cannot encode the digest");
		}
		in = info;
		inlen = siglen;
	}
	if ((sig = ops_calloc(rep, 1, CRYPTO_MAX_SIG)) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	siglen = CRYPTO_MAX_SIG;
	r = token_sign(
	    g->ctx->s, g->sg.priv, g->scheme, in, inlen, sig, &siglen);
	if (r != 0 && i == 0 && g->req->version == 0 &&
	    resign(g->ctx, g->req, &g->sg)) {
		/* a rotation retired the primary between lookup and C_Sign
		 * (the token refused it): use the new one */
		siglen = CRYPTO_MAX_SIG;
		r = token_sign(
		    g->ctx->s, g->sg.priv, g->scheme, in, inlen, sig, &siglen);
	}
	if (r != 0) {
		keyring_count(g->sg.v, KR_ERROR, 1);
		log_err_r(r, "sign %s v%" PRIu32, g->req->name, g->sg.version);
		return ops_key_error(
		    rep, r, g->req->name, g->sg.version, "sign with");
	}
	if (g->scheme == HK_SCHEME_ECDSA &&
	    g->req->format != HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW &&
	    (r = crypto_ecdsa_raw_to_der(sig, &siglen, CRYPTO_MAX_SIG)) != 0) {
		return ops_fail(rep, r, "cannot encode the signature");
	}
	outp->data = sig;
	outp->len = siglen;
	return 0;
}

/* The signer and scheme of req, or an error reply. */
static int
sign_begin(struct dispatch_ctx *ctx, const Hsmkey__V1__SignRequest *req,
    struct dispatch_reply *rep, struct signing *g)
{
	int r;

	memset(g, 0, sizeof(*g));
	g->ctx = ctx;
	g->req = req;
	if (req->n_items == 0) {
		return ops_fail(rep, HK_ERR_INVALID, "nothing to sign");
	}
	if (req->n_items > HK_MAX_BATCH) {
		return ops_fail(rep, HK_ERR_TOO_LARGE,
		    "batch of %zu items; the limit is %d", req->n_items,
		    HK_MAX_BATCH);
	}
	if ((r = keyring_signer(
		 ctx->sv->kr, req->name, req->version, &g->sg)) != 0) {
		return ops_key_error(rep, r, req->name, req->version, "sign");
	}
	if ((r = check_formats(rep, g->sg.alg, req->format, req->rsa_padding,
		 &g->ai)) != 0) {
		return r;
	}
	g->scheme = hk_alg_scheme(g->ai,
	    req->rsa_padding == HSMKEY__V1__RSA_PADDING__RSA_PADDING_PKCS1V15);
	return 0;
}

int
ops_sign(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__SignRequest *req = rq->sign;
	Hsmkey__V1__SignResponse      *sresp;
	ProtobufCBinaryData	      *sigs;
	struct signing		       g;
	size_t			       i;
	int			       r;

	if ((r = sign_begin(ctx, req, rep, &g)) != 0) {
		return r;
	}
	if ((sresp = ops_calloc(rep, 1, sizeof(*sresp))) == NULL ||
	    (sigs = ops_calloc(rep, req->n_items, sizeof(*sigs))) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	hsmkey__v1__sign_response__init(sresp);
	sresp->signatures = sigs;
	for (i = 0; i < req->n_items; i++) {
		if ((r = sign_item(&g, i, rep, &sigs[i])) != 0) {
			return r;
		}
	}
	if (rep->arena.full) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	sresp->n_signatures = req->n_items;
	sresp->version = g.sg.version;
	rep->version = g.sg.version;
	rep->items = (uint32_t)req->n_items;
	if (sigs_receipt(sresp, rep->sigs) == 0) {
		rep->has_sigs = 1;
	}
	keyring_count(g.sg.v, KR_SIGN, req->n_items);
	keyring_want_copy(ctx->sv->kr, ctx->s, g.sg.v);
	return ops_result(rep, HSMKEY__V1__RESPONSE__RESULT_SIGN, sresp, NULL);
}

int
ops_verify(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
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
		return ops_fail(rep, HK_ERR_INVALID,
		    "the signature names no key "
		    "version");
	}
	if (req->signature.len == 0 || req->signature.len > CRYPTO_MAX_SIG) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "signature is empty or too "
		    "long");
	}
	lookup = keyring_verifier(ctx->sv->kr, ctx->s, req->name, req->version,
	    &alg, &pkey, &state, &retire, &v);
	if (lookup != 0 && lookup != HK_ERR_PRECONDITION) {
		return ops_key_error(
		    rep, lookup, req->name, req->version, "verify with");
	}
	if ((vresp = ops_calloc(rep, 1, sizeof(*vresp))) == NULL) {
		EVP_PKEY_free(pkey);
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
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
			return ops_fail(
			    rep, r, "cannot verify: %s", hk_strerror(r));
		}
		vresp->valid = r == 0;
	}
	/* else: a version that may not verify (disabled, destroyed) */
	keyring_count(v, KR_VERIFY, 1);
	return ops_result(
	    rep, HSMKEY__V1__RESPONSE__RESULT_VERIFY, vresp, NULL);
}

int
ops_pubkey(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__PubkeyRequest *req = rq->pubkey;
	Hsmkey__V1__PubkeyResponse	*presp;
	uint8_t				*der = NULL;
	char				*pem = NULL;
	size_t				 len;
	uint32_t			 version;
	hk_alg				 alg;
	int				 r;

	if ((r = keyring_pubkey(ctx->sv->kr, ctx->s, req->name, req->version,
		 &version, &alg, &der, &len)) != 0) {
		return ops_key_error(rep, r, req->name, req->version,
		    "export the public key of");
	}
	ops_keep(rep, der, free);
	if ((r = hk_pubkey_pem(der, len, &pem)) != 0) {
		return ops_fail(rep, r, "cannot encode the public key");
	}
	ops_keep(rep, pem, free);
	if ((presp = ops_calloc(rep, 1, sizeof(*presp))) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	hsmkey__v1__pubkey_response__init(presp);
	presp->version = version;
	rep->version = version;
	presp->alg = hk_alg_to_wire(alg);
	presp->der.data = der;
	presp->der.len = len;
	presp->pem = pem;
	return ops_result(
	    rep, HSMKEY__V1__RESPONSE__RESULT_PUBKEY, presp, NULL);
}
