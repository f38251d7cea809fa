/* nonce.c: replay and reply cache (see nonce.h). */
#include <sys/mman.h>

#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hk_err.h"
#include "nonce.h"

/* Under AddressSanitizer a free entry is poisoned (but for its chunk and
 * free-list link), so that a use after its expiry is caught as with
 * malloc(). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#define ENTRY_TAIL(e) ((uint8_t *)(e) + offsetof(struct nonce_entry, client))
#define ENTRY_TAIL_LEN \
	(sizeof(struct nonce_entry) - offsetof(struct nonce_entry, client))

#define DIGEST_KEPT  16	   /* of the request's SHA-256: see below */
#define NSHARDS	     16	   /* independent locks: every request takes one */
#define INLINE_REPLY 160   /* a reply this short is kept in its entry */
#define CHUNK_BYTES  65536 /* entries are carved from mappings this size */
#define SPARES	     4	   /* empty chunks a shard keeps for reuse */

struct chunk;

/*
 * One remembered request.  Of the request's fingerprint (its MAC) the
 * first 16 bytes are kept: it only tells a resend (same bytes) from another
 * request under the same client and nonce, which the client itself would
 * have to MAC, so collision resistance beyond 2^64 buys nothing.
 */
struct nonce_entry {
	struct chunk *chunk;
	struct nonce_entry
		   *hnext;  /* hash chain; while free, the chunk's list */
	const void *client; /* from here on: poisoned while free */
	uint8_t	    nonce[HK_NONCE_LEN];
	uint8_t	    digest[DIGEST_KEPT];
	size_t	   *countp;
	/* a lookup reads the cache line above only */
	struct nonce_entry *wnext;     /* wheel slot list */
	uint8_t		   *reply;     /* inline_reply, a heap copy, or NULL */
	uint64_t	    expires_s; /* wheel slot: forget at this second */
	uint32_t	    reply_len;
	uint32_t	    answered; /* atomic: set once the reply is in */
	uint8_t		    inline_reply[INLINE_REPLY];
};

/* Four cache lines; the reply of a one-digest sign (~135 bytes) fits. */
_Static_assert(sizeof(struct nonce_entry) == 256, "struct nonce_entry grew");
_Static_assert(offsetof(struct nonce_entry, wnext) == 64,
    "a lookup must read one cache line of an entry");

/*
 * Entries come from chunks of 64 KiB, each shard its own: every request
 * makes one and every entry lives up to a minute, and taking them from
 * malloc() one by one fragmented its heap and slowed every other
 * allocation of the process.  A chunk is mapped with its pages populated
 * at once: on a virtual machine a page fault can cost 10 us, twenty times
 * a populated page.  A chunk with a free entry is on its shard's
 * "partial" list and is used before a new chunk is made, so a shard holds
 * at most one chunk more than its live entries need; a chunk that empties
 * is unmapped, but for a few kept for the next.
 */
struct chunk_head {
	struct shard	   *shard;
	struct chunk	   *prev, *next; /* on the partial or spare list */
	struct nonce_entry *free;	 /* entries used before and freed */
	uint32_t	    unused;	 /* e[unused..] were never used */
	uint32_t	    live;
	uint32_t	    partial; /* on the partial list */
};

#define CHUNK_ENTRIES                                \
	((CHUNK_BYTES - sizeof(struct chunk_head)) / \
	    sizeof(struct nonce_entry))

struct chunk {
	struct chunk_head  h;
	struct nonce_entry e[CHUNK_ENTRIES];
};
_Static_assert(sizeof(struct chunk) <= CHUNK_BYTES, "chunk too large");
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
	alignas(64) pthread_mutex_t lock; /* a cache line (or two) each */
	uint64_t      swept_s; /* slots before this second are empty */
	struct chunk *partial; /* chunks with a free entry */
	struct chunk *spare;   /* empty chunks kept for reuse */
	size_t	      nspare;
};

/* A shard's tables: set up once, then only read (the pointers, that is),
 * so they are kept away from the lines every request writes. */
struct shard_tables {
	struct nonce_entry **buckets;
	struct nonce_entry **wheel;
};

struct nonce_cache {
	/* read only after nonce_cache_new() */
	struct shard_tables t[NSHARDS];
	size_t		    nbuckets; /* per shard, a power of two */
	size_t		    nslots;
	size_t		    per_client;
	size_t		    total;
	size_t		    max_bytes;
	uint64_t	    window_ms;
	uint64_t	    seed[2];
	/* written by every request */
	alignas(64) size_t entries; /* atomic */
	size_t	     bytes;	    /* atomic: reply bytes on the heap */
	struct shard shards[NSHARDS];
};

