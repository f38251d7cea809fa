/* nonce_test.c: the replay and reply cache (nonce.c). */
#define _GNU_SOURCE /* memmem */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

#include "hk_err.h"
#include "nonce.h"
#include "testproc.h"
#include "testutil.h"

#define W  30000ULL	    /* the clock window, ms */
#define T0 1795867200000ULL /* some "now" */

static uint8_t n1[16] = { 1 }, n2[16] = { 2 }, d1[32] = { 1 }, d2[32] = { 2 };
static int     c1, c2; /* two clients' identities */
static size_t  k1, k2; /* their entry counts */

/* The entries begun lately, by client and nonce, for finish(). */
static struct {
	const void	   *cl;
	uint8_t		    n[16];
	struct nonce_entry *e;
} begun[64];
static size_t nbegun;

static int
begin(struct nonce_cache *nc, const void *cl, size_t *kp, const uint8_t *n,
    const uint8_t *d, uint64_t ts, uint64_t now)
{
	struct nonce_entry *e;
	uint8_t		   *reply = NULL;
	size_t		    len;
	int		    r;

	r = nonce_cache_begin(nc, cl, kp, n, d, ts, now, &e, &reply, &len);
	if (r == NONCE_NEW) {
		TRUE(e != NULL);
		begun[nbegun % 64].cl = cl;
		memcpy(begun[nbegun % 64].n, n, 16);
		begun[nbegun % 64].e = e;
		nbegun++;
	} else {
		TRUE(e == NULL);
	}
	if (r == NONCE_ANSWERED) {
		TRUE(len == 5 && memcmp(reply, "reply", 5) == 0);
	}
	nonce_reply_free(reply, len);
	return r;
}

/* Answers the request begun under (cl, n). */
static void
finish(struct nonce_cache *nc, const void *cl, const uint8_t *n,
    const uint8_t *reply, size_t len)
{
	size_t i;

	for (i = nbegun; i-- > 0 && i + 64 >= nbegun;) {
		if (begun[i % 64].cl == cl &&
		    memcmp(begun[i % 64].n, n, 16) == 0) {
			nonce_cache_finish(nc, begun[i % 64].e, reply, len);
			return;
		}
	}
	TRUE(!"finish() of a request not begun");
}

/* A new cache of window W; the clients' entry counts start at zero. */
static struct nonce_cache *
fresh(size_t per_client, size_t total, size_t max_reply_bytes)
{
	struct nonce_cache *nc = NULL;

	k1 = k2 = 0;
	PASS(nonce_cache_new(&nc, W, per_client, total, max_reply_bytes));
	return nc;
}

static void
test_resend_and_replay(void)
{
	struct nonce_cache *nc;

	nc = fresh(100, 1000, 1 << 20);
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0), NONCE_NEW);
	/* the same bytes while the first is running: no second execution */
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0 + 5), NONCE_IN_FLIGHT);
	finish(nc, &c1, n1, (const uint8_t *)"reply", 5);
	/* after: the stored reply */
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0 + 10), NONCE_ANSWERED);
	/* other bytes under the same nonce */
	FAIL(begin(nc, &c1, &k1, n1, d2, T0, T0 + 10), HK_ERR_REPLAY);
	/* the same nonce from another client is its own */
	EQ_INT(begin(nc, &c2, &k2, n1, d2, T0, T0 + 10), NONCE_NEW);
	EQ_INT(k1, 1);
	EQ_INT(k2, 1);
	nonce_cache_free(nc);
}

/* An entry lives while its timestamp can pass the clock check. */
static void
test_life_follows_timestamp(void)
{
	struct nonce_cache *nc;

	nc = fresh(100, 1000, 1 << 20);
	/* fresh timestamp: remembered for one window */
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0), NONCE_NEW);
	finish(nc, &c1, n1, (const uint8_t *)"reply", 5);
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0 + W), NONCE_ANSWERED);
	FAIL(begin(nc, &c1, &k1, n1, d2, T0, T0 + W), HK_ERR_REPLAY);
	/* a timestamp one window ahead: remembered for two */
	EQ_INT(begin(nc, &c1, &k1, n2, d1, T0 + W, T0), NONCE_NEW);
	finish(nc, &c1, n2, (const uint8_t *)"reply", 5);
	FAIL(begin(nc, &c1, &k1, n2, d2, T0 + W, T0 + 2 * W), HK_ERR_REPLAY);
	/* past its life the first is forgotten (the clock check refuses
	 * it from then on), the second not yet */
	EQ_INT(begin(nc, &c1, &k1, n1, d2, T0, T0 + W + 1001), NONCE_NEW);
	FAIL(
	    begin(nc, &c1, &k1, n2, d2, T0 + W, T0 + W + 1001), HK_ERR_REPLAY);
	nonce_cache_free(nc);
}

