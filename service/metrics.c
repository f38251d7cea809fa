/* metrics.c: latency histograms and the Prometheus text file (see
 * metrics.h). */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "gate.h"
#include "hk_err.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "wire.h"

/* Every op the pipeline reports; anything else counts as "unknown". */
static const char *const op_names[] = {
	"ping",
	"health",
	"create",
	"list",
	"describe",
	"sign",
	"verify",
	"pubkey",
	"rotate",
	"promote",
	"policy",
	"disable",
	"destroy",
	"client-add",
	"client-rotate",
	"client-revoke",
	"client-list",
	"stats",
	"unauthenticated",
	"replay",
	"rate-limited",
	"malformed",
	"resent",
	"busy",
	"unknown",
};
#define NOPS (sizeof(op_names) / sizeof(op_names[0]))

/* Why requests were refused before they proved their sender (auth.c's
 * reasons); anything else counts as "other". */
static const char *const refusal_names[] = {
	"malformed",
	"clock",
	"unknown-client",
	"unknown-secret",
	"secret-expired",
	"bad-mac",
	"replay",
	"token",
	"other",
};
#define NREFUSALS (sizeof(refusal_names) / sizeof(refusal_names[0]))

/* Upper bounds in microseconds; +Inf is the last bucket. */
static const uint64_t bounds_us[] = {
	250,
	500,
	1000,
	2500,
	5000,
	10000,
	25000,
	50000,
	100000,
	250000,
	500000,
	1000000,
	2500000,
	5000000,
	10000000,
};
#define NBOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))

struct histogram {
	_Atomic uint64_t bucket[NBOUNDS + 1]; /* not cumulative */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_ns;
};

struct metrics {
	struct histogram h[NOPS];
	_Atomic uint64_t refused[NREFUSALS];
	pthread_t	 thread;
	int		 running;
	atomic_int	 stop;
	struct server	*sv;
};

int
metrics_new(struct metrics **mp)
{
	struct metrics *m;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		return HK_ERR_NOMEM;
	}
	*mp = m;
	return 0;
}

void
metrics_free(struct metrics *m)
{
	free(m);
}

static size_t
op_index(const char *op)
{
	size_t i;

	for (i = 0; op != NULL && i < NOPS - 1; i++) {
		if (strcmp(op, op_names[i]) == 0) {
			return i;
		}
	}
	return NOPS - 1;
}

void
metrics_observe(struct metrics *m, const char *op, uint64_t ns)
{
	struct histogram *h;
	size_t		  b;

	if (m == NULL) {
		return;
	}
	h = &m->h[op_index(op)];
	for (b = 0; b < NBOUNDS && ns > bounds_us[b] * 1000; b++) {
		;
	}
	atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void
metrics_refused(struct metrics *m, const char *reason)
{
	size_t i;

	if (m == NULL) {
		return;
	}
	for (i = 0; i < NREFUSALS - 1; i++) {
		if (reason != NULL && strcmp(reason, refusal_names[i]) == 0) {
			break;
		}
	}
	atomic_fetch_add_explicit(&m->refused[i], 1, memory_order_relaxed);
}

/* A label value, escaped as the text format wants (\\, \", \n). */
static void
put_label(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '\\' || *s == '"') {
			fputc('\\', f);
			fputc(*s, f);
		} else if (*s == '\n') {
			fputs("\\n", f);
		} else {
			fputc(*s, f);
		}
	}
	fputc('"', f);
}

static void
header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* What a family's sample value is. */
enum sample_kind {
	SAMPLE_COUNT,	   /* the uint64_t at field */
	SAMPLE_SECONDS_MS, /* the uint64_t at field, ms, as seconds */
	SAMPLE_STATE,	   /* 1, with the version's state as a label */
};

/*
 * The families with one sample per key version (per_secret 0) or per
 * client secret (per_secret 1), in the order they are written; field is
 * the offset of the value in struct keyring_vstats or clients_secret_stats (a
 * uint64_t, unused for SAMPLE_STATE).
 */
/* clang-format off */
#define VERSION_ROW(name, type, help, kind, f) \
	{ name, type, help, 0, kind, offsetof(struct keyring_vstats, f) }
#define SECRET_ROW(name, type, help, kind, f) \
	{ name, type, help, 1, kind, offsetof(struct clients_secret_stats, f) }
