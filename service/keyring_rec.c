/*
 * keyring_rec.c: a key's record in the token (StoredKey of store.proto,
 * in a CKO_DATA object) and the state of its key objects (CKA_SIGN, the
 * session copies).  See keyring_int.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "hk_err.h"
#include "keyring_int.h"
#include "log.h"
#include "wire.h"
#include "store.h"
#include "store.pb-c.h"

void
kr_rec_free(struct kr_rec *rec)
{
	free(rec->v);
	free(rec->blob);
	memset(rec, 0, sizeof(*rec));
}

/*
 * Gives v its own copy of the public key its record names (once: a
 * version's key never changes), and points the record at it.  The caller
 * holds the keyring's write lock or v is not yet published.
 */
int
kr_version_own_spki(struct kr_version *v)
{
	if (v->spki == NULL && v->rec.spki != NULL && v->rec.spki_len > 0) {
		if ((v->spki = malloc(v->rec.spki_len)) == NULL) {
			v->rec.spki = NULL;
			v->rec.spki_len = 0;
			return HK_ERR_NOMEM;
		}
		memcpy(v->spki, v->rec.spki, v->rec.spki_len);
		v->spki_len = v->rec.spki_len;
	}
	v->rec.spki = v->spki;
	v->rec.spki_len = v->spki_len;
	return 0;
}

void
kr_version_free(struct kr_version *v)
{
	if (v != NULL) {
		EVP_PKEY_free(v->pkey);
		free(v->spki);
		free(v);
	}
}

int
kr_rec_from_key(const struct kr_key *k, struct kr_rec *rec, size_t extra)
{
	size_t i;

	memset(rec, 0, sizeof(*rec));
	memcpy(rec->name, k->name, sizeof(rec->name));
	rec->alg = k->alg;
	rec->generation = k->generation;
	rec->created_ms = k->created_ms;
	rec->policy = k->policy;
	if ((rec->v = calloc(k->nv + extra + 1, sizeof(*rec->v))) == NULL) {
		return HK_ERR_NOMEM;
	}
	for (i = 0; i < k->nv; i++) {
		rec->v[i] = k->v[i]->rec;
	}
	rec->nv = k->nv;
	return 0;
}

static void
version_to_store(const struct kr_vrec *v, Hsmkey__Store__V1__StoredVersion *sv)
{
	hsmkey__store__v1__stored_version__init(sv);
	sv->version = v->version;
	sv->state = convert_state(v->state);
	sv->created_ms = v->created_ms;
	sv->activated_ms = v->activated_ms;
	sv->retire_ms = v->retire_ms;
	sv->creating = v->creating;
	sv->intent_owner = (char *)v->owner;
	sv->intent_ms = v->intent_ms;
	/* a destroyed version verifies nothing: its key goes, and records
	 * stay small however many versions a key has had */
	if (v->spki != NULL && v->state != LC_DESTROYED) {
		sv->public_key.data = (uint8_t *)v->spki;
		sv->public_key.len = v->spki_len;
	}
}

int
kr_rec_store(struct token_session *s, struct kr_rec *rec, token_obj_t *metap)
{
	Hsmkey__Store__V1__StoredKey sk = HSMKEY__STORE__V1__STORED_KEY__INIT;
	Hsmkey__V1__Policy	     pol = HSMKEY__V1__POLICY__INIT;
	Hsmkey__Store__V1__StoredVersion *sv = NULL, **svp = NULL;
	char				  label[TOKEN_LABEL_MAX];
	size_t				  i;
	int				  r = HK_ERR_NOMEM;

	if ((sv = calloc(rec->nv + 1, sizeof(*sv))) == NULL ||
	    (svp = calloc(rec->nv + 1, sizeof(*svp))) == NULL) {
		goto out;
	}
	for (i = 0; i < rec->nv; i++) {
		version_to_store(&rec->v[i], &sv[i]);
		svp[i] = &sv[i];
	}
	pol.sign_overlap_s = rec->policy.sign_overlap_s;
	pol.verify_grace_s = rec->policy.verify_grace_s;
	pol.rotate_every_s = rec->policy.rotate_every_s;
	pol.expires_ms = rec->policy.expires_ms;
	sk.generation = rec->generation + 1;
	sk.name = rec->name;
	sk.alg = hk_alg_to_wire(rec->alg);
	sk.created_ms = rec->created_ms;
	sk.policy = &pol;
	sk.n_versions = rec->nv;
	sk.versions = svp;
	snprintf(label, sizeof(label), KR_META_PREFIX "%s", rec->name);
	if ((r = store_replace(s, label, &sk.base, metap)) != 0) {
		goto out;
	}
	rec->generation++;
out:
	free(sv);
	free(svp);
	return r;
}

/* Version i of a decoded record; its public key goes to rec->blob at
 * *offp. */
static int
version_from_store(const Hsmkey__Store__V1__StoredVersion *sv, size_t i,
    struct kr_rec *rec, size_t *offp)
{
	struct kr_vrec *v = &rec->v[i];

	if (sv->public_key.len > 0) {
		memcpy(rec->blob + *offp, sv->public_key.data,
		    sv->public_key.len);
		v->spki = rec->blob + *offp;
		v->spki_len = sv->public_key.len;
		*offp += sv->public_key.len;
	}
	/* a stored record: the one place a state is set without a move */
	if (sv->version != i + 1 ||
	    convert_state_from(sv->state, &v->state) != 0) {
		return HK_ERR_DECODE;
	}
	v->version = sv->version;
	v->created_ms = sv->created_ms;
	v->activated_ms = sv->activated_ms;
	v->retire_ms = sv->retire_ms;
	v->creating = sv->creating;
	v->intent_ms = sv->intent_ms;
	snprintf(v->owner, sizeof(v->owner), "%s", sv->intent_owner);
	return 0;
}

