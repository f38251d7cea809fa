/*
 * bench_sections.c: the main rows of hsmkey-bench (see bench.c): echo and
 * ping, raw and raw-copy, p11-kit-remote, service and batch100, and what
 * they need from the token and the service first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "bench.h"
#include "hk_err.h"
#include "hsmkey.h"
#include "token.h"

int
bench_fetch_pubkeys(struct hsmkey *h, struct bench_keyset *ks, int maxver)
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

/* Finds the private and public objects "hsmkey:<name>:v1" in a token. */
struct find_ctx {
	token_obj_t priv[BENCH_NKEYS], pub[BENCH_NKEYS];
};

static int
find_cb(void *arg, const struct token_object *o)
{
	struct find_ctx *f = arg;
	char		 want[160];
	int		 k;

	for (k = 0; k < BENCH_NKEYS; k++) {
		snprintf(
		    want, sizeof(want), "hsmkey:%.64s:v1", bench_keys[k].name);
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
	for (k = 0; k < BENCH_NKEYS; k++) {
		if (f->priv[k] == TOKEN_OBJ_NONE) {
			fprintf(stderr,
			    "bench: %s: no objects "
			    "hsmkey:%s:v1\n",
			    what, bench_keys[k].name);
			goto out;
		}
		if (f->pub[k] == TOKEN_OBJ_NONE) {
			continue;
		}
		if ((e = token_pubkey_der(s, f->pub[k], &der, &len)) != 0) {
			fprintf(stderr, "bench: %s: public key of %s: %s\n",
			    what, bench_keys[k].name, hk_strerror(e));
			goto out;
		}
		pk = bench_pubkey(der, len);
		free(der);
		der = NULL;
		if (pk == NULL || EVP_PKEY_eq(pk, bench_keys[k].pk[1]) != 1) {
			EVP_PKEY_free(pk);
			fprintf(stderr,
			    "bench: %s: token key %s differs from "
			    "the service's\n",
			    what, bench_keys[k].name);
			goto out;
		}
		EVP_PKEY_free(pk);
	}
	r = 0;
out:
	token_session_close(s);
	return r;
}

static enum hk_scheme
mech_of(int k)
{
	return k == BENCH_K_EC ? HK_SCHEME_ECDSA
	    : k == BENCH_K_ED  ? HK_SCHEME_EDDSA
			       : HK_SCHEME_RSA_PSS;
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
	if (k == BENCH_K_ED) {
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
	if (bench_check_sig(
		bench_keys[k].pk[1], bench_keys[k].alg, 0, sig, len, 0) != 1) {
		snprintf(err, errlen, "signature does not verify");
		return -2;
	}
	return 0;
}

static const int	   conc_full[] = { 1, 2, 8, 64 };
static struct bench_daemon echod; /* the echo server */

void
bench_section_echo_ping(void)
{
	static struct bench_echo_arg ea[2];
	static struct bench_svc_arg  pa[2];
	char			    *urls[3];
	const char		    *tr[2] = { "ipc", "tcp" };
	int			     i, j;

	snprintf(bench_opt.echo_ipc, sizeof(bench_opt.echo_ipc),
	    "ipc://%s/echo.sock", bench_opt.dir);
	urls[0] = bench_opt.echo_ipc;
	urls[1] = (char *)bench_opt.echo_tcp;
	urls[2] = NULL;
	ea[0].url = bench_opt.echo_ipc;
	ea[1].url = bench_opt.echo_tcp;
	pa[0].url = bench_opt.ipc;
	pa[1].url = bench_opt.tcp;
	fprintf(stderr, "bench: echo (message of %zu bytes) and ping\n",
	    bench_res.echo_len);
	if (bench_echo_start(&echod, bench_opt.self, bench_opt.dir, urls) !=
	    0) {
		bench_failed = 1;
		return;
	}
	/*
	 * Each ping row is measured right next to its echo row, in turns
	 * (echo first, then ping first): this shared machine's speed drifts
	 * by tens of percent over a minute, and a ratio of two rows taken
	 * far apart would mostly measure that drift.
	 */
	for (i = 0; i < 2 && !bench_failed; i++) {
		for (j = 0; j < 4 && !bench_failed; j++) {
			int want_echo = !bench_p.smoke || (j == i && j <= 1);
			int want_ping = !bench_p.smoke || (i == 0 && j == 1);
			int n;

			for (n = 0; n < 2 && !bench_failed; n++) {
				struct bench_row *r;
				int		  echo = (n + j) % 2 == 0;

				if (echo && want_echo) {
					r = bench_row_new("echo", "-", tr[i],
					    bench_p.smoke ? i + 1
							  : conc_full[j]);
					r->ops = &bench_echo_ops;
					r->arg = &ea[i];
					bench_run(r);
				} else if (!echo && want_ping) {
					r = bench_row_new(
					    "ping", "-", tr[i], conc_full[j]);
					r->ops = &bench_ping_ops;
					r->arg = &pa[i];
					bench_run(r);
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
	static struct bench_tok_arg ca[BENCH_NKEYS];
	struct token_session	   *s = NULL;
	int			    k, j, e;

	if ((e = token_session_open(t, &s)) != 0) {
		fprintf(
		    stderr, "bench: raw-copy: session: %s\n", hk_strerror(e));
		bench_failed = 1;
		return;
	}
	for (k = 0; k < BENCH_NKEYS && !bench_failed; k++) {
		ca[k].ks = &bench_keys[k];
		ca[k].t = t;
		ca[k].mech = mech_of(k);
		if ((e = token_copy_session(s, f->priv[k], &ca[k].key)) != 0) {
			fprintf(stderr,
			    "bench: raw-copy %s: C_CopyObject: %s\n",
			    bench_alg_names[k], hk_strerror(e));
			bench_failed = 1;
			break;
		}
		for (j = 0; j < nconc && !bench_failed; j++) {
			struct bench_row *r;

			if (bench_p.smoke && j > 0) {
				break;
			}
			r = bench_row_new("raw-copy", bench_alg_names[k],
			    "in-process", concs[j]);
			r->ops = &bench_tok_ops;
			r->arg = &ca[k];
			r->valg = bench_keys[k].alg;
			bench_run(r);
		}
		token_destroy(s, ca[k].key);
	}
	token_session_close(s);
}

void
bench_section_token(const char *name, const char *module,
    const char *transport, const int *concs, int nconc)
{
	static struct bench_tok_arg ta[2][BENCH_NKEYS];
	struct bench_tok_arg	   *a = ta[strcmp(name, "raw") == 0 ? 0 : 1];
	struct token		   *t = NULL;
	struct find_ctx		    f;
	char			    err[200];
	int			    k, j, e;

	fprintf(stderr, "bench: %s (%s)\n", name, module);
	if ((e = token_open(&t, module, NULL, "pkcs11:token=hsmkey",
		 bench_opt.pin)) != 0) {
		fprintf(stderr, "bench: token_open %s: %s\n", module,
		    hk_strerror(e));
		bench_failed = 1;
		return;
	}
	if (find_keys(t, name, &f) != 0) {
		bench_failed = 1;
		goto out;
	}
	for (k = 0; k < BENCH_NKEYS && !bench_failed; k++) {
		a[k].ks = &bench_keys[k];
		a[k].t = t;
		a[k].key = f.priv[k];
		a[k].mech = mech_of(k);
		if ((e = probe(t, f.priv[k], k, err, sizeof(err))) != 0) {
			struct bench_row *r;

			if (e == -2 || strcmp(name, "raw") == 0) {
				fprintf(stderr, "bench: %s %s: %s\n", name,
				    bench_alg_names[k], err);
				bench_failed = 1;
				break;
			}
			r = bench_row_new(
			    name, bench_alg_names[k], transport, 1);
			r->supported = 0;
			snprintf(r->note, sizeof(r->note),
			    "unsupported (%.80s)", err);
			continue;
		}
		for (j = 0; j < nconc && !bench_failed; j++) {
			struct bench_row *r;

			if (bench_p.smoke && j > 0) {
				break;
			}
			r = bench_row_new(
			    name, bench_alg_names[k], transport, concs[j]);
			r->ops = &bench_tok_ops;
			r->arg = &a[k];
			r->valg = bench_keys[k].alg;
			bench_run(r);
		}
	}
	if (strcmp(name, "raw") == 0 && !bench_failed) {
		section_copies(t, &f, concs, nconc);
	}
out:
	token_close(t);
}

void
bench_section_service(void)
{
	static struct bench_svc_arg sa[BENCH_NKEYS][2];
	const char		   *tr[2] = { "ipc", "tcp" };
	int			    k, i, j;

	fprintf(stderr, "bench: service\n");
	for (k = 0; k < BENCH_NKEYS && !bench_failed; k++) {
		for (i = 0; i < 2 && !bench_failed; i++) {
			sa[k][i].ks = &bench_keys[k];
			sa[k][i].url = i == 0 ? bench_opt.ipc : bench_opt.tcp;
			for (j = 0; j < 4 && !bench_failed; j++) {
				struct bench_row *r;

				/* smoke: ipc/2 for each, tcp/1 for ecdsa */
				if (bench_p.smoke &&
				    !((i == 0 && j == 1) ||
					(i == 1 && j == 0 &&
					    k == BENCH_K_EC))) {
					continue;
				}
				r = bench_row_new("service",
				    bench_alg_names[k], tr[i], conc_full[j]);
				r->ops = &bench_sign_ops;
				r->arg = &sa[k][i];
				r->valg = bench_keys[k].alg;
				bench_run(r);
			}
		}
	}
}

void
bench_section_batch(void)
{
	static struct bench_svc_arg ba[2];
	const char		   *tr[2] = { "ipc", "tcp" };
	int			    i, j;

	fprintf(stderr, "bench: batch of %d digests\n", BENCH_BATCH);
	for (i = 0; i < 2 && !bench_failed; i++) {
		ba[i].ks = &bench_keys[BENCH_K_EC];
		ba[i].url = i == 0 ? bench_opt.ipc : bench_opt.tcp;
		for (j = 0; j < 3 && !bench_failed; j++) {
			struct bench_row *r;

			if (bench_p.smoke && (i != 0 || j != 0)) {
				continue;
			}
			r = bench_row_new(
			    "batch100", "ecdsa-p256", tr[i], conc_full[j]);
			r->ops = &bench_batch_ops;
			r->arg = &ba[i];
			r->items = BENCH_BATCH;
			r->valg = BENCH_ALG_ECDSA;
			bench_run(r);
		}
	}
}
