/*
 * auth_test.c: auth_check() on a real SoftHSM token, with envelopes sealed
 * as a client seals them (proto/seal.h): a good request passes once, its
 * resend gets its reply or waits for it, and every kind of bad envelope
 * is refused with the status, MAC, audit and denial PROTOCOL.md gives it.
 */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "codec.h"
#include "hk_err.h"
#include "clients.h"
#include "nonce.h"
#include "reply.h"
#include "seal.h"
#include "testserver.h"
#include "testutil.h"
#include "wire.h"

static struct testserver *ts;
static uint8_t		  secret[HK_SECRET_LEN];
static uint32_t		  secret_no;

static void
need_server(void)
{
	static const char *const grants[] = { "sign:*", NULL };

	if (ts == NULL) {
		ts = testserver_get();
		testserver_client(ts, "svc", grants, secret, &secret_no);
	}
}

/* An envelope of client id around req, sealed with the day key of key. */
static void
seal_with(const uint8_t *key, const char *id, uint32_t no,
    const uint8_t nonce[HK_NONCE_LEN], uint64_t ts_ms, const char *req,
    uint8_t **outp, size_t *lenp)
{
	struct hk_request_head h = { id, no, nonce, ts_ms };
	uint8_t		       dk[HK_MAC_LEN];

	PASS(hk_day_key(key, HK_SECRET_LEN, hk_mac_day(ts_ms), dk));
	PASS(hk_seal_request(
	    dk, &h, (const uint8_t *)req, strlen(req), outp, lenp));
}

/* auth_check() of an envelope; a is left for the caller to finish. */
static void
check(const uint8_t *key, const char *id, uint32_t no,
    const uint8_t nonce[HK_NONCE_LEN], uint64_t ts_ms, const char *req,
    struct auth *a)
{
	uint8_t *msg;
	size_t	 len;

	seal_with(key, id, no, nonce, ts_ms, req, &msg, &len);
	PASS(auth_check(&ts->sv, ts->s, msg, len, hk_now_ms(), a));
	free(msg);
}

/* The status of a refusal's reply; *macedp: whether it carries a MAC. */
static int
reply_status(const struct auth *a, const uint8_t nonce[HK_NONCE_LEN],
    uint64_t ts_ms, int *macedp)
{
	struct hk_opened_reply o;
	Hsmkey__V1__Response  *resp;
	const char	      *why;
	uint8_t		       dk[HK_MAC_LEN];
	int		       st;

	PASS(hk_day_key(secret, HK_SECRET_LEN, hk_mac_day(ts_ms), dk));
	TRUE(a->reply != NULL);
	PASS(hk_open_response(dk, nonce, a->reply, a->reply_len, &o, &why));
	*macedp = o.maced;
	TRUE((resp = hsmkey__v1__response__unpack(NULL, o.resp_len, o.resp)) !=
	    NULL);
	st = resp->status;
	hsmkey__v1__response__free_unpacked(resp, NULL);
	hk_opened_reply_free(&o);
	return st;
}

static void
nonce_of(uint8_t nonce[HK_NONCE_LEN], int n)
{
	memset(nonce, 0, HK_NONCE_LEN);
	nonce[0] = (uint8_t)n;
	nonce[1] = 0xa5;
}

static void
test_passes_once(void)
{
	static const uint8_t stored[] = "the first reply";
	struct auth	     a, b;
	uint8_t		     nonce[HK_NONCE_LEN];
	uint64_t	     now;

	need_server();
	now = hk_now_ms();
	nonce_of(nonce, 1);
	check(secret, "svc", secret_no, nonce, now, "ping", &a);
	EQ_INT(a.verdict, AUTH_PASSED);
	TRUE(a.client != NULL && a.maced && a.cached != NULL);
	TRUE(a.used_ms != 0);
	/* the same bytes while the first is running: no second execution */
	check(secret, "svc", secret_no, nonce, now, "ping", &b);
	EQ_INT(b.verdict, AUTH_IN_FLIGHT);
	TRUE(b.reply == NULL);
	auth_finish(&ts->sv, &b, 0);
	nonce_cache_finish(ts->sv.nonces, a.cached, stored, sizeof(stored));
	a.cached = NULL;
	auth_finish(&ts->sv, &a, 0);
	/* and after it: its reply, byte for byte */
	check(secret, "svc", secret_no, nonce, now, "ping", &b);
	EQ_INT(b.verdict, AUTH_ANSWERED);
	EQ_INT(b.reply_len, sizeof(stored));
	TRUE(memcmp(b.reply, stored, sizeof(stored)) == 0);
	auth_finish(&ts->sv, &b, 0);
	/* other bytes under the used nonce: a replay, MACed */
	check(secret, "svc", secret_no, nonce, now, "pong", &b);
	EQ_INT(b.verdict, AUTH_REFUSED);
	EQ_STR(b.op, "replay");
	TRUE(!b.audit && b.denial);
	EQ_STR(b.reason, "replay");
	{
		int maced, st = reply_status(&b, nonce, now, &maced);

		EQ_INT(st, HSMKEY__V1__STATUS__STATUS_REPLAY);
		TRUE(maced);
	}
	auth_finish(&ts->sv, &b, 1);
}

