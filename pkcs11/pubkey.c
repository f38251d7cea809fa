/*
 * pubkey.c: PKCS#11 public key attributes -> DER SubjectPublicKeyInfo.
 * OpenSSL 3 provider APIs only (EVP_PKEY_fromdata); nothing deprecated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "hk_err.h"
#include "log.h"
#include "pubkey.h"

#define PUBKEY_ATTR_MAX 4096 /* no sane key attribute is longer */

/* DER SubjectPublicKeyInfo of pkey into a malloc'ed buffer. */
static int
spki_der(EVP_PKEY *pkey, uint8_t **derp, size_t *lenp)
{
	uint8_t *der = NULL, *p;
	int	 r = HK_ERR_INTERNAL, len;

	*derp = NULL;
	*lenp = 0;
	if ((len = i2d_PUBKEY(pkey, NULL)) <= 0) {
		log_warnx_f("i2d_PUBKEY failed");
		goto out;
	}
	if ((der = malloc((size_t)len)) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	p = der;
	if (i2d_PUBKEY(pkey, &p) != len) {
		log_warnx_f("i2d_PUBKEY length changed");
		goto out;
	}
	/* success */
	*derp = der;
	*lenp = (size_t)len;
	der = NULL;
	r = 0;
out:
	free(der);
	return r;
}

/*
 * The SPKI of a public key of type ("EC", "RSA") built from the parameters
 * in bld.  HK_ERR_DECODE if OpenSSL refuses them (not a valid key).
 */
static int
fromdata_der(
    const char *type, OSSL_PARAM_BLD *bld, uint8_t **derp, size_t *lenp)
{
	OSSL_PARAM   *op = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY     *pkey = NULL;
	int	      r = HK_ERR_INTERNAL;

	if ((op = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0) {
		log_warnx_f("OpenSSL %s setup failed", type);
		goto out;
	}
	if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, op) <= 0) {
		r = HK_ERR_DECODE;
		goto out;
	}
	r = spki_der(pkey, derp, lenp);
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(op);
	return r;
}

/*
 * CKA_EC_POINT is a DER OCTET STRING around the point (PKCS#11 2.40), but
 * some tokens return the bare point.  want is the length of the bare point;
 * the bare form is tried first because its first byte may look like an
 * OCTET STRING tag.  On success *ptp points into point (or into *tmpp,
 * which the caller frees with ASN1_OCTET_STRING_free).
 */
static int
unwrap_point(const uint8_t *point, size_t ptlen, size_t want,
    const uint8_t **ptp, size_t *lenp, ASN1_OCTET_STRING **tmpp)
{
	ASN1_OCTET_STRING   *os = NULL;
	const unsigned char *p = point;

	*ptp = NULL;
	*lenp = 0;
	*tmpp = NULL;
	if (ptlen == want) {
		*ptp = point;
		*lenp = ptlen;
		return 0;
	}
	if (ptlen > PUBKEY_ATTR_MAX ||
	    (os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)ptlen)) == NULL ||
	    p != point + ptlen || (size_t)ASN1_STRING_length(os) != want) {
		ASN1_OCTET_STRING_free(os);
		log_warnx_f("CKA_EC_POINT of %zu bytes is not a %zu-byte "
			    "point",
		    ptlen, want);
		return HK_ERR_DECODE;
	}
	*ptp = ASN1_STRING_get0_data(os);
	*lenp = want;
	*tmpp = os;
	return 0;
}

int
pubkey_ec_der(const uint8_t *params, size_t plen, const uint8_t *point,
    size_t ptlen, uint8_t **derp, size_t *lenp)
{
	ASN1_OBJECT	    *oid = NULL;
	ASN1_OCTET_STRING   *tmp = NULL;
	EC_GROUP	    *group = NULL;
	OSSL_PARAM_BLD	    *bld = NULL;
	const unsigned char *p = params;
	const uint8_t	    *pt;
	const char	    *name;
	size_t		     fieldlen, len;
	int		     r = HK_ERR_INTERNAL, nid, deg;

	*derp = NULL;
	*lenp = 0;
	if (plen == 0 || plen > PUBKEY_ATTR_MAX || ptlen == 0) {
		r = HK_ERR_DECODE;
		goto out;
	}
	if ((oid = d2i_ASN1_OBJECT(NULL, &p, (long)plen)) == NULL ||
	    p != params + plen) {
		log_warnx_f("CKA_EC_PARAMS is not a named curve OID");
		r = HK_ERR_UNSUPPORTED;
		goto out;
	}
	if ((nid = OBJ_obj2nid(oid)) == NID_undef ||
	    (name = OBJ_nid2sn(nid)) == NULL ||
	    (group = EC_GROUP_new_by_curve_name(nid)) == NULL ||
	    (deg = EC_GROUP_get_degree(group)) <= 0) {
		log_warnx_f("unknown EC curve");
		r = HK_ERR_UNSUPPORTED;
		goto out;
	}
	fieldlen = ((size_t)deg + 7) / 8;
	if ((r = unwrap_point(
		 point, ptlen, 2 * fieldlen + 1, &pt, &len, &tmp)) != 0) {
		goto out;
	}
	r = HK_ERR_INTERNAL;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(
		bld, OSSL_PKEY_PARAM_GROUP_NAME, name, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(
		bld, OSSL_PKEY_PARAM_PUB_KEY, pt, len)) {
		log_warnx_f("OpenSSL EC setup failed");
		goto out;
	}
	if ((r = fromdata_der("EC", bld, derp, lenp)) == HK_ERR_DECODE) {
		log_warnx_f(
		    "EC point from the token is not on curve %s", name);
	}
out:
	OSSL_PARAM_BLD_free(bld);
	EC_GROUP_free(group);
	ASN1_OCTET_STRING_free(tmp);
	ASN1_OBJECT_free(oid);
	return r;
}

int
pubkey_ed25519_der(
    const uint8_t *point, size_t ptlen, uint8_t **derp, size_t *lenp)
{
	ASN1_OCTET_STRING *tmp = NULL;
	EVP_PKEY	  *pkey = NULL;
	const uint8_t	  *pt;
	size_t		   len;
	int		   r = HK_ERR_INTERNAL;

	*derp = NULL;
	*lenp = 0;
	if ((r = unwrap_point(point, ptlen, 32, &pt, &len, &tmp)) != 0) {
		return r;
	}
	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pt, len);
	ASN1_OCTET_STRING_free(tmp); /* pkey has its own copy */
	if (pkey == NULL) {
		log_warnx_f("EVP_PKEY_new_raw_public_key failed");
		return HK_ERR_DECODE;
	}
	r = spki_der(pkey, derp, lenp);
	EVP_PKEY_free(pkey);
	return r;
}

int
pubkey_rsa_der(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen,
    uint8_t **derp, size_t *lenp)
{
	BIGNUM	       *bn_n = NULL, *bn_e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	int		r = HK_ERR_INTERNAL;

	*derp = NULL;
	*lenp = 0;
	if (nlen == 0 || nlen > PUBKEY_ATTR_MAX || elen == 0 || elen > 8) {
		r = HK_ERR_DECODE;
		goto out;
	}
	if ((bn_n = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (bn_e = BN_bin2bn(e, (int)elen, NULL)) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)) {
		log_warnx_f("OpenSSL RSA setup failed");
		goto out;
	}
	if ((r = fromdata_der("RSA", bld, derp, lenp)) == HK_ERR_DECODE) {
		log_warnx_f("bad RSA public key from the token");
	}
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return r;
}
