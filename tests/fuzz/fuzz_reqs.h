/*
 * fuzz_reqs.h: one well-formed Request of every kind the service knows
 * (proto/hsmkey.proto), on the names the request fuzzer's service holds
 * (keys k1 and k2, client victim): the seeds of the request target
 * (fuzz_seeds.c) and the set-up of its service (fuzz_request.c).  Fuzz
 * code only.
 */
#ifndef HK_FUZZ_REQS_H
#define HK_FUZZ_REQS_H

#include <stddef.h>
#include <stdint.h>

#include "hsmkey.pb-c.h"

/* The number of kinds fuzz_req_pack() knows. */
size_t fuzz_req_count(void);

/*
 * Packs request kind i (0 .. fuzz_req_count() - 1) into *outp; *namep gets
 * its name ("sign", "sign-batch", ...; static).  Returns 0 or an hk_err.
 * Caller must free *outp.
 */
int fuzz_req_pack(size_t i, const char **namep, uint8_t **outp, size_t *lenp);

/* Packs a CreateRequest of key name with alg.  Caller must free *outp. */
int fuzz_req_create(
    const char *name, Hsmkey__V1__Algorithm alg, uint8_t **outp, size_t *lenp);

#endif /* HK_FUZZ_REQS_H */
