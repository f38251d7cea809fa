/*
 * token_keys.c: key pairs, signing, public keys and client secret keys
 * (see token.h).  What each key type and signing scheme is in PKCS#11
 * terms is said once, in the two tables below; which schemes a key allows
 * comes from the algorithm table (alg.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hk_err.h"
#include "log.h"
#include "pubkey.h"

/* PKCS#11 last: its CRYPTOKI_COMPAT macros rename common identifiers. */
#include "token_int.h"

#define SIG_SCRATCH 1024 /* finishes a too-small C_Sign */

/* CK_DATE (UTC) of a time in milliseconds since the epoch. */
static void
put_digits(unsigned char *p, unsigned int v, int n)
{
	while (n-- > 0) {
		p[n] = (unsigned char)('0' + v % 10);
		v /= 10;
	}
}

static int
ms_to_date(uint64_t ms, CK_DATE *d)
{
	struct tm tm;
	time_t	  secs = (time_t)(ms / 1000);

	if (gmtime_r(&secs, &tm) == NULL || tm.tm_year < 0 ||
	    tm.tm_year + 1900 > 9999) {
		return HK_ERR_INVALID;
	}
	put_digits(d->year, (unsigned int)tm.tm_year + 1900, 4);
	put_digits(d->month, (unsigned int)tm.tm_mon + 1, 2);
	put_digits(d->day, (unsigned int)tm.tm_mday, 2);
	return 0;
}

/* DER OIDs of the curves, as CKA_EC_PARAMS. */
static const uint8_t oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
	0x03, 0x01, 0x07 };
static const uint8_t oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
/* id-Ed25519 (RFC 8410); SoftHSM 2.6.1 takes the OID, not "edwards25519" */
static const uint8_t oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
static const uint8_t rsa_e65537[] = { 0x01, 0x00, 0x01 };

/* What each key type of alg.h is in PKCS#11, indexed by enum hk_keytype. */
static const struct keytype {
	enum hk_keytype	  type; /* 0: no such row */
	CK_KEY_TYPE	  ckk;
	CK_MECHANISM_TYPE gen;	  /* C_GenerateKeyPair */
	const uint8_t	 *params; /* CKA_EC_PARAMS; NULL: RSA */
	size_t		  plen;
} keytypes[] = {
	[HK_KEY_EC_P256] = { HK_KEY_EC_P256, CKK_EC, CKM_EC_KEY_PAIR_GEN,
	    oid_p256, sizeof(oid_p256) },
	[HK_KEY_EC_P384] = { HK_KEY_EC_P384, CKK_EC, CKM_EC_KEY_PAIR_GEN,
	    oid_p384, sizeof(oid_p384) },
	[HK_KEY_ED25519] = { HK_KEY_ED25519, CKK_EC_EDWARDS,
	    CKM_EC_EDWARDS_KEY_PAIR_GEN, oid_ed25519, sizeof(oid_ed25519) },
	[HK_KEY_RSA] = { HK_KEY_RSA, CKK_RSA, CKM_RSA_PKCS_KEY_PAIR_GEN, NULL,
	    0 },
};

/* RSA-PSS as alg.h defines it: SHA-256, MGF1-SHA256, a 32-byte salt. */
static const CK_RSA_PKCS_PSS_PARAMS pss_sha256 = { CKM_SHA256, CKG_MGF1_SHA256,
	32 };

/* What each signing scheme of alg.h is in PKCS#11, indexed by enum
 * hk_scheme: the one place that maps a scheme to its CKM_*. */
