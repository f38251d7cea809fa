/*
 * libhsmkey.c: handles, the authenticated request/reply exchange and the
 * public operations of hsmkey.h.
 *
 * A request is a serialized hsmkey.v1.Request inside an Envelope MACed with
 * the client's secret; the reply is a ResponseEnvelope that must echo the
 * request's nonce and carry a MAC made with the same secret (PROTOCOL.md).
 * Only a reply the service could not authenticate (UNAUTHENTICATED,
 * REPLAY, INVALID_ARGUMENT) may come without a MAC.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "buf.h"
#include "codec.h"
#include "credentials.h"
#include "envelope.h"
#include "hk_call.h"
#include "hk_err.h"
#include "hsmkey.h"
#include "seal.h"
#include "secmem.h"
#include "transport.h"
#include "wire.h"

#define HK_DEFAULT_TIMEOUT_MS 30000
#define HK_DEFAULT_CONNECT_MS 3000
#define HK_ERRLEN	      512
#define HK_RELOAD_EVERY_MS    1000 /* stat the credentials file at most */

/*
 * A credential: the client id, a secret number and its secret.  A
 * credential whose file names no secret_no (named 0) sends secret_no 0
 * until an authenticated reply says which secret matched, then that
 * number (PROTOCOL.md); it is read and written with the handle's mutex
 * held, as every exchange is.
 */
struct hk_cred {
	char	 id[HK_CLIENT_ID_MAX + 1];
	uint32_t named;	    /* the number the file gave, 0: none */
	uint32_t secret_no; /* the number sent: named, learned or 0 */
	uint8_t *secret;    /* one locked page; NULL: none */
	size_t	 secret_len;
	size_t	 secret_map;
};

struct hsmkey {
	pthread_mutex_t	     mu; /* one exchange at a time */
	struct hk_transport *t;
	char		    *url;
	struct hk_cred	     cur; /* the credential in use */
	int		     timeout_ms;
	int		     connect_ms;
	char		     err[HK_ERRLEN];
	struct hk_cred	     alt;	      /* second credential, or empty */
	char		    *cred_path;	      /* watched file, or NULL */
	struct hk_file_sig   cred_sig;	      /* the version in use */
	long long	     cred_checked_ms; /* monotonic, last stat */
	int		     auto_reload;
	int		     retry;	   /* next exchange reuses nonce[] */
	int		     unauth_plain; /* last reply: unMACed UNAUTH */
	uint32_t	     sent_no;	   /* the last request's secret_no */
	uint8_t		     nonce[HK_NONCE_LEN]; /* of the last request */
	char		     reload_err[HK_ERRLEN];
	char		    *reason; /* sent with changes, or NULL */
};

/* The message of the last failed open in this thread (no handle yet). */
static __thread char open_err[HK_ERRLEN];

static void
vset_error(char *dst, const char *fmt, va_list ap)
{
	char *p;

	vsnprintf(dst, HK_ERRLEN, fmt, ap);
	/* one line, no terminal control bytes (messages may come from
	 * the service) */
	for (p = dst; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*p = ' ';
		}
	}
}

