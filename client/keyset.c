/*
 * keyset.c: key sets and JWS for libhsmkey: hk_keyset() (hk_client.h),
 * hsmkey_jwks() and hsmkey_sign_jws() (hsmkey.h).  The service builds and
 * signs key sets; a JWS of the caller's data is signed like any signature
 * and put together here (proto/jose.c).
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hk_call.h"
#include "jose.h"
#include "wire.h"

static const char *
str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

int
hk_keyset(struct hsmkey *h, const char *const *names, size_t n, int signed_,
    struct hk_keyset *ks)
{
	Hsmkey__V1__Request	    req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__KeySetRequest   kr = HSMKEY__V1__KEY_SET_REQUEST__INIT;
	Hsmkey__V1__Response	   *resp = NULL;
	Hsmkey__V1__KeySetResponse *rs;
	size_t			    i;
	int			    r;

	memset(ks, 0, sizeof(*ks));
	kr.names = (char **)names;
	kr.n_names = n;
	kr.signed_ = signed_ != 0;
	req.op_case = HSMKEY__V1__REQUEST__OP_KEYSET;
	req.keyset = &kr;
	if ((r = hk_client_call(
		 h, &req, HSMKEY__V1__RESPONSE__RESULT_KEYSET, &resp)) != 0) {
		return r;
	}
	ks->reply = resp;
	rs = resp->keyset;
	if (rs->jwks == NULL || rs->jwks[0] == '\0' ||
	    (signed_ && (rs->jws == NULL || rs->jws[0] == '\0'))) {
		return hk_client_error(
		    h, HSMKEY_EPROTO, "reply holds no key set");
	}
	ks->jwks = rs->jwks;
	ks->jws = str_or_empty(rs->jws);
	ks->keyset_version = rs->keyset_version;
	if (rs->n_entries > 0 &&
	    (ks->entries = calloc(rs->n_entries, sizeof(*ks->entries))) ==
		NULL) {
		return hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
	}
	for (i = 0; i < rs->n_entries; i++) {
		const Hsmkey__V1__KeySetEntry *e = rs->entries[i];
		struct hk_keyset_entry	      *o = &ks->entries[i];

		o->name = str_or_empty(e->name);
		o->version = e->version;
		o->state = hk_state_name(e->state);
		o->alg = hk_alg_name(hk_alg_from_wire(e->alg));
		o->der = e->der.data;
		o->der_len = e->der.len;
		o->sign_until_ms = e->sign_until_ms;
		o->verify_until_ms = e->verify_until_ms;
	}
	ks->n = rs->n_entries;
	return 0;
}

void
hk_keyset_free(struct hk_keyset *ks)
{
	free(ks->entries);
	hk_client_response_free(ks->reply);
	memset(ks, 0, sizeof(*ks));
}

int
hsmkey_jwks(struct hsmkey *h, const char *const *keys, size_t n, int flags,
    char **outp)
{
	struct hk_keyset ks;
	size_t		 i;
	int		 r;

	if (outp != NULL) {
		*outp = NULL;
	}
	if (h == NULL) {
		return HSMKEY_EINVAL;
	}
	if (outp == NULL || keys == NULL || n == 0 ||
	    (flags & ~HSMKEY_JWKS_SIGNED) != 0) {
		return hk_client_error(h, HSMKEY_EINVAL,
		    "give one key name or more, an output and known flags");
	}
	for (i = 0; i < n; i++) {
		if (!hk_valid_key_name(keys[i])) {
			return hk_client_error(h, HSMKEY_EINVAL,
			    "invalid key name '%.80s': use "
			    "[a-z0-9][a-z0-9._-]{0,63}",
			    keys[i] != NULL ? keys[i] : "(null)");
		}
	}
	if ((r = hk_keyset(h, keys, n, flags & HSMKEY_JWKS_SIGNED, &ks)) ==
		0 &&
	    (*outp = strdup(
		 (flags & HSMKEY_JWKS_SIGNED) ? ks.jws : ks.jwks)) == NULL) {
		r = hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
	}
	hk_keyset_free(&ks);
	return r;
}

/* Signs the JWS signing input with version of key into a new *sigp of
 * *lenp bytes: the digest for algorithms that hash, else the input; raw
 * r||s for ECDSA.  Caller must free(*sigp). */
