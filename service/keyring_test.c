/*
 * keyring_test.c: the keyring against a real, throw-away SoftHSM token
 * (keyring_fixture.c): create, rotate with its compare-and-set, stage and
 * promote, what the signer lookup refuses, disable, destroy and the tick's
 * timers with an injected clock, reload from the token, and the repair of
 * intents a dead maker left behind.  `keyring_test NAME` runs one test;
 * they share one token and build on each other in order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "hk_err.h"
#include "keyring.h"
#include "keyring_fixture.h"
#include "keyring_int.h"
#include "testutil.h"

#define DAY_MS	 (24ULL * 3600 * 1000)
#define DELAY_S	 (7ULL * 24 * 3600)
#define GRACE_S	 (30ULL * 24 * 3600)
#define ALG_P256 HK_ALG_ECDSA_P256

static struct keyring *kr;
static char	       instance[128];
static uint64_t	       delay_s = DELAY_S; /* of the next load() */

/* The last move the tick told of (keyring_opts.moved) for the key
 * watched, and how many since watch(). */
static struct {
	const char   *watch;
	char	      key[KEYRING_NAME_MAX + 1];
	uint32_t      version;
	enum lc_event ev;
	int	      n;
} moved;

static void
record_move(void *arg, const char *key, uint32_t version, enum lc_event ev)
{
	(void)arg;
	if (moved.watch == NULL || strcmp(key, moved.watch) != 0) {
		return;
	}
	snprintf(moved.key, sizeof(moved.key), "%s", key);
	moved.version = version;
	moved.ev = ev;
	moved.n++;
}

static void
watch(const char *key)
{
	memset(&moved, 0, sizeof(moved));
	moved.watch = key;
}

/* The tick told of n moves so far, the last one ev of key v. */
#define EQ_MOVED(n_, key_, v_, ev_)          \
	do {                                 \
		EQ_INT(moved.n, (n_));       \
		EQ_STR(moved.key, (key_));   \
		EQ_INT(moved.version, (v_)); \
		EQ_INT(moved.ev, (ev_));     \
	} while (0)

static void
load(void)
{
	struct keyring_opts  ko;
	struct token_object *objs = NULL;
	size_t		     n = 0;

	memset(&ko, 0, sizeof(ko));
	ko.destroy_delay_s = delay_s;
	ko.default_verify_grace_s = GRACE_S;
	snprintf(instance, sizeof(instance), "testhost/%ld/1", (long)getpid());
	ko.instance = instance;
	ko.moved = record_move;
	fixture_objects(&objs, &n);
	PASS(keyring_load(
	    &kr, fixture_token(), fixture_session(), objs, n, &ko));
	free(objs);
}

static struct keyring *
ring(void)
{
	if (kr == NULL) {
		load();
	}
	return kr;
}

static struct token_session *
sess(void)
{
	return fixture_session();
}

/* The state of version v of key name (LC_NONE: no such version). */
static enum lc_state
state_of(const char *name, uint32_t v)
{
	enum lc_state st;
	int	      primary;

	(void)keyring_state(ring(), name, v, &st, &primary);
	return st;
}

static uint32_t
primary_of(const char *name)
{
	struct keyring_info info;
	uint32_t	    p;

	PASS(keyring_info(ring(), name, &info));
	p = info.primary;
	keyring_info_clear(&info);
	return p;
}

/* The version the signer lookup gives for version v (0: primary). */
static int
signer(const char *name, uint32_t v, uint32_t *gotp)
{
	struct keyring_signer sg;
	int		      r;

	r = keyring_signer(ring(), name, v, &sg);
	*gotp = sg.version;
	if (r == 0) {
		TRUE(sg.priv != TOKEN_OBJ_NONE);
		EQ_INT(sg.alg, ALG_P256);
	}
	return r;
}

static void
test_create(void)
{
	struct keyring_info info;
	uint32_t	    got;

	PASS(keyring_create(ring(), sess(), "k1", ALG_P256));
	FAIL(keyring_create(ring(), sess(), "k1", ALG_P256), HK_ERR_EXISTS);
	FAIL(keyring_create(ring(), sess(), "Bad Name", ALG_P256),
	    HK_ERR_INVALID);
	PASS(keyring_info(ring(), "k1", &info));
	EQ_STR(info.name, "k1");
	EQ_INT(info.primary, 1);
	EQ_INT(info.nversions, 1);
	EQ_INT(info.versions[0].state, LC_ACTIVE);
	TRUE(info.versions[0].primary);
	EQ_INT(info.policy.verify_grace_s, GRACE_S);
	keyring_info_clear(&info);
	FAIL(keyring_info(ring(), "nonesuch", &info), HK_ERR_NOT_FOUND);
	keyring_info_clear(&info);
	PASS(signer("k1", 0, &got));
	EQ_INT(got, 1);
	FAIL(signer("nonesuch", 0, &got), HK_ERR_NOT_FOUND);
	FAIL(signer("k1", 2, &got), HK_ERR_NOT_FOUND);
}