static int set_error(struct hsmkey *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the error of h with h->mu held (or h not yet shared). */
static int
set_error(struct hsmkey *h, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset_error(h != NULL ? h->err : open_err, fmt, ap);
	va_end(ap);
	return err;
}

int
hk_client_error(struct hsmkey *h, int err, const char *fmt, ...)
{
	va_list ap;

	if (h != NULL) {
		pthread_mutex_lock(&h->mu);
	}
	va_start(ap, fmt);
	vset_error(h != NULL ? h->err : open_err, fmt, ap);
	va_end(ap);
	if (h != NULL) {
		pthread_mutex_unlock(&h->mu);
	}
	return err;
}

const char *
hk_client_url(const struct hsmkey *h)
{
	return h->url;
}

const char *
hk_client_id(const struct hsmkey *h)
{
	return h->cur.id;
}

const char *
hsmkey_last_error(const struct hsmkey *h)
{
	const char *e = h != NULL ? h->err : open_err;

	return *e != '\0' ? e : "no error";
}

int
hsmkey_exit_code(int err)
{
	switch (err) {
	case HSMKEY_OK:
		return 0;
	case HSMKEY_EINVAL:
	case HSMKEY_ECREDENTIALS:
		return 2;
	case HSMKEY_EUNAUTH:
	case HSMKEY_EDENIED:
	case HSMKEY_EREPLAY:
		return 3;
	case HSMKEY_ENOTFOUND:
		return 4;
	default:
		return 5;
	}
}

int
hk_client_err_from_status(Hsmkey__V1__Status st)
{
	switch (st) {
	case HSMKEY__V1__STATUS__STATUS_OK:
		return HSMKEY_OK;
	case HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT:
		return HSMKEY_EINVAL;
	case HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED:
		return HSMKEY_EUNAUTH;
	case HSMKEY__V1__STATUS__STATUS_PERMISSION_DENIED:
		return HSMKEY_EDENIED;
	case HSMKEY__V1__STATUS__STATUS_NOT_FOUND:
		return HSMKEY_ENOTFOUND;
	case HSMKEY__V1__STATUS__STATUS_ALREADY_EXISTS:
		return HSMKEY_EEXISTS;
	case HSMKEY__V1__STATUS__STATUS_FAILED_PRECONDITION:
		return HSMKEY_EPRECONDITION;
	case HSMKEY__V1__STATUS__STATUS_REPLAY:
		return HSMKEY_EREPLAY;
	case HSMKEY__V1__STATUS__STATUS_UNAVAILABLE:
		return HSMKEY_EUNAVAIL;
	case HSMKEY__V1__STATUS__STATUS_INTERNAL:
		return HSMKEY_EINTERNAL;
	case HSMKEY__V1__STATUS__STATUS_RESOURCE_EXHAUSTED:
		return HSMKEY_EEXHAUSTED;
	case HSMKEY__V1__STATUS__STATUS_UNIMPLEMENTED:
		return HSMKEY_EUNSUPPORTED;
	default:
		return HSMKEY_EPROTO;
	}
}

/* Handles */

static int
cred_store(struct hk_cred *c, const char *id, uint32_t secret_no,
    const uint8_t *secret, size_t len)
{
	long   pg = sysconf(_SC_PAGESIZE);
	size_t maplen = pg > 0 ? (size_t)pg : 4096;
	void  *p;

	memset(c, 0, sizeof(*c));
	if (len > maplen) {
		return HSMKEY_EINVAL;
	}
	/* locked if possible: RLIMIT_MEMLOCK may be small */
	if ((p = hk_secmem_alloc(maplen)) == NULL) {
		return HSMKEY_ENOMEM;
	}
	memcpy(p, secret, len);
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->named = secret_no;
	c->secret_no = secret_no;
	c->secret = p;
	c->secret_len = len;
	c->secret_map = maplen;
	return 0;
}

static void
cred_wipe(struct hk_cred *c)
{
	hk_secmem_free(c->secret, c->secret_map);
	/* field by field: gcc -O3's object-size check misreads a whole-struct
	 * explicit_bzero here as overflowing id[] */
	explicit_bzero(c->id, sizeof(c->id));
	c->named = 0;
	c->secret_no = 0;
	c->secret = NULL;
	c->secret_len = 0;
	c->secret_map = 0;
}

/* Exchanges the primary credential of h with *c. */
static void
cred_swap(struct hsmkey *h, struct hk_cred *c)
{
	struct hk_cred t;

	t = h->cur;
	h->cur = *c;
	*c = t;
	explicit_bzero(&t, sizeof(t));
}

/* 1 if the credential of the file c is k. */
static int
cred_is(const struct hk_credentials *c, const struct hk_cred *k)
{
	return k->secret != NULL && strcmp(c->id, k->id) == 0 &&
	    c->secret_no == k->named && c->secret_len == k->secret_len &&
	    CRYPTO_memcmp(c->secret, k->secret, c->secret_len) == 0;
}

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
hsmkey_close(struct hsmkey *h)
{
	if (h == NULL) {
		return;
	}
	hk_transport_close(h->t);
	cred_wipe(&h->cur);
	cred_wipe(&h->alt);
	free(h->cred_path);
	free(h->url);
	free(h->reason);
	pthread_mutex_destroy(&h->mu);
	explicit_bzero(h, sizeof(*h));
	free(h);
}

int
hsmkey_open_secret(struct hsmkey **hp, const char *url, const char *client_id,
    uint32_t secret_no, const uint8_t *secret, size_t secret_len)
{
	struct hsmkey *h = NULL;
	int	       r = HSMKEY_EINTERNAL, mu_ok = 0;

	if (hp == NULL) {
		return set_error(NULL, HSMKEY_EINVAL, "hp is NULL");
	}
	*hp = NULL;
	if (url == NULL || *url == '\0') {
		return set_error(NULL, HSMKEY_EINVAL,
		    "no service URL: give "
		    "--connect URL, set $HSMKEY_CONNECT or add connect to "
		    "the credentials file");
	}
	if (!hk_valid_client_id(client_id)) {
		return set_error(NULL, HSMKEY_EINVAL,
		    "invalid client id: use "
		    "[A-Za-z0-9][A-Za-z0-9._@-]{0,63}");
	}
	if (secret == NULL || secret_len < HK_SECRET_MIN ||
	    secret_len > HK_SECRET_MAX) {
		return set_error(NULL, HSMKEY_EINVAL,
		    "the secret must be "
		    "%d to %d bytes",
		    HK_SECRET_MIN, HK_SECRET_MAX);
	}
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->url = strdup(url)) == NULL) {
		r = set_error(NULL, HSMKEY_ENOMEM, "out of memory");
		goto out;
	}
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		r = set_error(
		    NULL, HSMKEY_ENOMEM, "pthread_mutex_init failed");
		goto out;
	}
	mu_ok = 1;
	h->timeout_ms = HK_DEFAULT_TIMEOUT_MS;
	h->connect_ms = HK_DEFAULT_CONNECT_MS;
	if ((r = cred_store(
		 &h->cur, client_id, secret_no, secret, secret_len)) != 0) {
		set_error(NULL, r, "cannot allocate memory for the secret");
		goto out;
	}
	if ((r = hk_transport_open(&h->t, url, open_err, sizeof(open_err))) !=
	    0) {
		goto out;
	}
	/* success */
	*hp = h;
	h = NULL;
	r = 0;
