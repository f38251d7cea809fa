/* jose.c: base64url, JWK members and compact JWS (see jose.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "hk_err.h"
#include "jose.h"
#include "wire.h"

int
hk_b64url_encode(const uint8_t *in, size_t len, char **outp)
{
	char  *s;
	size_t i, n;
	int    r;

	*outp = NULL;
	if ((r = hk_base64_encode(in, len, &s)) != 0) {
		return r;
	}
	n = strlen(s);
	while (n > 0 && s[n - 1] == '=') {
		s[--n] = '\0';
	}
	for (i = 0; i < n; i++) {
		if (s[i] == '+') {
			s[i] = '-';
		} else if (s[i] == '/') {
			s[i] = '_';
		}
	}
	*outp = s;
	return 0;
}

const char *
hk_jose_alg(const struct hk_alg_info *ai, int pkcs1)
{
	if (ai == NULL) {
		return NULL;
	}
	return pkcs1 ? ai->jws_pkcs1 : ai->jws_alg;
}

/* Writes "name": base64url of len bytes at p. */
static int
kv_b64url(struct json *j, const char *name, const uint8_t *p, size_t len)
{
	char *s;
	int   r;

	if ((r = hk_b64url_encode(p, len, &s)) != 0) {
		return r;
	}
	json_kv_string(j, name, s);
	free(s);
	return 0;
}

/* Writes "name": the big number param of pkey, pad bytes long (0: as
 * short as it goes, at least one byte). */
static int
kv_bn(struct json *j, const char *name, const EVP_PKEY *pkey,
    const char *param, size_t pad)
{
	BIGNUM	*bn = NULL;
	uint8_t *buf = NULL;
	size_t	 len;
	int	 r = HK_ERR_INVALID;

	if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1) {
		goto out;
	}
	len = pad != 0 ? pad : (size_t)BN_num_bytes(bn);
	if (len == 0 || (pad != 0 && (size_t)BN_num_bytes(bn) > pad)) {
		goto out;
	}
	if ((buf = malloc(len)) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	if (BN_bn2binpad(bn, buf, (int)len) != (int)len) {
		r = HK_ERR_INTERNAL;
		goto out;
	}
	r = kv_b64url(j, name, buf, len);
out:
	free(buf);
	BN_free(bn);
	return r;
}

int
hk_jwk_write_public(struct json *j, const struct hk_alg_info *ai,
    const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	EVP_PKEY	    *pkey = NULL;
	uint8_t		     raw[64];
	size_t		     rawlen = sizeof(raw);
	int		     r = HK_ERR_INVALID;

	if (len > INT32_MAX ||
	    (pkey = d2i_PUBKEY(NULL, &p, (long)len)) == NULL ||
	    p != der + len) {
		goto out;
	}
	json_kv_string(j, "kty", ai->jwk_kty);
	if (ai->key == HK_KEY_RSA) {
		if (!EVP_PKEY_is_a(pkey, "RSA")) {
			goto out;
		}
		if ((r = kv_bn(j, "n", pkey, OSSL_PKEY_PARAM_RSA_N, 0)) == 0) {
			r = kv_bn(j, "e", pkey, OSSL_PKEY_PARAM_RSA_E, 0);
		}
		goto out;
	}
	json_kv_string(j, "crv", ai->jwk_crv);
	if (ai->key == HK_KEY_ED25519) {
		if (!EVP_PKEY_is_a(pkey, "ED25519") ||
		    EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) != 1) {
			goto out;
		}
		r = kv_b64url(j, "x", raw, rawlen);
		goto out;
	}
	if (!EVP_PKEY_is_a(pkey, "EC") ||
	    (size_t)EVP_PKEY_get_bits(pkey) != 8 * ai->field_len) {
		goto out;
	}
	if ((r = kv_bn(j, "x", pkey, OSSL_PKEY_PARAM_EC_PUB_X,
		 ai->field_len)) == 0) {
		r = kv_bn(
		    j, "y", pkey, OSSL_PKEY_PARAM_EC_PUB_Y, ai->field_len);
	}
out:
	EVP_PKEY_free(pkey);
	return r;
}

int
hk_jws_header(const char *alg, const char *kid, const char *typ, char **outp)
{
	struct json j;
	FILE	   *f;
	char	   *s = NULL;
	size_t	    n = 0;

	*outp = NULL;
	if ((f = open_memstream(&s, &n)) == NULL) {
		return HK_ERR_NOMEM;
	}
	json_init(&j, f);
	json_object_begin(&j);
	json_kv_string(&j, "alg", alg);
	json_kv_string(&j, "kid", kid);
	if (typ != NULL) {
		json_kv_string(&j, "typ", typ);
	}
	json_object_end(&j);
	if (fclose(f) != 0 || s == NULL) {
		free(s);
		return HK_ERR_NOMEM;
	}
	if (n > 0 && s[n - 1] == '\n') {
		s[n - 1] = '\0';
	}
	*outp = s;
	return 0;
}

/* a "." b, into a new string.  Caller must free(*outp). */
static int
dotted(const char *a, const char *b, char **outp)
{
	size_t n = strlen(a) + strlen(b) + 2;

	if ((*outp = malloc(n)) == NULL) {
		return HK_ERR_NOMEM;
	}
	snprintf(*outp, n, "%s.%s", a, b);
	return 0;
}

int
hk_jws_signing_input(
    const char *header, const uint8_t *payload, size_t len, char **outp)
{
	char *h = NULL, *p = NULL;
	int   r;

	*outp = NULL;
	if ((r = hk_b64url_encode(
		 (const uint8_t *)header, strlen(header), &h)) == 0 &&
	    (r = hk_b64url_encode(payload, len, &p)) == 0) {
		r = dotted(h, p, outp);
	}
	free(h);
	free(p);
	return r;
}

int
hk_jws_compact(
    const char *input, const uint8_t *sig, size_t siglen, char **outp)
{
	char *s = NULL;
	int   r;

	*outp = NULL;
	if ((r = hk_b64url_encode(sig, siglen, &s)) == 0) {
		r = dotted(input, s, outp);
	}
	free(s);
	return r;
}
