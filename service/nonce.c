/* nonce.c: replay and reply cache (see nonce.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hk_err.h"
#include "nonce.h"

#define DIGEST_KEPT 16 /* of the request's SHA-256: see below */
#define NSHARDS	    16 /* independent locks: every request takes one */

/*
 * One remembered request.  Of the request digest the first 16 bytes are
 * kept: it only tells a resend (same bytes) from another request under the
 * same client and nonce, which the client itself would have to MAC, so
 * collision resistance beyond 2^64 buys nothing.
 */
struct entry {
	const void   *client;
	size_t	     *countp;
	uint8_t	      nonce[HK_NONCE_LEN];
	uint8_t	      digest[DIGEST_KEPT];
	uint64_t      expires_s; /* wheel slot: forget at this second */
	uint8_t	     *reply;
	uint32_t      reply_len;
	uint32_t      answered;
	struct entry *hnext; /* hash chain */
	struct entry *wnext; /* wheel slot list */
};

/*
 * Entries live until their request's own timestamp has left the clock
 * window (timestamp + window, rounded up to the second), not a fixed time
 * after arrival: most requests carry a fresh timestamp, so most entries
 * live one window, not two.  A timing wheel of one slot per second over
 * the longest life (2 windows + 2 s) expires them in O(1).
 *
 * The cache is split by hash into shards, each with its own lock, table
 * and wheel, so that workers rarely wait for each other; the bounds (per
 * client, total, reply bytes) are counted across shards with atomics.
 */
struct shard {
	pthread_mutex_t lock;
	struct entry  **buckets;
	struct entry  **wheel;
	uint64_t	swept_s; /* slots before this second are empty */
};

struct nonce_cache {
	struct shard shards[NSHARDS];
	size_t	     nbuckets; /* per shard, a power of two */
	size_t	     nslots;
	size_t	     entries; /* atomic */
	size_t	     bytes;   /* atomic */
	size_t	     per_client;
	size_t	     total;
	size_t	     max_bytes;
	uint64_t     window_ms;
	uint64_t     seed[2];
};

static uint64_t
hash_of(const struct nonce_cache *nc, const void *client, const uint8_t *nonce)
{
	uint64_t a, b, h;

	/* nonces come from authenticated clients; a per-process seed keeps
	 * them from choosing collisions */
	memcpy(&a, nonce, 8);
	memcpy(&b, nonce + 8, 8);
	h = (a ^ nc->seed[0]) * 0x9e3779b97f4a7c15ULL;
	h ^= (b ^ nc->seed[1] ^ (uint64_t)(uintptr_t)client) *
	    0xc2b2ae3d27d4eb4fULL;
	h ^= h >> 29;
	return h;
}

static struct shard *
shard_of(struct nonce_cache *nc, uint64_t h)
{
	return &nc->shards[(h >> 40) % NSHARDS];
}

static size_t
bucket_of(const struct nonce_cache *nc, uint64_t h)
{
	return (size_t)h & (nc->nbuckets - 1);
}

/* Replies may carry a new client secret: zero them. */
static void
entry_free(struct entry *e)
{
	if (e->reply != NULL) {
		OPENSSL_cleanse(e->reply, e->reply_len);
		free(e->reply);
	}
	free(e);
}

void
nonce_cache_free(struct nonce_cache *nc)
{
	struct entry *e, *next;
	size_t	      i, j;

	if (nc == NULL) {
		return;
	}
	for (j = 0; j < NSHARDS; j++) {
		struct shard *sh = &nc->shards[j];

		for (i = 0; sh->wheel != NULL && i < nc->nslots; i++) {
			for (e = sh->wheel[i]; e != NULL; e = next) {
				next = e->wnext;
				entry_free(e);
			}
		}
		free(sh->wheel);
		free(sh->buckets);
		pthread_mutex_destroy(&sh->lock);
	}
	free(nc);
}

