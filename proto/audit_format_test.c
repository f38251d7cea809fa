/* audit_format_test.c: unit tests of the audit line format
 * (audit_format.h): golden lines, the parser, the chain and checkpoint
 * hashes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_format.h"
#include "hk_err.h"
#include "testutil.h"
#include "wire.h"

#define TS "2024-05-01T12:00:00.123Z"
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

static const char golden_event[] =
    "{\"seq\":7,\"time\":\"" TS "\",\"client\":\"svc-1\",\"secret\":2,"
    "\"op\":\"sign\",\"key\":\"k1\",\"version\":3,\"items\":1,"
    "\"status\":\"OK\",\"nonce\":\"000102030405060708090a0b0c0d0e0f\","
    "\"sigs\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aa\",\"prev\":\"" H1 "\"}";
static const char golden_checkpoint[] =
    "{\"seq\":8,\"time\":\"" TS "\",\"op\":\"checkpoint\","
    "\"key\":\"hsmkey-audit\",\"version\":1,\"head\":\"" H2 "\","
    "\"sig\":\"TUVVQ0lRPT0=\",\"prev\":\"" H2 "\"}";
/* SHA-256 of golden_event (python3 hashlib) */
static const char golden_event_hash[] =
    "2b196daa0d9269d2bd7b043b5e66c3adfc262b191fab0c261623b60cab0aa57e";
/* SHA-256 of the checkpoint input of golden_checkpoint */
static const char golden_cp_digest[] =
    "fdf73a7ecb044fcce888d7bdebfe6808e5c657856a119c99f87f9292cf4f4e06";

static void
to_hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(out + 2 * i, 3, "%02x", p[i]);
	}
}

static void
test_time(void)
{
	char ts[HK_AUDIT_TIME_LEN + 1];

	hk_audit_time(ts, 1714564800123ULL);
	EQ_STR(ts, TS);
	hk_audit_time(ts, 0);
	EQ_STR(ts, "1970-01-01T00:00:00.000Z");
}

static void
test_golden_event(void)
{
	struct hk_audit_event ev;
	uint8_t		      nonce[16], sigs[32], prev[32];
	char		      body[HK_AUDIT_BODY_MAX], line[HK_AUDIT_LINE_MAX];
	int		      i, n;

	for (i = 0; i < 16; i++) {
		nonce[i] = (uint8_t)i;
	}
	memset(sigs, 0xaa, sizeof(sigs));
	memset(prev, 0x11, sizeof(prev));
	memset(&ev, 0, sizeof(ev));
	ev.client = "svc-1";
	ev.secret = 2;
	ev.op = "sign";
	ev.key = "k1";
	ev.version = 3;
	ev.items = 1;
	ev.status = HSMKEY__V1__STATUS__STATUS_OK;
	ev.nonce = nonce;
	ev.nonce_len = sizeof(nonce);
	ev.sigs = sigs;
	TRUE((n = hk_audit_format_event(body, sizeof(body), &ev)) > 0);
	EQ_INT(n, strlen(body));
	TRUE((n = hk_audit_format_line(
		  line, sizeof(line), 7, TS, body, prev)) > 0);
	EQ_INT(n, strlen(golden_event));
	EQ_STR(line, golden_event);
	/* too small a buffer */
	FAIL(hk_audit_format_event(body, 20, &ev), HK_ERR_TOO_LARGE);
	FAIL(hk_audit_format_line(line, 40, 7, TS, body, prev),
	    HK_ERR_TOO_LARGE);
}

static void
test_event_strings(void)
{
	struct hk_audit_event ev;
	char		      body[HK_AUDIT_BODY_MAX], big[400];

	memset(&ev, 0, sizeof(ev));
	ev.op = "a\"b\\c\n";
	ev.status = 9999; /* unknown status */
	TRUE(hk_audit_format_event(body, sizeof(body), &ev) > 0);
	EQ_STR(body,
	    ",\"client\":\"?\",\"secret\":0,\"op\":\"a?b?c?\",\"key\":\"\","
	    "\"version\":0,\"items\":0,\"status\":\"UNKNOWN\","
	    "\"nonce\":\"\",\"sigs\":\"\"");
	/* strings are cut at HK_AUDIT_STR_MAX */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ev.key = big;
	TRUE(hk_audit_format_event(body, sizeof(body), &ev) > 0);
	TRUE(strstr(body, "\"key\":\"") != NULL);
	EQ_INT(strchr(strstr(body, "\"key\":\"") + 7, '"') -
		(strstr(body, "\"key\":\"") + 7),
	    HK_AUDIT_STR_MAX);
}

