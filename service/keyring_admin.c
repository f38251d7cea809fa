/*
 * keyring_admin.c: the changes to keys (create, rotate, promote, policy,
 * disable, destroy) and the tick's scheduled ones (see keyring.h).  Each
 * runs under the admin mutex, writes the token first and publishes after;
 * every state change is a move of lifecycle.h's table.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "envelope.h"
#include "hk_err.h"
#include "keyring_int.h"
#include "log.h"
#include "wire.h"
#include "testhooks.h"

/* The newest active version of rec, 0 if none. */
static uint32_t
rec_primary(const struct kr_rec *rec)
{
	size_t i;

	for (i = rec->nv; i > 0; i--) {
		if (rec->v[i - 1].state == LC_ACTIVE &&
		    !rec->v[i - 1].creating) {
			return rec->v[i - 1].version;
		}
	}
	return 0;
}

/* Moves v by ev (lifecycle.h); *changedp becomes 1 if its state changed.
 * HK_ERR_PRECONDITION for a move the table refuses. */
static int
vrec_move(struct kr_vrec *v, enum lc_event ev, int *changedp)
{
	enum lc_state old = v->state;
	int	      r;

	if ((r = lifecycle_apply(&v->state, ev)) != 0) {
		return r;
	}
	if (v->state != old) {
		*changedp = 1;
	}
	return 0;
}

/* Retires every active version but keep, per the key's overlap and grace:
 * with no overlap its overlap ends at once. */
static void
rec_retire_others(struct kr_rec *rec, uint32_t keep, uint64_t now)
{
	size_t i;
	int    changed = 0;

	for (i = 0; i < rec->nv; i++) {
		struct kr_vrec *v = &rec->v[i];

		if (v->version == keep || v->state != LC_ACTIVE) {
			continue;
		}
		if (rec->policy.sign_overlap_s > 0) {
			if (v->retire_ms == 0) {
				v->retire_ms = hk_time_add_s(
				    now, rec->policy.sign_overlap_s);
			}
		} else if (vrec_move(v, LC_EV_OVERLAP_END, &changed) == 0) {
			v->retire_ms =
			    hk_time_add_s(now, rec->policy.verify_grace_s);
		}
	}
}

/* Emergency rollover: every version but keep that still signs, verifies
 * or waits to (pending, active, verify-only) is disabled at once. */
static void
rec_disable_others(struct kr_rec *rec, uint32_t keep)
{
	size_t i;
	int    changed;

	for (i = 0; i < rec->nv; i++) {
		struct kr_vrec *v = &rec->v[i];

		changed = 0;
		if (v->version == keep || v->creating ||
		    vrec_move(v, LC_EV_EMERGENCY, &changed) != 0) {
			continue;
		}
		if (changed) {
			v->retire_ms = 0; /* a destroy's date stays */
		}
	}
}

/* Publishes rec into k (new version structs for versions k lacks).  The
 * caller holds the admin mutex; this takes the write lock. */
static int
apply_rec(struct keyring *kr, struct kr_key *k, const struct kr_rec *rec,
    token_obj_t meta)
{
	struct kr_version **nv = NULL;
	size_t		    i, cap = k->vcap;
	int		    r = 0;

	if (rec->nv > k->vcap) {
		if ((nv = calloc(rec->nv, sizeof(*nv))) == NULL) {
			return HK_ERR_NOMEM;
		}
		for (i = k->vcap; i < rec->nv; i++) {
			if ((nv[i] = calloc(1, sizeof(*nv[i]))) == NULL) {
				r = HK_ERR_NOMEM;
				goto out;
			}
			nv[i]->key = k;
		}
	}
	pthread_rwlock_wrlock(&kr->lock);
	if (nv != NULL) {
		for (i = 0; i < k->vcap; i++) {
			nv[i] = k->v[i];
		}
		free(k->v);
		k->v = nv;
		k->vcap = rec->nv;
		nv = NULL;
	}
	/* fewer versions than in memory: withdrawn intents (rotate_locked) */
	kr->nversions = kr->nversions - k->nv + rec->nv;
	k->nv = rec->nv;
	for (i = 0; i < rec->nv; i++) {
		k->v[i]->rec = rec->v[i];
		if (kr_version_own_spki(k->v[i]) != 0) {
			log_warnx("key %s v%zu: no memory for its public key",
			    k->name, i + 1);
		}
	}
	k->generation = rec->generation;
	k->policy = rec->policy;
	k->meta = meta;
	pthread_rwlock_unlock(&kr->lock);
out:
	if (nv != NULL) {
		for (i = cap; i < rec->nv; i++) {
			kr_version_free(nv[i]);
		}
		free(nv);
	}
	return r;
}

