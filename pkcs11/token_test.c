/*
 * token_test.c: token.c against a real, throw-away SoftHSM token.
 *
 * The token "hktest" is a throw-away one of tests/testtoken.h (a temp dir
 * with its own softhsm2.conf, removed at exit).  Signatures
 * are verified with OpenSSL from the DER public key the token exports.
 * `token_test NAME` runs one test (the fixture is set up lazily).
 * HK_TEST_LIST_SCALE=N adds N data objects to the "list_scale" test.
 */

#include <sys/stat.h>

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "hk_err.h"
#include "log.h"
#include "pubkey.h"
#include "testtoken.h"
#include "testutil.h"
#include "token.h"

/* the healing tests reach inside: they play the HSM that lost sessions */
#include "token_int.h"

#define TEST_URI "pkcs11:token=hktest"

/*
 * Under -Db_sanitize=address: SoftHSM 2.6.1 leaks one ASN1_OBJECT (37 bytes)
 * in every C_SignInit with an Ed25519 key (it re-parses CKA_EC_PARAMS).  Not
 * ours; suppressed here by module name, which needs the slow unwinder
 * because libcrypto has no frame pointers.  ASAN_OPTIONS/LSAN_OPTIONS in the
 * environment still take precedence.  Unused without the sanitizers.
 */
__attribute__((visibility("default"))) const char *
__asan_default_options(void);
__attribute__((visibility("default"))) const char *
__lsan_default_suppressions(void);

const char *
__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

const char *
__lsan_default_suppressions(void)
{
	return "leak:libsofthsm2.so\n";
}

static struct token	    *tok;
static struct token_session *ss;

/* The last test: closes everything while the module is still intact. */
static void
test_close(void)
{
	token_session_close(ss);
	ss = NULL;
	token_close(tok);
	tok = NULL;
	token_close(NULL);
	token_session_close(NULL);
}

/* The temp dir with the token "hktest" and a second one, "hkother", for
 * ambiguous URIs (not "hktest2": pkcs11-tool --token-label matches a
 * prefix). */
static void
need_softhsm(void)
{
	static const char *const labels[] = { "hktest", "hkother", NULL };

	testtoken_setup(labels);
}

static void
need_token(void)
{
	need_softhsm();
	if (tok == NULL) {
		PASS(token_open(&tok, SOFTHSM_MODULE, NULL, TEST_URI,
		    testtoken_pinfile()));
		PASS(token_session_open(tok, &ss));
	}
}

static void
test_wrong_pin(void)
{
	struct token *t = NULL;
	char	      bad[PATH_MAX];

	need_softhsm();
	if (tok != NULL) {
		return; /* must run before the real login */
	}
	testtoken_path(bad, sizeof(bad), "badpin");
	testtoken_write(bad, "00000000\n", 0600);
	FAIL(token_open(&t, SOFTHSM_MODULE, NULL, TEST_URI, bad), HK_ERR_PIN);
	TRUE(t == NULL);
	testtoken_write(bad, "\n", 0600); /* empty */
	FAIL(token_open(&t, SOFTHSM_MODULE, NULL, TEST_URI, bad), HK_ERR_PIN);
	testtoken_path(bad, sizeof(bad), "nonesuch");
	FAIL(token_open(&t, SOFTHSM_MODULE, NULL, TEST_URI, bad), HK_ERR_PIN);
	TRUE(t == NULL);
}

/* The PIN file itself: the right PIN in a file that is open to others,
 * a symbolic link, not regular, or someone else's is refused; the same
 * file 0600 is then taken. */
static void
test_pin_file_refused(void)
{
	static const mode_t loose[] = { 0644, 0640, 0604, 0620, 0602, 0610 };
	struct token	   *t = NULL;
	char		    f[PATH_MAX], link[PATH_MAX];
	size_t		    i;

	need_softhsm();
	if (tok != NULL) {
		return; /* must run before the real login */
	}
	testtoken_path(f, sizeof(f), "pin-copy");
	testtoken_write(f, TESTTOKEN_PIN "\n", 0600);
	for (i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		TRUE(chmod(f, loose[i]) == 0);
		FAIL(token_open(&t, SOFTHSM_MODULE, NULL, TEST_URI, f),
		    HK_ERR_PIN);
		TRUE(t == NULL);
	}
	TRUE(chmod(f, 0600) == 0);
	testtoken_path(link, sizeof(link), "pin-link");
	(void)unlink(link);
	TRUE(symlink(f, link) == 0);
	FAIL(token_open(&t, SOFTHSM_MODULE, NULL, TEST_URI, link), HK_ERR_PIN);
	TRUE(unlink(link) == 0);
	TRUE(mkfifo(link, 0600) == 0); /* refused, without blocking */
	FAIL(token_open(&t, SOFTHSM_MODULE, NULL, TEST_URI, link), HK_ERR_PIN);
	TRUE(unlink(link) == 0);
	if (geteuid() == 0) {
		TRUE(chown(f, 4242, 4242) == 0);
		FAIL(token_open(&t, SOFTHSM_MODULE, NULL, TEST_URI, f),
		    HK_ERR_PIN);
		TRUE(chown(f, 0, 0) == 0);
	}
	PASS(token_open(&t, SOFTHSM_MODULE, NULL, TEST_URI, f));
	token_close(t);
}