static void
test_rotate_cas(void)
{
	uint32_t newv, got;

	PASS(keyring_rotate(ring(), sess(), "k1", 1, 0, &newv));
	EQ_INT(newv, 2);
	/* a second rotation expecting v1 lost the compare-and-set */
	FAIL(keyring_rotate(ring(), sess(), "k1", 1, 0, &newv),
	    HK_ERR_PRECONDITION);
	EQ_INT(newv, 0);
	FAIL(keyring_rotate(ring(), sess(), "nonesuch", 0, 0, &newv),
	    HK_ERR_NOT_FOUND);
	EQ_INT(primary_of("k1"), 2);
	/* no overlap: v1 verifies only, and may not sign */
	EQ_INT(state_of("k1", 1), LC_VERIFY_ONLY);
	EQ_INT(state_of("k1", 2), LC_ACTIVE);
	FAIL(signer("k1", 1, &got), HK_ERR_PRECONDITION);
	PASS(signer("k1", 0, &got));
	EQ_INT(got, 2);
}

static void
test_stage_promote(void)
{
	uint32_t newv, got;

	PASS(keyring_rotate(ring(), sess(), "k1", 2, 1, &newv));
	EQ_INT(newv, 3);
	EQ_INT(state_of("k1", 3), LC_PENDING);
	EQ_INT(primary_of("k1"), 2);
	/* a pending version may not sign, by number or as primary */
	FAIL(signer("k1", 3, &got), HK_ERR_PRECONDITION);
	PASS(signer("k1", 0, &got));
	EQ_INT(got, 2);
	/* only a pending (or the primary) version can be promoted */
	FAIL(keyring_promote(ring(), sess(), "k1", 1), HK_ERR_PRECONDITION);
	FAIL(keyring_promote(ring(), sess(), "k1", 9), HK_ERR_NOT_FOUND);
	PASS(keyring_promote(ring(), sess(), "k1", 3));
	PASS(keyring_promote(ring(), sess(), "k1", 3)); /* idempotent */
	EQ_INT(primary_of("k1"), 3);
	EQ_INT(state_of("k1", 2), LC_VERIFY_ONLY);
	/* the old primary, still active by number, is not the primary */
	FAIL(keyring_promote(ring(), sess(), "k1", 2), HK_ERR_PRECONDITION);
	PASS(signer("k1", 0, &got));
	EQ_INT(got, 3);
}

static void
test_disable(void)
{
	uint32_t got;

	PASS(keyring_disable(ring(), sess(), "k1", 1));
	PASS(keyring_disable(ring(), sess(), "k1", 1)); /* idempotent */
	EQ_INT(state_of("k1", 1), LC_DISABLED);
	FAIL(signer("k1", 1, &got), HK_ERR_PRECONDITION);
	FAIL(keyring_disable(ring(), sess(), "k1", 0), HK_ERR_NOT_FOUND);
	FAIL(keyring_disable(ring(), sess(), "k1", 99), HK_ERR_NOT_FOUND);
}

static void
test_destroy_tick(void)
{
	struct keyring_info info;
	uint64_t	    now = hk_now_ms();

	/* an active version must be disabled first */
	FAIL(keyring_destroy(ring(), sess(), "k1", 3), HK_ERR_PRECONDITION);
	PASS(keyring_destroy(ring(), sess(), "k1", 1));
	PASS(keyring_destroy(ring(), sess(), "k1", 1)); /* idempotent */
	EQ_INT(state_of("k1", 1), LC_DESTROY_SCHEDULED);
	/* disable cancels the scheduled destruction */
	PASS(keyring_disable(ring(), sess(), "k1", 1));
	EQ_INT(state_of("k1", 1), LC_DISABLED);
	PASS(keyring_destroy(ring(), sess(), "k1", 1));
	/* nothing is due yet */
	PASS(keyring_tick(ring(), sess(), now, NULL));
	EQ_INT(state_of("k1", 1), LC_DESTROY_SCHEDULED);
	/* the delay ends */
	PASS(
	    keyring_tick(ring(), sess(), now + DELAY_S * 1000 + DAY_MS, NULL));
	EQ_INT(state_of("k1", 1), LC_DESTROYED);
	FAIL(keyring_disable(ring(), sess(), "k1", 1), HK_ERR_PRECONDITION);
	PASS(keyring_destroy(ring(), sess(), "k1", 1));
	PASS(keyring_info(ring(), "k1", &info));
	EQ_INT(info.versions[0].retire_ms, 0);
	keyring_info_clear(&info);
}

