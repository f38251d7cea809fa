/* nonce.c: replay and reply cache (see nonce.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "hk_err.h"
#include "nonce.h"

struct entry {
	const void	*client;
	size_t		*countp;
	uint8_t		 nonce[HK_NONCE_LEN];
	uint8_t		 digest[32];
	uint64_t	 expires_ms;
	uint8_t		*reply;
	size_t		 reply_len;
	int		 answered;
	struct entry	*hnext;		/* hash chain */
	struct entry	*qnext;		/* age queue, oldest first */
};

struct nonce_cache {
	pthread_mutex_t	 lock;
	struct entry	**buckets;
	size_t		 nbuckets;	/* a power of two */
	struct entry	*head, *tail;
	size_t		 entries;
	size_t		 bytes;
	size_t		 per_client;
	size_t		 total;
	size_t		 max_bytes;
	uint64_t	 keep_ms;
	uint64_t	 seed[2];
};

static size_t
bucket_of(const struct nonce_cache *nc, const void *client,
    const uint8_t *nonce)
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
nonce_cache_new(struct nonce_cache **ncp, uint64_t keep_ms,
    size_t per_client, size_t total, size_t max_reply_bytes)
{
	struct nonce_cache *nc;
	size_t n = 1024;

	*ncp = NULL;
	if ((nc = calloc(1, sizeof(*nc))) == NULL) {
		return HK_ERR_NOMEM;
	}
	while (n < total && n < ((size_t)1 << 24)) {
		n <<= 1;
	}
	if ((nc->buckets = calloc(n, sizeof(*nc->buckets))) == NULL) {
		free(nc);
		return HK_ERR_NOMEM;
	}
	if (RAND_bytes((unsigned char *)nc->seed, sizeof(nc->seed)) != 1) {
		free(nc->buckets);
		free(nc);
		return HK_ERR_INTERNAL;
	}
	pthread_mutex_init(&nc->lock, NULL);
	nc->nbuckets = n;
	nc->keep_ms = keep_ms;
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

	if (nc == NULL) {
		return;
	}
	for (e = nc->head; e != NULL; e = next) {
		next = e->qnext;
		entry_free(e);
	}
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

/* Drops entries whose time is up; the caller holds the lock. */
static void
expire(struct nonce_cache *nc, uint64_t now)
{
	struct entry *e;

	/* strictly older: a request accepted at t with a timestamp one
	 * window ahead still passes the clock check at t + keep_ms */
	while ((e = nc->head) != NULL && e->expires_ms < now &&
	    e->answered) {
		nc->head = e->qnext;
		if (nc->head == NULL) {
			nc->tail = NULL;
		}
		unlink_hash(nc, e);
		(*e->countp)--;
		nc->entries--;
		nc->bytes -= e->reply_len;
		entry_free(e);
	}
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
nonce_cache_begin(struct nonce_cache *nc, const void *client,
    size_t *countp, const uint8_t nonce[HK_NONCE_LEN],
    const uint8_t req_digest[32], uint64_t now_ms, uint8_t **replyp,
    size_t *lenp)
{
	struct entry *e;
	size_t h;
	int r;

	*replyp = NULL;
	*lenp = 0;
	pthread_mutex_lock(&nc->lock);
	expire(nc, now_ms);
	if ((e = find(nc, client, nonce)) != NULL) {
		if (memcmp(e->digest, req_digest, 32) != 0) {
			r = HK_ERR_REPLAY;
		} else if (!e->answered) {
			r = NONCE_IN_FLIGHT;
		} else if (e->reply == NULL) {
			r = HK_ERR_REPLAY;	/* reply too large to keep */
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
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	e->client = client;
	e->countp = countp;
	memcpy(e->nonce, nonce, HK_NONCE_LEN);
	memcpy(e->digest, req_digest, 32);
	e->expires_ms = now_ms + nc->keep_ms;
	h = bucket_of(nc, client, nonce);
	e->hnext = nc->buckets[h];
	nc->buckets[h] = e;
	if (nc->tail != NULL) {
		nc->tail->qnext = e;
	} else {
		nc->head = e;
	}
	nc->tail = e;
	(*countp)++;
	nc->entries++;
	r = NONCE_NEW;
 out:
	pthread_mutex_unlock(&nc->lock);
	return r;
}

void
nonce_cache_finish(struct nonce_cache *nc, const void *client,
    const uint8_t nonce[HK_NONCE_LEN], const uint8_t *reply, size_t len)
{
	struct entry *e;
	uint8_t *copy = NULL;

	if (reply != NULL && len > 0 && (copy = malloc(len)) != NULL) {
		memcpy(copy, reply, len);
	}
	pthread_mutex_lock(&nc->lock);
	if ((e = find(nc, client, nonce)) != NULL && !e->answered) {
		e->answered = 1;
		if (copy != NULL && nc->bytes + len <= nc->max_bytes) {
			e->reply = copy;
			e->reply_len = len;
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