/* [pkcs11] allowed_modules: compared after realpath() of both sides; a
 * module off the list, or named instead of given by path, is refused. */
static void
test_allowed_modules(void)
{
	struct token *t = NULL;
	char	      real[PATH_MAX], link[PATH_MAX], list[2 * PATH_MAX + 8];

	need_softhsm();
	if (tok != NULL) {
		return; /* must run before the real login */
	}
	TRUE(realpath(SOFTHSM_MODULE, real) != NULL);
	FAIL(token_open(&t, SOFTHSM_MODULE, "/usr/lib/nonesuch.so", TEST_URI,
		 testtoken_pinfile()),
	    HK_ERR_CONFIG);
	FAIL(token_open(&t, "softhsm2", SOFTHSM_MODULE, TEST_URI,
		 testtoken_pinfile()),
	    HK_ERR_CONFIG);
	TRUE(t == NULL);
	/* a link of ours to the module: the list names the real file */
	testtoken_path(link, sizeof(link), "module-link.so");
	(void)unlink(link);
	TRUE(symlink(real, link) == 0);
	snprintf(list, sizeof(list), "/usr/lib/nonesuch.so, %s", real);
	PASS(token_open(&t, link, list, TEST_URI, testtoken_pinfile()));
	token_close(t);
	t = NULL;
	PASS(token_open(
	    &t, SOFTHSM_MODULE, link, TEST_URI, testtoken_pinfile()));
	token_close(t);
	TRUE(unlink(link) == 0);
}

static void
test_no_token(void)
{
	struct token *t = NULL;

	need_softhsm();
	if (tok != NULL) {
		return;
	}
	FAIL(token_open(&t, SOFTHSM_MODULE, NULL, "pkcs11:token=nonesuch",
		 testtoken_pinfile()),
	    HK_ERR_TOKEN_NOT_FOUND);
	TRUE(t == NULL);
	/* both tokens match: refused, not a guess */
	FAIL(token_open(&t, SOFTHSM_MODULE, NULL, "pkcs11:model=SoftHSM%20v2",
		 testtoken_pinfile()),
	    HK_ERR_CONFIG);
	FAIL(token_open(
		 &t, SOFTHSM_MODULE, NULL, "http://x", testtoken_pinfile()),
	    HK_ERR_CONFIG);
	FAIL(token_open(&t, "/nonexistent/libnone.so", NULL, TEST_URI,
		 testtoken_pinfile()),
	    HK_ERR_CONFIG);
	FAIL(token_open(&t, "no-such-p11kit-module", NULL, TEST_URI,
		 testtoken_pinfile()),
	    HK_ERR_CONFIG);
	TRUE(t == NULL);
}

/* The module by its p11-kit registered name (softhsm2.module). */
static void
test_by_name(void)
{
	struct token *t = NULL;

	need_softhsm();
	if (tok != NULL ||
	    access("/usr/share/p11-kit/modules/softhsm2.module", R_OK) != 0) {
		fprintf(stderr,
		    "softhsm2 not registered with p11-kit: "
		    "skipped\n");
		return;
	}
	PASS(token_open(&t, "softhsm2", NULL, "pkcs11:token=hkother",
	    testtoken_pinfile()));
	EQ_STR(token_label(t), "hkother");
	token_close(t);
}

static void
test_open(void)
{
	need_token();
	EQ_STR(token_label(tok), "hktest");
	TRUE(token_healthy(tok));
	EQ_STR(token_state(tok), "ok");
}

/* ---- signatures, verified by OpenSSL ---- */

static EVP_PKEY *
pubkey(token_obj_t pub)
{
	uint8_t		    *der = NULL;
	const unsigned char *p;
	size_t		     len = 0;
	EVP_PKEY	    *pk;

	PASS(token_pubkey_der(ss, pub, &der, &len));
	p = der;
	TRUE((pk = d2i_PUBKEY(NULL, &p, (long)len)) != NULL);
	TRUE(p == der + len);
	free(der);
	return pk;
}

static size_t
digest(const EVP_MD *md, const void *msg, size_t len, uint8_t *out)
{
	unsigned int n = 0;

	TRUE(EVP_Digest(msg, len, out, &n, md, NULL) == 1);
	return n;
}

