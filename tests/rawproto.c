/* rawproto.c: a minimal wire-protocol client for tests (see rawproto.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nanomsg/nn.h>
#include <nanomsg/reqrep.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "buf.h"
#include "codec.h"
#include "envelope.h"
#include "hk_err.h"
#include "rawproto.h"
#include "seal.h"
#include "wire.h"

static void
trim(char **s)
{
	char *e;

	while (**s == ' ' || **s == '\t') {
		(*s)++;
	}
	for (e = *s + strlen(*s); e > *s &&
	     (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
		 e[-1] == '\n');) {
		*--e = '\0';
	}
}

int
rp_cred_load(const char *path, struct rp_cred *c)
{
	char	      line[1024], *k, *v, *end;
	unsigned long n;
	FILE	     *f;
	int	      r = -1;

	memset(c, 0, sizeof(*c));
	c->secret_no = 0; /* none named: the service tries each live one */
	if ((f = fopen(path, "r")) == NULL) {
		perror(path);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if ((v = strchr(line, '=')) == NULL) {
			continue;
		}
		*v++ = '\0';
		k = line;
		trim(&k);
		trim(&v);
		if (strcmp(k, "id") == 0) {
			if (strlen(v) > HK_CLIENT_ID_MAX) {
				goto out;
			}
			memcpy(c->id, v, strlen(v) + 1);
		} else if (strcmp(k, "secret") == 0) {
			free(c->secret);
			c->secret = NULL;
			if (hk_base64_decode(v, &c->secret, &c->secret_len) !=
			    0) {
				goto out;
			}
		} else if (strcmp(k, "secret_no") == 0) {
			errno = 0;
			n = strtoul(v, &end, 10);
			if (errno != 0 || *end != '\0' || n == 0 ||
			    n > UINT32_MAX) {
				goto out;
			}
			c->secret_no = (uint32_t)n;
		}
	}
	r = c->id[0] != '\0' && c->secret != NULL ? 0 : -1;
out:
	OPENSSL_cleanse(line, sizeof(line));
	fclose(f);
	return r;
}

void
rp_cred_clear(struct rp_cred *c)
{
	if (c->secret != NULL) {
		OPENSSL_cleanse(c->secret, c->secret_len);
		free(c->secret);
	}
	memset(c, 0, sizeof(*c));
}

void
rp_nonce(uint8_t nonce[HK_NONCE_LEN])
{
	if (RAND_bytes(nonce, HK_NONCE_LEN) != 1) {
		abort();
	}
}

void
rp_env_defaults(struct rp_env *e, const struct rp_cred *c)
{
	memset(e, 0, sizeof(*e));
	e->protocol = HK_PROTOCOL_VERSION;
	e->client_id = c->id;
	e->secret_no = c->secret_no;
	rp_nonce(e->nonce);
	e->nonce_len = HK_NONCE_LEN;
	e->ts = hk_now_ms();
	e->cred = c;
}

int
rp_pack_request(const Hsmkey__V1__Request *req, uint8_t **outp, size_t *lenp)
{
	size_t n = hsmkey__v1__request__get_packed_size(req);

	if ((*outp = malloc(n == 0 ? 1 : n)) == NULL) {
		return -1;
	}
	*lenp = hsmkey__v1__request__pack(req, *outp);
	return 0;
}

/* The day key of cred for timestamp ts; each thread keeps its last one
 * (the benchmarks sign in a loop, as libhsmkey would). */
static int
day_key(const struct rp_cred *c, uint64_t ts, uint8_t out[HK_MAC_LEN])
{
	static __thread uint8_t	 secret[64], key[HK_MAC_LEN];
	static __thread size_t	 secret_len;
	static __thread uint32_t day;
	uint32_t		 d = hk_mac_day(ts);

	if (d != day || c->secret_len != secret_len ||
	    c->secret_len > sizeof(secret) ||
	    memcmp(c->secret, secret, c->secret_len) != 0) {
		if (hk_day_key(c->secret, c->secret_len, d, key) != 0) {
			return -1;
		}
		day = d;
		secret_len =
		    c->secret_len <= sizeof(secret) ? c->secret_len : 0;
		memcpy(secret, c->secret, secret_len);
	}
	memcpy(out, key, HK_MAC_LEN);
	return 0;
}

/* Rewrites the sealed envelope *msgp as e asks: another protocol, a
 * shorter nonce, a MAC with a flipped bit (for the refusal tests). */
static int
misshape(const struct rp_env *e, uint8_t **msgp, size_t *lenp)
{
	Hsmkey__V1__Envelope *env;
	uint8_t		     *out = NULL;
	size_t		      n;

	if ((env = hsmkey__v1__envelope__unpack(NULL, *lenp, *msgp)) == NULL) {
		return -1;
	}
	env->protocol = e->protocol;
	if (e->nonce_len < env->nonce.len) {
		env->nonce.len = e->nonce_len;
	}
	if (e->corrupt_mac && env->mac.len > 7) {
		env->mac.data[7] ^= 0x40;
	}
	n = hsmkey__v1__envelope__get_packed_size(env);
	if ((out = malloc(n)) != NULL) {
		*lenp = hsmkey__v1__envelope__pack(env, out);
		free(*msgp);
		*msgp = out;
	}
	hsmkey__v1__envelope__free_unpacked(env, NULL);
	return out != NULL ? 0 : -1;
}

