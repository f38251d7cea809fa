/*
 * fuzz_request.c: libFuzzer target for the request pipeline, from the
 * bytes a worker receives to the reply it would send: server_request()
 * (service/server.c), the function every worker runs: auth_check()
 * (envelope decode, client, day, MAC, clock, nonce), the token gate, and
 * for a request that passes dispatch() (request decode, table, name,
 * grant, handler) and reply_seal(), or the refusal's count, against a real
 * SoftHSM token made once in LLVMFuzzerInitialize()
 * (service/testserver.c).  Only the transport and the audit writer are
 * left out.  State carries over from
 * input to input, as in a running service.
 *
 * An input is a mode byte and its rest:
 *
 *   in[0] & 1 == 0   the rest is a request envelope exactly as received
 *                    (its MAC, made with no secret the service knows,
 *                    does not verify: the pre-MAC paths);
 *   in[0] & 1 == 1   in[1] is how to seal, the rest a serialized Request
 *                    that the harness seals as a client would, so that
 *                    the post-MAC decoder, the grants and the handlers
 *                    are fuzzed.  in[1]:
 *                      bits 0-1  client: 0 admin:* and everything,
 *                                1 sign:k1 verify:* pubkey:k*,
 *                                2 pubkey:zz only, 3 an unknown id
 *                      bits 2-3  timestamp: now, 40 s ago, 40 s ahead,
 *                                two days ago
 *                      bit 4     resend: the previous nonce and timestamp
 *                      bit 5     clients 0 and 2: name no secret
 *                                (secret_no 0, the service finds it);
 *                                1 and 3: the next number (unknown)
 *                      bit 6     the Request is preceded by a byte n and n
 *                                bytes, which are appended to the sealed
 *                                envelope (fields the MAC does not cover)
 *                      bit 7     seal with a day key of no client (all
 *                                zero): the MAC check must refuse it
 *
 * Besides the sanitizers, it aborts when a sealed request's reply does
 * not open with the client's day key (or, for an envelope that did not
 * decode, is not an unMACed error), when a reply to a request that
 * passed is not MACed, when a MACed reply names another secret than the
 * one that matched, when a client without admin changed state, or when
 * a raw envelope or one sealed with a wrong key passed the MAC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "clients.h"
#include "dispatch.h"
#include "fuzz_reqs.h"
#include "log.h"
#include "nonce.h"
#include "reply.h"
#include "seal.h"
#include "server.h"
#include "testserver.h"
#include "wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NSLOTS	    3
#define SKEW_MS	    40000ULL
#define DAY_MS	    (24 * 3600 * 1000ULL)
#define SWEEP_EVERY 1024

/* A client of the harness: its grants, and its id and secret now. */
struct slot {
	const char *base;
	const char *grants[5];
	char	    id[HK_CLIENT_ID_MAX + 1];
	unsigned    gen;
	uint8_t	    secret[HK_SECRET_LEN];
	uint32_t    secret_no;
};

static struct slot slots[NSLOTS] = {
	{ .base = "fz-admin",
	    .grants = { "admin:*", "sign:*", "verify:*", "pubkey:*", NULL } },
	{ .base = "fz-signer",
	    .grants = { "sign:k1", "verify:*", "pubkey:k*", NULL } },
	{ .base = "fz-none", .grants = { "pubkey:zz", NULL } },
};

static struct testserver *ts;
static uint64_t		  nonce_counter;
static uint8_t		  last_nonce[HK_NONCE_LEN];
static uint64_t		  last_ts;
static unsigned		  inputs;

/* What one run of the pipeline gave. */
struct ran {
	enum auth_verdict verdict;
	int		  decoded; /* the envelope decoded */
	int		  changed; /* a state change answered OK */
	uint8_t		 *reply;
	size_t		  len;
};

/* (Re)makes slot sl's client, under a new id when the old one lost its
 * secret to a revoke or rotate the fuzzer sent. */
static void
slot_make(struct slot *sl)
{
	if (sl->gen == 0) {
		snprintf(sl->id, sizeof(sl->id), "%s", sl->base);
	} else {
		snprintf(sl->id, sizeof(sl->id), "%s.%u", sl->base, sl->gen);
	}
	sl->gen++;
	testserver_client(ts, sl->id, sl->grants, sl->secret, &sl->secret_no);
}