/* ---- new versions ----------------------------------------------------- */

/* A version's new key pair. */
struct newkey {
	token_obj_t priv;
	token_obj_t pub;  /* kept only as older hsmkey did (test hook) */
	uint8_t	   *spki; /* SubjectPublicKeyInfo DER, owned */
	size_t	    spki_len;
};

/* Destroys what keygen() made and frees it. */
static void
newkey_discard(struct token_session *s, struct newkey *nk)
{
	if (nk->priv != TOKEN_OBJ_NONE) {
		token_destroy(s, nk->priv);
	}
	if (nk->pub != TOKEN_OBJ_NONE) {
		token_destroy(s, nk->pub);
	}
	free(nk->spki);
	memset(nk, 0, sizeof(*nk));
}

/*
 * Generates a version's key pair: the private key in the token, the public
 * key as a session object that is read (nk->spki) and destroyed at once:
 * the record keeps it.
 */
static int
keygen(struct token_session *s, const char *name, hk_alg alg, uint32_t version,
    int can_sign, uint64_t now, struct newkey *nk)
{
	struct token_keyspec	  spec;
	const struct hk_alg_info *ai;
	char			  label[TOKEN_LABEL_MAX];
	token_obj_t		  pub = TOKEN_OBJ_NONE;
	EVP_PKEY		 *pkey = NULL;
	uint8_t			 *der = NULL;
	size_t			  len = 0;
	int			  r;

	memset(nk, 0, sizeof(*nk));
	kr_key_label(label, sizeof(label), name, version);
	memset(&spec, 0, sizeof(spec));
	if ((ai = hk_alg_info(alg)) == NULL) {
		return HK_ERR_INVALID;
	}
	spec.type = ai->key;
	spec.rsa_bits = ai->rsa_bits;
	spec.label = label;
	spec.id = (const uint8_t *)label;
	spec.id_len = strlen(label);
	spec.start_ms = now;
	spec.can_sign = can_sign;
	spec.pub_session = !testhooks_public_objects();
	if ((r = token_generate(s, &spec, &nk->priv, &pub)) != 0) {
		return r;
	}
	if (testhooks_public_objects()) {
		nk->pub = pub; /* the old way: kept in the token, not read */
		return 0;
	}
	/* token_pubkey_der() gives SPKI DER; it must parse before it is
	 * the only copy */
	if ((r = token_pubkey_der(s, pub, &der, &len)) == 0 &&
	    (r = crypto_pubkey_parse(der, len, &pkey)) == 0) {
		nk->spki = der;
		nk->spki_len = len;
		der = NULL;
	}
	EVP_PKEY_free(pkey);
	free(der);
	token_destroy(s, pub);
	if (r != 0) {
		newkey_discard(s, nk);
	}
	return r;
}

/* The intent of a new version: pending while it is being made, invisible
 * to every lookup (lifecycle.h). */
