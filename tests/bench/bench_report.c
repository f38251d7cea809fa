/*
 * bench_report.c: hsmkey-bench's report (see bench.c): each row's ratio,
 * the targets, the text table on stdout and the JSON file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"

static void
compute_ratios(void)
{
	struct bench_row *r, *ref;
	int		  i, c;

	for (i = 0; i < bench_nrows; i++) {
		r = &bench_rows[i];
		ref = NULL;
		if (!r->supported || r->requests == 0) {
			continue;
		}
		c = r->conc < 2 ? r->conc : 2;
		if (strcmp(r->name, "ping") == 0) {
			ref =
			    bench_find_row("echo", "-", r->transport, r->conc);
		} else if (strcmp(r->name, "echo") != 0 &&
		    strcmp(r->name, "raw") != 0) {
			ref = bench_find_row("raw", r->alg, "in-process", c);
		}
		if (ref != NULL) {
			snprintf(r->ref, sizeof(r->ref), "%.20s/%.12s/%d",
			    ref->name, ref->transport, ref->conc);
			r->ratio = r->ops_per_s / ref->ops_per_s;
		}
	}
}

struct target {
	char   what[160];
	double measured; /* the ratio or value */
	double want;
	int    le;    /* pass when measured <= want */
	int    known; /* 0: could not be measured */
	char   unit[8];
};
static struct target targets[64];
static int	     ntargets;

static void
target(int known, double measured, double want, int le, const char *unit,
    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void
target(int known, double measured, double want, int le, const char *unit,
    const char *fmt, ...)
{
	struct target *t;
	va_list	       ap;

	if (ntargets == (int)(sizeof(targets) / sizeof(targets[0]))) {
		return;
	}
	t = &targets[ntargets++];
	va_start(ap, fmt);
	vsnprintf(t->what, sizeof(t->what), fmt, ap);
	va_end(ap);
	t->known = known;
	t->measured = measured;
	t->want = want;
	t->le = le;
	snprintf(t->unit, sizeof(t->unit), "%s", unit);
}

static const char *
verdict(const struct target *t)
{
	if (!t->known) {
		return "n/a";
	}
	if (t->le) {
		return t->measured <= t->want ? "PASS" : "MISS";
	}
	return t->measured >= t->want ? "PASS" : "MISS";
}

static void
compute_targets(void)
{
	const char	 *tr[2] = { "ipc", "tcp" };
	struct bench_row *a, *b, *raw2, *echo8, *p11;
	static const int  pc[3] = { 1, 2, 8 };
	double		  lim;
	int		  i, j, k;

	for (i = 0; i < 2; i++) {
		for (j = 0; j < 3; j++) {
			a = bench_find_row("ping", "-", tr[i], pc[j]);
			b = bench_find_row("echo", "-", tr[i], pc[j]);
			target(a && b,
			    a && b ? a->ops_per_s / b->ops_per_s : 0, 0.8, 0,
			    "x", "ping >= 0.8x echo, %s, %d clients", tr[i],
			    pc[j]);
		}
	}
	for (k = 0; k < BENCH_NKEYS; k++) {
		raw2 =
		    bench_find_row("raw", bench_alg_names[k], "in-process", 2);
		p11 =
		    bench_best_row("p11-kit-remote", bench_alg_names[k], NULL);
		for (i = 0; i < 2; i++) {
			a = bench_find_row(
			    "service", bench_alg_names[k], tr[i], 8);
			echo8 = bench_find_row("echo", "-", tr[i], 8);
			lim = raw2 && echo8 ? 1.0 /
				(1.0 / raw2->ops_per_s +
				    1.0 / echo8->ops_per_s)
					    : 0;
			target(a && lim > 0,
			    a && lim > 0 ? a->ops_per_s / lim : 0, 0.85, 0,
			    "x",
			    "%s sign, %s, 8 clients >= 0.85x pipeline limit "
			    "1/(1/raw2+1/echo8) = %.0f/s",
			    bench_alg_names[k], tr[i], lim);
			if (p11 != NULL) {
				target(a != NULL,
				    a ? a->ops_per_s / p11->ops_per_s : 0, 1.3,
				    0, "x",
				    "%s sign, %s, 8 clients >= 1.3x "
				    "p11-kit-remote at its best (%d threads, "
				    "%.0f/s)",
				    bench_alg_names[k], tr[i], p11->conc,
				    p11->ops_per_s);
			} else {
				target(0, 0, 1.3, 0, "x",
				    "%s sign, %s, 8 clients >= 1.3x "
				    "p11-kit-remote (p11-kit: unsupported)",
				    bench_alg_names[k], tr[i]);
			}
		}
	}
	raw2 = bench_find_row("raw", "ecdsa-p256", "in-process", 2);
	for (i = 0; i < 2; i++) {
		a = bench_best_row("batch100", "ecdsa-p256", tr[i]);
		target(a && raw2,
		    a && raw2 ? a->ops_per_s / raw2->ops_per_s : 0, 0.85, 0,
		    "x",
		    "batch of 100 digests, %s, best (%d "
		    "clients), items/s >= 0.85x raw2",
		    tr[i], a ? a->conc : 0);
	}
	for (k = 0; k < BENCH_NKEYS; k++) {
		for (i = 0; i < 2; i++) {
			a = bench_find_row(
			    "service", bench_alg_names[k], tr[i], 8);
			target(a != NULL,
			    a && a->p50_us > 0 ? a->p99_us / a->p50_us : 0, 3,
			    0, "x",
			    "%s sign, %s, 8 clients: "
			    "p99 < 3x p50",
			    bench_alg_names[k], tr[i]);
			targets[ntargets - 1].le = 1;
		}
	}
	if (bench_res.from_fixture) {
		target(bench_res.done10k,
		    bench_res.few_ops > 0
			? bench_res.many_ops / bench_res.few_ops
			: 0,
		    0.95, 0, "x",
		    "sign with %d key versions >= 0.95x a few-key token "
		    "(ecdsa-p256, ipc, 8 clients, means of %d interleaved "
		    "rows each)",
		    bench_res.versions, BENCH_FIX_ROUNDS);
	} else {
		a = bench_find_row("service-many", "ecdsa-p256", "ipc", 0);
		b = a ? bench_find_row("service", "ecdsa-p256", "ipc", a->conc)
		      : NULL;
		target(a && b, a && b ? a->ops_per_s / b->ops_per_s : 0, 0.95,
		    0, "x",
		    "sign with %d key versions >= 0.95x a few-key token "
		    "(ecdsa-p256, ipc, %d clients)",
		    bench_res.versions, a ? a->conc : 0);
	}
	target(bench_res.done10k, bench_res.startup2_s, 5, 1, "s",
	    "hsmkeyd start-up with %d key versions < 5 s", bench_res.versions);
	target(bench_res.done10k, bench_res.hwm2_kib / 1024.0, 64, 1, "MiB",
	    "hsmkeyd peak RSS (VmHWM) with %d key versions < 64 MiB",
	    bench_res.versions);
}

void
bench_machine(char *cpu, size_t cpulen, long *ncpu)
{
	char  line[512], *p;
	FILE *f;

	snprintf(cpu, cpulen, "unknown");
	*ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if ((f = fopen("/proc/cpuinfo", "r")) == NULL) {
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "model name", 10) == 0 &&
		    (p = strchr(line, ':')) != NULL) {
			p++;
			while (*p == ' ' || *p == '\t') {
				p++;
			}
			p[strcspn(p, "\n")] = '\0';
			snprintf(cpu, cpulen, "%s", p);
			break;
		}
	}
	fclose(f);
}