/* clang-format on */
static const struct family {
	const char	*name, *type, *help;
	int		 per_secret;
	enum sample_kind kind;
	size_t		 field;
} families[] = {
	VERSION_ROW("hsmkey_signs_total", "counter",
	    "Signatures made by a key version since the service started.",
	    SAMPLE_COUNT, signs),
	VERSION_ROW("hsmkey_verifies_total", "counter",
	    "Verifications against a key version since the service started.",
	    SAMPLE_COUNT, verifies),
	VERSION_ROW("hsmkey_sign_errors_total", "counter",
	    "Signing errors of a key version since the service started.",
	    SAMPLE_COUNT, errors),
	VERSION_ROW("hsmkey_version_last_use_timestamp_seconds", "gauge",
	    "When a key version last signed or verified (0: not since the "
	    "service started).",
	    SAMPLE_SECONDS_MS, last_use_ms),
	VERSION_ROW("hsmkey_version_state", "gauge",
	    "The state of a key version (always 1; the state is a label).",
	    SAMPLE_STATE, state),
	SECRET_ROW("hsmkey_client_requests_total", "counter",
	    "Requests that named a client secret since the service started.",
	    SAMPLE_COUNT, requests),
	SECRET_ROW("hsmkey_client_denials_total", "counter",
	    "Of them, the ones refused (bad MAC, clock, replay, no grant).",
	    SAMPLE_COUNT, denials),
	SECRET_ROW("hsmkey_client_last_use_timestamp_seconds", "gauge",
	    "When a client secret last made a request whose MAC held (0: not "
	    "since the service started).",
	    SAMPLE_SECONDS_MS, last_use_ms),
};
#define NFAMILIES (sizeof(families) / sizeof(families[0]))

/* The per-version and per-secret statistics one exposition writes. */
struct snapshot {
	struct keyring_vstats	    *vs;
	size_t			     nv;
	struct clients_secret_stats *ss;
	size_t			     ns;
};

/* One sample of fam for row i of the snapshot. */
static void
put_sample(
    FILE *f, const struct family *fam, const struct snapshot *snap, size_t i)
{
	const void *row;
	uint64_t    v;

	fputs(fam->name, f);
	if (fam->per_secret) {
		row = &snap->ss[i];
		fputs("{client=", f);
		put_label(f, snap->ss[i].client);
		fprintf(f, ",secret=\"%" PRIu32 "\"", snap->ss[i].secret);
	} else {
		row = &snap->vs[i];
		fputs("{key=", f);
		put_label(f, snap->vs[i].key);
		fprintf(f, ",version=\"%" PRIu32 "\"", snap->vs[i].version);
	}
	if (fam->kind == SAMPLE_STATE) {
		fputs(",state=", f);
		put_label(f, lifecycle_state_name(snap->vs[i].state));
		fputs("} 1\n", f);
		return;
	}
	memcpy(&v, (const char *)row + fam->field, sizeof(v));
	if (fam->kind == SAMPLE_SECONDS_MS) {
		fprintf(f, "} %" PRIu64 ".%03u\n", v / 1000,
		    (unsigned int)(v % 1000));
	} else {
		fprintf(f, "} %" PRIu64 "\n", v);
	}
}

/* The service, token and audit health gauges. */
static void
put_health(FILE *f, struct server *sv, int up)
{
	static const struct {
		const char *name, *help;
	} gauges[] = {
		{ "hsmkey_up",
		    "1 while hsmkeyd runs; 0 in the file it leaves at a clean "
		    "stop." },
		{ "hsmkey_token_up", "1 when the PKCS#11 token answers." },
		{ "hsmkey_audit_up",
		    "1 when the audit log can be written (or auditing is "
		    "off)." },
	};
	char   why[PATH_MAX + 128];
	int    value[3];
	size_t i;

	value[0] = up;
	value[1] = token_healthy(sv->tok) ? 1 : 0;
	value[2] = audit_health(sv->audit, why, sizeof(why)) ? 1 : 0;
	for (i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
		header(f, gauges[i].name, "gauge", gauges[i].help);
		fprintf(f, "%s %d\n", gauges[i].name, value[i]);
	}
	header(f, "hsmkey_token_down_since_seconds", "gauge",
	    "When the token went down (Unix time); 0 while it is up.");
	fprintf(f, "hsmkey_token_down_since_seconds %.3f\n",
	    (double)token_down_since(sv->tok) / 1000.0);
	header(f, "hsmkey_token_repairs_total", "counter",
	    "Times hsmkeyd brought the token back (new login or module "
	    "reconnected).");
	fprintf(f, "hsmkey_token_repairs_total %llu\n",
	    (unsigned long long)token_repairs(sv->tok));
}