static const struct scheme {
	CK_MECHANISM_TYPE ckm;
	const void	 *param; /* CK_MECHANISM.pParameter */
	size_t		  plen;
	size_t		  inlen; /* the input length it takes; 0: any */
} schemes[] = {
	[HK_SCHEME_ECDSA] = { CKM_ECDSA, NULL, 0, 0 },
	[HK_SCHEME_EDDSA] = { CKM_EDDSA, NULL, 0, 0 },
	[HK_SCHEME_RSA_PSS] = { CKM_RSA_PKCS_PSS, &pss_sha256,
	    sizeof(pss_sha256), 32 },
	[HK_SCHEME_RSA_PKCS1] = { CKM_RSA_PKCS, NULL, 0, 0 },
};

/* The row of a key type; NULL if none. */
static const struct keytype *
keytype_row(enum hk_keytype k)
{
	if ((size_t)k >= NITEMS(keytypes) || keytypes[k].type != k || k == 0) {
		return NULL;
	}
	return &keytypes[k];
}

/* The row of a scheme; NULL if none (no scheme is CKM 0). */
static const struct scheme *
scheme_row(enum hk_scheme sc)
{
	return (size_t)sc < NITEMS(schemes) && schemes[sc].ckm != 0
	    ? &schemes[sc]
	    : NULL;
}

#define TMPL_MAX 24

/* The two templates of a key pair and the values they point to. */
struct pair {
	const struct keytype *kt;
	CK_OBJECT_CLASS	      priv_class, pub_class;
	CK_MECHANISM_TYPE     allowed[2]; /* the schemes of the alg row */
	CK_ULONG	      nallowed, bits;
	CK_DATE		      start, end;
	size_t		      labellen;
	CK_ATTRIBUTE	      priv[TMPL_MAX], pub[TMPL_MAX];
	CK_ULONG	      np, nu;
};

static void
tmpl_add(CK_ATTRIBUTE *tmpl, CK_ULONG *np, const CK_ATTRIBUTE *a, size_t n)
{
	size_t i;

	for (i = 0; i < n && *np < TMPL_MAX; i++) {
		tmpl[(*np)++] = a[i];
	}
}

/* Checks spec; finds its key type and the mechanisms its algorithm row
 * allows. */
static int
pair_init(struct pair *p, const struct token_keyspec *spec)
{
	const struct hk_alg_info *ai;
	const struct scheme	 *sc;

	memset(p, 0, sizeof(*p));
	p->priv_class = CKO_PRIVATE_KEY;
	p->pub_class = CKO_PUBLIC_KEY;
	if (!token_label_ok(spec->label, &p->labellen) ||
	    spec->id_len > TOKEN_ID_MAX ||
	    (spec->id == NULL && spec->id_len != 0) ||
	    (p->kt = keytype_row(spec->type)) == NULL) {
		return HK_ERR_INVALID;
	}
	if ((ai = hk_alg_by_key(spec->type, spec->rsa_bits)) == NULL) {
		log_warnx("RSA keys have 2048, 3072 or 4096 bits, not %u",
		    spec->rsa_bits);
		return HK_ERR_INVALID;
	}
	p->bits = ai->rsa_bits;
	if ((sc = scheme_row(ai->scheme)) == NULL) {
		return HK_ERR_INTERNAL;
	}
	p->allowed[p->nallowed++] = sc->ckm;
	if (ai->pkcs1 != HK_SCHEME_NONE) {
		if ((sc = scheme_row(ai->pkcs1)) == NULL) {
			return HK_ERR_INTERNAL;
		}
		p->allowed[p->nallowed++] = sc->ckm;
	}
	return 0;
}

