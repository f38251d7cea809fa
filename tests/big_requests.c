/*
 * big_requests.c: requests that cost the service work before its limits
 * are checked, made by hand on a raw nanomsg REQ socket (rawproto.h), for
 * tests/test_hostile.sh (issue 12, "Work before the MAC").
 *
 *   big_requests CREDFILE URL KEY batch N DIGEST_LEN
 *	a sign of N digests of DIGEST_LEN bytes under a valid MAC: OK;
 *   big_requests CREDFILE URL KEY items N
 *	a sign of N empty items under a valid MAC: INVALID_ARGUMENT, MACed,
 *	refused before the items are unpacked;
 *   big_requests CREDFILE URL KEY fields N REPEAT
 *	REPEAT envelopes of N two-byte fields (field 8, reserved): each
 *	refused without a MAC.
 * Each check prints ok/FAIL; exits 0 when every check passed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hk_err.h"
#include "hsmkey.pb-c.h"
#include "rawproto.h"
#include "wire.h"

static int	      sock = -1;
static struct rp_cred cred;

/* Appends a varint to p; returns the byte after it. */
static uint8_t *
put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/*
 * A Request { sign = 15: SignRequest { name = 1; items = 3 ... } } of n
 * items, each a digest (field 2) of dlen bytes, or empty when dlen is 0,
 * written by hand: no SignItem structs for half a million items.  Caller
 * frees *outp.
 */
static int
sign_request(
    const char *key, size_t n, size_t dlen, uint8_t **outp, size_t *lenp)
{
	size_t	 item = dlen > 0 ? 2 + dlen : 0, klen = strlen(key), body, i;
	uint8_t *buf, *p;

	body = 2 + klen + n * (2 + item);
	if (dlen > 120 || klen > 120 || (buf = malloc(body + 16)) == NULL) {
		return -1;
	}
	p = buf;
	*p++ = 15 << 3 | 2;
	p = put_varint(p, body);
	*p++ = 1 << 3 | 2;
	*p++ = (uint8_t)klen;
	memcpy(p, key, klen);
	p += klen;
	for (i = 0; i < n; i++) {
		*p++ = 3 << 3 | 2;
		*p++ = (uint8_t)item;
		if (item > 0) {
			*p++ = 2 << 3 | 2;
			*p++ = (uint8_t)dlen;
			memset(p, (int)(i & 0xff), dlen);
			p += dlen;
		}
	}
	*outp = buf;
	*lenp = (size_t)(p - buf);
	return 0;
}

/* Seals req, sends it and decodes the reply into a. */
static int
sealed(const uint8_t *req, size_t len, struct rp_reply *a)
{
	struct rp_env e;
	uint8_t	     *msg = NULL;
	size_t	      mlen;
	int	      r;

	memset(a, 0, sizeof(*a));
	a->status = -1;
	rp_env_defaults(&e, &cred);
	if (rp_envelope(&e, req, len, &msg, &mlen) != 0) {
		return -1;
	}
	r = rp_exchange(sock, msg, mlen, &cred, e.ts, e.nonce, a);
	free(msg);
	return r;
}

static void
check_sign(const char *key, size_t n, size_t dlen, int want)
{
	struct rp_reply a;
	uint8_t	       *req = NULL;
	size_t		len = 0;

	memset(&a, 0, sizeof(a));
	if (sign_request(key, n, dlen, &req, &len) != 0 ||
	    sealed(req, len, &a) != 0) {
		RP_CHECK(0, "sign of %zu items: cannot send it", n);
	} else {
		RP_CHECK(a.got && a.status == want && a.mac_ok,
		    "sign of %zu items of %zu bytes (request %zu bytes): %s "
		    "(MAC %s), want %s: %s",
		    n, dlen, len, rp_status_name(a.status),
		    a.mac_ok ? "ok" : "missing or bad", rp_status_name(want),
		    a.message);
	}
	free(req);
	rp_reply_free(&a);
}

/* REPEAT envelopes of n fields 8 = 0 (two bytes each): no MAC to check,
 * the service must refuse them without unpacking. */
static void
check_fields(size_t n, long repeat)
{
	struct rp_reply a;
	uint8_t	       *msg, nonce[HK_NONCE_LEN];
	size_t		i;
	long		k, refused = 0;

	if ((msg = malloc(2 * n)) == NULL) {
		RP_CHECK(0, "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		msg[2 * i] = 8 << 3;
		msg[2 * i + 1] = 0;
	}
	rp_nonce(nonce);
	for (k = 0; k < repeat; k++) {
		memset(&a, 0, sizeof(a));
		a.status = -1;
		if (rp_exchange(sock, msg, 2 * n, &cred, 0, nonce, &a) == 0 &&
		    a.got && a.status != HSMKEY__V1__STATUS__STATUS_OK &&
		    !a.has_mac) {
			refused++;
		}
		rp_reply_free(&a);
	}
	RP_CHECK(refused == repeat,
	    "%ld of %ld envelopes of %zu fields (%zu bytes) refused", refused,
	    repeat, n, 2 * n);
	free(msg);
}

int
main(int argc, char **argv)
{
	const char *mode;
	size_t	    n;

	if (argc < 6 || rp_cred_load(argv[1], &cred) != 0) {
		fprintf(stderr,
		    "usage: big_requests CREDFILE URL KEY "
		    "batch N DIGEST_LEN | items N | fields N "
		    "REPEAT\n");
		return 2;
	}
	if ((sock = rp_connect(argv[2], 10000, 0)) < 0) {
		fprintf(
		    stderr, "big_requests: cannot connect to %s\n", argv[2]);
		return 1;
	}
	mode = argv[4];
	n = strtoul(argv[5], NULL, 10);
	if (strcmp(mode, "batch") == 0 && argc == 7) {
		check_sign(argv[3], n, strtoul(argv[6], NULL, 10),
		    HSMKEY__V1__STATUS__STATUS_OK);
	} else if (strcmp(mode, "items") == 0 && argc == 6) {
		check_sign(
		    argv[3], n, 0, hk_status_from_err(HK_ERR_TOO_LARGE));
	} else if (strcmp(mode, "fields") == 0 && argc == 7) {
		check_fields(n, strtol(argv[6], NULL, 10));
	} else {
		fprintf(stderr, "big_requests: unknown mode\n");
		return 2;
	}
	rp_close(sock);
	rp_cred_clear(&cred);
	return rp_checks_done();
}
