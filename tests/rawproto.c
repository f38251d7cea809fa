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
	c->secret_no = 1;
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

int
rp_envelope(const struct rp_env *e, const uint8_t *req, size_t len,
    uint8_t **outp, size_t *lenp)
{
	Hsmkey__V1__Envelope env = HSMKEY__V1__ENVELOPE__INIT;
	uint8_t		     mac[HK_MAC_LEN], dk[HK_MAC_LEN];
	size_t		     n;
	int		     r = -1;

	*outp = NULL;
	if (day_key(e->cred, e->ts, dk) != 0 ||
	    hk_mac_request(dk, e->protocol, e->client_id, e->secret_no,
		e->nonce, HK_NONCE_LEN, e->ts, req, len, mac) != 0) {
		goto out;
	}
	env.protocol = e->protocol;
	env.client_id = (char *)e->client_id;
	env.secret_no = e->secret_no;
	env.nonce.data = (uint8_t *)e->nonce;
	env.nonce.len = HK_NONCE_LEN;
	env.timestamp_ms = e->ts;
	env.request.data = (uint8_t *)req;
	env.request.len = len;
	env.mac.data = mac;
	env.mac.len = sizeof(mac);
	n = hsmkey__v1__envelope__get_packed_size(&env);
	if ((*outp = malloc(n)) == NULL) {
		goto out;
	}
	*lenp = hsmkey__v1__envelope__pack(&env, *outp);
	r = 0;
out:
	OPENSSL_cleanse(dk, sizeof(dk));
	return r;
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
	Hsmkey__V1__ResponseEnvelope *env = NULL;
	Hsmkey__V1__Response	     *resp = NULL;
	uint8_t			      mac[HK_MAC_LEN], dk[HK_MAC_LEN];
	void			     *buf = NULL;
	int			      n;

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
	if ((env = hsmkey__v1__response_envelope__unpack(
		 NULL, r->raw_len, r->raw)) == NULL) {
		return 0;
	}
	r->has_mac = env->mac.len != 0;
	if (r->has_mac && env->mac.len == HK_MAC_LEN &&
	    env->nonce.len == HK_NONCE_LEN &&
	    memcmp(env->nonce.data, nonce, HK_NONCE_LEN) == 0 &&
	    day_key(cred, ts, dk) == 0 &&
	    hk_mac_response(dk, env->protocol, env->nonce.data, env->nonce.len,
		env->response.data, env->response.len, mac) == 0 &&
	    hk_mac_cmp(mac, env->mac.data, HK_MAC_LEN) == 0) {
		r->mac_ok = 1;
	}
	OPENSSL_cleanse(dk, sizeof(dk));
	if ((resp = hsmkey__v1__response__unpack(
		 NULL, env->response.len, env->response.data)) != NULL) {
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
		} else if (resp->result_case ==
			HSMKEY__V1__RESPONSE__RESULT_SIGN &&
		    resp->sign != NULL) {
			r->version = resp->sign->version;
		} else if (resp->result_case ==
			HSMKEY__V1__RESPONSE__RESULT_HEALTH &&
		    resp->health != NULL) {
			r->uptime_s = resp->health->uptime_s;
		}
		hsmkey__v1__response__free_unpacked(resp, NULL);
	}
	hsmkey__v1__response_envelope__free_unpacked(env, NULL);
	return 0;
}

const char *
rp_status_name(int status)
{
	return status < 0 ? "(no reply)" : hk_status_name((hk_status)status);
}
