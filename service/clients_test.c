/*
 * clients_test.c: client credentials on a throw-away SoftHSM token
 * (keyring_fixture.c): add, the secret and day-key lookups, grants,
 * rotate, revoke, the counters, a reload from the token, and a reload of
 * two records of one client (a revoke cut short), a revocation racing a
 * request that computes a day key.  The tests
 * build on each other in order.
 */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"
#include "clients_int.h"
#include "envelope.h"
#include "hk_err.h"
#include "keyring_fixture.h"
#include "testutil.h"

#define LIFETIME_S (90ULL * 24 * 3600)

static struct clients *cs;

static struct clients *
db(void)
{
	struct token_object *objs = NULL;
	size_t		     n = 0;

	if (cs == NULL) {
		fixture_objects(&objs, &n);
		PASS(
		    clients_load(&cs, fixture_session(), objs, n, LIFETIME_S));
		free(objs);
	}
	return cs;
}

/* The client and secret key for id's secret_no, or the lookup's error. */
static int
lookup(const char *id, uint32_t secret_no, struct client **clp)
{
	token_obj_t key;
	const char *why;
	int	    r;

	r = clients_secret(db(), id, secret_no, hk_now_ms(), clp, &key, &why);
	TRUE((r == 0) == (why == NULL));
	TRUE((r == 0) == (key != TOKEN_OBJ_NONE));
	return r;
}

static void
test_add(void)
{
	char *const    grants[] = { "sign:pay-*", "verify:*" };
	char *const    bad[] = { "launch:*" };
	uint8_t	       secret[HK_SECRET_LEN], zero[HK_SECRET_LEN];
	uint32_t       no;
	uint64_t       expires;
	struct client *cl;

	memset(zero, 0, sizeof(zero));
	PASS(clients_add(
	    db(), fixture_session(), "svc", grants, 2, secret, &no, &expires));
	EQ_INT(no, 1);
	TRUE(expires > hk_now_ms() + (LIFETIME_S - 60) * 1000);
	TRUE(memcmp(secret, zero, sizeof(secret)) != 0);
	FAIL(clients_add(db(), fixture_session(), "svc", grants, 2, secret,
		 &no, &expires),
	    HK_ERR_EXISTS);
	FAIL(clients_add(
		 db(), fixture_session(), "x", bad, 1, secret, &no, &expires),
	    HK_ERR_INVALID);
	FAIL(clients_add(db(), fixture_session(), "bad id!", grants, 2, secret,
		 &no, &expires),
	    HK_ERR_INVALID);
	PASS(lookup("svc", 1, &cl));
	EQ_STR(client_id(cl), "svc");
	FAIL(lookup("svc", 2, &cl), HK_ERR_UNAUTHENTICATED);
	FAIL(lookup("nobody", 1, &cl), HK_ERR_UNAUTHENTICATED);
	TRUE(!clients_any_admin(db()));
}

static void
test_grants(void)
{
	struct client *cl;

	PASS(lookup("svc", 1, &cl));
	TRUE(clients_allowed(db(), cl, CLIENT_OP_SIGN, "pay-1"));
	TRUE(!clients_allowed(db(), cl, CLIENT_OP_SIGN, "tokens"));
	TRUE(clients_allowed(db(), cl, CLIENT_OP_VERIFY, "tokens"));
	TRUE(clients_allowed(db(), cl, CLIENT_OP_VERIFY, NULL));
	TRUE(!clients_allowed(db(), cl, CLIENT_OP_SIGN, NULL));
	TRUE(!clients_allowed(db(), cl, CLIENT_OP_ADMIN, "pay-1"));
	TRUE(clients_any_grant(db(), cl, "anything"));
}

