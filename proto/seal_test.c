/* seal_test.c: unit tests of the envelope sealing and opening (seal.h). */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hk_err.h"
#include "seal.h"
#include "testutil.h"

static const uint8_t daykey[HK_MAC_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t other[HK_MAC_LEN] = { 8, 7, 6, 5, 4, 3, 2, 1 };
static const uint8_t nonce[HK_NONCE_LEN] = { 9, 9, 9, 9, 1, 2, 3 };
static const uint8_t body[] = "\x0a\x03"
			      "abc";

static void
seal(uint8_t **outp, size_t *lenp)
{
	struct hk_request_head h = { "svc-1", 2, nonce, 1700000000123ULL };

	PASS(hk_seal_request(daykey, &h, body, sizeof(body) - 1, outp, lenp));
}

static void
test_request_round_trip(void)
{
	Hsmkey__V1__Envelope *env;
	const char	     *why;
	uint8_t		     *msg;
	size_t		      len;

	seal(&msg, &len);
	PASS(hk_open_request(msg, len, &env, &why));
	EQ_STR(env->client_id, "svc-1");
	EQ_INT(env->secret_no, 2);
	EQ_INT(env->timestamp_ms, 1700000000123ULL);
	EQ_INT(env->request.len, sizeof(body) - 1);
	TRUE(memcmp(env->nonce.data, nonce, HK_NONCE_LEN) == 0);
	PASS(hk_check_request(env, daykey));
	FAIL(hk_check_request(env, other), HK_ERR_MAC);
	/* any covered field changed breaks the MAC */
	env->secret_no = 3;
	FAIL(hk_check_request(env, daykey), HK_ERR_MAC);
	env->secret_no = 2;
	env->timestamp_ms++;
	FAIL(hk_check_request(env, daykey), HK_ERR_MAC);
	env->timestamp_ms--;
	env->request.data[0] ^= 1;
	FAIL(hk_check_request(env, daykey), HK_ERR_MAC);
	hk_envelope_free(env);
	free(msg);
}

static void
test_request_refused(void)
{
	Hsmkey__V1__Envelope *env;
	const char	     *why;
	uint8_t		     *msg, junk[] = { 0xff, 0xff, 0xff };
	size_t		      len;

	FAIL(hk_open_request(junk, sizeof(junk), &env, &why), HK_ERR_DECODE);
	TRUE(env == NULL && why != NULL);
	/* a trailing byte: not canonical, refused before any MAC check */
	seal(&msg, &len);
	msg = realloc(msg, len + 2);
	TRUE(msg != NULL);
	msg[len] = 0x08; /* field 1 again: a duplicate protocol */
	msg[len + 1] = 0x01;
	FAIL(hk_open_request(msg, len + 2, &env, &why), HK_ERR_DECODE);
	free(msg);
	/* a shape error hands the envelope back for its nonce */
	{
		Hsmkey__V1__Envelope e = HSMKEY__V1__ENVELOPE__INIT;
		uint8_t		     mac[HK_MAC_LEN] = { 0 };

		e.protocol = 2;
		e.client_id = "svc-1";
		e.nonce.data = (uint8_t *)nonce;
		e.nonce.len = HK_NONCE_LEN;
		e.mac.data = mac;
		e.mac.len = sizeof(mac);
		PASS(hk_encode(&e.base, &msg, &len));
		FAIL(hk_open_request(msg, len, &env, &why), HK_ERR_PROTOCOL);
		TRUE(env != NULL && env->nonce.len == HK_NONCE_LEN);
		hk_envelope_free(env);
		free(msg);
		e.protocol = 1;
		e.mac.len = 31;
		PASS(hk_encode(&e.base, &msg, &len));
		FAIL(hk_open_request(msg, len, &env, &why),
		    HK_ERR_UNAUTHENTICATED);
		hk_envelope_free(env);
		free(msg);
		e.mac.len = sizeof(mac);
		e.client_id = "bad id";
		PASS(hk_encode(&e.base, &msg, &len));
		FAIL(hk_open_request(msg, len, &env, &why), HK_ERR_INVALID);
		hk_envelope_free(env);
		free(msg);
	}
}

/* A frame of n varint fields 8 = 0 (a reserved number), then junk. */
static uint8_t *
many_fields(size_t n, size_t junk, size_t *lenp)
{
	uint8_t *m;
	size_t	 i;

	TRUE((m = malloc(2 * n + junk + 1)) != NULL);
	for (i = 0; i < n; i++) {
		m[2 * i] = 8 << 3;
		m[2 * i + 1] = 0;
	}
	memset(m + 2 * n, 0xff, junk); /* a varint that never ends */
	*lenp = 2 * n + junk;
	return m;
}

/* Refused before unpacking: more fields than an Envelope has, or bytes
 * besides the request over HK_ENVELOPE_OVERHEAD. */
static void
test_request_precheck(void)
{
	Hsmkey__V1__Envelope  *env;
	struct hk_request_head h = { "svc-1", 2, nonce, 1700000000123ULL };
	const char	      *why;
	uint8_t		      *msg, *big;
	size_t		       len, n;

	seal(&msg, &len);
	PASS(hk_envelope_precheck(msg, len));
	free(msg);
	/* a request of nearly HK_MAX_MESSAGE (the envelope must fit in it
	 * too): its overhead fits */
	n = HK_MAX_MESSAGE - HK_ENVELOPE_OVERHEAD;
	TRUE((big = calloc(1, n)) != NULL);
	PASS(hk_seal_request(daykey, &h, big, n, &msg, &len));
	TRUE(len - n <= HK_ENVELOPE_OVERHEAD);
	PASS(hk_envelope_precheck(msg, len));
	free(msg);
	free(big);

	/* half a million two-byte fields: 1 MiB */
	msg = many_fields(512 * 1024, 0, &len);
	FAIL(hk_envelope_precheck(msg, len), HK_ERR_TOO_LARGE);
	FAIL(hk_open_request(msg, len, &env, &why), HK_ERR_DECODE);
	TRUE(env == NULL);
	free(msg);
	/* it never reads past the seventh field: the junk after it would be
	 * malformed, as it is when it comes earlier */
	msg = many_fields(HK_ENVELOPE_FIELDS, 64, &len);
	FAIL(hk_envelope_precheck(msg, len), HK_ERR_TOO_LARGE);
	free(msg);
	msg = many_fields(HK_ENVELOPE_FIELDS - 1, 64, &len);
	FAIL(hk_envelope_precheck(msg, len), HK_ERR_DECODE);
	free(msg);
	/* few fields, but one of them (not the request) is large */
	n = 2 * HK_ENVELOPE_OVERHEAD;
	TRUE((msg = calloc(1, n + 3)) != NULL);
	msg[0] = 2 << 3 | 2; /* client_id */
	msg[1] = (uint8_t)(0x80 | (n & 0x7f));
	msg[2] = (uint8_t)(n >> 7);
	FAIL(hk_envelope_precheck(msg, n + 3), HK_ERR_TOO_LARGE);
	/* cut short */
	FAIL(hk_envelope_precheck(msg, 40), HK_ERR_DECODE);
	free(msg);
}

static void
test_response(void)
{
	struct hk_opened_reply o;
	const char	      *why;
	uint8_t		      *msg, wrong[HK_NONCE_LEN] = { 0 };
	size_t		       len;

	PASS(hk_seal_response(daykey, 0, nonce, HK_NONCE_LEN, body,
	    sizeof(body) - 1, &msg, &len));
	PASS(hk_open_response(daykey, nonce, msg, len, &o, &why));
	TRUE(o.maced);
	EQ_INT(o.secret_no, 0);
	EQ_INT(o.resp_len, sizeof(body) - 1);
	TRUE(memcmp(o.resp, body, o.resp_len) == 0);
	hk_opened_reply_free(&o);
	FAIL(hk_open_response(other, nonce, msg, len, &o, &why), HK_ERR_MAC);
	hk_opened_reply_free(&o);
	FAIL(hk_open_response(daykey, wrong, msg, len, &o, &why),
	    HK_ERR_PROTOCOL);
	hk_opened_reply_free(&o);
	free(msg);
	/* the secret that matched, under the MAC */
	PASS(hk_seal_response(daykey, 7, nonce, HK_NONCE_LEN, body,
	    sizeof(body) - 1, &msg, &len));
	PASS(hk_open_response(daykey, nonce, msg, len, &o, &why));
	TRUE(o.maced);
	EQ_INT(o.secret_no, 7);
	EQ_INT(o.renv->secret_no, 7);
	hk_opened_reply_free(&o);
	{
		Hsmkey__V1__ResponseEnvelope *re;
		uint8_t			     *edited;
		size_t			      elen;

		/* another number, or none, under the same MAC: refused */
		re = hsmkey__v1__response_envelope__unpack(NULL, len, msg);
		TRUE(re != NULL);
		re->secret_no = 8;
		PASS(hk_encode(&re->base, &edited, &elen));
		FAIL(hk_open_response(daykey, nonce, edited, elen, &o, &why),
		    HK_ERR_MAC);
		hk_opened_reply_free(&o);
		free(edited);
		re->secret_no = 0;
		PASS(hk_encode(&re->base, &edited, &elen));
		FAIL(hk_open_response(daykey, nonce, edited, elen, &o, &why),
		    HK_ERR_MAC);
		hk_opened_reply_free(&o);
		free(edited);
		hsmkey__v1__response_envelope__free_unpacked(re, NULL);
	}
	free(msg);
	/* unauthenticated: no MAC, and the opener says so */
	PASS(hk_seal_response(
	    NULL, 3, nonce, HK_NONCE_LEN, body, sizeof(body) - 1, &msg, &len));
	PASS(hk_open_response(daykey, nonce, msg, len, &o, &why));
	TRUE(!o.maced);
	EQ_INT(o.secret_no, 0);
	hk_opened_reply_free(&o);
	/* cut short: the response field runs past the end */
	FAIL(hk_open_response(daykey, nonce, msg, len - 1, &o, &why),
	    HK_ERR_DECODE);
	hk_opened_reply_free(&o);
	free(msg);
}

TEST_LIST = {
	{ "request_round_trip", test_request_round_trip },
	{ "request_refused", test_request_refused },
	{ "request_precheck", test_request_precheck },
	{ "response", test_response },
	{ NULL, NULL },
};

TEST_MAIN