int
rp_envelope(const struct rp_env *e, const uint8_t *req, size_t len,
    uint8_t **outp, size_t *lenp)
{
	struct hk_request_head h = { e->client_id, e->secret_no, e->nonce,
		e->ts };
	uint8_t		       dk[HK_MAC_LEN];
	int		       r = -1;

	*outp = NULL;
	if (day_key(e->cred, e->ts, dk) == 0 &&
	    hk_seal_request(dk, &h, req, len, outp, lenp) == 0) {
		r = 0;
		if (e->protocol != HK_PROTOCOL_VERSION ||
		    e->nonce_len != HK_NONCE_LEN || e->corrupt_mac) {
			r = misshape(e, outp, lenp);
		}
	}
	OPENSSL_cleanse(dk, sizeof(dk));
	return r;
}

/* What a test looks at in a Response. */
static void
read_response(const uint8_t *buf, size_t len, struct rp_reply *r)
{
	Hsmkey__V1__Response *resp;

	if ((resp = hsmkey__v1__response__unpack(NULL, len, buf)) == NULL) {
		return;
	}
	r->decoded = 1;
	r->status = resp->status;
	snprintf(r->message, sizeof(r->message), "%s",
	    resp->message != NULL ? resp->message : "");
	if (resp->result_case == HSMKEY__V1__RESPONSE__RESULT_KEY &&
	    resp->key != NULL) {
		r->version = resp->key->version;
		if (resp->key->key != NULL) {
			r->nversions = resp->key->key->n_versions;
		}
	} else if (resp->result_case == HSMKEY__V1__RESPONSE__RESULT_SIGN &&
	    resp->sign != NULL) {
		r->version = resp->sign->version;
	} else if (resp->result_case == HSMKEY__V1__RESPONSE__RESULT_HEALTH &&
	    resp->health != NULL) {
		r->uptime_s = resp->health->uptime_s;
	}
	hsmkey__v1__response__free_unpacked(resp, NULL);
}

void
rp_reply_free(struct rp_reply *r)
{
	free(r->raw);
	memset(r, 0, sizeof(*r));
	r->status = -1;
}

int
rp_connect(const char *url, int timeout_ms, int resend_ms)
{
	int s;

	if ((s = nn_socket(AF_SP, NN_REQ)) < 0) {
		return -1;
	}
	if (nn_setsockopt(s, NN_SOL_SOCKET, NN_RCVTIMEO, &timeout_ms,
		sizeof(timeout_ms)) < 0 ||
	    nn_setsockopt(s, NN_SOL_SOCKET, NN_SNDTIMEO, &timeout_ms,
		sizeof(timeout_ms)) < 0 ||
	    (resend_ms > 0 &&
		nn_setsockopt(s, NN_REQ, NN_REQ_RESEND_IVL, &resend_ms,
		    sizeof(resend_ms)) < 0) ||
	    nn_connect(s, url) < 0) {
		nn_close(s);
		return -1;
	}
	return s;
}

void
rp_close(int sock)
{
	if (sock >= 0) {
		nn_close(sock);
	}
}

int
rp_exchange(int sock, const uint8_t *msg, size_t len,
    const struct rp_cred *cred, uint64_t ts, const uint8_t nonce[HK_NONCE_LEN],
    struct rp_reply *r)
{
	struct hk_opened_reply o;
	const char	      *why;
	uint8_t		       dk[HK_MAC_LEN];
	void		      *buf = NULL;
	int		       n, rv;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (nn_send(sock, msg, len, 0) < 0) {
		fprintf(stderr, "nn_send: %s\n", nn_strerror(nn_errno()));
		return -1;
	}
	if ((n = nn_recv(sock, &buf, NN_MSG, 0)) < 0) {
		return 0; /* no reply in time */
	}
	r->got = 1;
	if ((r->raw = malloc((size_t)n + 1)) == NULL) {
		nn_freemsg(buf);
		return -1;
	}
	memcpy(r->raw, buf, (size_t)n);
	r->raw_len = (size_t)n;
	nn_freemsg(buf);
	if (day_key(cred, ts, dk) != 0) {
		return -1;
	}
	rv = hk_open_response(dk, nonce, r->raw, r->raw_len, &o, &why);
	OPENSSL_cleanse(dk, sizeof(dk));
	if (o.renv != NULL) {
		r->has_mac = o.renv->mac.len != 0;
		r->mac_ok = rv == 0 && o.maced;
		read_response(o.renv->response.data, o.renv->response.len, r);
	}
	hk_opened_reply_free(&o);
	return 0;
}

const char *
rp_status_name(int status)
{
	return status < 0 ? "(no reply)" : hk_status_name((hk_status)status);
}

int rp_npass, rp_nfail;

int
rp_checks_done(void)
{
	printf("%d passed, %d failed\n", rp_npass, rp_nfail);
	return rp_nfail == 0 ? 0 : 1;
}