/* One refused envelope: its verdict, status, MAC, counted reason and
 * denial.  Those that did not prove their sender all get one message. */
struct refusal {
	const char *what;
	const char *id;
	int	    other_key; /* MACed with a key that is not svc's */
	uint32_t    no_offset;
	int64_t	    skew_ms;
	int	    status;
	int	    maced;
	const char *reason; /* counted as, never audited line by line */
	int	    denial;
	int	    same_text; /* the one "not authenticated" message */
};

/* The message of a refusal's reply (unMACed or MACed alike). */
static char *
reply_message(
    const struct auth *a, const uint8_t nonce[HK_NONCE_LEN], uint64_t ts_ms)
{
	struct hk_opened_reply o;
	Hsmkey__V1__Response  *resp;
	const char	      *why;
	uint8_t		       dk[HK_MAC_LEN];
	char		      *text;

	PASS(hk_day_key(secret, HK_SECRET_LEN, hk_mac_day(ts_ms), dk));
	PASS(hk_open_response(dk, nonce, a->reply, a->reply_len, &o, &why));
	TRUE((resp = hsmkey__v1__response__unpack(NULL, o.resp_len, o.resp)) !=
	    NULL);
	TRUE((text = strdup(resp->message)) != NULL);
	hsmkey__v1__response__free_unpacked(resp, NULL);
	hk_opened_reply_free(&o);
	return text;
}

static void
test_refusals(void)
{
	static const uint8_t	    wrong[HK_SECRET_LEN] = { 7 };
	static const struct refusal cases[] = {
		{ "bad MAC", "svc", 1, 0, 0,
		    HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED, 0, "bad-mac",
		    1, 1 },
		{ "unknown client", "nobody", 0, 0, 0,
		    HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED, 0,
		    "unknown-client", 0, 1 },
		{ "unknown secret", "svc", 0, 40, 0,
		    HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED, 0,
		    "unknown-secret", 0, 1 },
		{ "10 min old", "svc", 0, 0, -600000,
		    HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED, 1, "clock", 1,
		    0 },
		{ "10 min ahead", "svc", 0, 0, 600000,
		    HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED, 1, "clock", 1,
		    0 },
		{ "3 days old", "svc", 0, 0, -3 * 86400000LL,
		    HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED, 0, "clock", 0,
		    0 },
		{ "3 days old, unknown client", "nobody", 0, 0,
		    -3 * 86400000LL,
		    HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED, 0, "clock", 0,
		    0 },
	};
	struct auth a;
	uint8_t	    nonce[HK_NONCE_LEN];
	char	   *first = NULL, *text;
	size_t	    i;

	need_server();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct refusal *c = &cases[i];
		uint64_t ts_ms = (uint64_t)((int64_t)hk_now_ms() + c->skew_ms);
		int	 maced, st;

		nonce_of(nonce, 10 + (int)i);
		check(c->other_key ? wrong : secret, c->id,
		    secret_no + c->no_offset, nonce, ts_ms, "ping", &a);
		if (a.verdict != AUTH_REFUSED) {
			HK_TFAIL("%s: verdict %d, want refused", c->what,
			    a.verdict);
		}
		st = reply_status(&a, nonce, ts_ms, &maced);
		if (st != c->status || maced != c->maced || a.audit ||
		    a.reason == NULL || strcmp(a.reason, c->reason) != 0 ||
		    a.denial != c->denial) {
			HK_TFAIL("%s: status %d maced %d audit %d reason %s "
				 "denial %d",
			    c->what, st, maced, a.audit,
			    a.reason != NULL ? a.reason : "(none)", a.denial);
		}
		text = reply_message(&a, nonce, ts_ms);
		if (c->same_text && first == NULL) {
			first = text;
			text = NULL;
		} else if (c->same_text && strcmp(text, first) != 0) {
			HK_TFAIL("%s: says '%s', not '%s' like the others",
			    c->what, text, first);
		}
		free(text);
		TRUE(a.used_ms == 0 && a.cached == NULL);
		auth_finish(&ts->sv, &a, a.denial);
	}
	TRUE(first != NULL && strstr(first, "unknown-client") == NULL);
	free(first);
}

