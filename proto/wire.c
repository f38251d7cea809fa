/* wire.c: names, validation and text forms (see wire.h). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hk_err.h"
#include "wire.h"

#define SIGTEXT_MAX (64 * 1024)

/* 1 if s is 1-64 characters, each passing first (the first) or first or
 * one of more (the others). */
static int
valid_name(const char *s, int (*first)(int), const char *more)
{
	size_t i, len;

	if (s == NULL || (len = strlen(s)) == 0 || len > 64) {
		return 0;
	}
	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (!first(c) && (i == 0 || strchr(more, c) == NULL)) {
			return 0;
		}
	}
	return 1;
}

static int
lower_or_digit(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int
ascii_alnum(int c)
{
	return isascii(c) && isalnum(c);
}

int
hk_valid_key_name(const char *name)
{
	return valid_name(name, lower_or_digit, "._-");
}

int
hk_valid_client_id(const char *id)
{
	return valid_name(id, ascii_alnum, "._-@");
}

/* enum hk_alg (alg.h) has hsmkey.proto's numbers */
#define SAME_ALG(x)                                                    \
	_Static_assert((int)HK_##x == (int)HSMKEY__V1__ALGORITHM__##x, \
	    "hk_alg " #x " differs from hsmkey.proto")
SAME_ALG(ALG_UNSPECIFIED);
SAME_ALG(ALG_ECDSA_P256);
SAME_ALG(ALG_ECDSA_P384);
SAME_ALG(ALG_ED25519);
SAME_ALG(ALG_RSA_2048);
SAME_ALG(ALG_RSA_3072);
SAME_ALG(ALG_RSA_4096);

/* The request kinds that change state: the ones a reason is for. */
static const Hsmkey__V1__Request__OpCase changes[] = {
	HSMKEY__V1__REQUEST__OP_CREATE,
	HSMKEY__V1__REQUEST__OP_ROTATE,
	HSMKEY__V1__REQUEST__OP_PROMOTE,
	HSMKEY__V1__REQUEST__OP_POLICY,
	HSMKEY__V1__REQUEST__OP_DISABLE,
	HSMKEY__V1__REQUEST__OP_DESTROY,
	HSMKEY__V1__REQUEST__OP_CLIENT_ADD,
	HSMKEY__V1__REQUEST__OP_CLIENT_ROTATE,
	HSMKEY__V1__REQUEST__OP_CLIENT_REVOKE,
	HSMKEY__V1__REQUEST__OP_CLIENT_GRANT,
};

int
hk_request_changes(Hsmkey__V1__Request__OpCase op)
{
	size_t i;

	for (i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		if (changes[i] == op) {
			return 1;
		}
	}
	return 0;
}

Hsmkey__V1__Algorithm
hk_alg_to_wire(hk_alg alg)
{
	return (Hsmkey__V1__Algorithm)alg;
}

hk_alg
hk_alg_from_wire(Hsmkey__V1__Algorithm alg)
{
	return (hk_alg)alg;
}

const char *
hk_state_name(hk_state st)
{
	switch (st) {
	case HSMKEY__V1__VERSION_STATE__STATE_PENDING:
		return "pending";
	case HSMKEY__V1__VERSION_STATE__STATE_ACTIVE:
		return "active";
	case HSMKEY__V1__VERSION_STATE__STATE_VERIFY_ONLY:
		return "verify-only";
	case HSMKEY__V1__VERSION_STATE__STATE_DISABLED:
		return "disabled";
	case HSMKEY__V1__VERSION_STATE__STATE_DESTROY_SCHEDULED:
		return "destroy-scheduled";
	case HSMKEY__V1__VERSION_STATE__STATE_DESTROYED:
		return "destroyed";
	default:
		return "unknown";
	}
}

const char *
hk_status_name(hk_status st)
{
	const ProtobufCEnumValue *v;

	v = protobuf_c_enum_descriptor_get_value(
	    &hsmkey__v1__status__descriptor, st);
	if (v == NULL) {
		return "UNKNOWN";
	}
	/* "STATUS_OK" -> "OK" */
	return strncmp(v->name, "STATUS_", 7) == 0 ? v->name + 7 : v->name;
}

hk_status
hk_status_from_err(int r)
{
	switch (r) {
	case HK_OK:
		return HSMKEY__V1__STATUS__STATUS_OK;
	case HK_ERR_INVALID:
	case HK_ERR_DECODE:
	case HK_ERR_TOO_LARGE:
	case HK_ERR_PROTOCOL:
		return HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT;
	case HK_ERR_MAC:
	case HK_ERR_UNAUTHENTICATED:
	case HK_ERR_CLOCK:
		return HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED;
	case HK_ERR_DENIED:
		return HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED;
	case HK_ERR_NOT_FOUND:
		return HSMKEY__V1__STATUS__STATUS_NOT_FOUND;
	case HK_ERR_EXISTS:
		return HSMKEY__V1__STATUS__STATUS_ALREADY_EXISTS;
	case HK_ERR_PRECONDITION:
		return HSMKEY__V1__STATUS__STATUS_FAILED_PRECONDITION;
	case HK_ERR_REPLAY:
		return HSMKEY__V1__STATUS__STATUS_REPLAY;
	case HK_ERR_UNAVAILABLE:
	case HK_ERR_PKCS11:
	case HK_ERR_TIMEOUT:
		return HSMKEY__V1__STATUS__STATUS_UNAVAILABLE;
	case HK_ERR_EXHAUSTED:
		return HSMKEY__V1__STATUS__STATUS_RESOURCE_EXHAUSTED;
	case HK_ERR_UNSUPPORTED:
		return HSMKEY__V1__STATUS__STATUS_UNIMPLEMENTED;
	default:
		return HSMKEY__V1__STATUS__STATUS_INTERNAL;
	}
}

int
hk_err_from_status(hk_status st)
{
	switch (st) {
	case HSMKEY__V1__STATUS__STATUS_OK:
		return HK_OK;
	case HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT:
		return HK_ERR_INVALID;
	case HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED:
		return HK_ERR_UNAUTHENTICATED;
	case HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED:
		return HK_ERR_DENIED;
	case HSMKEY__V1__STATUS__STATUS_NOT_FOUND:
		return HK_ERR_NOT_FOUND;
	case HSMKEY__V1__STATUS__STATUS_ALREADY_EXISTS:
		return HK_ERR_EXISTS;
	case HSMKEY__V1__STATUS__STATUS_FAILED_PRECONDITION:
		return HK_ERR_PRECONDITION;
	case HSMKEY__V1__STATUS__STATUS_REPLAY:
		return HK_ERR_REPLAY;
	case HSMKEY__V1__STATUS__STATUS_UNAVAILABLE:
		return HK_ERR_UNAVAILABLE;
	case HSMKEY__V1__STATUS__STATUS_RESOURCE_EXHAUSTED:
		return HK_ERR_EXHAUSTED;
	case HSMKEY__V1__STATUS__STATUS_UNIMPLEMENTED:
		return HK_ERR_UNSUPPORTED;
	default:
		return HK_ERR_INTERNAL;
	}
}

int
hk_exit_code(hk_status st)
{
	switch (st) {
	case HSMKEY__V1__STATUS__STATUS_OK:
		return 0;
	case HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT:
		return 2;
	case HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED:
	case HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED:
	case HSMKEY__V1__STATUS__STATUS_REPLAY:
		return 3;
	case HSMKEY__V1__STATUS__STATUS_NOT_FOUND:
		return 4;
	default:
		return 5;
	}
}

int
hk_base64_encode(const uint8_t *in, size_t len, char **outp)
{
	char  *out;
	size_t olen;

	*outp = NULL;
	if (len > SIZE_MAX / 2 || len > INT32_MAX / 2) {
		return HK_ERR_TOO_LARGE;
	}
	olen = 4 * ((len + 2) / 3) + 1;
	if ((out = malloc(olen)) == NULL) {
		return HK_ERR_NOMEM;
	}
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	*outp = out;
	return 0;
}

int
hk_base64_decode(const char *in, uint8_t **outp, size_t *lenp)
{
	size_t	 len = strlen(in), pad = 0;
	uint8_t *out;
	int	 n;

	*outp = NULL;
	*lenp = 0;
	if (len == 0 || len % 4 != 0 || len > INT32_MAX) {
		return HK_ERR_INVALID;
	}
	if (in[len - 1] == '=') {
		pad++;
		if (in[len - 2] == '=') {
			pad++;
		}
	}
	if ((out = malloc(len / 4 * 3 + 1)) == NULL) {
		return HK_ERR_NOMEM;
	}
	/* EVP_DecodeBlock keeps the padding bytes as zeros: drop them */
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len)) <
		0 ||
	    (size_t)n < pad) {
		free(out);
		return HK_ERR_INVALID;
	}
	*outp = out;
	*lenp = (size_t)n - pad;
	return 0;
}