/* 1 if sig verifies over dgst (or over msg for Ed25519). */
static int
verify(EVP_PKEY *pk, enum hk_scheme mech, const uint8_t *msg, size_t mlen,
    const uint8_t *dgst, size_t dlen, const uint8_t *sig, size_t slen)
{
	EVP_PKEY_CTX  *ctx = NULL;
	EVP_MD_CTX    *mctx = NULL;
	ECDSA_SIG     *es = NULL;
	BIGNUM	      *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int	       ok = 0, dl = 0;

	if (mech == HK_SCHEME_EDDSA) {
		TRUE((mctx = EVP_MD_CTX_new()) != NULL);
		TRUE(EVP_DigestVerifyInit(mctx, NULL, NULL, NULL, pk) == 1);
		ok = EVP_DigestVerify(mctx, sig, slen, msg, mlen) == 1;
		EVP_MD_CTX_free(mctx);
		return ok;
	}
	TRUE((ctx = EVP_PKEY_CTX_new(pk, NULL)) != NULL);
	TRUE(EVP_PKEY_verify_init(ctx) == 1);
	switch (mech) {
	case HK_SCHEME_ECDSA:
		/* PKCS#11 gives raw r||s; OpenSSL wants DER */
		TRUE(slen % 2 == 0);
		TRUE((r = BN_bin2bn(sig, (int)slen / 2, NULL)) != NULL);
		TRUE((s = BN_bin2bn(sig + slen / 2, (int)slen / 2, NULL)) !=
		    NULL);
		TRUE((es = ECDSA_SIG_new()) != NULL);
		TRUE(ECDSA_SIG_set0(es, r, s) == 1);
		TRUE((dl = i2d_ECDSA_SIG(es, &der)) > 0);
		sig = der;
		slen = (size_t)dl;
		break;
	case HK_SCHEME_RSA_PSS:
		TRUE(EVP_PKEY_CTX_set_rsa_padding(
			 ctx, RSA_PKCS1_PSS_PADDING) == 1);
		TRUE(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1);
		TRUE(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, EVP_sha256()) == 1);
		TRUE(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) == 1);
		break;
	case HK_SCHEME_RSA_PKCS1:
		TRUE(
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1);
		TRUE(EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1);
		break;
	default:
		TRUE(0);
	}
	ok = EVP_PKEY_verify(ctx, sig, slen, dgst, dlen) == 1;
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static const uint8_t sha256_prefix[] = { /* DigestInfo, RFC 8017 */
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
	0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20
};

/* Signs "hello" with priv, verifies with pub's DER, and a flipped bit. */
static void
sign_verify(token_obj_t priv, token_obj_t pub, enum hk_keytype type,
    enum hk_scheme mech)
{
	const char *msg = "hello";
	uint8_t	    dgst[64], in[128], sig[1024];
	size_t	    dlen = 0, inlen, slen = sizeof(sig);
	EVP_PKEY   *pk;

	pk = pubkey(pub);
	dlen = digest(type == HK_KEY_EC_P384 ? EVP_sha384() : EVP_sha256(),
	    msg, strlen(msg), dgst);
	if (mech == HK_SCHEME_EDDSA) {
		memcpy(in, msg, strlen(msg));
		inlen = strlen(msg);
	} else if (mech == HK_SCHEME_RSA_PKCS1) {
		memcpy(in, sha256_prefix, sizeof(sha256_prefix));
		memcpy(in + sizeof(sha256_prefix), dgst, dlen);
		inlen = sizeof(sha256_prefix) + dlen;
	} else {
		memcpy(in, dgst, dlen);
		inlen = dlen;
	}
	PASS(token_sign(ss, priv, mech, in, inlen, sig, &slen));
	TRUE(verify(pk, mech, (const uint8_t *)msg, strlen(msg), dgst, dlen,
	    sig, slen));
	sig[slen / 2] ^= 0x01;
	TRUE(!verify(pk, mech, (const uint8_t *)msg, strlen(msg), dgst, dlen,
	    sig, slen));
	EVP_PKEY_free(pk);
}

