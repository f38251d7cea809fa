/*
 * keyring.c: the index of keys and everything that reads it: lookups for
 * sign, verify and pubkey, usage counters and snapshots (see keyring.h).
 * Loading is in keyring_load.c, changes in keyring_admin.c, the records in
 * keyring_rec.c.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "crypto.h"
#include "envelope.h"
#include "hk_err.h"
#include "keyring_int.h"
#include "log.h"
#include "wire.h"

/* ---- the index -------------------------------------------------------- */

uint64_t
kr_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	}
	return h;
}

struct kr_key *
kr_find_key(struct keyring *kr, const char *name)
{
	struct kr_key *k;

	for (k = kr->buckets[kr_hash(name) % kr->nbuckets]; k != NULL;
	     k = k->next) {
		if (strcmp(k->name, name) == 0) {
			return k;
		}
	}
	return NULL;
}

int
kr_insert_key(struct keyring *kr, struct kr_key *k)
{
	struct kr_key **nb, *x, *next;
	size_t		i, n, h;

	if (kr->nkeys + 1 > kr->nbuckets * 2) {
		n = kr->nbuckets * 4;
		if ((nb = calloc(n, sizeof(*nb))) == NULL) {
			return HK_ERR_NOMEM;
		}
		for (i = 0; i < kr->nbuckets; i++) {
			for (x = kr->buckets[i]; x != NULL; x = next) {
				next = x->next;
				h = kr_hash(x->name) % n;
				x->next = nb[h];
				nb[h] = x;
			}
		}
		free(kr->buckets);
		kr->buckets = nb;
		kr->nbuckets = n;
	}
	h = kr_hash(k->name) % kr->nbuckets;
	k->next = kr->buckets[h];
	kr->buckets[h] = k;
	kr->nkeys++;
	return 0;
}

void
kr_key_label(char *buf, size_t len, const char *name, uint32_t version)
{
	snprintf(buf, len, KR_KEY_PREFIX "%s:v%" PRIu32, name, version);
}

uint32_t
kr_key_primary(const struct kr_key *k)
{
	size_t i;

	for (i = k->nv; i > 0; i--) {
		if (k->v[i - 1]->rec.state == LC_ACTIVE &&
		    !k->v[i - 1]->rec.creating) {
			return k->v[i - 1]->rec.version;
		}
	}
	return 0;
}

uint64_t
kr_next_rotation(const struct kr_key *k)
{
	uint32_t primary = kr_key_primary(k);

	if (k->policy.rotate_every_s == 0 || primary == 0 ||
	    primary != k->nv) {
		return 0;
	}
	return hk_time_add_s(
	    k->v[primary - 1]->rec.activated_ms, k->policy.rotate_every_s);
}

struct keyring *
kr_new(struct token *tok, const struct keyring_opts *opts)
{
	struct keyring *kr;
	const char     *slash;

	if ((kr = calloc(1, sizeof(*kr))) == NULL) {
		return NULL;
	}
	pthread_rwlock_init(&kr->lock, NULL);
	pthread_mutex_init(&kr->admin, NULL);
	pthread_mutex_init(&kr->pk_lock, NULL);
	kr->tok = tok;
	kr->destroy_delay_s = opts->destroy_delay_s;
	kr->copies = !opts->no_session_copies;
	kr->default_grace_s = opts->default_verify_grace_s;
	kr->moved = opts->moved;
	kr->moved_arg = opts->moved_arg;
	snprintf(kr->instance, sizeof(kr->instance), "%s", opts->instance);
	slash = strchr(kr->instance, '/');
	snprintf(kr->host, sizeof(kr->host), "%.*s",
	    slash ? (int)(slash - kr->instance) : 0, kr->instance);
	kr->nbuckets = 64;
	if ((kr->buckets = calloc(kr->nbuckets, sizeof(*kr->buckets))) ==
	    NULL) {
		keyring_free(kr);
		return NULL;
	}
	return kr;
}