int
nonce_cache_new(struct nonce_cache **ncp, uint64_t window_ms,
    size_t per_client, size_t total, size_t max_reply_bytes)
{
	struct nonce_cache *nc;
	size_t		    n = 64, j;

	*ncp = NULL;
	if ((nc = calloc(1, sizeof(*nc))) == NULL) {
		return HK_ERR_NOMEM;
	}
	for (j = 0; j < NSHARDS; j++) {
		pthread_mutex_init(&nc->shards[j].lock, NULL);
	}
	while (n * NSHARDS < total && n < ((size_t)1 << 22)) {
		n <<= 1;
	}
	nc->nbuckets = n;
	nc->nslots = (size_t)(2 * (window_ms / 1000) + 4);
	for (j = 0; j < NSHARDS; j++) {
		if ((nc->shards[j].buckets = calloc(
			 n, sizeof(*nc->shards[j].buckets))) == NULL ||
		    (nc->shards[j].wheel = calloc(
			 nc->nslots, sizeof(*nc->shards[j].wheel))) == NULL) {
			nonce_cache_free(nc);
			return HK_ERR_NOMEM;
		}
	}
	if (RAND_bytes((unsigned char *)nc->seed, sizeof(nc->seed)) != 1) {
		nonce_cache_free(nc);
		return HK_ERR_INTERNAL;
	}
	nc->window_ms = window_ms;
	nc->per_client = per_client;
	nc->total = total;
	nc->max_bytes = max_reply_bytes;
	*ncp = nc;
	return 0;
}

static void
unlink_hash(struct nonce_cache *nc, struct shard *sh, struct entry *e)
{
	struct entry **pp;

	for (pp =
		 &sh->buckets[bucket_of(nc, hash_of(nc, e->client, e->nonce))];
	     *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			return;
		}
	}
}

static void
wheel_add(struct nonce_cache *nc, struct shard *sh, struct entry *e)
{
	size_t slot = (size_t)(e->expires_s % nc->nslots);

	e->wnext = sh->wheel[slot];
	sh->wheel[slot] = e;
}

/* Drops the shard's entries of every second that has fully passed; the
 * caller holds the shard's lock.  An entry still in flight moves on to the
 * next second. */
static void
expire(struct nonce_cache *nc, struct shard *sh, uint64_t now_ms)
{
	struct entry *e, *next, *keep;
	uint64_t      now_s = now_ms / 1000, sec;

	if (sh->swept_s == 0 || now_s - sh->swept_s > nc->nslots) {
		/* first use, or idle for longer than the wheel: sweep once */
		sh->swept_s = now_s > nc->nslots ? now_s - nc->nslots : 1;
	}
	/* slot s holds entries to forget once second s is over, i.e. whose
	 * last acceptable millisecond is before (s + 1) * 1000 */
	for (sec = sh->swept_s; sec < now_s; sec++) {
		size_t slot = (size_t)(sec % nc->nslots);

		keep = NULL;
		for (e = sh->wheel[slot]; e != NULL; e = next) {
			next = e->wnext;
			if (e->expires_s != sec) {
				e->wnext = keep; /* a later lap */
				keep = e;
				continue;
			}
			if (!e->answered) {
				e->expires_s = now_s + 1;
				if (e->expires_s % nc->nslots == slot) {
					e->wnext = keep;
					keep = e;
				} else {
					wheel_add(nc, sh, e);
				}
				continue;
			}
			unlink_hash(nc, sh, e);
			__atomic_sub_fetch(e->countp, 1, __ATOMIC_RELAXED);
			__atomic_sub_fetch(&nc->entries, 1, __ATOMIC_RELAXED);
			__atomic_sub_fetch(
			    &nc->bytes, e->reply_len, __ATOMIC_RELAXED);
			entry_free(e);
		}
		sh->wheel[slot] = keep;
	}
	sh->swept_s = now_s;
}

static struct entry *
find(struct nonce_cache *nc, struct shard *sh, uint64_t h, const void *client,
    const uint8_t *nonce)
{
	struct entry *e;

	for (e = sh->buckets[bucket_of(nc, h)]; e != NULL; e = e->hnext) {
		if (e->client == client &&
		    memcmp(e->nonce, nonce, HK_NONCE_LEN) == 0) {
			return e;
		}
	}
	return NULL;
}

/* Takes one unit of a bound, or fails without taking it. */
static int
take(size_t *counter, size_t bound)
{
	if (__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED) > bound) {
		__atomic_sub_fetch(counter, 1, __ATOMIC_RELAXED);
		return 0;
	}
	return 1;
}

/* Takes an entry of the client's share and of the total, or neither. */
static int
take_both(struct nonce_cache *nc, size_t *countp)
{
	if (!take(countp, nc->per_client)) {
		return 0;
	}
	if (!take(&nc->entries, nc->total)) {
		__atomic_sub_fetch(countp, 1, __ATOMIC_RELAXED);
		return 0;
	}
	return 1;
}

static void
sweep_all(struct nonce_cache *nc, uint64_t now_ms)
{
	size_t j;

	for (j = 0; j < NSHARDS; j++) {
		pthread_mutex_lock(&nc->shards[j].lock);
		expire(nc, &nc->shards[j], now_ms);
		pthread_mutex_unlock(&nc->shards[j].lock);
	}
}

