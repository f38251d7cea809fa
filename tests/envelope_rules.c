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
 *   - after all of it the service still answers.
 * Expected statuses come from hk_status_from_err(), the mapping both ends
 * share.  Exits 0 when every check passed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <openssl/rand.h>

#include "buf.h"
#include "codec.h"
#include "envelope.h"
#include "hk_err.h"
#include "hsmkey.pb-c.h"
#include "wire.h"

static int	npass, nfail;
static int	sock = -1;
static char	client_id[HK_CLIENT_ID_MAX + 1];
static uint32_t secret_no = 1;
static uint8_t *secret;
static size_t	secret_len;

#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (cond) {                                           \
			npass++;                                      \
			printf("ok - ");                              \
		} else {                                              \
			nfail++;                                      \
			printf("FAIL - %s:%d: ", __FILE__, __LINE__); \
		}                                                     \
		printf(__VA_ARGS__);                                  \
		printf("\n");                                         \
	} while (0)

struct reply {
	int	 ok;	 /* a reply came and decoded */
	int	 mac_ok; /* its MAC verified (0 if absent or bad) */
	int	 has_mac;
	int	 status;
	uint8_t *raw; /* the ResponseEnvelope bytes */
	size_t	 raw_len;
	uint8_t *resp; /* the Response bytes */
	size_t	 resp_len;
	uint32_t version;   /* KeyResponse.version, when present */
	size_t	 nversions; /* KeyResponse.key->n_versions */
};

static void
reply_free(struct reply *r)
{
	free(r->raw);
	free(r->resp);
	memset(r, 0, sizeof(*r));
}

/* Reads id, secret and secret_no from an INI credentials file. */
static int
read_credentials(const char *path)
{
	char	      line[1024], *k, *v, *e;
	FILE	     *f;
	unsigned long n;
	int	      r = -1;

	if ((f = fopen(path, "r")) == NULL) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if ((v = strchr(line, '=')) == NULL) {
			continue;
		}
		*v++ = '\0';
		k = line;
		while (*k == ' ' || *k == '\t') {
			k++;
		}
		for (e = k + strlen(k);
		     e > k && (e[-1] == ' ' || e[-1] == '\t');)
			*--e = '\0';
		while (*v == ' ' || *v == '\t') {
			v++;
		}
		for (e = v + strlen(v);
		     e > v && (e[-1] == ' ' || e[-1] == '\t');)
			*--e = '\0';
		if (strcmp(k, "id") == 0) {
			if (strlen(v) > HK_CLIENT_ID_MAX) {
				goto out;
			}
			memcpy(client_id, v, strlen(v) + 1);
		} else if (strcmp(k, "secret") == 0) {
			if (hk_base64_decode(v, &secret, &secret_len) != 0) {
				goto out;
			}
		} else if (strcmp(k, "secret_no") == 0) {
			errno = 0;
			n = strtoul(v, &e, 10);
			if (errno != 0 || *e != '\0' || n > UINT32_MAX) {
				goto out;
			}
			secret_no = (uint32_t)n;
		}
	}
	r = (client_id[0] != '\0' && secret != NULL) ? 0 : -1;
out:
	explicit_bzero(line, sizeof(line));
	fclose(f);
	return r;
}

/* Packs a Request. Caller must free *outp. */
static int
pack_request(const Hsmkey__V1__Request *req, uint8_t **outp, size_t *lenp)
{
	size_t n = hsmkey__v1__request__get_packed_size(req);

	if ((*outp = malloc(n == 0 ? 1 : n)) == NULL) {
		return -1;
	}
	*lenp = hsmkey__v1__request__pack(req, *outp);
	return 0;
}

static int
health_request(uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__HealthRequest h = HSMKEY__V1__HEALTH_REQUEST__INIT;

	req.op_case = HSMKEY__V1__REQUEST__OP_HEALTH;
	req.health = &h;
	return pack_request(&req, outp, lenp);
}

static int
list_request(uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request	req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__ListRequest l = HSMKEY__V1__LIST_REQUEST__INIT;

	req.op_case = HSMKEY__V1__REQUEST__OP_LIST;
	req.list = &l;
	return pack_request(&req, outp, lenp);
}

