/*
 * jose.h: the pieces of JOSE that the service and the client share:
 * base64url (RFC 7515 section 2, via OpenSSL's base64), the public
 * members of a JWK (RFC 7517/7518/8037) made from a SubjectPublicKeyInfo,
 * and the compact JWS serialization (RFC 7515 section 7.1).  The JOSE
 * names of each algorithm are columns of alg.c's table.  Thread-safe.
 */
#ifndef HK_JOSE_H
#define HK_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include "alg.h"
#include "json.h"

/* base64url of len bytes, without padding.  Caller must free(*outp). */
int hk_b64url_encode(const uint8_t *in, size_t len, char **outp);

/* The JWS "alg" of a signature by ai (pkcs1: RSA PKCS#1 v1.5), or NULL
 * when ai signs no such way.  Caller does not free. */
const char *hk_jose_alg(const struct hk_alg_info *ai, int pkcs1);

/*
 * Writes the public members of the JWK of der (a SubjectPublicKeyInfo of
 * algorithm ai) into j's open object, in this order: kty, crv, x, y (EC:
 * the fixed-length coordinates); kty, crv, x (OKP); kty, n, e (RSA:
 * big-endian, no leading zero).  HK_ERR_INVALID if der is not a key of ai.
 */
int hk_jwk_write_public(struct json *j, const struct hk_alg_info *ai,
    const uint8_t *der, size_t len);

/* The protected header {"alg":alg,"kid":kid[,"typ":typ]} (typ NULL: none)
 * as one line without a newline.  Caller must free(*outp). */
int
hk_jws_header(const char *alg, const char *kid, const char *typ, char **outp);
/* The signing input: base64url(header) "." base64url(payload).  Caller
 * must free(*outp). */
int hk_jws_signing_input(
    const char *header, const uint8_t *payload, size_t len, char **outp);
/* The compact JWS: input "." base64url(sig).  Caller must free(*outp). */
int hk_jws_compact(
    const char *input, const uint8_t *sig, size_t siglen, char **outp);

#endif /* HK_JOSE_H */
