/*
 * bench_ops.c: the operations of hsmkey-bench's rows (see bench.c): echo
 * (a bare nanomsg REQ socket), ping, sign and batch (libhsmkey), and the
 * token rows (token_sign() in this process or through p11-kit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <openssl/rand.h>

#include "bench.h"
#include "codec.h"
#include "hk_err.h"
#include "hsmkey.h"
#include "hsmkey.pb-c.h"
#include "seal.h"
#include "token.h"

/* Every row's arg starts with its keyset (NULL: nothing to check). */
struct argbase {
	struct bench_keyset *ks;
};

struct bench_keyset *
bench_row_keys(const struct bench_row *row)
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

struct echo_ctx {
	int	sock;
	uint8_t msg[4096];
};

static int
echo_open(struct bench_worker *w)
{
	const struct bench_echo_arg *a = w->row->arg;
	struct echo_ctx		    *c;
	int			     v;

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
	if (nn_send(c->sock, c->msg, bench_res.echo_len, 0) < 0) {
		return bench_fail(w, "nn_send: %s", nn_strerror(nn_errno()));
	}
	if ((n = nn_recv(c->sock, &buf, NN_MSG, 0)) < 0) {
		return bench_fail(w, "nn_recv: %s", nn_strerror(nn_errno()));
	}
	if ((size_t)n != bench_res.echo_len ||
	    memcmp(buf, c->msg, (size_t)n) != 0) {
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

const struct bench_ops bench_echo_ops = { echo_open, echo_op, echo_close };

/* -- libhsmkey rows: ping, sign, batch; one handle per thread */

struct svc_ctx {
	struct hsmkey *h;
	const void    *data[BENCH_BATCH];
	size_t	       lens[BENCH_BATCH];
	char	      *sigs[BENCH_BATCH];
};

static int
svc_open(struct bench_worker *w)
{
	const struct bench_svc_arg *a = w->row->arg;
	struct svc_ctx		   *c;
	int			    r;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		return bench_fail(w, "out of memory");
	}
	w->ctx = c;
	if ((r = hsmkey_open(&c->h, a->cred != NULL ? a->cred : bench_opt.cred,
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
	const struct bench_svc_arg *a = w->row->arg;
	struct svc_ctx		   *c = w->ctx;
	uint32_t		    m = msg_index(w);
	char			   *sig = NULL;
	int			    r, rc = 0;

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
	const struct bench_svc_arg *a = w->row->arg;
	struct svc_ctx		   *c = w->ctx;
	uint32_t		    m0 = msg_index(w), m;
	int			    i, r, rc = 0, keep;

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

const struct bench_ops bench_ping_ops = { svc_open, ping_op, svc_close };
const struct bench_ops bench_sign_ops = { svc_open, sign_op, svc_close };
const struct bench_ops bench_batch_ops = { svc_open, batch_op, svc_close };

/* -- token rows: raw (SoftHSM in this process) and p11-kit-remote */

static int
tok_open(struct bench_worker *w)
{
	const struct bench_tok_arg *a = w->row->arg;
	struct token_session	   *s = NULL;
	int			    r;

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
	const struct bench_tok_arg *a = w->row->arg;
	uint32_t		    m = msg_index(w);
	uint8_t			    sig[BENCH_SIGMAX];
	size_t			    len = sizeof(sig);
	int			    r;

	if (a->mech == HK_SCHEME_EDDSA) {
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

const struct bench_ops bench_tok_ops = { tok_open, tok_op, tok_close };

/* -- the echo rows' message */

size_t
bench_sign_request_len(void)
{
	static const uint8_t	daykey[HK_MAC_LEN] = { 1 };
	static const uint8_t	nonce[HK_NONCE_LEN] = { 1 };
	Hsmkey__V1__SignItem	item = HSMKEY__V1__SIGN_ITEM__INIT;
	Hsmkey__V1__SignItem   *items[1] = { &item };
	Hsmkey__V1__SignRequest sr = HSMKEY__V1__SIGN_REQUEST__INIT;
	Hsmkey__V1__Request	req = HSMKEY__V1__REQUEST__INIT;
	struct hk_request_head	head = { "admin", 1, nonce,
		 (uint64_t)time(NULL) * 1000 };
	uint8_t		       *buf = NULL, *env = NULL;
	size_t			len = 0, n = 160;

	item.digest.data = bench_digest[0];
	item.digest.len = 32;
	sr.name = (char *)bench_keys[BENCH_K_EC].name;
	sr.n_items = 1;
	sr.items = items;
	req.op_case = HSMKEY__V1__REQUEST__OP_SIGN;
	req.sign = &sr;
	/* sealed as libhsmkey seals it (the MAC's value does not matter) */
	if (hk_encode(&req.base, &buf, &len) != 0 ||
	    hk_seal_request(daykey, &head, buf, len, &env, &n) != 0) {
		n = 160;
	}
	free(buf);
	free(env);
	return n;
}
