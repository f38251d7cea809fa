/* clients.c: client lookups, grants, day keys and counters (see
 * clients.h); changes are in clients_admin.c. */
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "clients_int.h"
#include "hk_err.h"
#include "log.h"
#include "secmem.h"
#include "wire.h"

/* Zeroed memory aligned for the structs above (free() releases it). */
void *
cl_zalloc_lines(size_t size)
{
	void *p;

	if ((p = aligned_alloc(CACHE_LINE, size)) != NULL) {
		memset(p, 0, size);
	}
	return p;
}

static const char *op_names[] = {
	[CLIENT_OP_SIGN] = "sign",
	[CLIENT_OP_VERIFY] = "verify",
	[CLIENT_OP_PUBKEY] = "pubkey",
	[CLIENT_OP_ADMIN] = "admin",
};

int
clients_parse_grant(const char *grant, enum client_op *opp, const char **globp)
{
	const char *colon, *p;
	size_t	    i, oplen;

	if ((colon = strchr(grant, ':')) == NULL) {
		return HK_ERR_INVALID;
	}
	oplen = (size_t)(colon - grant);
	for (i = CLIENT_OP_SIGN; i <= CLIENT_OP_ADMIN; i++) {
		if (strlen(op_names[i]) == oplen &&
		    strncmp(grant, op_names[i], oplen) == 0) {
			break;
		}
	}
	if (i > CLIENT_OP_ADMIN) {
		return HK_ERR_INVALID;
	}
	p = colon + 1;
	if (*p == '\0' || strlen(p) > 64) {
		return HK_ERR_INVALID;
	}
	for (; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			strchr("._-*?[]!", *p) != NULL)) {
			return HK_ERR_INVALID;
		}
	}
	*opp = (enum client_op)i;
	*globp = colon + 1;
	return 0;
}

struct client *
cl_client_new(void)
{
	struct client *cl;
	void	      *p;

	if ((cl = cl_zalloc_lines(sizeof(*cl))) == NULL) {
		return NULL;
	}
	/* locked if possible: a failure to lock is not a reason to refuse
	 * service */
	if ((p = hk_secmem_alloc(sizeof(struct daykeys))) == NULL) {
		free(cl);
		return NULL;
	}
	cl->dk = p;
	pthread_rwlock_init(&cl->dk_lock, NULL);
	return cl;
}

void
cl_client_free(struct client *cl)
{
	size_t i;

	if (cl == NULL) {
		return;
	}
	for (i = 0; i < cl->ngrants; i++) {
		free(cl->grants[i].glob);
		free(cl->grants[i].text);
	}
	hk_secmem_free(cl->dk, sizeof(*cl->dk));
	pthread_rwlock_destroy(&cl->dk_lock);
	free(cl);
}

void
cl_forget_day_keys(struct client *cl, uint32_t number)
{
	size_t i;

	pthread_rwlock_wrlock(&cl->dk_lock);
	for (i = 0; i < CLIENTS_MAX_SECRETS; i++) {
		if (cl->dk_number[i] == number) {
			OPENSSL_cleanse(
			    cl->dk->key[i], sizeof(cl->dk->key[i]));
			memset(cl->dk->day[i], 0, sizeof(cl->dk->day[i]));
			cl->dk_number[i] = 0;
		}
	}
	cl->dk_generation++;
	pthread_rwlock_unlock(&cl->dk_lock);
}

int
cl_day_key_cached(struct client *cl, uint32_t secret_no, uint32_t day,
    uint8_t out[HK_MAC_LEN], uint64_t *genp)
{
	size_t i, j;
	int    r = HK_ERR_NOT_FOUND;

	pthread_rwlock_rdlock(&cl->dk_lock);
	*genp = cl->dk_generation;
	for (i = 0; i < CLIENTS_MAX_SECRETS && r != 0; i++) {
		if (cl->dk_number[i] != secret_no) {
			continue;
		}
		for (j = 0; j < DAY_SLOTS; j++) {
			if (cl->dk->day[i][j] == day) {
				memcpy(out, cl->dk->key[i][j], HK_MAC_LEN);
				r = 0;
				break;
			}
		}
	}
	pthread_rwlock_unlock(&cl->dk_lock);
	return r;
}

/* The slot of secret_no's day keys, or of a free one; CLIENTS_MAX_SECRETS
 * when there is neither.  The caller holds dk_lock for writing. */
static size_t
dk_slot(const struct client *cl, uint32_t secret_no)
{
	size_t i, slot = CLIENTS_MAX_SECRETS;

	for (i = 0; i < CLIENTS_MAX_SECRETS; i++) {
		if (cl->dk_number[i] == secret_no) {
			return i;
		}
		if (slot == CLIENTS_MAX_SECRETS && cl->dk_number[i] == 0) {
			slot = i;
		}
	}
	return slot;
}

