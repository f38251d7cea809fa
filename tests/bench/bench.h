/*
 * bench.h: hsmkey-bench, the benchmark of issue 5 (see bench.c for what it
 * measures and how).  Internal to tests/bench/; not a library.
 *
 * Thread-safety: the measurement engine (bench_run.c) runs one row at a
 * time; each worker thread owns its struct bench_worker, the row and the
 * rest are read-only while workers run.
 */
#ifndef HK_BENCH_H
#define HK_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "token.h"

struct hsmkey;

#define BENCH_NMSG    256 /* distinct messages/digests signed */
#define BENCH_MSGLEN  256 /* Ed25519 message size (issue 5) */
#define BENCH_BATCH   100 /* digests per batch request */
#define BENCH_SIGMAX  512 /* largest signature kept for checking */
#define BENCH_MAXCONC 64

enum bench_alg {
	BENCH_ALG_NONE = 0,
	BENCH_ALG_ECDSA,   /* ecdsa-p256 over a SHA-256 digest */
	BENCH_ALG_ED25519, /* ed25519 over a 256-byte message */
	BENCH_ALG_RSA,	   /* rsa-2048 PSS over a SHA-256 digest */
};

/* What the bench signs: BENCH_NMSG messages and their SHA-256 digests. */
extern uint8_t bench_msg[BENCH_NMSG][BENCH_MSGLEN];
extern uint8_t bench_digest[BENCH_NMSG][32];

/* A signature kept for the correctness check after the row. */
struct bench_sample {
	uint32_t msg;	  /* index into bench_msg/bench_digest */
	uint32_t version; /* key version that made it */
	uint16_t len;
	uint8_t	 der; /* ECDSA: 1 DER, 0 raw r||s */
	uint8_t	 sig[BENCH_SIGMAX];
};

struct bench_row;

/* One client thread of a row.  ctx is the op's per-thread state. */
struct bench_worker {
	struct bench_row    *row;
	int		     idx;
	void		    *ctx;
	uint32_t	    *lat; /* ns per request, measured */
	size_t		     nlat, latcap;
	uint64_t	     ops; /* requests in the window */
	uint64_t	     seq; /* requests made, all phases */
	int		     failed;
	char		     err[256];
	struct bench_sample *samples;
	size_t		     nsamples, samplecap;
	int		     sample_all; /* smoke: keep every sig */
};

/*
 * A row's operation: open makes a worker's ctx (not timed), op makes one
 * request (timed) and may keep samples with bench_keep(), close frees ctx.
 * Each returns 0 or -1 with w->err set.
 */
struct bench_ops {
	int (*open)(struct bench_worker *w);
	int (*op)(struct bench_worker *w);
	void (*close)(struct bench_worker *w);
};

struct bench_row {
	/* what */
	char			name[24]; /* echo, ping, raw, service, ... */
	char			alg[16];  /* ecdsa-p256, ..., "-" */
	char			transport[16]; /* ipc, tcp, in-process, ... */
	int			conc;
	int			items; /* signatures per request */
	enum bench_alg		valg;  /* how to check samples */
	const struct bench_ops *ops;
	void		       *arg; /* the op's shared state */
	/* result */
	int	 supported;
	char	 note[128];
	double	 secs; /* measured window */
	uint64_t requests;
	double	 ops_per_s; /* items (signatures) per s */
	double	 p50_us, p99_us, p999_us;
	size_t	 checked; /* signatures verified */
	int	 lat_truncated;
	/* the row it is compared with, and the ratio */
	char   ref[48];
	double ratio;
};

/* Run parameters. */
struct bench_params {
	int    smoke;
	double warmup_s;      /* full mode */
	double duration_s;    /* full mode */
	int    smoke_ops;     /* smoke: requests per worker */
	int    sample_stride; /* full: keep every Nth signature */
};
extern struct bench_params bench_p;

/*
 * Runs a row: opens conc workers, warms up, measures for the duration (or
 * a fixed number of requests in smoke mode), fills the row's results and
 * checks every kept signature with the public keys of the row's checker.
 * Returns 0, or -1 after printing why (a failed request, a bad signature).
 */
int bench_run_row(struct bench_row *row);

/* Keeps a signature for checking if this request is sampled. */
void bench_keep(struct bench_worker *w, uint32_t msg, uint32_t version,
    const uint8_t *sig, size_t len, int der);
