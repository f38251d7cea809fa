/*
 * operations.c: the public operations of hsmkey.h (sign, verify, pubkey,
 * create, rotate, ping), each one request built here and sent with
 * hk_client_call().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hk_call.h"
#include "hk_err.h"
#include "hsmkey.h"
#include "wire.h"

#define FLAGS_ALL (HSMKEY_DIGEST | HSMKEY_SIG_RAW | HSMKEY_RSA_PKCS1)

static int
check_key(struct hsmkey *h, const char *key)
{
	if (h == NULL) {
		return HSMKEY_EINVAL;
	}
	if (!hk_valid_key_name(key)) {
		return hk_client_error(h, HSMKEY_EINVAL,
		    "invalid key name "
		    "'%.80s': use [a-z0-9][a-z0-9._-]{0,63}",
		    key != NULL ? key : "(null)");
	}
	return 0;
}

static int
check_data(struct hsmkey *h, const void *data, size_t len, int flags)
{
	if (flags & ~FLAGS_ALL) {
		return hk_client_error(
		    h, HSMKEY_EINVAL, "unknown flags 0x%x", (unsigned)flags);
	}
	if (flags & HSMKEY_DIGEST) {
		if (data == NULL || (len != 32 && len != 48)) {
			return hk_client_error(h, HSMKEY_EINVAL,
			    "digest is "
			    "%zu bytes: give 32 (SHA-256) or 48 (SHA-384)",
			    data == NULL ? 0 : len);
		}
		return 0;
	}
	if (data == NULL || len == 0) {
		return hk_client_error(h, HSMKEY_EINVAL, "message is empty");
	}
	if (len > HK_CLIENT_MAX_DATA) {
		return hk_client_error(h, HSMKEY_EINVAL,
		    "message is %zu "
		    "bytes; the limit is %d bytes",
		    len, HK_CLIENT_MAX_DATA);
	}
	return 0;
}

static void
set_format(
    int flags, Hsmkey__V1__SigFormat *fmtp, Hsmkey__V1__RsaPadding *padp)
{
	*fmtp = (flags & HSMKEY_SIG_RAW)
	    ? HSMKEY__V1__SIG_FORMAT__SIGFMT_RAW
	    : HSMKEY__V1__SIG_FORMAT__SIGFMT_DEFAULT;
	*padp = (flags & HSMKEY_RSA_PKCS1)
	    ? HSMKEY__V1__RSA_PADDING__RSA_PADDING_PKCS1V15
	    : HSMKEY__V1__RSA_PADDING__RSA_PADDING_PSS;
}

/* Puts data into *digest (flags HSMKEY_DIGEST) or *message. */
static void
set_data(int flags, const void *data, size_t len, ProtobufCBinaryData *message,
    ProtobufCBinaryData *digest)
{
	ProtobufCBinaryData *d = (flags & HSMKEY_DIGEST) ? digest : message;

	d->data = (uint8_t *)data;
	d->len = len;
}

/* Checks the arguments of a batch: 0 or HSMKEY_EINVAL (error set). */
static int
check_batch(struct hsmkey *h, const char *key, const void *const *data,
    const size_t *lens, size_t n, int flags, char **sigtexts)
{
	size_t i, total = 0;
	int    r;

	if ((r = check_key(h, key)) != 0) {
		return r;
	}
	if (data == NULL || lens == NULL || sigtexts == NULL || n == 0 ||
	    n > HK_MAX_BATCH) {
		return hk_client_error(h, HSMKEY_EINVAL,
		    "a batch holds 1 to "
		    "%d items",
		    HK_MAX_BATCH);
	}
	for (i = 0; i < n; i++) {
		if ((r = check_data(h, data[i], lens[i], flags)) != 0) {
			return r;
		}
		total += lens[i];
		if (total > HK_CLIENT_MAX_DATA) {
			return hk_client_error(h, HSMKEY_EINVAL,
			    "batch is "
			    "over %d bytes",
			    HK_CLIENT_MAX_DATA);
		}
	}
	return 0;
}

