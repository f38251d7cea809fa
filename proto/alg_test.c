/* alg_test.c: walks every row of the algorithm table (alg.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "alg.h"
#include "hk_err.h"
#include "testutil.h"
#include "wire.h"

/* "ecdsa-p256" -> "ALG_ECDSA_P256", hsmkey.proto's name of the value. */
static void
proto_name(const char *name, char *out, size_t len)
{
	size_t i, n = (size_t)snprintf(out, len, "ALG_%s", name);

	TRUE(n < len);
	for (i = 4; out[i] != '\0'; i++) {
		out[i] = out[i] == '-' ? '_' : (char)toupper(out[i]);
	}
}

static size_t
nrows(void)
{
	size_t n = 0;

	while (hk_alg_at(n) != NULL) {
		n++;
	}
	return n;
}

/* The numbers are hsmkey.proto's, and every value but UNSPECIFIED has a
 * row. */
static void
test_proto_values(void)
{
	const ProtobufCEnumDescriptor *d = &hsmkey__v1__algorithm__descriptor;
	const ProtobufCEnumValue      *v;
	const struct hk_alg_info      *ai;
	char			       pname[64];
	size_t			       i;

	v = protobuf_c_enum_descriptor_get_value_by_name(d, "ALG_UNSPECIFIED");
	TRUE(v != NULL);
	EQ_INT(v->value, HK_ALG_UNSPECIFIED);
	EQ_INT(d->n_values, nrows() + 1);
	for (i = 0; (ai = hk_alg_at(i)) != NULL; i++) {
		proto_name(ai->name, pname, sizeof(pname));
		v = protobuf_c_enum_descriptor_get_value_by_name(d, pname);
		if (v == NULL) {
			HK_TFAIL("%s: no %s in hsmkey.proto", ai->name, pname);
		}
		EQ_INT(v->value, ai->alg);
		EQ_INT(hk_alg_to_wire(ai->alg), v->value);
		EQ_INT(hk_alg_from_wire((Hsmkey__V1__Algorithm)v->value),
		    ai->alg);
	}
}

/* Every lookup finds the row it came from. */
static void
test_lookups(void)
{
	const struct hk_alg_info *ai;
	hk_alg			  alg;
	size_t			  i;

	EQ_INT(nrows(), 6);
	for (i = 0; (ai = hk_alg_at(i)) != NULL; i++) {
		TRUE(hk_alg_info(ai->alg) == ai);
		TRUE(hk_alg_by_name(ai->name) == ai);
		TRUE(hk_alg_by_key(ai->key, ai->rsa_bits) == ai);
		EQ_STR(hk_alg_name(ai->alg), ai->name);
		alg = HK_ALG_UNSPECIFIED;
		PASS(hk_alg_parse(ai->name, &alg));
		EQ_INT(alg, ai->alg);
		EQ_INT(hk_alg_digest_len(ai->alg), ai->digest_len);
	}
	/* the default */
	ai = hk_alg_info(HK_ALG_UNSPECIFIED);
	TRUE(ai != NULL);
	EQ_STR(ai->name, "ecdsa-p256");
	EQ_STR(hk_alg_name(HK_ALG_UNSPECIFIED), "ecdsa-p256");
	TRUE(hk_alg_at(0) == ai);
}

/* Unknown values and names are refused. */
static void
test_unknown(void)
{
	hk_alg alg = HK_ALG_ED25519;

	TRUE(hk_alg_info((hk_alg)7) == NULL);
	TRUE(hk_alg_info((hk_alg)-1) == NULL);
	TRUE(hk_alg_name((hk_alg)99) == NULL);
	EQ_INT(hk_alg_digest_len((hk_alg)99), 0);
	TRUE(hk_alg_by_name("rsa-1024") == NULL);
	TRUE(hk_alg_by_name("") == NULL);
	TRUE(hk_alg_by_name("ECDSA-P256") == NULL);
	TRUE(hk_alg_by_name(NULL) == NULL);
	FAIL(hk_alg_parse("rsa-1024", &alg), HK_ERR_INVALID);
	EQ_INT(alg, HK_ALG_ED25519); /* untouched */
	TRUE(hk_alg_by_key(HK_KEY_RSA, 1024) == NULL);
	TRUE(hk_alg_by_key((enum hk_keytype)0, 0) == NULL);
	TRUE(hk_alg_by_key((enum hk_keytype)99, 0) == NULL);
}

/* The hash: OpenSSL's of that name, of digest_len bytes; none (and no
 * digest allowed) for an algorithm that signs the message itself. */
static void
test_hashes(void)
{
	const struct hk_alg_info *ai;
	const EVP_MD		 *md, *byname;
	size_t			  i;

	for (i = 0; (ai = hk_alg_at(i)) != NULL; i++) {
		if (ai->md == NULL) {
			TRUE(ai->hash == NULL);
			EQ_INT(ai->digest_len, 0);
			EQ_INT(ai->allows & HK_ALLOW_DIGEST, 0);
			continue;
		}
		md = ai->md();
		TRUE(md != NULL && ai->hash != NULL);
		EQ_INT(EVP_MD_get_size(md), ai->digest_len);
		TRUE((byname = EVP_get_digestbyname(ai->hash)) != NULL);
		EQ_INT(EVP_MD_get_type(byname), EVP_MD_get_type(md));
		TRUE((ai->allows & HK_ALLOW_DIGEST) != 0);
	}
	/* DESIGN.md */
	EQ_STR(hk_alg_info(HK_ALG_ECDSA_P384)->hash, "SHA-384");
	EQ_STR(hk_alg_info(HK_ALG_ECDSA_P256)->hash, "SHA-256");
	EQ_STR(hk_alg_info(HK_ALG_RSA_4096)->hash, "SHA-256");
	TRUE(hk_alg_info(HK_ALG_ED25519)->md == NULL);
}

