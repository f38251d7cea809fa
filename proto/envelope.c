/* envelope.c: MAC inputs and in-process HMAC (see envelope.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "envelope.h"
#include "hk_err.h"

static const char req_label[] = "hsmkey.v1 request"; /* + its NUL */
static const char resp_label[] = "hsmkey.v1 response";
static const char day_label[] = "hsmkey.v1 day key";

int
hk_mac_input_request(struct hk_buf *b, uint32_t protocol,
    const char *client_id, uint32_t secret_no, const uint8_t *nonce,
    size_t nonce_len, uint64_t timestamp_ms, const uint8_t *req,
    size_t req_len)
{
	int r;

	if ((r = hk_buf_put(b, req_label, sizeof(req_label))) != 0 ||
	    (r = hk_buf_put_u32(b, protocol)) != 0 ||
	    (r = hk_buf_put_string(b, client_id, strlen(client_id))) != 0 ||
	    (r = hk_buf_put_u32(b, secret_no)) != 0 ||
	    (r = hk_buf_put_string(b, nonce, nonce_len)) != 0 ||
	    (r = hk_buf_put_u64(b, timestamp_ms)) != 0 ||
	    (r = hk_buf_put_string(b, req, req_len)) != 0) {
		return r;
	}
	return 0;
}

int
hk_mac_input_response(struct hk_buf *b, uint32_t protocol,
    const uint8_t *nonce, size_t nonce_len, const uint8_t *resp,
    size_t resp_len, uint32_t secret_no)
{
	int r;

	if ((r = hk_buf_put(b, resp_label, sizeof(resp_label))) != 0 ||
	    (r = hk_buf_put_u32(b, protocol)) != 0 ||
	    (r = hk_buf_put_string(b, nonce, nonce_len)) != 0 ||
	    (r = hk_buf_put_string(b, resp, resp_len)) != 0 ||
	    (secret_no != 0 && (r = hk_buf_put_u32(b, secret_no)) != 0)) {
		return r;
	}
	return 0;
}

/*
 * The civil date of a day count since 1970-01-01 in the proleptic
 * Gregorian calendar, by arithmetic: gmtime_r() takes glibc's time zone
 * lock, and every request needs its day.  Eras of 400 years (146,097
 * days) starting on 1 March, so that the leap day is the last of a year.
 */
uint32_t
hk_mac_day(uint64_t timestamp_ms)
{
	uint64_t days = timestamp_ms / 86400000 + 719468; /* from 0000-03-01 */
	uint64_t era = days / 146097, doe = days % 146097;
	uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	uint64_t mp = (5 * doy + 2) / 153;
	uint64_t d = doy - (153 * mp + 2) / 5 + 1;
	uint64_t m = mp < 10 ? mp + 3 : mp - 9;
	uint64_t y = yoe + era * 400 + (m <= 2);

	if (y > 9999) {
		return 0; /* not a YYYYMMDD; no client sends it */
	}
	return (uint32_t)(y * 10000 + m * 100 + d);
}

void
hk_day_key_input(uint32_t day, uint8_t buf[32], size_t *lenp)
{
	memcpy(buf, day_label, sizeof(day_label)); /* with its NUL */
	buf[sizeof(day_label)] = (uint8_t)(day >> 24);
	buf[sizeof(day_label) + 1] = (uint8_t)(day >> 16);
	buf[sizeof(day_label) + 2] = (uint8_t)(day >> 8);
	buf[sizeof(day_label) + 3] = (uint8_t)day;
	*lenp = sizeof(day_label) + 4;
}

int
hk_day_key(const uint8_t *secret, size_t secret_len, uint32_t day,
    uint8_t out[HK_MAC_LEN])
{
	uint8_t in[32];
	size_t	len;

	hk_day_key_input(day, in, &len);
	return hk_hmac_sha256(secret, secret_len, in, len, out);
}

/*
 * OpenSSL 3 looks up an algorithm's implementation at every one-shot call
 * (HMAC(), EVP_Digest() with EVP_sha256()): that lookup cost more than the
 * hashing of a request.  The implementations are fetched once.
 *
 * Each MAC gets a context of its own, freed as soon as the MAC is made:
 * a keyed HMAC context holds the digest states of key^ipad and key^opad,
 * which MAC as well as the key does, on OpenSSL's ordinary heap (neither
 * locked nor left out of core dumps).  OpenSSL zeroes that state when the
 * context is freed, so none outlives the call, and no copy of a day key is
 * kept here between calls.  (Keeping one keyed context per thread saved
 * ~0.6 us per MAC, but left every worker's last day key in the heap, also
 * after its secret was revoked.)
 */
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static EVP_MAC	     *hmac_impl;
static EVP_MD	     *sha256_impl;

