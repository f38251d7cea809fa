/*
 * ops_keyset.c: the keyset request (see ops.h): a JSON Web Key Set (RFC
 * 7517) of named keys, built here so that a signed set only ever holds
 * what the service knows.  Each key lists every version that verifies or
 * is pending, in version order; each entry carries, besides the JWK, its
 * state and until when it signs and verifies (NumericDate, null when no
 * end is planned).  A signed set is a compact JWS (RFC 7515) by the
 * service key SVCKEYS_KEYSET_NAME, which no client may sign with.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "crypto.h"
#include "hk_err.h"
#include "jose.h"
#include "json.h"
#include "log.h"
#include "ops.h"
#include "svckeys.h"
#include "wire.h"

#define KEYSET_MAX_NAMES 64

/* The JWS header's "typ" of a signed set. */
#define KEYSET_TYP "jwk-set+json"

/* 1 if a version in state st is in a key set. */
static int
published(enum lc_state st)
{
	return st == LC_PENDING || lifecycle_may_verify(st);
}

/* Checks the names of req: how many, valid, none twice, pubkey on each. */
static int
check_names(struct dispatch_ctx *ctx, const Hsmkey__V1__KeySetRequest *req,
    struct dispatch_reply *rep)
{
	size_t i, k;

	if (req->n_names == 0 || req->n_names > KEYSET_MAX_NAMES) {
		return ops_fail(rep, HK_ERR_INVALID,
		    "a key set names 1 to %d keys, not %zu", KEYSET_MAX_NAMES,
		    req->n_names);
	}
	for (i = 0; i < req->n_names; i++) {
		if (!hk_valid_key_name(req->names[i])) {
			return ops_fail(rep, HK_ERR_INVALID,
			    "invalid key name: use [a-z0-9][a-z0-9._-]{0,63}");
		}
		for (k = 0; k < i; k++) {
			if (strcmp(req->names[k], req->names[i]) == 0) {
				return ops_fail(rep, HK_ERR_INVALID,
				    "key '%s' is named twice", req->names[i]);
			}
		}
	}
	for (i = 0; i < req->n_names; i++) {
		if (!ops_allowed(ctx, CLIENT_OP_PUBKEY, req->names[i])) {
			return dispatch_denied(
			    ctx, rep, "read the public key of", req->names[i]);
		}
	}
	return 0;
}

/* Until when version vi of a key with policy pol signs and verifies (ms,
 * 0: no end planned), as keyring_verifier() says: overlap, then grace. */
static void
until_of(const struct keyring_vinfo *vi, const struct keyring_policy *pol,
    uint64_t *signp, uint64_t *verifyp)
{
	*signp = 0;
	*verifyp = 0;
	if (vi->state == LC_ACTIVE) {
		*signp = vi->retire_ms;
		if (vi->retire_ms != 0) {
			*verifyp =
			    hk_time_add_s(vi->retire_ms, pol->verify_grace_s);
		}
		if (pol->expires_ms != 0 &&
		    (*signp == 0 || pol->expires_ms < *signp)) {
			*signp = pol->expires_ms;
		}
	} else if (vi->state == LC_VERIFY_ONLY) {
		*verifyp = vi->retire_ms;
	}
}