/* The latency histogram of op, if it counted any request. */
static void
put_histogram(FILE *f, struct histogram *h, const char *op)
{
	uint64_t count = atomic_load(&h->count), cum = 0;
	size_t	 b;

	if (count == 0) {
		return;
	}
	for (b = 0; b <= NBOUNDS; b++) {
		cum += atomic_load(&h->bucket[b]);
		fprintf(f,
		    "hsmkey_request_duration_seconds_bucket{op=\"%s\",le=",
		    op);
		if (b < NBOUNDS) {
			fprintf(f, "\"%g\"", (double)bounds_us[b] / 1e6);
		} else {
			fputs("\"+Inf\"", f);
		}
		/* a bucket read late may exceed count: keep +Inf equal to
		 * the count */
		fprintf(f, "} %" PRIu64 "\n",
		    b < NBOUNDS ? (cum < count ? cum : count) : count);
	}
	fprintf(f, "hsmkey_request_duration_seconds_sum{op=\"%s\"} %.6f\n", op,
	    (double)atomic_load(&h->sum_ns) / 1e9);
	fprintf(f,
	    "hsmkey_request_duration_seconds_count{op=\"%s\"} %" PRIu64 "\n",
	    op, count);
}

/* The gate's slots (gate.h): how many, how many taken, how many wait. */
static void
put_gate(FILE *f, struct server *sv)
{
	struct gate_stats st;

	gate_stats(sv->gate, &st);
	header(f, "hsmkey_token_slots", "gauge",
	    "Requests that may do token work at once ([pkcs11] max_parallel; "
	    "0: no limit).");
	fprintf(f, "hsmkey_token_slots %u\n", st.slots);
	header(
	    f, "hsmkey_token_slots_in_use", "gauge", "Token slots taken now.");
	fprintf(f, "hsmkey_token_slots_in_use %u\n", st.in_use);
	header(f, "hsmkey_token_slot_waiters", "gauge",
	    "Requests waiting for a token slot now.");
	fprintf(f, "hsmkey_token_slot_waiters %u\n", st.waiting);
}

/* The whole exposition into f. */
static int
expose(struct metrics *m, struct server *sv, FILE *f, int up)
{
	struct snapshot snap = { NULL, 0, NULL, 0 };
	size_t		i, j;
	int		r;

	if ((r = keyring_stats(sv->kr, &snap.vs, &snap.nv)) != 0 ||
	    (r = clients_secret_stats(
		 sv->clients, NULL, &snap.ss, &snap.ns)) != 0) {
		goto out;
	}
	put_health(f, sv, up);
	for (i = 0; i < NFAMILIES; i++) {
		header(
		    f, families[i].name, families[i].type, families[i].help);
		for (j = 0; j < (families[i].per_secret ? snap.ns : snap.nv);
		     j++) {
			put_sample(f, &families[i], &snap, j);
		}
	}
	header(f, "hsmkey_request_duration_seconds", "histogram",
	    "Time from a request's arrival to its reply (audit wait "
	    "included), by operation.");
	for (i = 0; i < NOPS; i++) {
		put_histogram(f, &m->h[i], op_names[i]);
	}
	put_gate(f, sv);
	header(f, "hsmkey_refused_total", "counter",
	    "Requests refused before they proved their sender, by reason "
	    "(no audit line each: see [audit] refused_interval).");
	for (i = 0; i < NREFUSALS; i++) {
		fprintf(f, "hsmkey_refused_total{reason=\"%s\"} %" PRIu64 "\n",
		    refusal_names[i], atomic_load(&m->refused[i]));
	}
	r = 0;
out:
	free(snap.vs);
	free(snap.ss);
	return r;
}

/*
 * Writes len bytes of text to a new file beside path and renames it over
 * path.  The file is made by mkstemp(): a name no one can guess, created
 * with O_EXCL, so a symlink or file planted in a shared textfile directory
 * is never followed or written through (PATH.tmp once was: a link there
 * made the service overwrite its own audit log).  rename() replaces a
 * link at path itself, never its target.
 */