static void
set_intent(
    struct keyring *kr, struct kr_vrec *v, uint32_t version, uint64_t now)
{
	memset(v, 0, sizeof(*v));
	v->version = version;
	(void)lifecycle_next(LC_NONE, LC_EV_STAGE, &v->state);
	v->created_ms = now;
	v->creating = 1;
	v->intent_ms = now;
	snprintf(v->owner, sizeof(v->owner), "%s", kr->instance);
}

/* Commits the made version v (its key nk) in the state ev gives a new
 * version. */
static void
commit_version(
    struct kr_vrec *v, const struct newkey *nk, enum lc_event ev, uint64_t now)
{
	v->spki = nk->spki;
	v->spki_len = nk->spki_len;
	v->creating = 0;
	v->owner[0] = '\0';
	v->intent_ms = 0;
	(void)lifecycle_next(LC_NONE, ev, &v->state);
	if (v->state == LC_ACTIVE) {
		v->activated_ms = now;
	}
}

/* ---- create ----------------------------------------------------------- */

/* Publishes the committed key of rec with its first version's key nk.
 * The caller holds the admin mutex. */
static int
create_publish(struct keyring *kr, struct token_session *s,
    const struct kr_rec *rec, token_obj_t meta, const struct newkey *nk)
{
	struct kr_key	  *k;
	struct kr_version *v;
	int		   r;

	/* (committed in the token: without memory, the next start sees it) */
	if ((k = kr_key_new(rec, meta)) == NULL) {
		return HK_ERR_NOMEM;
	}
	v = k->v[0]; /* it copied the public key */
	v->priv = nk->priv;
	v->pub = nk->pub;
	v->token_can_sign = 1;
	pthread_rwlock_wrlock(&kr->lock);
	if ((r = kr_insert_key(kr, k)) == 0) {
		kr->nversions++;
	}
	pthread_rwlock_unlock(&kr->lock);
	if (r != 0) {
		kr_key_free(k);
		return r;
	}
	kr_sync_can_sign(kr, s, k, 1);
	return 0;
}

/* Writes the intent of key rec, makes its key pair and commits it; on
 * failure nothing of it is left in the token.  The caller holds the admin
 * mutex. */
static int
create_in_token(struct keyring *kr, struct token_session *s,
    struct kr_rec *rec, token_obj_t *metap, struct newkey *nk)
{
	uint64_t now = rec->created_ms;
	int	 r;

	set_intent(kr, &rec->v[0], 1, now);
	/* 1. intent, 2. key pair, 3. commit */
	if ((r = kr_rec_store(s, rec, metap)) != 0) {
		return r;
	}
	if ((r = keygen(s, rec->name, rec->alg, 1, 1, now, nk)) != 0) {
		log_err_r(r, "create %s: key generation failed", rec->name);
		goto rollback;
	}
	commit_version(&rec->v[0], nk, LC_EV_CREATE, now);
	if ((r = kr_rec_store(s, rec, metap)) != 0) {
		goto rollback;
	}
	return 0;
rollback:
	newkey_discard(s, nk);
	token_destroy(s, *metap);
	*metap = TOKEN_OBJ_NONE;
	return r;
}

int
keyring_create(
    struct keyring *kr, struct token_session *s, const char *name, hk_alg alg)
{
	struct kr_rec rec;
	struct newkey nk;
	token_obj_t   meta = TOKEN_OBJ_NONE;
	int	      r = HK_ERR_NOMEM, exists;