int
hk_sigtext_format(
    uint32_t version, const uint8_t *sig, size_t len, char **outp)
{
	char  *b64 = NULL, *out = NULL;
	size_t olen;
	int    r;

	*outp = NULL;
	if (version == 0 || len == 0) {
		return HK_ERR_INVALID;
	}
	if ((r = hk_base64_encode(sig, len, &b64)) != 0) {
		return r;
	}
	olen = strlen(b64) + 32;
	if ((out = malloc(olen)) == NULL) {
		free(b64);
		return HK_ERR_NOMEM;
	}
	snprintf(out, olen, "hsmkey:v%" PRIu32 ":%s", version, b64);
	free(b64);
	*outp = out;
	return 0;
}

int
hk_sigtext_parse(
    const char *text, uint32_t *versionp, uint8_t **sigp, size_t *lenp)
{
	const char   *p, *colon;
	unsigned long v;
	char	     *end;

	*versionp = 0;
	*sigp = NULL;
	*lenp = 0;
	if (strlen(text) > SIGTEXT_MAX || strncmp(text, "hsmkey:v", 8) != 0) {
		return HK_ERR_INVALID;
	}
	p = text + 8;
	if (!isdigit((unsigned char)*p) || *p == '0' ||
	    (colon = strchr(p, ':')) == NULL) {
		return HK_ERR_INVALID;
	}
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno != 0 || end != colon || v == 0 || v > UINT32_MAX) {
		return HK_ERR_INVALID;
	}
	if (hk_base64_decode(colon + 1, sigp, lenp) != 0 || *lenp == 0) {
		free(*sigp);
		*sigp = NULL;
		*lenp = 0;
		return HK_ERR_INVALID;
	}
	*versionp = (uint32_t)v;
	return 0;
}

