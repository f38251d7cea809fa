/*
 * envelope_rules.c: the service's envelope rules, driven from outside with
 * hand-made envelopes on a raw nanomsg REQ socket (DESIGN.md "Clients,
 * permissions, replay"; PROTOCOL.md).
 *
 *   envelope_rules CREDFILE URL KEY
 *
 * CREDFILE: an admin credentials file; KEY: an existing key at version 1
 * that this program may rotate.  Checks, each printed as ok/FAIL:
 *   - a valid request is answered OK and the reply's MAC verifies;
 *   - the same bytes again get the same reply (no second execution): a
 *     rotate resent byte for byte rotates once;
 *   - a different request reusing a nonce is REPLAY;
 *   - a bad MAC, an unknown client, a wrong secret number, a timestamp
 *     outside the clock window are UNAUTHENTICATED, and their replies carry
 *     no MAC;
 *   - a request that does not re-encode to the same bytes (unknown field,
 *     duplicate field) under a valid MAC is refused;
 *   - an unknown protocol version and a short nonce are refused;
 *   - a request kind the service does not know (a newer client's) is
 *     UNIMPLEMENTED, MACed; an empty request is INVALID_ARGUMENT;
 *   - after all of it the service still answers.
 * Expected statuses come from hk_status_from_err(), the mapping both ends
 * share.  Exits 0 when every check passed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "hk_err.h"
#include "hsmkey.pb-c.h"
#include "rawproto.h"
#include "wire.h"

static int	      sock = -1;
static struct rp_cred cred;

/* Packs a Request with operation kind set to op. Caller frees *outp. */
static int
request(
    Hsmkey__V1__Request__OpCase kind, void *op, uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request req = HSMKEY__V1__REQUEST__INIT;

	req.op_case = kind;
	switch (kind) {
	case HSMKEY__V1__REQUEST__OP_HEALTH:
		req.health = op;
		break;
	case HSMKEY__V1__REQUEST__OP_LIST:
		req.list = op;
		break;
	case HSMKEY__V1__REQUEST__OP_ROTATE:
		req.rotate = op;
		break;
	case HSMKEY__V1__REQUEST__OP_DESCRIBE:
		req.describe = op;
		break;
	default:
		return -1;
	}
	return rp_pack_request(&req, outp, lenp);
}

/* Fresh options: a new nonce, now, the credential's secret. */
static void
env_defaults(struct rp_env *e)
{
	rp_env_defaults(e, &cred);
}

/* Seals req as e says, sends it, and decodes the reply. */
static int
exchange(const struct rp_env *e, const uint8_t *req, size_t len,
    struct rp_reply *rep)
{
	uint8_t *msg = NULL;
	size_t	 mlen;
	int	 r;

	memset(rep, 0, sizeof(*rep));
	rep->status = -1;
	if (rp_envelope(e, req, len, &msg, &mlen) != 0) {
		return -1;
	}
	r = rp_exchange(sock, msg, mlen, &cred, e->ts, e->nonce, rep);
	free(msg);
	return r;
}

/* One request; returns the reply status or -1. */
static int
simple(const struct rp_env *e, const uint8_t *req, size_t len,
    struct rp_reply *rep)
{
	return exchange(e, req, len, rep) == 0 && rep->decoded ? rep->status
							       : -1;
}

static int
same_reply(const struct rp_reply *a, const struct rp_reply *b)
{
	return a->raw != NULL && b->raw != NULL && a->raw_len == b->raw_len &&
	    memcmp(a->raw, b->raw, a->raw_len) == 0;
}

static const char *
st(int s)
{
	return rp_status_name(s);
}

static uint8_t *health, *list, *rot, *desc;
static size_t	health_len, list_len, rot_len, desc_len;

static const int want_ok = HSMKEY__V1__STATUS__STATUS_OK;