/* pubkey.c takes CKA_EC_POINT bare or DER-wrapped, and nothing else. */
static void
test_pubkey_forms(void)
{
	static const uint8_t p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
		0x3d, 0x03, 0x01, 0x07 };
	EVP_PKEY	    *pk, *ed;
	uint8_t pt[65], wrapped[67], raw[32], edw[34], *want = NULL, *der;
	size_t	ptlen = 0, rawlen = sizeof(raw), len;
	int	wantlen, i;

	/* a bare point whose X starts with 63 looks like DER: try it too */
	for (i = 0; i < 1000; i++) {
		TRUE((pk = EVP_EC_gen("P-256")) != NULL);
		TRUE(EVP_PKEY_get_octet_string_param(pk,
			 OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt),
			 &ptlen) == 1);
		EQ_INT(ptlen, 65);
		if (i == 0 || pt[1] == 63) {
			wantlen = i2d_PUBKEY(pk, &want);
			TRUE(wantlen > 0);
			PASS(pubkey_ec_der(
			    p256, sizeof(p256), pt, 65, &der, &len));
			TRUE(len == (size_t)wantlen &&
			    memcmp(der, want, len) == 0);
			free(der);
			wrapped[0] = 0x04;
			wrapped[1] = 65;
			memcpy(wrapped + 2, pt, 65);
			PASS(pubkey_ec_der(
			    p256, sizeof(p256), wrapped, 67, &der, &len));
			TRUE(len == (size_t)wantlen &&
			    memcmp(der, want, len) == 0);
			free(der);
			OPENSSL_free(want);
			want = NULL;
		}
		EVP_PKEY_free(pk);
		if (i > 0 && pt[1] == 63) {
			break;
		}
	}
	FAIL(pubkey_ec_der(p256, sizeof(p256), pt, 64, &der, &len),
	    HK_ERR_DECODE);
	pt[64] ^= 1; /* off the curve */
	FAIL(pubkey_ec_der(p256, sizeof(p256), pt, 65, &der, &len),
	    HK_ERR_DECODE);
	FAIL(
	    pubkey_ec_der((const uint8_t *)"\x13\x01x", 3, pt, 65, &der, &len),
	    HK_ERR_UNSUPPORTED);
	TRUE(der == NULL);

	TRUE((ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) != NULL);
	TRUE(EVP_PKEY_get_raw_public_key(ed, raw, &rawlen) == 1);
	wantlen = i2d_PUBKEY(ed, &want);
	edw[0] = 0x04;
	edw[1] = 32;
	memcpy(edw + 2, raw, 32);
	PASS(pubkey_ed25519_der(raw, 32, &der, &len));
	TRUE(len == (size_t)wantlen && memcmp(der, want, len) == 0);
	free(der);
	PASS(pubkey_ed25519_der(edw, 34, &der, &len));
	TRUE(len == (size_t)wantlen && memcmp(der, want, len) == 0);
	free(der);
	FAIL(pubkey_ed25519_der(edw, 33, &der, &len), HK_ERR_DECODE);
	OPENSSL_free(want);
	EVP_PKEY_free(ed);
}

static void
gen(enum hk_keytype type, const char *label, int can_sign, token_obj_t *priv,
    token_obj_t *pub)
{
	struct token_keyspec spec;

	memset(&spec, 0, sizeof(spec));
	spec.type = type;
	spec.rsa_bits = 2048;
	spec.label = label;
	spec.id = (const uint8_t *)label;
	spec.id_len = strlen(label);
	spec.start_ms = 1700000000000ULL;
	spec.end_ms = 1900000000000ULL;
	spec.can_sign = can_sign;
	PASS(token_generate(ss, &spec, priv, pub));
	TRUE(*priv != TOKEN_OBJ_NONE && *pub != TOKEN_OBJ_NONE);
}

/* A new key of each type signs with each scheme it allows; OpenSSL checks
 * every signature. */
static void
test_keygen(void)
{
	static const struct {
		enum hk_keytype type;
		const char     *label;
		enum hk_scheme	schemes[2]; /* HK_SCHEME_NONE: no more */
	} cases[] = {
		{ HK_KEY_EC_P256, "hk/p256/v1", { HK_SCHEME_ECDSA } },
		{ HK_KEY_EC_P384, "hk/p384/v1", { HK_SCHEME_ECDSA } },
		{ HK_KEY_ED25519, "hk/ed/v1", { HK_SCHEME_EDDSA } },
		{ HK_KEY_RSA, "hk/rsa/v1",
		    { HK_SCHEME_RSA_PSS, HK_SCHEME_RSA_PKCS1 } },
	};
	token_obj_t priv, pub;
	size_t	    i, j;

	need_token();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gen(cases[i].type, cases[i].label, 1, &priv, &pub);
		for (j = 0; j < 2 && cases[i].schemes[j] != HK_SCHEME_NONE;
		     j++) {
			sign_verify(
			    priv, pub, cases[i].type, cases[i].schemes[j]);
		}
	}
}

static void
test_bad_spec(void)
{
	struct token_keyspec spec;
	token_obj_t	     priv, pub;

	need_token();
	memset(&spec, 0, sizeof(spec));
	spec.type = HK_KEY_RSA;
	spec.rsa_bits = 1024;
	spec.label = "hk/bad";
	FAIL(token_generate(ss, &spec, &priv, &pub), HK_ERR_INVALID);
	spec.type = 99;
	FAIL(token_generate(ss, &spec, &priv, &pub), HK_ERR_INVALID);
	TRUE(priv == TOKEN_OBJ_NONE && pub == TOKEN_OBJ_NONE);
}