static void
crypto_init(void)
{
	hmac_impl = EVP_MAC_fetch(NULL, "HMAC", NULL);
	sha256_impl = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* A new HMAC-SHA256 context keyed with key; NULL on failure.  Caller must
 * mac_end() or EVP_MAC_CTX_free() it. */
static EVP_MAC_CTX *
mac_begin(const uint8_t *key, size_t key_len)
{
	OSSL_PARAM   params[2];
	EVP_MAC_CTX *ctx;

	if (pthread_once(&crypto_once, crypto_init) != 0 ||
	    hmac_impl == NULL || (ctx = EVP_MAC_CTX_new(hmac_impl)) == NULL) {
		return NULL;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, key_len, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* The MAC of what ctx was fed into out; frees (and so zeroes) ctx. */
static int
mac_end(EVP_MAC_CTX *ctx, uint8_t out[HK_MAC_LEN])
{
	size_t len = 0;
	int    r = 0;

	if (EVP_MAC_final(ctx, out, &len, HK_MAC_LEN) != 1 ||
	    len != HK_MAC_LEN) {
		r = HK_ERR_INTERNAL;
	}
	EVP_MAC_CTX_free(ctx);
	return r;
}

int
hk_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *in,
    size_t in_len, uint8_t out[HK_MAC_LEN])
{
	EVP_MAC_CTX *ctx;

	if ((ctx = mac_begin(key, key_len)) == NULL) {
		return HK_ERR_INTERNAL;
	}
	if (EVP_MAC_update(ctx, in, in_len) != 1) {
		EVP_MAC_CTX_free(ctx);
		return HK_ERR_INTERNAL;
	}
	return mac_end(ctx, out);
}

/*
 * The MACs of requests and replies are fed to the HMAC piece by piece, in
 * the encoding of hk_mac_input_request()/hk_mac_input_response(), so that
 * no copy of a message is made: each fixed-size run of fields is put
 * together in a small buffer first.
 */
static uint8_t *
put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

int
hk_mac_request(const uint8_t daykey[HK_MAC_LEN], uint32_t protocol,
    const char *client_id, uint32_t secret_no, const uint8_t *nonce,
    size_t nonce_len, uint64_t timestamp_ms, const uint8_t *req,
    size_t req_len, uint8_t out[HK_MAC_LEN])
{
	uint8_t	     head[sizeof(req_label) + 8], mid[4 + 4 + 64 + 8 + 4];
	uint8_t	    *p;
	size_t	     id_len = strlen(client_id);
	EVP_MAC_CTX *ctx;

	if (id_len > UINT32_MAX || nonce_len > 64 || req_len > UINT32_MAX) {
		return HK_ERR_TOO_LARGE;
	}
	memcpy(head, req_label, sizeof(req_label));
	p = put_u32(head + sizeof(req_label), protocol);
	put_u32(p, (uint32_t)id_len);
	p = put_u32(mid, secret_no);
	p = put_u32(p, (uint32_t)nonce_len);
	memcpy(p, nonce, nonce_len);
	p = put_u32(p + nonce_len, (uint32_t)(timestamp_ms >> 32));
	p = put_u32(p, (uint32_t)timestamp_ms);
	p = put_u32(p, (uint32_t)req_len);
	if ((ctx = mac_begin(daykey, HK_MAC_LEN)) == NULL) {
		return HK_ERR_INTERNAL;
	}
	if (EVP_MAC_update(ctx, head, sizeof(head)) != 1 ||
	    EVP_MAC_update(ctx, (const uint8_t *)client_id, id_len) != 1 ||
	    EVP_MAC_update(ctx, mid, (size_t)(p - mid)) != 1 ||
	    EVP_MAC_update(ctx, req, req_len) != 1) {
		EVP_MAC_CTX_free(ctx);
		return HK_ERR_INTERNAL;
	}
	return mac_end(ctx, out);
}

int
hk_mac_response(const uint8_t daykey[HK_MAC_LEN], uint32_t protocol,
    const uint8_t *nonce, size_t nonce_len, const uint8_t *resp,
    size_t resp_len, uint32_t secret_no, uint8_t out[HK_MAC_LEN])
{
	uint8_t	     head[sizeof(resp_label) + 4 + 4 + 64 + 4], *p, tail[4];
	EVP_MAC_CTX *ctx;

	if (nonce_len > 64 || resp_len > UINT32_MAX) {
		return HK_ERR_TOO_LARGE;
	}
	memcpy(head, resp_label, sizeof(resp_label));
	p = put_u32(head + sizeof(resp_label), protocol);
	p = put_u32(p, (uint32_t)nonce_len);
	memcpy(p, nonce, nonce_len);
	p = put_u32(p + nonce_len, (uint32_t)resp_len);
	if ((ctx = mac_begin(daykey, HK_MAC_LEN)) == NULL) {
		return HK_ERR_INTERNAL;
	}
	put_u32(tail, secret_no);
	if (EVP_MAC_update(ctx, head, (size_t)(p - head)) != 1 ||
	    EVP_MAC_update(ctx, resp, resp_len) != 1 ||
	    (secret_no != 0 && EVP_MAC_update(ctx, tail, sizeof(tail)) != 1)) {
		EVP_MAC_CTX_free(ctx);
		return HK_ERR_INTERNAL;
	}
	return mac_end(ctx, out);
}

int
hk_sha256(const uint8_t *in, size_t len, uint8_t out[32])
{
	if (pthread_once(&crypto_once, crypto_init) != 0 ||
	    sha256_impl == NULL) {
		return HK_ERR_INTERNAL;
	}
	if (EVP_Digest(in, len, out, NULL, sha256_impl, NULL) != 1) {
		return HK_ERR_INTERNAL;
	}
	return 0;
}

int
hk_mac_cmp(const uint8_t *a, const uint8_t *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0 ? 0 : HK_ERR_MAC;
}

uint64_t
hk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
hk_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
