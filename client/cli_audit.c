/*
 * cli_audit.c: hsmkey audit verify FILE... [--pubkey PEM]: checks an audit
 * log offline (README "Audit log"): the shape of every line (a strict
 * parser for exactly the fixed field sets), seq continuity, the hash
 * chain (across FILEs given in order) and every checkpoint signature.
 * With signatures checked, at least one checkpoint must verify.  Whatever
 * the keys, the checkpoints must be as dense as the service writes them:
 * every file but the newest ends with one, no run of lines between two is
 * longer (in lines or in time) than [audit] checkpoint_every /
 * checkpoint_interval allow, and the newest file's unsigned tail neither
 * (unless --allow-unsigned-tail).  The line format, the parser and the
 * checkpoint input are proto/audit_format.h's, shared with the service.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit_format.h"
#include "cli.h"
#include "envelope.h"
#include "hk_client.h"
#include "wire.h"

#define MAX_PUBKEYS  16
#define MAX_WARNINGS 8
/* The service's [audit] defaults (service/config.c). */
#define DEFAULT_EVERY	    1000
#define DEFAULT_INTERVAL_MS (60 * 1000)
/* The writer looks at the clock once a second and then writes: a line
 * waits at most checkpoint_interval plus this for its checkpoint. */
#define WRITER_SLACK_MS 2000

/* ---- checkpoint signatures ---------------------------------------------- */

struct pubkey {
	EVP_PKEY *pkey;
	uint32_t  version; /* 0: from --pubkey, any version */
};

struct verifier {
	struct cli   *c;
	struct pubkey keys[MAX_PUBKEYS];
	size_t	      nkeys;
	int	      fetch; /* ask the service for unknown versions */
	int	      fetch_failed;
	int	      chain_only;
	uint64_t      every;	   /* --checkpoint-every */
	uint64_t      interval_ms; /* --checkpoint-interval */
	int	      allow_tail;  /* --allow-unsigned-tail */
	char	      warnings[MAX_WARNINGS][256];
	size_t	      nwarnings;
};