static int
sign_input(struct hsmkey *h, const char *key, uint32_t version,
    const struct hk_alg_info *ai, int flags, const char *input, uint8_t **sigp,
    size_t *lenp)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int  dlen = 0;
	char	     *text = NULL;
	uint32_t      got = 0;
	int	      r;

	if ((ai->allows & HK_ALLOW_RAW) != 0) {
		flags |= HSMKEY_SIG_RAW;
	}
	if (ai->md == NULL) {
		r = hsmkey_sign_ex(
		    h, key, input, strlen(input), version, flags, &text);
	} else if (EVP_Digest(input, strlen(input), digest, &dlen, ai->md(),
		       NULL) != 1) {
		return hk_client_error(h, HSMKEY_EINTERNAL, "cannot hash");
	} else {
		r = hsmkey_sign_ex(h, key, digest, dlen, version,
		    flags | HSMKEY_DIGEST, &text);
	}
	if (r != 0) {
		return r;
	}
	if (hk_sigtext_parse(text, &got, sigp, lenp) != 0 || got != version) {
		free(*sigp);
		*sigp = NULL;
		r = hk_client_error(h, HSMKEY_EPROTO,
		    "the service signed with another version than asked");
	}
	free(text);
	return r;
}

/* The JWS header of key's primary version into *headerp, the version
 * into *versionp and its algorithm into *aip.  Caller must free. */
static int
jws_header_of(struct hsmkey *h, const char *key, int flags, char **headerp,
    uint32_t *versionp, const struct hk_alg_info **aip)
{
	struct hk_key_result	  res;
	const struct hk_alg_info *ai;
	const char		 *alg;
	char			  kid[96];
	int			  r;

	*headerp = NULL;
	if ((r = hk_key_describe(h, key, &res)) != 0) {
		goto out;
	}
	if (res.key.primary == 0) {
		r = hk_client_error(h, HSMKEY_EPRECONDITION,
		    "key '%s' has no version that signs", key);
		goto out;
	}
	if ((ai = hk_alg_by_name(res.key.alg)) == NULL ||
	    (alg = hk_jose_alg(ai, (flags & HSMKEY_RSA_PKCS1) != 0)) == NULL) {
		r = hk_client_error(h, HSMKEY_EINVAL,
		    "key '%s' (%s) has no JWS algorithm%s", key,
		    str_or_empty(res.key.alg),
		    (flags & HSMKEY_RSA_PKCS1) ? " for PKCS#1 v1.5" : "");
		goto out;
	}
	snprintf(kid, sizeof(kid), "%s/v%u", key, (unsigned)res.key.primary);
	if (hk_jws_header(alg, kid, NULL, headerp) != 0) {
		r = hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
		goto out;
	}
	/* success */
	*versionp = res.key.primary;
	*aip = ai;
	r = 0;
out:
	hk_key_result_free(&res);
	return r;
}

int
hsmkey_sign_jws(struct hsmkey *h, const char *key, const void *data,
    size_t len, int flags, char **jwsp)
{
	const struct hk_alg_info *ai = NULL;
	uint8_t			 *sig = NULL;
	size_t			  siglen = 0;
	char			 *header = NULL, *input = NULL;
	uint32_t		  version = 0;
	int			  r;

	if (jwsp != NULL) {
		*jwsp = NULL;
	}
	if (h == NULL) {
		return HSMKEY_EINVAL;
	}
	if (jwsp == NULL || (data == NULL && len > 0) ||
	    (flags & ~HSMKEY_RSA_PKCS1) != 0 || !hk_valid_key_name(key)) {
		return hk_client_error(h, HSMKEY_EINVAL,
		    "give a valid key name, the data, an output and no flag "
		    "but HSMKEY_RSA_PKCS1");
	}
	if ((r = jws_header_of(h, key, flags, &header, &version, &ai)) != 0) {
		goto out;
	}
	if (hk_jws_signing_input(header, data, len, &input) != 0) {
		r = hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = sign_input(
		 h, key, version, ai, flags, input, &sig, &siglen)) != 0) {
		goto out;
	}
	if (hk_jws_compact(input, sig, siglen, jwsp) != 0) {
		r = hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
	}
out:
	free(header);
	free(input);
	free(sig);
	return r;
}
