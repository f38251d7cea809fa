/* crypto.c: digests, encodings and verification (see crypto.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto.h"
#include "hk_err.h"

int
crypto_digest(const struct hk_alg_info *ai, const uint8_t *msg, size_t len,
    uint8_t *out, size_t *outlen)
{
	unsigned int n = 0;

	*outlen = 0;
	if (ai->md == NULL) {
		return HK_ERR_INVALID; /* signs the message itself */
	}
	if (EVP_Digest(msg, len, out, &n, ai->md(), NULL) != 1) {
		return HK_ERR_INTERNAL;
	}
	*outlen = n;
	return 0;
}

int
crypto_ecdsa_raw_to_der(uint8_t *sig, size_t *len, size_t cap)
{
	ECDSA_SIG     *es = NULL;
	BIGNUM	      *r = NULL, *s = NULL;
	unsigned char *p;
	size_t	       half = *len / 2;
	int	       n, ret = HK_ERR_INTERNAL;

	if (*len == 0 || *len % 2 != 0) {
		return HK_ERR_INVALID;
	}
	if ((es = ECDSA_SIG_new()) == NULL ||
	    (r = BN_bin2bn(sig, (int)half, NULL)) == NULL ||
	    (s = BN_bin2bn(sig + half, (int)half, NULL)) == NULL) {
		ret = HK_ERR_NOMEM;
		goto out;
	}
	if (ECDSA_SIG_set0(es, r, s) != 1) {
		goto out;
	}
	r = s = NULL;
	if ((n = i2d_ECDSA_SIG(es, NULL)) <= 0 || (size_t)n > cap) {
		goto out;
	}
	p = sig;
	if (i2d_ECDSA_SIG(es, &p) != n) {
		goto out;
	}
	*len = (size_t)n;
	ret = 0;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return ret;
}

int
crypto_ecdsa_der_to_raw(
    const uint8_t *der, size_t len, size_t field, uint8_t *out)
{
	const unsigned char *p = der;
	const BIGNUM	    *r, *s;
	ECDSA_SIG	    *es;
	int		     ret = HK_ERR_BAD_SIGNATURE;

	if (len > INT32_MAX) {
		return HK_ERR_INVALID;
	}
	if ((es = d2i_ECDSA_SIG(NULL, &p, (long)len)) == NULL) {
		return HK_ERR_BAD_SIGNATURE;
	}
	if (p != der + len) {
		goto out; /* trailing bytes */
	}
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, out, (int)field) < 0 ||
	    BN_bn2binpad(s, out + field, (int)field) < 0) {
		goto out;
	}
	ret = 0;
out:
	ECDSA_SIG_free(es);
	return ret;
}

int
crypto_digest_info(
    const uint8_t *digest, size_t len, uint8_t *out, size_t *outlen)
{
	/* DER of DigestInfo { sha256, OCTET STRING (32) } without the hash */
	static const uint8_t prefix[] = {
		0x30,
		0x31,
		0x30,
		0x0d,
		0x06,
		0x09,
		0x60,
		0x86,
		0x48,
		0x01,
		0x65,
		0x03,
		0x04,
		0x02,
		0x01,
		0x05,
		0x00,
		0x04,
		0x20,
	};

	if (len != 32 || *outlen < sizeof(prefix) + len) {
		return HK_ERR_INVALID;
	}
	memcpy(out, prefix, sizeof(prefix));
	memcpy(out + sizeof(prefix), digest, len);
	*outlen = sizeof(prefix) + len;
	return 0;
}

int
crypto_pubkey_parse(const uint8_t *der, size_t len, EVP_PKEY **pkeyp)
{
	const unsigned char *p = der;
	EVP_PKEY	    *pkey;

	*pkeyp = NULL;
	if (len > INT32_MAX) {
		return HK_ERR_INVALID;
	}
	if ((pkey = d2i_PUBKEY(NULL, &p, (long)len)) == NULL) {
		return HK_ERR_DECODE;
	}
	*pkeyp = pkey;
	return 0;
}

/* Pure Ed25519 over the message. */
static int
verify_eddsa(EVP_PKEY *pkey, const uint8_t *data, size_t len,
    const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX *mctx;
	int	    r = HK_ERR_INTERNAL;

	if ((mctx = EVP_MD_CTX_new()) == NULL) {
		return HK_ERR_NOMEM;
	}
	if (EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pkey) == 1) {
		r = EVP_DigestVerify(mctx, sig, siglen, data, len) == 1
		    ? 0
		    : HK_ERR_BAD_SIGNATURE;
	}
	EVP_MD_CTX_free(mctx);
	return r;
}

/* The RSA padding of scheme on ctx, with the hash of ai (PSS: MGF1 of the
 * same hash, salt as long as the digest). */
static int
set_rsa_padding(
    EVP_PKEY_CTX *ctx, const struct hk_alg_info *ai, enum hk_scheme scheme)
{
	if (scheme == HK_SCHEME_RSA_PKCS1) {
		return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) ==
		    1 &&
		    EVP_PKEY_CTX_set_signature_md(ctx, ai->md()) == 1;
	}
	return EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(ctx, ai->md()) == 1 &&
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, ai->md()) == 1 &&
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)ai->digest_len) == 1;
}

int
crypto_verify(EVP_PKEY *pkey, const struct hk_alg_info *ai,
    const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen,
    int raw, int pkcs1)
{
	enum hk_scheme scheme = hk_alg_scheme(ai, pkcs1);
	EVP_PKEY_CTX  *ctx = NULL;
	uint8_t	       der[CRYPTO_MAX_SIG];
	size_t	       derlen;
	int	       r = HK_ERR_INTERNAL;

	if (scheme == HK_SCHEME_NONE ||
	    (raw && (ai->allows & HK_ALLOW_RAW) == 0)) {
		return HK_ERR_INVALID;
	}
	if (scheme == HK_SCHEME_EDDSA) {
		return verify_eddsa(pkey, data, len, sig, siglen);
	}
	if (raw) {
		/* r||s -> DER so that OpenSSL can check it */
		if (siglen == 0 || siglen > sizeof(der) / 2) {
			return HK_ERR_BAD_SIGNATURE;
		}
		memcpy(der, sig, siglen);
		derlen = siglen;
		if (crypto_ecdsa_raw_to_der(der, &derlen, sizeof(der)) != 0) {
			return HK_ERR_BAD_SIGNATURE;
		}
		sig = der;
		siglen = derlen;
	}
	if ((ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL) {
		return HK_ERR_NOMEM;
	}
	if (EVP_PKEY_verify_init(ctx) != 1 ||
	    (scheme != HK_SCHEME_ECDSA && !set_rsa_padding(ctx, ai, scheme))) {
		goto out;
	}
	r = EVP_PKEY_verify(ctx, sig, siglen, data, len) == 1
	    ? 0
	    : HK_ERR_BAD_SIGNATURE;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}
