/*
 * envelope_mem_test.c: no HMAC state outlives the MAC that made it
 * (envelope.c).  Every allocation OpenSSL makes in this process goes
 * through the counting functions below (CRYPTO_set_mem_functions(), set
 * before OpenSSL's first allocation): after a MAC with a day key no live
 * allocation holds that key (OpenSSL keeps a copy of an HMAC key in its
 * context), and no allocation was ever freed still holding it (not
 * zeroed).  A per-thread context kept between calls fails the first check.
 */
#define _GNU_SOURCE /* memmem */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "envelope.h"
#include "hk_err.h"
#include "testutil.h"

#define MAX_LIVE 8192

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	void  *p;
	size_t n;
} live[MAX_LIVE];
static uint8_t key[HK_MAC_LEN];
static int     freed_with_key; /* allocations freed still holding key */
static int     untracked;      /* live[] was full */

static void
remember(void *p, size_t n)
{
	size_t i;

	for (i = 0; p != NULL && i < MAX_LIVE; i++) {
		if (live[i].p == NULL) {
			live[i].p = p;
			live[i].n = n;
			return;
		}
	}
	untracked += p != NULL;
}

/* Forgets p; counts it when it still holds the key. */
static void
forget(void *p)
{
	size_t i;

	for (i = 0; p != NULL && i < MAX_LIVE; i++) {
		if (live[i].p == p) {
			if (live[i].n >= sizeof(key) &&
			    memmem(p, live[i].n, key, sizeof(key)) != NULL) {
				freed_with_key++;
			}
			live[i].p = NULL;
			return;
		}
	}
}

static void *
t_malloc(size_t n, const char *file, int line)
{
	void *p = malloc(n);

	(void)file;
	(void)line;
	pthread_mutex_lock(&lock);
	remember(p, n);
	pthread_mutex_unlock(&lock);
	return p;
}

static void *
t_realloc(void *p, size_t n, const char *file, int line)
{
	void *q;

	(void)file;
	(void)line;
	pthread_mutex_lock(&lock);
	forget(p);
	q = realloc(p, n);
	remember(q, n);
	pthread_mutex_unlock(&lock);
	return q;
}

static void
t_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	pthread_mutex_lock(&lock);
	forget(p);
	pthread_mutex_unlock(&lock);
	free(p);
}

/* How many live allocations hold the key. */
static int
live_with_key(void)
{
	size_t i;
	int    n = 0;

	pthread_mutex_lock(&lock);
	for (i = 0; i < MAX_LIVE; i++) {
		if (live[i].p != NULL && live[i].n >= sizeof(key) &&
		    memmem(live[i].p, live[i].n, key, sizeof(key)) != NULL) {
			n++;
		}
	}
	pthread_mutex_unlock(&lock);
	return n;
}

static void
test_no_state_left(void)
{
	static const uint8_t nonce[HK_NONCE_LEN] = { 7 };
	uint8_t		     mac[HK_MAC_LEN], again[HK_MAC_LEN];
	int		     i;

	TRUE(CRYPTO_set_mem_functions(t_malloc, t_realloc, t_free) == 1);
	for (i = 0; i < HK_MAC_LEN; i++) {
		key[i] = (uint8_t)(0xc0 ^ (i * 37));
	}
	for (i = 0; i < 3; i++) {
		PASS(hk_mac_request(key, 1, "svc", 1, nonce, sizeof(nonce),
		    1795867200000ULL, (const uint8_t *)"req", 3, mac));
		PASS(hk_mac_response(key, 1, nonce, sizeof(nonce),
		    (const uint8_t *)"resp", 4, 0, again));
		PASS(hk_hmac_sha256(
		    key, sizeof(key), (const uint8_t *)"x", 1, again));
	}
	/* the same MAC again: the result does not depend on a kept state */
	PASS(hk_mac_request(key, 1, "svc", 1, nonce, sizeof(nonce),
	    1795867200000ULL, (const uint8_t *)"req", 3, again));
	TRUE(memcmp(mac, again, sizeof(mac)) == 0);
	EQ_INT(untracked, 0);
	EQ_INT(live_with_key(), 0);
	EQ_INT(freed_with_key, 0);
}

TEST_LIST = {
	{ "no_state_left", test_no_state_left },
	{ NULL, NULL },
};

TEST_MAIN
