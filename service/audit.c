/* audit.c: the hash-chained audit log with group commit (see audit.h). */
#define _GNU_SOURCE /* memrchr */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "audit_format.h"
#include "crypto.h"
#include "envelope.h"
#include "hk_err.h"
#include "log.h"
#include "refusals.h"
#include "svckeys.h"
#include "wire.h"

#define AUDIT_QUEUE_MAX 65536 /* events waiting for the writer */
#define AUDIT_RETRY_MS	1000  /* reopen a failed log this often */

struct audit_item {
	struct audit_item *next;
	void (*done)(void *, int);
	void  *arg;
	size_t len;
	char   body[]; /* len bytes and a NUL */
};

/* The chain as of the last durable line (or as a batch goes along). */
struct chain {
	uint64_t seq;	     /* seq of the last line, 0: none */
	uint8_t	 prev[32];   /* hash of the last line */
	uint64_t since_cp;   /* lines since the last checkpoint */
	int	 cp_written; /* a checkpoint is in this batch */
};

struct audit {
	pthread_mutex_t	   lock;
	pthread_cond_t	   wake;    /* the writer: work, stop */
	pthread_cond_t	   done_cv; /* audit_log() waiters */
	struct audit_item *head, *tail;
	size_t		   queued;
	int		   stopping;
	int		   rotate_req;
	int		   ok; /* the last write worked */
	char		   why[PATH_MAX + 128];
	pthread_t	   thread;
	int		   running;
	int		   signs;
	struct refusals	   refused; /* counted, not audited line by line */

	/* the writer's own (and audit_open's, before it starts) */
	char		     *path;
	int		      fd;
	int		      opened_once;
	dev_t		      dev;
	ino_t		      ino;
	uint64_t	      size; /* durable bytes in the file */
	struct chain	      ch;
	uint64_t	      every;
	uint64_t	      interval_ms;
	uint64_t	      max_size;
	uint64_t	      last_cp_ms;
	uint64_t	      cp_backoff_ms; /* no signing attempt before */
	int		      cp_forced;
	int		      resume_due; /* write "log-resume" first */
	int		      rotate_pending;
	char		     *rotated_name; /* "log-rotate" line to write */
	uint64_t	      next_retry_ms;
	struct token	     *tok;
	struct token_session *s;
	struct keyring	     *kr;
	char		     *buf;
	size_t		      used, cap;
};

/* ---- formatting (the format is audit_format.h's) ------------------------ */

/* The body of ev (the fields between "time" and "prev"). */
static int
format_body(char *out, size_t cap, const struct audit_event *ev)
{
	return hk_audit_format_event(out, cap, ev);
}

static int
buf_reserve(struct audit *a, size_t more)
{
	size_t ncap;
	char  *nbuf;

	if (a->cap - a->used >= more) {
		return 0;
	}
	ncap = a->cap ? a->cap : 64 * 1024;
	while (ncap - a->used < more) {
		if (ncap > SIZE_MAX / 2) {
			return HK_ERR_NOMEM;
		}
		ncap *= 2;
	}
	if ((nbuf = realloc(a->buf, ncap)) == NULL) {
		return HK_ERR_NOMEM;
	}
	a->buf = nbuf;
	a->cap = ncap;
	return 0;
}

/* Appends {"seq":..,"time":..<body>,"prev":..} and a newline to the batch
 * and moves the chain on. */
static int
add_line(struct audit *a, struct chain *ch, const char *ts, const char *body)
{
	char *line;
	int   n, r;

	if ((r = buf_reserve(a, HK_AUDIT_LINE_MAX + 1)) != 0) {
		return r;
	}
	line = a->buf + a->used;
	if ((n = hk_audit_format_line(line, HK_AUDIT_LINE_MAX, ch->seq + 1, ts,
		 body, ch->prev)) < 0) {
		return n;
	}
	if ((r = hk_audit_chain_step(line, (size_t)n, ch->prev)) != 0) {
		return r;
	}
	line[n] = '\n';
	a->used += (size_t)n + 1;
	ch->seq++;
	ch->since_cp++;
	return 0;
}

