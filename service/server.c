/* server.c: start-up, workers, request pipeline, shutdown (see server.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "audit.h"
#include "auth.h"
#include "codec.h"
#include "dispatch.h"
#include "envelope.h"
#include "gate.h"
#include "heal.h"
#include "hk_err.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "reply.h"
#include "seal.h"
#include "server.h"
#include "svckeys.h"
#include "testhooks.h"
#include "transport.h"
#include "wire.h"

#define RECV_TIMEOUT_MS 200
#define HOLD_WAIT_MS	500 /* longest wait for a repair of the token */
#define MAX_OBJECTS	(1 << 22)

static atomic_int stopping;

struct worker {
	pthread_t	      thread;
	struct server	     *sv;
	struct transport     *tr;
	struct token_session *s;
	unsigned int	      id;
};

/* ---- the request pipeline -------------------------------------------- */

/* The outcome of a request that did not pass auth_check(). */
static void
refused(struct server *sv, struct auth *a, struct outcome *o)
{
	const Hsmkey__V1__Envelope *env = a->env;

	if (a->reason != NULL) {
		/* counted, and answered without waiting for the disk */
		metrics_refused(sv->metrics, a->reason);
		audit_refused(sv->audit, env != NULL ? env->client_id : NULL,
		    a->op, a->reason, a->status);
	}

	o->op = a->op;
	o->audit = a->audit;
	o->denial = a->denial;
	o->reply = a->reply;
	o->len = a->reply_len;
	a->reply = NULL;
	a->reply_len = 0;
	if (env == NULL) {
		return;
	}
	o->ev.client =
	    hk_valid_client_id(env->client_id) ? env->client_id : "?";
	o->ev.secret = a->secret_no;
	o->ev.nonce = env->nonce.data;
	o->ev.nonce_len = env->nonce.len;
	o->ev.op = a->op; /* audited: "unauthenticated", "replay" or
			     "rate-limited" */
	o->ev.status = a->status;
}

/* What the audit log and the counters learn of a request that ran. */
static void
ran(struct server *sv, const struct auth *a, const struct dispatch_result *res,
    struct outcome *o)
{
	const Hsmkey__V1__Envelope *env = a->env;

	o->op = res->op;
	memcpy(o->key, res->key, sizeof(o->key));
	memcpy(o->sigs, res->sigs, sizeof(o->sigs));
	memcpy(o->reason, res->reason, sizeof(o->reason));
	o->ev.client = env->client_id;
	o->ev.secret = a->secret_no; /* named, or the one that matched */
	o->ev.nonce = env->nonce.data;
	o->ev.nonce_len = env->nonce.len;
	o->ev.op = res->audit_op != NULL ? res->audit_op : res->op;
	o->ev.key = o->key;
	o->ev.version = res->version;
	o->ev.items = res->items;
	o->ev.status = res->status;
	o->ev.sigs = res->has_sigs ? o->sigs : NULL;
	o->ev.reason = o->reason[0] != '\0' ? o->reason : NULL;
	if (o->ev.reason != NULL &&
	    res->status == HSMKEY__V1__STATUS__STATUS_OK) {
		/* not secret: the change's info line says why it was made */
		log_info("%s %s by client %s: reason: %s", res->op, res->key,
		    env->client_id, o->reason);
	}
	o->denial =
	    res->status == HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED;
	o->audit =
	    o->denial || audit_wants(sv->audit, res->op, res->changes_state);
	/* a sign or change whose line fails gets UNAVAILABLE */
	if (res->status == HSMKEY__V1__STATUS__STATUS_OK) {
		o->failure = res->changes_state ? REPLY_FAIL_CHANGE
		    : res->has_sigs		? REPLY_FAIL_SIGN
						: REPLY_FAIL_SAME;
	}
}

/* Runs a request that passed auth_check() and seals its reply. */
static int
run(struct server *sv, struct token_session *s, struct auth *a,
    struct outcome *o)
{
	struct dispatch_ctx    ctx = { sv, s, a->client };
	struct dispatch_result res;
	uint8_t		      *body = NULL;
	size_t		       blen = 0;
	int		       r;

	r = dispatch(&ctx, a->env->request.data, a->env->request.len, &body,
	    &blen, &res);
	/* what ran is audited, also when its reply cannot be made */
	ran(sv, a, &res, o);
	if (r == 0) {
		if (a->cached != NULL) {
			/* the reply's MAC hides the wait for its memory */
			nonce_cache_prefetch_reply(a->cached);
		}
		r = reply_seal(a, body, blen, &o->reply, &o->len);
	}
	if (body != NULL) {
		OPENSSL_cleanse(body, blen); /* may hold a new secret */
		free(body);
	}
	return r;
}