	memset(&rec, 0, sizeof(rec));
	memset(&nk, 0, sizeof(nk));
	if (alg == HK_ALG_UNSPECIFIED) {
		alg = HK_ALG_ECDSA_P256;
	}
	if (!hk_valid_key_name(name) || hk_alg_name(alg) == NULL) {
		return HK_ERR_INVALID;
	}
	pthread_mutex_lock(&kr->admin);
	pthread_rwlock_rdlock(&kr->lock);
	exists = kr_find_key(kr, name) != NULL;
	pthread_rwlock_unlock(&kr->lock);
	if (exists) {
		r = HK_ERR_EXISTS;
		goto out;
	}
	snprintf(rec.name, sizeof(rec.name), "%s", name);
	rec.alg = alg;
	rec.created_ms = hk_now_ms();
	rec.policy.verify_grace_s = kr->default_grace_s;
	if ((rec.v = calloc(1, sizeof(*rec.v))) == NULL) {
		goto out;
	}
	rec.nv = 1;
	if ((r = create_in_token(kr, s, &rec, &meta, &nk)) != 0 ||
	    (r = create_publish(kr, s, &rec, meta, &nk)) != 0) {
		goto out;
	}
	log_info("created key %s (%s)", name, hk_alg_name(alg));
out:
	pthread_mutex_unlock(&kr->admin);
	kr_rec_free(&rec);
	free(nk.spki);
	return r;
}

/* ---- rotate ----------------------------------------------------------- */

/* Commits the made version nv of rec (key nk, taken) and publishes it in
 * k.  The caller holds the admin mutex. */
static int
rotate_commit(struct keyring *kr, struct token_session *s, struct kr_key *k,
    struct kr_rec *rec, token_obj_t *metap, struct newkey *nk, int flags)
{
	struct kr_vrec *nv = &rec->v[rec->nv - 1];
	uint64_t	now = nv->created_ms;
	int		r, stage = (flags & KEYRING_ROTATE_STAGE) != 0;

	commit_version(nv, nk, stage ? LC_EV_STAGE : LC_EV_ROTATE, now);
	if (nv->state == LC_ACTIVE && (flags & KEYRING_ROTATE_EMERGENCY)) {
		rec_disable_others(rec, nv->version);
	} else if (nv->state == LC_ACTIVE) {
		rec_retire_others(rec, nv->version, now);
	}
	if ((r = kr_rec_store(s, rec, metap)) != 0) {
		newkey_discard(s, nk);
		return r;
	}
	/* apply_rec() copies the public key into the version */
	pthread_rwlock_wrlock(&kr->lock);
	k->v[nv->version - 1]->priv = nk->priv;
	k->v[nv->version - 1]->pub = nk->pub;
	k->v[nv->version - 1]->token_can_sign = !stage;
	pthread_rwlock_unlock(&kr->lock);
	return apply_rec(kr, k, rec, *metap);
}

/* Runs with the admin mutex held. */
static int
rotate_locked(struct keyring *kr, struct token_session *s, struct kr_key *k,
    uint32_t expect, int flags, uint32_t *newp)
{
	struct kr_rec rec;
	struct newkey nk;
	token_obj_t   meta = k->meta;
	uint64_t      now = hk_now_ms();
	uint32_t      version = (uint32_t)k->nv + 1;
	int	      r, stage = (flags & KEYRING_ROTATE_STAGE) != 0;

	memset(&nk, 0, sizeof(nk));
	if (expect != 0 && expect != k->nv) {
		log_info("rotate %s: expected v%" PRIu32 " but the newest is "
			 "v%zu",
		    k->name, expect, k->nv);
		return HK_ERR_PRECONDITION;
	}
	if (k->nv >= KR_MAX_VERSIONS) {
		return HK_ERR_EXHAUSTED;
	}
	if ((r = kr_rec_from_key(k, &rec, 1)) != 0) {
		return r;
	}
	set_intent(kr, &rec.v[rec.nv++], version, now);
	/* the intent is in the token: publish it (nothing uses it yet) */
	if ((r = kr_rec_store(s, &rec, &meta)) != 0 ||
	    (r = apply_rec(kr, k, &rec, meta)) != 0) {
		goto out;
	}
	if ((r = keygen(s, k->name, k->alg, version, !stage, now, &nk)) != 0) {
		log_err_r(r, "rotate %s: key generation failed", k->name);
		rec.nv--;
		if (kr_rec_store(s, &rec, &meta) == 0) {
			apply_rec(kr, k, &rec, meta);
		}
		goto out;
	}
	if ((r = rotate_commit(kr, s, k, &rec, &meta, &nk, flags)) != 0) {
		goto out;
	}
	kr_sync_can_sign(kr, s, k, 1);
	log_info("rotated key %s to v%" PRIu32 "%s", k->name, version,
	    stage ? " (staged: pending)"
		: (flags & KEYRING_ROTATE_EMERGENCY)
		? " (emergency: every older version disabled)"
		: "");
	*newp = version;
out:
	kr_rec_free(&rec);
	free(nk.spki);
	return r;
}

