/* keyring.c: keys, versions, states and their records in the token. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "crypto.h"
#include "envelope.h"
#include "hk_err.h"
#include "keyring.h"
#include "log.h"
#include "store.h"
#include "store.pb-c.h"
#include "test_hooks.h"

#include <openssl/x509.h>

#define META_PREFIX   "hsmkey-key:"
#define KEY_PREFIX    "hsmkey:"
#define NAME_MAX_LEN  64
#define OWNER_MAX     128
#define MAX_VERSIONS  100000
#define TICK_MAX_KEYS 50 /* keys changed by one keyring_tick() */

/* The persistent part of a version, as in StoredVersion. */
struct kr_vrec {
	uint32_t version;
	hk_state state;
	uint64_t created_ms;
	uint64_t activated_ms;
	uint64_t retire_ms;
	int	 creating;
	char	 owner[OWNER_MAX];
	uint64_t intent_ms;
	/* public key (SPKI DER), borrowed: from the version's own copy, the
	 * record's blob or a new key's buffer; NULL on old tokens */
	const uint8_t *spki;
	size_t	       spki_len;
};

/* The persistent part of a key, as in StoredKey. */
struct kr_rec {
	char		name[NAME_MAX_LEN + 1];
	hk_alg		alg;
	uint64_t	generation;
	uint64_t	created_ms;
	uint64_t	sign_overlap_s;
	uint64_t	verify_grace_s;
	uint64_t	rotate_every_s;
	uint64_t	expires_ms;
	struct kr_vrec *v; /* v[i].version == i + 1 */
	size_t		nv;
	uint8_t	       *blob; /* the public keys of a decoded record */
};

struct kr_version {
	struct kr_vrec	  rec;
	uint8_t		 *spki; /* owned: rec.spki points here once set */
	size_t		  spki_len;
	token_obj_t	  priv;
	token_obj_t	  pub; /* a public key object (older tokens) */
	int		  token_can_sign;
	token_obj_t	  copy;	   /* session copy that signs, or NONE */
	int		  no_copy; /* the token refused to copy it */
	EVP_PKEY *_Atomic pkey;	   /* loaded on first use */
	_Atomic uint64_t  signs;
	_Atomic uint64_t  verifies;
	_Atomic uint64_t  errors;
	_Atomic uint64_t  last_use_ms;
	struct kr_key	 *key;
};

struct kr_key {
	char		    name[NAME_MAX_LEN + 1];
	hk_alg		    alg;
	uint64_t	    generation;
	uint64_t	    created_ms;
	uint64_t	    sign_overlap_s;
	uint64_t	    verify_grace_s;
	uint64_t	    rotate_every_s;
	uint64_t	    expires_ms;
	struct kr_version **v;
	size_t		    nv;
	token_obj_t	    meta;
	struct kr_key	   *next; /* hash chain */
};

struct keyring {
	pthread_rwlock_t lock;
	pthread_mutex_t	 admin;
	pthread_mutex_t	 pk_lock;
	struct kr_key  **buckets;
	size_t		 nbuckets;
	size_t		 nkeys;
	size_t		 nversions;
	uint64_t	 destroy_delay_s;
	uint64_t	 default_grace_s;
	char		 instance[OWNER_MAX];
	char		 host[OWNER_MAX];
	struct token	*tok;
	int		 copies; /* sign with session copies */
};

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	}
	return h;
}

static struct kr_key *
find_key(struct keyring *kr, const char *name)
{
	struct kr_key *k;

	for (k = kr->buckets[fnv1a(name) % kr->nbuckets]; k != NULL;
	     k = k->next) {
		if (strcmp(k->name, name) == 0) {
			return k;
		}
	}
	return NULL;
}

/* Inserts k; the caller holds the write lock (or is still loading). */
static int
insert_key(struct keyring *kr, struct kr_key *k)
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
				h = fnv1a(x->name) % n;
				x->next = nb[h];
				nb[h] = x;
			}
		}
		free(kr->buckets);
		kr->buckets = nb;
		kr->nbuckets = n;
	}
	h = fnv1a(k->name) % kr->nbuckets;
	k->next = kr->buckets[h];
	kr->buckets[h] = k;
	kr->nkeys++;
	return 0;
}

static void
key_label(char *buf, size_t len, const char *name, uint32_t version)
{
	snprintf(buf, len, KEY_PREFIX "%s:v%" PRIu32, name, version);
}

static enum token_keytype
alg_keytype(hk_alg alg, unsigned int *bitsp)
{
	*bitsp = 0;
	switch (alg) {
	case HSMKEY__V1__ALGORITHM__ALG_ECDSA_P384:
		return TOKEN_KEY_EC_P384;
	case HSMKEY__V1__ALGORITHM__ALG_ED25519:
		return TOKEN_KEY_ED25519;
	case HSMKEY__V1__ALGORITHM__ALG_RSA_2048:
		*bitsp = 2048;
		return TOKEN_KEY_RSA;
	case HSMKEY__V1__ALGORITHM__ALG_RSA_3072:
		*bitsp = 3072;
		return TOKEN_KEY_RSA;
	case HSMKEY__V1__ALGORITHM__ALG_RSA_4096:
		*bitsp = 4096;
		return TOKEN_KEY_RSA;
	default:
		return TOKEN_KEY_EC_P256;
	}
}

/* ---- records ---------------------------------------------------------- */

static void
rec_free(struct kr_rec *rec)
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
static int
version_own_spki(struct kr_version *v)
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

static void
version_free(struct kr_version *v)
{
	if (v != NULL) {
		EVP_PKEY_free(v->pkey);
		free(v->spki);
		free(v);
	}
}

/* Copies the persistent state of k; the caller holds the admin mutex. */
static int
rec_from_key(const struct kr_key *k, struct kr_rec *rec, size_t extra)
{
	size_t i;

	memset(rec, 0, sizeof(*rec));
	memcpy(rec->name, k->name, sizeof(rec->name));
	rec->alg = k->alg;
	rec->generation = k->generation;
	rec->created_ms = k->created_ms;
	rec->sign_overlap_s = k->sign_overlap_s;
	rec->verify_grace_s = k->verify_grace_s;
	rec->rotate_every_s = k->rotate_every_s;
	rec->expires_ms = k->expires_ms;
	if ((rec->v = calloc(k->nv + extra + 1, sizeof(*rec->v))) == NULL) {
		return HK_ERR_NOMEM;
	}
	for (i = 0; i < k->nv; i++) {
		rec->v[i] = k->v[i]->rec;
	}
	rec->nv = k->nv;
	return 0;
}

/* Writes rec as a new record object with the next generation, then
 * removes the old one.  *metap: in the old handle, out the new. */