static void
test_overlap_grace(void)
{
	struct keyring_policy_change ch;
	uint64_t		     overlap = 3600, now, retire;
	struct keyring_info	     info;
	uint32_t		     newv, got;

	PASS(keyring_create(ring(), sess(), "k2", ALG_P256));
	memset(&ch, 0, sizeof(ch));
	ch.sign_overlap_s = &overlap;
	PASS(keyring_policy(ring(), sess(), "k2", &ch));
	FAIL(
	    keyring_policy(ring(), sess(), "nonesuch", &ch), HK_ERR_NOT_FOUND);
	now = hk_now_ms();
	PASS(keyring_rotate(ring(), sess(), "k2", 0, 0, &newv));
	/* the old primary keeps signing through the overlap */
	EQ_INT(state_of("k2", 1), LC_ACTIVE);
	PASS(signer("k2", 1, &got));
	PASS(keyring_info(ring(), "k2", &info));
	EQ_INT(info.policy.sign_overlap_s, overlap);
	EQ_INT(info.policy.verify_grace_s, GRACE_S); /* left as it was */
	retire = info.versions[0].retire_ms;
	keyring_info_clear(&info);
	TRUE(retire >= now + overlap * 1000);
	TRUE(retire <= hk_now_ms() + overlap * 1000);
	PASS(keyring_tick(ring(), sess(), retire - 1, NULL));
	EQ_INT(state_of("k2", 1), LC_ACTIVE);
	/* overlap end */
	watch("k2");
	PASS(keyring_tick(ring(), sess(), retire, NULL));
	EQ_INT(state_of("k2", 1), LC_VERIFY_ONLY);
	EQ_INT(state_of("k2", 2), LC_ACTIVE);
	EQ_MOVED(1, "k2", 1, LC_EV_OVERLAP_END);
	PASS(keyring_info(ring(), "k2", &info));
	EQ_INT(info.versions[0].retire_ms, retire + GRACE_S * 1000);
	keyring_info_clear(&info);
	/* grace end */
	PASS(keyring_tick(ring(), sess(), retire + GRACE_S * 1000 - 1, NULL));
	EQ_INT(state_of("k2", 1), LC_VERIFY_ONLY);
	PASS(keyring_tick(ring(), sess(), retire + GRACE_S * 1000, NULL));
	EQ_INT(state_of("k2", 1), LC_DISABLED);
	EQ_MOVED(2, "k2", 1, LC_EV_GRACE_END);
}

static void
test_verifier_pubkey(void)
{
	enum lc_state	   st;
	EVP_PKEY	  *pkey = NULL;
	struct kr_version *v;
	uint8_t		  *der = NULL;
	uint64_t	   retire;
	uint32_t	   got;
	size_t		   len;
	hk_alg		   alg;

	PASS(keyring_verifier(
	    ring(), sess(), "k1", 3, &alg, &pkey, &st, &retire, &v));
	TRUE(pkey != NULL && v != NULL);
	EQ_INT(st, LC_ACTIVE);
	EQ_INT(retire, 0);
	EVP_PKEY_free(pkey);
	pkey = NULL;
	/* a disabled version is named, but verifies nothing */
	FAIL(keyring_verifier(
		 ring(), sess(), "k2", 1, &alg, &pkey, &st, &retire, &v),
	    HK_ERR_PRECONDITION);
	EQ_INT(st, LC_DISABLED);
	TRUE(pkey == NULL);
	PASS(keyring_pubkey(ring(), sess(), "k1", 0, &got, &alg, &der, &len));
	EQ_INT(got, 3);
	TRUE(len > 0);
	free(der);
	FAIL(keyring_pubkey(ring(), sess(), "k1", 1, &got, &alg, &der, &len),
	    HK_ERR_PRECONDITION); /* destroyed */
}

