/*
 * hk_client.h: internals of libhsmkey used by the hsmkey CLI and the unit
 * tests.  Not installed, not exported (hidden by -fvisibility=hidden and
 * libhsmkey.map).  Same thread-safety as hsmkey.h: a handle serialises its
 * calls.
 */
#ifndef HK_CLIENT_H
#define HK_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "hsmkey.h"
#include "hsmkey.pb-c.h"

/* Largest message or digest a sign or verify request may carry. */
#define HK_CLIENT_MAX_DATA (1024 * 1024 - 4096)

/*
 * Sends req to the service and checks the reply (nonce, MAC, status).
 * Returns 0 with *respp set when the status is OK and the reply carries
 * result want (HSMKEY__V1__RESPONSE__RESULT__NOT_SET: any), else a
 * negative HSMKEY_E* code with hsmkey_last_error(h) set.
 * Caller must hk_client_response_free(*respp).
 */
int hk_client_call(struct hsmkey *h, const Hsmkey__V1__Request *req,
    Hsmkey__V1__Response__ResultCase want, Hsmkey__V1__Response **respp);
/* Frees a response, zeroing any client secret it carries. Accepts NULL. */
void hk_client_response_free(Hsmkey__V1__Response *resp);

/* The URL the handle is connected to; caller does not free. */
const char *hk_client_url(const struct hsmkey *h);
/* The client id the handle authenticates as; caller does not free. */
const char *hk_client_id(const struct hsmkey *h);

/* Sets hsmkey_last_error(h) (h may be NULL: the thread's open error) and
 * returns err. */
int hk_client_error(struct hsmkey *h, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The HSMKEY_E* code for a wire status. */
int hk_client_err_from_status(Hsmkey__V1__Status st);

#endif /* HK_CLIENT_H */