/* A request that passed auth_check() while a repair kept the token: it is
 * not run, and the client may send it again (with a new nonce). */
static int
reconnecting(struct auth *a, struct outcome *o)
{
	o->op = "unavailable";
	return reply_error(a, HSMKEY__V1__STATUS__STATUS_UNAVAILABLE,
	    "the token is being reconnected; nothing was done: try again",
	    &o->reply, &o->len);
}

/* The reply of a request that got no token slot in time: sealed like
 * any error, counted as "busy", not audited (nothing was done). */
static int
busy(struct server *sv, struct auth *a, struct outcome *o)
{
	char	 msg[160];
	uint64_t n;

	if (gate_busy_note(sv->gate, &n)) {
		log_warnx("busy: %" PRIu64 " request%s refused: all %u token "
			  "slots taken for %" PRIu64 " ms",
		    n, n == 1 ? "" : "s", sv->cfg->max_parallel,
		    sv->cfg->busy_after_ms);
	}
	o->op = "busy";
	snprintf(msg, sizeof(msg),
	    "busy: all %u token slots stayed taken for %" PRIu64
	    " ms; nothing was done, try again later",
	    sv->cfg->max_parallel, sv->cfg->busy_after_ms);
	return reply_error(a, HSMKEY__V1__STATUS__STATUS_RESOURCE_EXHAUSTED,
	    msg, &o->reply, &o->len);
}

void
server_request(struct server *sv, struct token_session *s, const uint8_t *msg,
    size_t len, uint64_t now, struct auth *a, struct outcome *o)
{
	int r, held;

	memset(o, 0, sizeof(*o));
	clock_gettime(CLOCK_MONOTONIC, &o->t0);
	o->ev.key = "";
	/* the token is held while it is used, never while waiting for the
	 * audit log: a repair must not wait for a disk */
	held = token_hold(sv->tok, HOLD_WAIT_MS) == 0;
	r = auth_check(sv, held ? s : NULL, msg, len, now, a);
	if (r == 0 && a->verdict == AUTH_PASSED && !held) {
		r = reconnecting(a, o);
	} else if (r == 0 && a->verdict == AUTH_PASSED) {
		if (gate_enter(sv->gate) != 0) {
			r = busy(sv, a, o);
		} else {
			r = run(sv, s, a, o);
			gate_leave(sv->gate);
		}
	} else if (r == 0) {
		refused(sv, a, o);
	}
	if (held) {
		token_release(sv->tok);
	}
	if (r != 0) {
		/* o->audit stays: a change that was made gets its audit line
		 * even when its own reply could not be made */
		log_err_r(r, "request failed");
		o->op = o->op != NULL ? o->op : "internal";
		free(o->reply);
		if (reply_error(a, HSMKEY__V1__STATUS__STATUS_INTERNAL,
			"internal error: see the service log", &o->reply,
			&o->len) != 0) {
			o->reply = NULL;
		}
	}
}

/*
 * One request, from the bytes received to the reply sent: made by
 * server_request(), sent and, when it must be, audited before it goes
 * out (reply.c).
 */
static void
serve(struct server *sv, struct token_session *s, struct transport *tr,
    struct transport_msg *m)
{
	struct auth    a;
	struct outcome o;

	server_request(sv, s, m->body, m->len, hk_now_ms(), &a, &o);
	reply_deliver(sv, tr, m, &a, &o);
	auth_finish(sv, &a, o.denial);
}

/* ---- workers ---------------------------------------------------------- */

static void *
worker_main(void *arg)
{
	struct worker	    *w = arg;
	struct transport_msg m;
	int		     r;

	while (!atomic_load(&stopping)) {
		if ((r = transport_recv(w->tr, &m)) != 0) {
			if (r == HK_ERR_UNAVAILABLE) {
				break;
			}
			continue;
		}
		serve(w->sv, w->s, w->tr, &m);
		transport_msg_free(&m);
	}
	return NULL;
}

struct ticker {
	pthread_t	      thread;
	struct server	     *sv;
	struct token_session *s;
};

