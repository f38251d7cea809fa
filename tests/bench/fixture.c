/*
 * fixture.c: hsmkey-fixture fills a SoftHSM token with many key versions
 * for the many-versions rows of hsmkey-bench (issue 5), with the service's
 * own code: keyring_create() and keyring_rotate() of hsmkeyd_core, run in
 * this process, no hsmkeyd and no nanomsg.
 *
 *   hsmkey-fixture --module SOFTHSM --token URI --pin-file FILE --keys N
 *       [--versions V] [--first F] [--prefix P] [--alg ALG]
 *       [--threads T] [--report R] [--limit-s S]
 *   hsmkey-fixture --module SOFTHSM --token URI --pin-file FILE --load-only
 *
 * Makes keys P-<F>..P-<F+N-1> (P: "many", 5 digits) with V versions each
 * (default 4: created, then rotated V-1 times), ALG ecdsa-p256 by default.
 * It resumes: it first loads the keyring from the token as hsmkeyd does
 * (token_list + keyring_load, which also rolls back what a killed run left
 * half made), skips the keys that exist with V versions, rotates those with
 * fewer, and creates the rest.  So it can be stopped (SIGINT/SIGTERM: the
 * keys in hand are finished first, a SIGKILL is repaired by the next run)
 * and run again, or given --limit-s to build in pieces.
 *
 * T threads each have their own token session and their own struct keyring
 * (the keyring serialises admin operations on one mutex; each thread's
 * keys are disjoint, so separate keyrings lose nothing).  Session copies
 * are off: the fixture never signs.
 *
 * Every R versions it prints the time taken for those R, the rate and the
 * token's object count, so that the cost's growth with the object count
 * is visible.  Exit 0 when every key in the range has V versions.
 *
 * --load-only makes nothing: it loads the token as hsmkeyd's start does
 * (token_open, token_list, keyring_load with session copies) and prints
 * the time and the process's VmRSS after each step, to tell the token
 * module's share of hsmkeyd's start-up time and memory from the keyring's.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hk_err.h"
#include "keyring.h"
#include "log.h"
#include "token.h"
#include "wire.h"
#include "testclock.h"
#include "testproc.h"

#define FIX_MAXTHREADS 16

static struct {
	const char *module;
	const char *uri;
	const char *pin_file;
	const char *prefix;
	hk_alg	    alg;
	int	    nkeys, first, versions, threads, report;
	double	    limit_s;
	int	    load_only;
} opt = {
	.prefix = "many",
	.alg = HK_ALG_ECDSA_P256,
	.versions = 4,
	.threads = 1,
	.report = 500,
};

static struct token	    *tok;
static char		     instance[256];
static volatile sig_atomic_t stop;
static double		     t_start;

/* The work: key numbers to create, taken in order by the threads. */
static int	 *todo;
static int	  ntodo;
static atomic_int next_todo;
static atomic_int made_versions, made_keys;
static atomic_int failed;
static atomic_int running; /* threads still working */

struct fix_thread {
	pthread_t	      th;
	int		      idx;
	struct token_session *s;
	struct keyring	     *kr;
	char		      err[256];
};

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int
out_of_time(void)
{
	return stop || atomic_load(&failed) ||
	    (opt.limit_s > 0 && hk_now_s() - t_start >= opt.limit_s);
}

static void
key_name(char *buf, size_t len, int n)
{
	snprintf(buf, len, "%s-%05d", opt.prefix, n);
}

/* Rotates key name from version have to opt.versions. */
static int
finish_key(struct keyring *kr, struct token_session *s, const char *name,
    uint32_t have, char *err, size_t errlen)
{
	uint32_t v, got;
	int	 r;

	for (v = have; v < (uint32_t)opt.versions; v++) {
		if ((r = keyring_rotate(kr, s, name, v, 0, &got)) != 0) {
			snprintf(err, errlen, "rotate %s v%" PRIu32 ": %s",
			    name, v, hk_strerror(r));
			return r;
		}
		atomic_fetch_add(&made_versions, 1);
	}
	return 0;
}