int
keyring_rotate(struct keyring *kr, struct token_session *s, const char *name,
    uint32_t expect, int flags, uint32_t *newp)
{
	struct kr_key *k;
	int	       r;

	*newp = 0;
	if ((flags & KEYRING_ROTATE_STAGE) &&
	    (flags & KEYRING_ROTATE_EMERGENCY)) {
		return HK_ERR_INVALID;
	}
	pthread_mutex_lock(&kr->admin);
	pthread_rwlock_rdlock(&kr->lock);
	k = kr_find_key(kr, name);
	pthread_rwlock_unlock(&kr->lock);
	r = k == NULL ? HK_ERR_NOT_FOUND
		      : rotate_locked(kr, s, k, expect, flags, newp);
	pthread_mutex_unlock(&kr->admin);
	return r;
}

/* ---- changes of one version ------------------------------------------- */

/*
 * Takes the admin mutex, looks up name and copies its record; with a
 * version, *vp points at that version in the copy.  On failure the mutex is
 * released again; on success admin_commit() releases it.
 */
static int
admin_begin(struct keyring *kr, const char *name, uint32_t version,
    struct kr_key **kp, struct kr_rec *rec, struct kr_vrec **vp)
{
	struct kr_key *k;
	int	       r;

	memset(rec, 0, sizeof(*rec));
	pthread_mutex_lock(&kr->admin);
	pthread_rwlock_rdlock(&kr->lock);
	k = kr_find_key(kr, name);
	pthread_rwlock_unlock(&kr->lock);
	if (k == NULL) {
		pthread_mutex_unlock(&kr->admin);
		return HK_ERR_NOT_FOUND;
	}
	*kp = k;
	if ((r = kr_rec_from_key(k, rec, 0)) != 0) {
		pthread_mutex_unlock(&kr->admin);
		return r;
	}
	if (vp == NULL) {
		return 0;
	}
	if (version == 0 || version > rec->nv ||
	    rec->v[version - 1].creating) {
		pthread_mutex_unlock(&kr->admin);
		kr_rec_free(rec);
		return HK_ERR_NOT_FOUND;
	}
	*vp = &rec->v[version - 1];
	return 0;
}

/* Stores rec if changed, publishes it, releases the admin mutex. */
static int
admin_commit(struct keyring *kr, struct token_session *s, struct kr_key *k,
    struct kr_rec *rec, int changed, int r)
{
	token_obj_t meta = k->meta;

	if (r == 0 && changed) {
		if ((r = kr_rec_store(s, rec, &meta)) == 0) {
			r = apply_rec(kr, k, rec, meta);
		}
		if (r == 0) {
			kr_sync_can_sign(kr, s, k, 1);
		}
	}
	pthread_mutex_unlock(&kr->admin);
	kr_rec_free(rec);
	return r;
}