out:
	if (h != NULL) {
		hk_transport_close(h->t);
		cred_wipe(&h->cur);
		free(h->url);
		if (mu_ok) {
			pthread_mutex_destroy(&h->mu);
		}
		free(h);
	}
	return r;
}

int
hsmkey_open(struct hsmkey **hp, const char *credentials_file, const char *url)
{
	struct hk_credentials c;
	struct hk_file_sig    s1, s2;
	const char	     *path = credentials_file;
	char		      cwd[PATH_MAX], *abs = NULL;
	int		      r, have_sig;

	if (hp == NULL) {
		return set_error(NULL, HSMKEY_EINVAL, "hp is NULL");
	}
	*hp = NULL;
	if (path == NULL) {
		path = getenv("HSMKEY_CREDENTIALS");
	}
	/* the version read, for reload on change */
	have_sig = path != NULL && hk_file_sig_get(path, &s1) == 0;
	if ((r = hk_credentials_load(path, &c, open_err, sizeof(open_err))) !=
	    0) {
		goto out;
	}
	have_sig = have_sig && hk_file_sig_get(path, &s2) == 0 &&
	    hk_file_sig_equal(&s1, &s2);
	/* absolute, so that a chdir() does not lose it; symlinks are kept
	 * (a secret volume swaps them) */
	if (path[0] == '/') {
		abs = strdup(path);
	} else if (getcwd(cwd, sizeof(cwd)) != NULL &&
	    (abs = malloc(strlen(cwd) + strlen(path) + 2)) != NULL) {
		snprintf(
		    abs, strlen(cwd) + strlen(path) + 2, "%s/%s", cwd, path);
	}
	if (abs == NULL) {
		r = set_error(NULL, HSMKEY_ENOMEM, "out of memory");
		goto out;
	}
	if (url == NULL || *url == '\0') {
		url = getenv("HSMKEY_CONNECT");
	}
	if (url == NULL || *url == '\0') {
		url = c.connect;
	}
	if (url == NULL || *url == '\0') {
		r = set_error(NULL, HSMKEY_ECREDENTIALS,
		    "no service URL: give "
		    "--connect URL, set $HSMKEY_CONNECT or add connect to "
		    "%s",
		    path);
		goto out;
	}
	if ((r = hsmkey_open_secret(
		 hp, url, c.id, c.secret_no, c.secret, c.secret_len)) != 0) {
		goto out;
	}
	(*hp)->cred_path = abs;
	abs = NULL;
	if (have_sig) {
		(*hp)->cred_sig = s1;
	}
	(*hp)->cred_checked_ms = mono_ms();
	(*hp)->auto_reload = 1;
out:
	free(abs);
	hk_credentials_clear(&c);
	return r;
}

