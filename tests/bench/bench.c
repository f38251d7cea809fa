/*
 * bench.c: hsmkey-bench, the benchmark of issue 5.
 *
 *   hsmkey-bench [--smoke] [--json FILE] --dir DIR --hsmkeyd PATH
 *       --ipc URL --tcp URL --echo-tcp URL --module SOFTHSM
 *       [--p11kit-module CLIENT.so]
 *       [--fixture FIXDIR --fixture-ipc URL [--fixture-copy-s S]]
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
 *
 * Exit status: 0 when every request succeeded and every kept signature
 * verified with OpenSSL; 1 otherwise.  Targets never change the exit
 * status: a benchmark is not a test.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "bench.h"
#include "hk_err.h"
#include "hsmkey.h"
#include "hsmkey.pb-c.h"
#include "log.h"
#include "token.h"

struct bench_params bench_p = {
	.smoke = 0,
	.warmup_s = 0.3,
	.duration_s = 1.5,
	.smoke_ops = 20,
	.sample_stride = 61,
};

static struct {
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
	char	    conf[512], cred[512], pin[512], echo_ipc[512];
	char	    self[512];
} opt;

#define MAXROWS 128
static struct bench_row rows[MAXROWS];
static int		nrows;
static int		failed;

static struct bench_daemon daemon1, daemon2, echod;
static double		   t_start; /* when main() began */

/* The service's keys, and the admin handle. */
enum { K_EC = 0, K_ED, K_RSA, NKEYS };
static struct bench_keyset keys[NKEYS] = {
	{ "bench-ec", BENCH_ALG_ECDSA, { NULL } },
	{ "bench-ed", BENCH_ALG_ED25519, { NULL } },
	{ "bench-rsa", BENCH_ALG_RSA, { NULL } },
};
static const char *const alg_names[NKEYS] = { "ecdsa-p256", "ed25519",
	"rsa-2048" };
static struct hsmkey	*admin;

/* Results that are not rows. */
static struct {
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
} res;

/* ---------------------------------------------------------------- ops */

/* Every row's arg starts with its keyset (NULL: nothing to check). */
struct argbase {
	struct bench_keyset *ks;
};

static struct bench_keyset *
row_keys(const struct bench_row *row)
{
	const struct argbase *a = row->arg;

	return a == NULL ? NULL : a->ks;
}

static uint32_t
msg_index(const struct bench_worker *w)
{
	return (uint32_t)((w->seq + (uint64_t)w->idx * 37) % BENCH_NMSG);
}

/* -- echo: a bare nanomsg REQ socket, as libhsmkey's transport makes it */

struct echo_arg {
	struct bench_keyset *ks; /* NULL */
	const char	    *url;
};

struct echo_ctx {
	int	sock;
	uint8_t msg[4096];
};

static int
echo_open(struct bench_worker *w)
{
	const struct echo_arg *a = w->row->arg;
	struct echo_ctx	      *c;
	int		       v;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return bench_fail(w, "out of memory");
	}
	w->ctx = c;
	RAND_bytes(c->msg, (int)sizeof(c->msg));
	if ((c->sock = nn_socket(AF_SP, NN_REQ)) < 0) {
		return bench_fail(w, "nn_socket: %s", nn_strerror(nn_errno()));
	}
	v = 10000;
	if (nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_RCVTIMEO, &v, sizeof(v)) <
		0 ||
	    nn_setsockopt(c->sock, NN_SOL_SOCKET, NN_SNDTIMEO, &v, sizeof(v)) <
		0 ||
	    nn_connect(c->sock, a->url) < 0) {
		return bench_fail(
		    w, "connect %s: %s", a->url, nn_strerror(nn_errno()));
	}
	return 0;
}

static int
echo_op(struct bench_worker *w)
{
	struct echo_ctx *c = w->ctx;
	void		*buf = NULL;
	int		 n;

	/* a different message every time, like a fresh nonce */
	memcpy(c->msg, &w->seq, sizeof(w->seq));
	if (nn_send(c->sock, c->msg, res.echo_len, 0) < 0) {
		return bench_fail(w, "nn_send: %s", nn_strerror(nn_errno()));
	}
	if ((n = nn_recv(c->sock, &buf, NN_MSG, 0)) < 0) {
		return bench_fail(w, "nn_recv: %s", nn_strerror(nn_errno()));
	}
	if ((size_t)n != res.echo_len || memcmp(buf, c->msg, (size_t)n) != 0) {
		nn_freemsg(buf);
		return bench_fail(w, "echo reply differs from the request");
	}
	nn_freemsg(buf);
	return 0;
}

static void
echo_close(struct bench_worker *w)
{
	struct echo_ctx *c = w->ctx;

	if (c != NULL && c->sock >= 0) {
		nn_close(c->sock);
	}
	free(c);
	w->ctx = NULL;
}

static const struct bench_ops echo_ops = { echo_open, echo_op, echo_close };

/* -- libhsmkey rows: ping, sign, batch; one handle per thread */

struct svc_arg {
	struct bench_keyset *ks;
	const char	    *url;
	const char	    *cred; /* NULL: opt.cred */
};

struct svc_ctx {
	struct hsmkey *h;
	const void    *data[BENCH_BATCH];
	size_t	       lens[BENCH_BATCH];
	char	      *sigs[BENCH_BATCH];
};

static int
svc_open(struct bench_worker *w)
{
	const struct svc_arg *a = w->row->arg;
	struct svc_ctx	     *c;
	int		      r;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return bench_fail(w, "out of memory");
	}
	w->ctx = c;
	if ((r = hsmkey_open(&c->h, a->cred != NULL ? a->cred : opt.cred,
		 a->url)) != HSMKEY_OK) {
		return bench_fail(
		    w, "hsmkey_open %s: %s", a->url, hsmkey_last_error(NULL));
	}
	hsmkey_set_timeout(c->h, 15000);
	return 0;
}

static void
svc_close(struct bench_worker *w)
{
	struct svc_ctx *c = w->ctx;

	if (c != NULL) {
		hsmkey_close(c->h);
	}
	free(c);
	w->ctx = NULL;
}

static int
ping_op(struct bench_worker *w)
{
	struct svc_ctx *c = w->ctx;
	int		r;

	if ((r = hsmkey_ping(c->h)) != HSMKEY_OK) {
		return bench_fail(w, "ping: %s: %s", hsmkey_error_name(r),
		    hsmkey_last_error(c->h));
	}
	return 0;
}

static int
keep_text(struct bench_worker *w, uint32_t m, const char *text)
{
	uint8_t	 sig[BENCH_SIGMAX];
	uint32_t v;
	size_t	 len;

	if (bench_parse_sigtext(text, &v, sig, sizeof(sig), &len) != 0) {
		return bench_fail(w, "malformed signature text '%.40s'", text);
	}
	bench_keep(w, m, v, sig, len, 1);
	return 0;
}