int
cl_day_key_keep(struct client *cl, uint32_t secret_no, uint32_t day,
    const uint8_t key[HK_MAC_LEN], uint64_t gen)
{
	size_t i, j, slot;
	int    kept = 0;

	pthread_rwlock_wrlock(&cl->dk_lock);
	/* a revocation since the lookup: this key may be of the revoked
	 * secret, and must not come back into the cache it was wiped from */
	if (gen != cl->dk_generation) {
		goto out;
	}
	if ((slot = dk_slot(cl, secret_no)) == CLIENTS_MAX_SECRETS) {
		goto out;
	}
	if (cl->dk_number[slot] != secret_no) {
		memset(cl->dk->day[slot], 0, sizeof(cl->dk->day[slot]));
		cl->dk_number[slot] = secret_no;
	}
	/* replace the oldest day (an empty slot is day 0) */
	for (i = 1, j = 0; i < DAY_SLOTS; i++) {
		if (cl->dk->day[slot][i] < cl->dk->day[slot][j]) {
			j = i;
		}
	}
	cl->dk->day[slot][j] = day;
	memcpy(cl->dk->key[slot][j], key, HK_MAC_LEN);
	kept = 1;
out:
	pthread_rwlock_unlock(&cl->dk_lock);
	return kept;
}

int
clients_day_key(struct client *cl, struct token_session *s, uint32_t secret_no,
    token_obj_t key, uint32_t day, uint8_t out[HK_MAC_LEN])
{
	uint8_t	 in[32];
	uint64_t gen;
	size_t	 len;
	int	 r;

	if (cl_day_key_cached(cl, secret_no, day, out, &gen) == 0) {
		return 0;
	}
	/* once per secret and day: the token computes it (none while a
	 * repair has it) */
	if (s == NULL) {
		return HK_ERR_UNAVAILABLE;
	}
	hk_day_key_input(day, in, &len);
	if ((r = token_hmac(s, key, in, len, out)) != 0) {
		OPENSSL_cleanse(out, HK_MAC_LEN);
		return r;
	}
	(void)cl_day_key_keep(cl, secret_no, day, out, gen);
	return 0;
}

int
cl_set_grants(struct client *cl, char *const *grants, size_t n)
{
	const char    *glob;
	enum client_op op;
	size_t	       i;

	if (n > CLIENTS_MAX_GRANTS) {
		return HK_ERR_TOO_LARGE;
	}
	for (i = 0; i < n; i++) {
		if (clients_parse_grant(grants[i], &op, &glob) != 0) {
			return HK_ERR_INVALID;
		}
		cl->grants[i].op = op;
		if ((cl->grants[i].glob = strdup(glob)) == NULL ||
		    (cl->grants[i].text = strdup(grants[i])) == NULL) {
			cl->ngrants = i + 1;
			return HK_ERR_NOMEM;
		}
		cl->ngrants = i + 1;
	}
	return 0;
}

struct client *
cl_find(struct clients *c, const char *id)
{
	struct client *cl;

	for (cl = c->list; cl != NULL; cl = cl->next) {
		if (strcmp(cl->id, id) == 0) {
			return cl;
		}
	}
	return NULL;
}

/* Writes the record of cl (with draft secrets) to the token. */

void
clients_free(struct clients *c)
{
	struct client *cl, *next;

	if (c == NULL) {
		return;
	}
	for (cl = c->list; cl != NULL; cl = next) {
		next = cl->next;
		cl_client_free(cl);
	}
	pthread_rwlock_destroy(&c->lock);
	pthread_mutex_destroy(&c->admin);
	free(c);
}

int
clients_secret(struct clients *c, const char *id, uint32_t secret_no,
    uint64_t now_ms, struct client **clp, token_obj_t *keyp, const char **whyp)
{
	struct client *cl;
	size_t	       i;
	int	       r = HK_ERR_UNAUTHENTICATED;

	*clp = NULL;
	*keyp = TOKEN_OBJ_NONE;
	*whyp = "unknown-client";
	pthread_rwlock_rdlock(&c->lock);
	if ((cl = cl_find(c, id)) == NULL) {
		goto out;
	}
	*whyp = "unknown-secret";
	for (i = 0; i < cl->nsecrets; i++) {
		if (cl->secrets[i].number != secret_no) {
			continue;
		}
		if (cl->secrets[i].revoked) {
			goto out; /* its revocation is not yet durable */
		}
		if (cl->secrets[i].expires_ms != 0 &&
		    now_ms >= cl->secrets[i].expires_ms) {
			*whyp = "secret-expired";
			goto out;
		}
		*clp = cl;
		*keyp = cl->secrets[i].key;
		*whyp = NULL;
		r = 0;
		break;
	}
out:
	pthread_rwlock_unlock(&c->lock);
	return r;
}

/* 1 if secret s of a client may authenticate a request at now_ms. */
static int
secret_live(const struct secret *s, uint64_t now_ms)
{
	return !s->revoked && (s->expires_ms == 0 || now_ms < s->expires_ms);
}

