/*
 * audit_bench.c: many signers against one service, for the audit tests and
 * the audit throughput figure (issue 4; not a timed test).
 *
 *   audit_bench CREDFILE KEY SECONDS THREADS [OUTDIR]
 *
 * THREADS threads, each with its own libhsmkey handle, sign distinct
 * 32-byte digests for SECONDS seconds (or until the service goes away:
 * three failures in a row end a thread).  With OUTDIR, each signature a
 * thread RECEIVED is appended at once to OUTDIR/received.<thread> (one a
 * line, flushed: the text form, a space and the digest in hex), so that a
 * test can kill -9 the service and then check that every received
 * signature has its audit line and verifies.  Prints
 * "signs N seconds S rate R/s failures F" on stdout; exit 0 if N > 0.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hsmkey.h"
#include "testclock.h"

#define MAX_THREADS 256

struct signer {
	pthread_t   thread;
	int	    id;
	const char *cred, *key, *outdir;
	double	    until;
	uint64_t    signs, failures;
};

/* One line of received.<thread>: "SIG DIGESTHEX", written at once. */
static void
put_received(FILE *out, const char *sig, const uint8_t *digest, size_t len)
{
	size_t i;

	fprintf(out, "%s ", sig);
	for (i = 0; i < len; i++) {
		fprintf(out, "%02x", digest[i]);
	}
	fprintf(out, "\n");
	fflush(out);
}

static void *
signer_main(void *arg)
{
	struct signer *w = arg;
	struct hsmkey *h = NULL;
	uint8_t	       digest[32];
	char	       path[4096], *sig;
	FILE	      *out = NULL;
	uint64_t       i;
	int	       row = 0;

	if (hsmkey_open(&h, w->cred, NULL) != 0) {
		fprintf(stderr, "audit_bench: open: %s\n",
		    hsmkey_last_error(NULL));
		w->failures++;
		return NULL;
	}
	hsmkey_set_timeout(h, 2000);
	if (w->outdir != NULL) {
		snprintf(
		    path, sizeof(path), "%s/received.%d", w->outdir, w->id);
		if ((out = fopen(path, "a")) == NULL) {
			perror(path);
			hsmkey_close(h);
			return NULL;
		}
	}
	for (i = 0; hk_now_s() < w->until && row < 3; i++) {
		memset(digest, 0, sizeof(digest));
		memcpy(digest, &w->id, sizeof(w->id));
		memcpy(digest + 8, &i, sizeof(i));
		if (hsmkey_sign_digest(
			h, w->key, digest, sizeof(digest), 0, &sig) != 0) {
			w->failures++;
			row++;
			continue;
		}
		row = 0;
		w->signs++;
		if (out != NULL) {
			put_received(out, sig, digest, sizeof(digest));
		}
		free(sig);
	}
	if (out != NULL) {
		fclose(out);
	}
	hsmkey_close(h);
	return NULL;
}

int
main(int argc, char **argv)
{
	static struct signer w[MAX_THREADS];
	uint64_t	     signs = 0, failures = 0;
	double		     t0, t1, secs;
	int		     i, n;

	if (argc < 5 || argc > 6) {
		fprintf(stderr,
		    "usage: audit_bench CREDFILE KEY SECONDS "
		    "THREADS [OUTDIR]\n");
		return 2;
	}
	secs = strtod(argv[3], NULL);
	n = (int)strtol(argv[4], NULL, 10);
	if (secs <= 0 || n < 1 || n > MAX_THREADS) {
		fprintf(stderr, "audit_bench: bad SECONDS or THREADS\n");
		return 2;
	}
	t0 = hk_now_s();
	for (i = 0; i < n; i++) {
		w[i].id = i;
		w[i].cred = argv[1];
		w[i].key = argv[2];
		w[i].outdir = argc == 6 ? argv[5] : NULL;
		w[i].until = t0 + secs;
		if (pthread_create(&w[i].thread, NULL, signer_main, &w[i]) !=
		    0) {
			fprintf(stderr, "audit_bench: pthread_create\n");
			return 1;
		}
	}
	for (i = 0; i < n; i++) {
		pthread_join(w[i].thread, NULL);
		signs += w[i].signs;
		failures += w[i].failures;
	}
	t1 = hk_now_s();
	printf("signs %llu seconds %.2f rate %.0f/s failures %llu\n",
	    (unsigned long long)signs, t1 - t0, (double)signs / (t1 - t0),
	    (unsigned long long)failures);
	return signs > 0 ? 0 : 1;
}
