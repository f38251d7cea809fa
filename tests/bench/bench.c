/*
 * bench.c: hsmkey-bench, the benchmark of issue 5: options, rows, main().
 * The rows' operations are in bench_ops.c, the rows main() runs in
 * bench_sections.c and bench_many.c, the report in bench_report.c.
 *
 *   hsmkey-bench [--smoke] [--json FILE] --dir DIR --hsmkeyd PATH
 *       --ipc URL --tcp URL --echo-tcp URL --module SOFTHSM
 *       [--p11kit-module CLIENT.so]
 *       [--fixture FIXDIR --fixture-ipc URL [--fixture-copy-s S]]
 *       [[--slow-hsm ROUNDS] --slow-conf F --slow-ipc URL
 *        --slow-control F --nogate-conf F --nogate-ipc URL]
 *
 * DIR holds a fresh SoftHSM token (SOFTHSM2_CONF in the environment),
 * DIR/pin, DIR/hsmkeyd.conf listening on --ipc and --tcp, and
 * DIR/admin.cred; tests/bench/run.sh makes them (and starts p11-kit
 * server when --p11kit-module is given, with P11_KIT_SERVER_ADDRESS in the
 * environment).  This program starts hsmkeyd and its own echo server,
 * creates the keys, runs every row, and prints the table, the machine and
 * the targets (PASS/MISS); --json writes the same as JSON.
 *
 * Rows (ops/s are signatures per second; for batch rows 100 per request):
 *   echo            bare nanomsg REQ/REP round trip of a message as long
 *                   as a sign request, against a server built like
 *                   hsmkeyd's transport (AF_SP_RAW REP, 2 threads)
 *   ping            hsmkey_ping(): envelope, MAC, nonce, dispatch, MACed
 *                   reply, no token call
 *   raw             token_sign() (C_SignInit + C_Sign) in this process on
 *                   the service's own key objects, one session per thread
 *   raw-copy        the same on a session copy of each key made inside the
 *                   token (C_CopyObject, CKA_TOKEN false)
 *   service         hsmkey_sign_digest() (ed25519: hsmkey_sign() of 256
 *                   bytes) through hsmkeyd
 *   batch100        hsmkey_sign_batch() of 100 ecdsa-p256 digests
 *   p11-kit-remote  token_sign() through p11-kit's client module and
 *                   `p11-kit server` on the same token
 *   service-10k     with --fixture: the service row on a second hsmkeyd
 *                   serving FIXDIR, a copy of the 10,000-version token
 *                   that scripts/bench --prepare built once (run.sh
 *                   copies it and writes DIR/hsmkeyd-10k.conf listening
 *                   on --fixture-ipc), signing with many-00000 (4
 *                   versions) among 2,500 keys
 *   service-few     the same row on the first hsmkeyd (3 keys), run
 *                   interleaved with service-10k (few, 10k, 10k, few) so
 *                   that both see the same machine; the ratio is
 *                   their means
 *   service-many    without --fixture: the service row after as many
 *                   versions as fit in the time left were made through
 *                   the service and hsmkeyd was restarted
 *   slow-Nms        with --slow-conf: a second hsmkeyd (default workers
 *                   and max_parallel) on tests/faultp11 modelling a
 *                   network HSM (limit C_Sign 16, delay C_Sign N ms), 64
 *                   clients; slow-0ms-nogate the same on a third one with
 *                   max_parallel = 0 (bench_slow.c).  Smoke mode runs them
 *                   once, tiny; --slow-hsm ROUNDS runs only them, ROUNDS
 *                   times interleaved, with medians
 *
 * Exit status: 0 when every request succeeded and every kept signature
 * verified with OpenSSL; 1 otherwise.  Targets never change the exit
 * status: a benchmark is not a test.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "bench.h"
#include "hsmkey.h"
#include "log.h"

struct bench_params bench_p = {
	.smoke = 0,
	.warmup_s = 0.3,
	.duration_s = 1.5,
	.smoke_ops = 20,
	.sample_stride = 61,
};

struct bench_opts bench_opt;

struct bench_row bench_rows[BENCH_MAXROWS];
int		 bench_nrows;
int		 bench_failed;

struct bench_daemon bench_daemon1, bench_daemon2;
double		    bench_t_start;

/* The service's keys, and the admin handle. */
struct bench_keyset bench_keys[BENCH_NKEYS] = {
	{ "bench-ec", BENCH_ALG_ECDSA, { NULL } },
	{ "bench-ed", BENCH_ALG_ED25519, { NULL } },
	{ "bench-rsa", BENCH_ALG_RSA, { NULL } },
};
const char *const bench_alg_names[BENCH_NKEYS] = { "ecdsa-p256", "ed25519",
	"rsa-2048" };
