/* proto_test.c: unit tests of the wire-level helpers shared by both ends. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "buf.h"
#include "codec.h"
#include "envelope.h"
#include "hk_err.h"
#include "testutil.h"
#include "wire.h"

static void
unhex(const char *hex, uint8_t *out)
{
	size_t i;

	for (i = 0; hex[2 * i] != '\0'; i++) {
		char b[3] = { hex[2 * i], hex[2 * i + 1], '\0' };

		out[i] = (uint8_t)strtoul(b, NULL, 16);
	}
}

/* RFC 4231 test cases 1, 2 and 6. */
static void
test_hmac_rfc4231(void)
{
	uint8_t key[131], out[32], want[32];

	memset(key, 0x0b, 20);
	PASS(hk_hmac_sha256(key, 20, (const uint8_t *)"Hi There", 8, out));
	unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32"
	      "cff7",
	    want);
	TRUE(memcmp(out, want, 32) == 0);

	PASS(hk_hmac_sha256((const uint8_t *)"Jefe", 4,
	    (const uint8_t *)"what do ya want for nothing?", 28, out));
	unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec"
	      "3843",
	    want);
	TRUE(memcmp(out, want, 32) == 0);

	memset(key, 0xaa, sizeof(key));
	PASS(hk_hmac_sha256(key, sizeof(key),
	    (const uint8_t
		    *)"Test Using Larger Than Block-Size Key - Hash Key First",
	    54, out));
	unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee3"
	      "7f54",
	    want);
	TRUE(memcmp(out, want, 32) == 0);
}

static void *
hmac_thread(void *arg)
{
	uint8_t	     key[32], msg[300], a[32], b[32];
	unsigned int len;
	int	     i, *bad = arg;

	for (i = 0; i < 2000; i++) {
		RAND_bytes(key, sizeof(key));
		RAND_bytes(msg, sizeof(msg));
		if (hk_hmac_sha256(key, (size_t)(i % 33), msg,
			(size_t)(i % 300), a) != 0 ||
		    HMAC(EVP_sha256(), key, i % 33, msg, (size_t)(i % 300), b,
			&len) == NULL ||
		    memcmp(a, b, 32) != 0) {
			(*bad)++;
		}
	}
	return NULL;
}