static void
test_day_key(void)
{
	uint8_t	       a[HK_MAC_LEN], b[HK_MAC_LEN], c[HK_MAC_LEN];
	struct client *cl;
	token_obj_t    key;
	const char    *why;

	PASS(clients_secret(db(), "svc", 1, hk_now_ms(), &cl, &key, &why));
	PASS(clients_day_key(cl, fixture_session(), 1, key, 20260101, a));
	PASS(clients_day_key(cl, fixture_session(), 1, key, 20260101, b));
	PASS(clients_day_key(cl, fixture_session(), 1, key, 20260102, c));
	TRUE(memcmp(a, b, sizeof(a)) == 0);
	TRUE(memcmp(a, c, sizeof(a)) != 0);
}

static void
test_rotate_revoke(void)
{
	uint8_t	       secret[HK_SECRET_LEN];
	uint32_t       no;
	uint64_t       expires;
	struct client *cl;

	PASS(clients_rotate(
	    db(), fixture_session(), "svc", secret, &no, &expires));
	EQ_INT(no, 2);
	PASS(lookup("svc", 1, &cl)); /* the old one still works */
	PASS(lookup("svc", 2, &cl));
	FAIL(clients_rotate(
		 db(), fixture_session(), "nobody", secret, &no, &expires),
	    HK_ERR_NOT_FOUND);
	FAIL(clients_rotate(
		 db(), fixture_session(), "bad id!", secret, &no, &expires),
	    HK_ERR_INVALID);
	FAIL(clients_revoke(db(), fixture_session(), "svc\n1", 1),
	    HK_ERR_INVALID);
	PASS(clients_revoke(db(), fixture_session(), "svc", 1));
	FAIL(lookup("svc", 1, &cl), HK_ERR_UNAUTHENTICATED);
	FAIL(clients_revoke(db(), fixture_session(), "svc", 1),
	    HK_ERR_NOT_FOUND);
	PASS(lookup("svc", 2, &cl));
}

static void
test_counters(void)
{
	struct clients_secret_stats *st;
	struct client		    *cl;
	size_t			     n;

	PASS(lookup("svc", 2, &cl));
	clients_secret_count(db(), cl, 2, 0, 1234);
	clients_secret_count(db(), cl, 2, 1, 0);
	PASS(clients_secret_stats(db(), NULL, &st, &n));
	EQ_INT(n, 1);
	EQ_STR(st[0].client, "svc");
	EQ_INT(st[0].secret, 2);
	EQ_INT(st[0].requests, 2);
	EQ_INT(st[0].denials, 1);
	EQ_INT(st[0].last_use_ms, 1234);
	free(st);
}

/* The snapshot of the one client, checked. */
static void
check_list(void)
{
	struct clients_info *infos;
	size_t		     n;

	PASS(clients_list(db(), &infos, &n));
	EQ_INT(n, 1);
	EQ_STR(infos[0].id, "svc");
	EQ_INT(infos[0].ngrants, 2);
	EQ_STR(infos[0].grants[0], "sign:pay-*");
	EQ_STR(infos[0].grants[1], "verify:*");
	EQ_INT(infos[0].nsecrets, 1);
	EQ_INT(infos[0].secrets[0].number, 2);
	free(infos);
}

static void
test_reload(void)
{
	char *const    admin[] = { "admin:*" };
	uint8_t	       secret[HK_SECRET_LEN];
	uint32_t       no;
	uint64_t       expires;
	struct client *cl;

	check_list();
	clients_free(cs);
	cs = NULL;
	check_list();
	PASS(lookup("svc", 2, &cl));
	FAIL(lookup("svc", 1, &cl), HK_ERR_UNAUTHENTICATED);
	/* secret numbers are never reused */
	PASS(clients_rotate(
	    db(), fixture_session(), "svc", secret, &no, &expires));
	EQ_INT(no, 3);
	PASS(clients_add(
	    db(), fixture_session(), "root", admin, 1, secret, &no, &expires));
	TRUE(clients_any_admin(db()));
}