static void *
ticker_main(void *arg)
{
	struct ticker *t = arg;
	int	       i;

	while (!atomic_load(&stopping)) {
		if (token_hold(t->sv->tok, HOLD_WAIT_MS) == 0) {
			keyring_tick(t->sv->kr, t->s, hk_now_ms(), &stopping);
			token_release(t->sv->tok);
		}
		nonce_cache_sweep(t->sv->nonces, hk_now_ms());
		auth_tick();
		for (i = 0; i < 10 && !atomic_load(&stopping); i++) {
			usleep(100 * 1000);
		}
	}
	return NULL;
}

/* ---- start-up --------------------------------------------------------- */

static void
sanitise_fds(void)
{
	int fd;

	/* make sure 0, 1 and 2 are open so no socket or file lands there */
	while ((fd = open("/dev/null", O_RDWR)) >= 0 && fd <= 2) {
		;
	}
	if (fd > 2) {
		close(fd);
	}
}

/* No core files and no ptrace attach by the same user: the process holds
 * day keys and replies with new secrets.  Refuses to run otherwise. */
static int
harden(void)
{
	struct rlimit rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) != 0) {
		log_warn("setrlimit(RLIMIT_CORE)");
		return HK_ERR_SYSTEM;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 ||
	    prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) {
		log_warn("prctl(PR_SET_DUMPABLE)");
		return HK_ERR_SYSTEM;
	}
	return 0;
}

/*
 * RLIMIT_NOFILE backs the transport's connection guard, which nanomsg's
 * accepting can outrun: nanomsg takes every connection a descriptor is
 * left for.  The soft limit becomes max_connections and the guard's
 * overshoot, plus what the service holds once it listens (token, audit
 * log, nanomsg's own descriptors), one per worker session (a network HSM's
 * module may hold a socket for each) and FD_SPARE for the files it opens
 * on the way (SoftHSM's object and lock files, audit rotation, the metrics
 * file).  A lower hard limit means fewer connections (*maxp, warned);
 * less room than 16 of them refuses to run.
 */
#define FD_SPARE 64

static int
limit_fds(const struct config *cfg, unsigned int sessions, size_t *maxp)
{
	struct rlimit  rl;
	struct dirent *de;
	DIR	      *d;
	rlim_t	       reserve = TRANSPORT_OVERSHOOT + sessions + FD_SPARE;
	rlim_t	       max = cfg->max_connections;

	if ((d = opendir("/proc/self/fd")) == NULL) {
		log_warn("opendir /proc/self/fd");
		return HK_ERR_SYSTEM;
	}
	while ((de = readdir(d)) != NULL) {
		reserve += de->d_name[0] != '.'; /* held now */
	}
	closedir(d);
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return HK_ERR_SYSTEM;
	}
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < max + reserve) {
		if (rl.rlim_max < reserve + 16) {
			log_warnx("the hard limit of %llu open files leaves "
				  "no room for connections (%llu needed "
				  "besides them)",
			    (unsigned long long)rl.rlim_max,
			    (unsigned long long)reserve);
			return HK_ERR_CONFIG;
		}
		max = rl.rlim_max - reserve;
		log_warnx("the hard limit of %llu open files leaves room for "
			  "%llu connections, not [service] max_connections "
			  "%u",
		    (unsigned long long)rl.rlim_max, (unsigned long long)max,
		    cfg->max_connections);
	}
	rl.rlim_cur = max + reserve;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("setrlimit(RLIMIT_NOFILE)");
		return HK_ERR_SYSTEM;
	}
	log_info("open files: at most %llu (%llu connections + %llu: %d "
		 "overshoot, %u sessions, %d spare, the rest held)",
	    (unsigned long long)rl.rlim_cur, (unsigned long long)max,
	    (unsigned long long)reserve, TRANSPORT_OVERSHOOT, sessions,
	    FD_SPARE);
	*maxp = (size_t)max;
	return 0;
}

/* Creates the directories of ipc endpoints with mode 0750. */
static int
make_ipc_dirs(const struct config *cfg)
{
	char   dir[PATH_MAX], *slash;
	size_t i;

	for (i = 0; i < cfg->nlisten; i++) {
		if (strncmp(cfg->listen[i], "ipc://", 6) != 0) {
			continue;
		}
		if (snprintf(dir, sizeof(dir), "%s", cfg->listen[i] + 6) >=
		    (int)sizeof(dir)) {
			log_error("listen %s: path too long", cfg->listen[i]);
			return HK_ERR_CONFIG;
		}
		if ((slash = strrchr(dir, '/')) == NULL || slash == dir) {
			continue;
		}
		*slash = '\0';
		if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
			log_warn("mkdir %s", dir);
			return HK_ERR_SYSTEM;
		}
	}
	return 0;
}