struct kr_key *
kr_key_new(const struct kr_rec *rec, token_obj_t meta)
{
	struct kr_key *k;
	size_t	       i;

	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (k->v = calloc(rec->nv + 1, sizeof(*k->v))) == NULL) {
		free(k);
		return NULL;
	}
	memcpy(k->name, rec->name, sizeof(k->name));
	k->alg = rec->alg;
	k->generation = rec->generation;
	k->created_ms = rec->created_ms;
	k->policy = rec->policy;
	k->meta = meta;
	for (i = 0; i < rec->nv; i++) {
		if ((k->v[i] = calloc(1, sizeof(*k->v[i]))) == NULL) {
			kr_key_free(k);
			return NULL;
		}
		k->nv = k->vcap = i + 1;
		k->v[i]->key = k;
		k->v[i]->rec = rec->v[i];
		if (kr_version_own_spki(k->v[i]) != 0) {
			kr_key_free(k);
			return NULL;
		}
	}
	return k;
}

void
kr_key_free(struct kr_key *k)
{
	size_t i;

	if (k == NULL) {
		return;
	}
	for (i = 0; i < k->vcap; i++) {
		kr_version_free(k->v[i]);
	}
	free(k->v);
	free(k);
}

void
keyring_free(struct keyring *kr)
{
	struct kr_key *k, *next;
	size_t	       i;

	if (kr == NULL) {
		return;
	}
	for (i = 0; kr->buckets != NULL && i < kr->nbuckets; i++) {
		for (k = kr->buckets[i]; k != NULL; k = next) {
			next = k->next;
			kr_key_free(k);
		}
	}
	free(kr->buckets);
	pthread_rwlock_destroy(&kr->lock);
	pthread_mutex_destroy(&kr->admin);
	pthread_mutex_destroy(&kr->pk_lock);
	free(kr);
}

/* ---- lookups ---------------------------------------------------------- */

static int
may_sign(const struct kr_vrec *v, uint64_t now)
{
	return lifecycle_may_sign(v->state) && !v->creating &&
	    (v->retire_ms == 0 || now < v->retire_ms);
}

int
keyring_signer(struct keyring *kr, const char *name, uint32_t version,
    struct keyring_signer *sp)
{
	struct kr_key	  *k;
	struct kr_version *v;
	uint64_t	   now = hk_now_ms();
	int		   r = HK_ERR_NOT_FOUND;

	memset(sp, 0, sizeof(*sp));
	pthread_rwlock_rdlock(&kr->lock);
	if ((k = kr_find_key(kr, name)) == NULL) {
		goto out;
	}
	if (version == 0 && (version = kr_key_primary(k)) == 0) {
		r = HK_ERR_PRECONDITION;
		goto out;
	}
	if (version > k->nv) {
		goto out;
	}
	v = k->v[version - 1];
	if (v->rec.creating) {
		goto out;
	}
	if (!may_sign(&v->rec, now) || v->priv == TOKEN_OBJ_NONE ||
	    (k->policy.expires_ms != 0 && now >= k->policy.expires_ms)) {
		r = HK_ERR_PRECONDITION;
		goto out;
	}
	sp->alg = k->alg;
	sp->version = version;
	sp->priv = v->copy != TOKEN_OBJ_NONE ? v->copy : v->priv;
	sp->v = v;
	r = 0;
out:
	pthread_rwlock_unlock(&kr->lock);
	return r;
}
/* The cached public key of v, loaded from the token on first use. */
static int
version_pkey(struct keyring *kr, struct token_session *s, struct kr_version *v,
    EVP_PKEY **pkeyp)
{
	EVP_PKEY *pkey;
	uint8_t	 *der = NULL;
	size_t	  len;
	int	  r = 0;

	*pkeyp = NULL;
	if ((pkey = atomic_load(&v->pkey)) != NULL) {
		*pkeyp = pkey;
		return 0;
	}
	pthread_mutex_lock(&kr->pk_lock);
	if ((pkey = atomic_load(&v->pkey)) == NULL) {
		const uint8_t *spki;
		size_t	       spki_len;

		pthread_rwlock_rdlock(&kr->lock);
		spki = v->spki;
		spki_len = v->spki_len;
		pthread_rwlock_unlock(&kr->lock);
		if (spki != NULL) {
			/* set once, freed only with the keyring */
			if ((r = crypto_pubkey_parse(spki, spki_len, &pkey)) ==
			    0) {
				atomic_store(&v->pkey, pkey);
			}
		} else if (v->pub == TOKEN_OBJ_NONE) {
			r = HK_ERR_NOT_FOUND;
		} else if ((r = token_pubkey_der(s, v->pub, &der, &len)) ==
			0 &&
		    (r = crypto_pubkey_parse(der, len, &pkey)) == 0) {
			atomic_store(&v->pkey, pkey);
		}
		free(der);
	}
	pthread_mutex_unlock(&kr->pk_lock);
	*pkeyp = pkey;
	return r;
}

