/*
 * auth_rules.c: replay, clock and integrity rules of issue 3, driven on the
 * wire with hand-made envelopes (tests/rawproto.h).
 *
 *   auth_rules replay CREDFILE URL KEY     a captured rotate sent again
 *   auth_rules late CREDFILE URL KEY MS    ... again after MS ms (> window)
 *   auth_rules clock CREDFILE URL WINDOW_MS  timestamps 1 s inside and
 *                                            outside the window, and
 *                                            before the service's start
 *   auth_rules bitflip CREDFILE URL KEY    every bit of a rotate flipped
 *
 * KEY is an existing key this program may rotate.  Each check prints
 * ok/FAIL; the last line is "N passed, N failed"; exit 0 when all passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "hk_err.h"
#include "hsmkey.pb-c.h"
#include "rawproto.h"
#include "wire.h"

static int	      sock = -1;
static struct rp_cred cred;
static const char    *url;

#define OK     HSMKEY__V1__STATUS__STATUS_OK
#define UNAUTH HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED
#define REPLAY HSMKEY__V1__STATUS__STATUS_REPLAY

static void
die(const char *what)
{
	fprintf(stderr, "auth_rules: %s\n", what);
	exit(2);
}

static void
rotate_req(const char *key, uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__RotateRequest rr = HSMKEY__V1__ROTATE_REQUEST__INIT;

	rr.name = (char *)key;
	req.op_case = HSMKEY__V1__REQUEST__OP_ROTATE;
	req.rotate = &rr;
	if (rp_pack_request(&req, outp, lenp) != 0) {
		die("out of memory");
	}
}

static void
health_req(uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__HealthRequest h = HSMKEY__V1__HEALTH_REQUEST__INIT;

	req.op_case = HSMKEY__V1__REQUEST__OP_HEALTH;
	req.health = &h;
	if (rp_pack_request(&req, outp, lenp) != 0) {
		die("out of memory");
	}
}

/* Sends one envelope built from e around req; fills *rep. */
static void
send_env(const struct rp_env *e, const uint8_t *req, size_t len,
    struct rp_reply *rep)
{
	uint8_t *msg;
	size_t	 mlen;

	if (rp_envelope(e, req, len, &msg, &mlen) != 0) {
		die("cannot build an envelope");
	}
	if (rp_exchange(sock, msg, mlen, &cred, e->ts, e->nonce, rep) != 0) {
		die("send failed");
	}
	free(msg);
}

/* The number of versions of key (describe), or -1. */
static int
versions(const char *key)
{
	Hsmkey__V1__Request	    req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__DescribeRequest d = HSMKEY__V1__DESCRIBE_REQUEST__INIT;
	struct rp_env		    e;
	struct rp_reply		    rep;
	uint8_t			   *b;
	size_t			    len;
	int			    n;

	d.name = (char *)key;
	req.op_case = HSMKEY__V1__REQUEST__OP_DESCRIBE;
	req.describe = &d;
	if (rp_pack_request(&req, &b, &len) != 0) {
		die("out of memory");
	}
	rp_env_defaults(&e, &cred);
	send_env(&e, b, len, &rep);
	free(b);
	n = rep.status == OK && rep.mac_ok ? (int)rep.nversions : -1;
	rp_reply_free(&rep);
	return n;
}