struct hsmkey	 *bench_admin;

struct bench_results bench_res;

/* ---------------------------------------------------------------- rows */

struct bench_row *
bench_row_new(
    const char *name, const char *alg, const char *transport, int conc)
{
	struct bench_row *r;

	if (bench_nrows == BENCH_MAXROWS) {
		fprintf(stderr, "bench: too many rows\n");
		exit(1);
	}
	r = &bench_rows[bench_nrows++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->alg, sizeof(r->alg), "%s", alg);
	snprintf(r->transport, sizeof(r->transport), "%s", transport);
	r->conc = conc;
	r->items = 1;
	r->supported = 1;
	return r;
}

/* Runs a row and prints it as a progress line on stderr. */
int
bench_run(struct bench_row *r)
{
	if (bench_run_row(r) != 0) {
		bench_failed = 1;
		r->supported = 0;
		snprintf(r->note, sizeof(r->note), "FAILED");
		return -1;
	}
	fprintf(stderr,
	    "  %-14s %-10s %-10s %3d  %10.0f/s  p50 %8.1f us"
	    "  (%zu sigs checked)\n",
	    r->name, r->alg, r->transport, r->conc, r->ops_per_s, r->p50_us,
	    r->checked);
	return 0;
}

/* r was measured and is of this kind (transport NULL, conc 0: any). */
static int
row_matches(const struct bench_row *r, const char *name, const char *alg,
    const char *transport, int conc)
{
	return strcmp(r->name, name) == 0 && strcmp(r->alg, alg) == 0 &&
	    (transport == NULL || strcmp(r->transport, transport) == 0) &&
	    (conc == 0 || r->conc == conc) && r->supported && r->requests > 0;
}

struct bench_row *
bench_find_row(
    const char *name, const char *alg, const char *transport, int conc)
{
	int i;

	for (i = 0; i < bench_nrows; i++) {
		if (row_matches(&bench_rows[i], name, alg, transport, conc)) {
			return &bench_rows[i];
		}
	}
	return NULL;
}

/* The best row of a kind (highest ops/s) over its concurrencies. */
struct bench_row *
bench_best_row(const char *name, const char *alg, const char *transport)
{
	struct bench_row *best = NULL;
	int		  i;

	for (i = 0; i < bench_nrows; i++) {
		if (row_matches(&bench_rows[i], name, alg, transport, 0) &&
		    (best == NULL ||
			bench_rows[i].ops_per_s > best->ops_per_s)) {
			best = &bench_rows[i];
		}
	}
	return best;
}

/* --------------------------------------------------------------- main */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: hsmkey-bench [--smoke] [--json FILE] "
	    "--dir DIR --hsmkeyd PATH --ipc URL --tcp URL --echo-tcp URL "
	    "--module SOFTHSM [--p11kit-module CLIENT]\n"
	    "       [--fixture DIR --fixture-ipc URL [--fixture-copy-s S]]\n"
	    "       [[--slow-hsm ROUNDS] --slow-conf F --slow-ipc URL "
	    "--slow-control F --nogate-conf F --nogate-ipc URL]\n"
	    "       (run it through scripts/bench)\n");
	exit(2);
}

/* A positive number of at most 4 digits, else -1. */
static int
positive_count(const char *s)
{
	char *end;
	long  v = strtol(s, &end, 10);

	return *s != '\0' && *end == '\0' && v > 0 && v < 10000 ? (int)v : -1;
}