/* Key sizes: an OpenSSL key of the row's curve has field_len-byte
 * coordinates; RSA rows have the size of their name. */
static void
test_key_sizes(void)
{
	const struct hk_alg_info *ai;
	EVP_PKEY		 *pk;
	char			  want[32];
	size_t			  i;

	for (i = 0; (ai = hk_alg_at(i)) != NULL; i++) {
		if (ai->key == HK_KEY_RSA) {
			TRUE(ai->curve == NULL && ai->field_len == 0);
			snprintf(want, sizeof(want), "rsa-%u", ai->rsa_bits);
			EQ_STR(ai->name, want);
			continue;
		}
		EQ_INT(ai->rsa_bits, 0);
		TRUE(ai->curve != NULL);
		if (ai->key == HK_KEY_ED25519) {
			pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
			TRUE(pk != NULL);
			EQ_INT(EVP_PKEY_get_size(pk), 64); /* a signature */
			EQ_STR(ai->curve, "ED25519");
			EQ_INT(ai->field_len, 0);
		} else {
			pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ai->curve);
			TRUE(pk != NULL);
			EQ_INT(EVP_PKEY_get_bits(pk), ai->field_len * 8);
		}
		EVP_PKEY_free(pk);
	}
}

/* What each row allows: raw r||s for ECDSA only, PKCS#1 v1.5 for RSA only,
 * and the scheme that goes with it. */
static void
test_allows(void)
{
	const struct hk_alg_info *ai;
	size_t			  i;
	int			  ecdsa, rsa;

	for (i = 0; (ai = hk_alg_at(i)) != NULL; i++) {
		ecdsa = ai->key == HK_KEY_EC_P256 || ai->key == HK_KEY_EC_P384;
		rsa = ai->key == HK_KEY_RSA;
		EQ_INT((ai->allows & HK_ALLOW_RAW) != 0, ecdsa);
		EQ_INT((ai->allows & HK_ALLOW_PKCS1) != 0, rsa);
		EQ_INT(ai->field_len != 0, ecdsa);
		EQ_INT(hk_alg_scheme(ai, 0), ai->scheme);
		EQ_INT(hk_alg_scheme(ai, 1), ai->pkcs1);
		TRUE(ai->scheme != HK_SCHEME_NONE);
		if (ecdsa) {
			EQ_INT(ai->scheme, HK_SCHEME_ECDSA);
		} else if (rsa) {
			EQ_INT(ai->scheme, HK_SCHEME_RSA_PSS);
		} else {
			EQ_INT(ai->scheme, HK_SCHEME_EDDSA);
		}
		EQ_INT(ai->pkcs1, rsa ? HK_SCHEME_RSA_PKCS1 : HK_SCHEME_NONE);
	}
}

/* The JOSE names of each row (RFC 7518, RFC 8037): the JWS alg follows
 * the hash and the scheme, RS256 only with PKCS#1 v1.5. */
static void
test_jose(void)
{
	const struct hk_alg_info *ai;
	size_t			  i;

	for (i = 0; (ai = hk_alg_at(i)) != NULL; i++) {
		TRUE(ai->jwk_kty != NULL && ai->jws_alg != NULL);
		EQ_INT(ai->jws_pkcs1 != NULL, ai->pkcs1 != HK_SCHEME_NONE);
		EQ_INT(ai->jwk_crv == NULL, ai->key == HK_KEY_RSA);
		if (ai->scheme == HK_SCHEME_ECDSA) {
			EQ_STR(ai->jwk_kty, "EC");
			EQ_STR(ai->jws_alg,
			    ai->digest_len == 32 ? "ES256" : "ES384");
		} else if (ai->scheme == HK_SCHEME_RSA_PSS) {
			EQ_STR(ai->jwk_kty, "RSA");
			EQ_STR(ai->jws_alg, "PS256");
			EQ_STR(ai->jws_pkcs1, "RS256");
		} else {
			EQ_STR(ai->jwk_kty, "OKP");
			EQ_STR(ai->jwk_crv, "Ed25519");
			EQ_STR(ai->jws_alg, "EdDSA");
		}
	}
}

/* The list of names the CLI prints, whole and cut. */
static void
test_list(void)
{
	char buf[128], small[12];

	EQ_STR(hk_alg_list(buf, sizeof(buf)),
	    "ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072 or "
	    "rsa-4096");
	EQ_STR(hk_alg_list(small, sizeof(small)), "ecdsa-p256,");
	TRUE(hk_alg_list(small, 0) == small);
}

TEST_LIST = {
	{ "proto_values", test_proto_values },
	{ "lookups", test_lookups },
	{ "unknown", test_unknown },
	{ "hashes", test_hashes },
	{ "key_sizes", test_key_sizes },
	{ "allows", test_allows },
	{ "list", test_list },
	{ "jose", test_jose },
	{ NULL, NULL },
};

TEST_MAIN