/* The keyring's observer: each move the tick made is an audit line. */
static void
tick_moved(void *arg, const char *key, uint32_t version, enum lc_event ev)
{
	struct server *sv = arg;

	audit_note(sv->audit, lifecycle_event_name(ev), key, version);
}

int
server_open(
    struct server *sv, const struct config *cfg, struct token_session **sp)
{
	struct token_object *objs = NULL;
	size_t		     nobjs = 0;
	struct keyring_opts  ko;
	char		     host[HOST_NAME_MAX + 1], instance[256];
	int		     r;

	memset(sv, 0, sizeof(*sv));
	*sp = NULL;
	sv->cfg = cfg;
	sv->start_ms = hk_now_ms();
	if ((r = token_open(&sv->tok, cfg->module, cfg->allowed_modules,
		 cfg->token_uri, cfg->pin_file)) != 0) {
		if (!token_said(r)) {
			log_err_r(
			    r, "cannot open the token %s", cfg->token_uri);
		}
		return r;
	}
	if ((r = token_session_open(sv->tok, sp)) != 0) {
		log_err_r(r, "cannot open a token session");
		return r;
	}
	if ((r = token_list_all(*sp, "hsmkey", MAX_OBJECTS, &objs, &nobjs)) !=
	    0) {
		log_err_r(r, "cannot list the token's objects");
		free(objs);
		return r;
	}
	if (gethostname(host, sizeof(host)) != 0) {
		snprintf(host, sizeof(host), "localhost");
	}
	host[sizeof(host) - 1] = '\0';
	snprintf(instance, sizeof(instance), "%s/%ld/%" PRIu64, host,
	    (long)getpid(), sv->start_ms);
	memset(&ko, 0, sizeof(ko));
	ko.destroy_delay_s = cfg->destroy_delay_s;
	ko.default_verify_grace_s = cfg->default_verify_grace_s;
	ko.instance = instance;
	ko.moved = tick_moved;
	ko.moved_arg = sv;
	if ((r = keyring_load(&sv->kr, sv->tok, *sp, objs, nobjs, &ko)) != 0) {
		log_err_r(r, "cannot load the keys");
	} else if ((r = clients_load(&sv->clients, *sp, objs, nobjs,
			cfg->secret_lifetime_s)) != 0) {
		log_err_r(r, "cannot load the clients");
	}
	free(objs);
	return r;
}

void
server_close(struct server *sv, struct token_session *s)
{
	nonce_cache_free(sv->nonces);
	clients_free(sv->clients);
	keyring_free(sv->kr);
	token_session_close(s);
	token_close(sv->tok);
	memset(sv, 0, sizeof(*sv));
}

static long
socket_gid(const struct config *cfg)
{
	struct group *gr;

	if (cfg->socket_group == NULL) {
		return -1;
	}
	if ((gr = getgrnam(cfg->socket_group)) == NULL) {
		log_warnx("unknown socket_group %s", cfg->socket_group);
		return -2;
	}
	return (long)gr->gr_gid;
}

/* The threads of a running service. */
struct crew {
	struct worker *w;
	unsigned int   started;
	struct ticker  tk;
	int	       ticking;
	struct healer *heal;
};

/*
 * The default: enough workers that a slow network HSM is kept full and
 * the requests beyond its slots wait in the gate, in order and for a
 * bounded time: 64, or twice the token slots (at most 256).  Each worker
 * holds one session, so the token sees this many sessions (+1).
 */
static unsigned int
worker_count(const struct config *cfg)
{
	unsigned int n = 64;

	if (cfg->workers != 0) {
		return cfg->workers;
	}
	if (cfg->max_parallel > n / 2) {
		n = cfg->max_parallel * 2;
	}
	return n < 256 ? n : 256;
}

/* Starts the gate, the workers, each with its own token session, and the
 * ticker. */
static int
crew_start(struct crew *c, struct server *sv, struct transport *tr,
    struct token_session *s0)
{
	unsigned int i;
	int	     r;