/* Every key's snapshot, for comparing a reload with what was before. */
static void
snapshot(struct keyring_info **infosp, size_t *np)
{
	PASS(keyring_list(ring(), NULL, NULL, infosp, np));
}

static void
same_snapshots(const struct keyring_info *a, size_t na,
    const struct keyring_info *b, size_t nb)
{
	size_t i, j;

	EQ_INT(na, nb);
	for (i = 0; i < na; i++) {
		EQ_STR(a[i].name, b[i].name);
		EQ_INT(a[i].alg, b[i].alg);
		EQ_INT(a[i].primary, b[i].primary);
		EQ_INT(a[i].created_ms, b[i].created_ms);
		TRUE(memcmp(&a[i].policy, &b[i].policy, sizeof(a[i].policy)) ==
		    0);
		EQ_INT(a[i].nversions, b[i].nversions);
		for (j = 0; j < a[i].nversions; j++) {
			EQ_INT(a[i].versions[j].version,
			    b[i].versions[j].version);
			EQ_INT(a[i].versions[j].state, b[i].versions[j].state);
			EQ_INT(a[i].versions[j].retire_ms,
			    b[i].versions[j].retire_ms);
			EQ_INT(a[i].versions[j].activated_ms,
			    b[i].versions[j].activated_ms);
		}
	}
}

static void
test_reload(void)
{
	struct keyring_info *before, *after;
	size_t		     nb, na;
	uint32_t	     keys, versions, got;

	snapshot(&before, &nb);
	EQ_INT(nb, 2);
	EQ_STR(before[0].name, "k1");
	keyring_free(kr);
	kr = NULL;
	load();
	snapshot(&after, &na);
	same_snapshots(before, nb, after, na);
	keyring_totals(ring(), &keys, &versions);
	EQ_INT(keys, 2);
	EQ_INT(versions, 5);
	PASS(signer("k1", 0, &got));
	EQ_INT(got, 3);
	FAIL(signer("k1", 2, &got), HK_ERR_PRECONDITION);
	keyring_list_free(before, nb);
	keyring_list_free(after, na);
}

static void
test_stats(void)
{
	struct keyring_signer  sg;
	struct keyring_vstats *st;
	size_t		       n, i, found = 0;

	PASS(keyring_signer(ring(), "k2", 0, &sg));
	keyring_count(sg.v, KR_SIGN, 3);
	keyring_count(sg.v, KR_ERROR, 1);
	PASS(keyring_stats(ring(), &st, &n));
	EQ_INT(n, 5);
	for (i = 0; i < n; i++) {
		if (strcmp(st[i].key, "k2") == 0 && st[i].version == 2) {
			EQ_INT(st[i].signs, 3);
			EQ_INT(st[i].errors, 1);
			EQ_INT(st[i].state, LC_ACTIVE);
			TRUE(st[i].last_use_ms > 0);
			found++;
		}
	}
	EQ_INT(found, 1);
	free(st);
}

/* Writes an intent for version nv of key name (nv 1: a new key) as a
 * maker that is gone would have left it. */
static void
write_intent(const char *name, uint32_t nv, const char *owner)
{
	struct kr_rec  rec;
	struct kr_key *k;
	token_obj_t    meta = TOKEN_OBJ_NONE;

	memset(&rec, 0, sizeof(rec));
	if (nv > 1) {
		TRUE((k = kr_find_key(ring(), name)) != NULL);
		PASS(kr_rec_from_key(k, &rec, 1));
		meta = k->meta;
	} else {
		snprintf(rec.name, sizeof(rec.name), "%s", name);
		rec.alg = ALG_P256;
		TRUE((rec.v = calloc(1, sizeof(*rec.v))) != NULL);
	}
	rec.v[nv - 1].version = nv;
	PASS(lifecycle_next(LC_NONE, LC_EV_STAGE, &rec.v[nv - 1].state));
	rec.v[nv - 1].creating = 1;
	rec.v[nv - 1].intent_ms = hk_now_ms();
	snprintf(
	    rec.v[nv - 1].owner, sizeof(rec.v[nv - 1].owner), "%s", owner);
	rec.nv = nv;
	PASS(kr_rec_store(sess(), &rec, &meta));
	kr_rec_free(&rec);
}