/* The text forms of the n signatures of sresp into sigtexts. */
static int
sigtexts_of(struct hsmkey *h, const Hsmkey__V1__SignResponse *sresp, size_t n,
    char **sigtexts)
{
	size_t i;
	int    r, e;

	if (sresp->n_signatures != n || sresp->version == 0) {
		return hk_client_error(h, HSMKEY_EPROTO,
		    "reply carries %zu signatures for %zu "
		    "items",
		    sresp->n_signatures, n);
	}
	for (i = 0; i < n; i++) {
		if ((e = hk_sigtext_format(sresp->version,
			 sresp->signatures[i].data, sresp->signatures[i].len,
			 &sigtexts[i])) != 0) {
			r = e == HK_ERR_NOMEM ? HSMKEY_ENOMEM : HSMKEY_EPROTO;
			return hk_client_error(h, r,
			    "reply carries an empty "
			    "signature");
		}
	}
	return 0;
}

int
hsmkey_sign_batch(struct hsmkey *h, const char *key, const void *const *data,
    const size_t *lens, size_t n, uint32_t version, int flags, char **sigtexts)
{
	Hsmkey__V1__Request	req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__SignRequest sr = HSMKEY__V1__SIGN_REQUEST__INIT;
	Hsmkey__V1__SignItem   *items = NULL, **itemp = NULL;
	Hsmkey__V1__Response   *resp = NULL;
	size_t			i;
	int			r;

	if (sigtexts != NULL) {
		for (i = 0; i < n; i++) {
			sigtexts[i] = NULL;
		}
	}
	if ((r = check_batch(h, key, data, lens, n, flags, sigtexts)) != 0) {
		return r;
	}
	r = HSMKEY_ENOMEM;
	if ((items = calloc(n, sizeof(*items))) == NULL ||
	    (itemp = calloc(n, sizeof(*itemp))) == NULL) {
		hk_client_error(h, r, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		hsmkey__v1__sign_item__init(&items[i]);
		set_data(flags, data[i], lens[i], &items[i].message,
		    &items[i].digest);
		itemp[i] = &items[i];
	}
	sr.name = (char *)key;
	sr.version = version;
	sr.n_items = n;
	sr.items = itemp;
	set_format(flags, &sr.format, &sr.rsa_padding);
	req.op_case = HSMKEY__V1__REQUEST__OP_SIGN;
	req.sign = &sr;
	if ((r = hk_client_call(
		 h, &req, HSMKEY__V1__RESPONSE__RESULT_SIGN, &resp)) != 0) {
		goto out;
	}
	r = sigtexts_of(h, resp->sign, n, sigtexts);
out:
	if (r != 0) {
		for (i = 0; i < n; i++) {
			free(sigtexts[i]);
			sigtexts[i] = NULL;
		}
	}
	hk_client_response_free(resp);
	free(items);
	free(itemp);
	return r;
}

int
hsmkey_sign_ex(struct hsmkey *h, const char *key, const void *data, size_t len,
    uint32_t version, int flags, char **sigtextp)
{
	const void *d[1] = { data };
	size_t	    l[1] = { len };

	if (sigtextp == NULL) {
		return hk_client_error(h, HSMKEY_EINVAL, "sigtextp is NULL");
	}
	return hsmkey_sign_batch(h, key, d, l, 1, version, flags, sigtextp);
}

int
hsmkey_sign(struct hsmkey *h, const char *key, const void *msg, size_t len,
    uint32_t version, char **sigtextp)
{
	return hsmkey_sign_ex(h, key, msg, len, version, 0, sigtextp);
}

int
hsmkey_sign_digest(struct hsmkey *h, const char *key, const uint8_t *digest,
    size_t len, uint32_t version, char **sigtextp)
{
	return hsmkey_sign_ex(
	    h, key, digest, len, version, HSMKEY_DIGEST, sigtextp);
}

int
hsmkey_verify_ex(struct hsmkey *h, const char *key, const void *data,
    size_t len, int flags, const char *sigtext,
    struct hsmkey_verify_result *res)
{
	Hsmkey__V1__Request	    req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__VerifyRequest   vr = HSMKEY__V1__VERIFY_REQUEST__INIT;
	Hsmkey__V1__VerifyResponse *v;
	Hsmkey__V1__Response	   *resp = NULL;
	uint8_t			   *sig = NULL;
	size_t			    siglen = 0;
	uint32_t		    version = 0;
	int			    r;

	if (res != NULL) {
		memset(res, 0, sizeof(*res));
	}
	if ((r = check_key(h, key)) != 0 ||
	    (r = check_data(h, data, len, flags)) != 0) {
		return r;
	}
	if (res == NULL) {
		return hk_client_error(h, HSMKEY_EINVAL, "res is NULL");
	}
	if (sigtext == NULL ||
	    hk_sigtext_parse(sigtext, &version, &sig, &siglen) != 0) {
		return hk_client_error(h, HSMKEY_EINVAL,
		    "signature is not "
		    "in the form hsmkey:v<N>:<base64>");
	}
	vr.name = (char *)key;
	vr.version = version;
	set_data(flags, data, len, &vr.message, &vr.digest);
	vr.signature.data = sig;
	vr.signature.len = siglen;
	set_format(flags, &vr.format, &vr.rsa_padding);
	req.op_case = HSMKEY__V1__REQUEST__OP_VERIFY;
	req.verify = &vr;
	if ((r = hk_client_call(
		 h, &req, HSMKEY__V1__RESPONSE__RESULT_VERIFY, &resp)) != 0) {
		goto out;
	}
	v = resp->verify;
	/* success */
	res->valid = v->valid ? 1 : 0;
	res->version = v->version != 0 ? v->version : version;
	snprintf(res->state, sizeof(res->state), "%s",
	    v->state == HSMKEY__V1__VERSION_STATE__STATE_UNSPECIFIED
		? ""
		: hk_state_name(v->state));
	res->retire_ms = v->retire_ms;
	r = 0;
out:
	hk_client_response_free(resp);
	free(sig);
	return r;
}

int
hsmkey_verify(struct hsmkey *h, const char *key, const void *msg, size_t len,
    const char *sigtext, struct hsmkey_verify_result *res)
{
	return hsmkey_verify_ex(h, key, msg, len, 0, sigtext, res);
}

int
hsmkey_verify_digest(struct hsmkey *h, const char *key, const uint8_t *digest,
    size_t len, const char *sigtext, struct hsmkey_verify_result *res)
{
	return hsmkey_verify_ex(
	    h, key, digest, len, HSMKEY_DIGEST, sigtext, res);
}

/* The public key of a version, PEM (der 0; NUL-terminated) or DER, into a
 * new buffer *outp of *lenp bytes.  Caller must free(*outp). */
static int
pubkey_copy(struct hsmkey *h, const char *key, uint32_t version, int der,
    uint8_t **outp, size_t *lenp, uint32_t *versionp)
{
	struct hk_pubkey pk;
	const void	*src;
	uint8_t		*p;
	size_t		 len;
	int		 r;

	if ((r = check_key(h, key)) != 0) {
		return r;
	}
	if ((r = hk_key_pubkey(h, key, version, &pk)) != 0) {
		goto out;
	}
	src = der ? (const void *)pk.der : (const void *)pk.pem;
	if ((len = der ? pk.der_len : strlen(pk.pem)) == 0) {
		r = hk_client_error(h, HSMKEY_EPROTO,
		    "reply carries no %s public key", der ? "DER" : "PEM");
		goto out;
	}
	if ((p = malloc(len + 1)) == NULL) {
		r = hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(p, src, len);
	p[len] = '\0';
	/* success */
	if (versionp != NULL) {
		*versionp = pk.version;
	}
	*outp = p;
	*lenp = len;
	r = 0;
out:
	hk_pubkey_free(&pk);
	return r;
}

int
hsmkey_pubkey_pem(struct hsmkey *h, const char *key, uint32_t version,
    char **pemp, uint32_t *versionp)
{
	size_t len;

	if (pemp != NULL) {
		*pemp = NULL;
	}
	if (versionp != NULL) {
		*versionp = 0;
	}
	if (pemp == NULL) {
		return hk_client_error(h, HSMKEY_EINVAL, "pemp is NULL");
	}
	return pubkey_copy(
	    h, key, version, 0, (uint8_t **)pemp, &len, versionp);
}

int
hsmkey_pubkey_der(struct hsmkey *h, const char *key, uint32_t version,
    uint8_t **derp, size_t *lenp, uint32_t *versionp)
{
	if (derp != NULL) {
		*derp = NULL;
	}
	if (lenp != NULL) {
		*lenp = 0;
	}
	if (versionp != NULL) {
		*versionp = 0;
	}
	if (derp == NULL || lenp == NULL) {
		return hk_client_error(h, HSMKEY_EINVAL, "derp is NULL");
	}
	return pubkey_copy(h, key, version, 1, derp, lenp, versionp);
}

int
hsmkey_create(struct hsmkey *h, const char *key, const char *alg)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__CreateRequest cr = HSMKEY__V1__CREATE_REQUEST__INIT;
	Hsmkey__V1__Response	 *resp = NULL;
	hk_alg			  a = HK_ALG_ECDSA_P256;
	char			  names[128];
	int			  r;

	if ((r = check_key(h, key)) != 0) {
		return r;
	}
	if (alg != NULL && hk_alg_parse(alg, &a) != 0) {
		return hk_client_error(h, HSMKEY_EINVAL,
		    "unknown algorithm '%.40s': use %s", alg,
		    hk_alg_list(names, sizeof(names)));
	}
	cr.name = (char *)key;
	cr.alg = hk_alg_to_wire(a);
	req.op_case = HSMKEY__V1__REQUEST__OP_CREATE;
	req.create = &cr;
	r = hk_client_call(h, &req, HSMKEY__V1__RESPONSE__RESULT_KEY, &resp);
	hk_client_response_free(resp);
	return r;
}

int
hsmkey_rotate(struct hsmkey *h, const char *key, uint32_t expect, int stage,
    uint32_t *newp)
{
	return hsmkey_rotate_ex(
	    h, key, expect, stage ? HSMKEY_ROTATE_STAGE : 0, newp);
}

int
hsmkey_rotate_ex(struct hsmkey *h, const char *key, uint32_t expect, int flags,
    uint32_t *newp)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__RotateRequest rr = HSMKEY__V1__ROTATE_REQUEST__INIT;
	Hsmkey__V1__Response	 *resp = NULL;
	int			  r;

	if (newp != NULL) {
		*newp = 0;
	}
	if ((r = check_key(h, key)) != 0) {
		return r;
	}
	rr.name = (char *)key;
	rr.expect = expect;
	if ((flags & HSMKEY_ROTATE_STAGE) &&
	    (flags & HSMKEY_ROTATE_EMERGENCY)) {
		return hk_client_error(h, HSMKEY_EINVAL,
		    "an emergency rotation cannot be staged");
	}
	rr.stage = (flags & HSMKEY_ROTATE_STAGE) != 0;
	rr.emergency = (flags & HSMKEY_ROTATE_EMERGENCY) != 0;
	req.op_case = HSMKEY__V1__REQUEST__OP_ROTATE;
	req.rotate = &rr;
	if ((r = hk_client_call(
		 h, &req, HSMKEY__V1__RESPONSE__RESULT_KEY, &resp)) != 0) {
		goto out;
	}
	if (newp != NULL) {
		*newp = resp->key->version;
	}
out:
	hk_client_response_free(resp);
	return r;
}

int
hsmkey_ping(struct hsmkey *h)
{
	Hsmkey__V1__Request	req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__PingRequest pr = HSMKEY__V1__PING_REQUEST__INIT;

	req.op_case = HSMKEY__V1__REQUEST__OP_PING;
	req.ping = &pr;
	return hk_client_call_status(h, &req);
}