/* A valid request, the same bytes again, and a rotate resent. */
static void
check_resends(void)
{
	const int	want_replay = hk_status_from_err(HK_ERR_REPLAY);
	struct rp_env	e;
	struct rp_reply a, b;
	uint8_t		nonce[HK_NONCE_LEN];
	int		s;

	env_defaults(&e);
	s = simple(&e, health, health_len, &a);
	RP_CHECK(s == want_ok, "valid health request: %s", st(s));
	RP_CHECK(a.mac_ok, "the reply's MAC verifies with the client secret");
	s = simple(&e, health, health_len, &b);
	RP_CHECK(s == want_ok, "the same bytes again: %s (not REPLAY)", st(s));
	RP_CHECK(
	    same_reply(&a, &b), "the same bytes again get the same reply");
	rp_reply_free(&a);
	rp_reply_free(&b);

	/* a different request with a used nonce */
	memcpy(nonce, e.nonce, sizeof(nonce));
	env_defaults(&e);
	memcpy(e.nonce, nonce, sizeof(nonce));
	s = simple(&e, list, list_len, &a);
	RP_CHECK(s == want_replay,
	    "another request reusing a nonce: %s, want %s", st(s),
	    st(want_replay));
	rp_reply_free(&a);

	/* a rotate resent byte for byte rotates once */
	env_defaults(&e);
	s = simple(&e, rot, rot_len, &a);
	RP_CHECK(s == want_ok && a.version == 2, "rotate --expect 1: %s, v%u",
	    st(s), a.version);
	s = simple(&e, rot, rot_len, &b);
	RP_CHECK(s == want_ok && b.version == 2,
	    "the same rotate resent: %s, v%u (the first answer again)", st(s),
	    b.version);
	RP_CHECK(
	    same_reply(&a, &b), "the resent rotate gets the same reply bytes");
	rp_reply_free(&a);
	rp_reply_free(&b);
	env_defaults(&e);
	s = simple(&e, desc, desc_len, &a);
	RP_CHECK(s == want_ok && a.nversions == 2,
	    "after the resent rotate the key has 2 versions (has %zu)",
	    a.nversions);
	rp_reply_free(&a);
}

/* Authentication failures: no MAC on the reply; the clock, MACed. */
static void
check_unauthenticated(void)
{
	const int	want_unauth = hk_status_from_err(HK_ERR_MAC);
	const int	want_clock = hk_status_from_err(HK_ERR_CLOCK);
	struct rp_env	e;
	struct rp_reply a;
	int		s;

	env_defaults(&e);
	e.corrupt_mac = 1;
	s = simple(&e, health, health_len, &a);
	RP_CHECK(
	    s == want_unauth, "bad MAC: %s, want %s", st(s), st(want_unauth));
	RP_CHECK(!a.has_mac, "an unauthenticated reply carries no MAC");
	rp_reply_free(&a);

	env_defaults(&e);
	e.client_id = "nobody-at-all";
	s = simple(&e, health, health_len, &a);
	RP_CHECK(s == want_unauth, "unknown client: %s, want %s", st(s),
	    st(want_unauth));
	rp_reply_free(&a);

	env_defaults(&e);
	e.secret_no = cred.secret_no + 41;
	s = simple(&e, health, health_len, &a);
	RP_CHECK(s == want_unauth, "unknown secret number: %s, want %s", st(s),
	    st(want_unauth));
	rp_reply_free(&a);

	{
		static const int64_t skews[] = { -10 * 60 * 1000,
			10 * 60 * 1000 };
		size_t		     i;

		for (i = 0; i < 2; i++) {
			env_defaults(&e);
			e.ts = (uint64_t)((int64_t)e.ts + skews[i]);
			s = simple(&e, health, health_len, &a);
			RP_CHECK(s == want_clock,
			    "timestamp 10 min %s: %s, want %s",
			    skews[i] < 0 ? "old" : "ahead", st(s),
			    st(want_clock));
			rp_reply_free(&a);
		}
	}
	env_defaults(&e);
	e.ts = 1000;
	s = simple(&e, health, health_len, &a);
	RP_CHECK(s == want_clock, "timestamp in 1970: %s, want %s", st(s),
	    st(want_clock));
	rp_reply_free(&a);
}

/* Sends len bytes of req under a valid MAC; returns the status. */
static int
send_raw(const uint8_t *req, size_t len, struct rp_reply *a)
{
	struct rp_env e;

	env_defaults(&e);
	return simple(&e, req, len, a);
}