static void
test_golden_checkpoint(void)
{
	uint8_t head[32];
	char	body[HK_AUDIT_BODY_MAX], line[HK_AUDIT_LINE_MAX];

	memset(head, 0x22, sizeof(head));
	TRUE(hk_audit_format_checkpoint(
		 body, sizeof(body), 1, head, "TUVVQ0lRPT0=") > 0);
	TRUE(hk_audit_format_line(line, sizeof(line), 8, TS, body, head) > 0);
	EQ_STR(line, golden_checkpoint);
}

static void
test_parse_round_trip(void)
{
	struct hk_audit_line l;
	char		     why[160];
	uint8_t		     h[32];

	PASS(hk_audit_parse(
	    golden_event, strlen(golden_event), &l, why, sizeof(why)));
	TRUE(!l.checkpoint);
	EQ_INT(l.seq, 7);
	EQ_INT(l.secret, 2);
	EQ_INT(l.version, 3);
	EQ_INT(l.items, 1);
	TRUE(l.client.len == 5 && memcmp(l.client.s, "svc-1", 5) == 0);
	TRUE(l.status.len == 2 && memcmp(l.status.s, "OK", 2) == 0);
	TRUE(l.time.len == HK_AUDIT_TIME_LEN);
	memset(h, 0x11, sizeof(h));
	TRUE(memcmp(l.prev_hash, h, 32) == 0);

	PASS(hk_audit_parse(golden_checkpoint, strlen(golden_checkpoint), &l,
	    why, sizeof(why)));
	TRUE(l.checkpoint);
	EQ_INT(l.seq, 8);
	EQ_INT(l.version, 1);
	TRUE(l.sig.len == 12 && memcmp(l.sig.s, "TUVVQ0lRPT0=", 12) == 0);
	memset(h, 0x22, sizeof(h));
	TRUE(memcmp(l.head_hash, h, 32) == 0);
	TRUE(memcmp(l.prev_hash, h, 32) == 0);
}