/* Nothing from before the service started passes, even in the window. */
static void
test_older_than_start(void)
{
	struct auth a;
	uint8_t	    nonce[HK_NONCE_LEN];
	uint64_t    ts_ms = hk_now_ms() - 5000, start = ts->sv.start_ms;
	int	    maced;

	need_server();
	ts->sv.start_ms = ts_ms + 1000;
	nonce_of(nonce, 30);
	check(secret, "svc", secret_no, nonce, ts_ms, "ping", &a);
	ts->sv.start_ms = start;
	EQ_INT(a.verdict, AUTH_REFUSED);
	EQ_INT(reply_status(&a, nonce, ts_ms, &maced),
	    HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED);
	TRUE(maced);
	auth_finish(&ts->sv, &a, 1);
}

/* A passed request's reply as reply_seal() makes it, opened with key's
 * day key: the secret number it says matched. */
static uint32_t
reply_secret_of(const struct auth *a, const uint8_t *key,
    const uint8_t nonce[HK_NONCE_LEN], uint64_t ts_ms)
{
	static const uint8_t   body[] = { 0x08, 0x01 }; /* status OK */
	struct hk_opened_reply o;
	const char	      *why;
	uint8_t		       dk[HK_MAC_LEN], *msg;
	size_t		       len;
	uint32_t	       no;

	PASS(reply_seal(a, body, sizeof(body), &msg, &len));
	PASS(hk_day_key(key, HK_SECRET_LEN, hk_mac_day(ts_ms), dk));
	PASS(hk_open_response(dk, nonce, msg, len, &o, &why));
	TRUE(o.maced);
	no = o.secret_no;
	hk_opened_reply_free(&o);
	free(msg);
	return no;
}

/*
 * secret_no 0: every slot of a client with CLIENTS_MAX_SECRETS live
 * secrets passes with its own secret, is counted and answered as that
 * number; a wrong secret, a revoked one and a client with none left are
 * refused like a bad MAC or an unknown secret.
 */