/* Request bytes that do not decode strictly, or name no known kind. */
static void
check_request_bytes(void)
{
	const int want_decode = hk_status_from_err(HK_ERR_DECODE);
	const int want_unimpl = hk_status_from_err(HK_ERR_UNSUPPORTED);
	/* field 99 (a request kind this service does not know), empty */
	static const uint8_t newer[] = { 0x9a, 0x06, 0x00 };
	struct rp_reply	     a;
	uint8_t		     odd[256], junk[64];
	int		     s;

	/* an unknown field next to a known request kind */
	memcpy(odd, health, health_len);
	odd[health_len] = 0xf8; /* field 1023, varint */
	odd[health_len + 1] = 0x3f;
	odd[health_len + 2] = 0x01;
	s = send_raw(odd, health_len + 3, &a);
	RP_CHECK(s == want_decode,
	    "unknown field under a valid MAC: %s, want %s", st(s),
	    st(want_decode));
	rp_reply_free(&a);
	/* the health field twice */
	memcpy(odd, health, health_len);
	memcpy(odd + health_len, health, health_len);
	s = send_raw(odd, health_len * 2, &a);
	RP_CHECK(s == want_decode,
	    "duplicate field under a valid MAC: %s, want %s", st(s),
	    st(want_decode));
	rp_reply_free(&a);
	if (RAND_bytes(junk, sizeof(junk)) != 1) {
		abort();
	}
	s = send_raw(junk, sizeof(junk), &a);
	RP_CHECK(s != want_ok && s != -1,
	    "random request bytes under a valid MAC: %s", st(s));
	rp_reply_free(&a);
	s = send_raw(newer, sizeof(newer), &a);
	RP_CHECK(s == want_unimpl && a.mac_ok,
	    "an unknown request kind: %s (%s), want %s, MACed", st(s),
	    a.message, st(want_unimpl));
	rp_reply_free(&a);
	s = send_raw(newer, 0, &a);
	RP_CHECK(s == (int)hk_status_from_err(HK_ERR_INVALID) && a.mac_ok,
	    "an empty request: %s (%s)", st(s), a.message);
	rp_reply_free(&a);
}

/* Protocol version and nonce length. */
static void
check_shape(void)
{
	const int	want_proto = hk_status_from_err(HK_ERR_PROTOCOL);
	const int	want_unauth = hk_status_from_err(HK_ERR_MAC);
	struct rp_env	e;
	struct rp_reply a;
	int		s;

	env_defaults(&e);
	e.protocol = 2;
	s = simple(&e, health, health_len, &a);
	RP_CHECK(s == want_proto || s == want_unauth,
	    "protocol 2: %s, want %s", st(s), st(want_proto));
	rp_reply_free(&a);

	env_defaults(&e);
	e.nonce_len = 8;
	s = simple(&e, health, health_len, &a);
	RP_CHECK(
	    s != want_ok && s != -1, "an 8-byte nonce is refused: %s", st(s));
	rp_reply_free(&a);
}

int
main(int argc, char **argv)
{
	Hsmkey__V1__HealthRequest   h = HSMKEY__V1__HEALTH_REQUEST__INIT;
	Hsmkey__V1__ListRequest	    l = HSMKEY__V1__LIST_REQUEST__INIT;
	Hsmkey__V1__RotateRequest   rr = HSMKEY__V1__ROTATE_REQUEST__INIT;
	Hsmkey__V1__DescribeRequest d = HSMKEY__V1__DESCRIBE_REQUEST__INIT;
	struct rp_env		    e;
	struct rp_reply		    a;
	int			    s;

	if (argc != 4) {
		fprintf(stderr, "usage: envelope_rules CREDFILE URL KEY\n");
		return 2;
	}
	if (rp_cred_load(argv[1], &cred) != 0) {
		fprintf(stderr, "envelope_rules: bad credentials file\n");
		return 2;
	}
	if ((sock = rp_connect(argv[2], 5000, 0)) < 0) {
		fprintf(
		    stderr, "envelope_rules: cannot connect to %s\n", argv[2]);
		return 1;
	}
	rr.name = d.name = argv[3];
	rr.expect = 1;
	if (request(HSMKEY__V1__REQUEST__OP_HEALTH, &h, &health,
		&health_len) != 0 ||
	    request(HSMKEY__V1__REQUEST__OP_LIST, &l, &list, &list_len) != 0 ||
	    request(HSMKEY__V1__REQUEST__OP_ROTATE, &rr, &rot, &rot_len) !=
		0 ||
	    request(HSMKEY__V1__REQUEST__OP_DESCRIBE, &d, &desc, &desc_len) !=
		0 ||
	    health_len > 100) {
		return 1;
	}
	check_resends();
	check_unauthenticated();
	check_request_bytes();
	check_shape();

	/* still serving */
	env_defaults(&e);
	s = simple(&e, health, health_len, &a);
	RP_CHECK(
	    s == want_ok && a.mac_ok, "the service still answers: %s", st(s));
	rp_reply_free(&a);

	free(health);
	free(list);
	free(rot);
	free(desc);
	rp_cred_clear(&cred);
	rp_close(sock);
	return rp_checks_done();
}