static int
rotate_request(const char *key, uint32_t expect, uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__RotateRequest rr = HSMKEY__V1__ROTATE_REQUEST__INIT;

	rr.name = (char *)key;
	rr.expect = expect;
	req.op_case = HSMKEY__V1__REQUEST__OP_ROTATE;
	req.rotate = &rr;
	return pack_request(&req, outp, lenp);
}

static int
describe_request(const char *key, uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request	    req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__DescribeRequest d = HSMKEY__V1__DESCRIBE_REQUEST__INIT;

	d.name = (char *)key;
	req.op_case = HSMKEY__V1__REQUEST__OP_DESCRIBE;
	req.describe = &d;
	return pack_request(&req, outp, lenp);
}

struct env_opts {
	uint32_t       protocol;
	const char    *client_id;
	uint32_t       secret_no;
	const uint8_t *nonce;
	size_t	       nonce_len;
	uint64_t       ts;
	int	       corrupt_mac;
	const uint8_t *mac_key; /* NULL: the real secret */
	size_t	       mac_key_len;
};

static void
env_defaults(struct env_opts *o, const uint8_t *nonce)
{
	memset(o, 0, sizeof(*o));
	o->protocol = HK_PROTOCOL_VERSION;
	o->client_id = client_id;
	o->secret_no = secret_no;
	o->nonce = nonce;
	o->nonce_len = HK_NONCE_LEN;
	o->ts = hk_now_ms();
}

/* Builds and packs an Envelope around req. Caller must free *outp. */
static int
make_envelope(const struct env_opts *o, const uint8_t *req, size_t req_len,
    uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Envelope env = HSMKEY__V1__ENVELOPE__INIT;
	struct hk_buf	    *b = NULL;
	uint8_t		     mac[HK_MAC_LEN];
	const uint8_t	    *key = o->mac_key != NULL ? o->mac_key : secret;
	size_t keylen = o->mac_key != NULL ? o->mac_key_len : secret_len;
	size_t n;
	int    r = -1;

	uint8_t daykey[HK_MAC_LEN];

	/* MACs are made with the day key of the timestamp (PROTOCOL.md) */
	if ((b = hk_buf_new((2 * HK_MAX_MESSAGE))) == NULL ||
	    hk_day_key(key, keylen, hk_mac_day(o->ts), daykey) != 0 ||
	    hk_mac_input_request(b, o->protocol, o->client_id, o->secret_no,
		o->nonce, o->nonce_len, o->ts, req, req_len) != 0 ||
	    hk_hmac_sha256(daykey, sizeof(daykey), hk_buf_ptr(b),
		hk_buf_len(b), mac) != 0) {
		goto out;
	}
	if (o->corrupt_mac) {
		mac[7] ^= 0x40;
	}
	env.protocol = o->protocol;
	env.client_id = (char *)o->client_id;
	env.secret_no = o->secret_no;
	env.nonce.data = (uint8_t *)o->nonce;
	env.nonce.len = o->nonce_len;
	env.timestamp_ms = o->ts;
	env.request.data = (uint8_t *)req;
	env.request.len = req_len;
	env.mac.data = mac;
	env.mac.len = sizeof(mac);
	n = hsmkey__v1__envelope__get_packed_size(&env);
	if ((*outp = malloc(n)) == NULL) {
		goto out;
	}
	*lenp = hsmkey__v1__envelope__pack(&env, *outp);
	r = 0;
out:
	hk_buf_free(b);
	return r;
}