/* Sets one of h's timeouts (what names it in the error). */
static int
set_ms(struct hsmkey *h, int *fieldp, int ms, const char *what)
{
	if (h == NULL) {
		return HSMKEY_EINVAL;
	}
	if (ms <= 0) {
		return hk_client_error(
		    h, HSMKEY_EINVAL, "%s %d ms: must be positive", what, ms);
	}
	pthread_mutex_lock(&h->mu);
	*fieldp = ms;
	pthread_mutex_unlock(&h->mu);
	return 0;
}

int
hsmkey_set_timeout(struct hsmkey *h, int ms)
{
	return set_ms(h, h != NULL ? &h->timeout_ms : NULL, ms, "timeout");
}

int
hsmkey_set_connect_timeout(struct hsmkey *h, int ms)
{
	return set_ms(
	    h, h != NULL ? &h->connect_ms : NULL, ms, "connect timeout");
}

int
hsmkey_set_reason(struct hsmkey *h, const char *reason)
{
	char *copy = NULL;

	if (h == NULL) {
		return HSMKEY_EINVAL;
	}
	if (reason != NULL && *reason != '\0' &&
	    (copy = strdup(reason)) == NULL) {
		return hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
	}
	pthread_mutex_lock(&h->mu);
	free(h->reason);
	h->reason = copy;
	pthread_mutex_unlock(&h->mu);
	return 0;
}

/* The exchange */

void
hk_client_response_free(Hsmkey__V1__Response *resp)
{
	Hsmkey__V1__ClientSecretResponse *cs;

	if (resp == NULL) {
		return;
	}
	if (resp->result_case == HSMKEY__V1__RESPONSE__RESULT_CLIENT_SECRET &&
	    (cs = resp->client_secret) != NULL && cs->secret.data != NULL) {
		OPENSSL_cleanse(cs->secret.data, cs->secret.len);
	}
	hsmkey__v1__response__free_unpacked(resp, NULL);
}

static const char *
result_name(Hsmkey__V1__Response__ResultCase c)
{
	const ProtobufCFieldDescriptor *f;

	f = protobuf_c_message_descriptor_get_field(
	    &hsmkey__v1__response__descriptor, (unsigned)c);
	return f != NULL ? f->name : "expected";
}

/* The error of a request that cannot be encoded or sealed (h->mu held). */
static int
seal_error(struct hsmkey *h, int e)
{
	if (e == HK_ERR_TOO_LARGE) {
		return set_error(h, HSMKEY_EINVAL, "request is over %d bytes",
		    HK_MAX_MESSAGE);
	}
	if (e == HK_ERR_NOMEM) {
		return set_error(
		    h, HSMKEY_ENOMEM, "cannot encode the request");
	}
	return set_error(h, HSMKEY_EINTERNAL, "cannot compute the MAC");
}

/*
 * Encodes req and seals it for h's primary credential into *envp: a fresh
 * nonce (or, on a retry, the last one), stored in h->nonce; *daykey gets
 * the day key that also checks the reply.  Caller must free *envp.
 */