/* How many of objs are labelled label; *idxp: the last of them. */
static size_t
count_label(
    const struct token_object *objs, size_t n, const char *label, size_t *idxp)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		if (strcmp(objs[i].label, label) == 0) {
			*idxp = i;
			k++;
		}
	}
	return k;
}

/*
 * A revoke cut short after its new record was written, before the old
 * record and the secret's object were removed (tests/test_crash.sh makes
 * it with a kill): loaded with the older record first, the newer record
 * wins, and the revoked secret's object is removed from the token.
 */
static void
test_stale_record(void)
{
	char *const	     grants[] = { "sign:*" };
	const char	    *sec1 = "hsmkey-secret:rv:1";
	uint8_t		     secret[HK_SECRET_LEN], *old = NULL;
	struct token_object *objs = NULL, tmp;
	struct client	    *cl;
	token_obj_t	     copy, obj;
	uint32_t	     no;
	uint64_t	     expires;
	size_t		     n = 0, len = 0, i = 0;

	PASS(clients_add(
	    db(), fixture_session(), "rv", grants, 1, secret, &no, &expires));
	PASS(clients_rotate(
	    db(), fixture_session(), "rv", secret, &no, &expires));
	fixture_objects(&objs, &n);
	EQ_INT(count_label(objs, n, "hsmkey-client:rv", &i), 1);
	PASS(token_data_read(fixture_session(), objs[i].handle, &old, &len));
	free(objs);
	PASS(clients_revoke(db(), fixture_session(), "rv", 1));
	/* what the kill left: the old record and secret 1's object */
	PASS(token_data_create(
	    fixture_session(), "hsmkey-client:rv", old, len, &copy));
	free(old);
	PASS(
	    token_secret_create(fixture_session(), sec1, (const uint8_t *)sec1,
		strlen(sec1), secret, sizeof(secret), &obj));
	clients_free(cs);
	cs = NULL;
	fixture_objects(&objs, &n);
	for (i = 0; i < n && objs[i].handle != copy; i++) {
		;
	}
	TRUE(i < n);
	tmp = objs[0];
	objs[0] = objs[i];
	objs[i] = tmp;
	PASS(clients_load(&cs, fixture_session(), objs, n, LIFETIME_S));
	free(objs);
	FAIL(lookup("rv", 1, &cl), HK_ERR_UNAUTHENTICATED);
	PASS(lookup("rv", 2, &cl));
	fixture_objects(&objs, &n);
	EQ_INT(count_label(objs, n, sec1, &i), 0);
	EQ_INT(count_label(objs, n, "hsmkey-client:rv", &i), 1);
	free(objs);
}

/* 1 if key is anywhere in cl's day-key page. */
static int
in_cache(const struct client *cl, const uint8_t key[HK_MAC_LEN])
{
	return memmem(cl->dk, sizeof(*cl->dk), key, HK_MAC_LEN) != NULL;
}

/*
 * A revocation wipes the secret's cached day keys, and a request that
 * missed the cache before it and computed the key in the token meanwhile
 * (clients_day_key() step by step) does not put it back.
 */