int
keyring_promote(struct keyring *kr, struct token_session *s, const char *name,
    uint32_t version)
{
	struct kr_key  *k;
	struct kr_rec	rec;
	struct kr_vrec *v;
	uint64_t	now = hk_now_ms();
	int		r, changed = 0;

	if ((r = admin_begin(kr, name, version, &k, &rec, &v)) != 0) {
		return r;
	}
	if ((r = vrec_move(v, LC_EV_PROMOTE, &changed)) != 0) {
		goto out; /* not pending */
	}
	if (!changed) {
		/* active already: done if it is the primary (idempotent) */
		r = rec_primary(&rec) == version ? 0 : HK_ERR_PRECONDITION;
		goto out;
	}
	if (version < rec_primary(&rec)) {
		/* a newer version already signs */
		r = HK_ERR_PRECONDITION;
		goto out;
	}
	v->activated_ms = now;
	v->retire_ms = 0;
	rec_retire_others(&rec, version, now);
	log_info("promoted key %s v%" PRIu32, name, version);
out:
	return admin_commit(kr, s, k, &rec, changed, r);
}

const char *
keyring_policy_too_long(const struct keyring_policy_change *ch)
{
	const struct {
		const char     *name;
		const uint64_t *v;
	} d[] = {
		{ "sign_overlap", ch->sign_overlap_s },
		{ "verify_grace", ch->verify_grace_s },
		{ "rotate_every", ch->rotate_every_s },
	};
	size_t i;

	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		if (d[i].v != NULL && *d[i].v > HK_DURATION_MAX_S) {
			return d[i].name;
		}
	}
	return NULL;
}

int
keyring_policy(struct keyring *kr, struct token_session *s, const char *name,
    const struct keyring_policy_change *ch)
{
	struct kr_key *k;
	struct kr_rec  rec;
	int	       r;

	if (keyring_policy_too_long(ch) != NULL) {
		return HK_ERR_INVALID;
	}
	if ((r = admin_begin(kr, name, 0, &k, &rec, NULL)) != 0) {
		return r;
	}
	if (ch->sign_overlap_s != NULL) {
		rec.policy.sign_overlap_s = *ch->sign_overlap_s;
	}
	if (ch->verify_grace_s != NULL) {
		rec.policy.verify_grace_s = *ch->verify_grace_s;
	}
	if (ch->rotate_every_s != NULL) {
		rec.policy.rotate_every_s = *ch->rotate_every_s;
	}
	if (ch->expires_ms != NULL) {
		rec.policy.expires_ms = *ch->expires_ms;
	}
	log_info("policy of key %s changed", name);
	return admin_commit(kr, s, k, &rec, 1, 0);
}

/* Moves one version by ev (disable, cancel) and clears its timer. */
static int
move_version(struct keyring *kr, struct token_session *s, const char *name,
    uint32_t version, enum lc_event ev)
{
	struct kr_key  *k;
	struct kr_rec	rec;
	struct kr_vrec *v;
	int		r, changed = 0;

	if ((r = admin_begin(kr, name, version, &k, &rec, &v)) != 0) {
		return r;
	}
	if ((r = vrec_move(v, ev, &changed)) == 0 && changed) {
		v->retire_ms = 0;
		log_info("key %s v%" PRIu32 ": %s, now %s", name, version,
		    lifecycle_event_name(ev), lifecycle_state_name(v->state));
	}
	return admin_commit(kr, s, k, &rec, changed, r);
}

int
keyring_disable(struct keyring *kr, struct token_session *s, const char *name,
    uint32_t version)
{
	/* refused for a destroyed version; also cancels a scheduled
	 * destruction */
	return move_version(kr, s, name, version, LC_EV_DISABLE);
}

/* Deletes the objects of a destroyed version; the caller holds the admin
 * mutex.  An object the token fails to delete keeps its handle, and the
 * tick tries again (the version signs nothing meanwhile: its state). */
static void
destroy_objects(
    struct keyring *kr, struct token_session *s, struct kr_version *v)
{
	token_obj_t h[2] = { v->priv, v->pub };
	size_t	    i;
	int	    r, left = 0;

