/*
 * wire.h: names, validation and text forms that the service and the client
 * must agree on.  Thread-safe; returned strings are static.
 */
#ifndef HK_WIRE_H
#define HK_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "alg.h"
#include "hsmkey.pb-c.h"

typedef Hsmkey__V1__Status	 hk_status;
typedef Hsmkey__V1__VersionState hk_state;

/* 1 if name matches [a-z0-9][a-z0-9._-]{0,63}. */
int hk_valid_key_name(const char *name);
/* 1 if id matches [A-Za-z0-9][A-Za-z0-9._@-]{0,63}. */
int hk_valid_client_id(const char *id);

/*
 * 1 if a request of kind op (a Request oneof case) changes state, so that
 * it may carry a reason (Request.reason); 0 for any other.  The service's
 * dispatch table says the same of each kind (its unit test checks).
 */
int hk_request_changes(Hsmkey__V1__Request__OpCase op);

/* An algorithm between alg.h and the wire (the same numbers; an unknown
 * wire value stays as it is, for hk_alg_info() to refuse). */
Hsmkey__V1__Algorithm hk_alg_to_wire(hk_alg alg);
hk_alg		      hk_alg_from_wire(Hsmkey__V1__Algorithm alg);

/* "pending", "active", "verify-only", ... */
const char *hk_state_name(hk_state st);
/* "OK", "INVALID_ARGUMENT", ... */
const char *hk_status_name(hk_status st);

/* Maps an hk_err to the wire status and back. */
hk_status hk_status_from_err(int r);
int	  hk_err_from_status(hk_status st);
/* The CLI's exit code for a status (DESIGN.md: 0,2,3,4,5). */
int hk_exit_code(hk_status st);

/*
 * Text form of a signature: "hsmkey:v<N>:<base64>".
 * hk_sigtext_format: caller must free *outp.
 * hk_sigtext_parse: caller must free *sigp; HK_ERR_INVALID on bad text.
 */
int hk_sigtext_format(
    uint32_t version, const uint8_t *sig, size_t len, char **outp);
int hk_sigtext_parse(
    const char *text, uint32_t *versionp, uint8_t **sigp, size_t *lenp);

/* Standard base64 (RFC 4648) via OpenSSL. Caller must free the result. */
int hk_base64_encode(const uint8_t *in, size_t len, char **outp);
int hk_base64_decode(const char *in, uint8_t **outp, size_t *lenp);

/* The PEM text of the SubjectPublicKeyInfo der (what `pubkey` prints):
 * 0, HK_ERR_DECODE when der is not one, HK_ERR_NOMEM.  Caller must free
 * *pemp. */
int hk_pubkey_pem(const uint8_t *der, size_t len, char **pemp);

/* The longest duration anything takes (policies, config): 100 years. */
#define HK_DURATION_MAX_S (36525ULL * 86400)

/*
 * Durations for policies and config: "90", "30s", "15m", "12h", "7d", at
 * most HK_DURATION_MAX_S.  A bare number is seconds.  HK_ERR_INVALID on
 * anything else.
 */
int hk_parse_duration(const char *s, uint64_t *secondsp);

/* t + s seconds, in ms, saturating at UINT64_MAX (durations added to
 * times never wrap). */
uint64_t hk_time_add_s(uint64_t t_ms, uint64_t s);

#endif /* HK_WIRE_H */
