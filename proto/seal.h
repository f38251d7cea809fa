/*
 * seal.h: sealing and opening the envelopes of PROTOCOL.md, written once
 * for the service, libhsmkey, the tests and the fuzz targets.  The MACs
 * themselves are envelope.h's; this module builds, encodes, decodes and
 * checks the Envelope and ResponseEnvelope messages around them.
 *
 * A request envelope is decoded strictly (codec.h) and its shape checked
 * before anyone looks up its client; its MAC is checked with the day key
 * of its timestamp.  A reply is sealed with the day key of the request it
 * answers, or sent without a MAC when the request could not be
 * authenticated (then the client trusts only its status).
 * Thread-safe.
 */
#ifndef HK_SEAL_H
#define HK_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "hsmkey.pb-c.h"

/* What a request's MAC covers, besides the MAC itself. */
struct hk_request_head {
	const char    *client_id;
	uint32_t       secret_no;
	const uint8_t *nonce; /* HK_NONCE_LEN bytes */
	uint64_t       timestamp_ms;
};

/*
 * Seals the serialized request req into an Envelope MACed with daykey.
 * Caller must free *outp.  HK_ERR_TOO_LARGE over HK_MAX_MESSAGE.
 */
int hk_seal_request(const uint8_t daykey[HK_MAC_LEN],
    const struct hk_request_head *head, const uint8_t *req, size_t req_len,
    uint8_t **outp, size_t *lenp);

/*
 * An Envelope's bytes besides its request: protocol 6, client id 66,
 * secret number 6, nonce 18, timestamp 11, the request's tag and length
 * 6, MAC 34 = 147 at most; rounded up so that a wrong nonce or MAC length
 * still gets its own error.  A receiver's frame limit is its request
 * limit plus this.
 */
#define HK_ENVELOPE_OVERHEAD 256
#define HK_ENVELOPE_FIELDS   7 /* fields of an Envelope, each at most once */

/*
 * Refuses, before any unpacking, an envelope that has more fields than an
 * Envelope has or whose bytes besides its request exceed
 * HK_ENVELOPE_OVERHEAD: HK_ERR_TOO_LARGE (HK_ERR_DECODE on malformed
 * wire bytes), else 0.  Reads at most HK_ENVELOPE_FIELDS + 1 fields.
 */
int hk_envelope_precheck(const uint8_t *msg, size_t len);

/*
 * Decodes a received request envelope strictly (after
 * hk_envelope_precheck()) and checks its shape
 * (protocol, client id, nonce and MAC lengths).  HK_ERR_DECODE and *envp
 * NULL when it does not decode; any other error leaves the decoded
 * envelope in *envp (its nonce answers the error) and *whyp says what is
 * wrong, for the log and the reply.  Caller must hk_envelope_free(*envp).
 */
int  hk_open_request(const uint8_t *msg, size_t len,
     Hsmkey__V1__Envelope **envp, const char **whyp);
void hk_envelope_free(Hsmkey__V1__Envelope *env);

/* 0 if env's MAC is the one daykey makes over it (constant time),
 * HK_ERR_MAC if not. */
int hk_check_request(
    const Hsmkey__V1__Envelope *env, const uint8_t daykey[HK_MAC_LEN]);

/*
 * Seals the serialized response resp into a ResponseEnvelope answering
 * nonce, MACed with daykey, or with no MAC when daykey is NULL (a request
 * that could not be authenticated).  secret_no: the secret that matched a
 * request that named none (it goes under the MAC), else 0; ignored without
 * a MAC.  Caller must free *outp.
 */
int hk_seal_response(const uint8_t *daykey, uint32_t secret_no,
    const uint8_t *nonce, size_t nonce_len, const uint8_t *resp,
    size_t resp_len, uint8_t **outp, size_t *lenp);

/* A reply as opened by hk_open_response(). */
struct hk_opened_reply {
	Hsmkey__V1__ResponseEnvelope *renv; /* owned */
	const uint8_t		     *resp; /* the Response bytes, in renv */
	size_t			      resp_len;
	int maced; /* 0: no MAC, trust the status only */
	/* maced: the secret that matched a request that named none, else 0 */
	uint32_t secret_no;
};

/*
 * Opens the reply msg to the request with nonce, sealed with daykey:
 * decodes it, checks protocol, nonce and size, and the MAC if there is
 * one.  HK_ERR_DECODE, HK_ERR_PROTOCOL (*whyp says which) or HK_ERR_MAC.
 * Caller must hk_opened_reply_free(o) after any call.
 */
int  hk_open_response(const uint8_t daykey[HK_MAC_LEN],
     const uint8_t nonce[HK_NONCE_LEN], const uint8_t *msg, size_t len,
     struct hk_opened_reply *o, const char **whyp);
void hk_opened_reply_free(struct hk_opened_reply *o);

#endif /* HK_SEAL_H */
