/* metrics.c: latency histograms and the Prometheus text file (see
 * metrics.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
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
	"unknown",
};
#define NOPS (sizeof(op_names) / sizeof(op_names[0]))

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

/* Seconds with millisecond precision. */
static void
put_seconds_ms(FILE *f, uint64_t ms)
{
	fprintf(
	    f, " %" PRIu64 ".%03u\n", ms / 1000, (unsigned int)(ms % 1000));
}

static void
version_labels(FILE *f, const struct keyring_vstats *v)
{
	fputs("{key=", f);
	put_label(f, v->key);
	fprintf(f, ",version=\"%" PRIu32 "\"", v->version);
}

static void
secret_labels(FILE *f, const struct clients_secret_stats *x)
{
	fputs("{client=", f);
	put_label(f, x->client);
	fprintf(f, ",secret=\"%" PRIu32 "\"}", x->secret);
}

/* A counter per key version; field: offset of a uint64_t in VersionStats. */
static void
version_counter(FILE *f, const char *name, const char *help,
    const struct keyring_vstats *vs, size_t nv, size_t field)
{
	uint64_t v;
	size_t	 i;

	header(f, name, "counter", help);
	for (i = 0; i < nv; i++) {
		memcpy(&v, (const char *)&vs[i] + field, sizeof(v));
		fputs(name, f);
		version_labels(f, &vs[i]);
		fprintf(f, "} %" PRIu64 "\n", v);
	}
}

/* A counter per client secret; field: offset of a uint64_t in
 * SecretStats. */
static void
secret_counter(FILE *f, const char *name, const char *help,
    const struct clients_secret_stats *ss, size_t ns, size_t field)
{
	uint64_t v;
	size_t	 i;

	header(f, name, "counter", help);
	for (i = 0; i < ns; i++) {
		memcpy(&v, (const char *)&ss[i] + field, sizeof(v));
		fputs(name, f);
		secret_labels(f, &ss[i]);
		fprintf(f, " %" PRIu64 "\n", v);
	}
}