/* How many token objects are labelled label. */
static size_t
objects_labelled(const char *label)
{
	struct token_object *objs;
	size_t		     n, i, found = 0;

	fixture_objects(&objs, &n);
	for (i = 0; i < n; i++) {
		found += strcmp(objs[i].label, label) == 0;
	}
	free(objs);
	return found;
}

static void
reload(void)
{
	keyring_free(kr);
	kr = NULL;
	load();
}

static void
test_repair(void)
{
	struct keyring_info  info;
	struct token_keyspec spec;
	token_obj_t	     priv, pub;
	uint32_t	     newv;
	char		     dead[128], label[TOKEN_LABEL_MAX];
	uint32_t	     keys, versions, got;

	snprintf(dead, sizeof(dead), "testhost/%ld/1", fixture_dead_pid());
	/* a create that died after its intent: the key is removed */
	write_intent("half", 1, dead);
	/* a rotation of k2 that died after making its key pair */
	write_intent("k2", 3, dead);
	kr_key_label(label, sizeof(label), "k2", 3);
	memset(&spec, 0, sizeof(spec));
	spec.type = HK_KEY_EC_P256;
	spec.label = label;
	spec.id = (const uint8_t *)label;
	spec.id_len = strlen(label);
	PASS(token_generate(sess(), &spec, &priv, &pub));
	EQ_INT(objects_labelled(label), 2);
	/* a rotation on another machine, begun just now: left alone */
	write_intent("k1", 4, "otherhost/1/1");
	reload();
	FAIL(keyring_info(ring(), "half", &info), HK_ERR_NOT_FOUND);
	keyring_info_clear(&info);
	PASS(keyring_info(ring(), "k2", &info));
	EQ_INT(info.nversions, 2);
	keyring_info_clear(&info);
	PASS(keyring_info(ring(), "k1", &info));
	EQ_INT(info.nversions, 3); /* v4 is being made: invisible */
	keyring_info_clear(&info);
	FAIL(signer("k1", 4, &got), HK_ERR_NOT_FOUND);
	keyring_totals(ring(), &keys, &versions);
	EQ_INT(keys, 2);
	/* the repair is durable: a second load finds nothing to do */
	reload();
	PASS(keyring_info(ring(), "k2", &info));
	EQ_INT(info.nversions, 2);
	keyring_info_clear(&info);
	EQ_INT(objects_labelled(label), 0);
	/* the intent of k1 v4 survives: a rotation expecting v3 loses */
	FAIL(keyring_rotate(ring(), sess(), "k1", 3, 0, &newv),
	    HK_ERR_PRECONDITION);
}

static void
test_auto_rotate(void)
{
	struct keyring_policy_change ch;
	struct keyring_info	     info;
	uint64_t		     every = 3600;

	memset(&ch, 0, sizeof(ch));
	ch.rotate_every_s = &every;
	PASS(keyring_policy(ring(), sess(), "k2", &ch));
	PASS(keyring_info(ring(), "k2", &info));
	EQ_INT(info.primary, 2);
	EQ_INT(info.next_rotation_ms,
	    info.versions[1].activated_ms + every * 1000);
	watch("k2");
	PASS(keyring_tick(ring(), sess(),
	    info.versions[1].activated_ms + every * 1000 - 1, NULL));
	EQ_INT(primary_of("k2"), 2);
	PASS(keyring_tick(ring(), sess(),
	    info.versions[1].activated_ms + every * 1000, NULL));
	keyring_info_clear(&info);
	EQ_INT(primary_of("k2"), 3);
	EQ_MOVED(1, "k2", 3, LC_EV_ROTATE);
	/* with the policy's overlap (1 h), v2 still signs */
	EQ_INT(state_of("k2", 2), LC_ACTIVE);
}

/* With no destruction delay, destroy deletes the objects at once. */
static void
test_destroy_now(void)
{
	char label[TOKEN_LABEL_MAX];

	delay_s = 0;
	reload();
	kr_key_label(label, sizeof(label), "k2", 1);
	EQ_INT(objects_labelled(label), 1);
	PASS(keyring_destroy(ring(), sess(), "k2", 1));
	EQ_INT(state_of("k2", 1), LC_DESTROYED);
	EQ_INT(objects_labelled(label), 0);
	reload();
	EQ_INT(state_of("k2", 1), LC_DESTROYED);
}

/* A scheduled destruction cancelled: disabled, same objects; not once
 * the delay is over. */