/* A client that fills its share is refused; nothing is forgotten early. */
static void
test_bounds(void)
{
	struct nonce_cache *nc;
	uint8_t		    n[16];
	int		    i;

	nc = fresh(10, 15, 1 << 20);
	memset(n, 0, sizeof(n));
	for (i = 0; i < 10; i++) {
		n[0] = (uint8_t)i;
		EQ_INT(begin(nc, &c1, &k1, n, d1, T0, T0), NONCE_NEW);
		finish(nc, &c1, n, (const uint8_t *)"reply", 5);
	}
	n[0] = 100;
	FAIL(begin(nc, &c1, &k1, n, d1, T0, T0 + 1), HK_ERR_EXHAUSTED);
	/* the others still have room, up to the total */
	for (i = 0; i < 5; i++) {
		n[0] = (uint8_t)(200 + i);
		EQ_INT(begin(nc, &c2, &k2, n, d1, T0, T0), NONCE_NEW);
		finish(nc, &c2, n, (const uint8_t *)"reply", 5);
	}
	n[0] = 250;
	FAIL(begin(nc, &c2, &k2, n, d1, T0, T0 + 1), HK_ERR_EXHAUSTED);
	/* and the first nonces are all still known */
	n[0] = 3;
	FAIL(begin(nc, &c1, &k1, n, d2, T0, T0 + 2), HK_ERR_REPLAY);
	/* once they age out there is room again */
	n[0] = 100;
	EQ_INT(begin(nc, &c1, &k1, n, d1, T0 + W, T0 + W + 1001), NONCE_NEW);
	nonce_cache_sweep(nc, T0 + W + 1001);
	EQ_INT(k1, 1);
	EQ_INT(k2, 0);
	nonce_cache_free(nc);
}

/* A long reply beyond the reply bytes the cache keeps: its resend is a
 * REPLAY, never a second execution.  A short one lives in its entry and is
 * kept whatever the byte bound. */
static void
test_reply_too_large(void)
{
	struct nonce_cache *nc;
	uint8_t		    big[1000], *reply;
	struct nonce_entry *e;
	size_t		    len;

	memset(big, 'x', sizeof(big));
	nc = fresh(10, 10, 999);
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0), NONCE_NEW);
	finish(nc, &c1, n1, big, sizeof(big));
	FAIL(begin(nc, &c1, &k1, n1, d1, T0, T0 + 1), HK_ERR_REPLAY);
	EQ_INT(begin(nc, &c1, &k1, n2, d1, T0, T0), NONCE_NEW);
	finish(nc, &c1, n2, (const uint8_t *)"reply", 5);
	EQ_INT(begin(nc, &c1, &k1, n2, d1, T0, T0 + 1), NONCE_ANSWERED);
	nonce_cache_free(nc);
	/* within the bound, a long reply comes back whole */
	nc = fresh(10, 10, 1000);
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0), NONCE_NEW);
	finish(nc, &c1, n1, big, sizeof(big));
	EQ_INT(nonce_cache_begin(
		   nc, &c1, &k1, n1, d1, T0, T0 + 1, &e, &reply, &len),
	    NONCE_ANSWERED);
	TRUE(len == sizeof(big) && memcmp(reply, big, len) == 0);
	free(reply);
	nonce_cache_free(nc);
}

/*
 * Entries come from chunks: many waves of requests, each answered, resent
 * and aged out, leave every reply where it belongs and the counts at zero
 * (under ASan, nothing leaked or touched after its free).
 */