	for (i = 0; i < 2; i++) {
		if (h[i] == TOKEN_OBJ_NONE) {
			continue;
		}
		if ((r = token_destroy(s, h[i])) != 0 &&
		    r != HK_ERR_NOT_FOUND) {
			left = 1;
		} else {
			h[i] = TOKEN_OBJ_NONE;
		}
	}
	if (left && !v->leftover) {
		log_warnx("key %s v%" PRIu32 ": the token did not delete its "
			  "key objects; trying again every tick",
		    v->key->name, v->rec.version);
	} else if (!left && v->leftover) {
		log_info("key %s v%" PRIu32
			 ": its key objects are deleted now",
		    v->key->name, v->rec.version);
	}
	v->leftover = left;
	pthread_rwlock_wrlock(&kr->lock);
	v->priv = h[0];
	v->pub = h[1];
	pthread_rwlock_unlock(&kr->lock);
}

/* 1 if v is destroyed but the token still holds some of its objects. */
static int
objects_left(const struct kr_version *v)
{
	return v->rec.state == LC_DESTROYED &&
	    (v->priv != TOKEN_OBJ_NONE || v->pub != TOKEN_OBJ_NONE);
}

int
keyring_destroy(struct keyring *kr, struct token_session *s, const char *name,
    uint32_t version)
{
	struct kr_key  *k;
	struct kr_rec	rec;
	struct kr_vrec *v;
	uint64_t	now = hk_now_ms();
	int		r, changed = 0;

	if ((r = admin_begin(kr, name, version, &k, &rec, &v)) != 0) {
		return r;
	}
	/* refused for an active version: disable it first */
	if ((r = vrec_move(v, LC_EV_DESTROY, &changed)) == 0 && changed) {
		v->retire_ms = hk_time_add_s(now, kr->destroy_delay_s);
		if (kr->destroy_delay_s == 0 &&
		    (r = vrec_move(v, LC_EV_DELAY_END, &changed)) == 0) {
			v->retire_ms = 0;
		}
		log_info("key %s v%" PRIu32 ": %s", name, version,
		    lifecycle_state_name(v->state));
	}
	r = admin_commit(kr, s, k, &rec, changed, r);
	if (r == 0 && changed && kr->destroy_delay_s == 0) {
		pthread_mutex_lock(&kr->admin);
		destroy_objects(kr, s, k->v[version - 1]);
		pthread_mutex_unlock(&kr->admin);
	}
	return r;
}

int
keyring_cancel_destroy(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version)
{
	/* the table allows it from destroy-scheduled only: the objects are
	 * still in the token, the record keeps the same public key */
	return move_version(kr, s, name, version, LC_EV_CANCEL);
}

/* ---- the tick --------------------------------------------------------- */

/* Tells kr's observer of every version whose state rec changes from k's
 * (the moves of the timers rec_fire_timers() fired; rec is durable). */
static void
tell_moves(
    struct keyring *kr, const struct kr_key *k, const struct kr_rec *rec)
{
	enum lc_event ev;
	size_t	      i;

	for (i = 0; kr->moved != NULL && i < rec->nv && i < k->nv; i++) {
		if (rec->v[i].state != k->v[i]->rec.state &&
		    lifecycle_timer(k->v[i]->rec.state, &ev) == 0) {
			kr->moved(
			    kr->moved_arg, k->name, rec->v[i].version, ev);
		}
	}
}

/* Fires the timers of rec's versions due at now; 1 if anything changed. */
static int
rec_fire_timers(struct kr_rec *rec, uint64_t now)
{
	enum lc_event ev;
	size_t	      i;
	int	      changed = 0;

	for (i = 0; i < rec->nv; i++) {
		struct kr_vrec *v = &rec->v[i];

		if (v->creating || v->retire_ms == 0 || now < v->retire_ms ||
		    lifecycle_timer(v->state, &ev) != 0 ||
		    vrec_move(v, ev, &changed) != 0) {
			continue;
		}
		if (v->state == LC_VERIFY_ONLY) {
			/* overlap over: grace from its end */
			v->retire_ms = hk_time_add_s(
			    v->retire_ms, rec->policy.verify_grace_s);
		} else {
			v->retire_ms = 0;
		}
	}
	return changed;
}

