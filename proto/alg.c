/* alg.c: the algorithm table (see alg.h, DESIGN.md "Algorithms"). */
#include <string.h>

#include "alg.h"
#include "hk_err.h"

/*
 * One row per algorithm; the first is the default (ALG_UNSPECIFIED).
 * DESIGN.md: ECDSA hashes with SHA-256 (P-256) or SHA-384 (P-384); RSA
 * signs SHA-256 with PSS, PKCS#1 v1.5 on request; ed25519 signs the message
 * itself, so it takes no digest.  Raw r||s is for ECDSA only.
 */
static const struct hk_alg_info algs[] = {
	{ .alg = HK_ALG_ECDSA_P256,
	    .name = "ecdsa-p256",
	    .hash = "SHA-256",
	    .digest_len = 32,
	    .md = EVP_sha256,
	    .key = HK_KEY_EC_P256,
	    .curve = "P-256",
	    .field_len = 32,
	    .scheme = HK_SCHEME_ECDSA,
	    .pkcs1 = HK_SCHEME_NONE,
	    .allows = HK_ALLOW_DIGEST | HK_ALLOW_RAW },
	{ .alg = HK_ALG_ECDSA_P384,
	    .name = "ecdsa-p384",
	    .hash = "SHA-384",
	    .digest_len = 48,
	    .md = EVP_sha384,
	    .key = HK_KEY_EC_P384,
	    .curve = "P-384",
	    .field_len = 48,
	    .scheme = HK_SCHEME_ECDSA,
	    .pkcs1 = HK_SCHEME_NONE,
	    .allows = HK_ALLOW_DIGEST | HK_ALLOW_RAW },
	{ .alg = HK_ALG_ED25519,
	    .name = "ed25519",
	    .hash = NULL,
	    .digest_len = 0,
	    .md = NULL,
	    .key = HK_KEY_ED25519,
	    .curve = "ED25519",
	    .field_len = 0,
	    .scheme = HK_SCHEME_EDDSA,
	    .pkcs1 = HK_SCHEME_NONE,
	    .allows = 0 },
	{ .alg = HK_ALG_RSA_2048,
	    .name = "rsa-2048",
	    .hash = "SHA-256",
	    .digest_len = 32,
	    .md = EVP_sha256,
	    .key = HK_KEY_RSA,
	    .rsa_bits = 2048,
	    .scheme = HK_SCHEME_RSA_PSS,
	    .pkcs1 = HK_SCHEME_RSA_PKCS1,
	    .allows = HK_ALLOW_DIGEST | HK_ALLOW_PKCS1 },
	{ .alg = HK_ALG_RSA_3072,
	    .name = "rsa-3072",
	    .hash = "SHA-256",
	    .digest_len = 32,
	    .md = EVP_sha256,
	    .key = HK_KEY_RSA,
	    .rsa_bits = 3072,
	    .scheme = HK_SCHEME_RSA_PSS,
	    .pkcs1 = HK_SCHEME_RSA_PKCS1,
	    .allows = HK_ALLOW_DIGEST | HK_ALLOW_PKCS1 },
	{ .alg = HK_ALG_RSA_4096,
	    .name = "rsa-4096",
	    .hash = "SHA-256",
	    .digest_len = 32,
	    .md = EVP_sha256,
	    .key = HK_KEY_RSA,
	    .rsa_bits = 4096,
	    .scheme = HK_SCHEME_RSA_PSS,
	    .pkcs1 = HK_SCHEME_RSA_PKCS1,
	    .allows = HK_ALLOW_DIGEST | HK_ALLOW_PKCS1 },
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