static int
rec_store(struct token_session *s, struct kr_rec *rec, token_obj_t *metap)
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
		hsmkey__store__v1__stored_version__init(&sv[i]);
		sv[i].version = rec->v[i].version;
		sv[i].state = rec->v[i].state;
		sv[i].created_ms = rec->v[i].created_ms;
		sv[i].activated_ms = rec->v[i].activated_ms;
		sv[i].retire_ms = rec->v[i].retire_ms;
		sv[i].creating = rec->v[i].creating;
		sv[i].intent_owner = rec->v[i].owner;
		sv[i].intent_ms = rec->v[i].intent_ms;
		/* a destroyed version verifies nothing: its key goes, and
		 * records stay small however many versions a key has had */
		if (rec->v[i].spki != NULL &&
		    rec->v[i].state !=
			HSMKEY__V1__VERSION_STATE__STATE_DESTROYED) {
			sv[i].public_key.data = (uint8_t *)rec->v[i].spki;
			sv[i].public_key.len = rec->v[i].spki_len;
		}
		svp[i] = &sv[i];
	}
	pol.sign_overlap_s = rec->sign_overlap_s;
	pol.verify_grace_s = rec->verify_grace_s;
	pol.rotate_every_s = rec->rotate_every_s;
	pol.expires_ms = rec->expires_ms;
	sk.generation = rec->generation + 1;
	sk.name = rec->name;
	sk.alg = hk_alg_to_wire(rec->alg);
	sk.created_ms = rec->created_ms;
	sk.policy = &pol;
	sk.n_versions = rec->nv;
	sk.versions = svp;
	snprintf(label, sizeof(label), META_PREFIX "%s", rec->name);
	if ((r = store_replace(s, label, &sk.base, metap)) != 0) {
		goto out;
	}
	rec->generation++;
out:
	free(sv);
	free(svp);
	return r;
}

static int
rec_decode(const uint8_t *buf, size_t len, struct kr_rec *rec)
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
	    sk->n_versions > MAX_VERSIONS) {
		goto out;
	}
	snprintf(rec->name, sizeof(rec->name), "%s", sk->name);
	rec->alg = hk_alg_from_wire(sk->alg);
	rec->generation = sk->generation;
	rec->created_ms = sk->created_ms;
	if (sk->policy != NULL) {
		rec->sign_overlap_s = sk->policy->sign_overlap_s;
		rec->verify_grace_s = sk->policy->verify_grace_s;
		rec->rotate_every_s = sk->policy->rotate_every_s;
		rec->expires_ms = sk->policy->expires_ms;
	}
	if ((rec->v = calloc(sk->n_versions + 1, sizeof(*rec->v))) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	for (i = 0, total = 0; i < sk->n_versions; i++) {
		total += sk->versions[i]->public_key.len;
	}
	if (total > 0 && (rec->blob = malloc(total)) == NULL) {
		r = HK_ERR_NOMEM;
		goto out;
	}
	for (i = 0, total = 0; i < sk->n_versions; i++) {
		const Hsmkey__Store__V1__StoredVersion *sv = sk->versions[i];

		if (sv->public_key.len > 0) {
			memcpy(rec->blob + total, sv->public_key.data,
			    sv->public_key.len);
			rec->v[i].spki = rec->blob + total;
			rec->v[i].spki_len = sv->public_key.len;
			total += sv->public_key.len;
		}

		if (sv->version != i + 1) {
			goto out;
		}
		rec->v[i].version = sv->version;
		rec->v[i].state = sv->state;
		rec->v[i].created_ms = sv->created_ms;
		rec->v[i].activated_ms = sv->activated_ms;
		rec->v[i].retire_ms = sv->retire_ms;
		rec->v[i].creating = sv->creating;
		rec->v[i].intent_ms = sv->intent_ms;
		snprintf(rec->v[i].owner, sizeof(rec->v[i].owner), "%s",
		    sv->intent_owner);
	}
	rec->nv = sk->n_versions;
	r = 0;
out:
	if (r != 0) {
		rec_free(rec);
	}
	hsmkey__store__v1__stored_key__free_unpacked(sk, NULL);
	return r;
}

/* ---- state rules ------------------------------------------------------ */

static int
may_sign(const struct kr_vrec *v, uint64_t now)
{
	return v->state == HSMKEY__V1__VERSION_STATE__STATE_ACTIVE &&
	    !v->creating && (v->retire_ms == 0 || now < v->retire_ms);
}

static int
may_verify(const struct kr_vrec *v)
{
	return !v->creating &&
	    (v->state == HSMKEY__V1__VERSION_STATE__STATE_PENDING ||
		v->state == HSMKEY__V1__VERSION_STATE__STATE_ACTIVE ||
		v->state == HSMKEY__V1__VERSION_STATE__STATE_VERIFY_ONLY);
}

/* The newest active version of rec, 0 if none. */
static uint32_t
rec_primary(const struct kr_rec *rec)
{
	size_t i;

	for (i = rec->nv; i > 0; i--) {
		if (rec->v[i - 1].state ==
			HSMKEY__V1__VERSION_STATE__STATE_ACTIVE &&
		    !rec->v[i - 1].creating) {
			return rec->v[i - 1].version;
		}
	}
	return 0;
}

static uint32_t
key_primary(const struct kr_key *k)
{
	size_t i;

	for (i = k->nv; i > 0; i--) {
		if (k->v[i - 1]->rec.state ==
			HSMKEY__V1__VERSION_STATE__STATE_ACTIVE &&
		    !k->v[i - 1]->rec.creating) {
			return k->v[i - 1]->rec.version;
		}
	}
	return 0;
}

/* Retires every active version but keep, per the key's overlap and grace. */
static void
rec_retire_others(struct kr_rec *rec, uint32_t keep, uint64_t now)
{
	size_t i;

	for (i = 0; i < rec->nv; i++) {
		struct kr_vrec *v = &rec->v[i];

		if (v->version == keep ||
		    v->state != HSMKEY__V1__VERSION_STATE__STATE_ACTIVE) {
			continue;
		}
		if (rec->sign_overlap_s > 0) {
			if (v->retire_ms == 0) {
				v->retire_ms =
				    now + rec->sign_overlap_s * 1000;
			}
		} else {
			v->state =
			    HSMKEY__V1__VERSION_STATE__STATE_VERIFY_ONLY;
			v->retire_ms = now + rec->verify_grace_s * 1000;
		}
	}
}

/* Makes the session copy of an active version, once; the caller holds the
 * admin mutex. */