static void
on_signal(int sig)
{
	(void)sig;
	bench_kill_all();
	_exit(130);
}

static const char *fixture_copy_arg; /* --fixture-copy-s */
static const char *slow_rounds_arg;  /* --slow-hsm */

/* The options that take a value, and where it goes. */
static const struct {
	const char  *flag;
	const char **dst;
} options[] = {
	{ "--json", &bench_opt.json },
	{ "--dir", &bench_opt.dir },
	{ "--hsmkeyd", &bench_opt.hsmkeyd },
	{ "--ipc", &bench_opt.ipc },
	{ "--tcp", &bench_opt.tcp },
	{ "--echo-tcp", &bench_opt.echo_tcp },
	{ "--module", &bench_opt.module },
	{ "--p11kit-module", &bench_opt.p11kit },
	{ "--fixture", &bench_opt.fixture },
	{ "--fixture-ipc", &bench_opt.fixture_ipc },
	{ "--fixture-copy-s", &fixture_copy_arg },
	{ "--slow-hsm", &slow_rounds_arg },
	{ "--slow-conf", &bench_opt.slow_conf },
	{ "--slow-ipc", &bench_opt.slow_ipc },
	{ "--slow-control", &bench_opt.slow_control },
	{ "--nogate-conf", &bench_opt.nogate_conf },
	{ "--nogate-ipc", &bench_opt.nogate_ipc },
};

/* Sets bench_p.smoke and the options' values from argv; exits on a usage
 * error. */
static void
parse_args(int argc, char **argv)
{
	const char **dst;
	size_t	     j;
	int	     i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--smoke") == 0) {
			bench_p.smoke = 1;
			continue;
		}
		dst = NULL;
		for (j = 0;
		     dst == NULL && j < sizeof(options) / sizeof(options[0]);
		     j++) {
			if (strcmp(argv[i], options[j].flag) == 0) {
				dst = options[j].dst;
			}
		}
		if (dst == NULL || ++i == argc) {
			usage();
		}
		*dst = argv[i];
	}
}