/* The re-keyed per-thread context agrees with OpenSSL's one-shot HMAC. */
static void
test_hmac_threads(void)
{
	pthread_t t[4];
	int	  bad[4] = { 0 }, i;

	for (i = 0; i < 4; i++) {
		TRUE(pthread_create(&t[i], NULL, hmac_thread, &bad[i]) == 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		EQ_INT(bad[i], 0);
	}
}

static void
test_day_key(void)
{
	uint8_t secret[32], k1[32], k2[32], in[32], want[32];
	size_t	len;

	memset(secret, 7, sizeof(secret));
	/* 2026-11-28T12:00:00Z */
	EQ_INT(hk_mac_day(1795867200000ULL), 20261128);
	EQ_INT(hk_mac_day(0), 19700101);
	PASS(hk_day_key(secret, 32, 20261128, k1));
	PASS(hk_day_key(secret, 32, 20261129, k2));
	TRUE(memcmp(k1, k2, 32) != 0);
	hk_day_key_input(20261128, in, &len);
	EQ_INT(len, sizeof("hsmkey.v1 day key") + 4);
	PASS(hk_hmac_sha256(secret, 32, in, len, want));
	TRUE(memcmp(k1, want, 32) == 0);
}

/* hk_mac_day() is arithmetic: it must agree with gmtime_r() on every day
 * from 1970 to 2500, at both ends of the day. */
static void
test_mac_day_calendar(void)
{
	uint64_t  day, ms;
	uint32_t  got, want;
	time_t	  t;
	struct tm tm;
	int	  bad = 0;

	for (day = 0; day < 193000; day++) {
		for (ms = 0; ms < 86400000; ms += 86399999) {
			t = (time_t)((day * 86400000 + ms) / 1000);
			TRUE(gmtime_r(&t, &tm) != NULL);
			want = (uint32_t)(tm.tm_year + 1900) * 10000 +
			    (uint32_t)(tm.tm_mon + 1) * 100 +
			    (uint32_t)tm.tm_mday;
			got = hk_mac_day(day * 86400000 + ms);
			if (got != want && bad++ < 5) {
				fprintf(stderr, "day %llu: %u, want %u\n",
				    (unsigned long long)day, got, want);
			}
		}
	}
	EQ_INT(bad, 0);
	EQ_INT(hk_mac_day(951782400000ULL), 20000229);	/* leap, 400 */
	EQ_INT(hk_mac_day(4107542400000ULL), 21000301); /* no 2100-02-29 */
}

/* The streamed MACs equal HMAC over the documented MAC inputs. */
static void
test_mac_streamed(void)
{
	uint8_t	       key[32], nonce[16], msg[300], a[32], b[32], c3[32];
	struct hk_buf *in;
	size_t	       len;

	memset(key, 3, sizeof(key));
	RAND_bytes(nonce, sizeof(nonce));
	RAND_bytes(msg, sizeof(msg));
	for (len = 0; len <= sizeof(msg); len += 37) {
		TRUE((in = hk_buf_new(4096)) != NULL);
		PASS(hk_mac_input_request(in, 1, "client-7", 3, nonce, 16,
		    1795867200123ULL, msg, len));
		PASS(hk_hmac_sha256(
		    key, 32, hk_buf_ptr(in), hk_buf_len(in), a));
		PASS(hk_mac_request(key, 1, "client-7", 3, nonce, 16,
		    1795867200123ULL, msg, len, b));
		TRUE(memcmp(a, b, 32) == 0);
		/* and the fields count */
		PASS(hk_mac_request(key, 1, "client-7", 4, nonce, 16,
		    1795867200123ULL, msg, len, a));
		TRUE(memcmp(a, b, 32) != 0);
		hk_buf_reset(in);
		PASS(hk_mac_input_response(in, 1, nonce, 16, msg, len, 0));
		PASS(hk_hmac_sha256(
		    key, 32, hk_buf_ptr(in), hk_buf_len(in), a));
		PASS(hk_mac_response(key, 1, nonce, 16, msg, len, 0, b));
		TRUE(memcmp(a, b, 32) == 0);
		/* a reply's secret_no: the same both ways, and it counts */
		hk_buf_reset(in);
		PASS(hk_mac_input_response(in, 1, nonce, 16, msg, len, 3));
		EQ_INT(hk_buf_len(in), 19 + 4 + 20 + 4 + len + 4);
		PASS(hk_hmac_sha256(
		    key, 32, hk_buf_ptr(in), hk_buf_len(in), a));
		PASS(hk_mac_response(key, 1, nonce, 16, msg, len, 3, c3));
		TRUE(memcmp(a, c3, 32) == 0 && memcmp(b, c3, 32) != 0);
		PASS(hk_mac_response(key, 1, nonce, 16, msg, len, 4, a));
		TRUE(memcmp(a, c3, 32) != 0);
		hk_buf_free(in);
	}
	FAIL(hk_mac_response(key, 1, msg, 65, msg, 1, 0, a), HK_ERR_TOO_LARGE);
	/* a thread's context keeps its last key: switching keys and back
	 * gives each key's own MAC */
	{
		uint8_t k2[32], c[32], d[32];

		memset(k2, 4, sizeof(k2));
		PASS(hk_mac_response(key, 1, nonce, 16, msg, 100, 0, a));
		PASS(hk_mac_response(k2, 1, nonce, 16, msg, 100, 0, b));
		PASS(hk_mac_response(key, 1, nonce, 16, msg, 100, 0, c));
		PASS(hk_hmac_sha256(k2, 31, msg, 100, d)); /* a prefix */
		TRUE(memcmp(a, c, 32) == 0 && memcmp(a, b, 32) != 0);
		PASS(hk_mac_response(k2, 1, nonce, 16, msg, 100, 0, c));
		TRUE(memcmp(b, c, 32) == 0);
		TRUE(HMAC(EVP_sha256(), k2, 31, msg, 100, c, NULL) != NULL);
		TRUE(memcmp(c, d, 32) == 0);
	}
}

static void
test_sigtext(void)
{
	uint8_t	 sig[70], *back;
	size_t	 len;
	uint32_t v;
	char	*text;

	memset(sig, 0x5a, sizeof(sig));
	PASS(hk_sigtext_format(12, sig, sizeof(sig), &text));
	TRUE(strncmp(text, "hsmkey:v12:", 11) == 0);
	PASS(hk_sigtext_parse(text, &v, &back, &len));
	EQ_INT(v, 12);
	EQ_INT(len, sizeof(sig));
	TRUE(memcmp(back, sig, len) == 0);
	free(back);
	free(text);
	FAIL(hk_sigtext_parse("hsmkey:v0:AAAA", &v, &back, &len),
	    HK_ERR_INVALID);
	FAIL(hk_sigtext_parse("hsmkey:v1:", &v, &back, &len), HK_ERR_INVALID);
	FAIL(hk_sigtext_parse("hsmkey:v1:!!!!", &v, &back, &len),
	    HK_ERR_INVALID);
	FAIL(hk_sigtext_parse("hsmkey:vx:AAAA", &v, &back, &len),
	    HK_ERR_INVALID);
	FAIL(hk_sigtext_parse("other:v1:AAAA", &v, &back, &len),
	    HK_ERR_INVALID);
	FAIL(hk_sigtext_format(0, sig, 1, &text), HK_ERR_INVALID);
}

static void
test_names(void)
{
	hk_alg	 alg;
	uint64_t d;

	TRUE(hk_valid_key_name("a"));
	TRUE(hk_valid_key_name("pay-1.v2_x"));
	TRUE(!hk_valid_key_name(""));
	TRUE(!hk_valid_key_name("-a"));
	TRUE(!hk_valid_key_name("A"));
	TRUE(!hk_valid_key_name("a/b"));
	TRUE(hk_valid_key_name("a234567890123456789012345678901234567890"
			       "123456789012345678901234"));
	TRUE(!hk_valid_key_name("a234567890123456789012345678901234567890"
				"1234567890123456789012345"));
	PASS(hk_alg_parse("ed25519", &alg));
	EQ_STR(hk_alg_name(alg), "ed25519");
	FAIL(hk_alg_parse("rsa-1024", &alg), HK_ERR_INVALID);
	PASS(hk_parse_duration("7d", &d));
	EQ_INT(d, 7 * 86400);
	PASS(hk_parse_duration("90", &d));
	EQ_INT(d, 90);
	FAIL(hk_parse_duration("1w", &d), HK_ERR_INVALID);
	FAIL(hk_parse_duration("-1s", &d), HK_ERR_INVALID);
	FAIL(hk_parse_duration("1ss", &d), HK_ERR_INVALID);
	/* at most 100 years: the value that wrapped to a rotation a second */
	PASS(hk_parse_duration("36525d", &d));
	EQ_INT(d, HK_DURATION_MAX_S);
	PASS(hk_parse_duration("3155760000", &d));
	FAIL(hk_parse_duration("3155760001", &d), HK_ERR_INVALID);
	FAIL(hk_parse_duration("36526d", &d), HK_ERR_INVALID);
	FAIL(hk_parse_duration("18446744073709551", &d), HK_ERR_INVALID);
	TRUE(hk_time_add_s(1000, 2) == 3000);
	TRUE(hk_time_add_s(UINT64_MAX - 1000, 1) == UINT64_MAX);
	TRUE(hk_time_add_s(1, UINT64_MAX / 1000 + 1) == UINT64_MAX);
	TRUE(hk_time_add_s(UINT64_MAX, 0) == UINT64_MAX);
	EQ_INT(hk_exit_code(HSMKEY__V1__STATUS__STATUS_NOT_FOUND), 4);
	EQ_INT(hk_exit_code(HSMKEY__V1__STATUS__STATUS_REPLAY), 3);
}

/* Strict decoding: duplicates, unknown fields and non-canonical forms of a
 * valid message are refused; the canonical form passes. */
static void
test_strict_decode(void)
{
	Hsmkey__V1__Request	req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__SignRequest sr = HSMKEY__V1__SIGN_REQUEST__INIT;
	ProtobufCMessage       *m;
	uint8_t		       *buf, more[256];
	size_t			len;

	sr.name = (char *)"k";
	req.op_case = HSMKEY__V1__REQUEST__OP_SIGN;
	req.sign = &sr;
	PASS(hk_encode(&req.base, &buf, &len));
	PASS(hk_decode_strict(&hsmkey__v1__request__descriptor, buf, len, &m));
	protobuf_c_message_free_unpacked(m, NULL);
	TRUE(len + 8 < sizeof(more));

	/* an unknown field (number 99, varint) appended */
	memcpy(more, buf, len);
	more[len] = 0x98;
	more[len + 1] = 0x06;
	more[len + 2] = 0x01;
	FAIL(hk_decode_strict(
		 &hsmkey__v1__request__descriptor, more, len + 3, &m),
	    HK_ERR_DECODE);

	/* the same sub-message twice (protobuf merges; we refuse) */
	memcpy(more, buf, len);
	memcpy(more + len, buf, len);
	FAIL(hk_decode_strict(
		 &hsmkey__v1__request__descriptor, more, 2 * len, &m),
	    HK_ERR_DECODE);

	/* garbage */
	memset(more, 0xff, 16);
	FAIL(hk_decode_strict(&hsmkey__v1__request__descriptor, more, 16, &m),
	    HK_ERR_DECODE);
	free(buf);
}

/* hk_pb_next() reads one field and refuses what is malformed. */
static void
test_pb_next(void)
{
	static const uint8_t ok[] = { 0x08, 0x96, 0x01, 0x12, 0x02, 'h', 'i',
		0x1d, 1, 2, 3, 4, 0x21, 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint8_t bad[][4] = {
		{ 0x08, 0x80 },	     /* varint cut short */
		{ 0x12, 0x05, 'h' }, /* bytes past the end */
		{ 0x1b, 0 },	     /* wire type 3 (group) */
		{ 0x02, 0 },	     /* field number 0 */
		{ 0x1d, 1, 2 },	     /* fixed32 cut short */
	};
	static const size_t bad_len[] = { 2, 3, 2, 2, 3 };
	struct hk_pb_field  f;
	size_t		    off = 0, i;

	PASS(hk_pb_next(ok, sizeof(ok), &off, &f));
	EQ_INT(f.number, 1);
	EQ_INT(f.wire_type, 0);
	PASS(hk_pb_next(ok, sizeof(ok), &off, &f));
	EQ_INT(f.number, 2);
	EQ_INT(f.len, 2);
	TRUE(memcmp(f.data, "hi", 2) == 0);
	PASS(hk_pb_next(ok, sizeof(ok), &off, &f));
	EQ_INT(f.wire_type, 5);
	PASS(hk_pb_next(ok, sizeof(ok), &off, &f));
	EQ_INT(f.wire_type, 1);
	EQ_INT(off, sizeof(ok));
	for (i = 0; i < sizeof(bad_len) / sizeof(bad_len[0]); i++) {
		off = 0;
		FAIL(hk_pb_next(bad[i], bad_len[i], &off, &f), HK_ERR_DECODE);
	}
}

/* Fields are counted at every depth, and counting stops at max + 1. */
static void
test_pb_count(void)
{
	Hsmkey__V1__Request		  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__SignRequest		  sr = HSMKEY__V1__SIGN_REQUEST__INIT;
	Hsmkey__V1__SignItem		  items[1000], *ptrs[1000];
	const ProtobufCMessageDescriptor *d = &hsmkey__v1__request__descriptor;
	uint8_t				  digest[32] = { 1 }, *buf, *big, *p;
	size_t				  len, n, i;

	for (i = 0; i < 1000; i++) {
		hsmkey__v1__sign_item__init(&items[i]);
		items[i].digest.data = digest;
		items[i].digest.len = sizeof(digest);
		ptrs[i] = &items[i];
	}
	sr.name = (char *)"k";
	sr.n_items = 1000;
	sr.items = ptrs;
	req.op_case = HSMKEY__V1__REQUEST__OP_SIGN;
	req.sign = &sr;
	PASS(hk_encode(&req.base, &buf, &len));
	/* sign, name, 1000 items, a digest in each */
	PASS(hk_pb_count_fields(d, buf, len, 5000, &n));
	EQ_INT(n, 2002);
	FAIL(hk_pb_count_fields(d, buf, len, 2001, &n), HK_ERR_TOO_LARGE);
	PASS(hk_pb_count_fields(d, buf, len, 2002, &n));
	free(buf);

	/* 500,000 empty items, then junk: refused after max + 1 fields, the
	 * junk never read */
	TRUE((big = malloc(1100000)) != NULL);
	p = big;
	*p++ = 15 << 3 | 2;
	*p++ = 0x80 | (1000100 & 0x7f);
	*p++ = 0x80 | ((1000100 >> 7) & 0x7f);
	*p++ = 1000100 >> 14;
	for (i = 0; i < 500000; i++) {
		*p++ = 3 << 3 | 2;
		*p++ = 0;
	}
	memset(p, 0xff, 100);
	FAIL(hk_pb_count_fields(d, big, (size_t)(p - big) + 100, 3064, &n),
	    HK_ERR_TOO_LARGE);
	EQ_INT(n, 3065);
	FAIL(hk_pb_count_fields(d, big, (size_t)(p - big) + 100, 600000, &n),
	    HK_ERR_DECODE);
	free(big);
}

static void
test_buf_bounds(void)
{
	struct hk_buf *b;
	const uint8_t *p;
	uint32_t       v;

	TRUE((b = hk_buf_new(8)) != NULL);
	PASS(hk_buf_put_u32(b, 0x01020304));
	PASS(hk_buf_put_u32(b, 5));
	FAIL(hk_buf_put_u32(b, 6), HK_ERR_TOO_LARGE);
	PASS(hk_buf_get_u32(b, &v));
	EQ_INT(v, 0x01020304);
	FAIL(hk_buf_end(b), HK_ERR_DECODE);
	FAIL(hk_buf_get_bytes_direct(b, 5, &p), HK_ERR_DECODE);
	PASS(hk_buf_get_u32(b, &v));
	PASS(hk_buf_end(b));
	FAIL(hk_buf_get_u32(b, &v), HK_ERR_DECODE);
	hk_buf_free(b);
}

TEST_LIST = {
	{ "hmac_rfc4231", test_hmac_rfc4231 },
	{ "hmac_threads", test_hmac_threads },
	{ "day_key", test_day_key },
	{ "mac_day_calendar", test_mac_day_calendar },
	{ "mac_streamed", test_mac_streamed },
	{ "sigtext", test_sigtext },
	{ "names", test_names },
	{ "strict_decode", test_strict_decode },
	{ "buf_bounds", test_buf_bounds },
	{ "pb_next", test_pb_next },
	{ "pb_count", test_pb_count },
	{ NULL, NULL },
};

TEST_MAIN
