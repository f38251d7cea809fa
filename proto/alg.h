/*
 * alg.h: the signing algorithms, one const table row each (STYLE 12): name,
 * hash and digest length, key type and size, signing schemes and the
 * signature encodings each allows.  Every per-algorithm decision in the
 * tree is a lookup here; a new algorithm is one row in alg.c.
 *
 * No protobuf header: the keyring API and pkcs11/ use these types.  The
 * numbers of enum hk_alg are those of hsmkey.proto's Algorithm (wire.c
 * asserts it).  Thread-safe: the table is const; rows are never freed.
 */
#ifndef HK_ALG_H
#define HK_ALG_H

#include <stddef.h>

#include <openssl/evp.h>

/* hsmkey.proto's Algorithm, same numbers.  0 reads as ecdsa-p256. */
enum hk_alg {
	HK_ALG_UNSPECIFIED = 0,
	HK_ALG_ECDSA_P256 = 1,
	HK_ALG_ECDSA_P384 = 2,
	HK_ALG_ED25519 = 3,
	HK_ALG_RSA_2048 = 4,
	HK_ALG_RSA_3072 = 5,
	HK_ALG_RSA_4096 = 6,
};
typedef enum hk_alg hk_alg;

/* The kind of key pair a token generates (the curve is part of it). */
enum hk_keytype {
	HK_KEY_EC_P256 = 1,
	HK_KEY_EC_P384,
	HK_KEY_ED25519,
	HK_KEY_RSA, /* of rsa_bits */
};

/* Signing schemes; pkcs11/ maps each to its CKM_* (token_keys.c). */
enum hk_scheme {
	HK_SCHEME_NONE = 0,
	HK_SCHEME_ECDSA,     /* input: the digest; the token gives r||s */
	HK_SCHEME_EDDSA,     /* input: the message (pure Ed25519) */
	HK_SCHEME_RSA_PSS,   /* input: SHA-256 digest; MGF1-SHA256, salt 32 */
	HK_SCHEME_RSA_PKCS1, /* input: DER DigestInfo (PKCS#1 v1.5) */
};

/* What a request may ask of an algorithm (hk_alg_info.allows). */
#define HK_ALLOW_DIGEST 0x1u /* a precomputed digest instead of the message */
#define HK_ALLOW_RAW	0x2u /* raw r||s signatures instead of DER */
#define HK_ALLOW_PKCS1	0x4u /* RSA PKCS#1 v1.5 padding instead of PSS */

struct hk_alg_info {
	enum hk_alg alg;
	const char *name;	   /* "ecdsa-p256", ... */
	const char *hash;	   /* "SHA-256"; NULL: signs the message */
	size_t	    digest_len;	   /* of hash; 0 when hash is NULL */
	const EVP_MD *(*md)(void); /* OpenSSL's hash; NULL with hash */
	enum hk_keytype key;
	const char     *curve;	   /* OpenSSL group or key name; NULL: RSA */
	unsigned int	rsa_bits;  /* RSA modulus; 0 for other keys */
	size_t		field_len; /* EC: bytes of r or s; 0 otherwise */
	enum hk_scheme	scheme;	   /* the default signing scheme */
	enum hk_scheme	pkcs1;	   /* with PKCS#1 v1.5; NONE if refused */
	unsigned int	allows;	   /* HK_ALLOW_* */
	const char     *jwk_kty;   /* RFC 7518 key type: "EC", "OKP", "RSA" */
	const char     *jwk_crv;   /* "P-256", "Ed25519"; NULL for RSA */
	const char     *jws_alg;   /* RFC 7518/8037 "alg" of the scheme */
	const char     *jws_pkcs1; /* the "alg" with pkcs1; NULL if refused */
};

/* The row of alg (HK_ALG_UNSPECIFIED gives ecdsa-p256's); NULL if
 * unknown.  Caller does not free. */
const struct hk_alg_info *hk_alg_info(hk_alg alg);
/* The row named name ("rsa-2048"); NULL if none.  Caller does not free. */
const struct hk_alg_info *hk_alg_by_name(const char *name);
/* The row whose key is key (for HK_KEY_RSA, of rsa_bits); NULL if none.
 * Caller does not free. */
const struct hk_alg_info *
hk_alg_by_key(enum hk_keytype key, unsigned int rsa_bits);
/* Row i of the table, 0 <= i; NULL past the last (for iteration). */
const struct hk_alg_info *hk_alg_at(size_t i);

/* The names of all rows as text, "ecdsa-p256, ..., rsa-3072 or rsa-4096",
 * into buf (always NUL-terminated, cut to len).  Returns buf. */
const char *hk_alg_list(char *buf, size_t len);

/* The scheme a signature of ai uses: pkcs1 asks for PKCS#1 v1.5.
 * HK_SCHEME_NONE if ai refuses it. */
enum hk_scheme hk_alg_scheme(const struct hk_alg_info *ai, int pkcs1);

/* "ecdsa-p256", ...; ALG_UNSPECIFIED reads as ecdsa-p256. NULL if unknown. */
const char *hk_alg_name(hk_alg alg);
/* HK_ERR_INVALID for an unknown name (*algp untouched). */
int hk_alg_parse(const char *name, hk_alg *algp);
/* Digest length the algorithm signs (32/48), 0 for ed25519 (message only)
 * and for an unknown algorithm. */
size_t hk_alg_digest_len(hk_alg alg);

#endif /* HK_ALG_H */