static void
make_copy(struct keyring *kr, struct token_session *s, struct kr_version *v)
{
	token_obj_t copy;
	int	    r;

	if (v->copy != TOKEN_OBJ_NONE || !kr->copies || v->no_copy ||
	    !v->token_can_sign || v->priv == TOKEN_OBJ_NONE ||
	    v->rec.state != HSMKEY__V1__VERSION_STATE__STATE_ACTIVE) {
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

/*
 * Makes the token match each version's state: CKA_SIGN on the private key
 * (where the token cannot, the service's own check still refuses), and a
 * session copy of the private key for each active version, which signs
 * faster in SoftHSM (it re-reads a token object's file at every use).  The
 * copy is a session object inside the token (C_CopyObject with CKA_TOKEN
 * false): the key never leaves the token, and the copy is destroyed as soon
 * as its version stops being active.  The caller holds the admin mutex.
 */
static void
sync_can_sign(struct keyring *kr, struct token_session *s, struct kr_key *k,
    int make_copies)
{
	token_obj_t old;
	size_t	    i;
	int	    want, r;

	for (i = 0; i < k->nv; i++) {
		struct kr_version *v = k->v[i];

		want =
		    v->rec.state == HSMKEY__V1__VERSION_STATE__STATE_ACTIVE &&
		    v->priv != TOKEN_OBJ_NONE;
		if (!want && v->copy != TOKEN_OBJ_NONE) {
			pthread_rwlock_wrlock(&kr->lock);
			old = v->copy;
			v->copy = TOKEN_OBJ_NONE;
			pthread_rwlock_unlock(&kr->lock);
			if ((r = token_destroy(s, old)) != 0 &&
			    r != HK_ERR_NOT_FOUND) {
				log_err_r(r,
				    "key %s v%" PRIu32 ": cannot "
				    "destroy its session copy",
				    k->name, v->rec.version);
			}
		}
		if (v->priv == TOKEN_OBJ_NONE) {
			continue;
		}
		if (v->token_can_sign != want) {
			if ((r = token_set_can_sign(s, v->priv, want)) == 0) {
				v->token_can_sign = want;
			} else if (r != HK_ERR_UNSUPPORTED) {
				log_err_r(r,
				    "key %s v%" PRIu32 ": cannot "
				    "set CKA_SIGN",
				    k->name, v->rec.version);
			}
		}
		if (want && make_copies) {
			make_copy(kr, s, v);
		}
	}
}

/* Publishes rec into k (new version structs for versions k lacks).  The
 * caller holds the admin mutex; this takes the write lock. */
static int
apply_rec(struct keyring *kr, struct kr_key *k, const struct kr_rec *rec,
    token_obj_t meta)
{
	struct kr_version **nv = NULL, *x;
	size_t		    i, n = k->nv;
	int		    r = 0;

	if (rec->nv > k->nv) {
		if ((nv = calloc(rec->nv, sizeof(*nv))) == NULL) {
			return HK_ERR_NOMEM;
		}
		for (i = k->nv; i < rec->nv; i++) {
			if ((nv[i] = calloc(1, sizeof(*nv[i]))) == NULL) {
				r = HK_ERR_NOMEM;
				goto out;
			}
			nv[i]->key = k;
		}
	}
	pthread_rwlock_wrlock(&kr->lock);
	if (nv != NULL) {
		for (i = 0; i < k->nv; i++) {
			nv[i] = k->v[i];
		}
		free(k->v);
		k->v = nv;
		kr->nversions += rec->nv - k->nv;
		k->nv = rec->nv;
		nv = NULL;
	}
	for (i = 0; i < rec->nv; i++) {
		k->v[i]->rec = rec->v[i];
		if (version_own_spki(k->v[i]) != 0) {
			log_warnx("key %s v%zu: no memory for its public key",
			    k->name, i + 1);
		}
	}
	k->generation = rec->generation;
	k->sign_overlap_s = rec->sign_overlap_s;
	k->verify_grace_s = rec->verify_grace_s;
	k->rotate_every_s = rec->rotate_every_s;
	k->expires_ms = rec->expires_ms;
	k->meta = meta;
	pthread_rwlock_unlock(&kr->lock);
out:
	if (nv != NULL) {
		for (i = n; i < rec->nv; i++) {
			x = nv[i];
			version_free(x);
		}
		free(nv);
	}
	return r;
}

/* ---- load and repair -------------------------------------------------- */

struct objref {
	const struct token_object *priv;
	const struct token_object *pub;
};

/* Parses "hsmkey:<name>:v<N>". */
static int
parse_key_label(
    const char *label, char *name, size_t namelen, uint32_t *versionp)
{
	const char   *p, *colon;
	unsigned long v;
	char	     *end;

	if (strncmp(label, KEY_PREFIX, strlen(KEY_PREFIX)) != 0) {
		return HK_ERR_INVALID;
	}
	p = label + strlen(KEY_PREFIX);
	if ((colon = strrchr(p, ':')) == NULL || colon[1] != 'v' ||
	    (size_t)(colon - p) >= namelen) {
		return HK_ERR_INVALID;
	}
	memcpy(name, p, (size_t)(colon - p));
	name[colon - p] = '\0';
	errno = 0;
	v = strtoul(colon + 2, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > MAX_VERSIONS ||
	    !hk_valid_key_name(name)) {
		return HK_ERR_INVALID;
	}
	*versionp = (uint32_t)v;
	return 0;
}

/* 1 if the process that wrote an intent may still be working on it. */
static int
owner_alive(struct keyring *kr, const struct kr_vrec *v, uint64_t now)
{
	char	    host[OWNER_MAX];
	const char *slash;
	long	    pid;
	char	   *end;

	if (strcmp(v->owner, kr->instance) == 0) {
		return 0;
	}
	if ((slash = strchr(v->owner, '/')) == NULL ||
	    (size_t)(slash - v->owner) >= sizeof(host)) {
		return 0;
	}
	memcpy(host, v->owner, (size_t)(slash - v->owner));
	host[slash - v->owner] = '\0';
	if (strcmp(host, kr->host) != 0) {
		/* another machine: give it ten minutes */
		return now < v->intent_ms + 10 * 60 * 1000;
	}
	pid = strtol(slash + 1, &end, 10);
	if (pid <= 0 || *end != '/') {
		return 0;
	}
	if (pid == (long)getpid()) {
		return 0;
	}
	return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

struct load_state {
	const struct token_object *objs;
	size_t			   nobjs;
	int    *used;  /* objs[i] belongs to a known version */
	size_t *heads; /* label hash -> first index + 1 */
	size_t *chain; /* index -> next index + 1 */
	size_t	nheads;
};

/* Indexes the objects by label, so that a load is linear in their number. */
static int
index_objects(struct load_state *ls)
{
	size_t i, h;

	ls->nheads = ls->nobjs * 2 + 1;
	if ((ls->heads = calloc(ls->nheads, sizeof(*ls->heads))) == NULL ||
	    (ls->chain = calloc(ls->nobjs + 1, sizeof(*ls->chain))) == NULL) {
		return HK_ERR_NOMEM;
	}
	for (i = 0; i < ls->nobjs; i++) {
		h = fnv1a(ls->objs[i].label) % ls->nheads;
		ls->chain[i] = ls->heads[h];
		ls->heads[h] = i + 1;
	}
	return 0;
}

static const struct token_object *
find_obj(const struct load_state *ls, const char *label,
    enum token_class klass, size_t *idxp)
{
	size_t i;

	for (i = ls->heads[fnv1a(label) % ls->nheads]; i != 0;
	     i = ls->chain[i - 1]) {
		if (ls->objs[i - 1].klass == klass &&
		    strcmp(ls->objs[i - 1].label, label) == 0) {
			*idxp = i - 1;
			return &ls->objs[i - 1];
		}
	}
	return NULL;
}

static void
destroy_version_objects(struct token_session *s, struct load_state *ls,
    const char *name, uint32_t version)
{
	static const enum token_class classes[] = { TOKEN_CLASS_PRIVATE,
		TOKEN_CLASS_PUBLIC };
	const struct token_object    *o;
	char			      label[TOKEN_LABEL_MAX];
	size_t			      i, idx;
	int			      r;

	key_label(label, sizeof(label), name, version);
	for (i = 0; i < 2; i++) {
		while ((o = find_obj(ls, label, classes[i], &idx)) != NULL &&
		    !ls->used[idx]) {
			if ((r = token_destroy(s, o->handle)) != 0 &&
			    r != HK_ERR_NOT_FOUND) {
				log_err_r(r, "cannot remove %s", label);
			}
			ls->used[idx] = 1;
		}
	}
}

/* Builds key k from rec, rolling back intents of dead owners. */
static int
load_key(struct keyring *kr, struct token_session *s, struct load_state *ls,
    struct kr_rec *rec, token_obj_t meta, uint64_t now)
{
	struct kr_key		  *k = NULL;
	char			   label[TOKEN_LABEL_MAX];
	const struct token_object *o;
	size_t			   i, idx;
	int			   r = HK_ERR_NOMEM, changed = 0;

	/* roll back interrupted creates and rotations: only the newest
	 * version can be one */
	while (rec->nv > 0 && rec->v[rec->nv - 1].creating &&
	    !owner_alive(kr, &rec->v[rec->nv - 1], now)) {
		log_warnx("key %s: rolling back v%" PRIu32 " left half made "
			  "by %s",
		    rec->name, rec->v[rec->nv - 1].version,
		    rec->v[rec->nv - 1].owner);
		destroy_version_objects(
		    s, ls, rec->name, rec->v[rec->nv - 1].version);
		rec->nv--;
		changed = 1;
	}
	if (rec->nv == 0) {
		log_warnx(
		    "key %s: creation never finished; removed", rec->name);
		if ((r = token_destroy(s, meta)) != 0 &&
		    r != HK_ERR_NOT_FOUND) {
			return r;
		}
		return 0;
	}
	if (changed && (r = rec_store(s, rec, &meta)) != 0) {
		return r;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (k->v = calloc(rec->nv, sizeof(*k->v))) == NULL) {
		free(k);
		return HK_ERR_NOMEM;
	}
	memcpy(k->name, rec->name, sizeof(k->name));
	k->alg = rec->alg;
	k->generation = rec->generation;
	k->created_ms = rec->created_ms;
	k->sign_overlap_s = rec->sign_overlap_s;
	k->verify_grace_s = rec->verify_grace_s;
	k->rotate_every_s = rec->rotate_every_s;
	k->expires_ms = rec->expires_ms;
	k->meta = meta;
	for (i = 0; i < rec->nv; i++) {
		struct kr_version *v;

		if ((v = calloc(1, sizeof(*v))) == NULL) {
			goto fail;
		}
		k->v[i] = v;
		k->nv = i + 1;
		v->key = k;
		v->rec = rec->v[i];
		if ((r = version_own_spki(v)) != 0) {
			goto fail;
		}
		key_label(label, sizeof(label), k->name, v->rec.version);
		if ((o = find_obj(ls, label, TOKEN_CLASS_PRIVATE, &idx)) !=
		    NULL) {
			v->priv = o->handle;
			v->token_can_sign = o->can_sign;
			ls->used[idx] = 1;
		}
		if ((o = find_obj(ls, label, TOKEN_CLASS_PUBLIC, &idx)) !=
		    NULL) {
			v->pub = o->handle;
			ls->used[idx] = 1;
		}
		if (v->rec.state !=
			HSMKEY__V1__VERSION_STATE__STATE_DESTROYED &&
		    !v->rec.creating &&
		    (v->priv == TOKEN_OBJ_NONE ||
			(v->pub == TOKEN_OBJ_NONE && v->spki == NULL))) {
			log_warnx("key %s v%" PRIu32 ": key objects missing "
				  "from the token; the version cannot be used",
			    k->name, v->rec.version);
		}
	}
	kr->nversions += k->nv;
	/* copies are made at first use: a token of thousands of keys starts
	 * faster and smaller */
	sync_can_sign(kr, s, k, 0);
	if ((r = insert_key(kr, k)) != 0) {
		goto fail;
	}
	return 0;
fail:
	for (i = 0; i < k->nv; i++) {
		version_free(k->v[i]);
	}
	free(k->v);
	free(k);
	return r;
}

int
keyring_load(struct keyring **krp, struct token *tok, struct token_session *s,
    const struct token_object *objs, size_t nobjs,
    const struct keyring_opts *opts)
{
	struct keyring	 *kr = NULL;
	struct load_state ls;
	struct kr_rec	 *recs = NULL;
	token_obj_t	 *metas = NULL;
	uint8_t		 *val = NULL;
	size_t		  i, j, nrecs = 0, vlen;
	uint64_t	  now = hk_now_ms();
	const char	 *slash;
	int		  r = HK_ERR_NOMEM;

	*krp = NULL;
	memset(&ls, 0, sizeof(ls));
	if ((kr = calloc(1, sizeof(*kr))) == NULL) {
		return HK_ERR_NOMEM;
	}
	pthread_rwlock_init(&kr->lock, NULL);
	pthread_mutex_init(&kr->admin, NULL);
	pthread_mutex_init(&kr->pk_lock, NULL);
	kr->tok = tok;
	kr->destroy_delay_s = opts->destroy_delay_s;
	kr->copies = !opts->no_session_copies;
	kr->default_grace_s = opts->default_verify_grace_s;
	snprintf(kr->instance, sizeof(kr->instance), "%s", opts->instance);
	slash = strchr(kr->instance, '/');
	snprintf(kr->host, sizeof(kr->host), "%.*s",
	    slash ? (int)(slash - kr->instance) : 0, kr->instance);
	kr->nbuckets = 64;
	if ((kr->buckets = calloc(kr->nbuckets, sizeof(*kr->buckets))) ==
	    NULL) {
		goto out;
	}
	ls.objs = objs;
	ls.nobjs = nobjs;
	if ((r = index_objects(&ls)) != 0) {
		goto out;
	}
	r = HK_ERR_NOMEM;
	if ((ls.used = calloc(nobjs + 1, sizeof(*ls.used))) == NULL ||
	    (recs = calloc(nobjs + 1, sizeof(*recs))) == NULL ||
	    (metas = calloc(nobjs + 1, sizeof(*metas))) == NULL) {
		goto out;
	}
	/* records: the newest generation of each key wins */
	for (i = 0; i < nobjs; i++) {
		struct kr_rec rec;

		if (objs[i].klass != TOKEN_CLASS_DATA ||
		    strncmp(objs[i].label, META_PREFIX, strlen(META_PREFIX)) !=
			0) {
			continue;
		}
		if ((r = token_data_read(s, objs[i].handle, &val, &vlen)) !=
		    0) {
			log_err_r(r, "cannot read %s", objs[i].label);
			goto out;
		}
		r = rec_decode(val, vlen, &rec);
		free(val);
		val = NULL;
		if (r != 0) {
			log_err_r(r, "unreadable record %s; left alone",
			    objs[i].label);
			continue;
		}
		for (j = 0; j < nrecs; j++) {
			if (strcmp(recs[j].name, rec.name) == 0) {
				break;
			}
		}
		if (j < nrecs && recs[j].generation >= rec.generation) {
			log_info("removing stale record of key %s", rec.name);
			token_destroy(s, objs[i].handle);
			rec_free(&rec);
			continue;
		}
		if (j < nrecs) {
			log_info("removing stale record of key %s", rec.name);
			token_destroy(s, metas[j]);
			rec_free(&recs[j]);
		} else {
			nrecs++;
		}
		recs[j] = rec;
		metas[j] = objs[i].handle;
	}
	for (j = 0; j < nrecs; j++) {
		if ((r = load_key(kr, s, &ls, &recs[j], metas[j], now)) != 0) {
			goto out;
		}
	}
	/* key objects that no record knows were never used: remove them,
	 * unless a live process is still making them */
	for (i = 0; i < nobjs; i++) {
		char	       name[NAME_MAX_LEN + 1];
		uint32_t       version;
		struct kr_key *k;

		if (ls.used[i] ||
		    (objs[i].klass != TOKEN_CLASS_PRIVATE &&
			objs[i].klass != TOKEN_CLASS_PUBLIC) ||
		    parse_key_label(
			objs[i].label, name, sizeof(name), &version) != 0) {
			continue;
		}
		if ((k = find_key(kr, name)) != NULL && version <= k->nv &&
		    k->v[version - 1]->rec.creating) {
			continue;
		}
		for (j = 0; j < nrecs; j++) {
			if (strcmp(recs[j].name, name) == 0 &&
			    version <= recs[j].nv &&
			    recs[j].v[version - 1].creating) {
				break;
			}
		}
		if (j < nrecs) {
			continue;
		}
		log_warnx("removing orphan token object %s", objs[i].label);
		if ((r = token_destroy(s, objs[i].handle)) != 0 &&
		    r != HK_ERR_NOT_FOUND) {
			log_err_r(r, "cannot remove %s", objs[i].label);
		}
	}
	log_info("keyring: %zu keys, %zu versions", kr->nkeys, kr->nversions);
	/* success */
	*krp = kr;
	kr = NULL;
	r = 0;
out:
	if (recs != NULL) {
		for (j = 0; j < nrecs; j++) {
			rec_free(&recs[j]);
		}
	}
	free(recs);
	free(metas);
	free(ls.used);
	free(ls.heads);
	free(ls.chain);
	keyring_free(kr);
	return r;
}

void
keyring_free(struct keyring *kr)
{
	struct kr_key *k, *next;
	size_t	       i, j;

	if (kr == NULL) {
		return;
	}
	for (i = 0; i < kr->nbuckets; i++) {
		for (k = kr->buckets[i]; k != NULL; k = next) {
			next = k->next;
			for (j = 0; j < k->nv; j++) {
				version_free(k->v[j]);
			}
			free(k->v);
			free(k);
		}
	}
	free(kr->buckets);
	pthread_rwlock_destroy(&kr->lock);
	pthread_mutex_destroy(&kr->admin);
	pthread_mutex_destroy(&kr->pk_lock);
	free(kr);
}

/* ---- lookups ---------------------------------------------------------- */

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
	if ((k = find_key(kr, name)) == NULL) {
		goto out;
	}
	if (version == 0 && (version = key_primary(k)) == 0) {
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
	    (k->expires_ms != 0 && now >= k->expires_ms)) {
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
	if ((k = find_key(kr, name)) == NULL) {
		goto out;
	}
	if (version == 0 && want_primary) {
		version = key_primary(k);
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
    uint32_t version, hk_alg *algp, EVP_PKEY **pkeyp, hk_state *statep,
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
	if (v->rec.state == HSMKEY__V1__VERSION_STATE__STATE_ACTIVE &&
	    v->rec.retire_ms != 0) {
		/* overlap, then grace */
		*retirep = v->rec.retire_ms + v->key->verify_grace_s * 1000;
	}
	r = may_verify(&v->rec) ? 0 : HK_ERR_PRECONDITION;
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
	if (v->rec.state == HSMKEY__V1__VERSION_STATE__STATE_DESTROYED) {
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
	/* never make a signer wait for an admin operation; make_copy()
	 * reads the copy fields under the admin mutex */
	if (pthread_mutex_trylock(&kr->admin) != 0) {
		return;
	}
	make_copy(kr, s, v);
	pthread_mutex_unlock(&kr->admin);
}

/* ---- admin ------------------------------------------------------------ */

/*
 * Generates a version's key pair: the private key in the token, the public
 * key as a session object that is read (*spkip, SPKI DER, caller frees)
 * and destroyed at once: the record keeps it.
 */
static int
keygen(struct keyring *kr, struct token_session *s, const char *name,
    hk_alg alg, uint32_t version, int can_sign, uint64_t now,
    token_obj_t *privp, token_obj_t *pubp, uint8_t **spkip, size_t *spki_lenp)
{
	struct token_keyspec spec;
	char		     label[TOKEN_LABEL_MAX];
	token_obj_t	     pub = TOKEN_OBJ_NONE;
	EVP_PKEY	    *pkey = NULL;
	uint8_t		    *der = NULL;
	size_t		     len = 0;
	int		     r;

	(void)kr;
	*pubp = TOKEN_OBJ_NONE;
	*spkip = NULL;
	*spki_lenp = 0;
	key_label(label, sizeof(label), name, version);
	memset(&spec, 0, sizeof(spec));
	spec.type = alg_keytype(alg, &spec.rsa_bits);
	spec.label = label;
	spec.id = (const uint8_t *)label;
	spec.id_len = strlen(label);
	spec.start_ms = now;
	spec.can_sign = can_sign;
	spec.pub_session = !test_hooks_public_objects();
	if ((r = token_generate(s, &spec, privp, &pub)) != 0) {
		return r;
	}
	if (test_hooks_public_objects()) {
		*pubp = pub; /* the old way: kept in the token, not read */
		return 0;
	}
	/* token_pubkey_der() gives SPKI DER; it must parse before it is
	 * the only copy */
	if ((r = token_pubkey_der(s, pub, &der, &len)) == 0 &&
	    (r = crypto_pubkey_parse(der, len, &pkey)) == 0) {
		*spkip = der;
		*spki_lenp = len;
		der = NULL;
	}
	EVP_PKEY_free(pkey);
	free(der);
	token_destroy(s, pub);
	if (r != 0) {
		token_destroy(s, *privp);
		*privp = TOKEN_OBJ_NONE;
	}
	return r;
}

static void
set_intent(
    struct keyring *kr, struct kr_vrec *v, uint32_t version, uint64_t now)
{
	memset(v, 0, sizeof(*v));
	v->version = version;
	v->state = HSMKEY__V1__VERSION_STATE__STATE_PENDING;
	v->created_ms = now;
	v->creating = 1;
	v->intent_ms = now;
	snprintf(v->owner, sizeof(v->owner), "%s", kr->instance);
}

int
keyring_create(
    struct keyring *kr, struct token_session *s, const char *name, hk_alg alg)
{
	struct kr_rec	   rec;
	struct kr_key	  *k = NULL;
	struct kr_version *v = NULL;
	token_obj_t	   meta = TOKEN_OBJ_NONE, priv = TOKEN_OBJ_NONE;
	token_obj_t	   pub = TOKEN_OBJ_NONE;
	uint8_t		  *spki = NULL;
	size_t		   spki_len = 0;
	uint64_t	   now = hk_now_ms();
	int		   r = HK_ERR_NOMEM, exists;

	memset(&rec, 0, sizeof(rec));
	if (alg == HK_ALG_UNSPECIFIED) {
		alg = HK_ALG_ECDSA_P256;
	}
	if (!hk_valid_key_name(name) || hk_alg_name(alg) == NULL) {
		return HK_ERR_INVALID;
	}
	pthread_mutex_lock(&kr->admin);
	pthread_rwlock_rdlock(&kr->lock);
	exists = find_key(kr, name) != NULL;
	pthread_rwlock_unlock(&kr->lock);
	if (exists) {
		r = HK_ERR_EXISTS;
		goto out;
	}
	snprintf(rec.name, sizeof(rec.name), "%s", name);
	rec.alg = alg;
	rec.created_ms = now;
	rec.verify_grace_s = kr->default_grace_s;
	if ((rec.v = calloc(1, sizeof(*rec.v))) == NULL) {
		goto out;
	}
	rec.nv = 1;
	set_intent(kr, &rec.v[0], 1, now);
	/* 1. intent, 2. key pair, 3. commit */
	if ((r = rec_store(s, &rec, &meta)) != 0) {
		goto out;
	}
	test_hooks_crash_point("create:intent");
	if ((r = keygen(kr, s, name, alg, 1, 1, now, &priv, &pub, &spki,
		 &spki_len)) != 0) {
		log_err_r(r, "create %s: key generation failed", name);
		goto rollback;
	}
	test_hooks_crash_point("create:keygen");
	rec.v[0].spki = spki;
	rec.v[0].spki_len = spki_len;
	rec.v[0].creating = 0;
	rec.v[0].owner[0] = '\0';
	rec.v[0].intent_ms = 0;
	rec.v[0].state = HSMKEY__V1__VERSION_STATE__STATE_ACTIVE;
	rec.v[0].activated_ms = now;
	if ((r = rec_store(s, &rec, &meta)) != 0) {
		goto rollback;
	}
	test_hooks_crash_point("create:commit");
	if ((k = calloc(1, sizeof(*k))) == NULL ||
	    (k->v = calloc(1, sizeof(*k->v))) == NULL ||
	    (v = calloc(1, sizeof(*v))) == NULL) {
		/* committed in the token: the next start will see it */
		free(k != NULL ? k->v : NULL);
		free(k);
		r = HK_ERR_NOMEM;
		goto out;
	}
	memcpy(k->name, rec.name, sizeof(k->name));
	k->alg = alg;
	k->generation = rec.generation;
	k->created_ms = now;
	k->verify_grace_s = rec.verify_grace_s;
	k->meta = meta;
	v->rec = rec.v[0];
	v->spki = spki; /* now the version's */
	v->spki_len = spki_len;
	spki = NULL;
	version_own_spki(v);
	v->priv = priv;
	v->pub = pub;
	v->token_can_sign = 1;
	v->key = k;
	k->v[0] = v;
	k->nv = 1;
	pthread_rwlock_wrlock(&kr->lock);
	r = insert_key(kr, k);
	if (r == 0) {
		kr->nversions++;
	}
	pthread_rwlock_unlock(&kr->lock);
	if (r != 0) {
		free(v);
		free(k->v);
		free(k);
		goto out;
	}
	sync_can_sign(kr, s, k, 1);
	log_info("created key %s (%s)", name, hk_alg_name(alg));
	goto out;
rollback:
	if (priv != TOKEN_OBJ_NONE) {
		token_destroy(s, priv);
	}
	if (pub != TOKEN_OBJ_NONE) {
		token_destroy(s, pub);
	}
	if (meta != TOKEN_OBJ_NONE) {
		token_destroy(s, meta);
	}
out:
	pthread_mutex_unlock(&kr->admin);
	rec_free(&rec);
	free(spki);
	return r;
}

/* Runs with the admin mutex held. */
static int
rotate_locked(struct keyring *kr, struct token_session *s, struct kr_key *k,
    uint32_t expect, int stage, uint32_t *newp)
{
	struct kr_rec	rec;
	token_obj_t	meta = k->meta, priv = TOKEN_OBJ_NONE;
	token_obj_t	pub = TOKEN_OBJ_NONE;
	uint8_t	       *spki = NULL;
	size_t		spki_len = 0;
	uint64_t	now = hk_now_ms();
	uint32_t	version;
	struct kr_vrec *nv;
	int		r;

	if (expect != 0 && expect != k->nv) {
		log_info("rotate %s: expected v%" PRIu32 " but the newest is "
			 "v%zu",
		    k->name, expect, k->nv);
		return HK_ERR_PRECONDITION;
	}
	if (k->nv >= MAX_VERSIONS) {
		return HK_ERR_EXHAUSTED;
	}
	if ((r = rec_from_key(k, &rec, 1)) != 0) {
		return r;
	}
	version = (uint32_t)k->nv + 1;
	nv = &rec.v[rec.nv++];
	set_intent(kr, nv, version, now);
	if ((r = rec_store(s, &rec, &meta)) != 0) {
		goto out;
	}
	/* the intent is in the token: publish it (nothing uses it yet) */
	if ((r = apply_rec(kr, k, &rec, meta)) != 0) {
		goto out;
	}
	test_hooks_crash_point("rotate:intent");
	if ((r = keygen(kr, s, k->name, k->alg, version, !stage, now, &priv,
		 &pub, &spki, &spki_len)) != 0) {
		log_err_r(r, "rotate %s: key generation failed", k->name);
		rec.nv--;
		if (rec_store(s, &rec, &meta) == 0) {
			apply_rec(kr, k, &rec, meta);
		}
		goto out;
	}
	test_hooks_crash_point("rotate:keygen");
	nv->spki = spki; /* apply_rec() copies it into the version */
	nv->spki_len = spki_len;
	nv->creating = 0;
	nv->owner[0] = '\0';
	nv->intent_ms = 0;
	if (!stage) {
		nv->state = HSMKEY__V1__VERSION_STATE__STATE_ACTIVE;
		nv->activated_ms = now;
		rec_retire_others(&rec, version, now);
	}
	if ((r = rec_store(s, &rec, &meta)) != 0) {
		token_destroy(s, priv);
		if (pub != TOKEN_OBJ_NONE) {
			token_destroy(s, pub);
		}
		goto out;
	}
	pthread_rwlock_wrlock(&kr->lock);
	k->v[version - 1]->priv = priv;
	k->v[version - 1]->pub = pub;
	k->v[version - 1]->token_can_sign = !stage;
	pthread_rwlock_unlock(&kr->lock);
	if ((r = apply_rec(kr, k, &rec, meta)) != 0) {
		goto out;
	}
	test_hooks_crash_point("rotate:commit");
	sync_can_sign(kr, s, k, 1);
	log_info("rotated key %s to v%" PRIu32 "%s", k->name, version,
	    stage ? " (staged: pending)" : "");
	*newp = version;
out:
	rec_free(&rec);
	free(spki);
	return r;
}

int
keyring_rotate(struct keyring *kr, struct token_session *s, const char *name,
    uint32_t expect, int stage, uint32_t *newp)
{
	struct kr_key *k;
	int	       r;

	*newp = 0;
	pthread_mutex_lock(&kr->admin);
	pthread_rwlock_rdlock(&kr->lock);
	k = find_key(kr, name);
	pthread_rwlock_unlock(&kr->lock);
	r = k == NULL ? HK_ERR_NOT_FOUND
		      : rotate_locked(kr, s, k, expect, stage, newp);
	pthread_mutex_unlock(&kr->admin);
	return r;
}

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
	k = find_key(kr, name);
	pthread_rwlock_unlock(&kr->lock);
	if (k == NULL) {
		pthread_mutex_unlock(&kr->admin);
		return HK_ERR_NOT_FOUND;
	}
	*kp = k;
	if ((r = rec_from_key(k, rec, 0)) != 0) {
		pthread_mutex_unlock(&kr->admin);
		return r;
	}
	if (vp == NULL) {
		return 0;
	}
	if (version == 0 || version > rec->nv ||
	    rec->v[version - 1].creating) {
		pthread_mutex_unlock(&kr->admin);
		rec_free(rec);
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
		if ((r = rec_store(s, rec, &meta)) == 0) {
			r = apply_rec(kr, k, rec, meta);
		}
		if (r == 0) {
			sync_can_sign(kr, s, k, 1);
		}
	}
	pthread_mutex_unlock(&kr->admin);
	rec_free(rec);
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
	if (v->state == HSMKEY__V1__VERSION_STATE__STATE_ACTIVE &&
	    rec_primary(&rec) == version) {
		goto out; /* already done: idempotent */
	}
	if (v->state != HSMKEY__V1__VERSION_STATE__STATE_PENDING) {
		r = HK_ERR_PRECONDITION;
		goto out;
	}
	if (version < rec_primary(&rec)) {
		/* a newer version already signs */
		r = HK_ERR_PRECONDITION;
		goto out;
	}
	v->state = HSMKEY__V1__VERSION_STATE__STATE_ACTIVE;
	v->activated_ms = now;
	v->retire_ms = 0;
	rec_retire_others(&rec, version, now);
	changed = 1;
	log_info("promoted key %s v%" PRIu32, name, version);
out:
	return admin_commit(kr, s, k, &rec, changed, r);
}

int
keyring_policy(struct keyring *kr, struct token_session *s,
    const Hsmkey__V1__PolicyRequest *req)
{
	struct kr_key *k;
	struct kr_rec  rec;
	int	       r;

	if ((r = admin_begin(kr, req->name, 0, &k, &rec, NULL)) != 0) {
		return r;
	}
	if (req->sign_overlap_s != NULL) {
		rec.sign_overlap_s = req->sign_overlap_s->value;
	}
	if (req->verify_grace_s != NULL) {
		rec.verify_grace_s = req->verify_grace_s->value;
	}
	if (req->rotate_every_s != NULL) {
		rec.rotate_every_s = req->rotate_every_s->value;
	}
	if (req->expires_ms != NULL) {
		rec.expires_ms = req->expires_ms->value;
	}
	log_info("policy of key %s changed", req->name);
	return admin_commit(kr, s, k, &rec, 1, 0);
}

int
keyring_disable(struct keyring *kr, struct token_session *s, const char *name,
    uint32_t version)
{
	struct kr_key  *k;
	struct kr_rec	rec;
	struct kr_vrec *v;
	int		r, changed = 0;

	if ((r = admin_begin(kr, name, version, &k, &rec, &v)) != 0) {
		return r;
	}
	switch (v->state) {
	case HSMKEY__V1__VERSION_STATE__STATE_DISABLED:
		break; /* idempotent */
	case HSMKEY__V1__VERSION_STATE__STATE_DESTROYED:
		r = HK_ERR_PRECONDITION;
		break;
	default:
		/* also cancels a scheduled destruction */
		v->state = HSMKEY__V1__VERSION_STATE__STATE_DISABLED;
		v->retire_ms = 0;
		changed = 1;
		log_info("disabled key %s v%" PRIu32, name, version);
		break;
	}
	return admin_commit(kr, s, k, &rec, changed, r);
}

/* Deletes the objects of a version; the caller holds the admin mutex. */
static void
destroy_objects(
    struct keyring *kr, struct token_session *s, struct kr_version *v)
{
	token_obj_t priv, pub;

	pthread_rwlock_wrlock(&kr->lock);
	priv = v->priv;
	pub = v->pub;
	v->priv = TOKEN_OBJ_NONE;
	v->pub = TOKEN_OBJ_NONE;
	pthread_rwlock_unlock(&kr->lock);
	if (priv != TOKEN_OBJ_NONE) {
		token_destroy(s, priv);
	}
	if (pub != TOKEN_OBJ_NONE) {
		token_destroy(s, pub);
	}
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
	switch (v->state) {
	case HSMKEY__V1__VERSION_STATE__STATE_ACTIVE:
		r = HK_ERR_PRECONDITION; /* disable it first */
		break;
	case HSMKEY__V1__VERSION_STATE__STATE_DESTROY_SCHEDULED:
	case HSMKEY__V1__VERSION_STATE__STATE_DESTROYED:
		break; /* idempotent */
	default:
		if (kr->destroy_delay_s == 0) {
			v->state = HSMKEY__V1__VERSION_STATE__STATE_DESTROYED;
			v->retire_ms = 0;
		} else {
			v->state =
			    HSMKEY__V1__VERSION_STATE__STATE_DESTROY_SCHEDULED;
			v->retire_ms = now + kr->destroy_delay_s * 1000;
		}
		changed = 1;
		log_info("key %s v%" PRIu32 ": %s", name, version,
		    hk_state_name(v->state));
		break;
	}
	r = admin_commit(kr, s, k, &rec, changed, r);
	if (r == 0 && changed && kr->destroy_delay_s == 0) {
		pthread_mutex_lock(&kr->admin);
		destroy_objects(kr, s, k->v[version - 1]);
		pthread_mutex_unlock(&kr->admin);
	}
	return r;
}

/* Applies due transitions to one key; the caller holds the admin mutex. */
static int
tick_key(struct keyring *kr, struct token_session *s, struct kr_key *k,
    uint64_t now)
{
	struct kr_rec rec;
	token_obj_t   meta = k->meta;
	size_t	      i;
	int	      r, changed = 0, destroyed = 0;
	uint32_t      primary, newv;

	if ((r = rec_from_key(k, &rec, 0)) != 0) {
		return r;
	}
	for (i = 0; i < rec.nv; i++) {
		struct kr_vrec *v = &rec.v[i];

		if (v->creating || v->retire_ms == 0 || now < v->retire_ms) {
			continue;
		}
		switch (v->state) {
		case HSMKEY__V1__VERSION_STATE__STATE_ACTIVE:
			v->state =
			    HSMKEY__V1__VERSION_STATE__STATE_VERIFY_ONLY;
			v->retire_ms += rec.verify_grace_s * 1000;
			changed = 1;
			break;
		case HSMKEY__V1__VERSION_STATE__STATE_VERIFY_ONLY:
			v->state = HSMKEY__V1__VERSION_STATE__STATE_DISABLED;
			v->retire_ms = 0;
			changed = 1;
			break;
		case HSMKEY__V1__VERSION_STATE__STATE_DESTROY_SCHEDULED:
			v->state = HSMKEY__V1__VERSION_STATE__STATE_DESTROYED;
			v->retire_ms = 0;
			changed = destroyed = 1;
			break;
		default:
			break;
		}
	}
	if (changed) {
		if ((r = rec_store(s, &rec, &meta)) == 0 &&
		    (r = apply_rec(kr, k, &rec, meta)) == 0) {
			sync_can_sign(kr, s, k, 1);
		}
		for (i = 0; r == 0 && destroyed && i < k->nv; i++) {
			if (k->v[i]->rec.state ==
			    HSMKEY__V1__VERSION_STATE__STATE_DESTROYED) {
				destroy_objects(kr, s, k->v[i]);
			}
		}
	}
	rec_free(&rec);
	if (r != 0) {
		return r;
	}
	primary = key_primary(k);
	if (k->rotate_every_s > 0 && primary != 0 &&
	    now >= k->v[primary - 1]->rec.activated_ms +
		    k->rotate_every_s * 1000 &&
	    primary == k->nv) {
		log_info("key %s: automatic rotation is due", k->name);
		r = rotate_locked(kr, s, k, (uint32_t)k->nv, 0, &newv);
	}
	return r;
}

/* 1 if k has a transition or a rotation due at now; the caller holds the
 * admin mutex or the read lock. */
static int
key_due(const struct kr_key *k, uint64_t now)
{
	uint32_t primary = key_primary(k);
	size_t	 i;

	for (i = 0; i < k->nv; i++) {
		const struct kr_vrec *v = &k->v[i]->rec;

		if (!v->creating && v->retire_ms != 0 && now >= v->retire_ms) {
			return 1;
		}
	}
	return k->rotate_every_s > 0 && primary != 0 && primary == k->nv &&
	    now >=
	    k->v[primary - 1]->rec.activated_ms + k->rotate_every_s * 1000;
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
	 * interleave; at most TICK_MAX_KEYS record writes a tick (each can
	 * take a while on a large SoftHSM token), the rest next time; and
	 * never past a stop request.
	 */
	for (i = 0; i < n && done < TICK_MAX_KEYS; i++) {
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

/* ---- snapshots -------------------------------------------------------- */

void
keyring_info_free(Hsmkey__V1__KeyInfo *info)
{
	size_t i;

	if (info == NULL) {
		return;
	}
	for (i = 0; i < info->n_versions; i++) {
		free(info->versions[i]);
	}
	free(info->versions);
	free(info->policy);
	free(info->name);
	free(info);
}

/* Builds a KeyInfo of k; the caller holds the read lock. */
static Hsmkey__V1__KeyInfo *
key_info(const struct kr_key *k)
{
	Hsmkey__V1__KeyInfo *info;
	size_t		     i, n = 0;
	uint32_t	     primary = key_primary(k);

	if ((info = calloc(1, sizeof(*info))) == NULL) {
		return NULL;
	}
	hsmkey__v1__key_info__init(info);
	if ((info->name = strdup(k->name)) == NULL ||
	    (info->policy = calloc(1, sizeof(*info->policy))) == NULL ||
	    (info->versions = calloc(k->nv + 1, sizeof(*info->versions))) ==
		NULL) {
		keyring_info_free(info);
		return NULL;
	}
	hsmkey__v1__policy__init(info->policy);
	info->alg = hk_alg_to_wire(k->alg);
	info->primary = primary;
	info->created_ms = k->created_ms;
	info->policy->sign_overlap_s = k->sign_overlap_s;
	info->policy->verify_grace_s = k->verify_grace_s;
	info->policy->rotate_every_s = k->rotate_every_s;
	info->policy->expires_ms = k->expires_ms;
	for (i = 0; i < k->nv; i++) {
		const struct kr_vrec	*v = &k->v[i]->rec;
		Hsmkey__V1__VersionInfo *vi;

		if (v->creating) {
			continue; /* half made: invisible */
		}
		if ((vi = calloc(1, sizeof(*vi))) == NULL) {
			info->n_versions = n;
			keyring_info_free(info);
			return NULL;
		}
		hsmkey__v1__version_info__init(vi);
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
		info->versions[n++] = vi;
	}
	info->n_versions = n;
	return info;
}

int
keyring_info(struct keyring *kr, const char *name, Hsmkey__V1__KeyInfo **infop)
{
	struct kr_key *k;
	int	       r = HK_ERR_NOT_FOUND;

	*infop = NULL;
	pthread_rwlock_rdlock(&kr->lock);
	if ((k = find_key(kr, name)) != NULL) {
		r = (*infop = key_info(k)) == NULL ? HK_ERR_NOMEM : 0;
	}
	pthread_rwlock_unlock(&kr->lock);
	return r;
}

static int
info_cmp(const void *a, const void *b)
{
	const Hsmkey__V1__KeyInfo *const *x = a, *const *y = b;

	return strcmp((*x)->name, (*y)->name);
}

int
keyring_list(struct keyring *kr, int (*filter)(void *, const char *),
    void *arg, Hsmkey__V1__KeyInfo ***infosp, size_t *np)
{
	Hsmkey__V1__KeyInfo **infos;
	struct kr_key	     *k;
	size_t		      i, n = 0;
	int		      r = 0;

	*infosp = NULL;
	*np = 0;
	pthread_rwlock_rdlock(&kr->lock);
	if ((infos = calloc(kr->nkeys + 1, sizeof(*infos))) == NULL) {
		pthread_rwlock_unlock(&kr->lock);
		return HK_ERR_NOMEM;
	}
	for (i = 0; r == 0 && i < kr->nbuckets; i++) {
		for (k = kr->buckets[i]; k != NULL; k = k->next) {
			if (filter != NULL && !filter(arg, k->name)) {
				continue;
			}
			if ((infos[n] = key_info(k)) == NULL) {
				r = HK_ERR_NOMEM;
				break;
			}
			n++;
		}
	}
	pthread_rwlock_unlock(&kr->lock);
	if (r != 0) {
		for (i = 0; i < n; i++) {
			keyring_info_free(infos[i]);
		}
		free(infos);
		return r;
	}
	qsort(infos, n, sizeof(*infos), info_cmp);
	*infosp = infos;
	*np = n;
	return 0;
}

int
keyring_stats(
    struct keyring *kr, Hsmkey__V1__VersionStats ***statsp, size_t *np)
{
	Hsmkey__V1__VersionStats **st;
	struct kr_key		  *k;
	size_t			   i, j, n = 0;
	int			   r = 0;

	*statsp = NULL;
	*np = 0;
	pthread_rwlock_rdlock(&kr->lock);
	if ((st = calloc(kr->nversions + 1, sizeof(*st))) == NULL) {
		pthread_rwlock_unlock(&kr->lock);
		return HK_ERR_NOMEM;
	}
	for (i = 0; r == 0 && i < kr->nbuckets; i++) {
		for (k = kr->buckets[i]; r == 0 && k != NULL; k = k->next) {
			for (j = 0; j < k->nv && n < kr->nversions; j++) {
				struct kr_version	 *v = k->v[j];
				Hsmkey__V1__VersionStats *x;

				if (v->rec.creating) {
					continue;
				}
				if ((x = calloc(1, sizeof(*x))) == NULL) {
					r = HK_ERR_NOMEM;
					break;
				}
				hsmkey__v1__version_stats__init(x);
				if ((x->key = strdup(k->name)) == NULL) {
					free(x);
					r = HK_ERR_NOMEM;
					break;
				}
				x->version = v->rec.version;
				x->signs = atomic_load(&v->signs);
				x->verifies = atomic_load(&v->verifies);
				x->errors = atomic_load(&v->errors);
				x->last_use_ms = atomic_load(&v->last_use_ms);
				x->state = v->rec.state;
				st[n++] = x;
			}
		}
	}
	pthread_rwlock_unlock(&kr->lock);
	*statsp = st;
	*np = n;
	return r;
}

void
keyring_totals(struct keyring *kr, uint32_t *keysp, uint32_t *versionsp)
{
	pthread_rwlock_rdlock(&kr->lock);
	*keysp = (uint32_t)kr->nkeys;
	*versionsp = (uint32_t)kr->nversions;
	pthread_rwlock_unlock(&kr->lock);
}
