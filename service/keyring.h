/*
 * keyring.h: key names -> versions, states, policy, and the token objects
 * behind them.  The token is the system of record: every change is written
 * to the token (a CKO_DATA record per key, see proto/store.proto) before it
 * is visible here, and keyring_load() rebuilds everything from the token,
 * repairing what a crash left half done.  Version states and their moves
 * are lifecycle.h's; the API speaks C types only (service/convert.h makes
 * wire messages of them).  Implemented in keyring.c (index, lookups,
 * snapshots), keyring_rec.c, keyring_load.c and keyring_admin.c.
 *
 * Thread-safety: lookups (signer, verifier, info) take a read lock and may
 * run from any number of threads; admin operations are serialised by an
 * admin mutex and take the write lock only to publish.  Key and version
 * structs are never freed before keyring_free(), so their identity is
 * stable.  Each caller passes its own token session.
 */
#ifndef HK_KEYRING_H
#define HK_KEYRING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "lifecycle.h"
#include "token.h"
#include "alg.h"

struct keyring;
struct token_object;

#define KEYRING_NAME_MAX 64 /* a key name's length */

/*
 * Told of each move keyring_tick() makes by itself, once it is durable:
 * key, version, and the event (LC_EV_OVERLAP_END, LC_EV_GRACE_END,
 * LC_EV_DELAY_END, or LC_EV_ROTATE for an automatic rotation: version is
 * the new one).  Called on the ticker's thread with the admin mutex held:
 * it must not wait (queue, do not write).
 */
typedef void keyring_moved_fn(
    void *arg, const char *key, uint32_t version, enum lc_event ev);

struct keyring_opts {
	uint64_t	  destroy_delay_s; /* destroy-scheduled -> destroyed */
	uint64_t	  default_verify_grace_s;
	const char	 *instance; /* "host/pid/start" of this process */
	int		  no_session_copies; /* sign with token objects only */
	keyring_moved_fn *moved;	     /* NULL: nobody is told */
	void		 *moved_arg;
};

/* What signing with a version needs; valid until keyring_free(). */
struct keyring_signer {
	hk_alg		   alg;
	uint32_t	   version;
	token_obj_t	   priv;
	struct kr_version *v; /* for counters */
};

/*
 * Builds the keyring from the token objects objs (one token_list() walk),
 * repairing interrupted creates and rotations.  Caller must keyring_free().
 */
int  keyring_load(struct keyring **krp, struct token *tok,
     struct token_session *s, const struct token_object *objs, size_t nobjs,
     const struct keyring_opts *opts);
void keyring_free(struct keyring *kr);
/* Finds every key's objects again in objs (a new token_list() walk) after
 * the token was reconnected and its handles changed; session copies are
 * made again at the next signature.  Nothing else changes. */
int keyring_rebind(
    struct keyring *kr, const struct token_object *objs, size_t nobjs);

/* The version to sign with (0: the primary).  HK_ERR_NOT_FOUND for an
 * unknown key or version, HK_ERR_PRECONDITION if it may not sign now. */
int keyring_signer(struct keyring *kr, const char *name, uint32_t version,
    struct keyring_signer *sp);

/*
 * Public key of a version for verification: *pkeyp gets a new reference
 * (caller must EVP_PKEY_free), plus the version's state and retirement.
 */
int keyring_verifier(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version, hk_alg *algp, EVP_PKEY **pkeyp,
    enum lc_state *statep, uint64_t *retirep, struct kr_version **vp);

/* SubjectPublicKeyInfo of a version (0: primary). Caller must free *derp. */
int keyring_pubkey(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version, uint32_t *versionp, hk_alg *algp,
    uint8_t **derp, size_t *lenp);

/* After a sign with v: makes v's session copy if it has none yet (the
 * copies are made at first use, not at start). */
void keyring_want_copy(
    struct keyring *kr, struct token_session *s, struct kr_version *v);

/* A key's policy (DESIGN.md); 0: off / never. */
struct keyring_policy {
	uint64_t sign_overlap_s;
	uint64_t verify_grace_s;
	uint64_t rotate_every_s;
	uint64_t expires_ms;
};

/* A policy change: each NULL field is left as it is. */
struct keyring_policy_change {
	const uint64_t *sign_overlap_s;
	const uint64_t *verify_grace_s;
	const uint64_t *rotate_every_s;
	const uint64_t *expires_ms;
};