static void
test_chunk_turnover(void)
{
	struct nonce_cache *nc;
	uint8_t		    n[16], reply[300], *got;
	struct nonce_entry *e;
	size_t		    len, i, wave, per = 20000; /* 5 chunks a shard */
	uint64_t	    now = T0;

	nc = fresh(100000, 100000, 16 << 20);
	for (wave = 0; wave < 6; wave++) {
		for (i = 0; i < per; i++) {
			memset(n, 0, sizeof(n));
			memcpy(n, &i, sizeof(i));
			n[15] = (uint8_t)wave;
			EQ_INT(
			    begin(nc, &c1, &k1, n, d1, now, now), NONCE_NEW);
			memset(reply, (int)i, sizeof(reply));
			memcpy(reply, &i, sizeof(i));
			/* none kept, one in the entry, one on the heap */
			finish(nc, &c1, n, i % 3 ? reply : NULL,
			    i % 3 == 1	     ? 16
				: i % 3 == 2 ? sizeof(reply)
					     : 0);
		}
		EQ_INT(k1, per);
		for (i = 0; i < per; i += 7) {
			memset(n, 0, sizeof(n));
			memcpy(n, &i, sizeof(i));
			n[15] = (uint8_t)wave;
			if (i % 3 == 0) {
				FAIL(nonce_cache_begin(nc, &c1, &k1, n, d1,
					 now, now, &e, &got, &len),
				    HK_ERR_REPLAY);
				continue;
			}
			EQ_INT(nonce_cache_begin(nc, &c1, &k1, n, d1, now, now,
				   &e, &got, &len),
			    NONCE_ANSWERED);
			TRUE(len == (i % 3 == 1 ? 16 : sizeof(reply)) &&
			    memcmp(got, &i, sizeof(i)) == 0 &&
			    got[len - 1] == (uint8_t)i);
			free(got);
		}
		now += W + 1000;
		nonce_cache_sweep(nc, now);
		EQ_INT(k1, 0);
	}
	nonce_cache_free(nc);
}

/*
 * A freed cache leaves no poison behind (under ASan): memory mapped later
 * at the same addresses is written freely.
 */
static void
test_unmapped_clean(void)
{
	struct nonce_cache *nc;
	uint8_t		    n[16], *p[64];
	size_t		    i;

	nc = fresh(100000, 100000, 1 << 20);
	for (i = 0; i < 5000; i++) {
		memset(n, 0, sizeof(n));
		memcpy(n, &i, sizeof(i));
		EQ_INT(begin(nc, &c1, &k1, n, d1, T0, T0), NONCE_NEW);
		finish(nc, &c1, n, (const uint8_t *)"reply", 5);
	}
	nonce_cache_free(nc);
	for (i = 0; i < 64; i++) {
		p[i] = mmap(NULL, 65536, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		TRUE(p[i] != MAP_FAILED);
		memset(p[i], 0x5a, 65536);
	}
	for (i = 0; i < 64; i++) {
		munmap(p[i], 65536);
	}
}

/*
 * Workers read the clock before they take a shard's lock, so a shard can
 * see a "now" a little behind one it has already seen.  That is no
 * reason to sweep anything: every entry stays, resends are answered.
 */
static void
test_clock_behind(void)
{
	struct nonce_cache *nc;

	nc = fresh(100, 1000, 1 << 20);
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0 + 5000), NONCE_NEW);
	finish(nc, &c1, n1, (const uint8_t *)"reply", 5);
	/* the same shard, 1.5 s behind what it saw */
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0 + 3500), NONCE_ANSWERED);
	EQ_INT(begin(nc, &c1, &k1, n2, d1, T0, T0 + 3500), NONCE_NEW);
	finish(nc, &c1, n2, (const uint8_t *)"reply", 5);
	EQ_INT(k1, 2);
	EQ_INT(begin(nc, &c1, &k1, n2, d1, T0, T0 + 5001), NONCE_ANSWERED);
	nonce_cache_sweep(nc, T0 + W - 1000);
	EQ_INT(k1, 2);
	nonce_cache_sweep(nc, T0 + W + 1000);
	EQ_INT(k1, 0);
	nonce_cache_free(nc);
}

/* An entry still in flight when its time is up stays until answered. */
static void
test_in_flight_survives(void)
{
	struct nonce_cache *nc;

	nc = fresh(10, 10, 1 << 20);
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0), NONCE_NEW);
	EQ_INT(begin(nc, &c1, &k1, n2, d1, T0, T0 + 3 * W), NONCE_NEW);
	EQ_INT(begin(nc, &c1, &k1, n1, d1, T0, T0 + 3 * W), NONCE_IN_FLIGHT);
	finish(nc, &c1, n1, (const uint8_t *)"reply", 5);
	/* answered: it goes at the next sweep */
	EQ_INT(begin(nc, &c1, &k1, n1, d2, T0 + 3 * W, T0 + 3 * W + 2000),
	    NONCE_NEW);
	nonce_cache_free(nc);
}

/*
 * nonce_cache_finish() stores a reply without the shard's lock: a resend
 * racing it from another thread gets IN_FLIGHT or the whole reply, never
 * a part of it (under ASan/TSan, nor a bad access).  Replies alternate
 * between the entry (140 bytes) and the heap (200 bytes).
 */
#define RACE_N 20000

static struct nonce_cache *race_nc;
static atomic_long	   race_upto = -1;
static long		   race_bad, race_answered, race_flight;

