/*
 * flood.c: what an outsider's flood, and replies waiting for a stuck
 * audit log, cost the service (tests/test_flood.sh).
 *
 *   flood unauth CREDFILE URL N [IDS]
 *	N envelopes, one after the other on one socket, that claim the
 *	client of CREDFILE with a MAC that does not verify (no secret is
 *	needed to make them); with IDS, they claim IDS client ids in turn
 *	(c0, c1, ...) that do not exist.  Prints "N sent, M refused in T ms"; exit 0
 *	when every one got its UNAUTHENTICATED reply.
 *
 *   flood waiting CREDFILE URL KEY NSOCK ITEMS BYTES WAIT_MS
 *	NSOCK sockets each send one sign of ITEMS messages of BYTES bytes
 *	by KEY at once, then wait up to WAIT_MS for the replies.  Prints
 *	"ok=A busy=B other=C none=D" (busy: RESOURCE_EXHAUSTED); exit 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nanomsg/nn.h>

#include "envelope.h"
#include "hsmkey.pb-c.h"
#include "rawproto.h"
#include "seal.h"

#define UNAUTH HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED
#define BUSY   HSMKEY__V1__STATUS__STATUS_RESOURCE_EXHAUSTED
#define OK     HSMKEY__V1__STATUS__STATUS_OK

static void
die(const char *what)
{
	fprintf(stderr, "flood: %s\n", what);
	exit(2);
}

static void
ping_req(uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request	req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__PingRequest p = HSMKEY__V1__PING_REQUEST__INIT;

	req.op_case = HSMKEY__V1__REQUEST__OP_PING;
	req.ping = &p;
	if (rp_pack_request(&req, outp, lenp) != 0) {
		die("out of memory");
	}
}

static void
sign_req(
    const char *key, size_t nitems, size_t bytes, uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Request	req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__SignRequest sr = HSMKEY__V1__SIGN_REQUEST__INIT;
	Hsmkey__V1__SignItem	item = HSMKEY__V1__SIGN_ITEM__INIT, **items;
	uint8_t		       *msg;
	size_t			i;

	if ((msg = malloc(bytes)) == NULL ||
	    (items = calloc(nitems, sizeof(*items))) == NULL) {
		die("out of memory");
	}
	memset(msg, 'm', bytes);
	item.message.data = msg;
	item.message.len = bytes;
	for (i = 0; i < nitems; i++) {
		items[i] = &item;
	}
	sr.name = (char *)key;
	sr.n_items = nitems;
	sr.items = items;
	req.op_case = HSMKEY__V1__REQUEST__OP_SIGN;
	req.sign = &sr;
	if (rp_pack_request(&req, outp, lenp) != 0) {
		die("out of memory");
	}
	free(items);
	free(msg);
}

static int
unauth(const struct rp_cred *cred, const char *url, long n, long ids)
{
	char		id[32];
	struct rp_env	e;
	struct rp_reply rep;
	uint8_t	       *req, *msg;
	size_t		rlen, mlen;
	uint64_t	t0 = hk_mono_ms();
	long		i, refused = 0;
	int		sock;

	if ((sock = rp_connect(url, 5000, 0)) < 0) {
		die("cannot connect");
	}
	ping_req(&req, &rlen);
	for (i = 0; i < n; i++) {
		rp_env_defaults(&e, cred);
		e.corrupt_mac = 1;
		if (ids > 0) {
			snprintf(id, sizeof(id), "c%ld", i % ids);
			e.client_id = id;
		}
		if (rp_envelope(&e, req, rlen, &msg, &mlen) != 0) {
			die("cannot build an envelope");
		}
		if (rp_exchange(sock, msg, mlen, cred, e.ts, e.nonce, &rep) !=
		    0) {
			die("send failed");
		}
		refused += rep.got && rep.status == UNAUTH;
		rp_reply_free(&rep);
		free(msg);
	}
	printf("%ld sent, %ld refused in %llu ms\n", n, refused,
	    (unsigned long long)(hk_mono_ms() - t0));
	free(req);
	rp_close(sock);
	return refused == n ? 0 : 1;
}

/* The status of a sealed reply, or -1 if it does not open. */
static int
reply_status(const struct rp_cred *cred, const struct rp_env *e,
    const uint8_t *buf, size_t len)
{
	struct hk_opened_reply o;
	Hsmkey__V1__Response  *resp;
	const char	      *why;
	uint8_t		       dk[HK_MAC_LEN];
	int		       st = -1;

	if (hk_day_key(
		cred->secret, cred->secret_len, hk_mac_day(e->ts), dk) != 0) {
		return -1;
	}
	if (hk_open_response(dk, e->nonce, buf, len, &o, &why) == 0 &&
	    (resp = hsmkey__v1__response__unpack(NULL, o.resp_len, o.resp)) !=
		NULL) {
		st = resp->status;
		hsmkey__v1__response__free_unpacked(resp, NULL);
	}
	hk_opened_reply_free(&o);
	return st;
}