/* 1 when the current request's signatures should be kept. */
int bench_sampling(const struct bench_worker *w);
/* Sets w->err and returns -1. */
int bench_fail(struct bench_worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- bench_verify.c: OpenSSL checks */

/* Parses a public key from DER SubjectPublicKeyInfo; NULL on error. */
EVP_PKEY *bench_pubkey(const uint8_t *der, size_t len);
/*
 * 1 if sig is a valid signature of message/digest msg (an index) by pk for
 * alg, 0 if not.  der: ECDSA signature in DER (else raw r||s).
 */
int bench_check_sig(EVP_PKEY *pk, enum bench_alg alg, uint32_t msg,
    const uint8_t *sig, size_t len, int der);
/*
 * Splits "hsmkey:v<N>:<base64>" into the version and the signature bytes.
 * Returns 0, or -1 if malformed or longer than cap.
 */
int bench_parse_sigtext(const char *text, uint32_t *versionp, uint8_t *sig,
    size_t cap, size_t *lenp);

/*
 * The public keys a row's samples are checked with: one per version
 * (1..BENCH_MAXVER) of one key.  Owned by bench.c.
 */
#define BENCH_MAXVER 8
struct bench_keyset {
	char	       name[64];
	enum bench_alg alg;
	EVP_PKEY      *pk[BENCH_MAXVER + 1];
};
/* The keyset of a row (its arg gives it: bench_ops.c); NULL: nothing to
 * check. */
struct bench_keyset *bench_row_keys(const struct bench_row *row);

/* ---- bench_proc.c: processes */

struct bench_daemon {
	pid_t  pid;
	char   log[512];
	double startup_s; /* spawn until "ready" in the log */
};

/* Starts hsmkeyd --config conf --foreground with its stderr in
 * dir/hsmkeyd.N.log and waits for "ready" (at most 60 s). */
int bench_daemon_start(struct bench_daemon *d, const char *hsmkeyd,
    const char *conf, const char *dir);
/* The same as name (log dir/name.N.log, pid file dir/name.pid) with the
 * environment envp (NULL: ours), waiting at most wait_s for "ready". */
int bench_daemon_start_env(struct bench_daemon *d, const char *hsmkeyd,
    const char *conf, const char *dir, const char *name, char *const *envp,
    double wait_s);
/* SIGTERM, wait (15 s), then SIGKILL; returns its exit status or -1. */
int bench_daemon_stop(struct bench_daemon *d);
/* VmHWM and VmRSS of pid in KiB; 0 on success. */
int bench_rss(pid_t pid, long *hwm_kib, long *rss_kib);
/* Our environment with NAME=value instead of any NAME.  Caller frees
 * the array and *madep (the one string made here), not the others. */
char **bench_env_with(const char *name, const char *value, char **madep);
/* Starts this program as an echo server on urls (a NULL-ended list),
 * waits until it binds; kill with bench_daemon_stop(). */
int bench_echo_start(struct bench_daemon *d, const char *self, const char *dir,
    char *const *urls);
/* The echo server's main (argv: the urls). */
int bench_echo_main(int argc, char **argv);
/* Kills (SIGKILL) every process started here that is still running. */
void bench_kill_all(void);

/* Monotonic clock in seconds / nanoseconds. */
double	 bench_now(void);
uint64_t bench_now_ns(void);

/*
 * ---- bench.c: the run's options, rows and results.  Shared by the
 * sections (bench_sections.c, bench_many.c) and the report
 * (bench_report.c); main thread only.
 */

struct bench_opts {
	const char *json;
	const char *dir;
	const char *hsmkeyd;
	const char *ipc;
	const char *tcp;
	const char *echo_tcp;
	const char *module;
	const char *p11kit;
	const char *fixture;	 /* copy of build-bench/fixture-10k */
	const char *fixture_ipc; /* where its hsmkeyd listens */
	double	    fixture_copy_s;
	/* the slow-HSM rows: hsmkeyd on faultp11, with and without a gate */
	const char *slow_conf, *slow_ipc, *slow_control;
	const char *nogate_conf, *nogate_ipc;
	int	    slow_rounds; /* --slow-hsm ROUNDS: only those rows */
	char	    conf[512], cred[512], pin[512], echo_ipc[512];
	char	    self[512];
};
extern struct bench_opts bench_opt;

#define BENCH_MAXROWS 128
extern struct bench_row bench_rows[BENCH_MAXROWS];
extern int		bench_nrows;
extern int		bench_failed; /* a request or a check failed */

extern struct bench_daemon bench_daemon1, bench_daemon2;
extern double		   bench_t_start; /* when main() began */

/* The service's keys, and the admin handle. */
enum { BENCH_K_EC = 0, BENCH_K_ED, BENCH_K_RSA, BENCH_NKEYS };
extern struct bench_keyset bench_keys[BENCH_NKEYS];
extern const char *const   bench_alg_names[BENCH_NKEYS];
extern struct hsmkey	  *bench_admin;
extern struct bench_keyset bench_fixkey; /* the fixture's key */
#define BENCH_FIX_ROUNDS 3		 /* interleaved few/10k pairs */

/* Results that are not rows. */
struct bench_results {
	size_t echo_len;	   /* bytes of a sign request envelope */
	double startup1_s;	   /* hsmkeyd start, few keys */
	long   hwm1_kib, rss1_kib; /* after the main rows */
	long   hwm_bulk_kib;	   /* after making the versions */
	int    want_versions, versions, keys_made;
	double bulk_s;
	char   bulk_note[160];
	double startup2_s;	   /* hsmkeyd start, many versions */
	long   rss2_ready_kib;	   /* right after "ready" */
	long   hwm2_kib, rss2_kib; /* after the sign row */
	long   hwm2_ready_kib;	   /* VmHWM right after "ready" */
	int    done10k;
	int    from_fixture; /* the versions came from --fixture */
	int    fixture_keys;
	double few_ops, many_ops; /* means of the interleaved rows */
};
extern struct bench_results bench_res;

/* A new row in bench_rows (exits when full); the caller sets its ops. */
struct bench_row *bench_row_new(
    const char *name, const char *alg, const char *transport, int conc);
/* Runs a row and prints it as a progress line on stderr; 0 or -1 (and
 * bench_failed set). */
int bench_run(struct bench_row *r);
/* The first measured row that matches (transport NULL, conc 0: any). */
struct bench_row *bench_find_row(
    const char *name, const char *alg, const char *transport, int conc);
/* The best row of a kind (highest ops/s) over its concurrencies. */
struct bench_row *
bench_best_row(const char *name, const char *alg, const char *transport);

/* ---- bench_ops.c: the rows' operations and their shared args */

/* Every row's arg starts with its keyset (NULL: nothing to check). */
struct bench_echo_arg {
	struct bench_keyset *ks; /* NULL */
	const char	    *url;
};
struct bench_svc_arg {
	struct bench_keyset *ks;
	const char	    *url;
	const char	    *cred; /* NULL: bench_opt.cred */
};
struct bench_tok_arg {
	struct bench_keyset *ks;
	struct token	    *t;
	token_obj_t	     key;
	enum hk_scheme	     mech;
};

/* echo: a bare nanomsg REQ socket; ping, sign, batch: libhsmkey; tok:
 * token_sign() in this process (raw) or through p11-kit. */
extern const struct bench_ops bench_echo_ops, bench_ping_ops, bench_sign_ops,
    bench_batch_ops, bench_tok_ops;

/* Bytes of a one-digest sign request envelope, the echo rows' message. */
size_t bench_sign_request_len(void);

/* ---- bench_sections.c, bench_many.c: the groups of rows main() runs */

/* Fetches versions 1..maxver of ks's public keys through h; 0 or -1. */
int bench_fetch_pubkeys(struct hsmkey *h, struct bench_keyset *ks, int maxver);
void bench_section_echo_ping(void);
/* The token rows (raw and raw-copy, or p11-kit-remote) through module. */
void bench_section_token(const char *name, const char *module,
    const char *transport, const int *concs, int nconc);
void bench_section_service(void);
void bench_section_batch(void);
/* service-many: versions made through the service, then a restart. */
void bench_section_many(void);
/* service-10k and service-few on the --fixture token. */
void bench_section_fixture(void);

/* ---- bench_slow.c: the slow-HSM rows (issue 11) */

/* Rounds of interleaved rows on hsmkeyd over faultp11 (delay 0, 1, 5 ms,
 * limit 16), 64 clients (16 in smoke mode). */
void bench_section_slow(int rounds);
/* Their medians and targets on stdout / as a JSON member. */
void bench_slow_print(void);
void bench_slow_json(FILE *f);

/* ---- bench_report.c: ratios, targets, the table and the JSON */

/* The CPU model and the number of online CPUs. */
void bench_machine(char *cpu, size_t cpulen, long *ncpu);
/* Computes ratios and targets, prints the report on stdout and writes
 * json (if not NULL); 0, or -1 if the JSON could not be written. */
int bench_report(const char *cpu, long ncpu, const char *json);

#endif /* HK_BENCH_H */