int
hk_parse_duration(const char *s, uint64_t *secondsp)
{
	unsigned long long v;
	uint64_t	   mult = 1;
	char		  *end;

	*secondsp = 0;
	if (s == NULL || !isdigit((unsigned char)*s)) {
		return HK_ERR_INVALID;
	}
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0) {
		return HK_ERR_INVALID;
	}
	if (*end != '\0') {
		switch (*end) {
		case 's':
			mult = 1;
			break;
		case 'm':
			mult = 60;
			break;
		case 'h':
			mult = 3600;
			break;
		case 'd':
			mult = 86400;
			break;
		default:
			return HK_ERR_INVALID;
		}
		if (end[1] != '\0') {
			return HK_ERR_INVALID;
		}
	}
	if (v > HK_DURATION_MAX_S / mult) {
		return HK_ERR_INVALID;
	}
	*secondsp = v * mult;
	return 0;
}

uint64_t
hk_time_add_s(uint64_t t_ms, uint64_t s)
{
	if (s > (UINT64_MAX - t_ms) / 1000) {
		return UINT64_MAX;
	}
	return t_ms + s * 1000;
}

int
hk_pubkey_pem(const uint8_t *der, size_t len, char **pemp)
{
	const unsigned char *p = der;
	EVP_PKEY	    *pkey = NULL;
	BIO		    *bio = NULL;
	char		    *data;
	long		     n;
	int		     r = HK_ERR_NOMEM;

	*pemp = NULL;
	if (len > INT32_MAX ||
	    (pkey = d2i_PUBKEY(NULL, &p, (long)len)) == NULL) {
		return HK_ERR_DECODE;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio_PUBKEY(bio, pkey) != 1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0 ||
	    (*pemp = malloc((size_t)n + 1)) == NULL) {
		goto out;
	}
	memcpy(*pemp, data, (size_t)n);
	(*pemp)[n] = '\0';
	r = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return r;
}