/* Sends bytes, waits for one reply, decodes and checks it. */
static int
exchange(
    const uint8_t *msg, size_t len, const uint8_t *nonce, struct reply *rep)
{
	Hsmkey__V1__ResponseEnvelope *env = NULL;
	Hsmkey__V1__Response	     *resp = NULL;
	struct hk_buf		     *b = NULL;
	uint8_t			      mac[HK_MAC_LEN];
	void			     *buf = NULL;
	int			      n, i;

	memset(rep, 0, sizeof(*rep));
	if (nn_send(sock, msg, len, 0) < 0) {
		fprintf(stderr, "nn_send: %s\n", nn_strerror(nn_errno()));
		return -1;
	}
	if ((n = nn_recv(sock, &buf, NN_MSG, 0)) < 0) {
		fprintf(stderr, "nn_recv: %s\n", nn_strerror(nn_errno()));
		return -1;
	}
	if ((rep->raw = malloc((size_t)n + 1)) == NULL) {
		nn_freemsg(buf);
		return -1;
	}
	memcpy(rep->raw, buf, (size_t)n);
	rep->raw_len = (size_t)n;
	nn_freemsg(buf);

	env = hsmkey__v1__response_envelope__unpack(
	    NULL, rep->raw_len, rep->raw);
	if (env == NULL) {
		return 0;
	}
	rep->has_mac = env->mac.len != 0;
	/* the reply is MACed with the day key of the request's timestamp,
	 * which these tests set within a minute of now */
	for (i = -1; i <= 1 && !rep->mac_ok; i++) {
		uint8_t daykey[HK_MAC_LEN];

		hk_buf_free(b);
		b = NULL;
		if (rep->has_mac && env->mac.len == HK_MAC_LEN &&
		    hk_day_key(secret, secret_len,
			hk_mac_day(hk_now_ms() + (uint64_t)(i * 60000)),
			daykey) == 0 &&
		    (b = hk_buf_new((2 * HK_MAX_MESSAGE))) != NULL &&
		    hk_mac_input_response(b, env->protocol, env->nonce.data,
			env->nonce.len, env->response.data,
			env->response.len) == 0 &&
		    hk_hmac_sha256(daykey, sizeof(daykey), hk_buf_ptr(b),
			hk_buf_len(b), mac) == 0 &&
		    hk_mac_cmp(mac, env->mac.data, HK_MAC_LEN) == 0 &&
		    env->nonce.len == HK_NONCE_LEN &&
		    memcmp(env->nonce.data, nonce, HK_NONCE_LEN) == 0) {
			rep->mac_ok = 1;
		}
	}
	hk_buf_free(b);
	resp = hsmkey__v1__response__unpack(
	    NULL, env->response.len, env->response.data);
	if (resp != NULL) {
		rep->ok = 1;
		rep->status = resp->status;
		if ((rep->resp = malloc(env->response.len + 1)) != NULL) {
			memcpy(
			    rep->resp, env->response.data, env->response.len);
			rep->resp_len = env->response.len;
		}
		if (resp->result_case == HSMKEY__V1__RESPONSE__RESULT_KEY &&
		    resp->key != NULL) {
			rep->version = resp->key->version;
			if (resp->key->key != NULL) {
				rep->nversions = resp->key->key->n_versions;
			}
		}
		hsmkey__v1__response__free_unpacked(resp, NULL);
	}
	hsmkey__v1__response_envelope__free_unpacked(env, NULL);
	return 0;
}

static void
new_nonce(uint8_t nonce[HK_NONCE_LEN])
{
	if (RAND_bytes(nonce, HK_NONCE_LEN) != 1) {
		abort();
	}
}

/* One request with default options; returns the reply status or -1. */
static int
simple(
    const uint8_t *req, size_t req_len, struct env_opts *o, struct reply *rep)
{
	uint8_t *msg = NULL;
	size_t	 len;
	int	 r;

	if (make_envelope(o, req, req_len, &msg, &len) != 0) {
		return -1;
	}
	r = exchange(msg, len, o->nonce, rep);
	free(msg);
	return r == 0 && rep->ok ? rep->status : -1;
}

static const char *
st(int s)
{
	return s < 0 ? "(no reply)" : hk_status_name((hk_status)s);
}