/* A rotate captured on the wire and sent again byte for byte. */
static void
mode_replay(const char *key)
{
	struct rp_env	e;
	struct rp_reply a, b, c;
	uint8_t	       *req, *msg, *hreq;
	size_t		len, mlen, hlen;
	int		v0, i;

	v0 = versions(key);
	RP_CHECK(v0 >= 1, "key %s has %d versions", key, v0);
	rotate_req(key, &req, &len);
	rp_env_defaults(&e, &cred);
	if (rp_envelope(&e, req, len, &msg, &mlen) != 0) {
		die("cannot build an envelope");
	}
	rp_exchange(sock, msg, mlen, &cred, e.ts, e.nonce, &a);
	RP_CHECK(a.status == OK && a.mac_ok && a.version == (uint32_t)v0 + 1,
	    "rotate: %s, v%u, reply MAC %s", rp_status_name(a.status),
	    a.version, a.mac_ok ? "verifies" : "BAD");
	for (i = 0; i < 3; i++) {
		rp_exchange(sock, msg, mlen, &cred, e.ts, e.nonce, &b);
		RP_CHECK(b.got && b.raw_len == a.raw_len &&
			memcmp(a.raw, b.raw, a.raw_len) == 0,
		    "replay %d of the captured rotate: the first reply again, "
		    "byte for byte (%s, v%u)",
		    i + 1, rp_status_name(b.status), b.version);
		rp_reply_free(&b);
	}
	RP_CHECK(versions(key) == v0 + 1,
	    "the replays created no version "
	    "(%d versions)",
	    versions(key));

	/* a new request reusing the nonce: REPLAY, and nothing runs */
	health_req(&hreq, &hlen);
	e.ts = hk_now_ms();
	send_env(&e, hreq, hlen, &c);
	RP_CHECK(c.status == REPLAY && c.mac_ok,
	    "a health request reusing the "
	    "rotate's nonce: %s (%s)",
	    rp_status_name(c.status), c.message);
	rp_reply_free(&c);
	send_env(&e, req, len, &c); /* the same rotate, a new timestamp */
	RP_CHECK(c.status == REPLAY,
	    "the same rotate with a new timestamp and "
	    "the used nonce: %s",
	    rp_status_name(c.status));
	rp_reply_free(&c);
	RP_CHECK(versions(key) == v0 + 1, "still %d versions", v0 + 1);
	rp_reply_free(&a);
	free(msg);
	free(req);
	free(hreq);
}

/* The captured rotate again after the clock window has passed. */
static void
mode_late(const char *key, long wait_ms)
{
	struct rp_env	e;
	struct rp_reply a, b;
	uint8_t	       *req, *msg;
	size_t		len, mlen;
	int		v0, i;

	v0 = versions(key);
	rotate_req(key, &req, &len);
	rp_env_defaults(&e, &cred);
	if (rp_envelope(&e, req, len, &msg, &mlen) != 0) {
		die("cannot build an envelope");
	}
	rp_exchange(sock, msg, mlen, &cred, e.ts, e.nonce, &a);
	RP_CHECK(a.status == OK && a.version == (uint32_t)v0 + 1,
	    "rotate: %s, v%u", rp_status_name(a.status), a.version);
	/* once past the window (the reply is still cached), once past
	 * twice the window (the cache entry is gone) */
	for (i = 1; i <= 2; i++) {
		usleep((useconds_t)wait_ms * 1000);
		rp_exchange(sock, msg, mlen, &cred, e.ts, e.nonce, &b);
		RP_CHECK(b.status == UNAUTH || b.status == REPLAY,
		    "the captured rotate %ld ms later: %s (%s)", i * wait_ms,
		    rp_status_name(b.status), b.message);
		RP_CHECK(versions(key) == v0 + 1, "no version made (%d)",
		    versions(key));
		rp_reply_free(&b);
	}
	rp_reply_free(&a);
	free(msg);
	free(req);
}

/*
 * Timestamps one second inside the window pass, one second (and half a
 * second) outside fail; a timestamp inside the window but older than the
 * service's start fails too (the nonce cache is not persisted).
 */
static void
mode_clock(long window_ms)
{
	const long	offs[] = { -(window_ms + 1000), window_ms + 1000,
		     -(window_ms + 500), window_ms + 500, -(window_ms - 1000),
		     window_ms - 1000 };
	struct rp_env	e;
	struct rp_reply r;
	uint8_t	       *req;
	size_t		len, i;
	uint64_t	up_ms;
	int		want, start;

	health_req(&req, &len);
	rp_env_defaults(&e, &cred);
	send_env(&e, req, len, &r);
	up_ms = r.uptime_s * 1000;
	RP_CHECK(r.status == OK, "health: up %llu s",
	    (unsigned long long)r.uptime_s);
	rp_reply_free(&r);
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		rp_env_defaults(&e, &cred);
		e.ts = (uint64_t)((long long)e.ts + offs[i]);
		send_env(&e, req, len, &r);
		/* uptime_s is rounded down: a second of slack */
		start = offs[i] < 0 && offs[i] >= -window_ms &&
		    (uint64_t)-offs[i] + 1000 > up_ms;
		want = offs[i] > window_ms || offs[i] < -window_ms || start
		    ? UNAUTH
		    : OK;
		RP_CHECK(r.status == want &&
			(!start || strstr(r.message, "start") != NULL),
		    "timestamp %+ld ms (window %ld ms%s): %s, want %s (%s)",
		    offs[i], window_ms,
		    start ? ", before the service's start" : "",
		    rp_status_name(r.status), rp_status_name(want), r.message);
		rp_reply_free(&r);
	}
	free(req);
}

