/*
 * signer_loop.c: a service that signs without pause while its operator
 * rotates its credential under it (issue 3: client rotate, then revoke).
 *
 *   signer_loop CREDFILE KEY THREADS STOPFILE [MAX_SECONDS]
 *
 * Each thread opens its own libhsmkey handle from CREDFILE (reload on
 * change is on by default) and signs a digest with KEY until STOPFILE
 * exists (or MAX_SECONDS, default 120, have passed).  Prints the first
 * failures as they happen, then "signs N failed N" and exits 0 only if no
 * request failed.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hsmkey.h"
#include "testproc.h"

static const char *cred, *key, *stopfile;
static long	   max_s = 120;
static atomic_long signs, failures;
static atomic_int  started;

static long
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec;
}

static void *
signer(void *arg)
{
	struct hsmkey *h = NULL;
	uint8_t	       digest[32];
	char	      *sig;
	long	       t0 = now_s(), i;
	int	       r;

	memset(digest, (int)(intptr_t)arg, sizeof(digest));
	if ((r = hsmkey_open(&h, cred, NULL)) != HSMKEY_OK) {
		fprintf(stderr, "open: %s\n", hsmkey_last_error(NULL));
		atomic_fetch_add(&failures, 1);
		return NULL;
	}
	hsmkey_set_timeout(h, 10000);
	atomic_fetch_add(&started, 1);
	for (i = 0; access(stopfile, F_OK) != 0 && now_s() - t0 < max_s; i++) {
		digest[0] = (uint8_t)i;
		sig = NULL;
		r = hsmkey_sign_digest(
		    h, key, digest, sizeof(digest), 0, &sig);
		if (r == HSMKEY_OK) {
			atomic_fetch_add(&signs, 1);
		} else if (atomic_fetch_add(&failures, 1) < 10) {
			fprintf(stderr, "sign failed: %s: %s\n",
			    hsmkey_error_name(r), hsmkey_last_error(h));
		}
		free(sig);
	}
	hsmkey_close(h);
	return NULL;
}

int
main(int argc, char **argv)
{
	pthread_t th[64];
	long	  i, n;
	char	 *end;

	if (argc != 5 && argc != 6) {
		fprintf(stderr,
		    "usage: signer_loop CREDFILE KEY THREADS "
		    "STOPFILE [MAX_SECONDS]\n");
		return 2;
	}
	cred = argv[1];
	key = argv[2];
	if (hk_test_parse_long(argv[3], 1, 64, &n) != 0) {
		fprintf(stderr, "signer_loop: THREADS is 1..64\n");
		return 2;
	}
	stopfile = argv[4];
	if (argc == 6) {
		max_s = strtol(argv[5], &end, 10);
	}
	for (i = 0; i < n; i++) {
		if (pthread_create(&th[i], NULL, signer,
			(void *)(intptr_t)(i + 1)) != 0) {
			fprintf(stderr, "signer_loop: pthread_create\n");
			return 1;
		}
	}
	for (i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
	}
	printf("signs %ld failed %ld\n", atomic_load(&signs),
	    atomic_load(&failures));
	return atomic_load(&failures) == 0 && atomic_load(&signs) > 0 ? 0 : 1;
}
