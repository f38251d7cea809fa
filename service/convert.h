/*
 * convert.h: the one place where the keyring's and the clients' C types
 * become wire messages (hsmkey.proto) and back.  Each convert_* that
 * builds a message allocates it whole; the caller frees it with the
 * matching *_free (which accepts NULL).  Thread-safe.
 */
#ifndef HK_CONVERT_H
#define HK_CONVERT_H

#include <stddef.h>

#include "clients.h"
#include "hsmkey.pb-c.h"
#include "keyring.h"
#include "lifecycle.h"

/* The wire (and store) value of a version state: the same number. */
Hsmkey__V1__VersionState convert_state(enum lc_state st);
/* A stored or received state: HK_ERR_DECODE unless it is one of ours
 * (LC_NONE is not). */
int convert_state_from(Hsmkey__V1__VersionState wire, enum lc_state *stp);

/* A KeyInfo of info.  Caller must convert_key_info_free(*outp). */
int
convert_key_info(const struct keyring_info *info, Hsmkey__V1__KeyInfo **outp);
/* The *_free functions take void * so that they can be a reply arena's
 * callbacks (ops_keep()); each accepts NULL. */
void convert_key_info_free(void *ki);

/* A ListResponse of n keys.  Caller must convert_key_list_free(*outp). */
int  convert_key_list(const struct keyring_info *infos, size_t n,
     Hsmkey__V1__ListResponse **outp);
void convert_key_list_free(void *l);

/* A StatsResponse of version and secret counters.  Caller must
 * convert_stats_free(*outp). */
int  convert_stats(const struct keyring_vstats *vs, size_t nv,
     const struct clients_secret_stats *ss, size_t ns,
     Hsmkey__V1__StatsResponse **outp);
void convert_stats_free(void *st);

/* A ClientListResponse of n clients.  Caller must
 * convert_client_list_free(*outp). */
int  convert_client_list(const struct clients_info *infos, size_t n,
     Hsmkey__V1__ClientListResponse **outp);
void convert_client_list_free(void *cl);
/* The ClientInfo of one client, in one block whose strings point into ci
 * (which must outlive it).  Caller must free(); NULL without memory. */
Hsmkey__V1__ClientInfo *convert_client_info(const struct clients_info *ci);

/* The policy change a PolicyRequest asks for; ch points into req. */
void convert_policy_change(
    const Hsmkey__V1__PolicyRequest *req, struct keyring_policy_change *ch);

#endif /* HK_CONVERT_H */