static int
waiting(const struct rp_cred *cred, const char *url, const char *key,
    int nsock, size_t nitems, size_t bytes, long wait_ms)
{
	struct rp_env *envs;
	int	      *socks, *done, i, got = 0, n[4] = { 0, 0, 0, 0 };
	uint8_t	      *req, *msg;
	size_t	       rlen, mlen;
	uint64_t       end;

	if ((envs = calloc((size_t)nsock, sizeof(*envs))) == NULL ||
	    (socks = calloc((size_t)nsock, sizeof(*socks))) == NULL ||
	    (done = calloc((size_t)nsock, sizeof(*done))) == NULL) {
		die("out of memory");
	}
	sign_req(key, nitems, bytes, &req, &rlen);
	for (i = 0; i < nsock; i++) {
		if ((socks[i] = rp_connect(url, 5000, 0)) < 0) {
			die("cannot connect");
		}
		rp_env_defaults(&envs[i], cred);
		if (rp_envelope(&envs[i], req, rlen, &msg, &mlen) != 0 ||
		    nn_send(socks[i], msg, mlen, 0) < 0) {
			die("cannot send");
		}
		free(msg);
	}
	end = hk_mono_ms() + (uint64_t)wait_ms;
	while (got < nsock && hk_mono_ms() < end) {
		for (i = 0; i < nsock; i++) {
			void *buf = NULL;
			int   len, st;

			if (done[i] ||
			    (len = nn_recv(
				 socks[i], &buf, NN_MSG, NN_DONTWAIT)) < 0) {
				continue;
			}
			st = reply_status(cred, &envs[i], buf, (size_t)len);
			nn_freemsg(buf);
			n[st == OK ? 0 : st == BUSY ? 1 : 2]++;
			done[i] = 1;
			got++;
		}
		usleep(10 * 1000);
	}
	n[3] = nsock - got;
	printf("ok=%d busy=%d other=%d none=%d\n", n[0], n[1], n[2], n[3]);
	for (i = 0; i < nsock; i++) {
		rp_close(socks[i]);
	}
	free(req);
	free(envs);
	free(socks);
	free(done);
	return 0;
}

/* A count argument: a whole number from 0, or exit 2. */
static long
count_arg(const char *s)
{
	char *end;
	long  v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0) {
		die("a count argument is not a number");
	}
	return v;
}

int
main(int argc, char **argv)
{
	struct rp_cred cred;
	int	       r;

	if (argc < 5 ||
	    (strcmp(argv[1], "unauth") != 0 &&
		strcmp(argv[1], "waiting") != 0) ||
	    (strcmp(argv[1], "waiting") == 0 && argc != 9)) {
		fprintf(stderr,
		    "usage: flood unauth CREDFILE URL N [IDS]\n"
		    "       flood waiting CREDFILE URL KEY NSOCK ITEMS "
		    "BYTES WAIT_MS\n");
		return 2;
	}
	if (rp_cred_load(argv[2], &cred) != 0) {
		die("cannot read the credentials");
	}
	if (strcmp(argv[1], "unauth") == 0) {
		r = unauth(&cred, argv[3], count_arg(argv[4]),
		    argc > 5 ? count_arg(argv[5]) : 0);
	} else {
		r = waiting(&cred, argv[3], argv[4], (int)count_arg(argv[5]),
		    (size_t)count_arg(argv[6]), (size_t)count_arg(argv[7]),
		    count_arg(argv[8]));
	}
	rp_cred_clear(&cred);
	return r;
}