/* The private half: sensitive, never extractable, sign only (STYLE 5). */
static void
pair_priv(struct pair *p, const struct token_keyspec *spec)
{
	const CK_ATTRIBUTE a[] = {
		ATTR_VAR(CKA_CLASS, p->priv_class),
		ATTR_VAR(CKA_KEY_TYPE, p->kt->ckk),
		ATTR_BOOL(CKA_TOKEN, 1),
		ATTR_BOOL(CKA_PRIVATE, 1),
		ATTR_BOOL(CKA_SENSITIVE, 1),
		ATTR_BOOL(CKA_EXTRACTABLE, 0),
		ATTR_BOOL(CKA_SIGN, spec->can_sign),
		ATTR_BOOL(CKA_SIGN_RECOVER, 0),
		ATTR_BOOL(CKA_DECRYPT, 0),
		ATTR_BOOL(CKA_UNWRAP, 0),
		ATTR_BOOL(CKA_DERIVE, 0),
		ATTR_BOOL(CKA_ALWAYS_AUTHENTICATE, 0),
		ATTR(CKA_ALLOWED_MECHANISMS, p->allowed,
		    p->nallowed * sizeof(CK_MECHANISM_TYPE)),
		ATTR(CKA_LABEL, spec->label, p->labellen),
		ATTR(CKA_ID, spec->id, spec->id_len),
	};

	tmpl_add(p->priv, &p->np, a, NITEMS(a));
}

/* The public half: verify only, and the curve or the RSA size. */
static void
pair_pub(struct pair *p, const struct token_keyspec *spec)
{
	const CK_ATTRIBUTE a[] = {
		ATTR_VAR(CKA_CLASS, p->pub_class),
		ATTR_VAR(CKA_KEY_TYPE, p->kt->ckk),
		ATTR_BOOL(CKA_TOKEN, !spec->pub_session),
		ATTR_BOOL(CKA_PRIVATE, 0),
		ATTR_BOOL(CKA_VERIFY, 1),
		ATTR_BOOL(CKA_VERIFY_RECOVER, 0),
		ATTR_BOOL(CKA_ENCRYPT, 0),
		ATTR_BOOL(CKA_WRAP, 0),
		ATTR_BOOL(CKA_DERIVE, 0),
		ATTR(CKA_ALLOWED_MECHANISMS, p->allowed,
		    p->nallowed * sizeof(CK_MECHANISM_TYPE)),
		ATTR(CKA_LABEL, spec->label, p->labellen),
		ATTR(CKA_ID, spec->id, spec->id_len),
	};
	const CK_ATTRIBUTE ec[] = {
		ATTR(CKA_EC_PARAMS, p->kt->params, p->kt->plen),
	};
	const CK_ATTRIBUTE rsa[] = {
		ATTR_VAR(CKA_MODULUS_BITS, p->bits),
		ATTR(CKA_PUBLIC_EXPONENT, rsa_e65537, sizeof(rsa_e65537)),
	};

	tmpl_add(p->pub, &p->nu, a, NITEMS(a));
	if (p->kt->params != NULL) {
		tmpl_add(p->pub, &p->nu, ec, NITEMS(ec));
	} else {
		tmpl_add(p->pub, &p->nu, rsa, NITEMS(rsa));
	}
}

/* CKA_START_DATE and CKA_END_DATE on both halves, when spec sets them. */
static int
pair_dates(struct pair *p, const struct token_keyspec *spec)
{
	const CK_ATTRIBUTE start[] = { ATTR_VAR(CKA_START_DATE, p->start) };
	const CK_ATTRIBUTE end[] = { ATTR_VAR(CKA_END_DATE, p->end) };
	int		   r;

	if (spec->start_ms != 0) {
		if ((r = ms_to_date(spec->start_ms, &p->start)) != 0) {
			return r;
		}
		tmpl_add(p->priv, &p->np, start, NITEMS(start));
		tmpl_add(p->pub, &p->nu, start, NITEMS(start));
	}
	if (spec->end_ms != 0) {
		if ((r = ms_to_date(spec->end_ms, &p->end)) != 0) {
			return r;
		}
		tmpl_add(p->priv, &p->np, end, NITEMS(end));
		tmpl_add(p->pub, &p->nu, end, NITEMS(end));
	}
	return 0;
}

