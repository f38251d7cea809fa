/* alg.c: the algorithm table (see alg.h, DESIGN.md "Algorithms"). */
#include <stdio.h>
#include <string.h>

#include "alg.h"
#include "hk_err.h"

/*
 * One row per algorithm; the first is the default (ALG_UNSPECIFIED).
 * DESIGN.md: ECDSA hashes with SHA-256 (P-256) or SHA-384 (P-384); RSA
 * signs SHA-256 with PSS, PKCS#1 v1.5 on request; ed25519 signs the message
 * itself, so it takes no digest.  Raw r||s is for ECDSA only.
 */
#define ECDSA_ALLOWS (HK_ALLOW_DIGEST | HK_ALLOW_RAW)
#define RSA_ALLOWS   (HK_ALLOW_DIGEST | HK_ALLOW_PKCS1)

/* Fields in the order of struct hk_alg_info: alg, name, hash, digest_len,
 * md, key, curve, rsa_bits, field_len, scheme, pkcs1, allows, jwk_kty,
 * jwk_crv, jws_alg, jws_pkcs1 (JOSE: RSA PSS with SHA-256 is PS256). */
static const struct hk_alg_info algs[] = {
	{ HK_ALG_ECDSA_P256, "ecdsa-p256", "SHA-256", 32, EVP_sha256,
	    HK_KEY_EC_P256, "P-256", 0, 32, HK_SCHEME_ECDSA, HK_SCHEME_NONE,
	    ECDSA_ALLOWS, "EC", "P-256", "ES256", NULL },
	{ HK_ALG_ECDSA_P384, "ecdsa-p384", "SHA-384", 48, EVP_sha384,
	    HK_KEY_EC_P384, "P-384", 0, 48, HK_SCHEME_ECDSA, HK_SCHEME_NONE,
	    ECDSA_ALLOWS, "EC", "P-384", "ES384", NULL },
	{ HK_ALG_ED25519, "ed25519", NULL, 0, NULL, HK_KEY_ED25519, "ED25519",
	    0, 0, HK_SCHEME_EDDSA, HK_SCHEME_NONE, 0, "OKP", "Ed25519",
	    "EdDSA", NULL },
	{ HK_ALG_RSA_2048, "rsa-2048", "SHA-256", 32, EVP_sha256, HK_KEY_RSA,
	    NULL, 2048, 0, HK_SCHEME_RSA_PSS, HK_SCHEME_RSA_PKCS1, RSA_ALLOWS,
	    "RSA", NULL, "PS256", "RS256" },
	{ HK_ALG_RSA_3072, "rsa-3072", "SHA-256", 32, EVP_sha256, HK_KEY_RSA,
	    NULL, 3072, 0, HK_SCHEME_RSA_PSS, HK_SCHEME_RSA_PKCS1, RSA_ALLOWS,
	    "RSA", NULL, "PS256", "RS256" },
	{ HK_ALG_RSA_4096, "rsa-4096", "SHA-256", 32, EVP_sha256, HK_KEY_RSA,
	    NULL, 4096, 0, HK_SCHEME_RSA_PSS, HK_SCHEME_RSA_PKCS1, RSA_ALLOWS,
	    "RSA", NULL, "PS256", "RS256" },
};

#define NALGS (sizeof(algs) / sizeof(algs[0]))

const struct hk_alg_info *
hk_alg_info(hk_alg alg)
{
	size_t i;

	if (alg == HK_ALG_UNSPECIFIED) {
		return &algs[0];
	}
	for (i = 0; i < NALGS; i++) {
		if (algs[i].alg == alg) {
			return &algs[i];
		}
	}
	return NULL;
}

const struct hk_alg_info *
hk_alg_by_name(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < NALGS; i++) {
		if (strcmp(algs[i].name, name) == 0) {
			return &algs[i];
		}
	}
	return NULL;
}

const struct hk_alg_info *
hk_alg_by_key(enum hk_keytype key, unsigned int rsa_bits)
{
	size_t i;

	for (i = 0; i < NALGS; i++) {
		if (algs[i].key == key &&
		    (key != HK_KEY_RSA || algs[i].rsa_bits == rsa_bits)) {
			return &algs[i];
		}
	}
	return NULL;
}

const struct hk_alg_info *
hk_alg_at(size_t i)
{
	return i < NALGS ? &algs[i] : NULL;
}

enum hk_scheme
hk_alg_scheme(const struct hk_alg_info *ai, int pkcs1)
{
	return pkcs1 ? ai->pkcs1 : ai->scheme;
}

/* What stands before row i in hk_alg_list(). */
static const char *
list_sep(size_t i)
{
	if (i == 0) {
		return "";
	}
	return i + 1 == NALGS ? " or " : ", ";
}

const char *
hk_alg_list(char *buf, size_t len)
{
	size_t i, off = 0;
	int    n;

	if (len == 0) {
		return buf;
	}
	buf[0] = '\0';
	for (i = 0; i < NALGS && off < len; i++) {
		n = snprintf(
		    buf + off, len - off, "%s%s", list_sep(i), algs[i].name);
		off += n > 0 ? (size_t)n : 0;
	}
	return buf;
}

const char *
hk_alg_name(hk_alg alg)
{
	const struct hk_alg_info *ai = hk_alg_info(alg);

	return ai != NULL ? ai->name : NULL;
}

int
hk_alg_parse(const char *name, hk_alg *algp)
{
	const struct hk_alg_info *ai = hk_alg_by_name(name);

	if (ai == NULL) {
		return HK_ERR_INVALID;
	}
	*algp = ai->alg;
	return 0;
}

size_t
hk_alg_digest_len(hk_alg alg)
{
	const struct hk_alg_info *ai = hk_alg_info(alg);

	return ai != NULL ? ai->digest_len : 0;
}
