/*
 * bench_run.c: the measurement engine of hsmkey-bench.
 *
 * A row runs conc threads, each with its own connection or session (made by
 * ops->open before the clock starts).  Full mode: every thread loops on
 * ops->op; after warmup_s the main thread opens the measured window for
 * duration_s.  A request is counted, and its latency (CLOCK_MONOTONIC
 * around the op) stored in a preallocated per-thread array, when it
 * completes inside the window.  Smoke mode: each thread makes smoke_ops
 * requests, all counted and all signatures kept.  Kept signatures are
 * checked with OpenSSL after the row, outside the timing.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "testclock.h"

enum { PH_WARM = 0, PH_MEASURE, PH_STOP };

static atomic_int	 phase;
static pthread_barrier_t start_barrier;

double
bench_now(void)
{
	return hk_now_s();
}

uint64_t
bench_now_ns(void)
{
	return hk_now_ns();
}

int
bench_fail(struct bench_worker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	return -1;
}

int
bench_sampling(const struct bench_worker *w)
{
	if (w->sample_all) {
		return w->nsamples < w->samplecap;
	}
	return w->seq % (uint64_t)bench_p.sample_stride == 0 &&
	    w->nsamples < w->samplecap;
}

void
bench_keep(struct bench_worker *w, uint32_t msg, uint32_t version,
    const uint8_t *sig, size_t len, int der)
{
	struct bench_sample *s;

	if (w->nsamples >= w->samplecap) {
		return;
	}
	s = &w->samples[w->nsamples++];
	s->msg = msg;
	s->version = version;
	s->der = (uint8_t)der;
	if (len > sizeof(s->sig)) {
		len = 0; /* fails the check: never that long */
	}
	s->len = (uint16_t)len;
	memcpy(s->sig, sig, len);
}

/* Makes one request and times it (*nsp); 0, or -1 with w->failed set. */
static int
timed_op(struct bench_worker *w, uint64_t *nsp)
{
	uint64_t t0 = bench_now_ns();

	if (w->row->ops->op(w) != 0) {
		w->failed = 1;
		return -1;
	}
	*nsp = bench_now_ns() - t0;
	w->seq++;
	return 0;
}

/* Counts a request of ns nanoseconds in the row's results. */
static void
count(struct bench_worker *w, uint64_t ns)
{
	w->ops++;
	if (w->nlat < w->latcap) {
		w->lat[w->nlat++] =
		    (uint32_t)(ns > UINT32_MAX ? UINT32_MAX : ns);
	} else {
		w->row->lat_truncated = 1;
	}
}

static void *
worker_main(void *arg)
{
	struct bench_worker *w = arg;
	uint64_t	     ns;
	int		     ph, i;

	pthread_barrier_wait(&start_barrier);
	if (bench_p.smoke) {
		for (i = 0; i < bench_p.smoke_ops && !w->failed; i++) {
			if (timed_op(w, &ns) != 0) {
				break;
			}
			count(w, ns);
		}
		return NULL;
	}
	while ((ph = atomic_load_explicit(&phase, memory_order_relaxed)) !=
	    PH_STOP) {
		if (timed_op(w, &ns) != 0) {
			break;
		}
		/* counted if it started and ended inside the window */
		if (ph == PH_MEASURE &&
		    atomic_load_explicit(&phase, memory_order_relaxed) ==
			PH_MEASURE) {
			count(w, ns);
		}
	}
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const uint32_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0) {
		return 0;
	}
	/* nearest rank */
	i = (size_t)(p * (double)n + 0.999999);
	if (i < 1) {
		i = 1;
	}
	if (i > n) {
		i = n;
	}
	return (double)v[i - 1] / 1000.0;
}

static void
sleep_s(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0) {
	}
}

/* Checks every kept signature; returns the number of bad ones. */
static size_t
check_samples(struct bench_row *row, struct bench_worker *ws, int n)
{
	struct bench_keyset *ks;
	size_t		     bad = 0, i;
	int		     k;

	if (row->valg == BENCH_ALG_NONE) {
		return 0;
	}
	ks = bench_row_keys(row);
	for (k = 0; k < n; k++) {
		for (i = 0; i < ws[k].nsamples; i++) {
			struct bench_sample *s = &ws[k].samples[i];
			EVP_PKEY	    *pk = NULL;

			if (ks != NULL && s->version >= 1 &&
			    s->version <= BENCH_MAXVER) {
				pk = ks->pk[s->version];
			}
			if (pk == NULL ||
			    bench_check_sig(pk, row->valg, s->msg, s->sig,
				s->len, s->der) != 1) {
				if (bad++ < 3) {
					fprintf(stderr,
					    "bench: %s %s %s/%d: "
					    "signature %zu of thread %d "
					    "(v%u, msg %u) does not verify\n",
					    row->name, row->alg,
					    row->transport, row->conc, i, k,
					    s->version, s->msg);
				}
			}
			row->checked++;
		}
	}
	return bad;
}