int
token_generate(struct token_session *s, const struct token_keyspec *spec,
    token_obj_t *privp, token_obj_t *pubp)
{
	struct token	*t = s->t;
	struct pair	 p;
	CK_MECHANISM	 mech = { 0, NULL, 0 };
	CK_OBJECT_HANDLE priv = CK_INVALID_HANDLE, pub = CK_INVALID_HANDLE;
	int		 r = HK_ERR_INTERNAL;

	*privp = TOKEN_OBJ_NONE;
	*pubp = TOKEN_OBJ_NONE;
	if ((r = token_away(t)) != 0 || (r = pair_init(&p, spec)) != 0) {
		goto out;
	}
	pair_priv(&p, spec);
	pair_pub(&p, spec);
	if ((r = pair_dates(&p, spec)) != 0) {
		goto out;
	}
	mech.mechanism = p.kt->gen;
	if ((r = token_ck(t, "C_GenerateKeyPair",
		 t->f->C_GenerateKeyPair(s->h, &mech, p.pub, p.nu, p.priv,
		     p.np, &pub, &priv))) != 0) {
		goto out;
	}
	/* success */
	*privp = priv;
	*pubp = pub;
	r = 0;
out:
	return r;
}

/*
 * CKR_BUFFER_TOO_SMALL leaves the sign operation active; finish it into a
 * scratch buffer so that the session can sign again.  Out of line so that
 * the hot path does not pay for the (zero-initialised) scratch buffer.
 */
static __attribute__((noinline)) void
sign_drain(struct token_session *s, const uint8_t *in, size_t inlen)
{
	uint8_t	 scratch[SIG_SCRATCH];
	CK_ULONG len = sizeof(scratch);

	(void)s->t->f->C_Sign(
	    s->h, (CK_BYTE_PTR)(uintptr_t)in, (CK_ULONG)inlen, scratch, &len);
	explicit_bzero(scratch, sizeof(scratch));
}

/* C_SignInit with m, then C_Sign, once; *rvp the CK_RV that failed. */
static int
sign_once(struct token_session *s, token_obj_t key, CK_MECHANISM *m,
    const uint8_t *in, size_t inlen, uint8_t *sig, size_t *siglen, CK_RV *rvp)
{
	struct token *t = s->t;
	CK_ULONG      len;
	CK_RV	      rv;

	if ((rv = t->f->C_SignInit(s->h, m, key)) != CKR_OK) {
		*rvp = rv;
		return token_rv_err(t, "C_SignInit", rv);
	}
	len = (CK_ULONG)*siglen;
	rv = t->f->C_Sign(
	    s->h, (CK_BYTE_PTR)(uintptr_t)in, (CK_ULONG)inlen, sig, &len);
	*rvp = rv;
	if (rv == CKR_BUFFER_TOO_SMALL) {
		sign_drain(s, in, inlen);
		return token_rv_err(t, "C_Sign", rv);
	}
	if (rv != CKR_OK) {
		return token_rv_err(t, "C_Sign", rv);
	}
	mark_ok(t);
	*siglen = (size_t)len;
	return 0;
}

/*
 * token_sign() and token_hmac().  A session the token forgot is opened
 * again and the signature tried once more (signing changes nothing).  A
 * key handle the token no longer knows is never "not found" here: the
 * caller's handles are stale (the token lost its session objects), so it
 * is trouble for the healer and UNAVAILABLE for the request.
 */
static int
sign_with(struct token_session *s, token_obj_t key, CK_MECHANISM *m,
    const uint8_t *in, size_t inlen, uint8_t *sig, size_t *siglen)
{
	CK_RV rv = CKR_OK;
	int   r;

	if (sig == NULL || *siglen == 0 || (in == NULL && inlen != 0)) {
		return HK_ERR_INVALID;
	}
	if ((r = token_away(s->t)) != 0) {
		return r;
	}
	r = sign_once(s, key, m, in, inlen, sig, siglen, &rv);
	if (r != 0 && token_rv_session_lost(rv) &&
	    token_session_renew(s) == 0) {
		r = sign_once(s, key, m, in, inlen, sig, siglen, &rv);
	}
	if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
		token_trouble(s->t);
		return HK_ERR_UNAVAILABLE;
	}
	return r;
}