static int
seal_request(struct hsmkey *h, const Hsmkey__V1__Request *req,
    uint8_t daykey[HK_MAC_LEN], uint8_t **envp, size_t *envlenp)
{
	struct hk_request_head head;
	uint8_t		      *reqbytes = NULL;
	size_t		       reqlen = 0;
	int		       r, e;

	if ((e = hk_encode(&req->base, &reqbytes, &reqlen)) != 0) {
		return seal_error(h, e == HK_ERR_TOO_LARGE ? e : HK_ERR_NOMEM);
	}
	if (h->retry) {
		/* a retry under the second credential: the same nonce, so
		 * that the service answers REPLAY if the first try did run */
		h->retry = 0;
	} else if (RAND_bytes(h->nonce, sizeof(h->nonce)) != 1) {
		r = set_error(h, HSMKEY_EINTERNAL, "RAND_bytes failed");
		goto out;
	}
	head.client_id = h->cur.id;
	head.secret_no = h->cur.secret_no;
	h->sent_no = head.secret_no;
	head.nonce = h->nonce;
	head.timestamp_ms = hk_now_ms();
	/* MACs both ways use the day key of the request's timestamp */
	if (hk_day_key(h->cur.secret, h->cur.secret_len,
		hk_mac_day(head.timestamp_ms), daykey) != 0) {
		r = set_error(h, HSMKEY_EINTERNAL, "cannot compute the MAC");
		goto out;
	}
	if ((e = hk_seal_request(
		 daykey, &head, reqbytes, reqlen, envp, envlenp)) != 0) {
		r = seal_error(h, e);
		goto out;
	}
	r = 0;
out:
	free(reqbytes);
	return r;
}

/* The error of a reply hk_open_response() refused (h->mu held). */
static int
open_error(struct hsmkey *h, int e, const struct hk_opened_reply *o)
{
	const Hsmkey__V1__ResponseEnvelope *re = o->renv;

	switch (e) {
	case HK_ERR_DECODE:
		return set_error(
		    h, HSMKEY_EPROTO, "malformed reply from %s", h->url);
	case HK_ERR_MAC:
		return set_error(h, HSMKEY_EPROTO,
		    "reply MAC does not verify: is %s the hsmkeyd that holds "
		    "this client's secret?",
		    h->url);
	case HK_ERR_PROTOCOL:
		break;
	default:
		return set_error(
		    h, HSMKEY_EINTERNAL, "cannot compute the MAC");
	}
	if (re->protocol != HK_PROTOCOL_VERSION) {
		return set_error(h, HSMKEY_EPROTO,
		    "reply speaks protocol %u, not %d", re->protocol,
		    HK_PROTOCOL_VERSION);
	}
	if (re->response.len > HK_MAX_MESSAGE &&
	    re->nonce.len == HK_NONCE_LEN &&
	    CRYPTO_memcmp(re->nonce.data, h->nonce, HK_NONCE_LEN) == 0) {
		return set_error(h, HSMKEY_EPROTO, "reply is over %d bytes",
		    HK_MAX_MESSAGE);
	}
	return set_error(h, HSMKEY_EPROTO,
	    "reply does not answer this request (nonce differs)");
}

/* A reply without a MAC: only a refusal of the request itself may come
 * so, and then only its status counts.  Returns the error. */
static int
unmaced_error(struct hsmkey *h, const Hsmkey__V1__Response *resp)
{
	int r;

	switch (resp->status) {
	case HSMKEY__V1__STATUS__STATUS_UNAUTHENTICATED:
	case HSMKEY__V1__STATUS__STATUS_REPLAY:
	case HSMKEY__V1__STATUS__STATUS_INVALID_ARGUMENT:
		r = hk_client_err_from_status(resp->status);
		h->unauth_plain = r == HSMKEY_EUNAUTH;
		return set_error(h, r, "%s (unauthenticated reply)",
		    resp->message != NULL && *resp->message != '\0'
			? resp->message
			: hsmkey_strerror(r));
	default:
		return set_error(
		    h, HSMKEY_EPROTO, "reply from %s carries no MAC", h->url);
	}
}