static struct shard_tables *
tables(struct nonce_cache *nc, const struct shard *sh)
{
	return &nc->t[sh - nc->shards];
}

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

/* Whether the entry's reply fields are written (see nonce_cache_finish). */
static int
answered(const struct nonce_entry *e)
{
	return __atomic_load_n(&e->answered, __ATOMIC_ACQUIRE) != 0;
}

/* Unmaps a chunk; its poisoned shadow is cleared first, or the next
 * mapping at that address would inherit it. */
static void
chunk_unmap(struct chunk *c)
{
	UNPOISON(c, CHUNK_BYTES);
	munmap(c, CHUNK_BYTES);
}

static void
partial_add(struct shard *sh, struct chunk *c)
{
	c->h.prev = NULL;
	c->h.next = sh->partial;
	if (sh->partial != NULL) {
		sh->partial->h.prev = c;
	}
	sh->partial = c;
	c->h.partial = 1;
}

static void
partial_remove(struct shard *sh, struct chunk *c)
{
	if (c->h.prev != NULL) {
		c->h.prev->h.next = c->h.next;
	} else {
		sh->partial = c->h.next;
	}
	if (c->h.next != NULL) {
		c->h.next->h.prev = c->h.prev;
	}
	c->h.prev = c->h.next = NULL;
	c->h.partial = 0;
}

/* A free entry of the shard (its lock held), or NULL.  A new chunk's
 * entries are taken in order, not threaded on a list first: that would
 * write to each of them at once. */
static struct nonce_entry *
entry_alloc(struct shard *sh)
{
	struct chunk	   *c;
	struct nonce_entry *e;

	if ((c = sh->partial) == NULL) {
		if ((c = sh->spare) != NULL) {
			sh->spare = c->h.next;
			sh->nspare--;
		} else {
			if ((c = mmap(NULL, CHUNK_BYTES,
				 PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
				 -1, 0)) == MAP_FAILED) {
				return NULL;
			}
			/* replies may carry a new client secret: never in a
			 * core dump (best effort, as hk_secmem_alloc()) */
			(void)madvise(c, CHUNK_BYTES, MADV_DONTDUMP);
			c->h.shard = sh;
			c->h.free = NULL;
			c->h.unused = 0;
			c->h.live = 0;
			POISON(c->e, sizeof(c->e));
		}
		partial_add(sh, c);
	}
	if ((e = c->h.free) != NULL) {
		c->h.free = e->hnext;
		UNPOISON(ENTRY_TAIL(e), ENTRY_TAIL_LEN);
	} else {
		e = &c->e[c->h.unused++];
		UNPOISON(e, sizeof(*e));
		e->chunk = c;
	}
	if (++c->h.live == CHUNK_ENTRIES) {
		partial_remove(sh, c);
	}
	e->hnext = e->wnext = NULL;
	e->reply = NULL;
	e->reply_len = 0;
	__atomic_store_n(&e->answered, 0, __ATOMIC_RELAXED);
	return e;
}

/* Returns an entry to its chunk; replies may carry a new client secret:
 * they are zeroed. */
static void
entry_free(struct shard *sh, struct nonce_entry *e)
{
	struct chunk *c = e->chunk;

	if (e->reply != NULL) {
		OPENSSL_cleanse(e->reply, e->reply_len);
		if (e->reply != e->inline_reply) {
			free(e->reply);
		}
		e->reply = NULL;
	}
	e->hnext = c->h.free;
	c->h.free = e;
	POISON(ENTRY_TAIL(e), ENTRY_TAIL_LEN);
	if (!c->h.partial) {
		partial_add(sh, c);
	}
	if (--c->h.live > 0) {
		return;
	}
	partial_remove(sh, c);
	if (sh->nspare < SPARES) {
		c->h.next = sh->spare;
		sh->spare = c;
		sh->nspare++;
	} else {
		chunk_unmap(c);
	}
}