static int
write_file(const char *path, const char *text, size_t len)
{
	char	tmp[PATH_MAX];
	size_t	off = 0;
	ssize_t n;
	int	fd = -1, r = HK_ERR_SYSTEM;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >=
	    (int)sizeof(tmp)) {
		return HK_ERR_TOO_LARGE;
	}
	if ((fd = mkstemp(tmp)) < 0) {
		log_warn("metrics: cannot create a file beside %s", path);
		return HK_ERR_SYSTEM;
	}
	/* node_exporter runs as a user of its own (mkstemp made it 0600) */
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0 || fchmod(fd, 0644) != 0) {
		log_warn("metrics: cannot write %s", tmp);
		goto out;
	}
	while (off < len) {
		if ((n = write(fd, text + off, len - off)) < 0) {
			if (errno == EINTR) {
				continue;
			}
			log_warn("metrics: cannot write %s", tmp);
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		log_warn("metrics: cannot write %s", tmp);
		goto out;
	}
	if (rename(tmp, path) != 0) {
		log_warn("metrics: cannot rename %s to %s", tmp, path);
		goto out;
	}
	r = 0;
out:
	close(fd);
	if (r != 0) {
		unlink(tmp);
	}
	return r;
}

int
metrics_write(struct metrics *m, struct server *sv, const char *path, int up)
{
	char  *text = NULL;
	size_t len = 0;
	FILE  *f;
	int    r;

	if ((f = open_memstream(&text, &len)) == NULL) {
		return HK_ERR_NOMEM;
	}
	r = expose(m, sv, f, up);
	if (fclose(f) != 0 && r == 0) {
		r = HK_ERR_NOMEM;
	}
	if (r == 0) {
		r = write_file(path, text, len);
	}
	free(text);
	return r;
}

/*
 * Warns once when others may write the metrics file's directory: without
 * the sticky bit they can remove or replace the file; with it they cannot
 * touch the service's files, but can create the file's name first (the
 * rename over it then fails, and the exporter serves theirs).  The service
 * itself follows no link there either way (write_file()).
 */
static void
check_dir(const char *path)
{
	char	    copy[PATH_MAX], *dir;
	struct stat st;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy)) {
		return;
	}
	dir = dirname(copy);
	if (stat(dir, &st) != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) == 0) {
		return;
	}
	if (st.st_mode & S_ISVTX) {
		log_warnx("metrics: directory %s is writable by %s (sticky): "
			  "they may create %s before the service does, and "
			  "their file is then read instead",
		    dir, st.st_mode & S_IWOTH ? "others" : "its group", path);
	} else {
		log_warnx("metrics: directory %s is writable by %s: they may "
			  "remove or replace %s",
		    dir, st.st_mode & S_IWOTH ? "others" : "its group", path);
	}
}

static void *
metrics_main(void *arg)
{
	struct metrics *m = arg;
	struct server  *sv = m->sv;
	uint64_t	i, steps = sv->cfg->metrics_interval_s * 10;
	int		failing = 0, r;

	while (!atomic_load(&m->stop)) {
		r = metrics_write(m, sv, sv->cfg->metrics_path, 1);
		if (r != 0 && !failing) {
			log_err_r(r,
			    "metrics: cannot write %s (retrying every "
			    "%" PRIu64 " s)",
			    sv->cfg->metrics_path,
			    sv->cfg->metrics_interval_s);
		} else if (r == 0 && failing) {
			log_info("metrics: %s written again",
			    sv->cfg->metrics_path);
		}
		failing = r != 0;
		for (i = 0; i < steps && !atomic_load(&m->stop); i++) {
			usleep(100 * 1000);
		}
	}
	return NULL;
}

int
metrics_start(struct metrics *m, struct server *sv)
{
	int r;

	m->sv = sv;
	if (sv->cfg->metrics_path == NULL) {
		return 0;
	}
	check_dir(sv->cfg->metrics_path);
	if ((r = pthread_create(&m->thread, NULL, metrics_main, m)) != 0) {
		log_warnx("metrics: pthread_create: %s", strerror(r));
		return HK_ERR_SYSTEM;
	}
	m->running = 1;
	return 0;
}

void
metrics_stop(struct metrics *m)
{
	if (m == NULL || !m->running) {
		return;
	}
	atomic_store(&m->stop, 1);
	pthread_join(m->thread, NULL);
	m->running = 0;
	(void)metrics_write(m, m->sv, m->sv->cfg->metrics_path, 0);
}