static void
test_unnamed_secret(void)
{
	static const char *const grants[] = { "sign:*", NULL };
	uint8_t	    keys[CLIENTS_MAX_SECRETS][HK_SECRET_LEN], wrong[32];
	uint8_t	    nonce[HK_NONCE_LEN];
	uint32_t    nos[CLIENTS_MAX_SECRETS];
	uint64_t    now = hk_now_ms(), expires;
	struct auth a;
	size_t	    i;
	int	    maced;

	need_server();
	testserver_client(ts, "multi", grants, keys[0], &nos[0]);
	for (i = 1; i < CLIENTS_MAX_SECRETS; i++) {
		PASS(clients_rotate(ts->sv.clients, ts->s, "multi", keys[i],
		    &nos[i], &expires));
	}
	for (i = 0; i < CLIENTS_MAX_SECRETS; i++) {
		nonce_of(nonce, 40 + (int)i);
		check(keys[i], "multi", 0, nonce, now, "ping", &a);
		if (a.verdict != AUTH_PASSED || a.secret_no != nos[i] ||
		    a.reply_secret != nos[i] ||
		    a.tried != CLIENTS_MAX_SECRETS) {
			HK_TFAIL("slot %zu: verdict %d, secret %u (want %u)",
			    i, a.verdict, a.secret_no, nos[i]);
		}
		EQ_INT(reply_secret_of(&a, keys[i], nonce, now), nos[i]);
		auth_finish(&ts->sv, &a, 0);
	}
	/* a secret the client does not have */
	memset(wrong, 0x5a, sizeof(wrong));
	nonce_of(nonce, 60);
	check(wrong, "multi", 0, nonce, now, "ping", &a);
	EQ_INT(a.verdict, AUTH_REFUSED);
	EQ_STR(a.reason, "bad-mac");
	TRUE(a.secret_no == 0 && !a.maced && a.denial);
	auth_finish(&ts->sv, &a, 1);
	/* a revoked one: refused, the others still pass */
	PASS(clients_revoke(ts->sv.clients, ts->s, "multi", nos[3]));
	nonce_of(nonce, 61);
	check(keys[3], "multi", 0, nonce, now, "ping", &a);
	EQ_INT(a.verdict, AUTH_REFUSED);
	EQ_STR(a.reason, "bad-mac");
	EQ_INT(a.tried, CLIENTS_MAX_SECRETS - 1);
	auth_finish(&ts->sv, &a, 1);
	nonce_of(nonce, 62);
	check(keys[4], "multi", 0, nonce, now, "ping", &a);
	EQ_INT(a.verdict, AUTH_PASSED);
	EQ_INT(a.secret_no, nos[4]);
	auth_finish(&ts->sv, &a, 0);
	/* none left: like an unknown secret */
	for (i = 0; i < CLIENTS_MAX_SECRETS; i++) {
		if (i != 3) {
			PASS(clients_revoke(
			    ts->sv.clients, ts->s, "multi", nos[i]));
		}
	}
	nonce_of(nonce, 63);
	check(keys[0], "multi", 0, nonce, now, "ping", &a);
	EQ_INT(a.verdict, AUTH_REFUSED);
	EQ_STR(a.reason, "unknown-secret");
	EQ_INT(reply_status(&a, nonce, now, &maced),
	    HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED);
	TRUE(!maced);
	auth_finish(&ts->sv, &a, 0);
	/* a named request's reply names nothing, as before */
	nonce_of(nonce, 64);
	check(secret, "svc", secret_no, nonce, now, "ping", &a);
	EQ_INT(a.verdict, AUTH_PASSED);
	EQ_INT(reply_secret_of(&a, secret, nonce, now), 0);
	auth_finish(&ts->sv, &a, 0);
}

/* Bytes that are no envelope, and an envelope of the wrong shape. */
static void
test_malformed(void)
{
	static const uint8_t junk[] = { 0xff, 0x01, 0x02 };
	Hsmkey__V1__Envelope e = HSMKEY__V1__ENVELOPE__INIT;
	uint8_t	    nonce[HK_NONCE_LEN] = { 1 }, mac[HK_MAC_LEN] = { 0 };
	uint8_t	   *msg;
	size_t	    len;
	struct auth a;
	int	    maced;

	need_server();
	PASS(auth_check(&ts->sv, ts->s, junk, sizeof(junk), hk_now_ms(), &a));
	EQ_INT(a.verdict, AUTH_REFUSED);
	TRUE(a.env == NULL && !a.audit && a.reply != NULL);
	auth_finish(&ts->sv, &a, 0);
	e.protocol = 2;
	e.client_id = "svc";
	e.nonce.data = nonce;
	e.nonce.len = sizeof(nonce);
	e.mac.data = mac;
	e.mac.len = sizeof(mac);
	PASS(hk_encode(&e.base, &msg, &len));
	PASS(auth_check(&ts->sv, ts->s, msg, len, hk_now_ms(), &a));
	free(msg);
	EQ_INT(a.verdict, AUTH_REFUSED);
	TRUE(a.client == NULL && !a.audit);
	EQ_INT(reply_status(&a, nonce, hk_now_ms(), &maced),
	    hk_status_from_err(HK_ERR_PROTOCOL));
	TRUE(!maced);
	auth_finish(&ts->sv, &a, 0);
}

TEST_LIST = {
	{ "passes_once", test_passes_once },
	{ "refusals", test_refusals },
	{ "older_than_start", test_older_than_start },
	{ "malformed", test_malformed },
	{ "unnamed_secret", test_unnamed_secret },
	{ "close", testserver_test_close },
	{ NULL, NULL },
};

TEST_MAIN