int
main(int argc, char **argv)
{
	static const int raw_conc[2] = { 1, 2 };
	static const int p11_conc[3] = { 1, 2, 8 };
	char		 cpu[256];
	long		 ncpu;
	ssize_t		 n;
	int		 i, r, k;

	if (argc >= 2 && strcmp(argv[1], "--echo-server") == 0) {
		return bench_echo_main(argc - 2, argv + 2);
	}
	parse_args(argc, argv);
	if (bench_opt.dir == NULL || bench_opt.hsmkeyd == NULL ||
	    bench_opt.ipc == NULL || bench_opt.tcp == NULL ||
	    bench_opt.echo_tcp == NULL || bench_opt.module == NULL) {
		usage();
	}
	if ((bench_opt.fixture == NULL) != (bench_opt.fixture_ipc == NULL)) {
		usage();
	}
	if (fixture_copy_arg != NULL) {
		bench_opt.fixture_copy_s = strtod(fixture_copy_arg, NULL);
	}
	if (slow_rounds_arg != NULL &&
	    (bench_opt.slow_rounds = positive_count(slow_rounds_arg)) < 1) {
		usage();
	}
	if ((bench_opt.slow_conf == NULL) != (bench_opt.slow_ipc == NULL) ||
	    (bench_opt.slow_conf == NULL) != (bench_opt.nogate_conf == NULL) ||
	    (bench_opt.slow_conf == NULL) != (bench_opt.nogate_ipc == NULL) ||
	    (bench_opt.slow_conf == NULL) !=
		(bench_opt.slow_control == NULL) ||
	    (bench_opt.slow_rounds > 0 && bench_opt.slow_conf == NULL)) {
		usage();
	}
	snprintf(bench_opt.conf, sizeof(bench_opt.conf), "%s/hsmkeyd.conf",
	    bench_opt.dir);
	snprintf(bench_opt.cred, sizeof(bench_opt.cred), "%s/admin.cred",
	    bench_opt.dir);
	snprintf(
	    bench_opt.pin, sizeof(bench_opt.pin), "%s/pin", bench_opt.dir);
	if ((n = readlink("/proc/self/exe", bench_opt.self,
		 sizeof(bench_opt.self) - 1)) <= 0) {
		fprintf(stderr, "bench: readlink /proc/self/exe failed\n");
		return 1;
	}
	bench_opt.self[n] = '\0';
	atexit(bench_kill_all);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	hk_log_init("hsmkey-bench", 0, HK_LOG_WARN);
	if (RAND_bytes(&bench_msg[0][0], sizeof(bench_msg)) != 1) {
		return 1;
	}
	for (i = 0; i < BENCH_NMSG; i++) {
		SHA256(bench_msg[i], BENCH_MSGLEN, bench_digest[i]);
	}
	bench_t_start = bench_now();
	bench_res.echo_len = bench_sign_request_len();
	bench_machine(cpu, sizeof(cpu), &ncpu);

	/* the service, its keys and their public keys */
	fprintf(stderr, "bench: starting hsmkeyd\n");
	if (bench_daemon_start(&bench_daemon1, bench_opt.hsmkeyd,
		bench_opt.conf, bench_opt.dir) != 0) {
		return 1;
	}
	bench_res.startup1_s = bench_daemon1.startup_s;
	if ((r = hsmkey_open(&bench_admin, bench_opt.cred, bench_opt.ipc)) !=
	    HSMKEY_OK) {
		fprintf(stderr, "bench: hsmkey_open: %s\n",
		    hsmkey_last_error(NULL));
		return 1;
	}
	hsmkey_set_timeout(bench_admin, 60000);
	for (k = 0; k < BENCH_NKEYS; k++) {
		if ((r = hsmkey_create(bench_admin, bench_keys[k].name,
			 bench_alg_names[k])) != HSMKEY_OK) {
			fprintf(stderr, "bench: create %s: %s\n",
			    bench_keys[k].name,
			    hsmkey_last_error(bench_admin));
			return 1;
		}
		if (bench_fetch_pubkeys(bench_admin, &bench_keys[k], 1) != 0) {
			return 1;
		}
	}

	if (bench_opt.slow_rounds > 0) {
		/* scripts/bench --slow-hsm: only those rows */
		bench_section_slow(bench_opt.slow_rounds);
		goto done;
	}
	bench_section_echo_ping();
	if (!bench_failed) {
		bench_section_token(
		    "raw", bench_opt.module, "in-process", raw_conc, 2);
	}
	if (!bench_failed) {
		bench_section_service();
	}
	if (!bench_failed) {
		bench_section_batch();
	}
	if (!bench_failed && bench_opt.p11kit != NULL) {
		bench_section_token("p11-kit-remote", bench_opt.p11kit,
		    "p11-kit", p11_conc, 3);
	}
	bench_rss(bench_daemon1.pid, &bench_res.hwm1_kib, &bench_res.rss1_kib);
	if (!bench_failed && bench_opt.fixture != NULL) {
		bench_section_fixture();
	} else if (!bench_failed) {
		if (!bench_p.smoke) {
			fprintf(stderr,
			    "bench: no many-versions fixture: run "
			    "scripts/bench --prepare for the "
			    "10,000-version row\n");
		}
		bench_section_many();
	}
	if (!bench_failed && bench_p.smoke && bench_opt.slow_conf != NULL) {
		bench_section_slow(1);
	}
done:
	hsmkey_close(bench_admin);
	if (bench_daemon1.pid > 0 && bench_daemon_stop(&bench_daemon1) != 0) {
		fprintf(stderr, "bench: hsmkeyd did not stop cleanly\n");
		bench_failed = 1;
	}

	if (bench_report(cpu, ncpu, bench_opt.json) != 0) {
		bench_failed = 1;
	}
	for (k = 0; k < BENCH_NKEYS; k++) {
		for (i = 0; i <= BENCH_MAXVER; i++) {
			EVP_PKEY_free(bench_keys[k].pk[i]);
		}
	}
	for (i = 0; i <= BENCH_MAXVER; i++) {
		EVP_PKEY_free(bench_fixkey.pk[i]);
	}
	return bench_failed ? 1 : 0;
}