static void
test_sign_small_buffer(void)
{
	token_obj_t priv, pub;
	uint8_t	    dgst[32], sig[64];
	size_t	    slen = 10;

	need_token();
	gen(HK_KEY_EC_P256, "hk/small/v1", 1, &priv, &pub);
	memset(dgst, 7, sizeof(dgst));
	FAIL(token_sign(
		 ss, priv, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen),
	    HK_ERR_TOO_LARGE);
	/* the session is usable again */
	slen = sizeof(sig);
	PASS(token_sign(
	    ss, priv, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen));
	EQ_INT(slen, 64);
	TRUE(token_healthy(tok));
}

static void
test_no_sign(void)
{
	token_obj_t priv, pub;
	uint8_t	    dgst[32] = { 1 }, sig[128];
	size_t	    slen = sizeof(sig);

	need_token();
	gen(HK_KEY_EC_P256, "hk/nosign/v1", 0, &priv, &pub);
	/* SoftHSM: CKR_KEY_FUNCTION_NOT_PERMITTED */
	FAIL(token_sign(
		 ss, priv, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen),
	    HK_ERR_PRECONDITION);
	TRUE(token_healthy(tok));
}

static void
test_set_can_sign(void)
{
	token_obj_t priv, pub;
	uint8_t	    dgst[32] = { 1 }, sig[128];
	size_t	    slen = sizeof(sig);

	need_token();
	gen(HK_KEY_EC_P256, "hk/setsign/v1", 1, &priv, &pub);
	PASS(token_sign(
	    ss, priv, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen));
	/* SoftHSM 2.6.1 lets CKA_SIGN change on a modifiable key */
	PASS(token_set_can_sign(ss, priv, 0));
	slen = sizeof(sig);
	FAIL(token_sign(
		 ss, priv, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen),
	    HK_ERR_PRECONDITION);
	PASS(token_set_can_sign(ss, priv, 1));
	slen = sizeof(sig);
	PASS(token_sign(
	    ss, priv, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen));
}

static void
test_allowed_mechs(void)
{
	token_obj_t priv, pub, rpriv, rpub;
	uint8_t	    in[51] = { 0 }, sig[512];
	size_t	    slen = sizeof(sig);

	need_token();
	gen(HK_KEY_EC_P256, "hk/mechs/v1", 1, &priv, &pub);
	/*
	 * SoftHSM checks CKA_ALLOWED_MECHANISMS first and answers
	 * CKR_MECHANISM_INVALID; a mere key type mismatch would be
	 * CKR_KEY_TYPE_INCONSISTENT (HK_ERR_INVALID).
	 */
	FAIL(token_sign(
		 ss, priv, HK_SCHEME_RSA_PKCS1, in, sizeof(in), sig, &slen),
	    HK_ERR_UNSUPPORTED);
	FAIL(token_hmac(ss, priv, in, sizeof(in), sig), HK_ERR_UNSUPPORTED);
	gen(HK_KEY_RSA, "hk/mechs-rsa/v1", 1, &rpriv, &rpub);
	FAIL(token_sign(ss, rpriv, HK_SCHEME_ECDSA, in, 32, sig, &slen),
	    HK_ERR_UNSUPPORTED);
	FAIL(token_sign(ss, rpriv, HK_SCHEME_RSA_PSS, in, 31, sig, &slen),
	    HK_ERR_INVALID);
	TRUE(token_healthy(tok));
}

static void
test_data(void)
{
	static const uint8_t v[] = "key=value\0binary\xff";
	uint8_t		    *got = NULL;
	size_t		     len = 0;
	token_obj_t	     obj, obj2;

	need_token();
	PASS(token_data_create(ss, "hk/data/meta", v, sizeof(v), &obj));
	PASS(token_data_read(ss, obj, &got, &len));
	EQ_INT(len, sizeof(v));
	TRUE(memcmp(got, v, len) == 0);
	free(got);
	PASS(token_data_create(ss, "hk/data/empty", NULL, 0, &obj2));
	PASS(token_data_read(ss, obj2, &got, &len));
	EQ_INT(len, 0);
	free(got);
	PASS(token_destroy(ss, obj2));
}

struct listed {
	int		    n;
	struct token_object o[16];
};

static int
list_cb(void *arg, const struct token_object *o)
{
	struct listed *l = arg;

	TRUE(l->n < 16);
	l->o[l->n++] = *o;
	return 0;
}

static int
list_stop_cb(void *arg, const struct token_object *o)
{
	(void)o;
	(*(int *)arg)++;
	return 42;
}

static const struct token_object *
listed_find(const struct listed *l, const char *label, enum token_class k)
{
	int i;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->o[i].label, label) == 0 && l->o[i].klass == k) {
			return &l->o[i];
		}
	}
	return NULL;
}

