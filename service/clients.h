/*
 * clients.h: client credentials and grants.  Each client has a record in
 * the token (CKO_DATA "hsmkey-client:<id>", proto/store.proto) and one
 * CKO_SECRET_KEY per secret ("hsmkey-secret:<id>:<n>"), sensitive and not
 * extractable: the service computes MACs with the token and never holds a
 * secret after it has shown it once.
 *
 * Thread-safety: lookups take a read lock; changes are serialised and take
 * the write lock to publish.  struct client is never freed before
 * clients_free(), so a pointer to one stays valid.
 */
#ifndef HK_CLIENTS_H
#define HK_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "token.h"

struct clients;
struct client;

enum client_op {
	CLIENT_OP_SIGN = 1,
	CLIENT_OP_VERIFY,
	CLIENT_OP_PUBKEY,
	CLIENT_OP_ADMIN,
};

#define CLIENTS_MAX_SECRETS 8 /* live secrets per client */
#define CLIENTS_MAX_GRANTS  32
#define CLIENTS_GRANT_MAX   71 /* "pubkey:" and a 64-character glob */

/* One secret of a client (clients_list()). */
struct clients_secret_info {
	uint32_t number;
	uint64_t created_ms;
	uint64_t expires_ms;
	uint64_t last_used_ms; /* 0: not since the service started */
};

/* A snapshot of one client (clients_list()). */
struct clients_info {
	char   id[HK_CLIENT_ID_MAX + 1];
	char   grants[CLIENTS_MAX_GRANTS][CLIENTS_GRANT_MAX + 1];
	size_t ngrants; /* "OP:GLOB" as given */
	struct clients_secret_info secrets[CLIENTS_MAX_SECRETS];
	size_t			   nsecrets;
};

/* The counters of one client secret since the service started. */
struct clients_secret_stats {
	char	 client[HK_CLIENT_ID_MAX + 1];
	uint32_t secret;
	uint64_t requests;    /* requests that named it */
	uint64_t denials;     /* of them: bad MAC, clock, replay, denied */
	uint64_t last_use_ms; /* last request whose MAC held (0: never) */
};

/* Loads every client record and secret handle from objs; removes secret
 * objects no record knows.  Caller must clients_free(). */
int  clients_load(struct clients **cp, struct token_session *s,
     const struct token_object *objs, size_t nobjs, uint64_t secret_lifetime_s);
void clients_free(struct clients *c);
/* Finds every client's record and secret objects again in objs after the
 * token was reconnected and its handles changed; day keys, counters and
 * revocations in memory stay. */
int clients_rebind(
    struct clients *c, const struct token_object *objs, size_t nobjs);

/*
 * The secret key to check a request's MAC with.  HK_ERR_UNAUTHENTICATED
 * when the client or secret is unknown, revoked or expired; *whyp then says
 * which in a static word ("unknown-client", "unknown-secret" (also a
 * revoked one), "secret-expired"), for the log and the audit count only:
 * never for the reply, which must not tell an outsider what exists.
 */
int clients_secret(struct clients *c, const char *id, uint32_t secret_no,
    uint64_t now_ms, struct client **clp, token_obj_t *keyp,
    const char **whyp);

/* A live secret of a client: its number and its token object. */
struct clients_key {
	uint32_t    number;
	token_obj_t key;
};

/*
 * Every live (not revoked, not expired) secret of client id, for a
 * request that names none (secret_no 0): at most CLIENTS_MAX_SECRETS into
 * keys, *np of them.  HK_ERR_UNAUTHENTICATED when the client is unknown or
 * has none; *whyp then says which ("unknown-client", "unknown-secret"),
 * like clients_secret().
 */
int clients_live_secrets(struct clients *c, const char *id, uint64_t now_ms,
    struct client **clp, struct clients_key keys[CLIENTS_MAX_SECRETS],
    size_t *np, const char **whyp);

/*
 * The day key MACs of secret_no are made with on day (PROTOCOL.md): the
 * token computes it from the secret once, then it is kept in locked,
 * undumpable memory until the secret is revoked or the day is three days
 * old.  key is the secret's handle from clients_secret().
 */
int
clients_day_key(struct client *cl, struct token_session *s, uint32_t secret_no,
    token_obj_t key, uint32_t day, uint8_t out[HK_MAC_LEN]);

/* Counts a request made with secret_no of cl (its MAC may have failed),
 * and whether it was denied (bad MAC, clock, replay, no grant); used_ms,
 * when not 0, is when the secret was last used (its request passed every
 * check of the envelope). */
void clients_secret_count(struct clients *c, struct client *cl,
    uint32_t secret_no, int denied, uint64_t used_ms);
/* Per-secret counters of every client (only: of that one client).  Caller
 * must free(*statsp). */
int clients_secret_stats(struct clients *c, struct client *only,
    struct clients_secret_stats **statsp, size_t *np);
/* Counts a denied request of a client. */
void clients_denied(struct client *cl);

/* 1 if cl holds a grant for op on key name (NULL: on every key, "*"). */
int clients_allowed(
    struct clients *c, struct client *cl, enum client_op op, const char *key);
/* 1 if cl holds any grant matching key. */
int clients_any_grant(struct clients *c, struct client *cl, const char *key);
const char *client_id(const struct client *cl);
/* Per-client share of the nonce cache (guarded by the cache's lock). */
size_t *client_nonce_count(struct client *cl);

/* "OP:GLOB" -> 0, or HK_ERR_INVALID. */
int clients_parse_grant(
    const char *grant, enum client_op *opp, const char **globp);

/*
 * Creates client id with grants and a first secret made by the token's
 * random generator.  secret gets HK_SECRET_LEN bytes: the caller shows it
 * once and zeroes it.  HK_ERR_EXISTS if the id is taken.
 */
int clients_add(struct clients *c, struct token_session *s, const char *id,
    char *const *grants, size_t ngrants, uint8_t secret[HK_SECRET_LEN],
    uint32_t *secret_nop, uint64_t *expiresp);
/* Adds a secret to an existing client (the old ones keep working).
 * HK_ERR_INVALID for an id hk_valid_client_id() refuses. */
int clients_rotate(struct clients *c, struct token_session *s, const char *id,
    uint8_t secret[HK_SECRET_LEN], uint32_t *secret_nop, uint64_t *expiresp);
/* Revokes one secret at once (its token object is destroyed).
 * HK_ERR_INVALID for an invalid id, HK_ERR_NOT_FOUND for no such secret. */
int clients_revoke(struct clients *c, struct token_session *s, const char *id,
    uint32_t secret_no);
/*
 * Sets the grants of client id to exactly grants (1..CLIENTS_MAX_GRANTS
 * "OP:GLOB"), written to the token first; *infop gets the client's
 * snapshot after the change.  HK_ERR_INVALID for a bad id or grant,
 * HK_ERR_NOT_FOUND for no such client.
 */
int clients_grant(struct clients *c, struct token_session *s, const char *id,
    char *const *grants, size_t ngrants, struct clients_info *infop);
/* Snapshots of every client.  Caller must free(*infosp). */
int clients_list(struct clients *c, struct clients_info **infosp, size_t *np);
/* 1 if some client holds an admin grant. */
int clients_any_admin(struct clients *c);

#endif /* HK_CLIENTS_H */
