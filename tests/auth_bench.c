/*
 * auth_bench.c: signing throughput of one hsmkeyd, for issue 3's "auth
 * checks cost less than 5% of sign throughput" (tests/auth_bench.sh runs
 * it against the same token twice: a normal hsmkeyd, and one started with
 * HSMKEYD_BENCH_SKIP_AUTH=yes-i-am-a-benchmark, which skips the client
 * lookup, MAC, clock and nonce checks and the reply MAC).  Not a test.
 *
 *   auth_bench CREDFILE URL KEY THREADS SECONDS
 *
 * THREADS threads, each with its own REQ socket, sign a 32-byte digest
 * with KEY (an ecdsa-p256 key) one request at a time for SECONDS, after a
 * one-second warm-up.  The client does the same work against both
 * services: it MACs every request (a service that skips auth ignores the
 * MAC) and checks the reply's MAC whenever the reply carries one.  It
 * speaks the raw protocol because libhsmkey, rightly, refuses replies
 * without a MAC.  Prints "signs N seconds S rate R/s errors E".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "envelope.h"
#include "hsmkey.pb-c.h"
#include "rawproto.h"

static struct rp_cred cred;
static const char    *url, *key;
static atomic_int     phase; /* 0 warm-up, 1 measure, 2 stop */
static atomic_long    signs, errors;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
worker(void *arg)
{
	Hsmkey__V1__Request	req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__SignRequest sr = HSMKEY__V1__SIGN_REQUEST__INIT;
	Hsmkey__V1__SignItem	item = HSMKEY__V1__SIGN_ITEM__INIT;
	Hsmkey__V1__SignItem   *items[1] = { &item };
	struct rp_env		e;
	struct rp_reply		r;
	uint8_t			digest[32], *body, *msg;
	size_t			blen, mlen;
	long			i;
	int			sock, p;

	memset(digest, (int)(intptr_t)arg, sizeof(digest));
	item.digest.data = digest;
	item.digest.len = sizeof(digest);
	sr.name = (char *)key;
	sr.n_items = 1;
	sr.items = items;
	req.op_case = HSMKEY__V1__REQUEST__OP_SIGN;
	req.sign = &sr;
	if ((sock = rp_connect(url, 10000, 0)) < 0) {
		atomic_fetch_add(&errors, 1);
		return NULL;
	}
	for (i = 0; (p = atomic_load(&phase)) != 2; i++) {
		memcpy(digest, &i, sizeof(i));
		if (rp_pack_request(&req, &body, &blen) != 0) {
			break;
		}
		rp_env_defaults(&e, &cred);
		if (rp_envelope(&e, body, blen, &msg, &mlen) != 0) {
			free(body);
			break;
		}
		rp_exchange(sock, msg, mlen, &cred, e.ts, e.nonce, &r);
		if (p == 1 && atomic_load(&phase) == 1) {
			if (r.status == HSMKEY__V1__STATUS__STATUS_OK &&
			    (!r.has_mac || r.mac_ok)) {
				atomic_fetch_add(&signs, 1);
			} else if (atomic_fetch_add(&errors, 1) < 5) {
				fprintf(stderr, "auth_bench: %s %s\n",
				    rp_status_name(r.status), r.message);
			}
		}
		rp_reply_free(&r);
		free(msg);
		free(body);
	}
	rp_close(sock);
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t th[256];
	double	  t0, t1;
	long	  n, secs, i;
	char	 *end;

	if (argc != 6) {
		fprintf(stderr,
		    "usage: auth_bench CREDFILE URL KEY THREADS "
		    "SECONDS\n");
		return 2;
	}
	url = argv[2];
	key = argv[3];
	n = strtol(argv[4], &end, 10);
	if (*end != '\0' || n < 1 || n > 256) {
		fprintf(stderr, "auth_bench: THREADS is 1..256\n");
		return 2;
	}
	secs = strtol(argv[5], &end, 10);
	if (*end != '\0' || secs < 1) {
		fprintf(stderr, "auth_bench: SECONDS must be positive\n");
		return 2;
	}
	if (rp_cred_load(argv[1], &cred) != 0) {
		fprintf(stderr, "auth_bench: bad credentials file\n");
		return 2;
	}
	for (i = 0; i < n; i++) {
		if (pthread_create(&th[i], NULL, worker,
			(void *)(intptr_t)(i + 1)) != 0) {
			return 1;
		}
	}
	sleep(1);
	t0 = now_s();
	atomic_store(&phase, 1);
	sleep((unsigned int)secs);
	atomic_store(&phase, 2);
	t1 = now_s();
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
	}
	printf("signs %ld seconds %.3f rate %.1f/s errors %ld\n",
	    atomic_load(&signs), t1 - t0,
	    (double)atomic_load(&signs) / (t1 - t0), atomic_load(&errors));
	rp_cred_clear(&cred);
	return atomic_load(&errors) == 0 ? 0 : 1;
}