int
main(int argc, char **argv)
{
	uint8_t		nonce[HK_NONCE_LEN], nonce2[HK_NONCE_LEN];
	uint8_t	       *health = NULL, *list = NULL, *rot = NULL, *desc = NULL;
	uint8_t	       *msg = NULL, *odd = NULL;
	size_t		health_len, list_len, rot_len, desc_len, len, odd_len;
	struct env_opts o;
	struct reply	a, b;
	const char     *key;
	int		s, timeout = 5000;
	const int	want_ok = HSMKEY__V1__STATUS__STATUS_OK;
	const int	want_unauth = hk_status_from_err(HK_ERR_MAC);
	const int	want_clock = hk_status_from_err(HK_ERR_CLOCK);
	const int	want_replay = hk_status_from_err(HK_ERR_REPLAY);
	const int	want_decode = hk_status_from_err(HK_ERR_DECODE);
	const int	want_proto = hk_status_from_err(HK_ERR_PROTOCOL);

	if (argc != 4) {
		fprintf(stderr, "usage: envelope_rules CREDFILE URL KEY\n");
		return 2;
	}
	key = argv[3];
	if (read_credentials(argv[1]) != 0) {
		fprintf(stderr, "envelope_rules: bad credentials file\n");
		return 2;
	}
	if ((sock = nn_socket(AF_SP, NN_REQ)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout,
		sizeof(timeout)) < 0 ||
	    nn_setsockopt(sock, NN_SOL_SOCKET, NN_SNDTIMEO, &timeout,
		sizeof(timeout)) < 0 ||
	    nn_connect(sock, argv[2]) < 0) {
		fprintf(stderr, "nanomsg: %s\n", nn_strerror(nn_errno()));
		return 1;
	}
	if (health_request(&health, &health_len) != 0 ||
	    list_request(&list, &list_len) != 0 ||
	    rotate_request(key, 1, &rot, &rot_len) != 0 ||
	    describe_request(key, &desc, &desc_len) != 0) {
		return 1;
	}

	/* A valid request, then the same bytes again. */
	new_nonce(nonce);
	env_defaults(&o, nonce);
	if (make_envelope(&o, health, health_len, &msg, &len) != 0) {
		return 1;
	}
	s = exchange(msg, len, nonce, &a) == 0 && a.ok ? a.status : -1;
	CHECK(s == want_ok, "valid health request: %s", st(s));
	CHECK(a.mac_ok, "the reply's MAC verifies with the client secret");
	s = exchange(msg, len, nonce, &b) == 0 && b.ok ? b.status : -1;
	CHECK(s == want_ok, "the same bytes again: %s (not REPLAY)", st(s));
	CHECK(a.resp_len == b.resp_len && a.resp != NULL && b.resp != NULL &&
		memcmp(a.resp, b.resp, a.resp_len) == 0,
	    "the same bytes again get the same reply");
	reply_free(&a);
	reply_free(&b);

	/* A different request with a used nonce. */
	env_defaults(&o, nonce);
	s = simple(list, list_len, &o, &a);
	CHECK(s == want_replay, "another request reusing a nonce: %s, want %s",
	    st(s), st(want_replay));
	reply_free(&a);
	free(msg);
	msg = NULL;

	/* A rotate resent byte for byte rotates once. */
	new_nonce(nonce);
	env_defaults(&o, nonce);
	if (make_envelope(&o, rot, rot_len, &msg, &len) != 0) {
		return 1;
	}
	s = exchange(msg, len, nonce, &a) == 0 && a.ok ? a.status : -1;
	CHECK(s == want_ok && a.version == 2, "rotate --expect 1: %s, v%u",
	    st(s), a.version);
	s = exchange(msg, len, nonce, &b) == 0 && b.ok ? b.status : -1;
	CHECK(s == want_ok && b.version == 2,
	    "the same rotate resent: %s, v%u (the first answer again)", st(s),
	    b.version);
	CHECK(a.resp_len == b.resp_len && a.resp != NULL && b.resp != NULL &&
		memcmp(a.resp, b.resp, a.resp_len) == 0,
	    "the resent rotate gets the same reply bytes");
	reply_free(&a);
	reply_free(&b);
	free(msg);
	msg = NULL;
	new_nonce(nonce2);
	env_defaults(&o, nonce2);
	s = simple(desc, desc_len, &o, &a);
	CHECK(s == want_ok && a.nversions == 2,
	    "after the resent rotate the key has 2 versions (has %zu)",
	    a.nversions);
	reply_free(&a);

	/* Authentication failures: no MAC on the reply. */
	new_nonce(nonce);
	env_defaults(&o, nonce);
	o.corrupt_mac = 1;
	s = simple(health, health_len, &o, &a);
	CHECK(
	    s == want_unauth, "bad MAC: %s, want %s", st(s), st(want_unauth));
	CHECK(!a.has_mac, "an unauthenticated reply carries no MAC");
	reply_free(&a);

	new_nonce(nonce);
	env_defaults(&o, nonce);
	o.client_id = "nobody-at-all";
	s = simple(health, health_len, &o, &a);
	CHECK(s == want_unauth, "unknown client: %s, want %s", st(s),
	    st(want_unauth));
	reply_free(&a);

	new_nonce(nonce);
	env_defaults(&o, nonce);
	o.secret_no = secret_no + 41;
	s = simple(health, health_len, &o, &a);
	CHECK(s == want_unauth, "unknown secret number: %s, want %s", st(s),
	    st(want_unauth));
	reply_free(&a);

	new_nonce(nonce);
	env_defaults(&o, nonce);
	o.ts -= 10 * 60 * 1000;
	s = simple(health, health_len, &o, &a);
	CHECK(s == want_clock, "timestamp 10 min old: %s, want %s", st(s),
	    st(want_clock));
	reply_free(&a);

	new_nonce(nonce);
	env_defaults(&o, nonce);
	o.ts += 10 * 60 * 1000;
	s = simple(health, health_len, &o, &a);
	CHECK(s == want_clock, "timestamp 10 min ahead: %s, want %s", st(s),
	    st(want_clock));
	reply_free(&a);

	new_nonce(nonce);
	env_defaults(&o, nonce);
	o.ts = 1000;
	s = simple(health, health_len, &o, &a);
	CHECK(s == want_clock, "timestamp in 1970: %s, want %s", st(s),
	    st(want_clock));
	reply_free(&a);

	/* Non-canonical request bytes under a valid MAC. */
	odd_len = health_len + 3;
	if ((odd = malloc(odd_len)) == NULL) {
		return 1;
	}
	memcpy(odd, health, health_len);
	odd[health_len] = 0xf8; /* field 1023, varint */
	odd[health_len + 1] = 0x3f;
	odd[health_len + 2] = 0x01;
	new_nonce(nonce);
	env_defaults(&o, nonce);
	s = simple(odd, odd_len, &o, &a);
	CHECK(s == want_decode, "unknown field under a valid MAC: %s, want %s",
	    st(s), st(want_decode));
	reply_free(&a);
	free(odd);
	/* The health field twice. */
	odd_len = health_len * 2;
	if ((odd = malloc(odd_len)) == NULL) {
		return 1;
	}
	memcpy(odd, health, health_len);
	memcpy(odd + health_len, health, health_len);
	new_nonce(nonce);
	env_defaults(&o, nonce);
	s = simple(odd, odd_len, &o, &a);
	CHECK(s == want_decode,
	    "duplicate field under a valid MAC: %s, want %s", st(s),
	    st(want_decode));
	reply_free(&a);
	free(odd);

	/* Garbage request bytes under a valid MAC. */
	{
		uint8_t junk[64];

		if (RAND_bytes(junk, sizeof(junk)) != 1) {
			abort();
		}
		new_nonce(nonce);
		env_defaults(&o, nonce);
		s = simple(junk, sizeof(junk), &o, &a);
		CHECK(s != want_ok && s != -1,
		    "random request bytes under a valid MAC: %s", st(s));
		reply_free(&a);
	}

	/* Protocol version and nonce length. */
	new_nonce(nonce);
	env_defaults(&o, nonce);
	o.protocol = 2;
	s = simple(health, health_len, &o, &a);
	CHECK(s == want_proto || s == want_unauth, "protocol 2: %s, want %s",
	    st(s), st(want_proto));
	reply_free(&a);

	new_nonce(nonce);
	env_defaults(&o, nonce);
	o.nonce_len = 8;
	s = simple(health, health_len, &o, &a);
	CHECK(
	    s != want_ok && s != -1, "an 8-byte nonce is refused: %s", st(s));
	reply_free(&a);

	/* Still serving. */
	new_nonce(nonce);
	env_defaults(&o, nonce);
	s = simple(health, health_len, &o, &a);
	CHECK(
	    s == want_ok && a.mac_ok, "the service still answers: %s", st(s));
	reply_free(&a);

	free(health);
	free(list);
	free(rot);
	free(desc);
	if (secret != NULL) {
		explicit_bzero(secret, secret_len);
		free(secret);
	}
	nn_close(sock);
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail == 0 ? 0 : 1;
}