static void
print_text(const char *cpu, long ncpu)
{
	struct utsname u;
	int	       i;

	uname(&u);
	printf("hsmkey-bench%s: %ld cores, %s, %s %s\n",
	    bench_p.smoke ? " (smoke: correctness only, numbers meaningless)"
			  : "",
	    ncpu, cpu, u.sysname, u.release);
	if (bench_p.smoke) {
		printf("%d requests per thread per row\n", bench_p.smoke_ops);
	} else {
		printf(
		    "%.1f s per row after %.1f s warm-up; hsmkeyd workers = "
		    "%s; sign request %zu bytes\n",
		    bench_p.duration_s, bench_p.warmup_s,
		    bench_opt.slow_rounds > 0 ? "the default" : "2",
		    bench_res.echo_len);
	}
	printf("\n%-15s %-10s %-10s %4s %10s %9s %9s %9s %6s  %s\n", "row",
	    "alg", "transport", "conc", "ops/s", "p50 us", "p99 us",
	    "p99.9 us", "ratio", "vs");
	for (i = 0; i < bench_nrows; i++) {
		const struct bench_row *r = &bench_rows[i];

		if (!r->supported) {
			printf("%-15s %-10s %-10s %4d %s\n", r->name, r->alg,
			    r->transport, r->conc, r->note);
			continue;
		}
		printf("%-15s %-10s %-10s %4d %10.0f %9.1f %9.1f %9.1f ",
		    r->name, r->alg, r->transport, r->conc, r->ops_per_s,
		    r->p50_us, r->p99_us, r->p999_us);
		if (r->ref[0] != '\0') {
			printf("%6.2f  %s", r->ratio, r->ref);
		} else {
			printf("%6s", "-");
		}
		if (r->lat_truncated) {
			printf(" (latencies truncated)");
		}
		printf("\n");
	}
	printf("\nops/s: signatures per second (batch100: items, %d per "
	       "request; latency per request).\n",
	    BENCH_BATCH);
	bench_slow_print();
	if (bench_opt.slow_rounds > 0) {
		goto total; /* --slow-hsm: none of the rest was run */
	}
	printf("ratio: vs the raw row of the same algorithm at min(conc, 2) "
	       "threads; ping vs echo at the same concurrency.\n");
	if (bench_res.from_fixture) {
		printf("\nhsmkeyd: start-up %.3f s on the few-key token; peak "
		       "RSS (VmHWM) %.1f MiB after its rows\n",
		    bench_res.startup1_s, bench_res.hwm1_kib / 1024.0);
	} else {
		printf("\nhsmkeyd: start-up %.3f s on the few-key token; peak "
		       "RSS (VmHWM) %.1f MiB after the main rows, %.1f MiB "
		       "after making the versions\n",
		    bench_res.startup1_s, bench_res.hwm1_kib / 1024.0,
		    bench_res.hwm_bulk_kib / 1024.0);
	}
	if (bench_res.from_fixture) {
		printf("versions: %d key versions (%d keys) in a copy of the "
		       "fixture made once by scripts/bench --prepare (copied "
		       "in %.1f s)\n",
		    bench_res.versions, bench_res.fixture_keys,
		    bench_opt.fixture_copy_s);
		printf("          hsmkeyd on it: ready in %.3f s, VmRSS %.1f "
		       "MiB (VmHWM %.1f) at ready; after the sign rows VmHWM "
		       "%.1f MiB, VmRSS %.1f MiB\n",
		    bench_res.startup2_s, bench_res.rss2_ready_kib / 1024.0,
		    bench_res.hwm2_ready_kib / 1024.0,
		    bench_res.hwm2_kib / 1024.0, bench_res.rss2_kib / 1024.0);
		printf(
		    "          ecdsa-p256 sign, ipc, 8 clients: %.0f/s with "
		    "%d versions vs %.0f/s on the few-key token (%.3fx), "
		    "means of %d interleaved rows each\n",
		    bench_res.many_ops, bench_res.versions, bench_res.few_ops,
		    bench_res.few_ops > 0
			? bench_res.many_ops / bench_res.few_ops
			: 0,
		    BENCH_FIX_ROUNDS);
	} else {
		printf("versions: %d key versions (%d keys) made through the "
		       "service in %.1f s (%.1f/s)%s%s\n",
		    bench_res.versions, bench_res.keys_made, bench_res.bulk_s,
		    bench_res.bulk_s > 0
			? bench_res.versions / bench_res.bulk_s
			: 0,
		    bench_res.bulk_note[0] ? "; " : "", bench_res.bulk_note);
		printf("          restart: ready in %.3f s, VmRSS %.1f MiB at "
		       "ready; after the sign row VmHWM %.1f MiB, VmRSS %.1f "
		       "MiB\n",
		    bench_res.startup2_s, bench_res.rss2_ready_kib / 1024.0,
		    bench_res.hwm2_kib / 1024.0, bench_res.rss2_kib / 1024.0);
		if (!bench_p.smoke) {
			printf("          run scripts/bench --prepare for the "
			       "10,000-version row\n");
		}
	}
	printf("\ntargets (issue 5):%s\n",
	    bench_p.smoke ? " not evaluated in smoke mode" : "");
	for (i = 0; i < ntargets && !bench_p.smoke; i++) {
		const struct target *t = &targets[i];

		if (t->known) {
			printf("  %-4s %7.2f%-3s (want %s %.2f)  %s\n",
			    verdict(t), t->measured, t->unit,
			    t->le ? "<" : ">=", t->want, t->what);
		} else {
			printf("  %-4s %10s (want %s %.2f)  %s\n", verdict(t),
			    "-", t->le ? "<" : ">=", t->want, t->what);
		}
	}
total:
	printf("total %.1f s\n", bench_now() - bench_t_start);
	printf("\nresult: %s\n",
	    bench_failed ? "FAILED (a request failed or a "
			   "signature did not verify)"
			 : "every request succeeded, every "
			   "checked signature verified");
}

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\') {
			fprintf(f, "\\%c", *s);
		} else if ((unsigned char)*s < 0x20) {
			fprintf(f, "\\u%04x", (unsigned char)*s);
		} else {
			fputc(*s, f);
		}
	}
	fputc('"', f);
}

