/*
 * auth_bench.c: what issue 3's auth checks cost in sign throughput.  Not a
 * test: tests/auth_bench.sh runs it against two hsmkeyd on the same token,
 * running side by side: a normal one (A), and one started with
 * HSMKEYD_BENCH_SKIP_AUTH=yes-i-am-a-benchmark (B), which skips the client
 * lookup, MAC, clock and nonce checks and the reply MAC.
 *
 *   auth_bench CREDFILE URL_A URL_B KEY THREADS SECONDS PHASE_MS
 *
 * THREADS threads, each with a REQ socket to either service, sign a
 * 32-byte digest with KEY one request at a time.  Time is cut into phases
 * of PHASE_MS; in each phase every thread talks to one service only, in
 * the order A B B A A B B A ..., so that the machine's drift (its speed
 * moves by tens of percent from minute to minute) falls on both alike and
 * only the idle service sleeps.  A request counts in its phase if it
 * started and ended within it.  One second of warm-up phases comes first.
 * The client does the same work against both services: it MACs every
 * request (a service that skips auth ignores the MAC) and checks the
 * reply's MAC whenever the reply carries one.  It speaks the raw protocol
 * because libhsmkey, rightly, refuses replies without a MAC.
 *
 * With HK_AUTH_BENCH_A_UNNAMED=yes the requests to A name no secret
 * (secret_no 0: A tries every live secret of the client), those to B name
 * the credentials file's: what the trial costs, run as a control.
 *
 * Prints one line per pair of phases ("pair N a RATE b RATE") and then
 * "total a SIGNS SECONDS b SIGNS SECONDS errors E".
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "hsmkey.pb-c.h"
#include "rawproto.h"
#include "testclock.h"
#include "testproc.h"

#define MAX_PHASES 100000

static struct rp_cred cred;
static const char    *urls[2], *key;
static atomic_long    phase; /* -1: stop */
static atomic_long   *counts;
static atomic_long    errors;
static int	      a_unnamed; /* requests to A name no secret */

/* Which service phase p talks to: A B B A A B B A ... */
static int
target(long p)
{
	return (int)(((p + 1) >> 1) & 1);
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
	long			i, p;
	int			sock[2];

	memset(digest, (int)(intptr_t)arg, sizeof(digest));
	item.digest.data = digest;
	item.digest.len = sizeof(digest);
	sr.name = (char *)key;
	sr.n_items = 1;
	sr.items = items;
	req.op_case = HSMKEY__V1__REQUEST__OP_SIGN;
	req.sign = &sr;
	if ((sock[0] = rp_connect(urls[0], 10000, 0)) < 0) {
		atomic_fetch_add(&errors, 1);
		return NULL;
	}
	if ((sock[1] = rp_connect(urls[1], 10000, 0)) < 0) {
		atomic_fetch_add(&errors, 1);
		rp_close(sock[0]);
		return NULL;
	}
	for (i = 0; (p = atomic_load(&phase)) >= 0; i++) {
		memcpy(digest, &i, sizeof(i));
		if (rp_pack_request(&req, &body, &blen) != 0) {
			break;
		}
		rp_env_defaults(&e, &cred);
		if (a_unnamed && target(p) == 0) {
			e.secret_no = 0;
		}
		if (rp_envelope(&e, body, blen, &msg, &mlen) != 0) {
			free(body);
			break;
		}
		rp_exchange(
		    sock[target(p)], msg, mlen, &cred, e.ts, e.nonce, &r);
		if (r.status == HSMKEY__V1__STATUS__STATUS_OK &&
		    (!r.has_mac || r.mac_ok)) {
			if (atomic_load(&phase) == p) {
				atomic_fetch_add(&counts[p], 1);
			}
		} else if (atomic_fetch_add(&errors, 1) < 5) {
			fprintf(stderr, "auth_bench: %s %s\n",
			    rp_status_name(r.status), r.message);
		}
		rp_reply_free(&r);
		free(msg);
		free(body);
	}
	rp_close(sock[0]);
	rp_close(sock[1]);
	return NULL;
}

static long
number(const char *s, long lo, long hi, const char *what)
{
	long v;

	if (hk_test_parse_long(s, lo, hi, &v) != 0) {
		fprintf(
		    stderr, "auth_bench: %s must be %ld..%ld\n", what, lo, hi);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	pthread_t	th[256];
	double		t, *len, secs[2] = { 0, 0 };
	long		n, nphases, nwarm, phase_ms, i, sum[2] = { 0, 0 };
	struct timespec nap;

	if (argc != 8) {
		fprintf(stderr,
		    "usage: auth_bench CREDFILE URL_A URL_B KEY THREADS "
		    "SECONDS PHASE_MS\n");
		return 2;
	}
	urls[0] = argv[2];
	urls[1] = argv[3];
	key = argv[4];
	n = number(argv[5], 1, 256, "THREADS");
	phase_ms = number(argv[7], 10, 60000, "PHASE_MS");
	nphases = number(argv[6], 1, 86400, "SECONDS") * 1000 / phase_ms;
	nphases += nphases % 4 == 0 ? 0 : 4 - nphases % 4; /* whole ABBAs */
	nwarm = 4 * ((1000 / phase_ms + 3) / 4);
	if (nwarm == 0) {
		nwarm = 4;
	}
	if (nwarm + nphases > MAX_PHASES) {
		fprintf(stderr, "auth_bench: too many phases\n");
		return 2;
	}
	a_unnamed = getenv("HK_AUTH_BENCH_A_UNNAMED") != NULL &&
	    strcmp(getenv("HK_AUTH_BENCH_A_UNNAMED"), "yes") == 0;
	if (rp_cred_load(argv[1], &cred) != 0) {
		fprintf(stderr, "auth_bench: bad credentials file\n");
		return 2;
	}
	if ((counts = calloc((size_t)(nwarm + nphases), sizeof(*counts))) ==
		NULL ||
	    (len = calloc((size_t)(nwarm + nphases), sizeof(*len))) == NULL) {
		return 1;
	}
	for (i = 0; i < n; i++) {
		if (pthread_create(&th[i], NULL, worker,
			(void *)(intptr_t)(i + 1)) != 0) {
			return 1;
		}
	}
	nap.tv_sec = phase_ms / 1000;
	nap.tv_nsec = (phase_ms % 1000) * 1000000L;
	t = hk_now_s();
	for (i = 0; i < nwarm + nphases; i++) {
		atomic_store(&phase, i);
		nanosleep(&nap, NULL);
		len[i] = hk_now_s() - t;
		t += len[i];
	}
	atomic_store(&phase, -1);
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
	}
	/* pair k: phases of A and B next to each other (A B, B A, ...) */
	for (i = nwarm; i < nwarm + nphases; i += 2) {
		long a = target(i) == 0 ? i : i + 1, b = a == i ? i + 1 : i;

		printf("pair %ld a %.1f b %.1f\n", (i - nwarm) / 2,
		    (double)atomic_load(&counts[a]) / len[a],
		    (double)atomic_load(&counts[b]) / len[b]);
	}
	for (i = nwarm; i < nwarm + nphases; i++) {
		sum[target(i)] += atomic_load(&counts[i]);
		secs[target(i)] += len[i];
	}
	printf("total a %ld %.3f b %ld %.3f errors %ld\n", sum[0], secs[0],
	    sum[1], secs[1], atomic_load(&errors));
	rp_cred_clear(&cred);
	free(counts);
	free(len);
	return atomic_load(&errors) == 0 ? 0 : 1;
}