static int
sign_op(struct bench_worker *w)
{
	const struct svc_arg *a = w->row->arg;
	struct svc_ctx	     *c = w->ctx;
	uint32_t	      m = msg_index(w);
	char		     *sig = NULL;
	int		      r, rc = 0;

	if (a->ks->alg == BENCH_ALG_ED25519) {
		r = hsmkey_sign(
		    c->h, a->ks->name, bench_msg[m], BENCH_MSGLEN, 0, &sig);
	} else {
		r = hsmkey_sign_digest(
		    c->h, a->ks->name, bench_digest[m], 32, 0, &sig);
	}
	if (r != HSMKEY_OK) {
		return bench_fail(w, "sign %s: %s: %s", a->ks->name,
		    hsmkey_error_name(r), hsmkey_last_error(c->h));
	}
	if (bench_sampling(w)) {
		rc = keep_text(w, m, sig);
	}
	free(sig);
	return rc;
}

static int
batch_op(struct bench_worker *w)
{
	const struct svc_arg *a = w->row->arg;
	struct svc_ctx	     *c = w->ctx;
	uint32_t	      m0 = msg_index(w), m;
	int		      i, r, rc = 0, keep;

	for (i = 0; i < BENCH_BATCH; i++) {
		m = (m0 + (uint32_t)i) % BENCH_NMSG;
		c->data[i] = bench_digest[m];
		c->lens[i] = 32;
	}
	r = hsmkey_sign_batch(c->h, a->ks->name, c->data, c->lens, BENCH_BATCH,
	    0, HSMKEY_DIGEST, c->sigs);
	if (r != HSMKEY_OK) {
		return bench_fail(w, "sign batch %s: %s: %s", a->ks->name,
		    hsmkey_error_name(r), hsmkey_last_error(c->h));
	}
	keep = bench_sampling(w);
	for (i = 0; i < BENCH_BATCH; i++) {
		if (c->sigs[i] == NULL) {
			rc = bench_fail(w, "batch reply without item %d", i);
		} else if (rc == 0 && keep &&
		    (w->sample_all || (uint64_t)i == w->seq % BENCH_BATCH)) {
			rc = keep_text(
			    w, (m0 + (uint32_t)i) % BENCH_NMSG, c->sigs[i]);
		}
		free(c->sigs[i]);
		c->sigs[i] = NULL;
	}
	return rc;
}

static const struct bench_ops ping_ops = { svc_open, ping_op, svc_close };
static const struct bench_ops sign_ops = { svc_open, sign_op, svc_close };
static const struct bench_ops batch_ops = { svc_open, batch_op, svc_close };

/* -- token rows: raw (SoftHSM in this process) and p11-kit-remote */

struct tok_arg {
	struct bench_keyset *ks;
	struct token	    *t;
	token_obj_t	     key;
	enum token_mech	     mech;
};

static int
tok_open(struct bench_worker *w)
{
	const struct tok_arg *a = w->row->arg;
	struct token_session *s = NULL;
	int		      r;

	if ((r = token_session_open(a->t, &s)) != 0) {
		return bench_fail(w, "token_session_open: %s", hk_strerror(r));
	}
	w->ctx = s;
	return 0;
}

static void
tok_close(struct bench_worker *w)
{
	if (w->ctx != NULL) {
		token_session_close(w->ctx);
	}
	w->ctx = NULL;
}

static int
tok_op(struct bench_worker *w)
{
	const struct tok_arg *a = w->row->arg;
	uint32_t	      m = msg_index(w);
	uint8_t		      sig[BENCH_SIGMAX];
	size_t		      len = sizeof(sig);
	int		      r;

	if (a->mech == TOKEN_MECH_EDDSA) {
		r = token_sign(w->ctx, a->key, a->mech, bench_msg[m],
		    BENCH_MSGLEN, sig, &len);
	} else {
		r = token_sign(
		    w->ctx, a->key, a->mech, bench_digest[m], 32, sig, &len);
	}
	if (r != 0) {
		return bench_fail(w, "token_sign: %s", hk_strerror(r));
	}
	if (bench_sampling(w)) {
		bench_keep(w, m, 1, sig, len, 0);
	}
	return 0;
}

static const struct bench_ops tok_ops = { tok_open, tok_op, tok_close };

/* ---------------------------------------------------------------- rows */