int
nonce_cache_begin(struct nonce_cache *nc, const void *client, size_t *countp,
    const uint8_t nonce[HK_NONCE_LEN], const uint8_t req_digest[32],
    uint64_t ts_ms, uint64_t now_ms, uint8_t **replyp, size_t *lenp)
{
	uint64_t      h = hash_of(nc, client, nonce), last_ms;
	struct shard *sh = shard_of(nc, h);
	struct entry *fresh, *e;
	size_t	      b;
	int	      r;

	*replyp = NULL;
	*lenp = 0;
	/* allocate before taking the lock */
	if ((fresh = calloc(1, sizeof(*fresh))) == NULL) {
		return HK_ERR_NOMEM;
	}
	pthread_mutex_lock(&sh->lock);
	expire(nc, sh, now_ms);
	if ((e = find(nc, sh, h, client, nonce)) != NULL) {
		if (memcmp(e->digest, req_digest, DIGEST_KEPT) != 0) {
			r = HK_ERR_REPLAY;
		} else if (!e->answered) {
			r = NONCE_IN_FLIGHT;
		} else if (e->reply == NULL) {
			r = HK_ERR_REPLAY; /* reply too large to keep */
		} else if ((*replyp = malloc(e->reply_len)) == NULL) {
			r = HK_ERR_NOMEM;
		} else {
			memcpy(*replyp, e->reply, e->reply_len);
			*lenp = e->reply_len;
			r = NONCE_ANSWERED;
		}
		goto out;
	}
	if (!take_both(nc, countp)) {
		/* the shards expire lazily: sweep them all before refusing
		 * (never holding two shard locks at once) */
		pthread_mutex_unlock(&sh->lock);
		sweep_all(nc, now_ms);
		pthread_mutex_lock(&sh->lock);
		if ((e = find(nc, sh, h, client, nonce)) != NULL) {
			/* the same nonce arrived meanwhile */
			r = memcmp(e->digest, req_digest, DIGEST_KEPT) == 0
			    ? NONCE_IN_FLIGHT
			    : HK_ERR_REPLAY;
			goto out;
		}
		if (!take_both(nc, countp)) {
			r = HK_ERR_EXHAUSTED;
			goto out;
		}
	}
	e = fresh;
	fresh = NULL;
	e->client = client;
	e->countp = countp;
	memcpy(e->nonce, nonce, HK_NONCE_LEN);
	memcpy(e->digest, req_digest, DIGEST_KEPT);
	/* the last millisecond at which this timestamp passes the clock
	 * check; never before now (the caller checked the window) */
	last_ms = ts_ms + nc->window_ms;
	if (last_ms < now_ms) {
		last_ms = now_ms;
	}
	e->expires_s = last_ms / 1000;
	b = bucket_of(nc, h);
	e->hnext = sh->buckets[b];
	sh->buckets[b] = e;
	wheel_add(nc, sh, e);
	r = NONCE_NEW;
out:
	pthread_mutex_unlock(&sh->lock);
	free(fresh);
	return r;
}

void
nonce_cache_finish(struct nonce_cache *nc, const void *client,
    const uint8_t nonce[HK_NONCE_LEN], const uint8_t *reply, size_t len)
{
	uint64_t      h = hash_of(nc, client, nonce);
	struct shard *sh = shard_of(nc, h);
	struct entry *e;
	uint8_t	     *copy = NULL;

	if (reply != NULL && len > 0 && len <= UINT32_MAX &&
	    (copy = malloc(len)) != NULL) {
		memcpy(copy, reply, len);
	}
	pthread_mutex_lock(&sh->lock);
	if ((e = find(nc, sh, h, client, nonce)) != NULL && !e->answered) {
		e->answered = 1;
		if (copy != NULL) {
			if (__atomic_add_fetch(&nc->bytes, len,
				__ATOMIC_RELAXED) <= nc->max_bytes) {
				e->reply = copy;
				e->reply_len = (uint32_t)len;
				copy = NULL;
			} else {
				__atomic_sub_fetch(
				    &nc->bytes, len, __ATOMIC_RELAXED);
			}
		}
	}
	pthread_mutex_unlock(&sh->lock);
	free(copy);
}

void
nonce_cache_sweep(struct nonce_cache *nc, uint64_t now_ms)
{
	sweep_all(nc, now_ms);
}

void
nonce_cache_usage(struct nonce_cache *nc, size_t *entriesp, size_t *bytesp)
{
	*entriesp = __atomic_load_n(&nc->entries, __ATOMIC_RELAXED);
	*bytesp = __atomic_load_n(&nc->bytes, __ATOMIC_RELAXED);
}