/* The whole exposition into f. */
static int
expose(struct metrics *m, struct server *sv, FILE *f, int up)
{
	struct keyring_vstats	    *vs = NULL;
	struct clients_secret_stats *ss = NULL;
	size_t			     nv = 0, ns = 0, i, b;
	char			     why[PATH_MAX + 128];
	uint64_t		     cum;
	int			     r;

	if ((r = keyring_stats(sv->kr, &vs, &nv)) != 0 ||
	    (r = clients_secret_stats(sv->clients, NULL, &ss, &ns)) != 0) {
		goto out;
	}
	header(f, "hsmkey_up", "gauge",
	    "1 while hsmkeyd runs; 0 in the "
	    "file it leaves at a clean stop.");
	fprintf(f, "hsmkey_up %d\n", up);
	header(f, "hsmkey_token_up", "gauge",
	    "1 when the PKCS#11 token "
	    "answers.");
	fprintf(f, "hsmkey_token_up %d\n", token_healthy(sv->tok) ? 1 : 0);
	header(f, "hsmkey_audit_up", "gauge",
	    "1 when the audit log can be "
	    "written (or auditing is off).");
	fprintf(f, "hsmkey_audit_up %d\n",
	    audit_health(sv->audit, why, sizeof(why)) ? 1 : 0);

	version_counter(f, "hsmkey_signs_total",
	    "Signatures made by a key "
	    "version since the service started.",
	    vs, nv, offsetof(struct keyring_vstats, signs));
	version_counter(f, "hsmkey_verifies_total",
	    "Verifications against "
	    "a key version since the service started.",
	    vs, nv, offsetof(struct keyring_vstats, verifies));
	version_counter(f, "hsmkey_sign_errors_total",
	    "Signing errors of "
	    "a key version since the service started.",
	    vs, nv, offsetof(struct keyring_vstats, errors));
	header(f, "hsmkey_version_last_use_timestamp_seconds", "gauge",
	    "When a key version last signed or verified (0: not since the "
	    "service started).");
	for (i = 0; i < nv; i++) {
		fputs("hsmkey_version_last_use_timestamp_seconds", f);
		version_labels(f, &vs[i]);
		fputc('}', f);
		put_seconds_ms(f, vs[i].last_use_ms);
	}
	header(f, "hsmkey_version_state", "gauge",
	    "The state of a key "
	    "version (always 1; the state is a label).");
	for (i = 0; i < nv; i++) {
		fputs("hsmkey_version_state", f);
		version_labels(f, &vs[i]);
		fputs(",state=", f);
		put_label(f, lifecycle_state_name(vs[i].state));
		fputs("} 1\n", f);
	}

	secret_counter(f, "hsmkey_client_requests_total",
	    "Requests that "
	    "named a client secret since the service started.",
	    ss, ns, offsetof(struct clients_secret_stats, requests));
	secret_counter(f, "hsmkey_client_denials_total",
	    "Of them, the "
	    "ones refused (bad MAC, clock, replay, no grant).",
	    ss, ns, offsetof(struct clients_secret_stats, denials));
	header(f, "hsmkey_client_last_use_timestamp_seconds", "gauge",
	    "When a client secret last made a request whose MAC held (0: "
	    "not since the service started).");
	for (i = 0; i < ns; i++) {
		fputs("hsmkey_client_last_use_timestamp_seconds", f);
		secret_labels(f, &ss[i]);
		put_seconds_ms(f, ss[i].last_use_ms);
	}

	header(f, "hsmkey_request_duration_seconds", "histogram",
	    "Time from "
	    "a request's arrival to its reply (audit wait included), by "
	    "operation.");
	for (i = 0; i < NOPS; i++) {
		struct histogram *h = &m->h[i];
		uint64_t	  count = atomic_load(&h->count);

		if (count == 0) {
			continue;
		}
		cum = 0;
		for (b = 0; b <= NBOUNDS; b++) {
			cum += atomic_load(&h->bucket[b]);
			fprintf(f,
			    "hsmkey_request_duration_seconds_bucket"
			    "{op=\"%s\",le=",
			    op_names[i]);
			if (b < NBOUNDS) {
				fprintf(
				    f, "\"%g\"", (double)bounds_us[b] / 1e6);
			} else {
				fputs("\"+Inf\"", f);
			}
			/* a bucket read late may exceed count: keep +Inf
			 * equal to the count */
			fprintf(f, "} %" PRIu64 "\n",
			    b < NBOUNDS ? (cum < count ? cum : count) : count);
		}
		fprintf(f,
		    "hsmkey_request_duration_seconds_sum{op=\"%s\"} "
		    "%.6f\n",
		    op_names[i], (double)atomic_load(&h->sum_ns) / 1e9);
		fprintf(f,
		    "hsmkey_request_duration_seconds_count{op=\"%s\"} "
		    "%" PRIu64 "\n",
		    op_names[i], count);
	}
	r = 0;
out:
	free(vs);
	free(ss);
	return r;
}

int
metrics_write(struct metrics *m, struct server *sv, const char *path, int up)
{
	char	tmp[PATH_MAX], *text = NULL;
	size_t	len = 0, off = 0;
	ssize_t n;
	FILE   *f;
	int	fd = -1, r = HK_ERR_SYSTEM;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		return HK_ERR_TOO_LARGE;
	}
	if ((f = open_memstream(&text, &len)) == NULL) {
		return HK_ERR_NOMEM;
	}
	r = expose(m, sv, f, up);
	if (fclose(f) != 0 && r == 0) {
		r = HK_ERR_NOMEM;
	}
	if (r != 0) {
		goto out;
	}
	r = HK_ERR_SYSTEM;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) <
	    0) {
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
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0) {
		log_warn("metrics: cannot rename %s to %s", tmp, path);
		goto out;
	}
	r = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	free(text);
	return r;
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