/* 1 if the automatic rotation of k is due at now. */
static int
rotation_due(const struct kr_key *k, uint64_t now)
{
	uint64_t due = kr_next_rotation(k);

	return due != 0 && now >= due;
}

/* Applies due transitions to one key; the caller holds the admin mutex. */
static int
tick_key(struct keyring *kr, struct token_session *s, struct kr_key *k,
    uint64_t now)
{
	struct kr_rec rec;
	token_obj_t   meta = k->meta;
	size_t	      i;
	int	      r = 0;
	uint32_t      newv;

	if ((r = kr_rec_from_key(k, &rec, 0)) != 0) {
		return r;
	}
	if (rec_fire_timers(&rec, now) &&
	    (r = kr_rec_store(s, &rec, &meta)) == 0) {
		tell_moves(kr, k, &rec);
		if ((r = apply_rec(kr, k, &rec, meta)) == 0) {
			kr_sync_can_sign(kr, s, k, 1);
		}
	}
	for (i = 0; r == 0 && i < k->nv; i++) {
		if (objects_left(k->v[i])) {
			destroy_objects(kr, s, k->v[i]);
		}
	}
	kr_rec_free(&rec);
	if (r == 0 && rotation_due(k, now)) {
		log_info("key %s: automatic rotation is due", k->name);
		r = rotate_locked(kr, s, k, (uint32_t)k->nv, 0, &newv);
		if (r == 0 && kr->moved != NULL) {
			kr->moved(kr->moved_arg, k->name, newv, LC_EV_ROTATE);
		}
	}
	return r;
}

/* 1 if k has a transition or a rotation due at now; the caller holds the
 * admin mutex or the read lock. */
static int
key_due(const struct kr_key *k, uint64_t now)
{
	size_t i;

	for (i = 0; i < k->nv; i++) {
		const struct kr_vrec *v = &k->v[i]->rec;

		if ((!v->creating && v->retire_ms != 0 &&
			now >= v->retire_ms) ||
		    objects_left(k->v[i])) {
			return 1;
		}
	}
	return rotation_due(k, now);
}

int
keyring_tick(struct keyring *kr, struct token_session *s, uint64_t now_ms,
    const atomic_int *stop)
{
	struct kr_key **keys = NULL, *k;
	size_t		i, n = 0, done = 0;
	int		r = 0, r2;

	pthread_rwlock_rdlock(&kr->lock);
	if ((keys = calloc(kr->nkeys + 1, sizeof(*keys))) == NULL) {
		pthread_rwlock_unlock(&kr->lock);
		return HK_ERR_NOMEM;
	}
	for (i = 0; i < kr->nbuckets; i++) {
		for (k = kr->buckets[i]; k != NULL; k = k->next) {
			if (key_due(k, now_ms)) {
				keys[n++] = k;
			}
		}
	}
	pthread_rwlock_unlock(&kr->lock);
	/*
	 * One key at a time under the admin mutex, so that admin requests
	 * interleave; at most KR_TICK_MAX_KEYS record writes a tick (each can
	 * take a while on a large SoftHSM token), the rest next time; and
	 * never past a stop request.
	 */
	for (i = 0; i < n && done < KR_TICK_MAX_KEYS; i++) {
		if (stop != NULL && atomic_load(stop)) {
			break;
		}
		pthread_mutex_lock(&kr->admin);
		if (key_due(keys[i], now_ms)) {
			if ((r2 = tick_key(kr, s, keys[i], now_ms)) != 0) {
				log_err_r(r2,
				    "key %s: scheduled change failed",
				    keys[i]->name);
				r = r2;
			}
			done++;
		}
		pthread_mutex_unlock(&kr->admin);
	}
	free(keys);
	return r;
}
