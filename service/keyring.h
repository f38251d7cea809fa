/*
 * keyring.h: key names -> versions, states, policy, and the token objects
 * behind them.  The token is the system of record: every change is written
 * to the token (a CKO_DATA record per key, see proto/store.proto) before it
 * is visible here, and keyring_load() rebuilds everything from the token,
 * repairing what a crash left half done.
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

#include "hsmkey.pb-c.h"
#include "token.h"
#include "wire.h"

struct keyring;
struct token_object;

struct keyring_opts {
	uint64_t    destroy_delay_s; /* destroy-scheduled -> destroyed */
	uint64_t    default_verify_grace_s;
	const char *instance;	       /* "host/pid/start" of this process */
	int	    no_session_copies; /* sign with token objects only */
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
    hk_state *statep, uint64_t *retirep, struct kr_version **vp);

/* SubjectPublicKeyInfo of a version (0: primary). Caller must free *derp. */
int keyring_pubkey(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version, uint32_t *versionp, hk_alg *algp,
    uint8_t **derp, size_t *lenp);

/* After a sign with v: makes v's session copy if it has none yet (the
 * copies are made at first use, not at start). */
void keyring_want_copy(
    struct keyring *kr, struct token_session *s, struct kr_version *v);

/* Usage counters. */
enum keyring_count { KR_SIGN, KR_VERIFY, KR_ERROR };
void keyring_count(struct kr_version *v, enum keyring_count what, uint64_t n);

/* Admin operations; each is durable in the token when it returns. */
int keyring_create(
    struct keyring *kr, struct token_session *s, const char *name, hk_alg alg);
int keyring_rotate(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t expect, int stage, uint32_t *newp);
int keyring_promote(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version);
int keyring_policy(struct keyring *kr, struct token_session *s,
    const Hsmkey__V1__PolicyRequest *req);
int keyring_disable(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version);
int keyring_destroy(struct keyring *kr, struct token_session *s,
    const char *name, uint32_t version);

/* Applies time-based transitions due at now_ms (overlap and grace ends,
 * scheduled destruction, automatic rotation). */
int keyring_tick(struct keyring *kr, struct token_session *s, uint64_t now_ms,
    const atomic_int *stop);

/* A snapshot of one key. Caller must keyring_info_free(*infop). */
int keyring_info(
    struct keyring *kr, const char *name, Hsmkey__V1__KeyInfo **infop);
/* Snapshots of every key for which filter(arg, name) returns 1, sorted by
 * name.  Caller must keyring_info_free() each and free(*infosp). */
int  keyring_list(struct keyring *kr, int (*filter)(void *, const char *),
     void *arg, Hsmkey__V1__KeyInfo ***infosp, size_t *np);
void keyring_info_free(Hsmkey__V1__KeyInfo *info);

/* Counter snapshots. Caller must free each entry's key and *statsp. */
int keyring_stats(
    struct keyring *kr, Hsmkey__V1__VersionStats ***statsp, size_t *np);
void keyring_totals(struct keyring *kr, uint32_t *keysp, uint32_t *versionsp);

#endif /* HK_KEYRING_H */