/* Remakes every slot whose secret is no longer live. */
static void
slots_check(uint64_t now)
{
	struct client *cl;
	token_obj_t    key;
	const char    *why;
	size_t	       i;

	for (i = 0; i < NSLOTS; i++) {
		if (clients_secret(ts->sv.clients, slots[i].id,
			slots[i].secret_no, now, &cl, &key, &why) != 0) {
			slot_make(&slots[i]);
		}
	}
}

/* server_request(), the workers' own pipeline, then the replay cache and
 * auth_finish() as reply_deliver() and serve() do with no audit log.
 * r->reply is the caller's to free. */
static void
pipeline(const uint8_t *msg, size_t len, uint64_t now, struct ran *r)
{
	struct auth    a;
	struct outcome o;

	memset(r, 0, sizeof(*r));
	server_request(&ts->sv, ts->s, msg, len, now, &a, &o);
	r->verdict = a.verdict;
	r->decoded = a.env != NULL;
	r->changed = o.failure == REPLY_FAIL_CHANGE;
	r->reply = o.reply;
	r->len = o.len;
	if (a.cached != NULL) {
		nonce_cache_finish(ts->sv.nonces, a.cached, r->reply, r->len);
		a.cached = NULL;
	}
	auth_finish(&ts->sv, &a, o.denial);
}

/* Aborts with why. */
static void
broken(const char *why)
{
	fprintf(stderr, "fuzz_request: %s\n", why);
	abort();
}

/* The reply to an envelope that did not decode answers no nonce and
 * carries no MAC: it must still be a ResponseEnvelope with a Response. */
static void
check_undecoded(const struct ran *r)
{
	Hsmkey__V1__ResponseEnvelope *re;
	Hsmkey__V1__Response	     *resp = NULL;

	if ((re = hsmkey__v1__response_envelope__unpack(
		 NULL, r->len, r->reply)) == NULL ||
	    re->mac.len != 0 ||
	    (resp = hsmkey__v1__response__unpack(
		 NULL, re->response.len, re->response.data)) == NULL ||
	    resp->status == HSMKEY__V1__STATUS__STATUS_OK) {
		broken("bad reply to an envelope that does not decode");
	}
	hsmkey__v1__response__free_unpacked(resp, NULL);
	hsmkey__v1__response_envelope__free_unpacked(re, NULL);
}

/* The checks on the reply to a sealed request (see the top). */
static void
check_reply(const struct ran *r, const uint8_t dk[HK_MAC_LEN],
    const uint8_t nonce[HK_NONCE_LEN], int slot, uint32_t want_no)
{
	struct hk_opened_reply o;
	Hsmkey__V1__Response  *resp = NULL;
	const char	      *why;

	if (r->verdict == AUTH_IN_FLIGHT) {
		return; /* nothing is in flight between inputs */
	}
	if (r->reply == NULL) {
		broken("no reply");
	}
	if (!r->decoded) {
		check_undecoded(r);
		return;
	}
	if (hk_open_response(dk, nonce, r->reply, r->len, &o, &why) != 0 ||
	    (resp = hsmkey__v1__response__unpack(NULL, o.resp_len, o.resp)) ==
		NULL) {
		broken("the reply does not open with the client's day key");
	}
	if (r->verdict == AUTH_PASSED && !o.maced) {
		broken("the reply to an authenticated request has no MAC");
	}
	if (o.maced && o.secret_no != want_no) {
		broken("the reply names another secret than the one that "
		       "matched");
	}
	if (r->changed && slot != 0) {
		broken("a client without admin:* changed state");
	}
	hsmkey__v1__response__free_unpacked(resp, NULL);
	hk_opened_reply_free(&o);
}

/* The envelope msg (*lenp bytes) with tail (tlen bytes) appended. */
static uint8_t *
append(uint8_t *msg, size_t *lenp, const uint8_t *tail, size_t tlen)
{
	uint8_t *m;

	if ((m = realloc(msg, *lenp + tlen)) == NULL) {
		broken("out of memory");
	}
	memcpy(m + *lenp, tail, tlen);
	*lenp += tlen;
	return m;
}