/* Replaces the first from in src with to; caller frees. */
static char *
edit(const char *src, const char *from, const char *to)
{
	const char *at = strstr(src, from);
	size_t	    n = strlen(src) - strlen(from) + strlen(to) + 1;
	char	   *s = malloc(n);

	TRUE(at != NULL && s != NULL);
	snprintf(
	    s, n, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
	return s;
}

/* src with from replaced by to is refused, why containing want. */
static void
refused(const char *src, const char *from, const char *to, const char *want)
{
	struct hk_audit_line l;
	char		     why[160];
	char		    *s = edit(src, from, to);

	FAIL(
	    hk_audit_parse(s, strlen(s), &l, why, sizeof(why)), HK_ERR_DECODE);
	if (strstr(why, want) == NULL) {
		HK_TFAIL("%s: why \"%s\" lacks \"%s\"", s, why, want);
	}
	free(s);
}

static void
test_parse_refused(void)
{
	const char *ev = golden_event, *cp = golden_checkpoint;

	/* missing, extra, reordered, duplicated fields */
	refused(ev, ",\"items\":1", "", "\"status\" where \"items\"");
	refused(ev, "\"prev\":", "\"x\":1,\"prev\":", "\"x\" where \"prev\"");
	refused(ev, "\"}", "\",\"extra\":1}", "unknown or duplicate field");
	refused(ev, "\"secret\":2,\"op\":\"sign\"",
	    "\"op\":\"sign\",\"secret\":2", "\"op\" where \"secret\"");
	refused(ev, "\"key\":\"k1\"", "\"key\":\"k1\",\"key\":\"k1\"",
	    "\"key\" where \"version\"");
	refused(cp, ",\"head\":\"" H2 "\"", "", "\"sig\" where \"head\"");
	refused(ev, ",\"prev\":\"" H1 "\"", "", "fields missing");
	/* wrong types and values */
	refused(ev, "\"secret\":2", "\"secret\":\"2\"",
	    "\"secret\" is not a number");
	refused(ev, "\"client\":\"svc-1\"", "\"client\":5",
	    "\"client\" is not a string");
	refused(ev, "\"version\":3", "\"version\":03", "not a number");
	refused(
	    ev, "\"items\":1", "\"items\":99999999999999999999", "too large");
	refused(ev, "\"items\":1", "\"items\":4294967296", "larger than 32");
	refused(ev, "svc-1", "svc 1", "never writes");
	refused(ev, "12:00:00.123Z", "12:00:00Z", "\"time\" is not");
	refused(ev, "\"nonce\":\"0001", "\"nonce\":\"01", "\"nonce\" is not");
	refused(cp, "\"op\":\"checkpoint\"", "\"op\":\"checkpoinx\"",
	    "is not \"checkpoint\"");
	refused(cp, "\"version\":1", "\"version\":0", "version is not 1");
	refused(cp, "\"key\":\"hsmkey-audit\"", "\"key\":\"other\"",
	    "checkpoint not by");
	refused(cp, "\"head\":\"22", "\"head\":\"23", "differs from");
	/* trailing bytes */
	refused(ev, "\"}", "\"} ", "trailing bytes");
	refused(ev, "\"}", "\"}}", "trailing bytes");
	refused(ev, "{\"seq\"", "[\"seq\"", "not a JSON object");
}

static void
test_parse_limits(void)
{
	struct hk_audit_line l;
	char		     why[160], *s;
	size_t		     n = HK_AUDIT_READ_MAX + 1;

	/* over-long */
	TRUE((s = malloc(n + 1)) != NULL);
	memset(s, ' ', n);
	memcpy(s, golden_event, strlen(golden_event));
	s[n] = '\0';
	FAIL(hk_audit_parse(s, n, &l, why, sizeof(why)), HK_ERR_DECODE);
	TRUE(strstr(why, "longer than") != NULL);
	free(s);
	/* a NUL inside */
	TRUE((s = strdup(golden_event)) != NULL);
	s[20] = '\0';
	FAIL(hk_audit_parse(s, strlen(golden_event), &l, why, sizeof(why)),
	    HK_ERR_DECODE);
	TRUE(strstr(why, "NUL") != NULL);
	free(s);
	/* cut short anywhere: refused, never read past len */
	for (n = 0; n < strlen(golden_event); n++) {
		FAIL(hk_audit_parse(golden_event, n, &l, why, sizeof(why)),
		    HK_ERR_DECODE);
	}
}

/* A reason: written after "sigs", parsed back, checked as the service
 * checks it; a line without one is the old format. */
static void
test_reason(void)
{
	struct hk_audit_event ev;
	struct hk_audit_line  l;
	uint8_t		      prev[32];
	char		      body[HK_AUDIT_BODY_MAX], line[HK_AUDIT_LINE_MAX];
	char		      why[160], big[HK_AUDIT_STR_MAX + 2];
	const char	     *w;
	const char	     *text =
	    "INC-42: key may leak, r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac";
	static const char *const bad[] = {
		"a\nb",
		"tab\there",
		"q\"uote",
		"back\\slash",
		"del\x7f",
		"c1 \xc2\x85",
		"lone \xc3",
		"over \xc0\xaf",
		"sur \xed\xa0\x80",
		"big \xf4\x90\x80\x80",
		"cont \x80",
		"",
	};
	size_t i;

	memset(prev, 0x11, sizeof(prev));
	memset(&ev, 0, sizeof(ev));
	ev.client = "admin";
	ev.op = "rotate";
	ev.key = "k1";
	ev.reason = text;
	TRUE(hk_audit_format_event(body, sizeof(body), &ev) > 0);
	TRUE(strstr(body, "\"sigs\":\"\",\"reason\":\"INC-42: ") != NULL);
	TRUE(hk_audit_format_line(line, sizeof(line), 1, TS, body, prev) > 0);
	PASS(hk_audit_parse(line, strlen(line), &l, why, sizeof(why)));
	TRUE(l.reason.len == strlen(text) &&
	    memcmp(l.reason.s, text, l.reason.len) == 0);
	/* without: no member, as in old logs */
	PASS(hk_audit_parse(
	    golden_event, strlen(golden_event), &l, why, sizeof(why)));
	EQ_INT(l.reason.len, 0);
	ev.reason = "";
	TRUE(hk_audit_format_event(body, sizeof(body), &ev) > 0);
	TRUE(strstr(body, "reason") == NULL);
	/* what the service refuses is never written, nor parsed */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FAIL(hk_audit_reason_check(bad[i], strlen(bad[i]), &w),
		    HK_ERR_INVALID);
		TRUE(w != NULL);
		if (bad[i][0] == '\0') {
			continue;
		}
		ev.reason = bad[i];
		TRUE(hk_audit_format_event(body, sizeof(body), &ev) > 0);
		TRUE(strstr(body, "\"reason\":\"?\"") != NULL);
	}
	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	FAIL(hk_audit_reason_check(big, strlen(big), &w), HK_ERR_INVALID);
	PASS(hk_audit_reason_check(big, HK_AUDIT_STR_MAX, &w));
	/* the longest body still fits: every string at its longest */
	ev.reason = big;
	big[HK_AUDIT_STR_MAX] = '\0';
	ev.key = ev.client = ev.op = big;
	TRUE(hk_audit_format_event(body, sizeof(body), &ev) > 0);
	/* refused in a line */
	refused(golden_event, "\",\"prev\"",
	    "\",\"reason\":\"a\\nb\",\"prev\"", "\"reason\" is not one");
	refused(golden_event, "\",\"prev\"", "\",\"reason\":\"\",\"prev\"",
	    "it is empty");
	refused(golden_event, "\",\"sigs\"", "\",\"reason\":\"x\",\"sigs\"",
	    "\"reason\" where \"sigs\"");
}