int
clients_live_secrets(struct clients *c, const char *id, uint64_t now_ms,
    struct client **clp, struct clients_key keys[CLIENTS_MAX_SECRETS],
    size_t *np, const char **whyp)
{
	struct client *cl;
	size_t	       i, n = 0;

	*clp = NULL;
	*np = 0;
	*whyp = "unknown-client";
	pthread_rwlock_rdlock(&c->lock);
	if ((cl = cl_find(c, id)) != NULL) {
		*whyp = "unknown-secret";
		for (i = 0; i < cl->nsecrets && n < CLIENTS_MAX_SECRETS; i++) {
			if (secret_live(&cl->secrets[i], now_ms)) {
				keys[n].number = cl->secrets[i].number;
				keys[n].key = cl->secrets[i].key;
				n++;
			}
		}
	}
	pthread_rwlock_unlock(&c->lock);
	if (n == 0) {
		return HK_ERR_UNAUTHENTICATED;
	}
	*clp = cl;
	*np = n;
	*whyp = NULL;
	return 0;
}

void
clients_secret_count(struct clients *c, struct client *cl, uint32_t secret_no,
    int denied, uint64_t used_ms)
{
	size_t i;

	/* under the read lock: a revocation compacts secrets[] */
	pthread_rwlock_rdlock(&c->lock);
	for (i = 0; i < cl->nsecrets; i++) {
		if (cl->secrets[i].number == secret_no) {
			atomic_fetch_add(&cl->secrets[i].requests, 1);
			if (denied) {
				atomic_fetch_add(&cl->secrets[i].denials, 1);
			}
			if (used_ms != 0) {
				atomic_store(
				    &cl->secrets[i].last_used_ms, used_ms);
			}
			break;
		}
	}
	pthread_rwlock_unlock(&c->lock);
}

int
clients_secret_stats(struct clients *c, struct client *only,
    struct clients_secret_stats **statsp, size_t *np)
{
	struct clients_secret_stats *st;
	struct client		    *cl;
	size_t			     n = 0, total = 0, i;

	*statsp = NULL;
	*np = 0;
	pthread_rwlock_rdlock(&c->lock);
	for (cl = c->list; cl != NULL; cl = cl->next) {
		total += cl->nsecrets;
	}
	if ((st = calloc(total + 1, sizeof(*st))) == NULL) {
		pthread_rwlock_unlock(&c->lock);
		return HK_ERR_NOMEM;
	}
	for (cl = c->list; cl != NULL; cl = cl->next) {
		if (cl->id[0] == '\0' || (only != NULL && cl != only)) {
			continue;
		}
		for (i = 0; i < cl->nsecrets && n < total; i++, n++) {
			memcpy(st[n].client, cl->id, sizeof(st[n].client));
			st[n].secret = cl->secrets[i].number;
			st[n].requests = atomic_load(&cl->secrets[i].requests);
			st[n].denials = atomic_load(&cl->secrets[i].denials);
			st[n].last_use_ms =
			    atomic_load(&cl->secrets[i].last_used_ms);
		}
	}
	pthread_rwlock_unlock(&c->lock);
	*statsp = st;
	*np = n;
	return 0;
}

void
clients_denied(struct client *cl)
{
	atomic_fetch_add(&cl->denials, 1);
}

/*
 * fnmatch(glob, key, 0), with the common shapes of a grant ("*", a name,
 * "prefix*") decided without it: every request checks a grant.
 */
static int
glob_match(const char *glob, const char *key)
{
	size_t n = strcspn(glob, "*?[\\");

	if (glob[n] == '\0') {
		return strcmp(glob, key) == 0;
	}
	if (glob[n] == '*' && glob[n + 1] == '\0') {
		return strncmp(glob, key, n) == 0;
	}
	return fnmatch(glob, key, 0) == 0;
}

int
clients_allowed(
    struct clients *c, struct client *cl, enum client_op op, const char *key)
{
	size_t i;
	int    ok = 0;

	pthread_rwlock_rdlock(&c->lock);
	for (i = 0; i < cl->ngrants && !ok; i++) {
		if (cl->grants[i].op != op) {
			continue;
		}
		if (key == NULL) {
			ok = strcmp(cl->grants[i].glob, "*") == 0;
		} else {
			ok = glob_match(cl->grants[i].glob, key);
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return ok;
}

int
clients_any_grant(struct clients *c, struct client *cl, const char *key)
{
	size_t i;
	int    ok = 0;

	pthread_rwlock_rdlock(&c->lock);
	for (i = 0; i < cl->ngrants && !ok; i++) {
		ok = glob_match(cl->grants[i].glob, key);
	}
	pthread_rwlock_unlock(&c->lock);
	return ok;
}

const char *
client_id(const struct client *cl)
{
	return cl->id;
}

size_t *
client_nonce_count(struct client *cl)
{
	return &cl->nonce_count;
}

int
clients_any_admin(struct clients *c)
{
	struct client *cl;
	size_t	       i;
	int	       any = 0;

	pthread_rwlock_rdlock(&c->lock);
	for (cl = c->list; cl != NULL && !any; cl = cl->next) {
		for (i = 0; i < cl->ngrants; i++) {
			if (cl->id[0] != '\0' &&
			    cl->grants[i].op == CLIENT_OP_ADMIN) {
				any = 1;
			}
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return any;
}
