/*
 * nonce.h: the replay and reply cache.  Every authenticated request's
 * (client, nonce) is remembered for as long as its timestamp could still
 * pass the clock window, with a fingerprint of the request bytes and, once
 * answered, the reply bytes:
 *   - the same request again gets the same reply, never a second execution
 *     (nanomsg REQ resends on its own);
 *   - another request with a used nonce is a replay.
 * Entries leave by age only, once their request's timestamp has left the
 * clock window.  When a client's share (or the whole cache) is
 * full, new requests are refused (fail closed): no nonce is ever forgotten
 * early.  Replies may carry a new client secret: they are zeroed when their
 * entry goes, and the entries' pages (replies up to 160 bytes) are left out
 * of core dumps; not locked (the cache may hold hundreds of MiB), and a
 * longer reply's heap copy is zeroed only.  Every operation is O(1).  Thread-safe (16 shards, each with its
 * own lock).
 */
#ifndef HK_NONCE_H
#define HK_NONCE_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

struct nonce_cache;
struct nonce_entry; /* a request being executed */

enum nonce_result {
	NONCE_NEW = 0,	     /* reserved: call nonce_cache_finish() */
	NONCE_IN_FLIGHT = 1, /* the same request is being executed */
	NONCE_ANSWERED = 2,  /* the same request: *replyp is its reply */
};

/* window_ms: the clock window; an entry lives until its request's
 * timestamp is older than that. */
int  nonce_cache_new(struct nonce_cache **ncp, uint64_t window_ms,
     size_t per_client, size_t total, size_t max_reply_bytes);
void nonce_cache_free(struct nonce_cache *nc);

/*
 * Looks up (client, nonce).  req_fp is 32 bytes that differ between any two
 * different requests: a digest of the bytes, or their verified MAC.  Returns a enum nonce_result, HK_ERR_REPLAY for
 * a different request under a used nonce, or HK_ERR_EXHAUSTED when the
 * client's share or the cache is full.  *countp is the client's entry
 * count, kept under the cache's lock.  For NONCE_NEW, *entryp is the
 * entry to finish; for NONCE_ANSWERED, caller must nonce_reply_free()
 * *replyp (it may carry a new client secret).
 */
int nonce_cache_begin(struct nonce_cache *nc, const void *client,
    size_t *countp, const uint8_t nonce[HK_NONCE_LEN],
    const uint8_t req_fp[32], uint64_t ts_ms, uint64_t now_ms,
    struct nonce_entry **entryp, uint8_t **replyp, size_t *lenp);

/* Starts to bring what nonce_cache_begin() will read for (client, nonce)
 * into the CPU's cache, so that other work can hide the memory's latency:
 * the table is large and touched at random. */
void nonce_cache_prefetch(struct nonce_cache *nc, const void *client,
    const uint8_t nonce[HK_NONCE_LEN]);
/* The same for the memory nonce_cache_finish() will write the reply of
 * entry to: call it before the reply's last steps (its MAC). */
void nonce_cache_prefetch_reply(const struct nonce_entry *entry);

/* Stores the reply of a NONCE_NEW entry (copied: into the entry when it
 * is short, else on the heap within max_reply_bytes; NULL/0 to store none.
 * A reply that is not kept makes a resend a REPLAY, never a second
 * execution).  Called once, by the request that got NONCE_NEW; the entry
 * is the cache's afterwards. */
void nonce_cache_finish(struct nonce_cache *nc, struct nonce_entry *entry,
    const uint8_t *reply, size_t len);

/* Zeroes and frees a reply nonce_cache_begin() handed out; accepts NULL. */
void nonce_reply_free(uint8_t *reply, size_t len);

/* Forgets, in every shard, what has aged out by now_ms (shards otherwise
 * expire when a request touches them). */
void nonce_cache_sweep(struct nonce_cache *nc, uint64_t now_ms);

#endif /* HK_NONCE_H */