static void
test_chain_and_checkpoint(void)
{
	struct hk_audit_line l;
	uint8_t		     hash[32], in[HK_AUDIT_CHECKPOINT_INPUT_LEN];
	char		     hex[65], why[160];
	uint64_t	     seq;

	PASS(hk_audit_chain_step(golden_event, strlen(golden_event), hash));
	to_hex(hash, 32, hex);
	EQ_STR(hex, golden_event_hash);

	EQ_INT(sizeof(in), 95);
	PASS(hk_audit_parse(golden_checkpoint, strlen(golden_checkpoint), &l,
	    why, sizeof(why)));
	PASS(hk_audit_checkpoint_input(
	    l.seq, l.head_hash, 1, l.time.s, l.time.len, in));
	TRUE(memcmp(in, "hsmkey.v1 audit checkpoint", 27) == 0);
	EQ_INT(in[27 + 7], 8); /* u64 seq, big-endian */
	EQ_INT(in[27 + 8 + 32 + 3], 1);
	TRUE(memcmp(in + 95 - 24, TS, 24) == 0);
	PASS(hk_audit_checkpoint_digest(
	    l.seq, l.head_hash, 1, l.time.s, l.time.len, hash));
	to_hex(hash, 32, hex);
	EQ_STR(hex, golden_cp_digest);
	FAIL(hk_audit_checkpoint_digest(l.seq, l.head_hash, 1, TS, 23, hash),
	    HK_ERR_INVALID);

	PASS(hk_audit_line_seq(golden_event, strlen(golden_event), &seq));
	EQ_INT(seq, 7);
	FAIL(hk_audit_line_seq("{\"seq\":x", 8, &seq), HK_ERR_DECODE);
	FAIL(hk_audit_line_seq("{\"seq\":", 7, &seq), HK_ERR_DECODE);
}

TEST_LIST = {
	{ "time", test_time },
	{ "golden_event", test_golden_event },
	{ "event_strings", test_event_strings },
	{ "golden_checkpoint", test_golden_checkpoint },
	{ "parse_round_trip", test_parse_round_trip },
	{ "parse_refused", test_parse_refused },
	{ "parse_limits", test_parse_limits },
	{ "chain_and_checkpoint", test_chain_and_checkpoint },
	{ "reason", test_reason },
	{ NULL, NULL },
};

TEST_MAIN