/* A service event (client "-"): log-rotate, log-resume. */
static int
add_service_line(struct audit *a, struct chain *ch, const char *ts,
    const char *op, const char *key)
{
	struct audit_event ev;
	char		   body[HK_AUDIT_BODY_MAX];
	int		   n;

	memset(&ev, 0, sizeof(ev));
	ev.client = "-";
	ev.op = op;
	ev.key = key;
	ev.status = HSMKEY__V1__STATUS__STATUS_OK;
	if ((n = format_body(body, sizeof(body), &ev)) < 0) {
		return n;
	}
	return add_line(a, ch, ts, body);
}

/*
 * Signs a checkpoint of seq over head at time ts with the audit key: base64
 * DER ECDSA into b64 (cap bytes) and the key version into *versionp.  The
 * signed input (audit.h) covers every field of the checkpoint line but the
 * signature itself.
 */
static int
sign_checkpoint(struct audit *a, uint64_t seq, const uint8_t head[32],
    const char *ts, char *b64, size_t cap, uint32_t *versionp)
{
	struct keyring_signer sg;
	uint8_t		      digest[32], sig[CRYPTO_MAX_SIG];
	size_t		      siglen = sizeof(sig);
	char		     *text = NULL;
	int		      r;

	/* never wait for the token here: a worker may wait for this lock
	 * while a repair waits for the worker; the checkpoint comes later */
	if ((r = token_hold(a->tok, 0)) != 0) {
		return r;
	}
	if ((r = keyring_signer(a->kr, HK_AUDIT_KEY_NAME, 0, &sg)) == 0 &&
	    sg.alg != HK_ALG_ECDSA_P256) {
		r = HK_ERR_UNSUPPORTED;
	}
	if (r == 0 &&
	    hk_audit_checkpoint_digest(
		seq, head, sg.version, ts, strlen(ts), digest) != 0) {
		r = HK_ERR_INTERNAL;
	}
	if (r == 0) {
		r = token_sign(a->s, sg.priv, HK_SCHEME_ECDSA, digest,
		    sizeof(digest), sig, &siglen);
	}
	token_release(a->tok);
	if (r != 0 ||
	    (r = crypto_ecdsa_raw_to_der(sig, &siglen, sizeof(sig))) != 0 ||
	    (r = hk_base64_encode(sig, siglen, &text)) != 0) {
		return r;
	}
	keyring_count(sg.v, KR_SIGN, 1);
	if (strlen(text) >= cap) {
		free(text);
		return HK_ERR_TOO_LARGE;
	}
	memcpy(b64, text, strlen(text) + 1);
	free(text);
	*versionp = sg.version;
	return 0;
}

/* Appends a signed checkpoint line; a signing failure is logged and leaves
 * the batch as it was (the events do not depend on checkpoints). */
static int
add_checkpoint(struct audit *a, struct chain *ch, const char *ts, uint64_t now)
{
	char	 body[HK_AUDIT_BODY_MAX], b64[256];
	uint32_t version = 0;
	int	 n, r;

	if (now < a->cp_backoff_ms) {
		return 0;
	}
	if ((r = sign_checkpoint(a, ch->seq + 1, ch->prev, ts, b64,
		 sizeof(b64), &version)) != 0) {
		log_err_r(r,
		    "audit log %s: cannot sign a checkpoint with key "
		    "'%s' (the log goes on; retrying in 10 s)",
		    a->path, HK_AUDIT_KEY_NAME);
		a->cp_backoff_ms = now + 10 * 1000;
		return 0;
	}
	/* the fields after "time"; add_line() appends prev */
	if ((n = hk_audit_format_checkpoint(
		 body, sizeof(body), version, ch->prev, b64)) < 0) {
		return n;
	}
	if ((r = add_line(a, ch, ts, body)) != 0) {
		return r;
	}
	ch->since_cp = 0;
	ch->cp_written = 1;
	return 0;
}

/* ---- the file ------------------------------------------------------------ */

static void
set_state(struct audit *a, int ok, const char *reason)
{
	pthread_mutex_lock(&a->lock);
	a->ok = ok;
	if (ok) {
		snprintf(a->why, sizeof(a->why), "ok");
	} else {
		snprintf(a->why, sizeof(a->why),
		    "audit log %s cannot be "
		    "written: %s",
		    a->path, reason);
	}
	pthread_mutex_unlock(&a->lock);
}