static int
write_json(const char *path, const char *cpu, long ncpu)
{
	FILE *f;
	int   i;

	if ((f = fopen(path, "w")) == NULL) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "{\n  \"machine\": {\"cores\": %ld, \"cpu\": ", ncpu);
	json_str(f, cpu);
	fprintf(f,
	    "},\n  \"smoke\": %s,\n  \"duration_s\": %.3f,\n"
	    "  \"warmup_s\": %.3f,\n  \"sign_request_bytes\": %zu,\n"
	    "  \"ok\": %s,\n  \"rows\": [\n",
	    bench_p.smoke ? "true" : "false", bench_p.duration_s,
	    bench_p.warmup_s, bench_res.echo_len,
	    bench_failed ? "false" : "true");
	for (i = 0; i < bench_nrows; i++) {
		const struct bench_row *r = &bench_rows[i];

		fprintf(f, "    {\"row\": ");
		json_str(f, r->name);
		fprintf(f, ", \"alg\": ");
		json_str(f, r->alg);
		fprintf(f, ", \"transport\": ");
		json_str(f, r->transport);
		fprintf(f,
		    ", \"concurrency\": %d, \"items_per_request\": %d, "
		    "\"supported\": %s",
		    r->conc, r->items, r->supported ? "true" : "false");
		if (r->supported) {
			fprintf(f,
			    ", \"ops_per_s\": %.1f, \"requests\": %llu, "
			    "\"seconds\": %.3f, \"p50_us\": %.1f, "
			    "\"p99_us\": %.1f, \"p999_us\": %.1f, "
			    "\"signatures_checked\": %zu",
			    r->ops_per_s, (unsigned long long)r->requests,
			    r->secs, r->p50_us, r->p99_us, r->p999_us,
			    r->checked);
			if (r->ref[0] != '\0') {
				fprintf(f,
				    ", \"ratio\": %.3f, \"vs\": ", r->ratio);
				json_str(f, r->ref);
			}
		} else {
			fprintf(f, ", \"note\": ");
			json_str(f, r->note);
		}
		fprintf(f, "}%s\n", i + 1 < bench_nrows ? "," : "");
	}
	fprintf(f, "  ],\n");
	bench_slow_json(f);
	fprintf(f,
	    "  \"hsmkeyd\": {\"startup_s\": %.3f, "
	    "\"peak_rss_kib\": %ld, \"peak_rss_after_bulk_kib\": %ld},\n",
	    bench_res.startup1_s, bench_res.hwm1_kib, bench_res.hwm_bulk_kib);
	fprintf(f,
	    "  \"many_versions\": {\"wanted\": %d, \"versions\": %d, "
	    "\"keys\": %d, \"create_s\": %.3f, \"startup_s\": %.3f, "
	    "\"rss_at_ready_kib\": %ld, \"peak_rss_kib\": %ld, "
	    "\"rss_kib\": %ld, \"source\": \"%s\", "
	    "\"fixture_copy_s\": %.3f, \"peak_rss_at_ready_kib\": %ld, "
	    "\"sign_ops_per_s\": %.1f, \"few_key_sign_ops_per_s\": %.1f, "
	    "\"note\": ",
	    bench_res.want_versions, bench_res.versions, bench_res.keys_made,
	    bench_res.bulk_s, bench_res.startup2_s, bench_res.rss2_ready_kib,
	    bench_res.hwm2_kib, bench_res.rss2_kib,
	    bench_res.from_fixture ? "fixture" : "service",
	    bench_opt.fixture_copy_s, bench_res.hwm2_ready_kib,
	    bench_res.many_ops, bench_res.few_ops);
	json_str(f, bench_res.bulk_note);
	fprintf(f, "},\n  \"targets\": [\n");
	for (i = 0; i < ntargets; i++) {
		const struct target *t = &targets[i];

		fprintf(f, "    {\"target\": ");
		json_str(f, t->what);
		fprintf(f,
		    ", \"measured\": %.4f, \"want\": %.2f, "
		    "\"compare\": \"%s\", \"unit\": \"%s\", \"result\": "
		    "\"%s\"}%s\n",
		    t->measured, t->want, t->le ? "<" : ">=", t->unit,
		    verdict(t), i + 1 < ntargets ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
	if (fclose(f) != 0) {
		fprintf(stderr, "bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
bench_report(const char *cpu, long ncpu, const char *json)
{
	compute_ratios();
	compute_targets();
	print_text(cpu, ncpu);
	if (json != NULL && write_json(json, cpu, ncpu) != 0) {
		return -1;
	}
	return 0;
}