static void
test_cancel(void)
{
	char	 label[TOKEN_LABEL_MAX];
	uint32_t newv;
	uint64_t now = hk_now_ms();

	delay_s = DELAY_S;
	reload();
	PASS(keyring_create(ring(), sess(), "k3", ALG_P256));
	PASS(keyring_rotate(ring(), sess(), "k3", 1, 0, &newv));
	kr_key_label(label, sizeof(label), "k3", 1);
	FAIL(keyring_cancel_destroy(ring(), sess(), "k3", 1),
	    HK_ERR_PRECONDITION); /* verify-only: nothing to cancel */
	PASS(keyring_destroy(ring(), sess(), "k3", 1));
	PASS(keyring_cancel_destroy(ring(), sess(), "k3", 1));
	EQ_INT(state_of("k3", 1), LC_DISABLED);
	EQ_INT(objects_labelled(label), 1);
	FAIL(keyring_cancel_destroy(ring(), sess(), "k3", 1),
	    HK_ERR_PRECONDITION);
	FAIL(
	    keyring_cancel_destroy(ring(), sess(), "k3", 9), HK_ERR_NOT_FOUND);
	/* a cancelled destruction has no timer left */
	watch("k3");
	PASS(
	    keyring_tick(ring(), sess(), now + DELAY_S * 1000 + DAY_MS, NULL));
	EQ_INT(state_of("k3", 1), LC_DISABLED);
	EQ_INT(moved.n, 0);
	PASS(keyring_destroy(ring(), sess(), "k3", 1));
	PASS(keyring_tick(
	    ring(), sess(), hk_now_ms() + DELAY_S * 1000 + DAY_MS, NULL));
	EQ_INT(state_of("k3", 1), LC_DESTROYED);
	EQ_MOVED(1, "k3", 1, LC_EV_DELAY_END);
	EQ_INT(objects_labelled(label), 0);
	FAIL(keyring_cancel_destroy(ring(), sess(), "k3", 1),
	    HK_ERR_PRECONDITION);
}

/* Emergency rollover: every older version disabled in one write. */
static void
test_emergency(void)
{
	uint32_t newv, got;

	PASS(keyring_create(ring(), sess(), "k4", ALG_P256));
	PASS(keyring_rotate(ring(), sess(), "k4", 1, 0, &newv));
	PASS(keyring_rotate(
	    ring(), sess(), "k4", 2, KEYRING_ROTATE_STAGE, &newv));
	FAIL(keyring_rotate(ring(), sess(), "k4", 3,
		 KEYRING_ROTATE_STAGE | KEYRING_ROTATE_EMERGENCY, &newv),
	    HK_ERR_INVALID);
	PASS(keyring_rotate(
	    ring(), sess(), "k4", 3, KEYRING_ROTATE_EMERGENCY, &newv));
	EQ_INT(newv, 4);
	EQ_INT(state_of("k4", 1), LC_DISABLED);
	EQ_INT(state_of("k4", 2), LC_DISABLED);
	EQ_INT(state_of("k4", 3), LC_DISABLED);
	EQ_INT(state_of("k4", 4), LC_ACTIVE);
	FAIL(signer("k4", 2, &got), HK_ERR_PRECONDITION);
	PASS(signer("k4", 0, &got));
	EQ_INT(got, 4);
	/* a resent emergency expecting v3 lost: nothing more */
	FAIL(keyring_rotate(
		 ring(), sess(), "k4", 3, KEYRING_ROTATE_EMERGENCY, &newv),
	    HK_ERR_PRECONDITION);
	reload();
	EQ_INT(state_of("k4", 3), LC_DISABLED);
	EQ_INT(primary_of("k4"), 4);
}

static void
test_close(void)
{
	keyring_free(kr);
	kr = NULL;
	fixture_close();
}

TEST_LIST = {
	{ "create", test_create },
	{ "rotate_cas", test_rotate_cas },
	{ "stage_promote", test_stage_promote },
	{ "disable", test_disable },
	{ "destroy_tick", test_destroy_tick },
	{ "overlap_grace", test_overlap_grace },
	{ "verifier_pubkey", test_verifier_pubkey },
	{ "reload", test_reload },
	{ "stats", test_stats },
	{ "repair", test_repair },
	{ "auto_rotate", test_auto_rotate },
	{ "destroy_now", test_destroy_now },
	{ "cancel", test_cancel },
	{ "emergency", test_emergency },
	{ "close", test_close },
	{ NULL, NULL },
};

TEST_MAIN