static void
test_list(void)
{
	struct listed		   l;
	const struct token_object *o;
	token_obj_t		   priv, pub, priv2, pub2, data, sec, copy;
	uint8_t			   secret[32];
	int			   n = 0;

	need_token();
	gen(HK_KEY_EC_P256, "hklist/a/v1", 1, &priv, &pub);
	gen(HK_KEY_ED25519, "hklist/b/v1", 0, &priv2, &pub2);
	PASS(token_data_create(
	    ss, "hklist/meta", (const uint8_t *)"x", 1, &data));
	memset(secret, 0x5a, sizeof(secret));
	PASS(token_secret_create(ss, "hklist/client", (const uint8_t *)"c1", 2,
	    secret, sizeof(secret), &sec));
	gen(HK_KEY_EC_P256, "hklisx/other/v1", 1, &priv, &pub);
	PASS(token_copy_session(ss, priv, &copy)); /* not a token object */

	memset(&l, 0, sizeof(l));
	PASS(token_list(ss, "hklist/", list_cb, &l));
	EQ_INT(l.n, 6);
	TRUE((o = listed_find(&l, "hklist/a/v1", TOKEN_CLASS_PRIVATE)));
	TRUE(o->can_sign == 1 && o->id_len == 11 &&
	    memcmp(o->id, "hklist/a/v1", 11) == 0);
	TRUE((o = listed_find(&l, "hklist/a/v1", TOKEN_CLASS_PUBLIC)));
	TRUE(o->can_sign == 0 && o->id_len == 11);
	TRUE((o = listed_find(&l, "hklist/b/v1", TOKEN_CLASS_PRIVATE)));
	TRUE(o->can_sign == 0 && o->handle == priv2);
	TRUE((o = listed_find(&l, "hklist/b/v1", TOKEN_CLASS_PUBLIC)));
	TRUE(o->handle == pub2);
	TRUE((o = listed_find(&l, "hklist/meta", TOKEN_CLASS_DATA)));
	TRUE(o->handle == data && o->id_len == 0);
	TRUE((o = listed_find(&l, "hklist/client", TOKEN_CLASS_SECRET)));
	TRUE(o->can_sign == 1 && o->id_len == 2 && o->handle == sec);

	/* a non-zero return stops the walk and is returned */
	EQ_INT(token_list(ss, "hklist/", list_stop_cb, &n), 42);
	EQ_INT(n, 1);
	/* the session still works after the early stop */
	memset(&l, 0, sizeof(l));
	PASS(token_list(ss, "hklist/meta", list_cb, &l));
	EQ_INT(l.n, 1);
}

static int
count_cb(void *arg, const struct token_object *o)
{
	(void)o;
	(*(size_t *)arg)++;
	return 0;
}