static void
test_revoke_race(void)
{
	uint8_t	       secret[HK_SECRET_LEN], in[32];
	uint8_t	       k2[HK_MAC_LEN], k3[HK_MAC_LEN], got[HK_MAC_LEN];
	uint32_t       day = hk_mac_day(hk_now_ms()), no;
	uint64_t       expires, gen;
	struct client *cl, *gone;
	token_obj_t    key2, key3;
	const char    *why;
	size_t	       len;

	PASS(clients_rotate(
	    db(), fixture_session(), "rv", secret, &no, &expires));
	EQ_INT(no, 3);
	PASS(clients_secret(db(), "rv", 2, hk_now_ms(), &cl, &key2, &why));
	PASS(clients_day_key(cl, fixture_session(), 2, key2, day, k2));
	TRUE(in_cache(cl, k2));
	/* a request of secret 3 misses the cache, the token computes its
	 * key, secret 3 is revoked, then the request would cache the key */
	PASS(clients_secret(db(), "rv", 3, hk_now_ms(), &cl, &key3, &why));
	FAIL(cl_day_key_cached(cl, 3, day, got, &gen), HK_ERR_NOT_FOUND);
	hk_day_key_input(day, in, &len);
	PASS(token_hmac(fixture_session(), key3, in, len, k3));
	PASS(clients_revoke(db(), fixture_session(), "rv", 3));
	EQ_INT(cl_day_key_keep(cl, 3, day, k3, gen), 0);
	FAIL(cl_day_key_cached(cl, 3, day, got, &gen), HK_ERR_NOT_FOUND);
	TRUE(!in_cache(cl, k3));
	FAIL(lookup("rv", 3, &gone), HK_ERR_UNAUTHENTICATED);
	/* with no revocation in between, the key is kept */
	FAIL(cl_day_key_cached(cl, 2, day + 1, got, &gen), HK_ERR_NOT_FOUND);
	EQ_INT(cl_day_key_keep(cl, 2, day + 1, k3, gen), 1);
	PASS(cl_day_key_cached(cl, 2, day + 1, got, &gen));
	TRUE(memcmp(got, k3, HK_MAC_LEN) == 0);
	/* revoking secret 2 wipes both of its cached days */
	PASS(clients_revoke(db(), fixture_session(), "rv", 2));
	TRUE(!in_cache(cl, k2));
	TRUE(!in_cache(cl, k3));
	FAIL(lookup("rv", 2, &gone), HK_ERR_UNAUTHENTICATED);
}

/* clients_grant() sets the list exactly, keeps it on a failure, and the
 * token holds it across a reload. */
static void
test_set_grants(void)
{
	char *const	    grants[] = { "sign:a*", "verify:b" };
	char *const	    first[] = { "pubkey:z" };
	char *const	    bad[] = { "sign:a", "launch:*" };
	struct clients_info info;
	struct client	   *cl;
	uint8_t		    secret[HK_SECRET_LEN];
	uint32_t	    no;
	uint64_t	    expires;

	PASS(clients_add(db(), fixture_session(), "granted", first, 1, secret,
	    &no, &expires));
	PASS(clients_grant(
	    db(), fixture_session(), "granted", grants, 2, &info));
	EQ_STR(info.id, "granted");
	EQ_INT(info.ngrants, 2);
	EQ_STR(info.grants[1], "verify:b");
	EQ_INT(info.nsecrets, 1);
	FAIL(clients_grant(db(), fixture_session(), "granted", bad, 2, &info),
	    HK_ERR_INVALID);
	FAIL(clients_grant(
		 db(), fixture_session(), "granted", grants, 0, &info),
	    HK_ERR_INVALID);
	FAIL(
	    clients_grant(db(), fixture_session(), "nobody", grants, 2, &info),
	    HK_ERR_NOT_FOUND);
	clients_free(cs);
	cs = NULL;
	PASS(lookup("granted", 1, &cl));
	TRUE(clients_allowed(db(), cl, CLIENT_OP_SIGN, "abc"));
	TRUE(!clients_allowed(db(), cl, CLIENT_OP_PUBKEY, "z"));
	TRUE(clients_allowed(db(), cl, CLIENT_OP_VERIFY, "b"));
	TRUE(!clients_allowed(db(), cl, CLIENT_OP_VERIFY, "abc"));
}

static void
test_close(void)
{
	clients_free(cs);
	cs = NULL;
	fixture_close();
}

TEST_LIST = {
	{ "add", test_add },
	{ "grants", test_grants },
	{ "day_key", test_day_key },
	{ "rotate_revoke", test_rotate_revoke },
	{ "counters", test_counters },
	{ "reload", test_reload },
	{ "stale_record", test_stale_record },
	{ "revoke_race", test_revoke_race },
	{ "set_grants", test_set_grants },
	{ "close", test_close },
	{ NULL, NULL },
};

TEST_MAIN
