/*
 * concurrent_sign.c: signers must never notice a rotation.
 *
 *   concurrent_sign CREDFILE URL KEY OUTDIR [THREADS [ROTATIONS]]
 *
 * THREADS threads (default 8), each with its own libhsmkey handle, sign
 * distinct messages in a loop while the main thread rotates KEY ROTATIONS
 * times (default 3) with a compare-and-set on the version it last made.
 * Then every signature is verified through the service and must be valid
 * and by the version its text form names.  Checks:
 *   - zero failed requests (sign, rotate, verify);
 *   - a sign that starts after a rotate returned is by the new version or
 *     a later one (rotation is immediate, DESIGN.md);
 *   - every version 1..ROTATIONS+1 made signatures.
 * For each version it writes OUTDIR/sample-v<N>.msg and .sig (text form) so
 * that the test script can verify them with openssl from the exported
 * public key.  Exits 0 on success, 1 on any failure; prints a summary.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hsmkey.h"
#include "testproc.h"

#define MAX_THREADS  64
#define MAX_VERSIONS 64
#define MAX_ERRORS   10

struct record {
	char	*msg;
	char	*sig;
	uint32_t version;
};

struct worker {
	pthread_t      thread;
	int	       id;
	struct hsmkey *h;
	struct record *recs;
	size_t	       nrecs;
	size_t	       cap;
	unsigned       failed;
	unsigned       stale;
};

static const char     *key;
static atomic_int      stop_flag;
static atomic_uint     floor_version = 1;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned	       nerrors;

static void
report(const char *what, int id, int r, const char *detail)
{
	pthread_mutex_lock(&err_lock);
	if (nerrors++ < MAX_ERRORS) {
		fprintf(stderr,
		    "concurrent_sign: thread %d: %s: %d (%s): %s\n", id, what,
		    r, hsmkey_strerror(r), detail != NULL ? detail : "");
	}
	pthread_mutex_unlock(&err_lock);
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Parses N of "hsmkey:v<N>:..."; 0 if malformed. */
static uint32_t
sig_version(const char *s)
{
	const char   *p;
	char	     *end;
	unsigned long v;

	if (strncmp(s, "hsmkey:v", 8) != 0) {
		return 0;
	}
	p = s + 8;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno != 0 || end == p || *end != ':' || v == 0 ||
	    v > UINT32_MAX) {
		return 0;
	}
	return (uint32_t)v;
}

static int
push_record(struct worker *w, char *msg, char *sig, uint32_t version)
{
	struct record *n;
	size_t	       ncap;

	if (w->nrecs == w->cap) {
		ncap = w->cap == 0 ? 256 : w->cap * 2;
		n = realloc(w->recs, ncap * sizeof(*n));
		if (n == NULL) {
			return -1;
		}
		w->recs = n;
		w->cap = ncap;
	}
	w->recs[w->nrecs].msg = msg;
	w->recs[w->nrecs].sig = sig;
	w->recs[w->nrecs].version = version;
	w->nrecs++;
	return 0;
}

static void *
signer(void *arg)
{
	struct worker *w = arg;
	unsigned long  i;
	char	       buf[96];
	char	      *msg, *sig;
	uint32_t       floor, v;
	int	       r, n;

	for (i = 0; !atomic_load(&stop_flag); i++) {
		n = snprintf(
		    buf, sizeof(buf), "thread %d message %lu", w->id, i);
		if (n < 0 || (size_t)n >= sizeof(buf)) {
			abort();
		}
		floor = atomic_load(&floor_version);
		sig = NULL;
		r = hsmkey_sign(w->h, key, buf, (size_t)n, 0, &sig);
		if (r != HSMKEY_OK) {
			w->failed++;
			report("sign", w->id, r, hsmkey_last_error(w->h));
			continue;
		}
		v = sig_version(sig);
		if (v == 0) {
			w->failed++;
			report("sign: malformed text form", w->id, 0, sig);
			free(sig);
			continue;
		}
		if (v < floor) {
			w->stale++;
			report("sign after rotate used an old version", w->id,
			    0, sig);
		}
		if ((msg = strdup(buf)) == NULL ||
		    push_record(w, msg, sig, v) != 0) {
			fprintf(stderr, "concurrent_sign: out of memory\n");
			abort();
		}
	}
	return NULL;
}

static int
write_file(const char *dir, uint32_t v, const char *ext, const char *data)
{
	char  path[4096];
	FILE *f;
	int   n, r = 0;

	n = snprintf(path, sizeof(path), "%s/sample-v%u.%s", dir, v, ext);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		return -1;
	}
	if ((f = fopen(path, "w")) == NULL) {
		perror(path);
		return -1;
	}
	if (fputs(data, f) == EOF) {
		r = -1;
	}
	if (fclose(f) != 0) {
		r = -1;
	}
	return r;
}