static void
test_list_scale(void)
{
	const char     *e = getenv("HK_TEST_LIST_SCALE");
	struct timespec t0, t1;
	char		label[64];
	size_t		i, n, got = 0;
	token_obj_t	obj;

	need_token();
	n = e ? strtoul(e, NULL, 10) : 300; /* > LIST_BATCH */
	for (i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "hkscale/%zu", i);
		PASS(token_data_create(
		    ss, label, (const uint8_t *)"v", 1, &obj));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	PASS(token_list(ss, "hkscale/", count_cb, &got));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	EQ_INT(got, n);
	fprintf(stderr, "token_list of %zu objects: %.3f s\n", n,
	    (double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static void
test_destroy(void)
{
	token_obj_t priv, pub;
	uint8_t	   *der = NULL;
	size_t	    len;

	need_token();
	gen(HK_KEY_EC_P256, "hk/destroy/v1", 1, &priv, &pub);
	PASS(token_destroy(ss, priv));
	PASS(token_destroy(ss, pub));
	FAIL(token_destroy(ss, priv), HK_ERR_NOT_FOUND);
	FAIL(token_pubkey_der(ss, pub, &der, &len), HK_ERR_NOT_FOUND);
	TRUE(der == NULL);
	TRUE(token_healthy(tok));
}

static void
test_hmac(void)
{
	uint8_t	     secret[32], out[32], want[32];
	unsigned int wlen = 0;
	const char  *data = "envelope bytes";
	token_obj_t  sec;

	need_token();
	PASS(token_random(ss, secret, sizeof(secret)));
	PASS(token_secret_create(ss, "hk/client/c2", (const uint8_t *)"c2", 2,
	    secret, sizeof(secret), &sec));
	PASS(token_hmac(ss, sec, (const uint8_t *)data, strlen(data), out));
	TRUE(HMAC(EVP_sha256(), secret, sizeof(secret),
		 (const unsigned char *)data, strlen(data), want,
		 &wlen) != NULL);
	EQ_INT(wlen, 32);
	TRUE(memcmp(out, want, 32) == 0);
	explicit_bzero(secret, sizeof(secret));
}

static double
sign_rate(token_obj_t key)
{
	struct timespec t0, t1;
	uint8_t		dgst[32] = { 9 }, sig[64];
	size_t		slen;
	int		i, n = 300;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++) {
		slen = sizeof(sig);
		PASS(token_sign(
		    ss, key, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return n /
	    ((double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
}

static void
test_copy_session(void)
{
	token_obj_t priv, pub, copy;

	need_token();
	gen(HK_KEY_EC_P256, "hk/copy/v1", 1, &priv, &pub);
	PASS(token_copy_session(ss, priv, &copy));
	TRUE(copy != priv);
	sign_verify(copy, pub, HK_KEY_EC_P256, HK_SCHEME_ECDSA);
	fprintf(stderr,
	    "ECDSA P-256 signs/s: token object %.0f, "
	    "session copy %.0f\n",
	    sign_rate(priv), sign_rate(copy));
}

static void
test_copy_outlives_session(void)
{
	struct token_session *s2 = NULL;
	token_obj_t	      priv, pub, copy;
	uint8_t		      dgst[32] = { 3 }, sig[64];
	size_t		      slen = sizeof(sig);

	need_token();
	gen(HK_KEY_EC_P256, "hk/copy2/v1", 1, &priv, &pub);
	PASS(token_session_open(tok, &s2));
	PASS(token_copy_session(s2, priv, &copy));
	token_session_close(s2);
	PASS(token_sign(
	    ss, copy, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen));
}

static void
test_random(void)
{
	uint8_t a[32], b[32];

	need_token();
	PASS(token_random(ss, a, sizeof(a)));
	PASS(token_random(ss, b, sizeof(b)));
	TRUE(memcmp(a, b, sizeof(a)) != 0);
	PASS(token_random(ss, a, 0));
}

struct worker {
	token_obj_t key;
	int	    ok;
	int	    r;
};

static void *
worker_main(void *arg)
{
	struct worker	     *w = arg;
	struct token_session *s = NULL;
	uint8_t		      dgst[32], sig[64];
	size_t		      slen;
	int		      i;

	if ((w->r = token_session_open(tok, &s)) != 0) {
		return NULL;
	}
	for (i = 0; i < 200; i++) {
		memset(dgst, i, sizeof(dgst));
		slen = sizeof(sig);
		if ((w->r = token_sign(s, w->key, HK_SCHEME_ECDSA, dgst,
			 sizeof(dgst), sig, &slen)) != 0) {
			break;
		}
		w->ok++;
	}
	token_session_close(s);
	return NULL;
}

static void
test_threads(void)
{
	struct worker w[2];
	pthread_t     th[2];
	token_obj_t   priv, pub;
	int	      i;

	need_token();
	gen(HK_KEY_EC_P256, "hk/threads/v1", 1, &priv, &pub);
	for (i = 0; i < 2; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].key = priv;
		TRUE(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
	}
	for (i = 0; i < 2; i++) {
		TRUE(pthread_join(th[i], NULL) == 0);
		PASS(w[i].r);
		EQ_INT(w[i].ok, 200);
	}
	TRUE(token_healthy(tok));
}

static int
file_has(const char *path, const char *needle)
{
	static char buf[1 << 20];
	FILE	   *f;
	size_t	    n;

	TRUE((f = fopen(path, "r")) != NULL);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/* An outside opinion: OpenSC's pkcs11-tool on the same token. */
static void
test_pkcs11_tool(void)
{
	char	    out[PATH_MAX];
	token_obj_t priv, pub;
	char	   *argv[] = { "pkcs11-tool", "--module", SOFTHSM_MODULE,
		      "--token-label", "hktest", "--login", "--pin", TESTTOKEN_PIN,
		      "-O", "--type", "privkey", "--label", "hk/tool/v1", NULL };

	need_token();
	gen(HK_KEY_EC_P256, "hk/tool/v1", 1, &priv, &pub);
	testtoken_path(out, sizeof(out), "pkcs11-tool.out");
	if (access("/usr/bin/pkcs11-tool", X_OK) != 0) {
		fprintf(stderr, "pkcs11-tool not installed: skipped\n");
		return;
	}
	EQ_INT(testtoken_run(argv, out), 0);
	TRUE(file_has(out, "hk/tool/v1"));
	TRUE(file_has(out, "sensitive"));
	TRUE(file_has(out, "never extractable"));
	TRUE(file_has(out, "Usage:      sign\n"));
}

/* ---- healing (token_heal.c) ---- */

static void *
hold_briefly(void *arg)
{
	int *r = arg;

	*r = token_hold(tok, 100);
	if (*r == 0) {
		token_release(tok);
	}
	return NULL;
}

/* A repair holds the token alone; others wait at most their bound. */
static void
test_heal_gate(void)
{
	pthread_t	th;
	struct timespec t0, t1;
	int		r = 1, again = 1;
	double		waited;

	need_token();
	token_exclusive(tok);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	TRUE(pthread_create(&th, NULL, hold_briefly, &r) == 0);
	TRUE(pthread_join(th, NULL) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	FAIL(r, HK_ERR_UNAVAILABLE);
	waited = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	TRUE(waited >= 90 && waited < 2000);
	/* a healthy token needs nothing */
	PASS(token_repair(tok, &again));
	EQ_INT(again, 0);
	token_exclusive_end(tok, 1);
	PASS(token_hold(tok, 0));
	token_release(tok);
	EQ_INT(token_down_since(tok), 0);
	PASS(token_probe(tok));
}

/* A session the token forgot is opened again inside token_sign(). */
static void
test_heal_session(void)
{
	token_obj_t priv, pub;
	uint8_t	    dgst[32] = { 5 }, sig[64];
	size_t	    slen = sizeof(sig);

	need_token();
	gen(HK_KEY_EC_P256, "hk/heal-session/v1", 1, &priv, &pub);
	EQ_INT(tok->f->C_CloseSession(ss->h), CKR_OK);
	PASS(token_sign(
	    ss, priv, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen));
	EQ_INT(slen, 64);
}

/* Every session and the login gone, as after an HSM restart: a stale
 * session copy is trouble, not "not found"; the repair logs in again and
 * asks the caller to find its objects again. */
static void
test_heal_relogin(void)
{
	struct token_object *objs = NULL;
	token_obj_t	     priv, pub, copy;
	uint8_t		     dgst[32] = { 6 }, sig[64];
	size_t		     slen = sizeof(sig), n = 0, i;
	int		     again = 0;

	need_token();
	gen(HK_KEY_EC_P256, "hk/heal-login/v1", 1, &priv, &pub);
	PASS(token_copy_session(ss, priv, &copy));
	(void)token_wait_trouble(tok, 0);
	EQ_INT(tok->f->C_CloseAllSessions(tok->slot), CKR_OK);
	FAIL(token_sign(
		 ss, copy, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen),
	    HK_ERR_UNAVAILABLE);
	EQ_INT(token_wait_trouble(tok, 0), 1);
	FAIL(token_probe(tok), HK_ERR_UNAVAILABLE);
	token_exclusive(tok);
	PASS(token_repair(tok, &again));
	EQ_INT(again, 1);
	token_exclusive_end(tok, 1);
	TRUE(token_repairs(tok) >= 1);
	PASS(token_probe(tok));
	/* SoftHSM forgets every object handle with the last session: the old
	 * handle is stale (never another key's), the new one is listed */
	slen = sizeof(sig);
	FAIL(token_sign(
		 ss, priv, HK_SCHEME_ECDSA, dgst, sizeof(dgst), sig, &slen),
	    HK_ERR_UNAVAILABLE);
	PASS(token_list_all(ss, "hk/heal-login/", 4, &objs, &n));
	EQ_INT(n, 2);
	for (i = 0; i < n; i++) {
		if (objs[i].klass == TOKEN_CLASS_PRIVATE) {
			priv = objs[i].handle;
		} else {
			pub = objs[i].handle;
		}
	}
	free(objs);
	sign_verify(priv, pub, HK_KEY_EC_P256, HK_SCHEME_ECDSA);
}

TEST_LIST = { { "wrong_pin", test_wrong_pin },
	{ "pin_file_refused", test_pin_file_refused },
	{ "allowed_modules", test_allowed_modules },
	{ "no_token", test_no_token }, { "by_name", test_by_name },
	{ "open", test_open }, { "pubkey_forms", test_pubkey_forms },
	{ "keygen", test_keygen }, { "bad_spec", test_bad_spec },
	{ "sign_small_buffer", test_sign_small_buffer },
	{ "no_sign", test_no_sign }, { "set_can_sign", test_set_can_sign },
	{ "allowed_mechs", test_allowed_mechs }, { "data", test_data },
	{ "list", test_list }, { "list_scale", test_list_scale },
	{ "destroy", test_destroy }, { "hmac", test_hmac },
	{ "copy_session", test_copy_session },
	{ "copy_outlives_session", test_copy_outlives_session },
	{ "random", test_random }, { "threads", test_threads },
	{ "pkcs11_tool", test_pkcs11_tool }, { "heal_gate", test_heal_gate },
	{ "heal_session", test_heal_session },
	{ "heal_relogin", test_heal_relogin }, { "close", test_close },
	{ NULL, NULL } };

TEST_MAIN
