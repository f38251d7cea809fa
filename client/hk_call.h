/*
 * hk_call.h: the protobuf side of libhsmkey's internals, for the library's
 * own files (libhsmkey.c, operations.c, admin.c): the one call that sends
 * a request and checks its reply.  The CLI does not include it: it calls
 * the plain-C functions of hk_client.h.  Same thread-safety as hsmkey.h.
 */
#ifndef HK_CALL_H
#define HK_CALL_H

#include "hk_client.h"
#include "hsmkey.pb-c.h"

/*
 * Sends req to the service and checks the reply (nonce, MAC, status).
 * Returns 0 with *respp set when the status is OK and the reply carries
 * result want (HSMKEY__V1__RESPONSE__RESULT__NOT_SET: any), else a
 * negative HSMKEY_E* code with hsmkey_last_error(h) set.
 * Caller must hk_client_response_free(*respp).
 */
int hk_client_call(struct hsmkey *h, const Hsmkey__V1__Request *req,
    Hsmkey__V1__Response__ResultCase want, Hsmkey__V1__Response **respp);
/* hk_client_call() that wants no result and drops the reply: 0 or a
 * negative HSMKEY_E* code (h or req NULL: HSMKEY_EINVAL). */
int hk_client_call_status(struct hsmkey *h, const Hsmkey__V1__Request *req);
/* Frees a response, zeroing any client secret it carries. Accepts NULL. */
void hk_client_response_free(Hsmkey__V1__Response *resp);

/* The HSMKEY_E* code for a wire status. */
int hk_client_err_from_status(Hsmkey__V1__Status st);

#endif /* HK_CALL_H */