/* Every bit of a captured rotate envelope flipped, one at a time. */
static void
mode_bitflip(const char *key)
{
	struct rp_env	e;
	struct rp_reply r;
	uint8_t	       *req, *msg, *bad;
	size_t		len, mlen, i;
	int		v0, bit, accepted = 0, noreply = 0, n = 0;
	int		st[32] = { 0 };

	v0 = versions(key);
	rotate_req(key, &req, &len);
	rp_env_defaults(&e, &cred);
	if (rp_envelope(&e, req, len, &msg, &mlen) != 0 ||
	    (bad = malloc(mlen)) == NULL) {
		die("cannot build an envelope");
	}
	for (i = 0; i < mlen; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(bad, msg, mlen);
			bad[i] ^= (uint8_t)(1u << bit);
			rp_exchange(sock, bad, mlen, &cred, e.ts, e.nonce, &r);
			n++;
			if (!r.got) {
				noreply++;
				/* a REQ socket that timed out must be
				 * replaced */
				rp_close(sock);
				if ((sock = rp_connect(url, 5000, 0)) < 0) {
					die("cannot reconnect");
				}
			} else if (r.status == OK) {
				accepted++;
				printf("# byte %zu bit %d accepted\n", i, bit);
			}
			if (r.status >= 0 && r.status < 32) {
				st[r.status]++;
			}
			rp_reply_free(&r);
		}
	}
	RP_CHECK(accepted == 0,
	    "%d envelopes of %zu bytes with one bit flipped: "
	    "%d accepted",
	    n, mlen, accepted);
	RP_CHECK(noreply == 0, "every one was answered (%d not)", noreply);
	for (i = 0; i < 32; i++) {
		if (st[i] != 0) {
			printf("# %d x %s\n", st[i], rp_status_name((int)i));
		}
	}
	RP_CHECK(versions(key) == v0,
	    "none of them rotated: %d versions, as "
	    "before",
	    versions(key));
	/* the unflipped envelope was valid all along */
	rp_exchange(sock, msg, mlen, &cred, e.ts, e.nonce, &r);
	RP_CHECK(r.status == OK && r.version == (uint32_t)v0 + 1,
	    "the original envelope: %s, v%u", rp_status_name(r.status),
	    r.version);
	rp_reply_free(&r);
	RP_CHECK(versions(key) == v0 + 1, "it rotated once");
	free(bad);
	free(msg);
	free(req);
}

int
main(int argc, char **argv)
{
	const char *mode;

	if (argc < 4) {
		fprintf(stderr,
		    "usage: auth_rules replay|late|clock|bitflip "
		    "CREDFILE URL [KEY [MS]|WINDOW_MS]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	mode = argv[1];
	url = argv[3];
	if (rp_cred_load(argv[2], &cred) != 0) {
		die("bad credentials file");
	}
	if ((sock = rp_connect(url, 5000, 0)) < 0) {
		die("cannot connect");
	}
	if (strcmp(mode, "replay") == 0 && argc == 5) {
		mode_replay(argv[4]);
	} else if (strcmp(mode, "late") == 0 && argc == 6) {
		mode_late(argv[4], strtol(argv[5], NULL, 10));
	} else if (strcmp(mode, "clock") == 0 && argc == 5) {
		mode_clock(strtol(argv[4], NULL, 10));
	} else if (strcmp(mode, "bitflip") == 0 && argc == 5) {
		mode_bitflip(argv[4]);
	} else {
		die("bad arguments");
	}
	rp_close(sock);
	rp_cred_clear(&cred);
	return rp_checks_done();
}
