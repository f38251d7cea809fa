/*
 * bench_slow.c: the slow-HSM rows of hsmkey-bench (issue 11, "sized for
 * real HSMs"; see bench.c).  A second hsmkeyd with the default [service]
 * workers and [pkcs11] max_parallel runs on the fault-injecting module
 * (tests/faultp11) around the same token; the module's control file
 * models a network HSM: `limit C_Sign 16` and `delay C_Sign 0, 1 or 5
 * ms`, a capacity of 16 / delay signatures per second.  64 clients sign
 * ecdsa-p256 digests over ipc.  A third hsmkeyd with max_parallel = 0 (no
 * gate) gives the 0 ms row's control: what the gate costs.
 *
 * The rows are interleaved and repeated (A D B C, C B D A, ...) because a
 * shared machine drifts by tens of percent from minute to minute; the
 * summary gives each row's median, min and max over the rounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define SLOW_MAXROUNDS 32
#define SLOW_LIMIT     16 /* calls in the modelled HSM at once */

/* The kinds of row, in the order of an even round. */
static const struct slow_kind {
	const char *name;
	int	    delay_ms;
	int	    gate; /* 0: the no-gate daemon */
} kinds[] = {
	{ "slow-0ms", 0, 1 },
	{ "slow-0ms-nogate", 0, 0 },
	{ "slow-1ms", 1, 1 },
	{ "slow-5ms", 5, 1 },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Each kind's figures, one per round. */
static struct {
	double ops[SLOW_MAXROUNDS], p50[SLOW_MAXROUNDS], p99[SLOW_MAXROUNDS];
	int    n;
} got[NKINDS];
static int slow_rounds, slow_conc;

static struct bench_daemon gated, nogate;

/* Replaces the module's control file as the tests do (temp + rename). */
static int
write_control(int delay_ms)
{
	char  tmp[600];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", bench_opt.slow_control);
	if ((f = fopen(tmp, "w")) == NULL) {
		return -1;
	}
	fprintf(
	    f, "# hsmkey-bench: a network HSM\nlimit C_Sign %d\n", SLOW_LIMIT);
	if (delay_ms > 0) {
		fprintf(f, "delay C_Sign %dms\n", delay_ms);
	}
	if (fclose(f) != 0 || rename(tmp, bench_opt.slow_control) != 0) {
		return -1;
	}
	return 0;
}

static int
start_daemons(void)
{
	char **envp, *made = NULL;
	int    r;

	if (write_control(0) != 0 ||
	    (envp = bench_env_with(
		 "FAULTP11_CONTROL", bench_opt.slow_control, &made)) == NULL) {
		fprintf(stderr, "bench: cannot write %s\n",
		    bench_opt.slow_control);
		return -1;
	}
	r = bench_daemon_start_env(&gated, bench_opt.hsmkeyd,
	    bench_opt.slow_conf, bench_opt.dir, "hsmkeyd-slow", envp, 60);
	if (r == 0) {
		r = bench_daemon_start_env(&nogate, bench_opt.hsmkeyd,
		    bench_opt.nogate_conf, bench_opt.dir, "hsmkeyd-nogate",
		    envp, 60);
	}
	free(envp);
	free(made);
	return r;
}

/* One row of kind k; 0 or -1. */
static int
run_kind(size_t k)
{
	static struct bench_svc_arg sa[2];
	struct bench_row	   *r;
	int			    g = kinds[k].gate;

	if (write_control(kinds[k].delay_ms) != 0) {
		fprintf(stderr, "bench: cannot write %s\n",
		    bench_opt.slow_control);
		return -1;
	}
	sa[g].ks = &bench_keys[BENCH_K_EC];
	sa[g].url = g ? bench_opt.slow_ipc : bench_opt.nogate_ipc;
	r = bench_row_new(kinds[k].name, "ecdsa-p256", "ipc", slow_conc);
	r->ops = &bench_sign_ops;
	r->arg = &sa[g];
	r->valg = BENCH_ALG_ECDSA;
	if (bench_run(r) != 0) {
		return -1;
	}
	if (got[k].n < SLOW_MAXROUNDS) {
		got[k].ops[got[k].n] = r->ops_per_s;
		got[k].p50[got[k].n] = r->p50_us;
		got[k].p99[got[k].n] = r->p99_us;
		got[k].n++;
	}
	return 0;
}

void
bench_section_slow(int rounds)
{
	size_t i, k;
	int    st;

	slow_rounds = rounds < SLOW_MAXROUNDS ? rounds : SLOW_MAXROUNDS;
	slow_conc = bench_p.smoke ? 16 : 64;
	memset(got, 0, sizeof(got));
	fprintf(stderr,
	    "bench: slow HSM (faultp11: limit C_Sign %d, delay 0/1/5 ms), "
	    "%d clients, %d rounds\n",
	    SLOW_LIMIT, slow_conc, slow_rounds);
	if (start_daemons() != 0) {
		bench_failed = 1;
		goto stop;
	}
	for (i = 0; i < (size_t)slow_rounds && !bench_failed; i++) {
		for (k = 0; k < NKINDS && !bench_failed; k++) {
			/* A D B C, then C B D A: both ends see the drift */
			run_kind(i % 2 == 0 ? k : NKINDS - 1 - k);
		}
	}
	write_control(0);
stop:
	if (gated.pid > 0 && (st = bench_daemon_stop(&gated)) != 0) {
		fprintf(stderr, "bench: hsmkeyd-slow exited %d\n", st);
		bench_failed = 1;
	}
	if (nogate.pid > 0 && (st = bench_daemon_stop(&nogate)) != 0) {
		fprintf(stderr, "bench: hsmkeyd-nogate exited %d\n", st);
		bench_failed = 1;
	}
}

/* ---- the summary */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median, min and max of n values (n > 0). */
static void
spread(const double *v, int n, double *med, double *lo, double *hi)
{
	double s[SLOW_MAXROUNDS];

	memcpy(s, v, (size_t)n * sizeof(*s));
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	*med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	*lo = s[0];
	*hi = s[n - 1];
}

/* One kind's medians: ops/s, p50, p99 and the median p99/p50. */
struct slow_sum {
	double ops, lo, hi, p50, p99, tail, cap;
};

static int
summarise(size_t k, struct slow_sum *s)
{
	double ratio[SLOW_MAXROUNDS], x, y;
	int    i, n = got[k].n;

	memset(s, 0, sizeof(*s));
	if (n == 0) {
		return -1;
	}
	for (i = 0; i < n; i++) {
		ratio[i] =
		    got[k].p50[i] > 0 ? got[k].p99[i] / got[k].p50[i] : 0;
	}
	spread(got[k].ops, n, &s->ops, &s->lo, &s->hi);
	spread(got[k].p50, n, &s->p50, &x, &y);
	spread(got[k].p99, n, &s->p99, &x, &y);
	spread(ratio, n, &s->tail, &x, &y);
	s->cap = kinds[k].delay_ms > 0
	    ? SLOW_LIMIT * 1000.0 / kinds[k].delay_ms
	    : 0;
	return 0;
}

/*
 * The gate's cost at 0 ms: the median over the rounds of gate / no gate,
 * each pair measured next to each other in its round (the machine drifts
 * more between rounds than between neighbours).  0 or -1 (no pair).
 */
static int
gate_cost(double *med, double *lo, double *hi)
{
	double r[SLOW_MAXROUNDS];
	int    i, n = got[0].n < got[1].n ? got[0].n : got[1].n;

	for (i = 0; i < n; i++) {
		r[i] = got[1].ops[i] > 0 ? got[0].ops[i] / got[1].ops[i] : 0;
	}
	if (n == 0) {
		return -1;
	}
	spread(r, n, med, lo, hi);
	return 0;
}

void
bench_slow_print(void)
{
	struct slow_sum s, g0, n0;
	double		ratio, lo, hi;
	size_t		k;

	if (slow_rounds == 0) {
		return;
	}
	printf("\nslow HSM (issue 11): hsmkeyd with the default workers and "
	       "[pkcs11] max_parallel on faultp11 (limit C_Sign %d), %d "
	       "clients, ecdsa-p256, ipc; medians of %d interleaved rounds\n",
	    SLOW_LIMIT, slow_conc, slow_rounds);
	printf("%-16s %9s %19s %9s %6s %9s %9s %7s\n", "row", "ops/s",
	    "min..max", "capacity", "of it", "p50 us", "p99 us", "p99/p50");
	for (k = 0; k < NKINDS; k++) {
		if (summarise(k, &s) != 0) {
			continue;
		}
		printf("%-16s %9.0f %9.0f..%-9.0f ", kinds[k].name, s.ops,
		    s.lo, s.hi);
		if (s.cap > 0) {
			printf("%9.0f %5.0f%% ", s.cap, 100 * s.ops / s.cap);
		} else {
			printf("%9s %6s ", "-", "-");
		}
		printf("%9.1f %9.1f %7.2f\n", s.p50, s.p99, s.tail);
	}
	if (bench_p.smoke) {
		printf("(smoke: not evaluated)\n");
		return;
	}
	for (k = 0; k < NKINDS; k++) {
		if (kinds[k].delay_ms == 0 || summarise(k, &s) != 0) {
			continue;
		}
		printf("  %-4s %6.0f%% of capacity (want >= 80%%)  %s\n",
		    s.ops >= 0.8 * s.cap ? "PASS" : "MISS",
		    100 * s.ops / s.cap, kinds[k].name);
		printf("  %-4s %6.2fx     p99/p50 (want < 3)      %s\n",
		    s.tail < 3 ? "PASS" : "MISS", s.tail, kinds[k].name);
	}
	if (summarise(0, &g0) == 0 && summarise(2, &s) == 0 && g0.ops > 0 &&
	    s.ops < 0.8 * s.cap) {
		printf(
		    "  note: slow-1ms signs %.0f%% as fast as the 0 ms row: "
		    "its capacity (%.0f/s) is beyond what this machine "
		    "signs at all\n",
		    100 * s.ops / g0.ops, s.cap);
	}
	if (gate_cost(&ratio, &lo, &hi) == 0 && summarise(0, &g0) == 0 &&
	    summarise(1, &n0) == 0) {
		printf("  gate at 0 ms: %.3fx the throughput of no gate "
		       "(median of the %d adjacent pairs, %.3f..%.3f; "
		       "medians %.0f/s vs %.0f/s)\n",
		    ratio, got[0].n < got[1].n ? got[0].n : got[1].n, lo, hi,
		    g0.ops, n0.ops);
	}
}

void
bench_slow_json(FILE *f)
{
	struct slow_sum s;
	double		ratio, lo, hi;
	size_t		k;
	int		first = 1;

	fprintf(f,
	    "  \"slow_hsm\": {\"rounds\": %d, \"clients\": %d, "
	    "\"limit\": %d, \"rows\": [",
	    slow_rounds, slow_conc, SLOW_LIMIT);
	for (k = 0; k < NKINDS; k++) {
		if (summarise(k, &s) != 0) {
			continue;
		}
		fprintf(f,
		    "%s\n    {\"row\": \"%s\", \"delay_ms\": %d, \"gate\": "
		    "%s, "
		    "\"ops_per_s_median\": %.1f, \"ops_per_s_min\": %.1f, "
		    "\"ops_per_s_max\": %.1f, \"capacity\": %.1f, "
		    "\"p50_us_median\": %.1f, \"p99_us_median\": %.1f, "
		    "\"p99_over_p50_median\": %.3f}",
		    first ? "" : ",", kinds[k].name, kinds[k].delay_ms,
		    kinds[k].gate ? "true" : "false", s.ops, s.lo, s.hi, s.cap,
		    s.p50, s.p99, s.tail);
		first = 0;
	}
	fprintf(f, "]");
	if (gate_cost(&ratio, &lo, &hi) == 0) {
		fprintf(f,
		    ", \"gate_vs_nogate_0ms\": {\"median\": %.3f, "
		    "\"min\": %.3f, \"max\": %.3f}",
		    ratio, lo, hi);
	}
	fprintf(f, "},\n");
}