static int
lookup_version(struct keyring *kr, const char *name, uint32_t version,
    int want_primary, struct kr_version **vp)
{
	struct kr_key *k;
	int	       r = HK_ERR_NOT_FOUND;

	*vp = NULL;
	pthread_rwlock_rdlock(&kr->lock);
	if ((k = kr_find_key(kr, name)) == NULL) {
		goto out;
	}
	if (version == 0 && want_primary) {
		version = kr_key_primary(k);
		if (version == 0) {
			r = HK_ERR_PRECONDITION;
			goto out;
		}
	}
	if (version == 0 || version > k->nv ||
	    k->v[version - 1]->rec.creating) {
		goto out;
	}
	*vp = k->v[version - 1];
	r = 0;
out:
	pthread_rwlock_unlock(&kr->lock);
	return r;
}

int
keyring_verifier(struct keyring *kr, struct token_session *s, const char *name,
    uint32_t version, hk_alg *algp, EVP_PKEY **pkeyp, enum lc_state *statep,
    uint64_t *retirep, struct kr_version **vp)
{
	struct kr_version *v;
	EVP_PKEY	  *pkey = NULL;
	int		   r;

	*pkeyp = NULL;
	*vp = NULL;
	if ((r = lookup_version(kr, name, version, 0, &v)) != 0) {
		return r;
	}
	pthread_rwlock_rdlock(&kr->lock);
	*algp = v->key->alg;
	*statep = v->rec.state;
	*retirep = v->rec.retire_ms;
	if (v->rec.state == LC_ACTIVE && v->rec.retire_ms != 0) {
		/* overlap, then grace */
		*retirep = hk_time_add_s(
		    v->rec.retire_ms, v->key->policy.verify_grace_s);
	}
	r = !v->rec.creating && lifecycle_may_verify(v->rec.state)
	    ? 0
	    : HK_ERR_PRECONDITION;
	pthread_rwlock_unlock(&kr->lock);
	*vp = v;
	if (r != 0) {
		return r;
	}
	if ((r = version_pkey(kr, s, v, &pkey)) != 0) {
		return r;
	}
	EVP_PKEY_up_ref(pkey);
	*pkeyp = pkey;
	return 0;
}

