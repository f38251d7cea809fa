/* nonce.c: replay and reply cache (see nonce.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hk_err.h"
#include "nonce.h"

#define DIGEST_KEPT 16 /* of the request's SHA-256: see below */

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
 */
struct nonce_cache {
	pthread_mutex_t lock;
	struct entry  **buckets;
	size_t		nbuckets; /* a power of two */
	struct entry  **wheel;
	size_t		nslots;
	uint64_t	swept_s; /* slots before this second are empty */
	size_t		entries;
	size_t		bytes;
	size_t		per_client;
	size_t		total;
	size_t		max_bytes;
	uint64_t	window_ms;
	uint64_t	seed[2];
};

static size_t
bucket_of(
    const struct nonce_cache *nc, const void *client, const uint8_t *nonce)
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

int
nonce_cache_new(struct nonce_cache **ncp, uint64_t window_ms,
    size_t per_client, size_t total, size_t max_reply_bytes)
{
	struct nonce_cache *nc;
	size_t		    n = 1024;

	*ncp = NULL;
	if ((nc = calloc(1, sizeof(*nc))) == NULL) {
		return HK_ERR_NOMEM;
	}
	while (n < total && n < ((size_t)1 << 24)) {
		n <<= 1;
	}
	nc->nslots = (size_t)(2 * (window_ms / 1000) + 4);
	if ((nc->buckets = calloc(n, sizeof(*nc->buckets))) == NULL ||
	    (nc->wheel = calloc(nc->nslots, sizeof(*nc->wheel))) == NULL) {
		free(nc->buckets);
		free(nc);
		return HK_ERR_NOMEM;
	}
	if (RAND_bytes((unsigned char *)nc->seed, sizeof(nc->seed)) != 1) {
		free(nc->wheel);
		free(nc->buckets);
		free(nc);
		return HK_ERR_INTERNAL;
	}
	pthread_mutex_init(&nc->lock, NULL);
	nc->nbuckets = n;
	nc->window_ms = window_ms;
	nc->per_client = per_client;
	nc->total = total;
	nc->max_bytes = max_reply_bytes;
	*ncp = nc;
	return 0;
}

void
nonce_cache_free(struct nonce_cache *nc)
{
	struct entry *e, *next;
	size_t	      i;

	if (nc == NULL) {
		return;
	}

	for (i = 0; i < nc->nslots; i++) {
		for (e = nc->wheel[i]; e != NULL; e = next) {
			next = e->wnext;
			entry_free(e);
		}
	}
	free(nc->wheel);
	free(nc->buckets);
	pthread_mutex_destroy(&nc->lock);
	free(nc);
}

static void
unlink_hash(struct nonce_cache *nc, struct entry *e)
{
	struct entry **pp;

	for (pp = &nc->buckets[bucket_of(nc, e->client, e->nonce)];
	     *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			return;
		}
	}
}

static void
wheel_add(struct nonce_cache *nc, struct entry *e)
{
	size_t slot = (size_t)(e->expires_s % nc->nslots);

	e->wnext = nc->wheel[slot];
	nc->wheel[slot] = e;
}

/* Drops the entries of every second that has fully passed; the caller holds
 * the lock.  An entry still in flight moves on to the next second. */
static void
expire(struct nonce_cache *nc, uint64_t now_ms)
{
	struct entry *e, *next, *keep;
	uint64_t      now_s = now_ms / 1000, sec;

	if (nc->swept_s == 0 || now_s - nc->swept_s > nc->nslots) {
		/* first use, or idle for longer than the wheel: sweep once */
		nc->swept_s = now_s > nc->nslots ? now_s - nc->nslots : 1;
	}
	/* slot s holds entries to forget once second s is over, i.e. whose
	 * last acceptable millisecond is before (s + 1) * 1000 */
	for (sec = nc->swept_s; sec < now_s; sec++) {
		size_t slot = (size_t)(sec % nc->nslots);

		keep = NULL;
		for (e = nc->wheel[slot]; e != NULL; e = next) {
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
					wheel_add(nc, e);
				}
				continue;
			}
			unlink_hash(nc, e);
			(*e->countp)--;
			nc->entries--;
			nc->bytes -= e->reply_len;
			entry_free(e);
		}
		nc->wheel[slot] = keep;
	}
	nc->swept_s = now_s;
}

static struct entry *
find(struct nonce_cache *nc, const void *client, const uint8_t *nonce)
{
	struct entry *e;

	for (e = nc->buckets[bucket_of(nc, client, nonce)]; e != NULL;
	     e = e->hnext) {
		if (e->client == client &&
		    memcmp(e->nonce, nonce, HK_NONCE_LEN) == 0) {
			return e;
		}
	}
	return NULL;
}

int
nonce_cache_begin(struct nonce_cache *nc, const void *client, size_t *countp,
    const uint8_t nonce[HK_NONCE_LEN], const uint8_t req_digest[32],
    uint64_t ts_ms, uint64_t now_ms, uint8_t **replyp, size_t *lenp)
{
	uint64_t      last_ms;
	struct entry *fresh;
	struct entry *e;
	size_t	      h;
	int	      r;

	*replyp = NULL;
	*lenp = 0;
	/* allocate before taking the lock: it is held by every request */
	if ((fresh = calloc(1, sizeof(*fresh))) == NULL) {
		return HK_ERR_NOMEM;
	}
	pthread_mutex_lock(&nc->lock);
	expire(nc, now_ms);
	if ((e = find(nc, client, nonce)) != NULL) {
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
	if (*countp >= nc->per_client || nc->entries >= nc->total) {
		r = HK_ERR_EXHAUSTED;
		goto out;
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
	h = bucket_of(nc, client, nonce);
	e->hnext = nc->buckets[h];
	nc->buckets[h] = e;
	wheel_add(nc, e);
	(*countp)++;
	nc->entries++;
	r = NONCE_NEW;
out:
	pthread_mutex_unlock(&nc->lock);
	free(fresh);
	return r;
}

void
nonce_cache_finish(struct nonce_cache *nc, const void *client,
    const uint8_t nonce[HK_NONCE_LEN], const uint8_t *reply, size_t len)
{
	struct entry *e;
	uint8_t	     *copy = NULL;

	if (reply != NULL && len > 0 && (copy = malloc(len)) != NULL) {
		memcpy(copy, reply, len);
	}
	pthread_mutex_lock(&nc->lock);
	if ((e = find(nc, client, nonce)) != NULL && !e->answered) {
		e->answered = 1;
		if (copy != NULL && len <= UINT32_MAX &&
		    nc->bytes + len <= nc->max_bytes) {
			e->reply = copy;
			e->reply_len = (uint32_t)len;
			nc->bytes += len;
			copy = NULL;
		}
	}
	pthread_mutex_unlock(&nc->lock);
	free(copy);
}

void
nonce_cache_usage(struct nonce_cache *nc, size_t *entriesp, size_t *bytesp)
{
	pthread_mutex_lock(&nc->lock);
	*entriesp = nc->entries;
	*bytesp = nc->bytes;
	pthread_mutex_unlock(&nc->lock);
}