static struct bench_row *
row_new(const char *name, const char *alg, const char *transport, int conc)
{
	struct bench_row *r;

	if (nrows == MAXROWS) {
		fprintf(stderr, "bench: too many rows\n");
		exit(1);
	}
	r = &rows[nrows++];
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
static int
run(struct bench_row *r)
{
	if (bench_run_row(r) != 0) {
		failed = 1;
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

static struct bench_row *
find_row(const char *name, const char *alg, const char *transport, int conc)
{
	int i;

	for (i = 0; i < nrows; i++) {
		if (strcmp(rows[i].name, name) == 0 &&
		    strcmp(rows[i].alg, alg) == 0 &&
		    (transport == NULL ||
			strcmp(rows[i].transport, transport) == 0) &&
		    (conc == 0 || rows[i].conc == conc) && rows[i].supported &&
		    rows[i].requests > 0) {
			return &rows[i];
		}
	}
	return NULL;
}

/* The best row of a kind (highest ops/s) over its concurrencies. */
static struct bench_row *
best_row(const char *name, const char *alg, const char *transport)
{
	struct bench_row *best = NULL;
	int		  i;

	for (i = 0; i < nrows; i++) {
		if (strcmp(rows[i].name, name) == 0 &&
		    strcmp(rows[i].alg, alg) == 0 &&
		    (transport == NULL ||
			strcmp(rows[i].transport, transport) == 0) &&
		    rows[i].supported && rows[i].requests > 0 &&
		    (best == NULL || rows[i].ops_per_s > best->ops_per_s)) {
			best = &rows[i];
		}
	}
	return best;
}

/* ------------------------------------------------------------- set-up */

static size_t
sign_request_len(void)
{
	Hsmkey__V1__SignItem	item = HSMKEY__V1__SIGN_ITEM__INIT;
	Hsmkey__V1__SignItem   *items[1] = { &item };
	Hsmkey__V1__SignRequest sr = HSMKEY__V1__SIGN_REQUEST__INIT;
	Hsmkey__V1__Request	req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__Envelope	env = HSMKEY__V1__ENVELOPE__INIT;
	uint8_t			nonce[16] = { 1 }, mac[32] = { 1 }, *buf;
	size_t			n;

	item.digest.data = bench_digest[0];
	item.digest.len = 32;
	sr.name = (char *)keys[K_EC].name;
	sr.n_items = 1;
	sr.items = items;
	req.op_case = HSMKEY__V1__REQUEST__OP_SIGN;
	req.sign = &sr;
	n = hsmkey__v1__request__get_packed_size(&req);
	if ((buf = malloc(n)) == NULL) {
		return 160;
	}
	hsmkey__v1__request__pack(&req, buf);
	env.protocol = 1;
	env.client_id = "admin";
	env.secret_no = 1;
	env.nonce.data = nonce;
	env.nonce.len = sizeof(nonce);
	env.timestamp_ms = (uint64_t)time(NULL) * 1000;
	env.request.data = buf;
	env.request.len = n;
	env.mac.data = mac;
	env.mac.len = sizeof(mac);
	n = hsmkey__v1__envelope__get_packed_size(&env);
	free(buf);
	return n;
}

static int
fetch_pubkeys_h(struct hsmkey *h, struct bench_keyset *ks, int maxver)
{
	uint8_t *der = NULL;
	size_t	 len;
	uint32_t v;
	int	 r, i;

	for (i = 1; i <= maxver && i <= BENCH_MAXVER; i++) {
		if (ks->pk[i] != NULL) {
			continue;
		}
		if ((r = hsmkey_pubkey_der(h, ks->name, (uint32_t)i, &der,
			 &len, &v)) != HSMKEY_OK) {
			fprintf(stderr, "bench: pubkey %s v%d: %s\n", ks->name,
			    i, hsmkey_last_error(h));
			return -1;
		}
		ks->pk[i] = bench_pubkey(der, len);
		free(der);
		if (ks->pk[i] == NULL) {
			fprintf(stderr, "bench: pubkey %s v%d: bad DER\n",
			    ks->name, i);
			return -1;
		}
	}
	return 0;
}

static int
fetch_pubkeys(struct bench_keyset *ks, int maxver)
{
	return fetch_pubkeys_h(admin, ks, maxver);
}

/* Finds the private and public objects "hsmkey:<name>:v1" in a token. */
struct find_ctx {
	token_obj_t priv[NKEYS], pub[NKEYS];
};

static int
find_cb(void *arg, const struct token_object *o)
{
	struct find_ctx *f = arg;
	char		 want[160];
	int		 k;

	for (k = 0; k < NKEYS; k++) {
		snprintf(want, sizeof(want), "hsmkey:%.64s:v1", keys[k].name);
		if (strcmp(o->label, want) != 0) {
			continue;
		}
		if (o->klass == TOKEN_CLASS_PRIVATE) {
			f->priv[k] = o->handle;
		} else if (o->klass == TOKEN_CLASS_PUBLIC) {
			f->pub[k] = o->handle;
		}
	}
	return 0;
}

/*
 * Finds the keys in token t and checks that each public object, where the
 * token has one (older tokens), is the key the service reports, so that
 * raw and service rows sign with one key; without one, probe() checks
 * that a raw signature verifies with the service's key.
 */
static int
find_keys(struct token *t, const char *what, struct find_ctx *f)
{
	struct token_session *s = NULL;
	uint8_t		     *der = NULL;
	size_t		      len;
	EVP_PKEY	     *pk;
	int		      k, r = -1, e;

	memset(f, 0, sizeof(*f));
	if ((e = token_session_open(t, &s)) != 0 ||
	    (e = token_list(s, "hsmkey:bench-", find_cb, f)) != 0) {
		fprintf(stderr, "bench: %s: cannot list the token: %s\n", what,
		    hk_strerror(e));
		goto out;
	}
	for (k = 0; k < NKEYS; k++) {
		if (f->priv[k] == TOKEN_OBJ_NONE) {
			fprintf(stderr,
			    "bench: %s: no objects "
			    "hsmkey:%s:v1\n",
			    what, keys[k].name);
			goto out;
		}
		if (f->pub[k] == TOKEN_OBJ_NONE) {
			continue;
		}
		if ((e = token_pubkey_der(s, f->pub[k], &der, &len)) != 0) {
			fprintf(stderr, "bench: %s: public key of %s: %s\n",
			    what, keys[k].name, hk_strerror(e));
			goto out;
		}
		pk = bench_pubkey(der, len);
		free(der);
		der = NULL;
		if (pk == NULL || EVP_PKEY_eq(pk, keys[k].pk[1]) != 1) {
			EVP_PKEY_free(pk);
			fprintf(stderr,
			    "bench: %s: token key %s differs from "
			    "the service's\n",
			    what, keys[k].name);
			goto out;
		}
		EVP_PKEY_free(pk);
	}
	r = 0;
out:
	token_session_close(s);
	return r;
}

static enum token_mech
mech_of(int k)
{
	return k == K_EC ? TOKEN_MECH_ECDSA
	    : k == K_ED	 ? TOKEN_MECH_EDDSA
			 : TOKEN_MECH_RSA_PSS_SHA256;
}

/* One probe sign: 0 if the mechanism works through this token. */
static int
probe(struct token *t, token_obj_t key, int k, char *err, size_t errlen)
{
	struct token_session *s = NULL;
	uint8_t		      sig[BENCH_SIGMAX];
	size_t		      len = sizeof(sig);
	int		      e;

	if ((e = token_session_open(t, &s)) != 0) {
		snprintf(err, errlen, "session: %s", hk_strerror(e));
		return -1;
	}
	if (k == K_ED) {
		e = token_sign(
		    s, key, mech_of(k), bench_msg[0], BENCH_MSGLEN, sig, &len);
	} else {
		e = token_sign(
		    s, key, mech_of(k), bench_digest[0], 32, sig, &len);
	}
	token_session_close(s);
	if (e != 0) {
		snprintf(err, errlen, "C_Sign: %s", hk_strerror(e));
		return -1;
	}
	if (bench_check_sig(keys[k].pk[1], keys[k].alg, 0, sig, len, 0) != 1) {
		snprintf(err, errlen, "signature does not verify");
		return -2;
	}
	return 0;
}

/* ------------------------------------------------------------ sections */

static const int conc_full[] = { 1, 2, 8, 64 };

static void
section_echo_ping(void)
{
	static struct echo_arg ea[2];
	static struct svc_arg  pa[2];
	char		      *urls[3];
	const char	      *tr[2] = { "ipc", "tcp" };
	int		       i, j;

	snprintf(
	    opt.echo_ipc, sizeof(opt.echo_ipc), "ipc://%s/echo.sock", opt.dir);
	urls[0] = opt.echo_ipc;
	urls[1] = (char *)opt.echo_tcp;
	urls[2] = NULL;
	ea[0].url = opt.echo_ipc;
	ea[1].url = opt.echo_tcp;
	pa[0].url = opt.ipc;
	pa[1].url = opt.tcp;
	fprintf(stderr, "bench: echo (message of %zu bytes) and ping\n",
	    res.echo_len);
	if (bench_echo_start(&echod, opt.self, opt.dir, urls) != 0) {
		failed = 1;
		return;
	}
	/*
	 * Each ping row is measured right next to its echo row, in turns
	 * (echo first, then ping first): this shared machine's speed drifts
	 * by tens of percent over a minute, and a ratio of two rows taken
	 * far apart would mostly measure that drift.
	 */
	for (i = 0; i < 2 && !failed; i++) {
		for (j = 0; j < 4 && !failed; j++) {
			int want_echo = !bench_p.smoke || (j == i && j <= 1);
			int want_ping = !bench_p.smoke || (i == 0 && j == 1);
			int n;

			for (n = 0; n < 2 && !failed; n++) {
				struct bench_row *r;
				int		  echo = (n + j) % 2 == 0;

				if (echo && want_echo) {
					r = row_new("echo", "-", tr[i],
					    bench_p.smoke ? i + 1
							  : conc_full[j]);
					r->ops = &echo_ops;
					r->arg = &ea[i];
					run(r);
				} else if (!echo && want_ping) {
					r = row_new(
					    "ping", "-", tr[i], conc_full[j]);
					r->ops = &ping_ops;
					r->arg = &pa[i];
					run(r);
				}
			}
		}
	}
	bench_daemon_stop(&echod);
}

/*
 * raw-copy: the same loop on a session copy of each key made inside the
 * token (token_copy_session, C_CopyObject with CKA_TOKEN false): what the
 * token allows when a sign skips SoftHSM's check of the object's file.
 */
static void
section_copies(
    struct token *t, const struct find_ctx *f, const int *concs, int nconc)
{
	static struct tok_arg ca[NKEYS];
	struct token_session *s = NULL;
	int		      k, j, e;

	if ((e = token_session_open(t, &s)) != 0) {
		fprintf(
		    stderr, "bench: raw-copy: session: %s\n", hk_strerror(e));
		failed = 1;
		return;
	}
	for (k = 0; k < NKEYS && !failed; k++) {
		ca[k].ks = &keys[k];
		ca[k].t = t;
		ca[k].mech = mech_of(k);
		if ((e = token_copy_session(s, f->priv[k], &ca[k].key)) != 0) {
			fprintf(stderr,
			    "bench: raw-copy %s: C_CopyObject: %s\n",
			    alg_names[k], hk_strerror(e));
			failed = 1;
			break;
		}
		for (j = 0; j < nconc && !failed; j++) {
			struct bench_row *r;

			if (bench_p.smoke && j > 0) {
				break;
			}
			r = row_new(
			    "raw-copy", alg_names[k], "in-process", concs[j]);
			r->ops = &tok_ops;
			r->arg = &ca[k];
			r->valg = keys[k].alg;
			run(r);
		}
		token_destroy(s, ca[k].key);
	}
	token_session_close(s);
}

static void
section_token(const char *name, const char *module, const char *transport,
    const int *concs, int nconc)
{
	static struct tok_arg ta[2][NKEYS];
	struct tok_arg	     *a = ta[strcmp(name, "raw") == 0 ? 0 : 1];
	struct token	     *t = NULL;
	struct find_ctx	      f;
	char		      err[200];
	int		      k, j, e;

	fprintf(stderr, "bench: %s (%s)\n", name, module);
	if ((e = token_open(&t, module, "pkcs11:token=hsmkey", opt.pin)) !=
	    0) {
		fprintf(stderr, "bench: token_open %s: %s\n", module,
		    hk_strerror(e));
		failed = 1;
		return;
	}
	if (find_keys(t, name, &f) != 0) {
		failed = 1;
		goto out;
	}
	for (k = 0; k < NKEYS && !failed; k++) {
		a[k].ks = &keys[k];
		a[k].t = t;
		a[k].key = f.priv[k];
		a[k].mech = mech_of(k);
		if ((e = probe(t, f.priv[k], k, err, sizeof(err))) != 0) {
			struct bench_row *r;

			if (e == -2 || strcmp(name, "raw") == 0) {
				fprintf(stderr, "bench: %s %s: %s\n", name,
				    alg_names[k], err);
				failed = 1;
				break;
			}
			r = row_new(name, alg_names[k], transport, 1);
			r->supported = 0;
			snprintf(r->note, sizeof(r->note),
			    "unsupported (%.80s)", err);
			continue;
		}
		for (j = 0; j < nconc && !failed; j++) {
			struct bench_row *r;

			if (bench_p.smoke && j > 0) {
				break;
			}
			r = row_new(name, alg_names[k], transport, concs[j]);
			r->ops = &tok_ops;
			r->arg = &a[k];
			r->valg = keys[k].alg;
			run(r);
		}
	}
	if (strcmp(name, "raw") == 0 && !failed) {
		section_copies(t, &f, concs, nconc);
	}
out:
	token_close(t);
}

static void
section_service(void)
{
	static struct svc_arg sa[NKEYS][2];
	const char	     *tr[2] = { "ipc", "tcp" };
	int		      k, i, j;

	fprintf(stderr, "bench: service\n");
	for (k = 0; k < NKEYS && !failed; k++) {
		for (i = 0; i < 2 && !failed; i++) {
			sa[k][i].ks = &keys[k];
			sa[k][i].url = i == 0 ? opt.ipc : opt.tcp;
			for (j = 0; j < 4 && !failed; j++) {
				struct bench_row *r;

				/* smoke: ipc/2 for each, tcp/1 for ecdsa */
				if (bench_p.smoke &&
				    !((i == 0 && j == 1) ||
					(i == 1 && j == 0 && k == K_EC))) {
					continue;
				}
				r = row_new("service", alg_names[k], tr[i],
				    conc_full[j]);
				r->ops = &sign_ops;
				r->arg = &sa[k][i];
				r->valg = keys[k].alg;
				run(r);
			}
		}
	}
}

static void
section_batch(void)
{
	static struct svc_arg ba[2];
	const char	     *tr[2] = { "ipc", "tcp" };
	int		      i, j;

	fprintf(stderr, "bench: batch of %d digests\n", BENCH_BATCH);
	for (i = 0; i < 2 && !failed; i++) {
		ba[i].ks = &keys[K_EC];
		ba[i].url = i == 0 ? opt.ipc : opt.tcp;
		for (j = 0; j < 3 && !failed; j++) {
			struct bench_row *r;

			if (bench_p.smoke && (i != 0 || j != 0)) {
				continue;
			}
			r = row_new(
			    "batch100", "ecdsa-p256", tr[i], conc_full[j]);
			r->ops = &batch_ops;
			r->arg = &ba[i];
			r->items = BENCH_BATCH;
			r->valg = BENCH_ALG_ECDSA;
			run(r);
		}
	}
}

/* -- many versions: keys made (and rotated) through the service */

struct bulk_worker {
	pthread_t      th;
	int	       idx, nthreads;
	struct hsmkey *h;
	int	       versions, keys;
	int	       failed;
	char	       err[256];
};

/* Left open to the end, reachable from here (see section_many). */
static struct hsmkey *bulk_handles[3];

static atomic_int bulk_next; /* next key number to make */
static int	  bulk_nkeys, bulk_per_key;
static double	  bulk_deadline;

static void *
bulk_main(void *arg)
{
	struct bulk_worker *b = arg;
	char		    name[64];
	int		    n, v, r;

	while (bench_now() < bulk_deadline &&
	    (n = atomic_fetch_add(&bulk_next, 1)) < bulk_nkeys) {
		snprintf(name, sizeof(name), "many-%05d", n);
		if ((r = hsmkey_create(b->h, name, "ecdsa-p256")) !=
		    HSMKEY_OK) {
			snprintf(b->err, sizeof(b->err), "create %s: %s", name,
			    hsmkey_last_error(b->h));
			b->failed = 1;
			return NULL;
		}
		b->keys++;
		b->versions++;
		for (v = 2; v <= bulk_per_key && bench_now() < bulk_deadline;
		     v++) {
			if ((r = hsmkey_rotate(b->h, name, (uint32_t)(v - 1),
				 0, NULL)) != HSMKEY_OK) {
				snprintf(b->err, sizeof(b->err),
				    "rotate %s: %s", name,
				    hsmkey_last_error(b->h));
				b->failed = 1;
				return NULL;
			}
			b->versions++;
		}
	}
	return NULL;
}

static void
section_many(void)
{
	/* 3 clients keep hsmkeyd's 2 workers busy; more only queue */
	struct bulk_worker    bw[3];
	static struct svc_arg sa;
	struct bench_row     *r;
	double		      t0, budget;
	int		      i, n = 3, st;

	res.want_versions = bench_p.smoke ? 16 : 10000;
	bulk_per_key = 4;
	bulk_nkeys = res.want_versions / bulk_per_key;
	/* whatever is left of 3 minutes, keeping ~12 s for the restart,
	 * the sign row and the rest */
	budget = 170 - (bench_now() - t_start) - 12;
	if (budget < 15) {
		budget = 15;
	}
	if (bench_p.smoke) {
		budget = 20;
	}
	fprintf(stderr,
	    "bench: making %d key versions (%d keys x %d) "
	    "through the service, at most %.0f s\n",
	    res.want_versions, bulk_nkeys, bulk_per_key, budget);
	memset(bw, 0, sizeof(bw));
	atomic_store(&bulk_next, 0);
	t0 = bench_now();
	bulk_deadline = t0 + budget;
	for (i = 0; i < n; i++) {
		bw[i].idx = i;
		if (hsmkey_open(&bw[i].h, opt.cred, opt.ipc) != HSMKEY_OK) {
			fprintf(stderr, "bench: hsmkey_open: %s\n",
			    hsmkey_last_error(NULL));
			failed = 1;
			n = i;
			break;
		}
		hsmkey_set_timeout(bw[i].h, 60000);
	}
	for (i = 0; i < n; i++) {
		pthread_create(&bw[i].th, NULL, bulk_main, &bw[i]);
	}
	for (i = 0; i < n; i++) {
		pthread_join(bw[i].th, NULL);
		/*
		 * XXX the handles are left open (freed at exit): nanomsg
		 * 1.1.5 aborted once in nn_close() of a REQ socket
		 * (nn_req_term -> nn_chunk_free: bad chunk tag) after slow
		 * rotations here, likely one that crossed libhsmkey's 2 s
		 * resend interval.
		 */
		bulk_handles[i] = bw[i].h;
		res.versions += bw[i].versions;
		res.keys_made += bw[i].keys;
		if (bw[i].failed) {
			fprintf(stderr, "bench: %s\n", bw[i].err);
			failed = 1;
		}
	}
	res.bulk_s = bench_now() - t0;
	{
		long rss;

		bench_rss(daemon1.pid, &res.hwm_bulk_kib, &rss);
	}
	if (res.versions < res.want_versions) {
		snprintf(res.bulk_note, sizeof(res.bulk_note),
		    "only %d of %d versions made in the %.0f s budget",
		    res.versions, res.want_versions, budget);
	}
	fprintf(stderr,
	    "bench: %d versions in %d keys in %.1f s "
	    "(%.1f versions/s)\n",
	    res.versions, res.keys_made, res.bulk_s,
	    res.versions / res.bulk_s);
	if (failed) {
		return;
	}
	/* restart on the bigger token */
	hsmkey_close(admin);
	admin = NULL;
	if ((st = bench_daemon_stop(&daemon1)) != 0) {
		fprintf(stderr, "bench: hsmkeyd exited %d on SIGTERM\n", st);
		failed = 1;
		return;
	}
	if (bench_daemon_start(&daemon2, opt.hsmkeyd, opt.conf, opt.dir) !=
	    0) {
		failed = 1;
		return;
	}
	res.startup2_s = daemon2.startup_s;
	{
		long hwm;

		bench_rss(daemon2.pid, &hwm, &res.rss2_ready_kib);
	}
	sa.ks = &keys[K_EC];
	sa.url = opt.ipc;
	r = row_new(
	    "service-many", "ecdsa-p256", "ipc", bench_p.smoke ? 2 : 8);
	r->ops = &sign_ops;
	r->arg = &sa;
	r->valg = BENCH_ALG_ECDSA;
	run(r);
	bench_rss(daemon2.pid, &res.hwm2_kib, &res.rss2_kib);
	res.done10k = !failed;
	if ((st = bench_daemon_stop(&daemon2)) != 0) {
		fprintf(stderr, "bench: hsmkeyd exited %d on SIGTERM\n", st);
		failed = 1;
	}
}

/* -- many versions from the fixture (scripts/bench --prepare) */

extern char **environ;

#define FIX_KEY	   "many-00000" /* 4 versions, v4 primary */
#define FIX_ROUNDS 3

static struct bench_keyset fixkey = { FIX_KEY, BENCH_ALG_ECDSA, { NULL } };

/* Our environment with SOFTHSM2_CONF=conf instead of ours. Caller frees
 * the array (not the strings but the one it made: *madep). */
static char **
env_with_conf(const char *conf, char **madep)
{
	char **envp;
	size_t n = 0, i, j = 0, len = strlen(conf) + sizeof("SOFTHSM2_CONF=");

	*madep = NULL;
	while (environ[n] != NULL) {
		n++;
	}
	if ((envp = calloc(n + 2, sizeof(*envp))) == NULL ||
	    (*madep = malloc(len)) == NULL) {
		free(envp);
		return NULL;
	}
	snprintf(*madep, len, "SOFTHSM2_CONF=%s", conf);
	for (i = 0; i < n; i++) {
		if (strncmp(environ[i], "SOFTHSM2_CONF=", 14) != 0) {
			envp[j++] = environ[i];
		}
	}
	envp[j++] = *madep;
	envp[j] = NULL;
	return envp;
}

/* "keyring: N keys, M versions" from an hsmkeyd log. */
static void
log_keyring(const char *path, int *keysp, int *versionsp)
{
	char  line[1024], *p;
	FILE *f;

	*keysp = *versionsp = 0;
	if ((f = fopen(path, "r")) == NULL) {
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if ((p = strstr(line, "keyring: ")) != NULL) {
			*keysp = (int)strtol(p + 9, &p, 10);
			if (strncmp(p, " keys, ", 7) == 0) {
				*versionsp = (int)strtol(p + 7, NULL, 10);
			}
		}
	}
	fclose(f);
}

static void
section_fixture(void)
{
	static struct svc_arg sa_few, sa_10k;
	struct hsmkey	     *h = NULL;
	struct bench_row     *r;
	char		      conf[600], cred[600], softconf[600];
	char		    **envp, *made = NULL;
	double		      sum_few = 0, sum_10k = 0;
	long		      rss;
	int		      i, st, n_few = 0, n_10k = 0;

	res.from_fixture = 1;
	snprintf(conf, sizeof(conf), "%s/hsmkeyd-10k.conf", opt.dir);
	snprintf(cred, sizeof(cred), "%s/admin.cred", opt.fixture);
	snprintf(softconf, sizeof(softconf), "%s/softhsm2.conf", opt.fixture);
	fprintf(stderr, "bench: hsmkeyd on the many-versions fixture %s\n",
	    opt.fixture);
	if ((envp = env_with_conf(softconf, &made)) == NULL) {
		fprintf(stderr, "bench: out of memory\n");
		failed = 1;
		return;
	}
	i = bench_daemon_start_env(
	    &daemon2, opt.hsmkeyd, conf, opt.dir, "hsmkeyd-10k", envp, 150);
	free(envp);
	free(made);
	if (i != 0) {
		failed = 1;
		return;
	}
	res.startup2_s = daemon2.startup_s;
	bench_rss(daemon2.pid, &res.hwm2_ready_kib, &res.rss2_ready_kib);
	log_keyring(daemon2.log, &res.fixture_keys, &res.versions);
	res.keys_made = res.fixture_keys;
	res.want_versions = 10000;
	fprintf(stderr,
	    "bench: ready in %.2f s with %d keys, %d versions; VmRSS %.1f "
	    "MiB\n",
	    res.startup2_s, res.fixture_keys, res.versions,
	    res.rss2_ready_kib / 1024.0);
	if (hsmkey_open(&h, cred, opt.fixture_ipc) != HSMKEY_OK) {
		fprintf(stderr, "bench: hsmkey_open %s: %s\n", opt.fixture_ipc,
		    hsmkey_last_error(NULL));
		failed = 1;
		goto stop;
	}
	hsmkey_set_timeout(h, 60000);
	if (fetch_pubkeys_h(h, &fixkey, 4) != 0) {
		failed = 1;
		goto stop;
	}
	sa_few.ks = &keys[K_EC];
	sa_few.url = opt.ipc;
	sa_10k.ks = &fixkey;
	sa_10k.url = opt.fixture_ipc;
	sa_10k.cred = cred;
	/* few, 10k, 10k, few, few, 10k: both see the same machine */
	for (i = 0; i < 2 * FIX_ROUNDS && !failed; i++) {
		int big = (i % 4 == 1 || i % 4 == 2);

		r = row_new(big ? "service-10k" : "service-few", "ecdsa-p256",
		    "ipc", 8);
		r->ops = &sign_ops;
		r->arg = big ? &sa_10k : &sa_few;
		r->valg = BENCH_ALG_ECDSA;
		if (run(r) != 0) {
			break;
		}
		if (big) {
			sum_10k += r->ops_per_s;
			n_10k++;
		} else {
			sum_few += r->ops_per_s;
			n_few++;
		}
	}
	bench_rss(daemon2.pid, &res.hwm2_kib, &res.rss2_kib);
	bench_rss(daemon1.pid, &res.hwm1_kib, &rss);
	if (n_few > 0 && n_10k > 0) {
		res.few_ops = sum_few / n_few;
		res.many_ops = sum_10k / n_10k;
		res.done10k = !failed;
	}
stop:
	hsmkey_close(h);
	if ((st = bench_daemon_stop(&daemon2)) != 0) {
		fprintf(
		    stderr, "bench: hsmkeyd-10k exited %d on SIGTERM\n", st);
		failed = 1;
	}
}

/* ------------------------------------------------------------- output */

static void
compute_ratios(void)
{
	struct bench_row *r, *ref;
	int		  i, c;

	for (i = 0; i < nrows; i++) {
		r = &rows[i];
		ref = NULL;
		if (!r->supported || r->requests == 0) {
			continue;
		}
		c = r->conc < 2 ? r->conc : 2;
		if (strcmp(r->name, "ping") == 0) {
			ref = find_row("echo", "-", r->transport, r->conc);
		} else if (strcmp(r->name, "echo") != 0 &&
		    strcmp(r->name, "raw") != 0) {
			ref = find_row("raw", r->alg, "in-process", c);
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
			a = find_row("ping", "-", tr[i], pc[j]);
			b = find_row("echo", "-", tr[i], pc[j]);
			target(a && b,
			    a && b ? a->ops_per_s / b->ops_per_s : 0, 0.8, 0,
			    "x", "ping >= 0.8x echo, %s, %d clients", tr[i],
			    pc[j]);
		}
	}
	for (k = 0; k < NKEYS; k++) {
		raw2 = find_row("raw", alg_names[k], "in-process", 2);
		p11 = best_row("p11-kit-remote", alg_names[k], NULL);
		for (i = 0; i < 2; i++) {
			a = find_row("service", alg_names[k], tr[i], 8);
			echo8 = find_row("echo", "-", tr[i], 8);
			lim = raw2 && echo8 ? 1.0 /
				(1.0 / raw2->ops_per_s +
				    1.0 / echo8->ops_per_s)
					    : 0;
			target(a && lim > 0,
			    a && lim > 0 ? a->ops_per_s / lim : 0, 0.85, 0,
			    "x",
			    "%s sign, %s, 8 clients >= 0.85x pipeline limit "
			    "1/(1/raw2+1/echo8) = %.0f/s",
			    alg_names[k], tr[i], lim);
			if (p11 != NULL) {
				target(a != NULL,
				    a ? a->ops_per_s / p11->ops_per_s : 0, 1.3,
				    0, "x",
				    "%s sign, %s, 8 clients >= 1.3x "
				    "p11-kit-remote at its best (%d threads, "
				    "%.0f/s)",
				    alg_names[k], tr[i], p11->conc,
				    p11->ops_per_s);
			} else {
				target(0, 0, 1.3, 0, "x",
				    "%s sign, %s, 8 clients >= 1.3x "
				    "p11-kit-remote (p11-kit: unsupported)",
				    alg_names[k], tr[i]);
			}
		}
	}
	raw2 = find_row("raw", "ecdsa-p256", "in-process", 2);
	for (i = 0; i < 2; i++) {
		a = best_row("batch100", "ecdsa-p256", tr[i]);
		target(a && raw2,
		    a && raw2 ? a->ops_per_s / raw2->ops_per_s : 0, 0.85, 0,
		    "x",
		    "batch of 100 digests, %s, best (%d "
		    "clients), items/s >= 0.85x raw2",
		    tr[i], a ? a->conc : 0);
	}
	for (k = 0; k < NKEYS; k++) {
		for (i = 0; i < 2; i++) {
			a = find_row("service", alg_names[k], tr[i], 8);
			target(a != NULL,
			    a && a->p50_us > 0 ? a->p99_us / a->p50_us : 0, 3,
			    0, "x",
			    "%s sign, %s, 8 clients: "
			    "p99 < 3x p50",
			    alg_names[k], tr[i]);
			targets[ntargets - 1].le = 1;
		}
	}
	if (res.from_fixture) {
		target(res.done10k,
		    res.few_ops > 0 ? res.many_ops / res.few_ops : 0, 0.95, 0,
		    "x",
		    "sign with %d key versions >= 0.95x a few-key token "
		    "(ecdsa-p256, ipc, 8 clients, means of %d interleaved "
		    "rows each)",
		    res.versions, FIX_ROUNDS);
	} else {
		a = find_row("service-many", "ecdsa-p256", "ipc", 0);
		b = a ? find_row("service", "ecdsa-p256", "ipc", a->conc)
		      : NULL;
		target(a && b, a && b ? a->ops_per_s / b->ops_per_s : 0, 0.95,
		    0, "x",
		    "sign with %d key versions >= 0.95x a few-key token "
		    "(ecdsa-p256, ipc, %d clients)",
		    res.versions, a ? a->conc : 0);
	}
	target(res.done10k, res.startup2_s, 5, 1, "s",
	    "hsmkeyd start-up with %d key versions < 5 s", res.versions);
	target(res.done10k, res.hwm2_kib / 1024.0, 64, 1, "MiB",
	    "hsmkeyd peak RSS (VmHWM) with %d key versions < 64 MiB",
	    res.versions);
}

static void
machine(char *cpu, size_t cpulen, long *ncpu)
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
		    "2; sign request %zu bytes\n",
		    bench_p.duration_s, bench_p.warmup_s, res.echo_len);
	}
	printf("\n%-15s %-10s %-10s %4s %10s %9s %9s %9s %6s  %s\n", "row",
	    "alg", "transport", "conc", "ops/s", "p50 us", "p99 us",
	    "p99.9 us", "ratio", "vs");
	for (i = 0; i < nrows; i++) {
		const struct bench_row *r = &rows[i];

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
	printf("ratio: vs the raw row of the same algorithm at min(conc, 2) "
	       "threads; ping vs echo at the same concurrency.\n");
	if (res.from_fixture) {
		printf("\nhsmkeyd: start-up %.3f s on the few-key token; peak "
		       "RSS (VmHWM) %.1f MiB after its rows\n",
		    res.startup1_s, res.hwm1_kib / 1024.0);
	} else {
		printf("\nhsmkeyd: start-up %.3f s on the few-key token; peak "
		       "RSS (VmHWM) %.1f MiB after the main rows, %.1f MiB "
		       "after making the versions\n",
		    res.startup1_s, res.hwm1_kib / 1024.0,
		    res.hwm_bulk_kib / 1024.0);
	}
	if (res.from_fixture) {
		printf("versions: %d key versions (%d keys) in a copy of the "
		       "fixture made once by scripts/bench --prepare (copied "
		       "in %.1f s)\n",
		    res.versions, res.fixture_keys, opt.fixture_copy_s);
		printf("          hsmkeyd on it: ready in %.3f s, VmRSS %.1f "
		       "MiB (VmHWM %.1f) at ready; after the sign rows VmHWM "
		       "%.1f MiB, VmRSS %.1f MiB\n",
		    res.startup2_s, res.rss2_ready_kib / 1024.0,
		    res.hwm2_ready_kib / 1024.0, res.hwm2_kib / 1024.0,
		    res.rss2_kib / 1024.0);
		printf(
		    "          ecdsa-p256 sign, ipc, 8 clients: %.0f/s with "
		    "%d versions vs %.0f/s on the few-key token (%.3fx), "
		    "means of %d interleaved rows each\n",
		    res.many_ops, res.versions, res.few_ops,
		    res.few_ops > 0 ? res.many_ops / res.few_ops : 0,
		    FIX_ROUNDS);
	} else {
		printf("versions: %d key versions (%d keys) made through the "
		       "service in %.1f s (%.1f/s)%s%s\n",
		    res.versions, res.keys_made, res.bulk_s,
		    res.bulk_s > 0 ? res.versions / res.bulk_s : 0,
		    res.bulk_note[0] ? "; " : "", res.bulk_note);
		printf("          restart: ready in %.3f s, VmRSS %.1f MiB at "
		       "ready; after the sign row VmHWM %.1f MiB, VmRSS %.1f "
		       "MiB\n",
		    res.startup2_s, res.rss2_ready_kib / 1024.0,
		    res.hwm2_kib / 1024.0, res.rss2_kib / 1024.0);
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
	printf("total %.1f s\n", bench_now() - t_start);
	printf("\nresult: %s\n",
	    failed ? "FAILED (a request failed or a "
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
	    bench_p.warmup_s, res.echo_len, failed ? "false" : "true");
	for (i = 0; i < nrows; i++) {
		const struct bench_row *r = &rows[i];

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
		fprintf(f, "}%s\n", i + 1 < nrows ? "," : "");
	}
	fprintf(f,
	    "  ],\n  \"hsmkeyd\": {\"startup_s\": %.3f, "
	    "\"peak_rss_kib\": %ld, \"peak_rss_after_bulk_kib\": %ld},\n",
	    res.startup1_s, res.hwm1_kib, res.hwm_bulk_kib);
	fprintf(f,
	    "  \"many_versions\": {\"wanted\": %d, \"versions\": %d, "
	    "\"keys\": %d, \"create_s\": %.3f, \"startup_s\": %.3f, "
	    "\"rss_at_ready_kib\": %ld, \"peak_rss_kib\": %ld, "
	    "\"rss_kib\": %ld, \"source\": \"%s\", "
	    "\"fixture_copy_s\": %.3f, \"peak_rss_at_ready_kib\": %ld, "
	    "\"sign_ops_per_s\": %.1f, \"few_key_sign_ops_per_s\": %.1f, "
	    "\"note\": ",
	    res.want_versions, res.versions, res.keys_made, res.bulk_s,
	    res.startup2_s, res.rss2_ready_kib, res.hwm2_kib, res.rss2_kib,
	    res.from_fixture ? "fixture" : "service", opt.fixture_copy_s,
	    res.hwm2_ready_kib, res.many_ops, res.few_ops);
	json_str(f, res.bulk_note);
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

/* --------------------------------------------------------------- main */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: hsmkey-bench [--smoke] [--json FILE] "
	    "--dir DIR --hsmkeyd PATH --ipc URL --tcp URL --echo-tcp URL "
	    "--module SOFTHSM [--p11kit-module CLIENT]\n"
	    "       [--fixture DIR --fixture-ipc URL [--fixture-copy-s S]]\n"
	    "       (run it through scripts/bench)\n");
	exit(2);
}

static void
on_signal(int sig)
{
	(void)sig;
	bench_kill_all();
	_exit(130);
}

int
main(int argc, char **argv)
{
	static const int raw_conc[2] = { 1, 2 };
	static const int p11_conc[3] = { 1, 2, 8 };
	const char	*copy_s = NULL;
	char		 cpu[256];
	long		 ncpu;
	ssize_t		 n;
	int		 i, r, k;

	if (argc >= 2 && strcmp(argv[1], "--echo-server") == 0) {
		return bench_echo_main(argc - 2, argv + 2);
	}
	for (i = 1; i < argc; i++) {
		const char  *a = argv[i];
		const char **dst = NULL;

		if (strcmp(a, "--smoke") == 0) {
			bench_p.smoke = 1;
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			dst = &opt.json;
		} else if (strcmp(a, "--dir") == 0) {
			dst = &opt.dir;
		} else if (strcmp(a, "--hsmkeyd") == 0) {
			dst = &opt.hsmkeyd;
		} else if (strcmp(a, "--ipc") == 0) {
			dst = &opt.ipc;
		} else if (strcmp(a, "--tcp") == 0) {
			dst = &opt.tcp;
		} else if (strcmp(a, "--echo-tcp") == 0) {
			dst = &opt.echo_tcp;
		} else if (strcmp(a, "--module") == 0) {
			dst = &opt.module;
		} else if (strcmp(a, "--p11kit-module") == 0) {
			dst = &opt.p11kit;
		} else if (strcmp(a, "--fixture") == 0) {
			dst = &opt.fixture;
		} else if (strcmp(a, "--fixture-ipc") == 0) {
			dst = &opt.fixture_ipc;
		} else if (strcmp(a, "--fixture-copy-s") == 0) {
			dst = &copy_s;
		} else {
			usage();
		}
		if (++i == argc) {
			usage();
		}
		*dst = argv[i];
	}
	if (opt.dir == NULL || opt.hsmkeyd == NULL || opt.ipc == NULL ||
	    opt.tcp == NULL || opt.echo_tcp == NULL || opt.module == NULL) {
		usage();
	}
	if ((opt.fixture == NULL) != (opt.fixture_ipc == NULL)) {
		usage();
	}
	if (copy_s != NULL) {
		opt.fixture_copy_s = strtod(copy_s, NULL);
	}
	snprintf(opt.conf, sizeof(opt.conf), "%s/hsmkeyd.conf", opt.dir);
	snprintf(opt.cred, sizeof(opt.cred), "%s/admin.cred", opt.dir);
	snprintf(opt.pin, sizeof(opt.pin), "%s/pin", opt.dir);
	if ((n = readlink("/proc/self/exe", opt.self, sizeof(opt.self) - 1)) <=
	    0) {
		fprintf(stderr, "bench: readlink /proc/self/exe failed\n");
		return 1;
	}
	opt.self[n] = '\0';
	atexit(bench_kill_all);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	hk_log_init("hsmkey-bench", 0, HK_LOG_WARN);
	bench_row_keys = row_keys;
	if (RAND_bytes(&bench_msg[0][0], sizeof(bench_msg)) != 1) {
		return 1;
	}
	for (i = 0; i < BENCH_NMSG; i++) {
		SHA256(bench_msg[i], BENCH_MSGLEN, bench_digest[i]);
	}
	t_start = bench_now();
	res.echo_len = sign_request_len();
	machine(cpu, sizeof(cpu), &ncpu);

	/* the service, its keys and their public keys */
	fprintf(stderr, "bench: starting hsmkeyd\n");
	if (bench_daemon_start(&daemon1, opt.hsmkeyd, opt.conf, opt.dir) !=
	    0) {
		return 1;
	}
	res.startup1_s = daemon1.startup_s;
	if ((r = hsmkey_open(&admin, opt.cred, opt.ipc)) != HSMKEY_OK) {
		fprintf(stderr, "bench: hsmkey_open: %s\n",
		    hsmkey_last_error(NULL));
		return 1;
	}
	hsmkey_set_timeout(admin, 60000);
	for (k = 0; k < NKEYS; k++) {
		if ((r = hsmkey_create(admin, keys[k].name, alg_names[k])) !=
		    HSMKEY_OK) {
			fprintf(stderr, "bench: create %s: %s\n", keys[k].name,
			    hsmkey_last_error(admin));
			return 1;
		}
		if (fetch_pubkeys(&keys[k], 1) != 0) {
			return 1;
		}
	}

	section_echo_ping();
	if (!failed) {
		section_token("raw", opt.module, "in-process", raw_conc, 2);
	}
	if (!failed) {
		section_service();
	}
	if (!failed) {
		section_batch();
	}
	if (!failed && opt.p11kit != NULL) {
		section_token(
		    "p11-kit-remote", opt.p11kit, "p11-kit", p11_conc, 3);
	}
	bench_rss(daemon1.pid, &res.hwm1_kib, &res.rss1_kib);
	if (!failed && opt.fixture != NULL) {
		section_fixture();
	} else if (!failed) {
		if (!bench_p.smoke) {
			fprintf(stderr,
			    "bench: no many-versions fixture: run "
			    "scripts/bench --prepare for the "
			    "10,000-version row\n");
		}
		section_many();
	}
	hsmkey_close(admin);
	if (daemon1.pid > 0 && bench_daemon_stop(&daemon1) != 0) {
		fprintf(stderr, "bench: hsmkeyd did not stop cleanly\n");
		failed = 1;
	}

	compute_ratios();
	compute_targets();
	print_text(cpu, ncpu);
	if (opt.json != NULL && write_json(opt.json, cpu, ncpu) != 0) {
		failed = 1;
	}
	for (k = 0; k < NKEYS; k++) {
		for (i = 0; i <= BENCH_MAXVER; i++) {
			EVP_PKEY_free(keys[k].pk[i]);
		}
	}
	for (i = 0; i <= BENCH_MAXVER; i++) {
		EVP_PKEY_free(fixkey.pk[i]);
	}
	return failed ? 1 : 0;
}