static void warn(struct verifier *vf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
warn(struct verifier *vf, const char *fmt, ...)
{
	va_list ap;

	if (vf->nwarnings == MAX_WARNINGS) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(
	    vf->warnings[vf->nwarnings], sizeof(vf->warnings[0]), fmt, ap);
	va_end(ap);
	vf->nwarnings++;
}

static int
load_pem(const char *pem, size_t len, EVP_PKEY **pkeyp)
{
	BIO *b;

	*pkeyp = NULL;
	if ((b = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		return -1;
	}
	*pkeyp = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
	BIO_free(b);
	return *pkeyp != NULL ? 0 : -1;
}

/* The service's public key of the audit key version v, or NULL. */
static EVP_PKEY *
fetch_key(struct verifier *vf, uint32_t version)
{
	struct hsmkey *h;
	EVP_PKEY      *pkey = NULL;
	char	      *pem = NULL;
	uint32_t       got;
	size_t	       i;

	for (i = 0; i < vf->nkeys; i++) {
		if (vf->keys[i].version == version) {
			return vf->keys[i].pkey;
		}
	}
	if (!vf->fetch || vf->fetch_failed || vf->nkeys == MAX_PUBKEYS) {
		return NULL;
	}
	if (cli_handle(vf->c, &h) != 0) {
		vf->fetch_failed = 1;
		return NULL;
	}
	if (hsmkey_pubkey_pem(h, HK_AUDIT_KEY_NAME, version, &pem, &got) !=
		0 ||
	    got != version || load_pem(pem, strlen(pem), &pkey) != 0) {
		warn(vf, "cannot fetch the public key of %s v%" PRIu32 ": %s",
		    HK_AUDIT_KEY_NAME, version, hsmkey_last_error(h));
		free(pem);
		return NULL;
	}
	free(pem);
	vf->keys[vf->nkeys].pkey = pkey;
	vf->keys[vf->nkeys].version = version;
	vf->nkeys++;
	return pkey;
}

static int
unbase64(const char *s, size_t len, uint8_t *out, size_t cap, size_t *lenp)
{
	int n;

	if (len == 0 || len % 4 != 0 || len / 4 * 3 > cap) {
		return -1;
	}
	if ((n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len)) <
	    0) {
		return -1;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes */
	if (s[len - 1] == '=') {
		n--;
	}
	if (s[len - 2] == '=') {
		n--;
	}
	*lenp = (size_t)n;
	return 0;
}

/* 1 valid, 0 invalid, -1 no key to check it with. */
static int
check_signature(struct verifier *vf, const struct hk_audit_line *l)
{
	uint8_t	      digest[32], sig[512];
	uint32_t      version = (uint32_t)l->version;
	EVP_PKEY_CTX *pctx;
	EVP_PKEY     *pkey;
	size_t	      siglen, i;
	int	      ok = 0, tried = 0;

	if (unbase64(l->sig.s, l->sig.len, sig, sizeof(sig), &siglen) != 0) {
		return 0;
	}
	if (hk_audit_checkpoint_digest(l->seq, l->head_hash, version,
		l->time.s, l->time.len, digest) != 0) {
		return 0;
	}
	/* keys given with --pubkey (any version), then the service's */
	for (i = 0; i <= vf->nkeys && !ok; i++) {
		if (i < vf->nkeys) {
			if (vf->keys[i].version != 0) {
				continue;
			}
			pkey = vf->keys[i].pkey;
		} else if ((pkey = fetch_key(vf, version)) == NULL) {
			break;
		}
		tried = 1;
		if ((pctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL) {
			continue;
		}
		ok = EVP_PKEY_verify_init(pctx) == 1 &&
		    EVP_PKEY_verify(
			pctx, sig, siglen, digest, sizeof(digest)) == 1;
		EVP_PKEY_CTX_free(pctx);
	}
	return ok ? 1 : (tried ? 0 : -1);
}

/* ---- the chain ---------------------------------------------------------- */

struct state {
	int	    have;	   /* a previous line exists */
	uint8_t	    prev_hash[32]; /* of the previous line */
	uint64_t    prev_seq;
	char	    prev_where[512]; /* "FILE:N" of the previous line */
	uint64_t    lines, first_seq, checkpoints, verified;
	uint64_t    since_checkpoint;
	uint64_t    gap_ms;	    /* time of the first line not covered */
	char	    gap_where[512]; /* "FILE:N" of that line */
	int	    last_cp;	    /* the last line read is a checkpoint */
	const char *end_file;	    /* the last line read: file and number */
	uint64_t    end_line;
	int	    continuation;
	const char *bad_file;
	uint64_t    bad_line;
	char	    bad[768];
};

static int bad(struct state *st, const char *file, uint64_t n, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static int
bad(struct state *st, const char *file, uint64_t n, const char *fmt, ...)
{
	va_list ap;

	st->bad_file = file;
	st->bad_line = n;
	va_start(ap, fmt);
	vsnprintf(st->bad, sizeof(st->bad), fmt, ap);
	va_end(ap);
	return -1;
}

/* The previous line, named for a message: "line 16" or "a.log:40". */
static const char *
prev_name(const struct state *st, const char *file, char *buf, size_t len)
{
	size_t flen = strlen(file);

	if (strncmp(st->prev_where, file, flen) == 0 &&
	    st->prev_where[flen] == ':') {
		snprintf(buf, len, "line %s", st->prev_where + flen + 1);
	} else {
		snprintf(buf, len, "%s", st->prev_where);
	}
	return buf;
}

/* The digits s[0..n) as a number (the parser checked they are digits). */
static int
digits(const char *s, size_t n)
{
	int v = 0;

	while (n-- > 0) {
		v = v * 10 + (*s++ - '0');
	}
	return v;
}

/* A line's "time" (YYYY-MM-DDTHH:MM:SS.mmmZ, shape checked by the parser)
 * as ms since the epoch; -1 for a date that does not exist. */
static int
line_time(const struct hk_audit_str *t, uint64_t *msp)
{
	struct tm tm, back;
	time_t	  sec;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = digits(t->s, 4) - 1900;
	tm.tm_mon = digits(t->s + 5, 2) - 1;
	tm.tm_mday = digits(t->s + 8, 2);
	tm.tm_hour = digits(t->s + 11, 2);
	tm.tm_min = digits(t->s + 14, 2);
	tm.tm_sec = digits(t->s + 17, 2);
	back = tm;
	if (tm.tm_year < 70 || (sec = timegm(&tm)) == (time_t)-1 ||
	    tm.tm_mday != back.tm_mday || tm.tm_hour != back.tm_hour ||
	    tm.tm_min != back.tm_min || tm.tm_sec != back.tm_sec) {
		return -1;
	}
	*msp = (uint64_t)sec * 1000 + (uint64_t)digits(t->s + 20, 3);
	return 0;
}

/* b - a, 0 when the clock went back. */
static uint64_t
ms_after(uint64_t a, uint64_t b)
{
	return b > a ? b - a : 0;
}

/* The bound on a line's wait for its checkpoint, for a message. */
static const char *
interval_name(const struct verifier *vf, char *buf, size_t len)
{
	char d[32];

	snprintf(buf, len, "--checkpoint-interval %s + %d s",
	    cli_fmt_duration(vf->interval_ms / 1000, d, sizeof(d)),
	    WRITER_SLACK_MS / 1000);
	return buf;
}

/*
 * The lines since the last checkpoint (from st->gap_where, at st->gap_ms)
 * against the service's bounds, at the checkpoint at time t or (tail) the
 * end of the log at now.  0, or -1 (st->bad) naming file:n.
 */
static int
check_gap(const struct verifier *vf, struct state *st, const char *file,
    uint64_t n, uint64_t t, int tail)
{
	const char *what = tail ? "the unsigned tail after the last checkpoint"
				: "this checkpoint";
	const char *fix = tail ? " (--allow-unsigned-tail accepts it)"
			       : " (lines were removed or checkpoints "
				 "dropped, or the service could not sign)";
	uint64_t    waited = ms_after(st->gap_ms, t);
	char	    b[64];

	if (st->since_checkpoint > vf->every) {
		return bad(st, file, n,
		    "%s covers %" PRIu64 " lines from %s, more than "
		    "--checkpoint-every %" PRIu64 "%s",
		    what, st->since_checkpoint, st->gap_where, vf->every, fix);
	}
	if (waited > vf->interval_ms + WRITER_SLACK_MS) {
		return bad(st, file, n,
		    "%s leaves %s unsigned for %" PRIu64 ".%03" PRIu64
		    " s, more than %s%s",
		    what, st->gap_where, waited / 1000, waited % 1000,
		    interval_name(vf, b, sizeof(b)), fix);
	}
	return 0;
}

/* Counts line n (at time t) into the run since the last checkpoint, or
 * ends that run at a checkpoint.  0 or -1 (st->bad). */
static int
track_gap(const struct verifier *vf, struct state *st, const char *file,
    uint64_t n, const struct hk_audit_line *l)
{
	uint64_t t;

	if (line_time(&l->time, &t) != 0) {
		return bad(st, file, n, "\"time\" is not a date");
	}
	st->last_cp = l->checkpoint;
	if (!l->checkpoint) {
		if (st->since_checkpoint++ == 0) {
			st->gap_ms = t;
			snprintf(st->gap_where, sizeof(st->gap_where),
			    "%s:%" PRIu64, file, n);
		}
		return 0;
	}
	if (st->since_checkpoint > 0 &&
	    check_gap(vf, st, file, n, t, 0) != 0) {
		return -1;
	}
	st->since_checkpoint = 0;
	return 0;
}

static int
check_line(struct verifier *vf, struct state *st, const char *file, uint64_t n,
    char *text, size_t len)
{
	static const char zeros[65] =
	    "0000000000000000000000000000000000000000000000000000000000000000";
	struct hk_audit_line l;
	uint64_t	     seq;
	char		     why[160], pn[520];
	int		     r;

	if (len > 0 && text[len - 1] == '\r') {
		return bad(st, file, n, "carriage return in the line");
	}
	if (strlen(text) != len) {
		return bad(st, file, n, "NUL byte in the line");
	}
	if (hk_audit_parse(text, len, &l, why, sizeof(why)) != 0) {
		return bad(st, file, n, "not a valid audit line: %s", why);
	}
	seq = l.seq;
	if (!st->have) {
		st->first_seq = seq;
		if (strncmp(l.prev.s, zeros, 64) != 0 || seq != 1) {
			st->continuation = 1;
		}
	} else {
		if (memcmp(l.prev_hash, st->prev_hash, 32) != 0) {
			return bad(st, file, n,
			    "prev hash does not match %s (one of the two "
			    "lines was changed, or lines were removed, "
			    "inserted or reordered between them)",
			    prev_name(st, file, pn, sizeof(pn)));
		}
		if (seq != st->prev_seq + 1) {
			return bad(st, file, n,
			    "seq %" PRIu64 " follows seq %" PRIu64 " of %s",
			    seq, st->prev_seq,
			    prev_name(st, file, pn, sizeof(pn)));
		}
	}
	if (l.checkpoint) {
		st->checkpoints++;
		r = vf->chain_only ? -1 : check_signature(vf, &l);
		if (r == 0) {
			return bad(st, file, n,
			    "checkpoint signature does not "
			    "verify with the public key of %s v%" PRIu64,
			    HK_AUDIT_KEY_NAME, l.version);
		}
		if (r == 1) {
			st->verified++;
		}
	}
	if (track_gap(vf, st, file, n, &l) != 0) {
		return -1;
	}
	if (hk_audit_chain_step(text, len, st->prev_hash) != 0) {
		return bad(st, file, n, "SHA-256 failed");
	}
	st->prev_seq = seq;
	st->have = 1;
	st->lines++;
	snprintf(
	    st->prev_where, sizeof(st->prev_where), "%s:%" PRIu64, file, n);
	return 0;
}

/* 0 intact so far, -1 damaged (st->bad), -2 unreadable (message printed).
 * A file that is not the newest must end with a checkpoint. */
static int
check_file(struct verifier *vf, struct state *st, const char *path, int newest)
{
	FILE	*f;
	char	*buf;
	size_t	 len;
	uint64_t n = 0;
	int	 c, r = 0;

	if ((f = fopen(path, "r")) == NULL) {
		cli_error(vf->c, HSMKEY_EINVAL, "", "cannot read %s: %s", path,
		    strerror(errno));
		return -2;
	}
	buf = xmalloc(HK_AUDIT_READ_MAX + 1);
	st->last_cp = 0;
	while (r == 0) {
		len = 0;
		while ((c = getc(f)) != EOF && c != '\n') {
			if (len == HK_AUDIT_READ_MAX) {
				r = bad(st, path, n + 1,
				    "line longer than %d bytes",
				    HK_AUDIT_READ_MAX);
				break;
			}
			buf[len++] = (char)c;
		}
		if (r != 0) {
			break;
		}
		if (c == EOF && len == 0) {
			break;
		}
		n++;
		buf[len] = '\0';
		if (c == EOF) {
			r = bad(st, path, n,
			    "last line has no newline (torn "
			    "write; hsmkeyd cuts it at start)");
			break;
		}
		r = check_line(vf, st, path, n, buf, len);
	}
	if (r == 0 && ferror(f)) {
		cli_error(vf->c, HSMKEY_EINVAL, "", "cannot read %s: %s", path,
		    strerror(errno));
		r = -2;
	}
	if (r == 0 && n == 0) {
		warn(vf, "%s is empty", path);
	}
	if (r == 0 && n > 0) {
		st->end_file = path;
		st->end_line = n;
	}
	if (r == 0 && !newest && !st->last_cp) {
		r = bad(st, path, n,
		    "a rotated file (any but the last FILE) must end with "
		    "the checkpoint the service writes before it rotates: "
		    "lines were removed from its end, or the files are not "
		    "in order");
	}
	free(buf);
	fclose(f);
	return r;
}

/* Loads the --pubkey PEMs into vf; 0 or an exit code (error printed). */
static int
load_pubkeys(struct cli *c, const struct cli_args *a, struct verifier *vf)
{
	uint8_t *pem;
	size_t	 i, pemlen;
	char	 err[256];

	for (i = 0; i < a->nmulti; i++) {
		if (cli_read_input(a->multi[i], 64 * 1024, &pem, &pemlen, err,
			sizeof(err)) != 0) {
			return cli_usage(c, "--pubkey: %s", err);
		}
		if (vf->nkeys == MAX_PUBKEYS ||
		    load_pem((const char *)pem, pemlen,
			&vf->keys[vf->nkeys].pkey) != 0) {
			free(pem);
			return cli_usage(c,
			    "--pubkey %s: not a PEM public key "
			    "(hsmkey pubkey %s --version N)",
			    a->multi[i], HK_AUDIT_KEY_NAME);
		}
		free(pem);
		vf->nkeys++;
	}
	return 0;
}

/* Checks the files in order: 0 intact, -1 damaged, -2 unreadable. */
static int
check_files(struct verifier *vf, struct state *st, const struct cli_args *a)
{
	int k, r = 0;

	for (k = 0; k < a->npos; k++) {
		if ((r = check_file(vf, st, a->pos[k], k == a->npos - 1)) !=
		    0) {
			break;
		}
		if (k == 0 && st->continuation) {
			warn(vf,
			    "%s starts at seq %" PRIu64 " and continues a "
			    "chain from an earlier file (give that file first "
			    "to check the link)",
			    a->pos[0], st->first_seq);
		}
	}
	if (r == 0 && st->checkpoints > st->verified && !vf->chain_only) {
		r = bad(st, st->prev_where, 0,
		    "a checkpoint could not be checked");
	}
	if (r == 0 && !vf->chain_only && st->verified == 0) {
		r = bad(st, a->pos[a->npos - 1], 0,
		    "no checkpoint signature verified: nothing shows that "
		    "the service wrote %s",
		    a->npos == 1 ? "this log" : "these files");
	}
	if (r == 0 && st->since_checkpoint > 0 && !vf->allow_tail) {
		r = check_gap(
		    vf, st, st->end_file, st->end_line, hk_now_ms(), 1);
	}
	if (r != 0) {
		return r;
	}
	if (vf->chain_only) {
		warn(vf,
		    "checkpoint signatures were not verified: give "
		    "--pubkey PEM (hsmkey pubkey %s) or credentials",
		    HK_AUDIT_KEY_NAME);
	}
	if (st->since_checkpoint > 0) {
		warn(vf,
		    "the last %" PRIu64 " line(s) come after the last "
		    "checkpoint: no signature covers them yet (%s)",
		    st->since_checkpoint,
		    vf->allow_tail ? "--allow-unsigned-tail"
				   : "within the checkpoint bounds");
	}
	return 0;
}

static void
report_json(struct cli *c, const struct verifier *vf, const struct state *st,
    int npos, int r)
{
	size_t i;

	json_object_begin(&c->j);
	json_kv_bool(&c->j, "intact", r == 0);
	json_kv_u64(&c->j, "files", (uint64_t)npos);
	json_kv_u64(&c->j, "lines", st->lines);
	json_kv_u64(&c->j, "first_seq", st->first_seq);
	json_kv_u64(&c->j, "last_seq", st->prev_seq);
	json_kv_bool(&c->j, "continuation", st->continuation);
	json_kv_u64(&c->j, "checkpoints", st->checkpoints);
	json_kv_u64(&c->j, "checkpoints_verified", st->verified);
	json_kv_u64(&c->j, "unsigned_tail", st->since_checkpoint);
	if (r != 0) {
		json_key(&c->j, "error");
		json_object_begin(&c->j);
		json_kv_string(&c->j, "file", st->bad_file);
		json_kv_u64(&c->j, "line", st->bad_line);
		json_kv_string(&c->j, "message", st->bad);
		json_object_end(&c->j);
	}
	json_key(&c->j, "warnings");
	json_array_begin(&c->j);
	for (i = 0; i < vf->nwarnings; i++) {
		json_string(&c->j, vf->warnings[i]);
	}
	json_array_end(&c->j);
	json_object_end(&c->j);
}

/* Prints the result (r from check_files()); returns the exit code. */
static int
report(struct cli *c, const struct verifier *vf, const struct state *st,
    int npos, int r)
{
	size_t i;

	if (c->json) {
		report_json(c, vf, st, npos, r);
	} else if (r == 0) {
		printf("intact: %" PRIu64 " lines in %d file%s, seq %" PRIu64
		       "..%" PRIu64 ", %" PRIu64 " checkpoint%s, %" PRIu64
		       " signature%s verified\n",
		    st->lines, npos, npos == 1 ? "" : "s", st->first_seq,
		    st->prev_seq, st->checkpoints,
		    st->checkpoints == 1 ? "" : "s", st->verified,
		    st->verified == 1 ? "" : "s");
	}
	fflush(stdout);
	for (i = 0; i < vf->nwarnings; i++) {
		fprintf(stderr, "hsmkey: warning: %s\n", vf->warnings[i]);
	}
	if (r == 0) {
		return 0;
	}
	if (st->bad_line > 0) {
		fprintf(stderr, "hsmkey: %s:%" PRIu64 ": %s\n", st->bad_file,
		    st->bad_line, st->bad);
	} else {
		fprintf(stderr, "hsmkey: %s: %s\n", st->bad_file, st->bad);
	}
	return EXIT_INVALID;
}

/* --checkpoint-every, --checkpoint-interval, --allow-unsigned-tail into
 * vf; 0 or EXIT_USAGE (error printed). */
static int
load_bounds(struct cli *c, const struct cli_args *a, struct verifier *vf)
{
	const char *every = cli_opt(a, "checkpoint-every");
	const char *interval = cli_opt(a, "checkpoint-interval");
	uint64_t    s;
	uint32_t    n;

	vf->every = DEFAULT_EVERY;
	vf->interval_ms = DEFAULT_INTERVAL_MS;
	vf->allow_tail = cli_opt(a, "allow-unsigned-tail") != NULL;
	if (every != NULL) {
		if (cli_parse_u32(every, 0, &n) != 0) {
			return cli_usage(c,
			    "invalid --checkpoint-every '%s': give the "
			    "service's [audit] checkpoint_every (1 or more)",
			    every);
		}
		vf->every = n;
	}
	if (interval != NULL) {
		if (hk_parse_duration(interval, &s) != 0 || s == 0 ||
		    s > HK_DURATION_MAX_S) {
			return cli_usage(c,
			    "invalid --checkpoint-interval '%s': give the "
			    "service's [audit] checkpoint_interval (60, 30s, "
			    "15m, 12h, 7d)",
			    interval);
		}
		vf->interval_ms = s * 1000;
	}
	return 0;
}

static int
cmd_audit_verify(struct cli *c, struct cli_args *a)
{
	struct verifier vf;
	struct state	st;
	const char     *creds;
	size_t		i;
	int		r;

	memset(&vf, 0, sizeof(vf));
	memset(&st, 0, sizeof(st));
	vf.c = c;
	if ((r = load_bounds(c, a, &vf)) != 0 ||
	    (r = load_pubkeys(c, a, &vf)) != 0) {
		goto out;
	}
	creds = c->credentials != NULL ? c->credentials
				       : getenv("HSMKEY_CREDENTIALS");
	if (vf.nkeys == 0) {
		if (creds != NULL && *creds != '\0') {
			vf.fetch = 1;
		} else {
			vf.chain_only = 1;
		}
	}
	if ((r = check_files(&vf, &st, a)) == -2) {
		r = EXIT_USAGE; /* as 'sign --in' with a missing file */
		goto out;
	}
	r = report(c, &vf, &st, a->npos, r);
out:
	for (i = 0; i < vf.nkeys; i++) {
		EVP_PKEY_free(vf.keys[i].pkey);
	}
	return r;
}

static const struct cli_opt verify_opts[] = {
	{ "pubkey", 1, 1 },
	{ "checkpoint-every", 1, 0 },
	{ "checkpoint-interval", 1, 0 },
	{ "allow-unsigned-tail", 0, 0 },
	{ NULL, 0, 0 },
};

const struct cli_cmd cli_audit_cmds[] = {
	{ "audit verify", cmd_audit_verify,
	    "FILE... [--pubkey PEM] [--checkpoint-every N] "
	    "[--checkpoint-interval D] [--allow-unsigned-tail]",
	    "Checks an audit log offline: the shape of every line, seq "
	    "continuity, the hash chain (across FILEs given oldest first) and "
	    "every checkpoint signature, with --pubkey PEM (repeatable; from "
	    "'hsmkey pubkey hsmkey-audit --version N') or, with credentials, "
	    "the service's key; then at least one must verify. Checkpoints "
	    "must be as dense as the service's [audit] checkpoint_every and "
	    "checkpoint_interval (give them if not the defaults 1000 and "
	    "60s), every FILE but the last must end with one, and so must "
	    "the last unless its unsigned tail is within those bounds or "
	    "--allow-unsigned-tail. Exit 0 intact, 1 damaged (the first bad "
	    "line is named).",
	    verify_opts, 1, CLI_MAX_POS },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0 },
};