/* A snapshot of one version and its usage since the service started. */
struct keyring_vinfo {
	uint32_t      version;
	enum lc_state state;
	uint64_t      created_ms;
	uint64_t      activated_ms;
	uint64_t retire_ms; /* when it leaves its state (0: not planned) */
	int	 primary;
	uint64_t signs;
	uint64_t verifies;
	uint64_t errors;
	uint64_t last_use_ms;
};

/* A snapshot of one key; versions being made are left out. */
struct keyring_info {
	char		      name[KEYRING_NAME_MAX + 1];
	hk_alg		      alg;
	uint32_t	      primary; /* 0: no active version */
	uint64_t	      created_ms;
	struct keyring_policy policy;
	uint64_t next_rotation_ms;	/* automatic rotation due (0: none) */
	struct keyring_vinfo *versions; /* owned: keyring_info_clear() */
	size_t		      nversions;
};

/* The counters of one version (keyring_stats()). */
struct keyring_vstats {
	char	      key[KEYRING_NAME_MAX + 1];
	uint32_t      version;
	enum lc_state state;
	uint64_t      signs;
	uint64_t      verifies;
	uint64_t      errors;
	uint64_t      last_use_ms;
};

/* Usage counters. */
enum keyring_count { KR_SIGN, KR_VERIFY, KR_ERROR };
void keyring_count(struct kr_version *v, enum keyring_count what, uint64_t n);

/* Admin operations; each is durable in the token when it returns. */
int keyring_create(
    struct keyring *kr, struct token_session *s, const char *name, hk_alg alg);
/*
 * Rotation flags: STAGE leaves the new version pending; EMERGENCY disables
 * every older version (pending, active, verify-only) in the same record
 * write that makes the new one primary (not with STAGE: HK_ERR_INVALID).
 * expect != 0 and not the newest version: HK_ERR_PRECONDITION.
 */
#define KEYRING_ROTATE_STAGE	 0x01
#define KEYRING_ROTATE_EMERGENCY 0x02
int keyring_rotate(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t expect, int flags, uint32_t *newp);
int keyring_promote(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version);
int keyring_policy(struct keyring *kr, struct token_session *s,
    const char *name, const struct keyring_policy_change *ch);
int keyring_disable(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version);
int keyring_destroy(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version);
/* Cancels the scheduled destruction of a version: destroy-scheduled ->
 * disabled, same key objects.  HK_ERR_PRECONDITION in any other state. */
int keyring_cancel_destroy(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version);

/* The first duration of ch over HK_DURATION_MAX_S ("verify_grace"), or
 * NULL: keyring_policy() refuses such a change (HK_ERR_INVALID). */
const char *keyring_policy_too_long(const struct keyring_policy_change *ch);

/* Applies time-based transitions due at now_ms (overlap and grace ends,
 * scheduled destruction, automatic rotation). */
int keyring_tick(struct keyring *kr, struct token_session *s, uint64_t now_ms,
    const atomic_int *stop);

/* A snapshot of one key into *info.  Caller must keyring_info_clear(info),
 * also on error. */
int
keyring_info(struct keyring *kr, const char *name, struct keyring_info *info);
void keyring_info_clear(struct keyring_info *info);
/* The state of one version now, and whether it is the primary: 0, or
 * HK_ERR_NOT_FOUND (then *statep is LC_NONE). */
int keyring_state(struct keyring *kr, const char *name, uint32_t version,
    enum lc_state *statep, int *primaryp);
/* Snapshots of every key for which filter(arg, name) returns 1 (NULL:
 * all), sorted by name.  Caller must keyring_list_free(*infosp, *np). */
int  keyring_list(struct keyring *kr, int (*filter)(void *, const char *),
     void *arg, struct keyring_info **infosp, size_t *np);
void keyring_list_free(struct keyring_info *infos, size_t n);

/* Counters of every version that exists.  Caller must free(*statsp). */
int
keyring_stats(struct keyring *kr, struct keyring_vstats **statsp, size_t *np);
void keyring_totals(struct keyring *kr, uint32_t *keysp, uint32_t *versionsp);

#endif /* HK_KEYRING_H */
