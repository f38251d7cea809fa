/* envelope.c: MAC inputs and in-process HMAC (see envelope.h). */
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
    size_t resp_len)
{
	int r;

	if ((r = hk_buf_put(b, resp_label, sizeof(resp_label))) != 0 ||
	    (r = hk_buf_put_u32(b, protocol)) != 0 ||
	    (r = hk_buf_put_string(b, nonce, nonce_len)) != 0 ||
	    (r = hk_buf_put_string(b, resp, resp_len)) != 0) {
		return r;
	}
	return 0;
}

uint32_t
hk_mac_day(uint64_t timestamp_ms)
{
	time_t	  t = (time_t)(timestamp_ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		return 0;
	}
	return (uint32_t)(tm.tm_year + 1900) * 10000 +
	    (uint32_t)(tm.tm_mon + 1) * 100 + (uint32_t)tm.tm_mday;
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
 * hashing of a request.  The implementations are fetched once, and each
 * thread keeps one HMAC context that it re-keys per call.
 */
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;
static pthread_key_t  mac_ctx_key;
static EVP_MAC	     *hmac_impl;
static EVP_MD	     *sha256_impl;

static void
mac_ctx_free(void *p)
{
	EVP_MAC_CTX_free(p); /* clears the key it held */
}

static void
crypto_init(void)
{
	hmac_impl = EVP_MAC_fetch(NULL, "HMAC", NULL);
	sha256_impl = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (pthread_key_create(&mac_ctx_key, mac_ctx_free) != 0) {
		EVP_MAC_free(hmac_impl);
		hmac_impl = NULL;
	}
}

int
hk_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *in,
    size_t in_len, uint8_t out[HK_MAC_LEN])
{
	OSSL_PARAM   params[2];
	EVP_MAC_CTX *ctx;
	size_t	     len = 0;
	int	     fresh = 0;

	if (pthread_once(&crypto_once, crypto_init) != 0 ||
	    hmac_impl == NULL) {
		return HK_ERR_INTERNAL;
	}
	if ((ctx = pthread_getspecific(mac_ctx_key)) == NULL) {
		if ((ctx = EVP_MAC_CTX_new(hmac_impl)) == NULL) {
			return HK_ERR_NOMEM;
		}
		if (pthread_setspecific(mac_ctx_key, ctx) != 0) {
			EVP_MAC_CTX_free(ctx);
			return HK_ERR_NOMEM;
		}
		fresh = 1;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, key_len, fresh ? params : NULL) != 1 ||
	    EVP_MAC_update(ctx, in, in_len) != 1 ||
	    EVP_MAC_final(ctx, out, &len, HK_MAC_LEN) != 1 ||
	    len != HK_MAC_LEN) {
		return HK_ERR_INTERNAL;
	}
	return 0;
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