int
keyring_pubkey(struct keyring *kr, struct token_session *s, const char *name,
    uint32_t version, uint32_t *versionp, hk_alg *algp, uint8_t **derp,
    size_t *lenp)
{
	struct kr_version *v;
	EVP_PKEY	  *pkey;
	unsigned char	  *der = NULL;
	uint8_t		  *out;
	int		   n, r;

	*derp = NULL;
	*lenp = 0;
	if ((r = lookup_version(kr, name, version, 1, &v)) != 0) {
		return r;
	}
	if (v->rec.state == LC_DESTROYED) {
		return HK_ERR_PRECONDITION;
	}
	if ((r = version_pkey(kr, s, v, &pkey)) != 0) {
		return r;
	}
	if ((n = i2d_PUBKEY(pkey, &der)) <= 0) {
		return HK_ERR_INTERNAL;
	}
	if ((out = malloc((size_t)n)) == NULL) {
		OPENSSL_free(der);
		return HK_ERR_NOMEM;
	}
	memcpy(out, der, (size_t)n);
	OPENSSL_free(der);
	*versionp = v->rec.version;
	*algp = v->key->alg;
	*derp = out;
	*lenp = (size_t)n;
	return 0;
}

void
keyring_count(struct kr_version *v, enum keyring_count what, uint64_t n)
{
	if (v == NULL) {
		return;
	}
	switch (what) {
	case KR_SIGN:
		atomic_fetch_add(&v->signs, n);
		break;
	case KR_VERIFY:
		atomic_fetch_add(&v->verifies, n);
		break;
	case KR_ERROR:
		atomic_fetch_add(&v->errors, n);
		break;
	}
	atomic_store(&v->last_use_ms, hk_now_ms());
}

void
keyring_want_copy(
    struct keyring *kr, struct token_session *s, struct kr_version *v)
{
	if (v == NULL || !kr->copies) {
		return;
	}
	/* never make a signer wait for an admin operation; kr_make_copy()
	 * reads the copy fields under the admin mutex */
	if (pthread_mutex_trylock(&kr->admin) != 0) {
		return;
	}
	kr_make_copy(kr, s, v);
	pthread_mutex_unlock(&kr->admin);
}

/* ---- snapshots -------------------------------------------------------- */

void
keyring_info_clear(struct keyring_info *info)
{
	if (info != NULL) {
		free(info->versions);
		memset(info, 0, sizeof(*info));
	}
}

/* Snapshots k into info; the caller holds the read lock. */
static int
key_info(const struct kr_key *k, struct keyring_info *info)
{
	size_t	 i, n = 0;
	uint32_t primary = kr_key_primary(k);

	memset(info, 0, sizeof(*info));
	if ((info->versions = calloc(k->nv + 1, sizeof(*info->versions))) ==
	    NULL) {
		return HK_ERR_NOMEM;
	}
	memcpy(info->name, k->name, sizeof(info->name));
	info->alg = k->alg;
	info->primary = primary;
	info->created_ms = k->created_ms;
	info->policy = k->policy;
	info->next_rotation_ms = kr_next_rotation(k);
	for (i = 0; i < k->nv; i++) {
		const struct kr_vrec *v = &k->v[i]->rec;
		struct keyring_vinfo *vi = &info->versions[n];

		if (v->creating) {
			continue; /* half made: invisible */
		}
		vi->version = v->version;
		vi->state = v->state;
		vi->created_ms = v->created_ms;
		vi->activated_ms = v->activated_ms;
		vi->retire_ms = v->retire_ms;
		vi->primary = v->version == primary;
		vi->signs = atomic_load(&k->v[i]->signs);
		vi->verifies = atomic_load(&k->v[i]->verifies);
		vi->errors = atomic_load(&k->v[i]->errors);
		vi->last_use_ms = atomic_load(&k->v[i]->last_use_ms);
		n++;
	}
	info->nversions = n;
	return 0;
}

int
keyring_state(struct keyring *kr, const char *name, uint32_t version,
    enum lc_state *statep, int *primaryp)
{
	struct kr_key *k;
	int	       r = HK_ERR_NOT_FOUND;

	*statep = LC_NONE;
	*primaryp = 0;
	pthread_rwlock_rdlock(&kr->lock);
	if ((k = kr_find_key(kr, name)) != NULL && version != 0 &&
	    version <= k->nv && !k->v[version - 1]->rec.creating) {
		*statep = k->v[version - 1]->rec.state;
		*primaryp = kr_key_primary(k) == version;
		r = 0;
	}
	pthread_rwlock_unlock(&kr->lock);
	return r;
}

