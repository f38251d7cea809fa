/*
 * hk_client.h: internals of libhsmkey used by the hsmkey CLI and the unit
 * tests: the admin calls, in plain C (no protobuf type: the wire messages
 * stay inside the library, hk_call.h).  Not installed, not exported
 * (hidden by -fvisibility=hidden and libhsmkey.map).  Same thread-safety
 * as hsmkey.h: a handle serialises its calls.
 *
 * Every call returns 0 or a negative HSMKEY_E* code with
 * hsmkey_last_error(h) set.  A result's strings point into the reply it
 * holds; the matching *_free() releases all of it (and accepts a result
 * that was never filled, or zeroed).
 */
#ifndef HK_CLIENT_H
#define HK_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "hsmkey.h"

/* Largest message or digest a sign or verify request may carry. */
#define HK_CLIENT_MAX_DATA (1024 * 1024 - 4096)

/* The URL the handle is connected to; caller does not free. */
const char *hk_client_url(const struct hsmkey *h);
/* The client id the handle authenticates as; caller does not free. */
const char *hk_client_id(const struct hsmkey *h);

/* Sets hsmkey_last_error(h) (h may be NULL: the thread's open error) and
 * returns err. */
int hk_client_error(struct hsmkey *h, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- keys ---------------------------------------------------------------- */

struct hk_version_info {
	uint32_t    version;
	const char *state; /* "active", "verify-only", ...; static */
	int	    destroy_scheduled;
	int	    primary;
	uint64_t    created_ms, activated_ms, retire_ms;
	uint64_t    signs, verifies, errors, last_use_ms;
};

struct hk_key_info {
	const char	       *name;
	const char	       *alg; /* "ecdsa-p256", ...; NULL: unknown */
	uint32_t		primary;
	uint64_t		created_ms;
	uint64_t		sign_overlap_s, verify_grace_s;
	uint64_t		rotate_every_s, expires_ms;
	uint64_t		next_rotation_ms; /* 0: none planned */
	int			has_policy;
	int			service_key; /* the service's own key */
	uint32_t		changed; /* version the call made or changed */
	size_t			n_versions;
	struct hk_version_info *versions;
};

/* One key operation's result (create, describe, rotate, ...). */
struct hk_key_result {
	struct hk_key_info key;
	void		  *reply; /* owned */
};

/* A policy change: NULL fields stay as they are. */
struct hk_policy_change {
	const uint64_t *sign_overlap_s;
	const uint64_t *verify_grace_s;
	const uint64_t *rotate_every_s;
	const uint64_t *expires_ms;
};

/* What hk_key_version_op() does to one version of a key. */
enum hk_key_op {
	HK_KEY_PROMOTE, /* a pending version becomes active and primary */
	HK_KEY_DISABLE,
	HK_KEY_DESTROY, /* at once, or scheduled after the destroy delay */
	HK_KEY_CANCEL,	/* a scheduled destruction: back to disabled */
};

/* Key calls; *res is filled on success.  Caller must hk_key_result_free(res)
 * after any call.  alg NULL: ecdsa-p256; expect 0: any version. */
int hk_key_create(struct hsmkey *h, const char *name, const char *alg,
    struct hk_key_result *res);
int
hk_key_describe(struct hsmkey *h, const char *name, struct hk_key_result *res);
/* flags: HSMKEY_ROTATE_STAGE, HSMKEY_ROTATE_EMERGENCY (hsmkey.h). */
int  hk_key_rotate(struct hsmkey *h, const char *name, uint32_t expect,
     int flags, struct hk_key_result *res);
int  hk_key_version_op(struct hsmkey *h, enum hk_key_op op, const char *name,
     uint32_t version, struct hk_key_result *res);
int  hk_key_policy(struct hsmkey *h, const char *name,
     const struct hk_policy_change *pc, struct hk_key_result *res);
void hk_key_result_free(struct hk_key_result *res);

struct hk_key_list {
	size_t		    n;
	struct hk_key_info *keys;
	void		   *reply; /* owned */
};

/* Every key.  Caller must hk_key_list_free(l) after any call. */
int  hk_key_list(struct hsmkey *h, struct hk_key_list *l);
void hk_key_list_free(struct hk_key_list *l);

struct hk_pubkey {
	uint32_t       version;
	const char    *alg; /* NULL: unknown */
	const char    *pem; /* "" if the reply had none */
	const uint8_t *der;
	size_t	       der_len;
	void	      *reply; /* owned */
};

/* The public key of a version (0: primary), PEM and DER.  Caller must
 * hk_pubkey_free(pk) after any call. */
int  hk_key_pubkey(struct hsmkey *h, const char *name, uint32_t version,
     struct hk_pubkey *pk);
void hk_pubkey_free(struct hk_pubkey *pk);

/* ---- key sets (keyset.c) ------------------------------------------------ */

/* One version of a key set, in the order of its JSON's "keys". */
struct hk_keyset_entry {
	const char    *name;
	uint32_t       version;
	const char    *state; /* "pending", "active", "verify-only"; static */
	const char    *alg;   /* NULL: unknown */
	const uint8_t *der;   /* SubjectPublicKeyInfo */
	size_t	       der_len;
	uint64_t       sign_until_ms, verify_until_ms; /* 0: none planned */
};

struct hk_keyset {
	const char	       *jwks; /* one line and a newline */
	const char	       *jws;  /* signed: the compact JWS; else "" */
	uint32_t		keyset_version; /* signed: of hsmkey-keyset */
	size_t			n;
	struct hk_keyset_entry *entries;
	void		       *reply; /* owned */
};

/* The key set of n names (signed: also its JWS).  Caller must
 * hk_keyset_free(ks) after any call. */
int  hk_keyset(struct hsmkey *h, const char *const *names, size_t n,
     int signed_, struct hk_keyset *ks);
void hk_keyset_free(struct hk_keyset *ks);

/* ---- clients --------------------------------------------------------------- */

/* New credentials of a client, shown once. */
struct hk_client_secret {
	const char    *id;
	uint32_t       secret_no;
	const uint8_t *secret; /* zeroed by hk_client_secret_free() */
	size_t	       secret_len;
	uint64_t       expires_ms;
	void	      *reply; /* owned */
};

/* Creates client id with grants / gives it a new secret.  Caller must
 * hk_client_secret_free(cs) after any call. */
int hk_client_add(struct hsmkey *h, const char *id, const char *const *grants,
    size_t n_grants, struct hk_client_secret *cs);
int hk_client_rotate(
    struct hsmkey *h, const char *id, struct hk_client_secret *cs);
void hk_client_secret_free(struct hk_client_secret *cs);

/* Revokes secret number secret_no of client id. */
int hk_client_revoke(struct hsmkey *h, const char *id, uint32_t secret_no);

struct hk_secret_info {
	uint32_t number;
	uint64_t created_ms, expires_ms, last_used_ms;
};

struct hk_client_info {
	const char	      *id;
	size_t		       n_grants;
	const char *const     *grants;
	size_t		       n_secrets;
	struct hk_secret_info *secrets;
};

struct hk_client_list {
	size_t		       n;
	struct hk_client_info *clients;
	void		      *reply; /* owned */
};

/* One client, as the service holds it after a change. */
struct hk_client_result {
	struct hk_client_info client;
	void		     *reply; /* owned */
};

/* Sets the grants of client id to exactly grants[0..n_grants).  Caller
 * must hk_client_result_free(res) after any call. */
int  hk_client_grant(struct hsmkey *h, const char *id,
     const char *const *grants, size_t n_grants, struct hk_client_result *res);
void hk_client_result_free(struct hk_client_result *res);

/* Every client.  Caller must hk_client_list_free(l) after any call. */
int  hk_client_list(struct hsmkey *h, struct hk_client_list *l);
void hk_client_list_free(struct hk_client_list *l);

/* ---- the service ------------------------------------------------------------ */

struct hk_version_stats {
	const char *key;
	uint32_t    version;
	const char *state; /* static */
	uint64_t    signs, verifies, errors, last_use_ms;
};

struct hk_secret_stats {
	const char *client;
	uint32_t    secret;
	uint64_t    requests, denials, last_use_ms;
};

struct hk_stats {
	size_t			 n_versions;
	struct hk_version_stats *versions;
	size_t			 n_secrets;
	struct hk_secret_stats	*secrets;
	void			*reply; /* owned */
};

/* Counters since the service started.  Caller must hk_stats_free(st)
 * after any call. */
int  hk_service_stats(struct hsmkey *h, struct hk_stats *st);
void hk_stats_free(struct hk_stats *st);

struct hk_health {
	const char *version;
	uint32_t    protocol;
	int	    token_ok, audit_ok;
	const char *token_label;
	const char *token_state; /* "" if the service gave none */
	const char *audit_state; /* "" if the service gave none */
	uint32_t    keys, versions, workers;
	uint64_t    uptime_s;
	uint64_t    token_down_since_ms; /* 0 while the token is up */
	uint64_t    token_repairs;	 /* reconnects since the start */
	void	   *reply;		 /* owned */
};

/* The service's health.  Caller must hk_health_free(hh) after any call. */
int  hk_service_health(struct hsmkey *h, struct hk_health *hh);
void hk_health_free(struct hk_health *hh);

#endif /* HK_CLIENT_H */