/* Room in rs (arena-kept) for n more entries. */
static int
grow(struct dispatch_reply *rep, Hsmkey__V1__KeySetResponse *rs, size_t n)
{
	Hsmkey__V1__KeySetEntry **e;

	if (n == 0) {
		return 0;
	}
	if ((e = ops_calloc(rep, rs->n_entries + n, sizeof(*e))) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	if (rs->n_entries > 0) {
		memcpy(e, rs->entries, rs->n_entries * sizeof(*e));
	}
	rs->entries = e;
	return 0;
}

/* Appends the entries of key name to rs (arena-kept). */
static int
add_key(struct dispatch_ctx *ctx, struct dispatch_reply *rep, const char *name,
    Hsmkey__V1__KeySetResponse *rs)
{
	struct keyring_info info;
	size_t		    i;
	int		    r;

	if ((r = keyring_info(ctx->sv->kr, name, &info)) != 0) {
		keyring_info_clear(&info);
		return ops_key_error(rep, r, name, 0, "read the key set of");
	}
	if ((r = grow(rep, rs, info.nversions)) != 0) {
		keyring_info_clear(&info);
		return r;
	}
	for (i = 0; i < info.nversions; i++) {
		const struct keyring_vinfo *vi = &info.versions[i];
		Hsmkey__V1__KeySetEntry	   *e;
		uint8_t			   *der = NULL;
		size_t			    len;
		uint32_t		    got;
		hk_alg			    alg;

		if (!published(vi->state)) {
			continue;
		}
		if ((r = keyring_pubkey(ctx->sv->kr, ctx->s, name, vi->version,
			 &got, &alg, &der, &len)) != 0) {
			r = ops_key_error(rep, r, name, vi->version,
			    "export the public key of");
			break;
		}
		if (ops_keep(rep, der, free) == NULL ||
		    (e = ops_calloc(rep, 1, sizeof(*e))) == NULL) {
			r = ops_fail(rep, HK_ERR_NOMEM, "out of memory");
			break;
		}
		hsmkey__v1__key_set_entry__init(e);
		e->name = (char *)name; /* the request's, outlives the reply */
		e->version = vi->version;
		e->state = convert_state(vi->state);
		e->alg = hk_alg_to_wire(alg);
		e->der.data = der;
		e->der.len = len;
		until_of(
		    vi, &info.policy, &e->sign_until_ms, &e->verify_until_ms);
		rs->entries[rs->n_entries++] = e;
	}
	keyring_info_clear(&info);
	return r;
}

/* Writes "name": NumericDate of ms, or null when ms is 0. */
static void
kv_date(struct json *j, const char *name, uint64_t ms)
{
	json_key(j, name);
	if (ms == 0) {
		json_null(j);
	} else {
		json_u64(j, ms / 1000);
	}
}

/* Writes the JWK of e into j. */
static int
write_entry(struct json *j, const Hsmkey__V1__KeySetEntry *e)
{
	const struct hk_alg_info *ai = hk_alg_info(hk_alg_from_wire(e->alg));
	char			  kid[KEYRING_NAME_MAX + 16];
	int			  r;

	if (ai == NULL) {
		return HK_ERR_INTERNAL;
	}
	snprintf(kid, sizeof(kid), "%s/v%" PRIu32, e->name, e->version);
	json_object_begin(j);
	if ((r = hk_jwk_write_public(j, ai, e->der.data, e->der.len)) != 0) {
		return r;
	}
	json_kv_string(j, "kid", kid);
	json_kv_string(j, "alg", ai->jws_alg);
	json_kv_string(j, "use", "sig");
	json_kv_string(j, "hsmkey_state", hk_state_name(e->state));
	kv_date(j, "hsmkey_sign_until", e->sign_until_ms);
	kv_date(j, "hsmkey_verify_until", e->verify_until_ms);
	json_object_end(j);
	return 0;
}

/* The JSON of the set: {"keys":[...],"hsmkey_names":[...],
 * "hsmkey_issued_at":N}, one line and a newline.  Caller must free. */
static int
keyset_json(const Hsmkey__V1__KeySetRequest *req,
    const Hsmkey__V1__KeySetResponse *rs, uint64_t now_ms, char **outp)
{
	struct json j;
	FILE	   *f;
	char	   *s = NULL;
	size_t	    i, n = 0;
	int	    r = 0;

	*outp = NULL;
	if ((f = open_memstream(&s, &n)) == NULL) {
		return HK_ERR_NOMEM;
	}
	json_init(&j, f);
	json_object_begin(&j);
	json_key(&j, "keys");
	json_array_begin(&j);
	for (i = 0; r == 0 && i < rs->n_entries; i++) {
		r = write_entry(&j, rs->entries[i]);
	}
	json_array_end(&j);
	json_key(&j, "hsmkey_names");
	json_array_begin(&j);
	for (i = 0; i < req->n_names; i++) {
		json_string(&j, req->names[i]);
	}
	json_array_end(&j);
	json_kv_u64(&j, "hsmkey_issued_at", now_ms / 1000);
	json_object_end(&j);
	if (fclose(f) != 0 || s == NULL) {
		r = r != 0 ? r : HK_ERR_NOMEM;
	}
	if (r != 0) {
		free(s);
		return r;
	}
	*outp = s;
	return 0;
}

/* Signs the input of a JWS with the key set key (its version in
 * *versionp) into sig (*siglenp: its size on entry). */
static int
sign_input(struct dispatch_ctx *ctx, const struct keyring_signer *sg,
    const struct hk_alg_info *ai, const char *input, uint8_t *sig,
    size_t *siglenp)
{
	uint8_t	       digest[CRYPTO_MAX_DIGEST];
	const uint8_t *in = (const uint8_t *)input;
	size_t	       inlen = strlen(input);
	int	       r;

	if (ai->md != NULL) {
		if ((r = crypto_digest(ai, in, inlen, digest, &inlen)) != 0) {
			return r;
		}
		in = digest;
	}
	return token_sign(
	    ctx->s, sg->priv, ai->scheme, in, inlen, sig, siglenp);
}

/* The compact JWS of payload by the key set key into rs (arena-kept). */
static int
keyset_sign(struct dispatch_ctx *ctx, struct dispatch_reply *rep,
    const char *payload, Hsmkey__V1__KeySetResponse *rs)
{
	const struct hk_alg_info *ai;
	struct keyring_signer	  sg;
	uint8_t			  sig[CRYPTO_MAX_SIG];
	size_t			  siglen = sizeof(sig);
	char			  kid[KEYRING_NAME_MAX + 16];
	char			 *header = NULL, *input = NULL, *jws = NULL;
	int			  r;

	if ((r = keyring_signer(ctx->sv->kr, SVCKEYS_KEYSET_NAME, 0, &sg)) !=
		0 ||
	    (ai = hk_alg_info(sg.alg)) == NULL) {
		return ops_key_error(rep, r != 0 ? r : HK_ERR_INTERNAL,
		    SVCKEYS_KEYSET_NAME, 0, "sign a key set with");
	}
	snprintf(
	    kid, sizeof(kid), "%s/v%" PRIu32, SVCKEYS_KEYSET_NAME, sg.version);
	if ((r = hk_jws_header(ai->jws_alg, kid, KEYSET_TYP, &header)) != 0 ||
	    (r = hk_jws_signing_input(header, (const uint8_t *)payload,
		 strlen(payload), &input)) != 0) {
		r = ops_fail(rep, r, "cannot encode the key set");
		goto out;
	}
	if ((r = sign_input(ctx, &sg, ai, input, sig, &siglen)) != 0) {
		keyring_count(sg.v, KR_ERROR, 1);
		log_err_r(r, "sign a key set with %s v%" PRIu32,
		    SVCKEYS_KEYSET_NAME, sg.version);
		r = ops_key_error(rep, r, SVCKEYS_KEYSET_NAME, sg.version,
		    "sign a key set with");
		goto out;
	}
	keyring_count(sg.v, KR_SIGN, 1);
	if ((r = hk_jws_compact(input, sig, siglen, &jws)) != 0) {
		r = ops_fail(rep, r, "cannot encode the key set");
		goto out;
	}
	/* success */
	rs->jws = ops_keep(rep, jws, free);
	jws = NULL;
	rs->keyset_version = sg.version;
	r = rs->jws != NULL ? 0 : ops_fail(rep, HK_ERR_NOMEM, "out of memory");
out:
	free(header);
	free(input);
	free(jws);
	return r;
}

int
ops_keyset(struct dispatch_ctx *ctx, const Hsmkey__V1__Request *rq,
    struct dispatch_reply *rep)
{
	const Hsmkey__V1__KeySetRequest *req = rq->keyset;
	Hsmkey__V1__KeySetResponse	*rs;
	char				*json = NULL;
	size_t				 i;
	int				 r;

	if ((r = check_names(ctx, req, rep)) != 0) {
		return r;
	}
	if ((rs = ops_calloc(rep, 1, sizeof(*rs))) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	hsmkey__v1__key_set_response__init(rs);
	for (i = 0; i < req->n_names; i++) {
		if ((r = add_key(ctx, rep, req->names[i], rs)) != 0) {
			return r;
		}
	}
	if ((r = keyset_json(req, rs, hk_now_ms(), &json)) != 0) {
		return ops_fail(rep, r, "cannot encode the key set");
	}
	if ((rs->jwks = ops_keep(rep, json, free)) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	if (req->signed_ && (r = keyset_sign(ctx, rep, rs->jwks, rs)) != 0) {
		return r;
	}
	return ops_result(rep, HSMKEY__V1__RESPONSE__RESULT_KEYSET, rs, NULL);
}