int
keyring_info(struct keyring *kr, const char *name, struct keyring_info *info)
{
	struct kr_key *k;
	int	       r = HK_ERR_NOT_FOUND;

	memset(info, 0, sizeof(*info));
	pthread_rwlock_rdlock(&kr->lock);
	if ((k = kr_find_key(kr, name)) != NULL) {
		r = key_info(k, info);
	}
	pthread_rwlock_unlock(&kr->lock);
	return r;
}

void
keyring_list_free(struct keyring_info *infos, size_t n)
{
	size_t i;

	if (infos == NULL) {
		return;
	}
	for (i = 0; i < n; i++) {
		keyring_info_clear(&infos[i]);
	}
	free(infos);
}

static int
info_cmp(const void *a, const void *b)
{
	const struct keyring_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

int
keyring_list(struct keyring *kr, int (*filter)(void *, const char *),
    void *arg, struct keyring_info **infosp, size_t *np)
{
	struct keyring_info *infos;
	struct kr_key	    *k;
	size_t		     i, n = 0;
	int		     r = 0;

	*infosp = NULL;
	*np = 0;
	pthread_rwlock_rdlock(&kr->lock);
	if ((infos = calloc(kr->nkeys + 1, sizeof(*infos))) == NULL) {
		pthread_rwlock_unlock(&kr->lock);
		return HK_ERR_NOMEM;
	}
	for (i = 0; r == 0 && i < kr->nbuckets; i++) {
		for (k = kr->buckets[i]; r == 0 && k != NULL; k = k->next) {
			if (filter != NULL && !filter(arg, k->name)) {
				continue;
			}
			if ((r = key_info(k, &infos[n])) == 0) {
				n++;
			}
		}
	}
	pthread_rwlock_unlock(&kr->lock);
	if (r != 0) {
		keyring_list_free(infos, n);
		return r;
	}
	qsort(infos, n, sizeof(*infos), info_cmp);
	*infosp = infos;
	*np = n;
	return 0;
}

int
keyring_stats(struct keyring *kr, struct keyring_vstats **statsp, size_t *np)
{
	struct keyring_vstats *st;
	struct kr_key	      *k;
	size_t		       i, j, n = 0;

	*statsp = NULL;
	*np = 0;
	pthread_rwlock_rdlock(&kr->lock);
	if ((st = calloc(kr->nversions + 1, sizeof(*st))) == NULL) {
		pthread_rwlock_unlock(&kr->lock);
		return HK_ERR_NOMEM;
	}
	for (i = 0; i < kr->nbuckets; i++) {
		for (k = kr->buckets[i]; k != NULL; k = k->next) {
			for (j = 0; j < k->nv && n < kr->nversions; j++) {
				struct kr_version *v = k->v[j];

				if (v->rec.creating) {
					continue;
				}
				memcpy(st[n].key, k->name, sizeof(st[n].key));
				st[n].version = v->rec.version;
				st[n].state = v->rec.state;
				st[n].signs = atomic_load(&v->signs);
				st[n].verifies = atomic_load(&v->verifies);
				st[n].errors = atomic_load(&v->errors);
				st[n].last_use_ms =
				    atomic_load(&v->last_use_ms);
				n++;
			}
		}
	}
	pthread_rwlock_unlock(&kr->lock);
	*statsp = st;
	*np = n;
	return 0;
}

void
keyring_totals(struct keyring *kr, uint32_t *keysp, uint32_t *versionsp)
{
	pthread_rwlock_rdlock(&kr->lock);
	*keysp = (uint32_t)kr->nkeys;
	*versionsp = (uint32_t)kr->nversions;
	pthread_rwlock_unlock(&kr->lock);
}