/* The error of a MACed response that is not OK or not what was asked. */
static int
status_error(struct hsmkey *h, const Hsmkey__V1__Response *resp,
    Hsmkey__V1__Response__ResultCase want)
{
	int r;

	if (resp->status == HSMKEY__V1__STATUS__STATUS_OK) {
		if (want == HSMKEY__V1__RESPONSE__RESULT__NOT_SET ||
		    resp->result_case == want) {
			return 0;
		}
		return set_error(h, HSMKEY_EPROTO,
		    "reply carries no %s result", result_name(want));
	}
	r = hk_client_err_from_status(resp->status);
	if (r == HSMKEY_EPROTO) {
		return set_error(
		    h, r, "reply has unknown status %d", (int)resp->status);
	}
	return set_error(h, r, "%s",
	    resp->message != NULL && *resp->message != '\0'
		? resp->message
		: hsmkey_strerror(r));
}

/* Opens the reply to the last request and decodes its response. */
static int
open_reply(struct hsmkey *h, const uint8_t daykey[HK_MAC_LEN],
    const uint8_t *reply, size_t replylen,
    Hsmkey__V1__Response__ResultCase want, Hsmkey__V1__Response **respp)
{
	struct hk_opened_reply o;
	Hsmkey__V1__Response  *resp = NULL;
	const char	      *why;
	int		       r, e;

	/* parse only what the MAC vouches for */
	if ((e = hk_open_response(
		 daykey, h->nonce, reply, replylen, &o, &why)) != 0) {
		r = open_error(h, e, &o);
		goto out;
	}
	if ((resp = hsmkey__v1__response__unpack(NULL, o.resp_len, o.resp)) ==
	    NULL) {
		r = set_error(
		    h, HSMKEY_EPROTO, "malformed response from %s", h->url);
		goto out;
	}
	if (!o.maced) {
		r = unmaced_error(h, resp);
		goto out;
	}
	if (h->sent_no == 0 && h->cur.named == 0 && o.secret_no != 0) {
		/* the MAC vouches for it: name this secret from now on */
		h->cur.secret_no = o.secret_no;
	}
	if ((r = status_error(h, resp, want)) != 0) {
		goto out;
	}
	/* success */
	*respp = resp;
	resp = NULL;
out:
	if (o.renv != NULL && o.renv->response.data != NULL) {
		OPENSSL_cleanse(o.renv->response.data, o.renv->response.len);
	}
	hk_opened_reply_free(&o);
	hk_client_response_free(resp);
	return r;
}

/* One request and its reply, with h->mu held. */
static int
exchange(struct hsmkey *h, const Hsmkey__V1__Request *req,
    Hsmkey__V1__Response__ResultCase want, Hsmkey__V1__Response **respp)
{
	uint8_t	 daykey[HK_MAC_LEN];
	uint8_t *envbytes = NULL, *reply = NULL;
	size_t	 envlen = 0, replylen = 0;
	int	 r;

	*respp = NULL;
	h->unauth_plain = 0;
	if ((r = seal_request(h, req, daykey, &envbytes, &envlen)) != 0) {
		goto out;
	}
	if ((r = hk_transport_roundtrip(h->t, h->timeout_ms, h->connect_ms,
		 envbytes, envlen, &reply, &replylen, h->err,
		 sizeof(h->err))) != 0) {
		goto out;
	}
	if ((r = open_reply(h, daykey, reply, replylen, want, respp)) != 0) {
		goto out;
	}
	/* success */
	h->err[0] = '\0';
out:
	OPENSSL_cleanse(daykey, sizeof(daykey));
	free(envbytes);
	hk_transport_free_reply(reply, replylen);
	return r;
}

/*
 * Re-reads the credentials file of h (h->mu held).  Unless force, only when
 * its stat signature changed.  Returns 1 when the primary credential
 * changed, 0 when not, or a negative HSMKEY_E* code when the file cannot be
 * used: the credential in use stays, and h->reload_err says why.
 */