static int
write_all(int fd, const char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -1;
		}
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void
fsync_dir(const char *path)
{
	char dir[PATH_MAX], *slash;
	int  fd;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		return;
	}
	if ((slash = strrchr(dir, '/')) == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else if (slash == dir) {
		dir[1] = '\0';
	} else {
		*slash = '\0';
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/*
 * Reads the end of the regular file fd (size bytes): cuts a torn last line
 * (one a crash left without its newline: no reply waited on it), and gives
 * the seq and hash of the last whole line (*havep 0 if there is none).
 */
static int
read_tail(struct audit *a, int fd, uint64_t *sizep, uint64_t *seqp,
    uint8_t hash[32], int *havep)
{
	uint64_t size = *sizep, off;
	char	*buf = NULL, *end, *start, *p;
	ssize_t	 n;
	size_t	 len;
	int	 r = HK_ERR_SYSTEM;

	*havep = 0;
	*seqp = 0;
	if (size == 0) {
		return 0;
	}
	if ((buf = malloc(HK_AUDIT_READ_MAX + 1)) == NULL) {
		return HK_ERR_NOMEM;
	}
	off = size > HK_AUDIT_READ_MAX ? size - HK_AUDIT_READ_MAX : 0;
	len = (size_t)(size - off);
	if ((n = pread(fd, buf, len, (off_t)off)) < 0 || (size_t)n != len) {
		log_warn("audit log %s: cannot read its end", a->path);
		goto out;
	}
	if (buf[len - 1] != '\n') {
		end = memrchr(buf, '\n', len);
		if (end == NULL && off > 0) {
			log_warnx("audit log %s: its last line is longer than "
				  "any line hsmkeyd writes; not touched",
			    a->path);
			r = 0;
			goto out;
		}
		len = end == NULL ? 0 : (size_t)(end - buf) + 1;
		if (ftruncate(fd, (off_t)(off + len)) != 0 ||
		    fdatasync(fd) != 0) {
			log_warn("audit log %s: cannot cut its torn last line",
			    a->path);
			goto out;
		}
		log_warnx(
		    "audit log %s: removed a torn last line (%" PRIu64
		    " bytes without a newline, left by a crash; no reply had "
		    "waited on it)",
		    a->path, size - off - len);
		size = off + len;
		*sizep = size;
		if (len == 0) {
			r = 0;
			goto out;
		}
	}
	/* the last whole line is buf[start .. len - 1) */
	buf[len - 1] = '\0';
	p = memrchr(buf, '\n', len - 1);
	if (p == NULL && off > 0) {
		log_warnx("audit log %s: its last line is too long to be ours",
		    a->path);
		r = 0;
		goto out;
	}
	start = p == NULL ? buf : p + 1;
	if ((r = hk_audit_chain_step(
		 start, (size_t)(buf + len - 1 - start), hash)) != 0) {
		goto out;
	}
	if (hk_audit_line_seq(start, (size_t)(buf + len - 1 - start), seqp) !=
	    0) {
		log_warnx("audit log %s: its last line has no seq; the chain "
			  "goes on from its hash",
		    a->path);
	}
	*havep = 1;
	r = 0;
out:
	free(buf);
	return r;
}

/* Opens (or reopens) the path and sets where the chain goes on from. */
static int
open_log(struct audit *a)
{
	struct stat sb;
	uint64_t    size = 0, seq = 0;
	uint8_t	    hash[32];
	int	    fd, have = 0, r, e;

	if ((fd = open(a->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC,
		 0600)) < 0) {
		return -1;
	}
	if (fstat(fd, &sb) != 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if (S_ISREG(sb.st_mode)) {
		size = (uint64_t)sb.st_size;
		if ((r = read_tail(a, fd, &size, &seq, hash, &have)) != 0) {
			close(fd);
			errno = EIO;
			return -1;
		}
		if (sb.st_size == 0) {
			fsync_dir(a->path); /* a new file: its name too */
		}
	}
	if (!a->opened_once ||
	    (S_ISREG(sb.st_mode) && sb.st_dev == a->dev &&
		sb.st_ino == a->ino)) {
		/* the file we wrote: its end is the truth */
		if (have) {
			if (a->opened_once &&
			    (seq != a->ch.seq ||
				memcmp(hash, a->ch.prev, 32) != 0)) {
				log_warnx(
				    "audit log %s: lines of a failed write "
				    "remained; the chain goes on after them "
				    "(seq %" PRIu64 ")",
				    a->path, seq);
			}
			a->ch.seq = seq;
			memcpy(a->ch.prev, hash, 32);
		}
	} else if (have && memcmp(hash, a->ch.prev, 32) != 0) {
		log_warnx(
		    "audit log %s: the path now holds lines this service "
		    "did not write last; the chain goes on from seq %" PRIu64
		    " (audit verify will show the break)",
		    a->path, a->ch.seq);
	}
	a->opened_once = 1;
	a->dev = sb.st_dev;
	a->ino = sb.st_ino;
	a->size = S_ISREG(sb.st_mode) ? size : 0;
	a->fd = fd;
	return 0;
}

/* After a failed write: cut what the batch left and close, so that the next
 * attempt reopens the path. */
static void
drop_fd(struct audit *a)
{
	struct stat sb;

	if (a->fd < 0) {
		return;
	}
	if (fstat(a->fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
	    (uint64_t)sb.st_size > a->size) {
		if (ftruncate(a->fd, (off_t)a->size) != 0 ||
		    fdatasync(a->fd) != 0) {
			log_warn("audit log %s: cannot cut a failed write",
			    a->path);
		}
	}
	close(a->fd);
	a->fd = -1;
}

/* ---- the writer ---------------------------------------------------------- */

static uint64_t
now_ms(void)
{
	return hk_now_ms();
}

/* One line for each (client, reason) refused in the interval: op as the
 * refusal's, "key" the reason, "items" the count. */
static int
add_refused_lines(struct audit *a, struct chain *ch, const char *ts,
    uint64_t now, const struct refusal_count *rf, size_t n)
{
	struct audit_event ev;
	char		   body[HK_AUDIT_BODY_MAX];
	size_t		   i;
	int		   r;

	for (i = 0; i < n; i++) {
		memset(&ev, 0, sizeof(ev));
		ev.client = rf[i].client;
		ev.op = rf[i].op;
		ev.key = rf[i].reason;
		ev.status = rf[i].status;
		ev.items = rf[i].count > UINT32_MAX ? UINT32_MAX
						    : (uint32_t)rf[i].count;
		if ((r = format_body(body, sizeof(body), &ev)) < 0 ||
		    (r = add_line(a, ch, ts, body)) != 0) {
			return r;
		}
		if (ch->since_cp >= a->every &&
		    (r = add_checkpoint(a, ch, ts, now)) != 0) {
			return r;
		}
	}
	return 0;
}

/*
 * Writes pending service lines, the items and the checkpoints due as one
 * write(2) + fdatasync(2).  Returns 0 or HK_ERR_UNAVAILABLE (nothing of the
 * batch is kept).
 */
static int
write_batch(struct audit *a, struct audit_item *items)
{
	struct audit_item   *it;
	struct chain	     ch = a->ch;
	struct refusal_count rf[REFUSALS_SLOTS];
	uint64_t	     now = now_ms();
	size_t		     nrf, mark;
	char		     ts[40];
	int		     r = 0, e = 0, was_ok, sync, stopping;

	pthread_mutex_lock(&a->lock);
	was_ok = a->ok;
	stopping = a->stopping;
	pthread_mutex_unlock(&a->lock);
	hk_audit_time(ts, now);
	ch.cp_written = 0;
	if (a->fd < 0 && open_log(a) != 0) {
		e = errno;
		goto fail;
	}
	ch.seq = a->ch.seq;
	memcpy(ch.prev, a->ch.prev, 32);
	a->used = 0;
	if (a->rotated_name != NULL) {
		r = add_service_line(
		    a, &ch, ts, "log-rotate", a->rotated_name);
	}
	if (r == 0 && a->resume_due) {
		r = add_service_line(a, &ch, ts, "log-resume", "");
	}
	if (r == 0 && a->cp_forced) {
		r = add_checkpoint(a, &ch, ts, now);
	}
	/* counted refusals need no fsync of their own: the next batch
	 * that has one makes them durable */
	sync = a->used > 0;
	if (r == 0 &&
	    (nrf = refusals_take(&a->refused, now, stopping, rf)) > 0) {
		r = add_refused_lines(a, &ch, ts, now, rf, nrf);
	}
	mark = a->used;
	for (it = items; r == 0 && it != NULL; it = it->next) {
		r = add_line(a, &ch, ts, it->body);
		if (r == 0 && ch.since_cp >= a->every) {
			r = add_checkpoint(a, &ch, ts, now);
		}
	}
	if (r == 0 && ch.since_cp > 0 &&
	    now >= a->last_cp_ms + a->interval_ms) {
		r = add_checkpoint(a, &ch, ts, now);
	}
	if (r != 0) {
		log_err_r(r, "audit log %s: cannot format a batch", a->path);
		e = ENOMEM;
		goto fail;
	}
	if (a->used == 0) {
		/* a checkpoint that could not be signed: try again later */
		a->cp_forced = 0;
		a->last_cp_ms = now;
		return 0;
	}
	sync = sync || a->used > mark;
	if (write_all(a->fd, a->buf, a->used) != 0 ||
	    (sync && fdatasync(a->fd) != 0)) {
		e = errno;
		drop_fd(a);
		goto fail;
	}
	/* durable: commit */
	a->ch = ch;
	a->size += a->used;
	if (ch.cp_written || a->cp_forced) {
		a->last_cp_ms = now;
		a->cp_forced = 0;
	}
	free(a->rotated_name);
	a->rotated_name = NULL;
	a->resume_due = 0;
	if (!was_ok) {
		log_info("audit log %s: writable again; the chain goes on at "
			 "seq %" PRIu64,
		    a->path, a->ch.seq);
		set_state(a, 1, NULL);
	}
	if (a->max_size != 0 && a->size >= a->max_size) {
		a->rotate_pending = 1;
	}
	return 0;
fail:
	if (was_ok) {
		log_error("audit log %s cannot be written: %s; requests that "
			  "need it fail until it can (retrying every second)",
		    a->path, strerror(e));
	}
	set_state(a, 0, strerror(e));
	a->resume_due = 1;
	a->cp_forced = 1;
	a->next_retry_ms = now_ms() + AUDIT_RETRY_MS;
	return HK_ERR_UNAVAILABLE;
}

/* Renames the log to PATH.<UTC time> and starts a new file whose first
 * line ("log-rotate") chains to the old file's last. */
static void
rotate_now(struct audit *a)
{
	char	    name[PATH_MAX], ts[32], *base;
	struct stat sb;
	time_t	    t = time(NULL);
	struct tm   tm;
	int	    i;

	if (a->fd < 0) {
		return; /* not now: after the log works again */
	}
	if (fstat(a->fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		log_warnx("audit log %s is not a regular file: not rotated",
		    a->path);
		a->rotate_pending = 0;
		return;
	}
	/* the old file ends with a checkpoint */
	if (a->ch.since_cp > 0) {
		a->cp_forced = 1;
		if (write_batch(a, NULL) != 0) {
			return;
		}
	}
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "%Y%m%dT%H%M%SZ", &tm);
	for (i = 0; i < 100; i++) {
		if (snprintf(name, sizeof(name), i == 0 ? "%s.%s" : "%s.%s.%d",
			a->path, ts, i) >= (int)sizeof(name)) {
			log_warnx(
			    "audit log %s: path too long to rotate", a->path);
			a->rotate_pending = 0;
			return;
		}
		if (access(name, F_OK) != 0) {
			break;
		}
	}
	if (rename(a->path, name) != 0) {
		log_warn("audit log %s: cannot rotate to %s", a->path, name);
		a->rotate_pending = 0;
		return;
	}
	a->rotate_pending = 0;
	close(a->fd);
	a->fd = -1;
	base = strrchr(name, '/');
	if ((a->rotated_name = strdup(base != NULL ? base + 1 : name)) ==
	    NULL) {
		log_warnx("audit log %s: out of memory", a->path);
	}
	fsync_dir(a->path);
	log_info("audit log rotated: %s -> %s; the chain goes on in a new "
		 "%s at seq %" PRIu64,
	    a->path, name, a->path, a->ch.seq + 1);
	/* the first line of the new file, now */
	(void)write_batch(a, NULL);
}

/* 1 when the writer has something to do without a new event. */
static int
writer_due(struct audit *a, uint64_t now)
{
	if (!a->ok) {
		return now >= a->next_retry_ms;
	}
	return a->rotate_req || a->rotate_pending || a->cp_forced ||
	    a->rotated_name != NULL ||
	    refusals_due(&a->refused, now, a->stopping) ||
	    (a->ch.since_cp > 0 && now >= a->last_cp_ms + a->interval_ms);
}

static void
complete(struct audit_item *items, int r)
{
	struct audit_item *it, *next;

	for (it = items; it != NULL; it = next) {
		next = it->next;
		it->done(it->arg, r);
		free(it);
	}
}

static void *
writer_main(void *arg)
{
	struct audit	  *a = arg;
	struct audit_item *batch;
	struct timespec	   ts;
	int		   stop, rot, r;

	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (a->head == NULL && !a->stopping &&
		    !writer_due(a, now_ms())) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&a->wake, &a->lock, &ts);
		}
		batch = a->head;
		a->head = a->tail = NULL;
		a->queued = 0;
		stop = a->stopping;
		rot = a->rotate_req;
		a->rotate_req = 0;
		pthread_mutex_unlock(&a->lock);

		if (rot) {
			a->rotate_pending = 1;
		}
		if (a->rotate_pending && a->ok) {
			rotate_now(a);
		}
		r = write_batch(a, batch);
		complete(batch, r);
		if (stop) {
			break;
		}
		pthread_mutex_lock(&a->lock);
	}
	/* a clean stop ends the log with a checkpoint */
	a->cp_forced = 1;
	if (write_batch(a, NULL) == 0) {
		log_info("audit log %s: closed at seq %" PRIu64, a->path,
		    a->ch.seq);
	}
	return NULL;
}

/* ---- the API ------------------------------------------------------------- */

int
audit_submit(struct audit *a, const struct audit_event *ev,
    void (*done)(void *, int), void		       *arg)
{
	struct audit_item *it;
	char		   body[HK_AUDIT_BODY_MAX];
	int		   n;

	if (a == NULL) {
		done(arg, 0);
		return 0;
	}
	/* only as large as its body: up to AUDIT_QUEUE_MAX may wait */
	if ((n = format_body(body, sizeof(body), ev)) < 0) {
		return n;
	}
	if ((it = malloc(sizeof(*it) + (size_t)n + 1)) == NULL) {
		return HK_ERR_NOMEM;
	}
	memcpy(it->body, body, (size_t)n + 1);
	it->len = (size_t)n;
	it->next = NULL;
	it->done = done;
	it->arg = arg;
	pthread_mutex_lock(&a->lock);
	if (a->queued >= AUDIT_QUEUE_MAX || a->stopping) {
		pthread_mutex_unlock(&a->lock);
		free(it);
		return HK_ERR_EXHAUSTED;
	}
	if (a->tail != NULL) {
		a->tail->next = it;
	} else {
		a->head = it;
	}
	a->tail = it;
	a->queued++;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

void
audit_refused(struct audit *a, const char *client, const char *op,
    const char *reason, int status)
{
	if (a == NULL) {
		return;
	}
	if (client == NULL || !hk_valid_client_id(client)) {
		client = "?";
	}
	refusals_add(&a->refused, client, op, reason, status, now_ms());
}

struct waiter {
	struct audit *a;
	int	      done;
	int	      r;
};

static void
waiter_done(void *arg, int r)
{
	struct waiter *w = arg;

	pthread_mutex_lock(&w->a->lock);
	w->r = r;
	w->done = 1;
	pthread_cond_broadcast(&w->a->done_cv);
	pthread_mutex_unlock(&w->a->lock);
}

int
audit_log(struct audit *a, const struct audit_event *ev)
{
	struct waiter w;
	int	      r;

	if (a == NULL) {
		return 0;
	}
	memset(&w, 0, sizeof(w));
	w.a = a;
	if ((r = audit_submit(a, ev, waiter_done, &w)) != 0) {
		return HK_ERR_UNAVAILABLE;
	}
	pthread_mutex_lock(&a->lock);
	while (!w.done) {
		pthread_cond_wait(&a->done_cv, &a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return w.r;
}

int
audit_ready(struct audit *a, char *why, size_t len)
{
	int ok;

	if (a == NULL) {
		return 1;
	}
	pthread_mutex_lock(&a->lock);
	ok = a->ok;
	if (!ok && why != NULL) {
		snprintf(why, len, "%s", a->why);
	}
	pthread_mutex_unlock(&a->lock);
	return ok;
}

int
audit_health(struct audit *a, char *buf, size_t len)
{
	int ok;

	if (a == NULL) {
		snprintf(buf, len, "off");
		return 1;
	}
	pthread_mutex_lock(&a->lock);
	ok = a->ok;
	snprintf(buf, len, "%s", a->why);
	pthread_mutex_unlock(&a->lock);
	return ok;
}

void
audit_rotate(struct audit *a)
{
	if (a == NULL) {
		return;
	}
	pthread_mutex_lock(&a->lock);
	a->rotate_req = 1;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

int
audit_wants(const struct audit *a, const char *op, int changes)
{
	return a != NULL &&
	    (changes || (a->signs && op != NULL && strcmp(op, "sign") == 0));
}

int
audit_ensure_key(struct keyring *kr, struct token_session *s)
{
	return svckeys_ensure(kr, s, HK_AUDIT_KEY_NAME);
}

static void
audit_free(struct audit *a)
{
	if (a == NULL) {
		return;
	}
	if (a->fd >= 0) {
		close(a->fd);
	}
	token_session_close(a->s);
	pthread_cond_destroy(&a->done_cv);
	refusals_destroy(&a->refused);
	pthread_cond_destroy(&a->wake);
	pthread_mutex_destroy(&a->lock);
	free(a->rotated_name);
	free(a->buf);
	free(a->path);
	free(a);
}

int
audit_open(struct audit **ap, const struct config *cfg, struct token *tok,
    struct keyring *kr, struct token_session *s)
{
	struct audit *a = NULL;
	int	      r = HK_ERR_NOMEM;

	*ap = NULL;
	if (cfg->audit_path == NULL) {
		log_warnx("no [audit] path: requests are not audited");
		return 0;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		return HK_ERR_NOMEM;
	}
	a->fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	pthread_cond_init(&a->done_cv, NULL);
	refusals_init(&a->refused, cfg->audit_refused_interval_s * 1000);
	if ((a->path = strdup(cfg->audit_path)) == NULL) {
		goto out;
	}
	a->kr = kr;
	a->tok = tok;
	a->signs = cfg->audit_signs;
	a->every =
	    cfg->audit_checkpoint_every ? cfg->audit_checkpoint_every : 1000;
	a->interval_ms = cfg->audit_checkpoint_interval_s * 1000;
	a->max_size = cfg->audit_max_size;
	a->ok = 1;
	snprintf(a->why, sizeof(a->why), "ok");
	if ((r = audit_ensure_key(kr, s)) != 0) {
		goto out;
	}
	if ((r = token_session_open(tok, &a->s)) != 0) {
		log_err_r(r, "audit: cannot open a token session");
		goto out;
	}
	if (open_log(a) != 0) {
		int e = errno;

		log_error("audit log %s cannot be opened: %s; requests that "
			  "need it fail until it can (retrying every second)",
		    a->path, strerror(e));
		set_state(a, 0, strerror(e));
		a->resume_due = 1;
		a->next_retry_ms = 0;
	}
	a->cp_forced = 1; /* the start checkpoint */
	a->last_cp_ms = now_ms();
	if ((r = pthread_create(&a->thread, NULL, writer_main, a)) != 0) {
		log_warnx("audit: pthread_create: %s", strerror(r));
		r = HK_ERR_SYSTEM;
		goto out;
	}
	a->running = 1;
	log_info("audit log %s: chain at seq %" PRIu64 "%s", a->path,
	    a->ch.seq, a->signs ? ", signs audited" : ", signs not audited");
	/* success */
	*ap = a;
	a = NULL;
	r = 0;
out:
	audit_free(a);
	return r;
}

void
audit_close(struct audit *a)
{
	if (a == NULL) {
		return;
	}
	if (a->running) {
		pthread_mutex_lock(&a->lock);
		a->stopping = 1;
		pthread_cond_signal(&a->wake);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	audit_free(a);
}