void
nonce_cache_free(struct nonce_cache *nc)
{
	struct nonce_entry *e, *next;
	struct chunk	   *c;
	size_t		    i, j;

	if (nc == NULL) {
		return;
	}
	for (j = 0; j < NSHARDS; j++) {
		struct shard	    *sh = &nc->shards[j];
		struct nonce_entry **wheel = nc->t[j].wheel;

		for (i = 0; wheel != NULL && i < nc->nslots; i++) {
			for (e = wheel[i]; e != NULL; e = next) {
				next = e->wnext;
				entry_free(sh, e);
			}
		}
		while ((c = sh->partial) != NULL) { /* never used entries */
			partial_remove(sh, c);
			chunk_unmap(c);
		}
		while ((c = sh->spare) != NULL) {
			sh->spare = c->h.next;
			chunk_unmap(c);
		}
		free(nc->t[j].wheel);
		free(nc->t[j].buckets);
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
	/* aligned: the shards' locks must not share cache lines */
	if ((nc = aligned_alloc(alignof(struct nonce_cache), sizeof(*nc))) ==
	    NULL) {
		return HK_ERR_NOMEM;
	}
	memset(nc, 0, sizeof(*nc));
	for (j = 0; j < NSHARDS; j++) {
		pthread_mutex_init(&nc->shards[j].lock, NULL);
	}
	/* a chain of four when full, of one at a quarter: the table is
	 * touched at random, and its pages fault in one by one */
	while (n * NSHARDS * 4 < total && n < ((size_t)1 << 22)) {
		n <<= 1;
	}
	nc->nbuckets = n;
	nc->nslots = (size_t)(2 * (window_ms / 1000) + 4);
	for (j = 0; j < NSHARDS; j++) {
		if ((nc->t[j].buckets =
			    calloc(n, sizeof(*nc->t[j].buckets))) == NULL ||
		    (nc->t[j].wheel = calloc(
			 nc->nslots, sizeof(*nc->t[j].wheel))) == NULL) {
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
unlink_hash(struct nonce_cache *nc, struct shard *sh, struct nonce_entry *e)
{
	struct nonce_entry **pp;

	for (pp = &tables(nc, sh)->buckets[bucket_of(
		 nc, hash_of(nc, e->client, e->nonce))];
	     *pp != NULL; pp = &(*pp)->hnext) {
		if (*pp == e) {
			*pp = e->hnext;
			return;
		}
	}
}

static void
wheel_add(struct nonce_cache *nc, struct shard *sh, struct nonce_entry *e)
{
	size_t slot = (size_t)(e->expires_s % nc->nslots);

	e->wnext = tables(nc, sh)->wheel[slot];
	tables(nc, sh)->wheel[slot] = e;
}

/* Drops the shard's entries of every second that has fully passed; the
 * caller holds the shard's lock.  An entry still in flight moves on to the
 * next second. */
static void
expire(struct nonce_cache *nc, struct shard *sh, uint64_t now_ms)
{
	struct nonce_entry **wheel = tables(nc, sh)->wheel, *e, *next, *keep;
	uint64_t	     now_s = now_ms / 1000, sec;

	if (sh->swept_s != 0 && now_s <= sh->swept_s) {
		/* swept up to this second already: callers' clocks are read
		 * before the lock, so one may come in behind another, and the
		 * subtraction below must not wrap into a sweep of every slot */
		return;
	}
	if (sh->swept_s == 0 || now_s - sh->swept_s > nc->nslots) {
		/* first use, or idle for longer than the wheel: sweep once */
		sh->swept_s = now_s > nc->nslots ? now_s - nc->nslots : 1;
	}
	/* slot s holds entries to forget once second s is over, i.e. whose
	 * last acceptable millisecond is before (s + 1) * 1000 */
	for (sec = sh->swept_s; sec < now_s; sec++) {
		size_t slot = (size_t)(sec % nc->nslots);

		keep = NULL;
		for (e = wheel[slot]; e != NULL; e = next) {
			next = e->wnext;
			if (e->expires_s != sec) {
				e->wnext = keep; /* a later lap */
				keep = e;
				continue;
			}
			if (!answered(e)) {
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
			if (e->reply != e->inline_reply) {
				__atomic_sub_fetch(&nc->bytes, e->reply_len,
				    __ATOMIC_RELAXED);
			}
			entry_free(sh, e);
		}
		wheel[slot] = keep;
	}
	sh->swept_s = now_s;
}

static struct nonce_entry *
find(struct nonce_cache *nc, struct shard *sh, uint64_t h, const void *client,
    const uint8_t *nonce)
{
	struct nonce_entry *e;

	for (e = tables(nc, sh)->buckets[bucket_of(nc, h)]; e != NULL;
	     e = e->hnext) {
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

void
nonce_cache_prefetch(struct nonce_cache *nc, const void *client,
    const uint8_t nonce[HK_NONCE_LEN])
{
	uint64_t      h = hash_of(nc, client, nonce);
	struct shard *sh = shard_of(nc, h);

	__builtin_prefetch(&sh->lock, 1);
	__builtin_prefetch(&tables(nc, sh)->buckets[bucket_of(nc, h)], 0);
}

void
nonce_cache_prefetch_reply(const struct nonce_entry *e)
{
	size_t off;

	for (off = 0; off < INLINE_REPLY; off += 64) {
		__builtin_prefetch(e->inline_reply + off, 1);
	}
}

int
nonce_cache_begin(struct nonce_cache *nc, const void *client, size_t *countp,
    const uint8_t nonce[HK_NONCE_LEN], const uint8_t req_fp[32],
    uint64_t ts_ms, uint64_t now_ms, struct nonce_entry **entryp,
    uint8_t **replyp, size_t *lenp)
{
	uint64_t	    h = hash_of(nc, client, nonce), last_ms;
	struct shard	   *sh = shard_of(nc, h);
	struct nonce_entry *e;
	size_t		    b;
	int		    r;

	*entryp = NULL;
	*replyp = NULL;
	*lenp = 0;
	pthread_mutex_lock(&sh->lock);
	expire(nc, sh, now_ms);
	if ((e = find(nc, sh, h, client, nonce)) != NULL) {
		if (memcmp(e->digest, req_fp, DIGEST_KEPT) != 0) {
			r = HK_ERR_REPLAY;
		} else if (!answered(e)) {
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
			r = memcmp(e->digest, req_fp, DIGEST_KEPT) == 0
			    ? NONCE_IN_FLIGHT
			    : HK_ERR_REPLAY;
			goto out;
		}
		if (!take_both(nc, countp)) {
			r = HK_ERR_EXHAUSTED;
			goto out;
		}
	}
	if ((e = entry_alloc(sh)) == NULL) {
		__atomic_sub_fetch(countp, 1, __ATOMIC_RELAXED);
		__atomic_sub_fetch(&nc->entries, 1, __ATOMIC_RELAXED);
		r = HK_ERR_NOMEM;
		goto out;
	}
	e->client = client;
	e->countp = countp;
	memcpy(e->nonce, nonce, HK_NONCE_LEN);
	memcpy(e->digest, req_fp, DIGEST_KEPT);
	/* the last millisecond at which this timestamp passes the clock
	 * check; never before now (the caller checked the window) */
	last_ms = ts_ms + nc->window_ms;
	if (last_ms < now_ms) {
		last_ms = now_ms;
	}
	e->expires_s = last_ms / 1000;
	b = bucket_of(nc, h);
	e->hnext = tables(nc, sh)->buckets[b];
	tables(nc, sh)->buckets[b] = e;
	wheel_add(nc, sh, e);
	*entryp = e;
	r = NONCE_NEW;
out:
	pthread_mutex_unlock(&sh->lock);
	return r;
}

/*
 * Without the shard's lock: until it is marked answered, an entry's reply
 * fields are this request's alone (a resend finds it in flight, and expiry
 * passes it by), and the release below publishes them to whoever reads
 * answered(e) after.  From then on the entry is the cache's: not touched
 * here again.
 */
void
nonce_cache_finish(struct nonce_cache *nc, struct nonce_entry *e,
    const uint8_t *reply, size_t len)
{
	uint8_t *copy = NULL;

	if (reply != NULL && len > 0 && len <= INLINE_REPLY) {
		memcpy(e->inline_reply, reply, len);
		e->reply = e->inline_reply;
		e->reply_len = (uint32_t)len;
	} else if (reply != NULL && len > INLINE_REPLY && len <= UINT32_MAX) {
		if (__atomic_add_fetch(&nc->bytes, len, __ATOMIC_RELAXED) >
			nc->max_bytes ||
		    (copy = malloc(len)) == NULL) {
			__atomic_sub_fetch(&nc->bytes, len, __ATOMIC_RELAXED);
		} else {
			memcpy(copy, reply, len);
			e->reply = copy;
			e->reply_len = (uint32_t)len;
		}
	}
	__atomic_store_n(&e->answered, 1, __ATOMIC_RELEASE);
}

void
nonce_reply_free(uint8_t *reply, size_t len)
{
	if (reply != NULL) {
		OPENSSL_cleanse(reply, len);
		free(reply);
	}
}

void
nonce_cache_sweep(struct nonce_cache *nc, uint64_t now_ms)
{
	sweep_all(nc, now_ms);
}
