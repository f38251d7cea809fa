/*
 * keyring_int.h: what the files of the keyring share (keyring.c: index,
 * lookups and snapshots; keyring_rec.c: the records in the token and the
 * key objects' state; keyring_load.c: load and repair; keyring_admin.c:
 * admin operations and the tick).  Included only by keyring*.c and the
 * keyring's unit test; everyone else uses keyring.h.
 *
 * Locking (see keyring.h): kr->lock guards what lookups read (the index,
 * each key's versions and records, the handles); kr->admin serialises every
 * change, which takes kr->lock for writing only to publish.
 */
#ifndef HK_KEYRING_INT_H
#define HK_KEYRING_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "keyring.h"
#include "lifecycle.h"
#include "token.h"

#define KR_META_PREFIX	 "hsmkey-key:"
#define KR_KEY_PREFIX	 "hsmkey:"
#define KR_OWNER_MAX	 128
#define KR_MAX_VERSIONS	 100000
#define KR_TICK_MAX_KEYS 50 /* keys changed by one keyring_tick() */

/* The persistent part of a version, as in StoredVersion. */
struct kr_vrec {
	uint32_t      version;
	enum lc_state state; /* changed only through lifecycle_apply() */
	uint64_t      created_ms;
	uint64_t      activated_ms;
	uint64_t      retire_ms;
	int	      creating;
	char	      owner[KR_OWNER_MAX];
	uint64_t      intent_ms;
	/* public key (SPKI DER), borrowed: from the version's own copy, the
	 * record's blob or a new key's buffer; NULL on old tokens */
	const uint8_t *spki;
	size_t	       spki_len;
};

/* The persistent part of a key, as in StoredKey. */
struct kr_rec {
	char		      name[KEYRING_NAME_MAX + 1];
	hk_alg		      alg;
	uint64_t	      generation;
	uint64_t	      created_ms;
	struct keyring_policy policy;
	struct kr_vrec	     *v; /* v[i].version == i + 1 */
	size_t		      nv;
	uint8_t		     *blob; /* the public keys of a decoded record */
};

struct kr_version {
	struct kr_vrec	  rec;
	uint8_t		 *spki; /* owned: rec.spki points here once set */
	size_t		  spki_len;
	token_obj_t	  priv;
	token_obj_t	  pub; /* a public key object (older tokens) */
	int		  token_can_sign;
	token_obj_t	  copy;	    /* session copy that signs, or NONE */
	int		  no_copy;  /* the token refused to copy it */
	int		  leftover; /* destroyed, objects not yet deleted */
	EVP_PKEY *_Atomic pkey;	    /* loaded on first use */
	_Atomic uint64_t  signs;
	_Atomic uint64_t  verifies;
	_Atomic uint64_t  errors;
	_Atomic uint64_t  last_use_ms;
	struct kr_key	 *key;
};

struct kr_key {
	char		      name[KEYRING_NAME_MAX + 1];
	hk_alg		      alg;
	uint64_t	      generation;
	uint64_t	      created_ms;
	struct keyring_policy policy;
	struct kr_version   **v;
	size_t		      nv;
	/* version structs allocated in v[] (>= nv): those past nv were
	 * intents withdrawn after a failed key generation, kept (a struct is
	 * never freed before keyring_free()) and reused by the next one */
	size_t	       vcap;
	token_obj_t    meta;
	struct kr_key *next; /* hash chain */
};

struct keyring {
	pthread_rwlock_t  lock;
	pthread_mutex_t	  admin;
	pthread_mutex_t	  pk_lock;
	struct kr_key	**buckets;
	size_t		  nbuckets;
	size_t		  nkeys;
	size_t		  nversions;
	uint64_t	  destroy_delay_s;
	uint64_t	  default_grace_s;
	char		  instance[KR_OWNER_MAX];
	char		  host[KR_OWNER_MAX];
	struct token	 *tok;
	int		  copies; /* sign with session copies */
	keyring_moved_fn *moved;
	void		 *moved_arg;
};

/* ---- keyring.c: the index ---- */

/* FNV-1a of a NUL-terminated string. */
uint64_t kr_hash(const char *s);
/* The key called name, or NULL; the caller holds a lock or the admin
 * mutex.  Caller does not free. */
struct kr_key *kr_find_key(struct keyring *kr, const char *name);
/* Inserts k (the keyring owns it then); the caller holds the write lock
 * or is still loading.  HK_ERR_NOMEM if the index cannot grow. */
int kr_insert_key(struct keyring *kr, struct kr_key *k);
/* The newest active version of k, 0 if none. */
uint32_t kr_key_primary(const struct kr_key *k);
/* When k's automatic rotation is due: its primary's activation plus
 * rotate_every, if the primary is the newest version (a staged one waits
 * for promote); 0 when none is planned.  The caller holds a lock or the
 * admin mutex. */
uint64_t kr_next_rotation(const struct kr_key *k);
/* "hsmkey:<name>:v<N>", the label and id of a version's objects. */
void kr_key_label(char *buf, size_t len, const char *name, uint32_t version);
/* A new, empty keyring with opts; NULL without memory.  Caller must
 * keyring_free(). */
struct keyring *kr_new(struct token *tok, const struct keyring_opts *opts);
/* A new key of rec's persistent state (its record object meta), with a
 * version for each of rec's; NULL without memory.  Caller must
 * kr_key_free() it unless it is inserted. */
struct kr_key *kr_key_new(const struct kr_rec *rec, token_obj_t meta);
/* Frees k and its versions (not yet or no longer in the index). */
void kr_key_free(struct kr_key *k);

/* ---- keyring_rec.c: records and key objects ---- */

void kr_rec_free(struct kr_rec *rec);
/* Copies the persistent state of k (room for extra more versions); the
 * caller holds the admin mutex.  Caller must kr_rec_free(rec). */
int kr_rec_from_key(const struct kr_key *k, struct kr_rec *rec, size_t extra);
/* Writes rec as a new record object with the next generation, then
 * removes the old one.  *metap: in the old handle, out the new. */
int
kr_rec_store(struct token_session *s, struct kr_rec *rec, token_obj_t *metap);
/* Decodes a stored record.  Caller must kr_rec_free(rec) on success. */
int kr_rec_decode(const uint8_t *buf, size_t len, struct kr_rec *rec);
/* Gives v its own copy of the public key its record names. */
int  kr_version_own_spki(struct kr_version *v);
void kr_version_free(struct kr_version *v);
/* Makes the session copy of an active version, once; the caller holds
 * the admin mutex. */
void kr_make_copy(
    struct keyring *kr, struct token_session *s, struct kr_version *v);
/* Makes CKA_SIGN and the session copies of k match its states; the
 * caller holds the admin mutex. */
void kr_sync_can_sign(struct keyring *kr, struct token_session *s,
    struct kr_key *k, int make_copies);

#endif /* HK_KEYRING_INT_H */
