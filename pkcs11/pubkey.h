/*
 * pubkey.h: public key attributes read from a PKCS#11 token, turned into DER
 * SubjectPublicKeyInfo with OpenSSL 3.  Internal to pkcs11/; no PKCS#11
 * headers here, so that token.c keeps its CK_* names away from OpenSSL's.
 * Thread-safe: no shared state.
 */
#ifndef HK_PUBKEY_H
#define HK_PUBKEY_H

#include <stddef.h>
#include <stdint.h>

/*
 * EC key: params is CKA_EC_PARAMS (DER OID of a named curve), point is
 * CKA_EC_POINT, either a DER OCTET STRING around the uncompressed point or
 * the bare point.  Caller must free *derp.
 */
int pubkey_ec_der(const uint8_t *params, size_t plen, const uint8_t *point,
    size_t ptlen, uint8_t **derp, size_t *lenp);
/* Ed25519 key from CKA_EC_POINT (32 raw bytes, or wrapped in a DER OCTET
 * STRING).  Caller must free *derp. */
int pubkey_ed25519_der(
    const uint8_t *point, size_t ptlen, uint8_t **derp, size_t *lenp);
/* RSA key from CKA_MODULUS and CKA_PUBLIC_EXPONENT (big-endian).
 * Caller must free *derp. */
int pubkey_rsa_der(const uint8_t *n, size_t nlen, const uint8_t *e,
    size_t elen, uint8_t **derp, size_t *lenp);

#endif /* HK_PUBKEY_H */