static long
parse_count(const char *s, long lo, long hi)
{
	long v;

	if (hk_test_parse_long(s, lo, hi, &v) != 0) {
		fprintf(stderr, "concurrent_sign: bad count '%s'\n", s);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static struct worker	    workers[MAX_THREADS];
	unsigned long		    seen[MAX_VERSIONS + 1];
	int			    sampled[MAX_VERSIONS + 1];
	const char		   *cred, *url, *outdir;
	struct hsmkey		   *h = NULL;
	struct hsmkey_verify_result res;
	unsigned long total = 0, failed = 0, stale = 0, verified = 0;
	unsigned long bad = 0;
	long	      nthreads = 8, rotations = 3, t, i;
	uint32_t      cur = 1, newv;
	size_t	      j;
	int	      r;

	if (argc < 5 || argc > 7) {
		fprintf(stderr,
		    "usage: concurrent_sign CREDFILE URL KEY "
		    "OUTDIR [THREADS [ROTATIONS]]\n");
		return 2;
	}
	cred = argv[1];
	url = argv[2];
	key = argv[3];
	outdir = argv[4];
	if (argc > 5) {
		nthreads = parse_count(argv[5], 1, MAX_THREADS);
	}
	if (argc > 6) {
		rotations = parse_count(argv[6], 0, MAX_VERSIONS - 1);
	}
	memset(seen, 0, sizeof(seen));
	memset(sampled, 0, sizeof(sampled));

	if ((r = hsmkey_open(&h, cred, url)) != HSMKEY_OK) {
		fprintf(stderr, "concurrent_sign: hsmkey_open: %s\n",
		    hsmkey_strerror(r));
		return 1;
	}
	for (t = 0; t < nthreads; t++) {
		workers[t].id = (int)t;
		if ((r = hsmkey_open(&workers[t].h, cred, url)) != HSMKEY_OK) {
			fprintf(stderr, "concurrent_sign: hsmkey_open: %s\n",
			    hsmkey_strerror(r));
			return 1;
		}
	}
	for (t = 0; t < nthreads; t++) {
		if (pthread_create(
			&workers[t].thread, NULL, signer, &workers[t]) != 0) {
			fprintf(stderr, "concurrent_sign: pthread_create\n");
			return 1;
		}
	}

	sleep_ms(400);
	for (i = 0; i < rotations; i++) {
		newv = 0;
		r = hsmkey_rotate(h, key, cur, 0, &newv);
		if (r != HSMKEY_OK) {
			failed++;
			report("rotate", -1, r, hsmkey_last_error(h));
			break;
		}
		if (newv != cur + 1) {
			failed++;
			fprintf(stderr,
			    "concurrent_sign: rotate made v%u, "
			    "want v%u\n",
			    newv, cur + 1);
		}
		cur = newv;
		atomic_store(&floor_version, cur);
		printf("rotated to v%u\n", cur);
		fflush(stdout);
		sleep_ms(400);
	}
	atomic_store(&stop_flag, 1);
	for (t = 0; t < nthreads; t++) {
		pthread_join(workers[t].thread, NULL);
	}

	/* Verify everything through the service, with the main handle. */
	for (t = 0; t < nthreads; t++) {
		struct worker *w = &workers[t];

		failed += w->failed;
		stale += w->stale;
		for (j = 0; j < w->nrecs; j++) {
			struct record *rec = &w->recs[j];

			total++;
			if (rec->version <= MAX_VERSIONS) {
				seen[rec->version]++;
				if (!sampled[rec->version]) {
					sampled[rec->version] = 1;
					if (write_file(outdir, rec->version,
						"msg", rec->msg) != 0 ||
					    write_file(outdir, rec->version,
						"sig", rec->sig) != 0) {
						failed++;
					}
				}
			}
			memset(&res, 0, sizeof(res));
			r = hsmkey_verify(h, key, rec->msg, strlen(rec->msg),
			    rec->sig, &res);
			if (r != HSMKEY_OK) {
				failed++;
				report(
				    "verify", w->id, r, hsmkey_last_error(h));
			} else if (!res.valid || res.version != rec->version) {
				bad++;
				report("verify: invalid or wrong version",
				    w->id, 0, rec->sig);
			} else {
				verified++;
			}
			free(rec->msg);
			free(rec->sig);
		}
		free(w->recs);
		hsmkey_close(w->h);
	}
	hsmkey_close(h);

	printf("%lu signatures by %ld threads during %ld rotations; "
	       "%lu failed requests, %lu stale versions, %lu verified, "
	       "%lu invalid\n",
	    total, nthreads, rotations, failed, stale, verified, bad);
	printf("signatures per version:");
	for (j = 1; j <= MAX_VERSIONS; j++) {
		if (seen[j] != 0) {
			printf(" v%zu=%lu", j, seen[j]);
		}
	}
	printf("\n");
	r = 0;
	for (j = 1; j <= (size_t)rotations + 1; j++) {
		if (seen[j] == 0) {
			fprintf(stderr,
			    "concurrent_sign: no signature by "
			    "v%zu\n",
			    j);
			r = 1;
		}
	}
	if (failed != 0 || stale != 0 || bad != 0 || total == 0) {
		r = 1;
	}
	return r;
}