int
token_sign(struct token_session *s, token_obj_t key, enum hk_scheme scheme,
    const uint8_t *in, size_t inlen, uint8_t *sig, size_t *siglen)
{
	const struct scheme *sc = scheme_row(scheme);
	CK_MECHANISM	     m;

	if (sc == NULL || (sc->inlen != 0 && inlen != sc->inlen)) {
		return HK_ERR_INVALID;
	}
	m.mechanism = sc->ckm;
	m.pParameter = (void *)(uintptr_t)sc->param;
	m.ulParameterLen = (CK_ULONG)sc->plen;
	return sign_with(s, key, &m, in, inlen, sig, siglen);
}

/* pubkey_ed25519_der() in the shape of the others: one attribute. */
static int
ed25519_der(const uint8_t *point, size_t ptlen, const uint8_t *unused,
    size_t unused_len, uint8_t **derp, size_t *lenp)
{
	(void)unused;
	(void)unused_len;
	return pubkey_ed25519_der(point, ptlen, derp, lenp);
}

/* Which attributes of a public key of each CKK make its SPKI. */
static const struct pubkey_form {
	CK_KEY_TYPE	  ckk;
	CK_ATTRIBUTE_TYPE attrs[2];
	CK_ULONG	  nattrs;
	int (*der)(const uint8_t *, size_t, const uint8_t *, size_t,
	    uint8_t **, size_t *);
} pubkey_forms[] = {
	{ CKK_EC, { CKA_EC_PARAMS, CKA_EC_POINT }, 2, pubkey_ec_der },
	{ CKK_EC_EDWARDS, { CKA_EC_POINT, 0 }, 1, ed25519_der },
	{ CKK_RSA, { CKA_MODULUS, CKA_PUBLIC_EXPONENT }, 2, pubkey_rsa_der },
};

int
token_pubkey_der(
    struct token_session *s, token_obj_t pub, uint8_t **derp, size_t *lenp)
{
	const struct pubkey_form *pf = NULL;
	struct token		 *t = s->t;
	CK_KEY_TYPE		  ktype = 0;
	CK_ATTRIBUTE		  kt[] = { ATTR_VAR(CKA_KEY_TYPE, ktype) };
	CK_ATTRIBUTE		  a[2] = { { 0, NULL, 0 }, { 0, NULL, 0 } };
	size_t			  i;
	int			  r = HK_ERR_INTERNAL;

	*derp = NULL;
	*lenp = 0;
	if ((r = token_ck(t, "C_GetAttributeValue",
		 t->f->C_GetAttributeValue(s->h, pub, kt, NITEMS(kt)))) != 0) {
		goto out;
	}
	for (i = 0; i < NITEMS(pubkey_forms) && pf == NULL; i++) {
		if (pubkey_forms[i].ckk == ktype) {
			pf = &pubkey_forms[i];
		}
	}
	if (pf == NULL) {
		log_warnx("public key of type 0x%lx is not supported",
		    (unsigned long)ktype);
		r = HK_ERR_UNSUPPORTED;
		goto out;
	}
	for (i = 0; i < pf->nattrs; i++) {
		a[i].type = pf->attrs[i];
	}
	if ((r = token_attrs_get(s, pub, a, pf->nattrs, KEYATTR_MAX)) != 0) {
		goto out;
	}
	r = pf->der(a[0].pValue, a[0].ulValueLen, a[1].pValue, a[1].ulValueLen,
	    derp, lenp);
out:
	token_attrs_free(a, NITEMS(a));
	return r;
}

