/*
 * bench_verify.c: the bench checks every signature it keeps with OpenSSL
 * against the public key (DER SubjectPublicKeyInfo from the service or the
 * token), never through the service.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "bench.h"

uint8_t bench_msg[BENCH_NMSG][BENCH_MSGLEN];
uint8_t bench_digest[BENCH_NMSG][32];

EVP_PKEY *
bench_pubkey(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;

	return d2i_PUBKEY(NULL, &p, (long)len);
}

/* r||s to DER ECDSA-Sig-Value; returns the DER length or 0. */
static size_t
raw_to_der(const uint8_t *sig, size_t len, uint8_t *out, size_t cap)
{
	ECDSA_SIG     *es = NULL;
	BIGNUM	      *r = NULL, *s = NULL;
	unsigned char *p = out;
	int	       n;

	if (len == 0 || len % 2 != 0 || (es = ECDSA_SIG_new()) == NULL) {
		return 0;
	}
	r = BN_bin2bn(sig, (int)(len / 2), NULL);
	s = BN_bin2bn(sig + len / 2, (int)(len / 2), NULL);
	if (r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return 0;
	}
	if ((n = i2d_ECDSA_SIG(es, NULL)) <= 0 || (size_t)n > cap) {
		ECDSA_SIG_free(es);
		return 0;
	}
	n = i2d_ECDSA_SIG(es, &p);
	ECDSA_SIG_free(es);
	return n > 0 ? (size_t)n : 0;
}

int
bench_check_sig(EVP_PKEY *pk, enum bench_alg alg, uint32_t msg,
    const uint8_t *sig, size_t len, int der)
{
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX   *mctx = NULL;
	uint8_t	      buf[BENCH_SIGMAX];
	int	      ok = 0;

	if (msg >= BENCH_NMSG) {
		return 0;
	}
	switch (alg) {
	case BENCH_ALG_ECDSA:
		if (!der) {
			if ((len = raw_to_der(sig, len, buf, sizeof(buf))) ==
			    0) {
				return 0;
			}
			sig = buf;
		}
		if ((pctx = EVP_PKEY_CTX_new(pk, NULL)) == NULL ||
		    EVP_PKEY_verify_init(pctx) != 1) {
			break;
		}
		ok = EVP_PKEY_verify(pctx, sig, len, bench_digest[msg], 32) ==
		    1;
		break;
	case BENCH_ALG_RSA:
		if ((pctx = EVP_PKEY_CTX_new(pk, NULL)) == NULL ||
		    EVP_PKEY_verify_init(pctx) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(
			pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1) {
			break;
		}
		ok = EVP_PKEY_verify(pctx, sig, len, bench_digest[msg], 32) ==
		    1;
		break;
	case BENCH_ALG_ED25519:
		if ((mctx = EVP_MD_CTX_new()) == NULL ||
		    EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pk) != 1) {
			break;
		}
		ok = EVP_DigestVerify(
			 mctx, sig, len, bench_msg[msg], BENCH_MSGLEN) == 1;
		break;
	default:
		break;
	}
	EVP_PKEY_CTX_free(pctx);
	EVP_MD_CTX_free(mctx);
	return ok;
}

int
bench_parse_sigtext(const char *text, uint32_t *versionp, uint8_t *sig,
    size_t cap, size_t *lenp)
{
	const char   *p, *b64;
	unsigned long v;
	char	     *end;
	size_t	      n, pad = 0;
	uint8_t	      buf[BENCH_SIGMAX + 4];
	int	      len;

	if (strncmp(text, "hsmkey:v", 8) != 0) {
		return -1;
	}
	p = text + 8;
	v = strtoul(p, &end, 10);
	if (end == p || *end != ':' || v == 0 || v > UINT32_MAX) {
		return -1;
	}
	b64 = end + 1;
	n = strlen(b64);
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(buf)) {
		return -1;
	}
	if ((len = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n)) <
	    0) {
		return -1;
	}
	if (b64[n - 1] == '=') {
		pad++;
	}
	if (b64[n - 2] == '=') {
		pad++;
	}
	if ((size_t)len < pad || (size_t)len - pad > cap) {
		return -1;
	}
	memcpy(sig, buf, (size_t)len - pad);
	*lenp = (size_t)len - pad;
	*versionp = (uint32_t)v;
	return 0;
}
