/*
 * faultp11.c: a fault- and latency-injecting PKCS#11 module for the tests.
 *
 * It wraps a real module (SoftHSM): C_GetFunctionList dlopen()s it once per
 * process and hands out a CK_FUNCTION_LIST whose every entry first asks the
 * rules and then calls the real function.  Test code only: never installed.
 *
 * The wrapped module is the control file's `module PATH` line (read when the
 * list is first asked for), else $FAULTP11_MODULE, else SoftHSM's default
 * path.  The rules come from the file named by $FAULTP11_CONTROL (no
 * variable or no file: no rules).  Tests rewrite it while the process runs
 * (write a temp file, rename it over); every call stat()s it and re-reads it
 * when its inode, size, mtime or ctime changed.  One rule per line, `#`
 * starts a comment:
 *
 *   fail FUNC RV [OPTS]	return RV instead of calling FUNC
 *   delay FUNC TIME [OPTS]	sleep TIME (500us, 5ms, 1s; a bare number is
 *				ms) before FUNC, inside FUNC's `limit` slot
 *   kill FUNC [OPTS]		SIGKILL the calling process at FUNC
 *   limit FUNC N		at most N calls of FUNC inside the real module
 *				at once, the others wait (`limit * N`: all
 *				functions together)
 *   drop FUNC [OPTS]		before FUNC, close every session of the
 *				process in the real module (an HSM that
 *				restarted: sessions, login and session
 *				objects are gone), then call FUNC
 *   idle TIME			a call that comes more than TIME after the
 *				previous call of the process first drops
 *				every session, as `drop` (a network HSM that
 *				closes idle connections)
 *   log PATH			append one line per injected fault to PATH
 *   seed N			seed of the `prob` draws (default 1)
 *   module PATH		the real module (read once, at load)
 *
 *   OPTS: after N (the first N calls pass), count N (fire on N calls only),
 *	   prob P (fire with probability P, 0..1); any order, combined.  kill
 *	   fires once (the process is gone).
 *   FUNC: a CK_FUNCTION_LIST name (C_Sign) or `*` for every function.
 *   RV:   CKR_DEVICE_ERROR, CKR_SESSION_HANDLE_INVALID, ... (see rv_names)
 *	   or a number (0x30).
 *
 * Examples: `fail C_Sign CKR_DEVICE_ERROR after 10 count 3` (calls 11 to 13
 * fail), `delay C_Sign 5ms` + `limit C_Sign 16` (a network HSM), `kill
 * C_CreateObject after 2` (dies at the 3rd call).
 *
 * A rule counts the calls of its functions (also those another rule
 * failed) from the moment the file holding it was read: any change of the
 * file resets every counter, even of rules whose text did not change.  Several fail rules may match a call: the
 * first that fires wins; delays of all firing rules add up.  A malformed
 * line is reported once (per version of the file) on stderr as "faultp11:
 * control line N: ..." and ignored.  Log lines: "KIND FUNC [RV] call N pid
 * P" (KIND: fail, delay, kill, drop, idle, and limit for a call that had
 * to wait).
 *
 * An injected error on a call that ends an operation (C_Sign, C_Verify,
 * C_Encrypt, ...: see ends_operation) still runs the real call and then
 * returns the error, as a real module ends the operation on an error.
 *
 * Threads: the rules and counters sit behind one mutex; the real calls run
 * without it, so limits and delays model a concurrent network HSM.  Calls
 * that wait for a limit wait in one line, in arrival order, each woken
 * alone (a queue in the HSM, not a scramble: the module itself makes no
 * latency tail); a call with no limit rule never waits in it.
 */
#define _GNU_SOURCE

#include <sys/stat.h>
#include <sys/types.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "faultp11_calls.h"

#define FP_EXPORT	  __attribute__((visibility("default")))
#define FP_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define FP_MAX_RULES	  64
#define FP_MAX_LINE	  1024

enum fp_call {
#define X(name, params, args) FP_##name,
	FAULTP11_CALLS
#undef X
	    FP_NCALLS,
	FP_ANY = FP_NCALLS /* `*` */
};

static const char *const call_names[FP_NCALLS] = {
#define X(name, params, args) #name,
	FAULTP11_CALLS
#undef X
};

enum fp_kind { FP_FAIL, FP_DELAY, FP_KILL, FP_LIMIT, FP_DROP, FP_IDLE };

static const char *const kind_names[] = { "fail", "delay", "kill", "limit",
	"drop", "idle" };
#define FP_NKINDS (sizeof(kind_names) / sizeof(kind_names[0]))