	if ((r = gate_new(&sv->gate, sv->cfg->max_parallel,
		 sv->cfg->busy_after_ms)) != 0) {
		return r;
	}
	if ((c->w = calloc(sv->workers, sizeof(*c->w))) == NULL) {
		return HK_ERR_NOMEM;
	}
	for (i = 0; i < sv->workers; i++) {
		c->w[i].sv = sv;
		c->w[i].tr = tr;
		c->w[i].id = i;
		if ((r = token_session_open(sv->tok, &c->w[i].s)) != 0) {
			log_err_r(r, "worker %u: cannot open a session", i);
			return r;
		}
		if ((r = pthread_create(
			 &c->w[i].thread, NULL, worker_main, &c->w[i])) != 0) {
			log_warnx("pthread_create: %s", strerror(r));
			token_session_close(c->w[i].s);
			c->w[i].s = NULL;
			return HK_ERR_SYSTEM;
		}
		c->started++;
	}
	c->tk.sv = sv;
	c->tk.s = s0;
	if (pthread_create(&c->tk.thread, NULL, ticker_main, &c->tk) == 0) {
		c->ticking = 1;
	}
	if ((r = heal_start(&c->heal, sv, &stopping)) != 0) {
		log_err_r(r, "cannot start the healer");
		return r;
	}
	return 0;
}

/* Stops the threads: each worker finishes the request in hand. */
static void
crew_stop(struct crew *c, struct server *sv)
{
	unsigned int i;

	atomic_store(&stopping, 1);
	for (i = 0; i < c->started; i++) {
		pthread_join(c->w[i].thread, NULL);
	}
	if (c->ticking) {
		pthread_join(c->tk.thread, NULL);
	}
	heal_stop(c->heal);
	/* replies still waiting for the log go out before the transport
	 * closes; the log ends with a checkpoint */
	audit_close(sv->audit);
	sv->audit = NULL;
	metrics_stop(sv->metrics);
	for (i = 0; i < sv->workers && c->w != NULL; i++) {
		token_session_close(c->w[i].s);
	}
	free(c->w);
	memset(c, 0, sizeof(*c));
	gate_free(sv->gate);
	sv->gate = NULL;
}

/* Signals go to the calling thread only, through sigwait(). */
static void
block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* a file size limit fails the audit write (EFBIG, fail closed)
	 * instead of killing the service */
	signal(SIGXFSZ, SIG_IGN);
}

/* Serves until SIGTERM or SIGINT; SIGHUP rotates the audit log. */
static void
wait_for_stop(struct server *sv, sigset_t *set)
{
	int sig;

	for (;;) {
		if (sigwait(set, &sig) != 0) {
			continue;
		}
		if (sig != SIGHUP) {
			log_info("signal %d: stopping", sig);
			return;
		}
		if (sv->audit != NULL) {
			log_info("SIGHUP: rotating the audit log");
			audit_rotate(sv->audit);
		} else {
			log_info("SIGHUP: no audit log to rotate");
		}
	}
}

/* What comes before the token: hardening, the socket's group and
 * directories, and the fork when daemonising. */
static int
prepare(const struct config *cfg, int foreground, long *gidp)
{
	int r;

	sanitise_fds();
	if ((r = harden()) != 0) {
		return r;
	}
	if ((*gidp = socket_gid(cfg)) == -2) {
		return HK_ERR_CONFIG;
	}
	if ((r = make_ipc_dirs(cfg)) != 0) {
		return r;
	}
	if (!foreground) {
		return notify_daemonise(); /* the parent exits once ready */
	}
	return 0;
}

int
server_run(const struct config *cfg, int foreground)
{
	struct server	      sv;
	struct token_session *s0 = NULL;
	struct crew	      crew;
	struct transport     *tr = NULL;
	sigset_t	      set;
	size_t		      max_conns;
	long		      gid;
	int		      r;

	memset(&crew, 0, sizeof(crew));
	if ((r = prepare(cfg, foreground, &gid)) != 0) {
		return r;
	}
	/* PKCS#11 only after any fork */
	if ((r = server_open(&sv, cfg, &s0)) != 0) {
		server_close(&sv, s0);
		return r;
	}
	sv.workers = worker_count(cfg);
	if ((r = nonce_cache_new(&sv.nonces, cfg->clock_window_ms,
		 cfg->nonce_per_client, cfg->nonce_total,
		 cfg->reply_cache_bytes)) != 0 ||
	    (r = metrics_new(&sv.metrics)) != 0 ||
	    (r = svckeys_ensure(sv.kr, s0, SVCKEYS_KEYSET_NAME)) != 0 ||
	    (r = audit_open(&sv.audit, cfg, sv.tok, sv.kr, s0)) != 0) {
		goto out;
	}
	block_signals(&set);
	if ((r = transport_open(&tr, cfg->listen, cfg->nlisten,
		 cfg->max_request + HK_ENVELOPE_OVERHEAD, RECV_TIMEOUT_MS,
		 gid)) != 0 ||
	    (r = limit_fds(cfg, sv.workers, &max_conns)) != 0 ||
	    (r = transport_guard(tr, max_conns)) != 0) {
		goto out;
	}
	if ((r = crew_start(&crew, &sv, tr, s0)) == 0 &&
	    (r = metrics_start(sv.metrics, &sv)) == 0) {
		log_info("ready: hsmkeyd %s, %u workers, %u token slots, "
			 "token '%s'",
		    HSMKEY_VERSION, sv.workers, cfg->max_parallel,
		    token_label(sv.tok));
		notify_ready();
		wait_for_stop(&sv, &set);
		notify_stopping();
	}
	crew_stop(&crew, &sv);
out:
	audit_close(sv.audit);
	sv.audit = NULL;
	transport_close(tr);
	metrics_free(sv.metrics);
	server_close(&sv, s0);
	if (r == 0) {
		log_info("stopped");
	}
	return r;
}

