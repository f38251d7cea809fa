/*
 * jose_test.c: base64url against RFC 4648's vectors, the JWK members of a
 * key of every algorithm (lengths, order, refusals), and the compact JWS
 * pieces (jose.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "hk_err.h"
#include "jose.h"
#include "testutil.h"

static void
test_b64url(void)
{
	static const struct {
		const char *in, *out;
	} vec[] = {
		{ "", "" },
		{ "f", "Zg" },
		{ "fo", "Zm8" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg" },
		{ "\xfb\xff", "-_8" },
	};
	size_t i;
	char  *s;

	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		PASS(hk_b64url_encode(
		    (const uint8_t *)vec[i].in, strlen(vec[i].in), &s));
		EQ_STR(s, vec[i].out);
		free(s);
	}
}

/* A new key of ai as SubjectPublicKeyInfo DER.  Caller must free. */
static uint8_t *
spki_of(const struct hk_alg_info *ai, size_t *lenp)
{
	EVP_PKEY *pkey;
	uint8_t	 *der = NULL;
	int	  n;

	if (ai->key == HK_KEY_RSA) {
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	} else if (ai->key == HK_KEY_ED25519) {
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	} else {
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", ai->curve);
	}
	TRUE(pkey != NULL);
	TRUE((n = i2d_PUBKEY(pkey, &der)) > 0);
	EVP_PKEY_free(pkey);
	*lenp = (size_t)n;
	return der;
}

/* The JWK members of der as one JSON line.  Caller must free. */
static char *
jwk_of(const struct hk_alg_info *ai, const uint8_t *der, size_t len, int *rp)
{
	struct json j;
	FILE	   *f;
	char	   *s = NULL;
	size_t	    n = 0;

	TRUE((f = open_memstream(&s, &n)) != NULL);
	json_init(&j, f);
	json_object_begin(&j);
	*rp = hk_jwk_write_public(&j, ai, der, len);
	json_object_end(&j);
	fclose(f);
	return s;
}

/* The length of the string value of "name" in json, -1 if none. */
static int
value_len(const char *json, const char *name)
{
	char	    key[32];
	const char *p, *e;

	snprintf(key, sizeof(key), "\"%s\":\"", name);
	if ((p = strstr(json, key)) == NULL) {
		return -1;
	}
	p += strlen(key);
	e = strchr(p, '"');
	return e != NULL ? (int)(e - p) : -1;
}

static void
test_jwk_members(void)
{
	const struct hk_alg_info *ai;
	uint8_t			 *der;
	size_t			  i, len, coord;
	char			 *s, want[64];
	int			  r;

	for (i = 0; (ai = hk_alg_at(i)) != NULL; i++) {
		if (ai->key == HK_KEY_RSA && ai->rsa_bits != 2048) {
			continue; /* the same code; keygen is slow */
		}
		der = spki_of(ai, &len);
		s = jwk_of(ai, der, len, &r);
		PASS(r);
		snprintf(want, sizeof(want), "{\"kty\":\"%s\",", ai->jwk_kty);
		TRUE(strncmp(s, want, strlen(want)) == 0);
		if (ai->key == HK_KEY_RSA) {
			/* 256 bytes, no leading zero; e = 65537 */
			EQ_INT(value_len(s, "n"), 342);
			TRUE(strstr(s, "\"e\":\"AQAB\"}") != NULL);
		} else {
			coord = ai->key == HK_KEY_ED25519 ? 32 : ai->field_len;
			EQ_INT(value_len(s, "x"), (int)((coord * 8 + 5) / 6));
			EQ_INT(value_len(s, "y"),
			    ai->key == HK_KEY_ED25519
				? -1
				: (int)((coord * 8 + 5) / 6));
			TRUE(strstr(s, ai->jwk_crv) != NULL);
		}
		free(s);
		/* a key of another algorithm, and a truncated key */
		s = jwk_of(
		    hk_alg_info(ai->key == HK_KEY_ED25519 ? HK_ALG_ECDSA_P256
							  : HK_ALG_ED25519),
		    der, len, &r);
		EQ_INT(r, HK_ERR_INVALID);
		free(s);
		s = jwk_of(ai, der, len - 1, &r);
		EQ_INT(r, HK_ERR_INVALID);
		free(s);
		free(der);
	}
}

static void
test_compact(void)
{
	char *h, *in, *jws;

	PASS(hk_jws_header("ES256", "k/v1", NULL, &h));
	EQ_STR(h, "{\"alg\":\"ES256\",\"kid\":\"k/v1\"}");
	PASS(hk_jws_signing_input(h, (const uint8_t *)"foo", 3, &in));
	EQ_STR(in, "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsvdjEifQ.Zm9v");
	PASS(hk_jws_compact(in, (const uint8_t *)"\xfb\xff", 2, &jws));
	EQ_STR(jws, "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsvdjEifQ.Zm9v.-_8");
	free(h);
	free(in);
	free(jws);
	PASS(hk_jws_header("ES256", "s/v2", "jwk-set+json", &h));
	EQ_STR(h,
	    "{\"alg\":\"ES256\",\"kid\":\"s/v2\",\"typ\":\"jwk-set+json\"}");
	free(h);
}

TEST_LIST = {
	{ "b64url", test_b64url },
	{ "jwk_members", test_jwk_members },
	{ "compact", test_compact },
	{ NULL, NULL },
};

TEST_MAIN
