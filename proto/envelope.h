/*
 * envelope.h: the authenticated framing of every request and reply.
 *
 * MACs are not made with the client's secret itself but with the key of
 * the UTC day of the request's timestamp (PROTOCOL.md, "Day keys"):
 *   day key = HMAC-SHA256(secret, "hsmkey.v1 day key" NUL || u32 YYYYMMDD)
 * so that the service computes each day key once in the token and the
 * secret never leaves it.
 *
 * A request MAC is HMAC-SHA256(day key, request MAC input) where the input
 * is:
 *   "hsmkey.v1 request" NUL || u32 protocol || string client_id ||
 *   u32 secret_no || string nonce || u64 timestamp_ms || string request
 * and a reply MAC is HMAC-SHA256(the same day key, reply MAC input):
 *   "hsmkey.v1 response" NUL || u32 protocol || string nonce ||
 *   string response [|| u32 secret_no]
 * with u32/u64 big-endian and string = u32 length || bytes.  The reply's
 * secret_no (which secret matched a request that named none) is there
 * only when it is not 0: the response's length prefix tells where it
 * ends, so both forms are unambiguous, and replies to requests that named
 * their secret are MACed as before.
 * Thread-safe.
 */
#ifndef HK_ENVELOPE_H
#define HK_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HK_PROTOCOL_VERSION 1
#define HK_NONCE_LEN	    16
#define HK_MAC_LEN	    32
#define HK_SECRET_LEN	    32
#define HK_CLIENT_ID_MAX    64

/* Appends the request MAC input to b. */
int hk_mac_input_request(struct hk_buf *b, uint32_t protocol,
    const char *client_id, uint32_t secret_no, const uint8_t *nonce,
    size_t nonce_len, uint64_t timestamp_ms, const uint8_t *req,
    size_t req_len);

/* Appends the reply MAC input to b (secret_no 0: not in it). */
int hk_mac_input_response(struct hk_buf *b, uint32_t protocol,
    const uint8_t *nonce, size_t nonce_len, const uint8_t *resp,
    size_t resp_len, uint32_t secret_no);

/* The same MACs computed without copying the message into a buffer. */
int hk_mac_request(const uint8_t daykey[HK_MAC_LEN], uint32_t protocol,
    const char *client_id, uint32_t secret_no, const uint8_t *nonce,
    size_t nonce_len, uint64_t timestamp_ms, const uint8_t *req,
    size_t req_len, uint8_t out[HK_MAC_LEN]);
int hk_mac_response(const uint8_t daykey[HK_MAC_LEN], uint32_t protocol,
    const uint8_t *nonce, size_t nonce_len, const uint8_t *resp,
    size_t resp_len, uint32_t secret_no, uint8_t out[HK_MAC_LEN]);

/* The UTC day of a timestamp as YYYYMMDD (0 after the year 9999). */
uint32_t hk_mac_day(uint64_t timestamp_ms);

/* The bytes a day key is the HMAC of; *lenp gets their length (<= 32). */
void hk_day_key_input(uint32_t day, uint8_t buf[32], size_t *lenp);

/* The day key of secret for day, in process (the client's side; the service
 * computes it with the secret in the token). */
int hk_day_key(const uint8_t *secret, size_t secret_len, uint32_t day,
    uint8_t out[HK_MAC_LEN]);

/* HMAC-SHA256 in process. */
int hk_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *in,
    size_t in_len, uint8_t out[HK_MAC_LEN]);

/* SHA-256 of in. */
int hk_sha256(const uint8_t *in, size_t len, uint8_t out[32]);

/* Constant-time comparison; 0 when equal. */
int hk_mac_cmp(const uint8_t *a, const uint8_t *b, size_t len);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t hk_now_ms(void);
/* Milliseconds of CLOCK_MONOTONIC, for pacing and timeouts. */
uint64_t hk_mono_ms(void);

#endif /* HK_ENVELOPE_H */