static int
reload_locked(struct hsmkey *h, int force)
{
	struct hk_credentials c;
	struct hk_file_sig    s1, s2;
	struct hk_cred	      nc;
	char		      why[HK_ERRLEN / 2];
	int		      r;

	h->cred_checked_ms = mono_ms();
	if (h->cred_path == NULL) {
		return 0;
	}
	if (hk_file_sig_get(h->cred_path, &s1) != 0) {
		r = HSMKEY_ECREDENTIALS;
		snprintf(h->reload_err, sizeof(h->reload_err),
		    "credentials file %s: %s; still using client '%s' "
		    "secret %u",
		    h->cred_path, strerror(errno), h->cur.id,
		    h->cur.secret_no);
		memset(&h->cred_sig, 0, sizeof(h->cred_sig));
		goto fail;
	}
	if (!force && hk_file_sig_equal(&s1, &h->cred_sig)) {
		return 0;
	}
	r = hk_credentials_load(h->cred_path, &c, why, sizeof(why));
	/* a version that changed while being read is read again later */
	if (hk_file_sig_get(h->cred_path, &s2) == 0 &&
	    hk_file_sig_equal(&s1, &s2)) {
		h->cred_sig = s1;
	} else {
		memset(&h->cred_sig, 0, sizeof(h->cred_sig));
	}
	if (r != 0) {
		snprintf(h->reload_err, sizeof(h->reload_err),
		    "%s; still using client '%s' secret %u", why, h->cur.id,
		    h->cur.secret_no);
		hk_credentials_clear(&c);
		goto fail;
	}
	h->reload_err[0] = '\0';
	if (cred_is(&c, &h->cur)) {
		r = 0;
	} else if (cred_is(&c, &h->alt)) {
		cred_swap(h, &h->alt);
		r = 1;
	} else if ((r = cred_store(&nc, c.id, c.secret_no, c.secret,
			c.secret_len)) == 0) {
		/* the new one leads; the old one of the same client stays
		 * as the second until the next change */
		cred_swap(h, &nc);
		cred_wipe(&h->alt);
		if (strcmp(nc.id, h->cur.id) == 0) {
			h->alt = nc;
		} else {
			cred_wipe(&nc);
		}
		r = 1;
	} else {
		snprintf(h->reload_err, sizeof(h->reload_err),
		    "credentials file %s: out of memory; still using "
		    "client '%s' secret %u",
		    h->cred_path, h->cur.id, h->cur.secret_no);
	}
	hk_credentials_clear(&c);
	if (r >= 0) {
		return r;
	}
fail:
	set_error(h, r, "%s", h->reload_err);
	return r;
}

/*
 * The primary credential got UNAUTHENTICATED without a MAC: the service
 * did not take it (unknown, revoked or expired secret, bad MAC).  Retries
 * once: with the credentials file's new credential if the file changed;
 * else, when the number sent was one learned from a reply, or the file's
 * and there is no second credential, with none (secret_no 0: the service
 * tries every live secret, and the secret may be another number now);
 * else with the second credential.  The retry
 * reuses the nonce, so a request that did run (the reply forged on the
 * way) is a REPLAY, never a second execution; hence only a credential of
 * the same client is tried.
 */
static int
retry_unauth(struct hsmkey *h, const Hsmkey__V1__Request *req,
    Hsmkey__V1__Response__ResultCase want, Hsmkey__V1__Response **respp, int r)
{
	char	 failed_id[HK_CLIENT_ID_MAX + 1];
	int	 swapped = 0;
	uint32_t named = 0;

	memcpy(failed_id, h->cur.id, sizeof(failed_id));
	if (h->auto_reload && reload_locked(h, 0) == 1) {
		if (strcmp(h->cur.id, failed_id) != 0) {
			return r;
		}
	} else if (h->sent_no != 0 &&
	    (h->cur.named == 0 || h->alt.secret == NULL)) {
		/* the number, learned or the file's, is not taken: the secret
		 * may be another one now (a new secret pasted into a file
		 * that still names the old number); find it again */
		named = h->cur.named;
		h->cur.named = 0;
		h->cur.secret_no = 0;
	} else if (h->alt.secret != NULL) {
		cred_swap(h, &h->alt);
		swapped = 1;
	} else {
		return r;
	}
	h->retry = 1;
	r = exchange(h, req, want, respp);
	h->retry = 0;
	if (swapped && r == HSMKEY_EUNAUTH && h->unauth_plain) {
		/* neither works: keep the order */
		cred_swap(h, &h->alt);
	}
	if (named != 0 && r == HSMKEY_EUNAUTH && h->unauth_plain) {
		/* no live secret is this one: the file's number stays */
		h->cur.named = named;
		h->cur.secret_no = named;
	}
	return r;
}

