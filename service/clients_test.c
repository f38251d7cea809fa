/*
 * clients_test.c: client credentials on a throw-away SoftHSM token
 * (keyring_fixture.c): add, the secret and day-key lookups, grants,
 * rotate, revoke, the counters, a reload from the token, and a reload of
 * two records of one client (a revoke cut short).  The tests
 * build on each other in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"
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
	{ "close", test_close },
	{ NULL, NULL },
};

TEST_MAIN
