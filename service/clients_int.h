/*
 * clients_int.h: what clients.c (lookups, grants, day keys, counters) and
 * clients_admin.c (load, add, rotate, revoke, list) share.  Included only
 * by clients*.c and their unit test; everyone else uses clients.h.
 */
#ifndef HK_CLIENTS_INT_H
#define HK_CLIENTS_INT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "clients.h"

#define CL_CLIENT_PREFIX "hsmkey-client:"
#define CL_SECRET_PREFIX "hsmkey-secret:"
#define CL_MAX_SECRET_NO 1000000

#define DAY_SLOTS 3 /* yesterday, today, tomorrow */

/* Day keys live in one locked, undumpable page per client. */
struct daykeys {
	uint32_t day[CLIENTS_MAX_SECRETS][DAY_SLOTS];
	uint8_t	 key[CLIENTS_MAX_SECRETS][DAY_SLOTS][HK_MAC_LEN];
};

struct secret {
	uint32_t	 number;
	uint64_t	 created_ms;
	uint64_t	 expires_ms;
	token_obj_t	 key;
	_Atomic uint64_t last_used_ms;
	_Atomic uint64_t requests; /* since the service started */
	_Atomic uint64_t denials;
	/* refused from the moment it is revoked; kept here until a record
	 * without it is durable in the token (a retry finishes it) */
	int revoked;
};

struct grant {
	enum client_op op;
	char	      *glob;
	char	      *text; /* "op:glob" as given */
};

/*
 * Every request reads its client and writes a few counters and locks.  On
 * a machine with several cores, a line written by one worker must travel
 * before another may read it: the locks and the nonce count every request
 * writes sit on cache lines of their own, away from what it only reads.
 * (Structs with such members are only ever on the heap, from
 * zalloc_lines(): a stack copy need not be aligned under ASan.)
 */
#define CACHE_LINE 64

struct client {
	char		id[HK_CLIENT_ID_MAX + 1];
	uint64_t	generation;
	uint64_t	created_ms;
	uint32_t	next_secret;
	struct grant	grants[CLIENTS_MAX_GRANTS];
	size_t		ngrants;
	size_t		nsecrets;
	token_obj_t	meta;
	struct daykeys *dk; /* indexed like secrets[] by number */
	uint32_t	dk_number[CLIENTS_MAX_SECRETS];
	/* bumped (under dk_lock) by every cl_forget_day_keys(): a day key
	 * computed before it is not cached after it */
	uint64_t       dk_generation;
	struct client *next;
	struct secret  secrets[CLIENTS_MAX_SECRETS];
	/* written per request */
	alignas(CACHE_LINE) pthread_rwlock_t dk_lock; /* day keys */
	alignas(CACHE_LINE) size_t nonce_count;
	_Atomic uint64_t denials;
};

struct clients {
	struct client  *list;
	uint64_t	lifetime_s;
	pthread_mutex_t admin;
	alignas(CACHE_LINE) pthread_rwlock_t lock; /* taken per request */
};

/* Zeroed memory aligned for the structs above (free() releases it). */
void *cl_zalloc_lines(size_t size);
/* A new client with its locked day-key page; NULL without memory.
 * Caller must cl_client_free(). */
struct client *cl_client_new(void);
/* Frees cl, zeroing its day keys; accepts NULL. */
void cl_client_free(struct client *cl);
/* Sets cl's grants from "OP:GLOB" texts: HK_ERR_INVALID for a bad one. */
int cl_set_grants(struct client *cl, char *const *grants, size_t n);
/* The client called id, or NULL; the caller holds a lock or the admin
 * mutex.  Caller does not free. */
struct client *cl_find(struct clients *c, const char *id);
/* Forgets (zeroes) the cached day keys of a secret number; one computed
 * meanwhile by a request racing this is not cached (dk_generation). */
void cl_forget_day_keys(struct client *cl, uint32_t number);
/* The two halves of clients_day_key() around the token's HMAC, for the
 * unit test's interleavings: the cached day key of (secret_no, day) into
 * out (0, or HK_ERR_NOT_FOUND and *genp, the generation to insert with),
 * and the caching of a computed one unless a revocation came in between
 * (returns 1 if it was cached). */
int cl_day_key_cached(struct client *cl, uint32_t secret_no, uint32_t day,
    uint8_t out[HK_MAC_LEN], uint64_t *genp);
int cl_day_key_keep(struct client *cl, uint32_t secret_no, uint32_t day,
    const uint8_t key[HK_MAC_LEN], uint64_t gen);

#endif /* HK_CLIENTS_INT_H */