static void *
thread_main(void *arg)
{
	struct fix_thread *t = arg;
	char		   name[80];
	int		   i, r;

	while (
	    !out_of_time() && (i = atomic_fetch_add(&next_todo, 1)) < ntodo) {
		key_name(name, sizeof(name), todo[i]);
		if ((r = keyring_create(t->kr, t->s, name, opt.alg)) != 0) {
			snprintf(t->err, sizeof(t->err), "create %s: %s", name,
			    hk_strerror(r));
			atomic_store(&failed, 1);
			break;
		}
		atomic_fetch_add(&made_versions, 1);
		/* a started key is finished even when asked to stop */
		if (finish_key(t->kr, t->s, name, 1, t->err, sizeof(t->err)) !=
		    0) {
			atomic_store(&failed, 1);
			break;
		}
		atomic_fetch_add(&made_keys, 1);
	}
	atomic_fetch_sub(&running, 1);
	return NULL;
}

/* ---- loading the token as hsmkeyd does (service/server.c) */

/*
 * hsmkeyd's defaults (service/config.c: [keys] destroy_delay 7 days,
 * verify_grace 30 days), so that the fixture's versions are in the states
 * a default service gives them: v<V> active, older ones verify-only until
 * 30 days after their rotation.  (A grace of 0 would leave every retired
 * version due for a state change at hsmkeyd's first tick.)
 */
static void
init_opts(struct keyring_opts *ko)
{
	memset(ko, 0, sizeof(*ko));
	ko->destroy_delay_s = 7 * 86400;
	ko->default_verify_grace_s = 30 * 86400;
	ko->instance = instance;
	ko->no_session_copies = 1;
}

static void
step(const char *what, double *t)
{
	double n = hk_now_s();

	fprintf(stderr, "load: %-34s %6.2f s  VmRSS %7.1f MiB\n", what, n - *t,
	    hk_test_status_kib("VmRSS:") / 1024.0);
	*t = n;
}

/* hsmkeyd's start (service/server.c server_open), step by step. */
static int
load_only(void)
{
	struct token_object  *objs = NULL;
	size_t		      nobjs = 0;
	struct token_session *s = NULL;
	struct keyring	     *kr = NULL;
	struct keyring_opts   ko;
	double		      t = hk_now_s();
	int		      r;

	step("start", &t);
	if ((r = token_open(&tok, opt.module, NULL, opt.uri, opt.pin_file)) !=
		0 ||
	    (r = token_session_open(tok, &s)) != 0) {
		fprintf(stderr, "load: token: %s\n", hk_strerror(r));
		goto out;
	}
	step("token_open (C_Initialize, C_Login)", &t);
	if ((r = token_list_all(s, "hsmkey", SIZE_MAX, &objs, &nobjs)) != 0) {
		fprintf(stderr, "load: token_list: %s\n", hk_strerror(r));
		goto out;
	}
	fprintf(stderr, "load: %zu objects\n", nobjs);
	step("token_list", &t);
	init_opts(&ko);
	ko.no_session_copies = 1;
	if ((r = keyring_load(&kr, tok, s, objs, nobjs, &ko)) != 0) {
		fprintf(stderr, "load: keyring_load: %s\n", hk_strerror(r));
		goto out;
	}
	step("keyring_load, no session copies", &t);
	keyring_free(kr);
	kr = NULL;
	step("keyring_free", &t);
	ko.no_session_copies = 0;
	if ((r = keyring_load(&kr, tok, s, objs, nobjs, &ko)) != 0) {
		fprintf(stderr, "load: keyring_load: %s\n", hk_strerror(r));
		goto out;
	}
	step("keyring_load again, session copies", &t);
out:
	keyring_free(kr);
	free(objs);
	token_session_close(s);
	step("keyring_free, C_CloseSession", &t);
	token_close(tok);
	tok = NULL;
	step("token_close (C_Finalize)", &t);
	return r == 0 ? 0 : 1;
}

/* Loads the whole keyring (repairing) and counts the token's objects. */
static int
load_all(struct token_session *s, struct keyring **krp, size_t *nobjsp)
{
	struct token_object *objs = NULL;
	struct keyring_opts  ko;
	int		     r;

	*krp = NULL;
	*nobjsp = 0;
	if ((r = token_list_all(s, "hsmkey", SIZE_MAX, &objs, nobjsp)) != 0) {
		fprintf(stderr, "fixture: token_list: %s\n", hk_strerror(r));
		free(objs);
		*nobjsp = 0;
		return r;
	}
	init_opts(&ko);
	if ((r = keyring_load(krp, tok, s, objs, *nobjsp, &ko)) != 0) {
		fprintf(stderr, "fixture: keyring_load: %s\n", hk_strerror(r));
	}
	free(objs);
	return r;
}