int
kr_rec_decode(const uint8_t *buf, size_t len, struct kr_rec *rec)
{
	Hsmkey__Store__V1__StoredKey *sk;
	size_t			      i, total;
	int			      r = HK_ERR_DECODE;

	memset(rec, 0, sizeof(*rec));
	sk = hsmkey__store__v1__stored_key__unpack(NULL, len, buf);
	if (sk == NULL) {
		return HK_ERR_DECODE;
	}
	if (!hk_valid_key_name(sk->name) ||
	    hk_alg_name(hk_alg_from_wire(sk->alg)) == NULL ||
	    sk->n_versions > KR_MAX_VERSIONS) {
		goto out;
	}
	snprintf(rec->name, sizeof(rec->name), "%s", sk->name);
	rec->alg = hk_alg_from_wire(sk->alg);
	rec->generation = sk->generation;
	rec->created_ms = sk->created_ms;
	if (sk->policy != NULL) {
		rec->policy.sign_overlap_s = sk->policy->sign_overlap_s;
		rec->policy.verify_grace_s = sk->policy->verify_grace_s;
		rec->policy.rotate_every_s = sk->policy->rotate_every_s;
		rec->policy.expires_ms = sk->policy->expires_ms;
	}
	r = HK_ERR_NOMEM;
	if ((rec->v = calloc(sk->n_versions + 1, sizeof(*rec->v))) == NULL) {
		goto out;
	}
	for (i = 0, total = 0; i < sk->n_versions; i++) {
		total += sk->versions[i]->public_key.len;
	}
	if (total > 0 && (rec->blob = malloc(total)) == NULL) {
		goto out;
	}
	for (i = 0, total = 0; i < sk->n_versions; i++) {
		if ((r = version_from_store(
			 sk->versions[i], i, rec, &total)) != 0) {
			goto out;
		}
	}
	rec->nv = sk->n_versions;
	r = 0;
out:
	if (r != 0) {
		kr_rec_free(rec);
	}
	hsmkey__store__v1__stored_key__free_unpacked(sk, NULL);
	return r;
}

void
kr_make_copy(struct keyring *kr, struct token_session *s, struct kr_version *v)
{
	token_obj_t copy;
	int	    r;

	if (v->copy != TOKEN_OBJ_NONE || !kr->copies || v->no_copy ||
	    !v->token_can_sign || v->priv == TOKEN_OBJ_NONE ||
	    !lifecycle_may_sign(v->rec.state)) {
		return;
	}
	if ((r = token_copy_session(s, v->priv, &copy)) != 0) {
		log_info("key %s v%" PRIu32 ": no session copy (%s); signing "
			 "with the token object",
		    v->key->name, v->rec.version, hk_strerror(r));
		v->no_copy = 1;
		return;
	}
	pthread_rwlock_wrlock(&kr->lock);
	v->copy = copy;
	pthread_rwlock_unlock(&kr->lock);
}

/* Destroys the session copy of v (it may not sign any more). */
static void
drop_copy(struct keyring *kr, struct token_session *s, struct kr_version *v)
{
	token_obj_t old;
	int	    r;

	pthread_rwlock_wrlock(&kr->lock);
	old = v->copy;
	v->copy = TOKEN_OBJ_NONE;
	pthread_rwlock_unlock(&kr->lock);
	if ((r = token_destroy(s, old)) != 0 && r != HK_ERR_NOT_FOUND) {
		log_err_r(r,
		    "key %s v%" PRIu32 ": cannot destroy its session "
		    "copy",
		    v->key->name, v->rec.version);
	}
}

/*
 * Makes the token match each version's state: CKA_SIGN on the private key
 * (where the token cannot, the service's own check still refuses), and a
 * session copy of the private key for each active version, which signs
 * faster in SoftHSM (it re-reads a token object's file at every use).  The
 * copy is a session object inside the token (C_CopyObject with CKA_TOKEN
 * false): the key never leaves the token, and the copy is destroyed as soon
 * as its version stops being active.
 */
void
kr_sync_can_sign(struct keyring *kr, struct token_session *s, struct kr_key *k,
    int make_copies)
{
	size_t i;
	int    want, r;

	for (i = 0; i < k->nv; i++) {
		struct kr_version *v = k->v[i];

		want = lifecycle_may_sign(v->rec.state) &&
		    v->priv != TOKEN_OBJ_NONE;
		if (!want && v->copy != TOKEN_OBJ_NONE) {
			drop_copy(kr, s, v);
		}
		if (v->priv == TOKEN_OBJ_NONE) {
			continue;
		}
		if (v->token_can_sign != want) {
			if ((r = token_set_can_sign(s, v->priv, want)) == 0) {
				v->token_can_sign = want;
			} else if (r != HK_ERR_UNSUPPORTED) {
				log_err_r(r,
				    "key %s v%" PRIu32 ": cannot set CKA_SIGN",
				    k->name, v->rec.version);
			}
		}
		if (want && make_copies) {
			kr_make_copy(kr, s, v);
		}
	}
}