struct fp_rule {
	enum fp_kind  kind;
	int	      call; /* enum fp_call, FP_ANY for `*` */
	CK_RV	      rv;
	unsigned long after, count, limit, delay_us;
	double	      prob;
	unsigned long seen, fired;
};

static const struct {
	const char *name;
	CK_RV	    rv;
} rv_names[] = {
	{ "CKR_OK", CKR_OK },
	{ "CKR_DEVICE_ERROR", CKR_DEVICE_ERROR },
	{ "CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID },
	{ "CKR_SESSION_CLOSED", CKR_SESSION_CLOSED },
	{ "CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT },
	{ "CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN },
	{ "CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY },
	{ "CKR_HOST_MEMORY", CKR_HOST_MEMORY },
	{ "CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED },
	{ "CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED },
	{ "CKR_GENERAL_ERROR", CKR_GENERAL_ERROR },
	{ "CKR_PIN_INCORRECT", CKR_PIN_INCORRECT },
	{ "CKR_TOKEN_WRITE_PROTECTED", CKR_TOKEN_WRITE_PROTECTED },
	{ "CKR_CRYPTOKI_NOT_INITIALIZED", CKR_CRYPTOKI_NOT_INITIALIZED },
};

/* A call waiting for a limit: on its thread's stack, in the line. */
struct fp_waiter {
	pthread_cond_t	  cv;
	struct fp_waiter *next;
};

/* Everything below is guarded by lock. */
static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static struct fp_waiter *line_head, *line_tail; /* oldest first */
static struct fp_rule	 rules[FP_MAX_RULES];
static size_t		 nrules;
static struct stat	 ctl_st;   /* of the file the rules came from */
static int		 ctl_seen; /* ctl_st is valid */
static int		 log_fd = -1;
static unsigned int	 prob_seed = 1;
static unsigned long	 inflight[FP_NCALLS + 1]; /* [FP_ANY]: all calls */
static uint64_t		 last_call_us; /* of any function, for `idle` */

static CK_FUNCTION_LIST *real;
static pthread_once_t	 load_once = PTHREAD_ONCE_INIT;

static void
warn_line(unsigned int n, const char *what, const char *word)
{
	fprintf(stderr, "faultp11: control line %u: %s%s%s\n", n, what,
	    word ? ": " : "", word ? word : "");
}

static int
parse_ulong(const char *s, unsigned long *v)
{
	char *end;

	if (s == NULL || *s == '\0' || *s == '-') {
		return -1;
	}
	errno = 0;
	*v = strtoul(s, &end, 0);
	return errno != 0 || *end != '\0' ? -1 : 0;
}

/* "5ms", "500us", "1s" (a bare number is milliseconds). */
static int
parse_time(const char *s, unsigned long *us)
{
	static const struct {
		const char   *unit;
		unsigned long mul;
	} units[] = { { "us", 1 }, { "ms", 1000 }, { "s", 1000000 },
		{ "", 1000 } };
	char	     *end;
	unsigned long v;
	size_t	      i;

	if (s == NULL || *s < '0' || *s > '9') {
		return -1;
	}
	v = strtoul(s, &end, 10);
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			*us = v * units[i].mul;
			return 0;
		}
	}
	return -1;
}

static int
parse_rv(const char *s, CK_RV *rv)
{
	unsigned long v;
	size_t	      i;

	for (i = 0; s != NULL && i < sizeof(rv_names) / sizeof(rv_names[0]);
	     i++) {
		if (strcmp(s, rv_names[i].name) == 0) {
			*rv = rv_names[i].rv;
			return 0;
		}
	}
	if (parse_ulong(s, &v) != 0) {
		return -1;
	}
	*rv = v;
	return 0;
}

/* rv's name, or its number in buf. */
static const char *
rv_name(CK_RV rv, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(rv_names) / sizeof(rv_names[0]); i++) {
		if (rv_names[i].rv == rv) {
			return rv_names[i].name;
		}
	}
	snprintf(buf, len, "0x%lx", (unsigned long)rv);
	return buf;
}

static int
parse_call(const char *s)
{
	int i;

	if (s != NULL && strcmp(s, "*") == 0) {
		return FP_ANY;
	}
	for (i = 0; s != NULL && i < FP_NCALLS; i++) {
		if (strcmp(s, call_names[i]) == 0) {
			return i;
		}
	}
	return -1;
}

/* after N / count N / prob P, to the end of the line. */
static const char *
parse_opts(struct fp_rule *r, char **save)
{
	const char *w, *v;
	char	   *end;

	while ((w = strtok_r(NULL, " \t", save)) != NULL) {
		v = strtok_r(NULL, " \t", save);
		if (strcmp(w, "after") == 0 &&
		    parse_ulong(v, &r->after) == 0) {
			continue;
		}
		if (strcmp(w, "count") == 0 &&
		    parse_ulong(v, &r->count) == 0) {
			continue;
		}
		if (strcmp(w, "prob") == 0 && v != NULL) {
			r->prob = strtod(v, &end);
			if (*end == '\0' && r->prob >= 0 && r->prob <= 1) {
				continue;
			}
		}
		return w;
	}
	return NULL;
}

/* One rule line (already split at its first word); NULL or the error. */
static const char *
parse_rule(struct fp_rule *r, const char *kind, char **save)
{
	const char *arg = NULL;

	memset(r, 0, sizeof(*r));
	r->prob = 1;
	for (r->kind = FP_FAIL; r->kind < FP_NKINDS; r->kind++) {
		if (strcmp(kind, kind_names[r->kind]) == 0) {
			break;
		}
	}
	if (r->kind >= FP_NKINDS) {
		return "unknown keyword";
	}
	if (r->kind == FP_IDLE) {
		r->call = FP_ANY;
		if (parse_time(strtok_r(NULL, " \t", save), &r->delay_us) !=
		    0) {
			return "bad value";
		}
		return strtok_r(NULL, " \t", save) ? "trailing words" : NULL;
	}
	if ((r->call = parse_call(strtok_r(NULL, " \t", save))) < 0) {
		return "unknown function";
	}
	if (r->kind != FP_KILL && r->kind != FP_DROP) {
		arg = strtok_r(NULL, " \t", save);
	}
	if ((r->kind == FP_FAIL && parse_rv(arg, &r->rv) != 0) ||
	    (r->kind == FP_DELAY && parse_time(arg, &r->delay_us) != 0) ||
	    (r->kind == FP_LIMIT &&
		(parse_ulong(arg, &r->limit) != 0 || r->limit == 0))) {
		return "bad value";
	}
	if (r->kind == FP_LIMIT) {
		return strtok_r(NULL, " \t", save) ? "trailing words" : NULL;
	}
	return parse_opts(r, save) ? "bad option" : NULL;
}

static void
open_log(const char *path)
{
	if (log_fd != -1) {
		close(log_fd);
	}
	log_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (log_fd == -1) {
		fprintf(
		    stderr, "faultp11: log %s: %s\n", path, strerror(errno));
	}
}

/* One control line: a rule, log, seed or module (read at load only). */
static void
parse_line(char *line, unsigned int n)
{
	char	     *save = NULL, *w, *arg;
	const char   *err;
	unsigned long v;

	line[strcspn(line, "#\r\n")] = '\0';
	if ((w = strtok_r(line, " \t", &save)) == NULL ||
	    strcmp(w, "module") == 0) {
		return;
	}
	if (strcmp(w, "log") == 0 || strcmp(w, "seed") == 0) {
		arg = strtok_r(NULL, " \t", &save);
		if (arg == NULL || strtok_r(NULL, " \t", &save) != NULL ||
		    (w[0] == 's' && parse_ulong(arg, &v) != 0)) {
			warn_line(n, "bad value", w);
		} else if (w[0] == 's') {
			prob_seed = (unsigned int)v;
		} else {
			open_log(arg);
		}
		return;
	}
	if (nrules == FP_MAX_RULES) {
		warn_line(n, "too many rules", NULL);
		return;
	}
	if ((err = parse_rule(&rules[nrules], w, &save)) != NULL) {
		warn_line(n, err, w);
		return;
	}
	nrules++;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	    a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	    a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Wakes the oldest waiting call, which enters if its limits let it (and
 * then wakes the next).  Lock held. */
static void
wake_line(void)
{
	if (line_head != NULL) {
		pthread_cond_signal(&line_head->cv);
	}
}

/* Re-reads the control file if it changed.  Called with lock held. */
static void
reload(void)
{
	const char  *path = getenv("FAULTP11_CONTROL");
	char	     line[FP_MAX_LINE];
	struct stat  st;
	unsigned int n = 0;
	FILE	    *f;

	if (path == NULL || stat(path, &st) != 0) {
		nrules = 0; /* no file: no rules */
		ctl_seen = 0;
		if (log_fd != -1) {
			close(log_fd);
			log_fd = -1;
		}
		return;
	}
	if (ctl_seen && same_file(&st, &ctl_st)) {
		return;
	}
	nrules = 0;
	prob_seed = 1;
	if (log_fd != -1) {
		close(log_fd);
		log_fd = -1;
	}
	ctl_st = st;
	ctl_seen = 1;
	if ((f = fopen(path, "re")) == NULL) {
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		parse_line(line, ++n);
	}
	fclose(f);
	wake_line(); /* limits may have changed */
}

static void
log_fault(const struct fp_rule *r, int call)
{
	char line[256], buf[32];
	int  len;

	if (log_fd == -1) {
		return;
	}
	len = snprintf(line, sizeof(line), "%s %s", kind_names[r->kind],
	    call_names[call]);
	if (r->kind == FP_FAIL) {
		len += snprintf(line + len, sizeof(line) - len, " %s",
		    rv_name(r->rv, buf, sizeof(buf)));
	}
	len += snprintf(line + len, sizeof(line) - len, " call %lu pid %ld\n",
	    r->seen, (long)getpid());
	if (write(log_fd, line, len) != len) {
		/* a test log: nothing better to do */
	}
}

static int
fires(struct fp_rule *r)
{
	if (r->seen <= r->after || (r->count != 0 && r->fired >= r->count)) {
		return 0;
	}
	if (r->prob < 1 &&
	    rand_r(&prob_seed) >= r->prob * ((double)RAND_MAX + 1)) {
		return 0;
	}
	r->fired++;
	return 1;
}

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* 1 if an `idle` rule says the connection was dropped since the last call
 * (a network HSM that closes idle connections).  Lock held. */
static int
idle_expired(int call)
{
	uint64_t now = now_us(), last = last_call_us;
	size_t	 i;

	last_call_us = now;
	for (i = 0; i < nrules; i++) {
		if (rules[i].kind == FP_IDLE && last != 0 &&
		    now - last > rules[i].delay_us) {
			rules[i].seen++;
			log_fault(&rules[i], call);
			return 1;
		}
	}
	return 0;
}

/* An HSM that restarted or dropped the connection: every session of this
 * process is closed in the real module (so the login and the session
 * objects are gone too).  Lock not held. */
static void
drop_sessions(void)
{
	CK_SLOT_ID slots[64];
	CK_ULONG   n = 64, i;

	if (real->C_GetSlotList(CK_FALSE, slots, &n) != CKR_OK) {
		return;
	}
	for (i = 0; i < n; i++) {
		(void)real->C_CloseAllSessions(slots[i]);
	}
}

/* Whether the limits let one more call of call in.  Lock held. */
static int
limit_open(int call)
{
	size_t i;

	for (i = 0; i < nrules; i++) {
		if (rules[i].kind == FP_LIMIT &&
		    (rules[i].call == call || rules[i].call == FP_ANY) &&
		    inflight[rules[i].call] >= rules[i].limit) {
			return 0;
		}
	}
	return 1;
}

static void
call_leave(int call)
{
	pthread_mutex_lock(&lock);
	inflight[call]--;
	inflight[FP_ANY]--;
	wake_line();
	pthread_mutex_unlock(&lock);
}

/* Waits in the line until this call is the oldest and its limits let it
 * in.  Lock held. */
static void
wait_in_line(int call)
{
	struct fp_waiter w;

	pthread_cond_init(&w.cv, NULL);
	w.next = NULL;
	if (line_tail != NULL) {
		line_tail->next = &w;
	} else {
		line_head = &w;
	}
	line_tail = &w;
	while (line_head != &w || !limit_open(call)) {
		pthread_cond_wait(&w.cv, &lock);
	}
	line_head = w.next;
	if (line_head == NULL) {
		line_tail = NULL;
	}
	pthread_cond_destroy(&w.cv);
	wake_line(); /* the next may fit too */
}

/*
 * The rules for one call of call: kills the process, or waits for a limit
 * and then sleeps for the delays.  Returns CKR_OK to go on to the real
 * function (then the caller must call_leave()), else the injected error.
 */
static CK_RV
call_enter(int call)
{
	struct fp_rule *r, *limited = NULL;
	unsigned long	delay_us = 0;
	CK_RV		rv = CKR_OK;
	size_t		i;
	struct timespec ts;
	int		drop;

	pthread_mutex_lock(&lock);
	reload();
	drop = idle_expired(call);
	for (i = 0; i < nrules; i++) {
		r = &rules[i];
		if ((r->call != call && r->call != FP_ANY) ||
		    r->kind == FP_IDLE) {
			continue;
		}
		r->seen++;
		if (r->kind == FP_LIMIT) {
			limited = r;
			continue;
		}
		if ((r->kind == FP_FAIL && rv != CKR_OK) || !fires(r)) {
			continue;
		}
		log_fault(r, call);
		if (r->kind == FP_KILL) {
			kill(getpid(), SIGKILL);
		}
		if (r->kind == FP_FAIL) {
			rv = r->rv;
		} else if (r->kind == FP_DROP) {
			drop = 1;
		} else {
			delay_us += r->delay_us;
		}
	}
	if (limited != NULL && (line_head != NULL || !limit_open(call))) {
		log_fault(limited, call);
		wait_in_line(call);
	}
	inflight[call]++;
	inflight[FP_ANY]++;
	pthread_mutex_unlock(&lock);
	if (drop) {
		drop_sessions();
	}
	/* the delay holds the slot: a slow HSM serving `limit` at once */
	ts.tv_sec = delay_us / 1000000;
	ts.tv_nsec = (long)(delay_us % 1000000) * 1000;
	while (delay_us > 0 && nanosleep(&ts, &ts) == -1 && errno == EINTR) {
	}
	if (rv != CKR_OK) {
		call_leave(call);
	}
	return rv;
}

/*
 * The calls that end an operation (PKCS#11 2.40 5.2: any error but
 * CKR_BUFFER_TOO_SMALL ends it).  An injected error there still runs the
 * real call, so that the session is as after a real error: the next
 * C_SignInit works.  (A size query, NULL output, does not end it.)
 */
static const unsigned char ends_operation[FP_NCALLS] = {
	[FP_C_Encrypt] = 1,
	[FP_C_EncryptFinal] = 1,
	[FP_C_Decrypt] = 1,
	[FP_C_DecryptFinal] = 1,
	[FP_C_Digest] = 1,
	[FP_C_DigestFinal] = 1,
	[FP_C_Sign] = 1,
	[FP_C_SignFinal] = 1,
	[FP_C_SignRecover] = 1,
	[FP_C_Verify] = 1,
	[FP_C_VerifyFinal] = 1,
	[FP_C_VerifyRecover] = 1,
};

/* Each wrapper: the rules, then the real function. */
#define X(name, params, args)                                 \
	static CK_RV fp_##name params                         \
	{                                                     \
		CK_RV rv;                                     \
                                                              \
		if (real == NULL || real->name == NULL) {     \
			return CKR_FUNCTION_NOT_SUPPORTED;    \
		}                                             \
		if ((rv = call_enter(FP_##name)) != CKR_OK) { \
			if (ends_operation[FP_##name]) {      \
				(void)real->name args;        \
			}                                     \
			return rv;                            \
		}                                             \
		rv = real->name args;                         \
		call_leave(FP_##name);                        \
		return rv;                                    \
	}
FAULTP11_CALLS
#undef X

static CK_FUNCTION_LIST fp_list = { .version = { 2, 40 },
	.C_GetFunctionList = C_GetFunctionList,
#define X(name, params, args) .name = fp_##name,
	FAULTP11_CALLS
#undef X
};

/* The real module's path: the control file's `module` line, else
 * $FAULTP11_MODULE, else SoftHSM.  Caller must free the result. */
static char *
module_path(void)
{
	const char *ctl = getenv("FAULTP11_CONTROL");
	const char *env = getenv("FAULTP11_MODULE");
	char	    line[FP_MAX_LINE], *save = NULL, *w, *p = NULL;
	FILE	   *f;

	if (ctl != NULL && (f = fopen(ctl, "re")) != NULL) {
		while (p == NULL && fgets(line, sizeof(line), f) != NULL) {
			line[strcspn(line, "#\r\n")] = '\0';
			w = strtok_r(line, " \t", &save);
			if (w != NULL && strcmp(w, "module") == 0 &&
			    (w = strtok_r(NULL, " \t", &save)) != NULL) {
				p = strdup(w);
			}
		}
		fclose(f);
	}
	if (p == NULL) {
		p = strdup(
		    env != NULL && *env != '\0' ? env : FP_DEFAULT_MODULE);
	}
	return p;
}

/* dlopen()s the real module once; the handle stays open for the process. */
static void
load_real(void)
{
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST    *list = NULL;
	char		    *path = module_path();
	void		    *h;

	if (path == NULL) {
		return;
	}
	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "faultp11: %s\n", dlerror());
	} else if ((get = (CK_C_GetFunctionList)dlsym(
			h, "C_GetFunctionList")) == NULL ||
	    get(&list) != CKR_OK || list == NULL) {
		fprintf(stderr, "faultp11: %s: no function list\n", path);
		dlclose(h);
	} else {
		fp_list.version = list->version;
		real = list;
	}
	free(path);
}

/* Our list, after loading the real module. */
FP_EXPORT CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL) {
		return CKR_ARGUMENTS_BAD;
	}
	pthread_once(&load_once, load_real);
	if (real == NULL) {
		return CKR_GENERAL_ERROR;
	}
	*list = &fp_list;
	return CKR_OK;
}