/* Versions of key name in kr (0: no such key). */
static uint32_t
versions_of(struct keyring *kr, const char *name)
{
	struct keyring_info info;
	uint32_t	    n = 0;

	if (keyring_info(kr, name, &info) == 0) {
		n = (uint32_t)info.nversions;
	}
	keyring_info_clear(&info);
	return n;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: hsmkey-fixture --module SOFTHSM --token URI --pin-file "
	    "FILE --keys N\n"
	    "           [--versions V] [--first F] [--prefix P] [--alg ALG]\n"
	    "           [--threads T] [--report R] [--limit-s S]\n"
	    "       hsmkey-fixture --module SOFTHSM --token URI --pin-file "
	    "FILE --load-only\n");
	exit(2);
}

static int
num_arg(const char *s, long lo, long hi)
{
	long v;

	if (hk_test_parse_long(s, lo, hi, &v) != 0) {
		usage();
	}
	return (int)v;
}

int
main(int argc, char **argv)
{
	struct fix_thread     th[FIX_MAXTHREADS];
	struct token_session *s0 = NULL;
	struct keyring	     *kr = NULL;
	struct keyring_opts   ko;
	char		      host[HOST_NAME_MAX + 1], name[80], err[256];
	double		      t_last, t0;
	size_t		      nobjs = 0;
	uint32_t	      have, keys_total, vers_total;
	int		      i, r, nstarted = 0, last, skipped = 0;
	int		      partial = 0, rc = 1;

	memset(th, 0, sizeof(th));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 == argc && strcmp(a, "--load-only") != 0) {
			usage();
		}
		if (strcmp(a, "--load-only") == 0) {
			opt.load_only = 1;
		} else if (strcmp(a, "--module") == 0) {
			opt.module = argv[++i];
		} else if (strcmp(a, "--token") == 0) {
			opt.uri = argv[++i];
		} else if (strcmp(a, "--pin-file") == 0) {
			opt.pin_file = argv[++i];
		} else if (strcmp(a, "--prefix") == 0) {
			opt.prefix = argv[++i];
		} else if (strcmp(a, "--alg") == 0) {
			if (hk_alg_parse(argv[++i], &opt.alg) != 0) {
				usage();
			}
		} else if (strcmp(a, "--keys") == 0) {
			opt.nkeys = num_arg(argv[++i], 1, 99999);
		} else if (strcmp(a, "--first") == 0) {
			opt.first = num_arg(argv[++i], 0, 99999);
		} else if (strcmp(a, "--versions") == 0) {
			opt.versions = num_arg(argv[++i], 1, 1000);
		} else if (strcmp(a, "--threads") == 0) {
			opt.threads = num_arg(argv[++i], 1, FIX_MAXTHREADS);
		} else if (strcmp(a, "--report") == 0) {
			opt.report = num_arg(argv[++i], 1, 1000000);
		} else if (strcmp(a, "--limit-s") == 0) {
			opt.limit_s = num_arg(argv[++i], 1, 1000000);
		} else {
			usage();
		}
	}
	if (opt.module == NULL || opt.uri == NULL || opt.pin_file == NULL ||
	    (!opt.load_only &&
		(opt.nkeys == 0 || opt.first + opt.nkeys > 100000))) {
		usage();
	}
	hk_log_init("hsmkey-fixture", 0, HK_LOG_WARN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (gethostname(host, sizeof(host)) != 0) {
		snprintf(host, sizeof(host), "localhost");
	}
	host[sizeof(host) - 1] = '\0';
	t_start = hk_now_s();
	if (opt.load_only) {
		snprintf(instance, sizeof(instance), "%s/%ld/%.0f", host,
		    (long)getpid(), (double)time(NULL) * 1000);
		return load_only();
	}
	snprintf(instance, sizeof(instance), "%s/%ld/%.0f", host,
	    (long)getpid(), (double)time(NULL) * 1000);

	if ((r = token_open(&tok, opt.module, NULL, opt.uri, opt.pin_file)) !=
	    0) {
		fprintf(stderr, "fixture: token_open %s: %s\n", opt.uri,
		    hk_strerror(r));
		return 1;
	}
	if ((r = token_session_open(tok, &s0)) != 0) {
		fprintf(stderr, "fixture: token_session_open: %s\n",
		    hk_strerror(r));
		goto out;
	}
	t0 = hk_now_s();
	if (load_all(s0, &kr, &nobjs) != 0) {
		goto out;
	}
	keyring_totals(kr, &keys_total, &vers_total);
	fprintf(stderr,
	    "fixture: token has %zu objects, %" PRIu32 " keys, %" PRIu32
	    " versions (listed and loaded in %.1f s)\n",
	    nobjs, keys_total, vers_total, hk_now_s() - t0);

	/* what is there, what is half there, what is to make */
	if ((todo = calloc((size_t)opt.nkeys, sizeof(*todo))) == NULL) {
		goto out;
	}
	for (i = opt.first; i < opt.first + opt.nkeys; i++) {
		key_name(name, sizeof(name), i);
		if ((have = versions_of(kr, name)) == 0) {
			todo[ntodo++] = i;
		} else if (have < (uint32_t)opt.versions) {
			if (finish_key(kr, s0, name, have, err, sizeof(err)) !=
			    0) {
				fprintf(stderr, "fixture: %s\n", err);
				goto out;
			}
			partial++;
		} else {
			skipped++;
		}
	}
	keyring_free(kr);
	kr = NULL;
	fprintf(stderr,
	    "fixture: keys %s-%05d..%05d: %d complete (skipped), %d "
	    "finished, %d to make with %d versions each, %d thread%s\n",
	    opt.prefix, opt.first, opt.first + opt.nkeys - 1, skipped, partial,
	    ntodo, opt.versions, opt.threads, opt.threads == 1 ? "" : "s");

	/* the threads: a session and a keyring of their own each */
	init_opts(&ko);
	for (i = 0; i < opt.threads && ntodo > 0; i++) {
		th[i].idx = i;
		if ((r = token_session_open(tok, &th[i].s)) != 0 ||
		    (r = keyring_load(
			 &th[i].kr, tok, th[i].s, NULL, 0, &ko)) != 0) {
			fprintf(stderr, "fixture: thread %d: %s\n", i,
			    hk_strerror(r));
			atomic_store(&failed, 1);
			break;
		}
		atomic_fetch_add(&running, 1);
		if ((r = pthread_create(
			 &th[i].th, NULL, thread_main, &th[i])) != 0) {
			atomic_fetch_sub(&running, 1);
			fprintf(stderr, "fixture: pthread_create: %s\n",
			    strerror(r));
			atomic_store(&failed, 1);
			break;
		}
		nstarted++;
	}
	t0 = t_last = hk_now_s();
	last = 0;
	for (;;) {
		struct timespec ts = { 0, 200 * 1000 * 1000 };
		int		done = atomic_load(&made_versions);
		int		alive = atomic_load(&running);

		if (done - last >= opt.report || (alive == 0 && done > last)) {
			double t = hk_now_s();

			fprintf(stderr,
			    "fixture: %6d versions made, +%d in %6.1f s "
			    "(%5.1f/s, %6.1f s per 1000), token ~%zu "
			    "objects\n",
			    done, done - last, t - t_last,
			    (done - last) / (t - t_last),
			    (t - t_last) * 1000.0 / (done - last),
			    nobjs + (size_t)done * 2 +
				(size_t)atomic_load(&made_keys));
			last = done;
			t_last = t;
		}
		if (alive == 0) {
			break;
		}
		nanosleep(&ts, NULL);
	}
	for (i = 0; i < nstarted; i++) {
		pthread_join(th[i].th, NULL);
		if (th[i].err[0] != '\0') {
			fprintf(
			    stderr, "fixture: thread %d: %s\n", i, th[i].err);
		}
	}
	fprintf(stderr,
	    "fixture: made %d keys, %d versions in %.1f s (%.1f "
	    "versions/s)%s\n",
	    atomic_load(&made_keys), atomic_load(&made_versions),
	    hk_now_s() - t0,
	    atomic_load(&made_versions) /
		(hk_now_s() - t0 > 0 ? hk_now_s() - t0 : 1),
	    stop ? "; stopped by a signal"
		: opt.limit_s > 0 && hk_now_s() - t_start >= opt.limit_s
		? "; time limit reached"
		: "");
	if (!atomic_load(&failed) && atomic_load(&made_keys) == ntodo) {
		rc = 0;
	} else if (!atomic_load(&failed)) {
		rc = 3; /* incomplete: run again to resume */
	}
out:
	for (i = 0; i < FIX_MAXTHREADS; i++) {
		keyring_free(th[i].kr);
		token_session_close(th[i].s);
	}
	keyring_free(kr);
	free(todo);
	token_session_close(s0);
	token_close(tok);
	return rc;
}