/* ---- bootstrap -------------------------------------------------------- */

/*
 * Writes the credentials file of client id, created already with mode 0600
 * as fd (taken over: closed here), and syncs it.  The secret is only
 * ever in the file and zeroed memory.
 */
static int
write_credentials(int fd, const char *path, const char *id,
    const uint8_t secret[HK_SECRET_LEN], uint32_t number, const char *url)
{
	char *b64 = NULL;
	FILE *f = NULL;
	int   r;

	if ((r = hk_base64_encode(secret, HK_SECRET_LEN, &b64)) != 0) {
		close(fd);
		return r;
	}
	if (fchmod(fd, 0600) != 0 || (f = fdopen(fd, "w")) == NULL) {
		log_warn("cannot write %s", path);
		close(fd);
		r = HK_ERR_SYSTEM;
		goto out;
	}
	fprintf(f,
	    "# hsmkey credentials of client %s: keep this file "
	    "secret (mode 0600)\n[client]\nid = %s\nsecret = %s\n"
	    "secret_no = %" PRIu32 "\nconnect = %s\n",
	    id, id, b64, number, url);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		log_warn("cannot write %s", path);
		r = HK_ERR_SYSTEM;
	}
out:
	if (f != NULL && fclose(f) != 0 && r == 0) {
		log_warn("cannot write %s", path);
		r = HK_ERR_SYSTEM;
	}
	OPENSSL_cleanse(b64, strlen(b64));
	free(b64);
	return r;
}

int
server_bootstrap(
    const struct config *cfg, const char *id, const char *out_path)
{
	static char	     *grants[] = { "admin:*", "sign:*", "verify:*",
			 "pubkey:*" };
	struct server	      sv;
	struct token_session *s = NULL;
	uint8_t		      secret[HK_SECRET_LEN];
	uint64_t	      expires;
	uint32_t	      number;
	int		      fd = -1, r;

	sanitise_fds();
	if ((r = harden()) != 0) {
		return r;
	}
	if (!hk_valid_client_id(id)) {
		log_warnx("invalid client id '%s': use "
			  "[A-Za-z0-9][A-Za-z0-9._@-]{0,63}",
		    id);
		return HK_ERR_INVALID;
	}
	if ((r = server_open(&sv, cfg, &s)) != 0) {
		goto out;
	}
	if (cfg->audit_path != NULL && (r = audit_ensure_key(sv.kr, s)) != 0) {
		goto out;
	}
	if (clients_any_admin(sv.clients)) {
		log_warnx(
		    "an admin client exists already: bootstrap refused "
		    "(use 'hsmkey client add' with an admin credential)");
		r = HK_ERR_EXISTS;
		goto out;
	}
	/* the file first, so that a secret is never made and then lost */
	if ((fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		 0600)) < 0) {
		log_warn("cannot create %s", out_path);
		r = HK_ERR_SYSTEM;
		goto out;
	}
	if ((r = clients_add(sv.clients, s, id, grants,
		 sizeof(grants) / sizeof(grants[0]), secret, &number,
		 &expires)) != 0) {
		log_err_r(r, "cannot create client %s", id);
		close(fd);
		unlink(out_path);
		goto out;
	}
	r = write_credentials(
	    fd, out_path, id, secret, number, cfg->listen[0]);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (r != 0) {
		unlink(out_path);
		goto out;
	}
	log_info("created admin client %s; credentials in %s", id, out_path);
out:
	server_close(&sv, s);
	return r;
}