int
hk_client_call(struct hsmkey *h, const Hsmkey__V1__Request *req,
    Hsmkey__V1__Response__ResultCase want, Hsmkey__V1__Response **respp)
{
	Hsmkey__V1__Request with_reason;
	int		    r;

	*respp = NULL;
	if (h == NULL || req == NULL) {
		return HSMKEY_EINVAL;
	}
	pthread_mutex_lock(&h->mu);
	if (h->reason != NULL && hk_request_changes(req->op_case) &&
	    (req->reason == NULL || *req->reason == '\0')) {
		/* a shallow copy: only the reason differs */
		with_reason = *req;
		with_reason.reason = h->reason;
		req = &with_reason;
	}
	if (h->auto_reload &&
	    mono_ms() - h->cred_checked_ms >= HK_RELOAD_EVERY_MS) {
		(void)reload_locked(h, 0);
	}
	r = exchange(h, req, want, respp);
	if (r == HSMKEY_EUNAUTH && h->unauth_plain) {
		r = retry_unauth(h, req, want, respp, r);
	}
	if (r == 0 && h->reload_err[0] != '\0') {
		/* a failed reload stays visible until the file is fixed */
		snprintf(h->err, sizeof(h->err), "%s", h->reload_err);
	}
	pthread_mutex_unlock(&h->mu);
	return r;
}

int
hk_client_call_status(struct hsmkey *h, const Hsmkey__V1__Request *req)
{
	Hsmkey__V1__Response *resp = NULL;
	int		      r;

	r = hk_client_call(
	    h, req, HSMKEY__V1__RESPONSE__RESULT__NOT_SET, &resp);
	hk_client_response_free(resp);
	return r;
}

int
hsmkey_reload(struct hsmkey *h)
{
	int r;

	if (h == NULL) {
		return HSMKEY_EINVAL;
	}
	pthread_mutex_lock(&h->mu);
	if (h->cred_path == NULL) {
		r = set_error(h, HSMKEY_EINVAL,
		    "this handle has no credentials file to reload "
		    "(opened with hsmkey_open_secret)");
	} else if ((r = reload_locked(h, 1)) > 0) {
		r = 0;
	}
	if (r == 0) {
		h->err[0] = '\0';
	}
	pthread_mutex_unlock(&h->mu);
	return r;
}

int
hsmkey_set_auto_reload(struct hsmkey *h, int on)
{
	if (h == NULL) {
		return HSMKEY_EINVAL;
	}
	pthread_mutex_lock(&h->mu);
	h->auto_reload = on != 0 && h->cred_path != NULL;
	pthread_mutex_unlock(&h->mu);
	return 0;
}

int
hsmkey_add_credentials(struct hsmkey *h, const char *credentials_file)
{
	struct hk_credentials c;
	struct hk_cred	      nc;
	char		      why[HK_ERRLEN];
	int		      r;

	if (h == NULL) {
		return HSMKEY_EINVAL;
	}
	pthread_mutex_lock(&h->mu);
	if ((r = hk_credentials_load(
		 credentials_file, &c, why, sizeof(why))) != 0) {
		set_error(h, r, "%s", why);
		goto out;
	}
	if (strcmp(c.id, h->cur.id) != 0) {
		r = set_error(h, HSMKEY_EINVAL,
		    "%s holds client '%s', this handle is client '%s': a "
		    "second credential must be of the same client",
		    credentials_file, c.id, h->cur.id);
		goto out;
	}
	if (cred_is(&c, &h->cur)) {
		r = 0; /* the primary already */
		goto out;
	}
	if ((r = cred_store(&nc, c.id, c.secret_no, c.secret, c.secret_len)) !=
	    0) {
		set_error(h, r, "cannot allocate memory for the secret");
		goto out;
	}
	cred_wipe(&h->alt);
	h->alt = nc;
	h->err[0] = '\0';
out:
	hk_credentials_clear(&c);
	pthread_mutex_unlock(&h->mu);
	return r;
}