/* Seals req (len bytes) as in[1] says (see the top) and runs it. */
static void
run_sealed(uint8_t how, const uint8_t *req, size_t len, uint64_t now)
{
	static const uint64_t  skew[4] = { 0, -SKEW_MS, SKEW_MS, -2 * DAY_MS };
	struct slot	      *sl = &slots[(how & 3) == 3 ? 0 : how & 3];
	struct hk_request_head h;
	struct ran	       r;
	uint8_t		       dk[HK_MAC_LEN], *msg = NULL;
	const uint8_t	      *tail = NULL;
	size_t		       mlen = 0, tlen = 0;

	if (how & 0x40) {
		if (len < 1) {
			return;
		}
		tlen = req[0] < len - 1 ? req[0] : len - 1;
		tail = req + 1;
		req += 1 + tlen;
		len -= 1 + tlen;
	}
	if (!(how & 0x10)) {
		nonce_counter++;
		memset(last_nonce, 0xf2, sizeof(last_nonce));
		memcpy(last_nonce, &nonce_counter, sizeof(nonce_counter));
		last_ts = now + skew[(how >> 2) & 3];
	}
	h.client_id = (how & 3) == 3 ? "fz-nobody" : sl->id;
	h.secret_no = !(how & 0x20) ? sl->secret_no
	    : (how & 1)		    ? sl->secret_no + 1
				    : 0;
	h.nonce = last_nonce;
	h.timestamp_ms = last_ts;
	if (hk_day_key(sl->secret, HK_SECRET_LEN, hk_mac_day(last_ts), dk) !=
	    0) {
		broken("cannot make the day key");
	}
	if (how & 0x80) {
		memset(dk, 0, sizeof(dk)); /* no client's key */
	}
	if (hk_seal_request(dk, &h, req, len, &msg, &mlen) != 0) {
		broken("cannot seal");
	}
	if (tlen > 0) {
		msg = append(msg, &mlen, tail, tlen);
	}
	pipeline(msg, mlen, now, &r);
	if ((how & 0x80) &&
	    (r.verdict == AUTH_PASSED || r.verdict == AUTH_ANSWERED)) {
		broken("a request sealed with no client's key passed the MAC");
	}
	check_reply(
	    &r, dk, last_nonce, how & 3, h.secret_no == 0 ? sl->secret_no : 0);
	free(msg);
	free(r.reply);
	OPENSSL_cleanse(dk, sizeof(dk));
}

/* Makes key name with alg through the pipeline, as the admin client. */
static void
init_key(const char *name, Hsmkey__V1__Algorithm alg)
{
	uint8_t *req;
	size_t	 len;

	if (fuzz_req_create(name, alg, &req, &len) != 0) {
		broken("cannot pack a create");
	}
	run_sealed(0, req, len, hk_now_ms());
	free(req);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const victim[] = { "sign:*", NULL };
	uint8_t			 secret[HK_SECRET_LEN];
	uint32_t		 no;
	size_t			 i;

	(void)argc;
	(void)argv;
	hk_log_set_level(-1); /* a line per refusal: nothing */
	ts = testserver_get();
	for (i = 0; i < NSLOTS; i++) {
		slot_make(&slots[i]);
	}
	testserver_client(ts, "victim", victim, secret, &no);
	OPENSSL_cleanse(secret, sizeof(secret));
	init_key("k1", HSMKEY__V1__ALGORITHM__ALG_ECDSA_P256);
	init_key("k2", HSMKEY__V1__ALGORITHM__ALG_ED25519);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ran r;
	uint64_t   now = hk_now_ms();

	if (size < 1) {
		return 0;
	}
	if (data[0] & 1) {
		if (size < 2) {
			return 0;
		}
		run_sealed(data[1], data + 2, size - 2, now);
	} else {
		pipeline(data + 1, size - 1, now, &r);
		free(r.reply);
		/* no secret the service holds made its MAC */
		if (r.verdict == AUTH_PASSED || r.verdict == AUTH_ANSWERED) {
			broken("an envelope no client sealed passed the MAC");
		}
	}
	slots_check(now);
	if (++inputs % SWEEP_EVERY == 0) {
		nonce_cache_sweep(ts->sv.nonces, now);
	}
	return 0;
}
