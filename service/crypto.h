/*
 * crypto.h: the service's in-process cryptography (OpenSSL): digests,
 * signature encodings and verification with cached public keys.  Private
 * keys never come here.  Thread-safe.
 */
#ifndef HK_CRYPTO_H
#define HK_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "alg.h"

#define CRYPTO_MAX_SIG	  1024 /* RSA-4096 is 512 bytes */
#define CRYPTO_MAX_DIGEST 64

/* Hashes msg with the algorithm's hash into out (digest_len bytes, at most
 * CRYPTO_MAX_DIGEST).  HK_ERR_INVALID for an algorithm without a hash. */
int crypto_digest(const struct hk_alg_info *ai, const uint8_t *msg, size_t len,
    uint8_t *out, size_t *outlen);

/* Converts raw r||s (as PKCS#11 returns it) to DER, in place; *len is the
 * buffer size on entry.  */
int crypto_ecdsa_raw_to_der(uint8_t *sig, size_t *len, size_t cap);
/* Converts DER to raw r||s of 2*field bytes. */
int crypto_ecdsa_der_to_raw(
    const uint8_t *der, size_t len, size_t field, uint8_t *out);

/* Builds the DER DigestInfo for SHA-256 (PKCS#1 v1.5). */
int crypto_digest_info(
    const uint8_t *digest, size_t len, uint8_t *out, size_t *outlen);

/* Parses DER SubjectPublicKeyInfo. Caller must EVP_PKEY_free(*pkeyp). */
int crypto_pubkey_parse(const uint8_t *der, size_t len, EVP_PKEY **pkeyp);

/*
 * Verifies sig over a digest (or, for ed25519, over the message) with the
 * scheme of ai (alg.h).  Returns 0 when valid, HK_ERR_BAD_SIGNATURE when
 * not, HK_ERR_INVALID if ai refuses raw or pkcs1, another error otherwise.
 * raw: ECDSA signature as r||s; pkcs1: RSA PKCS#1 v1.5 instead of PSS.
 */
int crypto_verify(EVP_PKEY *pkey, const struct hk_alg_info *ai,
    const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen,
    int raw, int pkcs1);

#endif /* HK_CRYPTO_H */