int
bench_run_row(struct bench_row *row)
{
	struct bench_worker *ws = NULL;
	pthread_t	     th[BENCH_MAXCONC];
	uint32_t	    *all = NULL;
	size_t		     latcap, samplecap, nall = 0, bad;
	double		     t0, t1;
	int		     i, nopen = 0, nstarted = 0, r = -1;

	row->checked = 0;
	row->lat_truncated = 0;
	if (row->conc < 1 || row->conc > BENCH_MAXCONC) {
		fprintf(stderr, "bench: bad concurrency %d\n", row->conc);
		return -1;
	}
	if (bench_p.smoke) {
		latcap = (size_t)bench_p.smoke_ops;
		samplecap = (size_t)bench_p.smoke_ops * (size_t)row->items;
	} else {
		/* room for 200k requests/s in total: more than any row */
		latcap =
		    (size_t)((bench_p.duration_s + 1) * 200000.0 / row->conc) +
		    1024;
		samplecap = 64 * (size_t)row->items;
	}
	if ((ws = calloc((size_t)row->conc, sizeof(*ws))) == NULL) {
		goto out;
	}
	for (i = 0; i < row->conc; i++) {
		ws[i].row = row;
		ws[i].idx = i;
		ws[i].latcap = latcap;
		ws[i].samplecap = samplecap;
		ws[i].sample_all = bench_p.smoke;
		if ((ws[i].lat = calloc(latcap, sizeof(uint32_t))) == NULL ||
		    (ws[i].samples = calloc(
			 samplecap, sizeof(struct bench_sample))) == NULL) {
			fprintf(stderr, "bench: out of memory\n");
			goto out;
		}
	}
	for (i = 0; i < row->conc; i++) {
		if (row->ops->open(&ws[i]) != 0) {
			fprintf(stderr, "bench: %s %s %s/%d: open: %s\n",
			    row->name, row->alg, row->transport, row->conc,
			    ws[i].err);
			goto out;
		}
		nopen++;
	}
	atomic_store(&phase, PH_WARM);
	pthread_barrier_init(&start_barrier, NULL, (unsigned)row->conc + 1);
	for (i = 0; i < row->conc; i++) {
		if (pthread_create(&th[i], NULL, worker_main, &ws[i]) != 0) {
			fprintf(stderr, "bench: pthread_create failed\n");
			/* the barrier would block: nothing to recover */
			exit(1);
		}
		nstarted++;
	}
	pthread_barrier_wait(&start_barrier);
	if (bench_p.smoke) {
		t0 = bench_now();
		for (i = 0; i < nstarted; i++) {
			pthread_join(th[i], NULL);
		}
		t1 = bench_now();
	} else {
		sleep_s(bench_p.warmup_s);
		t0 = bench_now();
		atomic_store(&phase, PH_MEASURE);
		sleep_s(bench_p.duration_s);
		atomic_store(&phase, PH_STOP);
		t1 = bench_now();
		for (i = 0; i < nstarted; i++) {
			pthread_join(th[i], NULL);
		}
	}
	nstarted = 0;
	pthread_barrier_destroy(&start_barrier);
	row->secs = t1 - t0;
	row->requests = 0;
	for (i = 0; i < row->conc; i++) {
		if (ws[i].failed) {
			fprintf(stderr,
			    "bench: %s %s %s/%d: thread %d: "
			    "request failed: %s\n",
			    row->name, row->alg, row->transport, row->conc, i,
			    ws[i].err);
			goto out;
		}
		row->requests += ws[i].ops;
		nall += ws[i].nlat;
	}
	row->ops_per_s = (double)row->requests * row->items / row->secs;
	if ((all = malloc((nall + 1) * sizeof(uint32_t))) == NULL) {
		goto out;
	}
	nall = 0;
	for (i = 0; i < row->conc; i++) {
		memcpy(all + nall, ws[i].lat, ws[i].nlat * sizeof(uint32_t));
		nall += ws[i].nlat;
	}
	qsort(all, nall, sizeof(uint32_t), cmp_u32);
	row->p50_us = pct(all, nall, 0.50);
	row->p99_us = pct(all, nall, 0.99);
	row->p999_us = pct(all, nall, 0.999);
	if ((bad = check_samples(row, ws, row->conc)) != 0) {
		fprintf(stderr,
		    "bench: %s %s %s/%d: %zu of %zu signatures "
		    "do not verify\n",
		    row->name, row->alg, row->transport, row->conc, bad,
		    row->checked);
		goto out;
	}
	if (row->requests == 0) {
		fprintf(stderr, "bench: %s %s %s/%d: no request completed\n",
		    row->name, row->alg, row->transport, row->conc);
		goto out;
	}
	r = 0;
out:
	if (nstarted > 0) {
		atomic_store(&phase, PH_STOP);
		for (i = 0; i < nstarted; i++) {
			pthread_join(th[i], NULL);
		}
	}
	if (ws != NULL) {
		for (i = 0; i < nopen; i++) {
			row->ops->close(&ws[i]);
		}
		for (i = 0; i < row->conc; i++) {
			free(ws[i].lat);
			free(ws[i].samples);
		}
	}
	free(ws);
	free(all);
	return r;
}
