/*
 * rawproto.h: a minimal client of the hsmkey wire protocol for the tests
 * and the auth benchmark that must see or shape the exact bytes on the wire
 * (PROTOCOL.md): it builds MACed envelopes, sends them on a nanomsg REQ
 * socket and checks the reply's MAC.  Not thread-safe: one struct rp_conn
 * per thread.
 */
#ifndef HK_RAWPROTO_H
#define HK_RAWPROTO_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "envelope.h"
#include "hsmkey.pb-c.h"

struct rp_cred {
	char	 id[HK_CLIENT_ID_MAX + 1];
	uint32_t secret_no;
	uint8_t *secret;
	size_t	 secret_len;
};

/* Reads id, secret and secret_no of an INI credentials file; 0 or -1. */
int  rp_cred_load(const char *path, struct rp_cred *c);
void rp_cred_clear(struct rp_cred *c);

/* Options of one envelope; rp_env_defaults() fills a fresh valid one. */
struct rp_env {
	uint32_t	      protocol;
	const char	     *client_id;
	uint32_t	      secret_no;
	uint8_t		      nonce[HK_NONCE_LEN];
	uint64_t	      ts;
	const struct rp_cred *cred; /* MAC key */
	/* to make a refused envelope: */
	size_t nonce_len;   /* HK_NONCE_LEN, or shorter */
	int    corrupt_mac; /* flip a bit of the MAC */
};

void rp_env_defaults(struct rp_env *e, const struct rp_cred *c);

/* Packs a Request.  Caller must free *outp. */
int
rp_pack_request(const Hsmkey__V1__Request *req, uint8_t **outp, size_t *lenp);
/* Builds the serialized Envelope of req.  Caller must free *outp. */
int rp_envelope(const struct rp_env *e, const uint8_t *req, size_t len,
    uint8_t **outp, size_t *lenp);

/* One decoded reply. */
struct rp_reply {
	int	 got;	  /* a reply arrived */
	int	 decoded; /* it decoded to a Response */
	int	 has_mac;
	int	 mac_ok; /* MAC present and valid for the nonce */
	int	 status; /* Response.status, -1 if none */
	char	 message[256];
	uint8_t *raw; /* the ResponseEnvelope bytes */
	size_t	 raw_len;
	uint32_t version;   /* KeyResponse.version or SignResponse.version */
	size_t	 nversions; /* KeyResponse.key->n_versions */
	uint64_t uptime_s;  /* HealthResponse.uptime_s */
};

void rp_reply_free(struct rp_reply *r);

/* A REQ socket connected to url with a receive timeout (ms); -1 on error.
 * resend_ms 0 leaves nanomsg's default (60 s). */
int  rp_connect(const char *url, int timeout_ms, int resend_ms);
void rp_close(int sock);

/*
 * Sends msg on sock and waits for one reply; decodes it and checks its MAC
 * with cred's day key of ts and the nonce.  0 (see r->got), -1 on a send
 * error.
 */
int rp_exchange(int sock, const uint8_t *msg, size_t len,
    const struct rp_cred *cred, uint64_t ts, const uint8_t nonce[HK_NONCE_LEN],
    struct rp_reply *r);

/* A fresh random nonce. */
void rp_nonce(uint8_t nonce[HK_NONCE_LEN]);

/* Status name for printing ("OK", "UNAUTHENTICATED", "(no reply)"). */
const char *rp_status_name(int status);

/* The checks of a rules program: each prints "ok - WHAT" or "FAIL -
 * FILE:LINE: WHAT" and is counted. */
extern int rp_npass, rp_nfail;
#define RP_CHECK(cond, ...)                                           \
	do {                                                          \
		if (cond) {                                           \
			rp_npass++;                                   \
			printf("ok - ");                              \
		} else {                                              \
			rp_nfail++;                                   \
			printf("FAIL - %s:%d: ", __FILE__, __LINE__); \
		}                                                     \
		printf(__VA_ARGS__);                                  \
		printf("\n");                                         \
		fflush(stdout);                                       \
	} while (0)

/* Prints "N passed, N failed"; the exit code: 0 if none failed. */
int rp_checks_done(void);

#endif /* HK_RAWPROTO_H */