int
token_set_can_sign(struct token_session *s, token_obj_t key, int can_sign)
{
	struct token *t = s->t;
	CK_ATTRIBUTE  a[] = { ATTR_BOOL(CKA_SIGN, can_sign) };
	CK_RV	      rv;

	if (token_away(t) != 0) {
		return HK_ERR_UNAVAILABLE;
	}
	rv = t->f->C_SetAttributeValue(s->h, key, a, NITEMS(a));
	switch (rv) {
	case CKR_ATTRIBUTE_READ_ONLY:
	case CKR_ACTION_PROHIBITED:
	case CKR_ATTRIBUTE_TYPE_INVALID:
	case CKR_TEMPLATE_INCONSISTENT:
	case CKR_FUNCTION_NOT_SUPPORTED:
		token_rv_err(t, "C_SetAttributeValue(CKA_SIGN)", rv);
		return HK_ERR_UNSUPPORTED;
	default:
		return token_ck(t, "C_SetAttributeValue(CKA_SIGN)", rv);
	}
}

int
token_destroy(struct token_session *s, token_obj_t obj)
{
	struct token *t = s->t;

	if (token_away(t) != 0) {
		return HK_ERR_UNAVAILABLE;
	}
	return token_ck(
	    t, "C_DestroyObject", t->f->C_DestroyObject(s->h, obj));
}

int
token_secret_create(struct token_session *s, const char *label,
    const uint8_t *id, size_t id_len, const uint8_t *secret, size_t len,
    token_obj_t *objp)
{
	CK_OBJECT_CLASS	  cls = CKO_SECRET_KEY;
	CK_KEY_TYPE	  ktype = CKK_GENERIC_SECRET;
	CK_MECHANISM_TYPE allowed[] = { CKM_SHA256_HMAC };
	size_t		  labellen;

	*objp = TOKEN_OBJ_NONE;
	if (!token_label_ok(label, &labellen) || id_len > TOKEN_ID_MAX ||
	    (id == NULL && id_len != 0) || secret == NULL || len == 0 ||
	    len > KEYATTR_MAX) {
		return HK_ERR_INVALID;
	}
	/* the template points at the caller's secret: no copy */
	CK_ATTRIBUTE tmpl[] = {
		ATTR_VAR(CKA_CLASS, cls),
		ATTR_VAR(CKA_KEY_TYPE, ktype),
		ATTR_BOOL(CKA_TOKEN, 1),
		ATTR_BOOL(CKA_PRIVATE, 1),
		ATTR_BOOL(CKA_SENSITIVE, 1),
		ATTR_BOOL(CKA_EXTRACTABLE, 0),
		ATTR_BOOL(CKA_SIGN, 1),
		ATTR_BOOL(CKA_VERIFY, 1),
		ATTR_BOOL(CKA_ENCRYPT, 0),
		ATTR_BOOL(CKA_DECRYPT, 0),
		ATTR_BOOL(CKA_WRAP, 0),
		ATTR_BOOL(CKA_UNWRAP, 0),
		ATTR_BOOL(CKA_DERIVE, 0),
		ATTR(CKA_ALLOWED_MECHANISMS, allowed, sizeof(allowed)),
		ATTR(CKA_LABEL, label, labellen),
		ATTR(CKA_ID, id, id_len),
		ATTR(CKA_VALUE, secret, len),
	};

	return token_create_object(s, tmpl, NITEMS(tmpl), objp);
}

int
token_hmac(struct token_session *s, token_obj_t key, const uint8_t *in,
    size_t len, uint8_t out[32])
{
	CK_MECHANISM m = { CKM_SHA256_HMAC, NULL, 0 };
	size_t	     outlen = 32;
	int	     r;

	if ((r = sign_with(s, key, &m, in, len, out, &outlen)) != 0) {
		return r;
	}
	if (outlen != 32) {
		log_warnx(
		    "C_Sign(CKM_SHA256_HMAC) returned %zu bytes", outlen);
		explicit_bzero(out, 32);
		return HK_ERR_PKCS11;
	}
	return 0;
}