static void
race_nonce(long i, uint8_t n[16])
{
	memset(n, 0, 16);
	memcpy(n, &i, sizeof(i));
}

static void *
race_resender(void *arg)
{
	struct nonce_entry *e;
	uint8_t		    n[16], *reply;
	size_t		    len, j;
	long		    i, last = -1;
	int		    r;

	(void)arg;
	while (last < RACE_N - 1) {
		if ((i = atomic_load(&race_upto)) < 0) {
			continue;
		}
		last = i;
		race_nonce(i, n);
		r = nonce_cache_begin(
		    race_nc, &c1, &k1, n, d1, T0, T0, &e, &reply, &len);
		if (r == NONCE_IN_FLIGHT) {
			race_flight++;
		} else if (r == NONCE_ANSWERED) {
			race_answered++;
			if (len != (i % 2 ? 140 : 200)) {
				race_bad++;
			}
			for (j = 0; j < len; j++) {
				race_bad += reply[j] != (uint8_t)i;
			}
			free(reply);
		} else {
			race_bad++;
		}
	}
	return NULL;
}

static void
test_resend_races_answer(void)
{
	struct nonce_entry *e;
	pthread_t	    th;
	uint8_t		    n[16], reply[200], *got;
	size_t		    len;
	long		    i;
	int		    new_ok = 1;

	race_nc = fresh(RACE_N, RACE_N, 1 << 24);
	PASS(pthread_create(&th, NULL, race_resender, NULL));
	for (i = 0; i < RACE_N; i++) {
		race_nonce(i, n);
		memset(reply, (int)(uint8_t)i, sizeof(reply));
		if (nonce_cache_begin(race_nc, &c1, &k1, n, d1, T0, T0, &e,
			&got, &len) != NONCE_NEW) {
			new_ok = 0;
			break;
		}
		atomic_store(&race_upto, i); /* the resender may look now */
		nonce_cache_finish(race_nc, e, reply, i % 2 ? 140 : 200);
	}
	if (!new_ok) {
		atomic_store(&race_upto, RACE_N - 1);
	}
	PASS(pthread_join(th, NULL));
	TRUE(new_ok);
	EQ_INT(race_bad, 0);
	TRUE(race_answered + race_flight > 0);
	nonce_cache_free(race_nc);
}

/*
 * Replies may carry a new client secret (client add, client rotate): the
 * entries that keep them are in pages core dumps leave out, and an entry
 * that ages out zeroes its reply (its chunk stays mapped as a spare, so
 * the bytes can be looked at; not under ASan, which poisons them).
 */
static void
test_reply_wiped(void)
{
	struct nonce_cache *nc;
	struct nonce_entry *e, *first;
	uint8_t		    secret[100], *got;
	size_t		    len;

	memset(secret, 0xa5, sizeof(secret));
	nc = fresh(100, 1000, 1 << 20);
	EQ_INT(nonce_cache_begin(
		   nc, &c1, &k1, n1, d1, T0, T0, &first, &got, &len),
	    NONCE_NEW);
	EQ_INT(hk_test_dontdump(first), 1);
	nonce_cache_finish(nc, first, secret, sizeof(secret));
	/* a resend gets a copy, zeroed by nonce_reply_free() */
	EQ_INT(nonce_cache_begin(
		   nc, &c1, &k1, n1, d1, T0, T0 + 1, &e, &got, &len),
	    NONCE_ANSWERED);
	TRUE(len == sizeof(secret) && memcmp(got, secret, len) == 0);
	nonce_reply_free(got, len);
#if !defined(__SANITIZE_ADDRESS__)
	TRUE(memmem(first, 256, secret, sizeof(secret)) != NULL);
	nonce_cache_sweep(nc, T0 + W + 2000);
	EQ_INT(k1, 0);
	TRUE(memmem(first, 256, secret, 16) == NULL);
#endif
	nonce_cache_free(nc);
}

TEST_LIST = {
	{ "resend_and_replay", test_resend_and_replay },
	{ "life_follows_timestamp", test_life_follows_timestamp },
	{ "bounds", test_bounds },
	{ "reply_too_large", test_reply_too_large },
	{ "chunk_turnover", test_chunk_turnover },
	{ "unmapped_clean", test_unmapped_clean },
	{ "clock_behind", test_clock_behind },
	{ "in_flight_survives", test_in_flight_survives },
	{ "resend_races_answer", test_resend_races_answer },
	{ "reply_wiped", test_reply_wiped },
	{ NULL, NULL },
};

TEST_MAIN
