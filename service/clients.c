/* clients.c: client credentials and grants (see clients.h). */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "clients.h"
#include "hk_err.h"
#include "log.h"
#include "secmem.h"
#include "store.h"
#include "store.pb-c.h"
#include "wire.h"

#define CLIENT_PREFIX "hsmkey-client:"
#define SECRET_PREFIX "hsmkey-secret:"
#define MAX_SECRET_NO 1000000

#define DAY_SLOTS 3 /* yesterday, today, tomorrow */

/* Day keys live in one locked, undumpable page per client. */
struct daykeys {
	uint32_t day[CLIENTS_MAX_SECRETS][DAY_SLOTS];
	uint8_t	 key[CLIENTS_MAX_SECRETS][DAY_SLOTS][HK_MAC_LEN];
};

struct secret {
	uint32_t	 number;
	uint64_t	 created_ms;
	uint64_t	 expires_ms;
	token_obj_t	 key;
	_Atomic uint64_t last_used_ms;
	_Atomic uint64_t requests; /* since the service started */
	_Atomic uint64_t denials;
};

struct grant {
	enum client_op op;
	char	      *glob;
	char	      *text; /* "op:glob" as given */
};

/*
 * Every request reads its client and writes a few counters and locks.  On
 * a machine with several cores, a line written by one worker must travel
 * before another may read it: the locks and the nonce count every request
 * writes sit on cache lines of their own, away from what it only reads.
 * (Structs with such members are only ever on the heap, from
 * zalloc_lines(): a stack copy need not be aligned under ASan.)
 */
#define CACHE_LINE 64

struct client {
	char		id[HK_CLIENT_ID_MAX + 1];
	uint64_t	generation;
	uint64_t	created_ms;
	uint32_t	next_secret;
	struct grant	grants[CLIENTS_MAX_GRANTS];
	size_t		ngrants;
	size_t		nsecrets;
	token_obj_t	meta;
	struct daykeys *dk; /* indexed like secrets[] by number */
	uint32_t	dk_number[CLIENTS_MAX_SECRETS];
	struct client  *next;
	struct secret	secrets[CLIENTS_MAX_SECRETS];
	/* written per request */
	alignas(CACHE_LINE) pthread_rwlock_t dk_lock; /* day keys */
	alignas(CACHE_LINE) size_t nonce_count;
	_Atomic uint64_t denials;
};

struct clients {
	struct client  *list;
	uint64_t	lifetime_s;
	pthread_mutex_t admin;
	alignas(CACHE_LINE) pthread_rwlock_t lock; /* taken per request */
};

/* Zeroed memory aligned for the structs above (free() releases it). */
static void *
zalloc_lines(size_t size)
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

static struct client *
client_new(void)
{
	struct client *cl;
	void	      *p;

	if ((cl = zalloc_lines(sizeof(*cl))) == NULL) {
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

static void
client_free(struct client *cl)
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

/* Forgets the day keys of a secret number. */
static void
forget_day_keys(struct client *cl, uint32_t number)
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
	pthread_rwlock_unlock(&cl->dk_lock);
}

int
clients_day_key(struct client *cl, struct token_session *s, uint32_t secret_no,
    token_obj_t key, uint32_t day, uint8_t out[HK_MAC_LEN])
{
	uint8_t in[32], fresh[HK_MAC_LEN];
	size_t	i, j, slot = CLIENTS_MAX_SECRETS, len;
	int	r;

	pthread_rwlock_rdlock(&cl->dk_lock);
	for (i = 0; i < CLIENTS_MAX_SECRETS; i++) {
		if (cl->dk_number[i] != secret_no) {
			continue;
		}
		for (j = 0; j < DAY_SLOTS; j++) {
			if (cl->dk->day[i][j] == day) {
				memcpy(out, cl->dk->key[i][j], HK_MAC_LEN);
				pthread_rwlock_unlock(&cl->dk_lock);
				return 0;
			}
		}
	}
	pthread_rwlock_unlock(&cl->dk_lock);

	/* once per secret and day: the token computes it */
	hk_day_key_input(day, in, &len);
	if ((r = token_hmac(s, key, in, len, fresh)) != 0) {
		return r;
	}
	pthread_rwlock_wrlock(&cl->dk_lock);
	for (i = 0; i < CLIENTS_MAX_SECRETS; i++) {
		if (cl->dk_number[i] == secret_no) {
			slot = i;
			break;
		}
		if (slot == CLIENTS_MAX_SECRETS && cl->dk_number[i] == 0) {
			slot = i;
		}
	}
	if (slot < CLIENTS_MAX_SECRETS) {
		if (cl->dk_number[slot] != secret_no) {
			memset(
			    cl->dk->day[slot], 0, sizeof(cl->dk->day[slot]));
			cl->dk_number[slot] = secret_no;
		}
		/* replace the oldest day (an empty slot is day 0) */
		for (i = 1, j = 0; i < DAY_SLOTS; i++) {
			if (cl->dk->day[slot][i] < cl->dk->day[slot][j]) {
				j = i;
			}
		}
		cl->dk->day[slot][j] = day;
		memcpy(cl->dk->key[slot][j], fresh, HK_MAC_LEN);
	}
	pthread_rwlock_unlock(&cl->dk_lock);
	memcpy(out, fresh, HK_MAC_LEN);
	OPENSSL_cleanse(fresh, sizeof(fresh));
	return 0;
}

static int
client_set_grants(struct client *cl, char *const *grants, size_t n)
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

static struct client *
find_client(struct clients *c, const char *id)
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
static int
client_store(struct token_session *s, const struct client *cl,
    const struct secret *secrets, size_t nsecrets, uint64_t *genp,
    token_obj_t *metap)
{
	Hsmkey__Store__V1__StoredClient sc =
	    HSMKEY__STORE__V1__STORED_CLIENT__INIT;
	Hsmkey__Store__V1__StoredSecret	 ss[CLIENTS_MAX_SECRETS];
	Hsmkey__Store__V1__StoredSecret *ssp[CLIENTS_MAX_SECRETS];
	char				*grants[CLIENTS_MAX_GRANTS];
	char				 label[TOKEN_LABEL_MAX];
	size_t				 i;
	int				 r;

	for (i = 0; i < cl->ngrants; i++) {
		grants[i] = cl->grants[i].text;
	}
	for (i = 0; i < nsecrets; i++) {
		hsmkey__store__v1__stored_secret__init(&ss[i]);
		ss[i].number = secrets[i].number;
		ss[i].created_ms = secrets[i].created_ms;
		ss[i].expires_ms = secrets[i].expires_ms;
		ssp[i] = &ss[i];
	}
	sc.generation = *genp + 1;
	sc.id = (char *)cl->id;
	sc.n_grants = cl->ngrants;
	sc.grants = grants;
	sc.n_secrets = nsecrets;
	sc.secrets = ssp;
	sc.created_ms = cl->created_ms;
	sc.next_secret = cl->next_secret;
	snprintf(label, sizeof(label), CLIENT_PREFIX "%s", cl->id);
	if ((r = store_replace(s, label, &sc.base, metap)) != 0) {
		return r;
	}
	(*genp)++;
	return 0;
}

static void
secret_label(char *buf, size_t len, const char *id, uint32_t n)
{
	snprintf(buf, len, SECRET_PREFIX "%s:%" PRIu32, id, n);
}

static const struct token_object *
find_secret_obj(const struct token_object *objs, size_t nobjs,
    const char *label, size_t *idxp)
{
	size_t i;

	for (i = 0; i < nobjs; i++) {
		if (objs[i].klass == TOKEN_CLASS_SECRET &&
		    strcmp(objs[i].label, label) == 0) {
			*idxp = i;
			return &objs[i];
		}
	}
	return NULL;
}

int
clients_load(struct clients **cp, struct token_session *s,
    const struct token_object *objs, size_t nobjs, uint64_t secret_lifetime_s)
{
	Hsmkey__Store__V1__StoredClient *sc = NULL;
	struct clients			*c;
	struct client			*cl, *old;
	const struct token_object	*o;
	char				 label[TOKEN_LABEL_MAX];
	uint8_t				*val = NULL;
	int				*used = NULL, r = HK_ERR_NOMEM;
	size_t				 i, j, vlen, idx, nclients = 0;

	*cp = NULL;
	if ((c = zalloc_lines(sizeof(*c))) == NULL) {
		return HK_ERR_NOMEM;
	}
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->admin, NULL);
	c->lifetime_s = secret_lifetime_s;
	if ((used = calloc(nobjs + 1, sizeof(*used))) == NULL) {
		goto out;
	}
	for (i = 0; i < nobjs; i++) {
		if (objs[i].klass != TOKEN_CLASS_DATA ||
		    strncmp(objs[i].label, CLIENT_PREFIX,
			strlen(CLIENT_PREFIX)) != 0) {
			continue;
		}
		if ((r = token_data_read(s, objs[i].handle, &val, &vlen)) !=
		    0) {
			goto out;
		}
		sc = hsmkey__store__v1__stored_client__unpack(NULL, vlen, val);
		free(val);
		val = NULL;
		if (sc == NULL || !hk_valid_client_id(sc->id) ||
		    sc->n_secrets > CLIENTS_MAX_SECRETS) {
			log_warnx(
			    "unreadable record %s; left alone", objs[i].label);
			if (sc != NULL) {
				hsmkey__store__v1__stored_client__free_unpacked(
				    sc, NULL);
				sc = NULL;
			}
			continue;
		}
		if ((old = find_client(c, sc->id)) != NULL) {
			/* two records of one client: keep the newer */
			if (old->generation >= sc->generation) {
				token_destroy(s, objs[i].handle);
				hsmkey__store__v1__stored_client__free_unpacked(
				    sc, NULL);
				sc = NULL;
				continue;
			}
			token_destroy(s, old->meta);
			old->id[0] = '\0'; /* shadowed: never matches */
		}
		r = HK_ERR_NOMEM;
		if ((cl = client_new()) == NULL) {
			goto out;
		}
		cl->next = c->list;
		c->list = cl;
		nclients++;
		snprintf(cl->id, sizeof(cl->id), "%s", sc->id);
		cl->generation = sc->generation;
		cl->created_ms = sc->created_ms;
		cl->next_secret = sc->next_secret;
		cl->meta = objs[i].handle;
		if ((r = client_set_grants(cl, sc->grants, sc->n_grants)) !=
		    0) {
			log_err_r(
			    r, "client %s: bad grants in record", sc->id);
			cl->ngrants = 0;
		}
		for (j = 0; j < sc->n_secrets; j++) {
			struct secret *sec = &cl->secrets[cl->nsecrets];

			secret_label(label, sizeof(label), cl->id,
			    sc->secrets[j]->number);
			if ((o = find_secret_obj(objs, nobjs, label, &idx)) ==
			    NULL) {
				log_warnx("client %s: secret %" PRIu32
					  " missing from the token",
				    cl->id, sc->secrets[j]->number);
				continue;
			}
			used[idx] = 1;
			sec->number = sc->secrets[j]->number;
			sec->created_ms = sc->secrets[j]->created_ms;
			sec->expires_ms = sc->secrets[j]->expires_ms;
			sec->key = o->handle;
			cl->nsecrets++;
		}
		hsmkey__store__v1__stored_client__free_unpacked(sc, NULL);
		sc = NULL;
	}
	/* secret objects no record knows: a crash before the record, or a
	 * revocation half done; they never authenticated anything */
	for (i = 0; i < nobjs; i++) {
		if (objs[i].klass == TOKEN_CLASS_SECRET && !used[i] &&
		    strncmp(objs[i].label, SECRET_PREFIX,
			strlen(SECRET_PREFIX)) == 0) {
			log_warnx("removing orphan secret %s", objs[i].label);
			token_destroy(s, objs[i].handle);
		}
	}
	log_info("clients: %zu", nclients);
	*cp = c;
	c = NULL;
	r = 0;
out:
	if (sc != NULL) {
		hsmkey__store__v1__stored_client__free_unpacked(sc, NULL);
	}
	free(used);
	clients_free(c);
	return r;
}

void
clients_free(struct clients *c)
{
	struct client *cl, *next;

	if (c == NULL) {
		return;
	}
	for (cl = c->list; cl != NULL; cl = next) {
		next = cl->next;
		client_free(cl);
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
	*whyp = "unknown client";
	pthread_rwlock_rdlock(&c->lock);
	if ((cl = find_client(c, id)) == NULL) {
		goto out;
	}
	*whyp = "unknown or revoked secret";
	for (i = 0; i < cl->nsecrets; i++) {
		if (cl->secrets[i].number != secret_no) {
			continue;
		}
		if (cl->secrets[i].expires_ms != 0 &&
		    now_ms >= cl->secrets[i].expires_ms) {
			*whyp = "secret expired";
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

void
clients_secret_stats_free(Hsmkey__V1__SecretStats **st, size_t n)
{
	size_t i;

	if (st == NULL) {
		return;
	}
	for (i = 0; i < n; i++) {
		if (st[i] != NULL) {
			free(st[i]->client);
			free(st[i]);
		}
	}
	free(st);
}

int
clients_secret_stats(struct clients *c, struct client *only,
    Hsmkey__V1__SecretStats ***statsp, size_t *np)
{
	Hsmkey__V1__SecretStats **st = NULL, *x;
	struct client		 *cl;
	size_t			  n = 0, total = 0, i;
	int			  r = HK_ERR_NOMEM;

	*statsp = NULL;
	*np = 0;
	pthread_rwlock_rdlock(&c->lock);
	for (cl = c->list; cl != NULL; cl = cl->next) {
		total += cl->nsecrets;
	}
	if ((st = calloc(total + 1, sizeof(*st))) == NULL) {
		goto out;
	}
	for (cl = c->list; cl != NULL; cl = cl->next) {
		if (cl->id[0] == '\0' || (only != NULL && cl != only)) {
			continue;
		}
		for (i = 0; i < cl->nsecrets && n < total; i++) {
			if ((x = calloc(1, sizeof(*x))) == NULL) {
				goto out;
			}
			hsmkey__v1__secret_stats__init(x);
			st[n++] = x;
			if ((x->client = strdup(cl->id)) == NULL) {
				goto out;
			}
			x->secret = cl->secrets[i].number;
			x->requests = atomic_load(&cl->secrets[i].requests);
			x->denials = atomic_load(&cl->secrets[i].denials);
			x->last_use_ms =
			    atomic_load(&cl->secrets[i].last_used_ms);
		}
	}
	/* success */
	*statsp = st;
	*np = n;
	st = NULL;
	r = 0;
out:
	pthread_rwlock_unlock(&c->lock);
	clients_secret_stats_free(st, n);
	return r;
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

/* Makes a secret in the token; the caller holds the admin mutex. */
static int
new_secret(struct clients *c, struct token_session *s, const char *id,
    uint32_t number, uint8_t secret[HK_SECRET_LEN], struct secret *out)
{
	char	 label[TOKEN_LABEL_MAX];
	uint64_t now = hk_now_ms();
	int	 r;

	memset(out, 0, sizeof(*out));
	if ((r = token_random(s, secret, HK_SECRET_LEN)) != 0) {
		return r;
	}
	secret_label(label, sizeof(label), id, number);
	if ((r = token_secret_create(s, label, (const uint8_t *)label,
		 strlen(label), secret, HK_SECRET_LEN, &out->key)) != 0) {
		OPENSSL_cleanse(secret, HK_SECRET_LEN);
		return r;
	}
	out->number = number;
	out->created_ms = now;
	out->expires_ms = now + c->lifetime_s * 1000;
	return 0;
}

int
clients_add(struct clients *c, struct token_session *s, const char *id,
    char *const *grants, size_t ngrants, uint8_t secret[HK_SECRET_LEN],
    uint32_t *secret_nop, uint64_t *expiresp)
{
	struct client *cl = NULL;
	struct secret  sec;
	int	       r, exists;

	*secret_nop = 0;
	*expiresp = 0;
	if (!hk_valid_client_id(id) || ngrants == 0) {
		return HK_ERR_INVALID;
	}
	if ((cl = client_new()) == NULL) {
		return HK_ERR_NOMEM;
	}
	snprintf(cl->id, sizeof(cl->id), "%s", id);
	cl->created_ms = hk_now_ms();
	if ((r = client_set_grants(cl, grants, ngrants)) != 0) {
		client_free(cl);
		return r;
	}
	pthread_mutex_lock(&c->admin);
	pthread_rwlock_rdlock(&c->lock);
	exists = find_client(c, id) != NULL;
	pthread_rwlock_unlock(&c->lock);
	if (exists) {
		r = HK_ERR_EXISTS;
		goto out;
	}
	/* the secret object first: a crash before the record leaves an
	 * orphan that the next start removes */
	if ((r = new_secret(c, s, id, 1, secret, &sec)) != 0) {
		goto out;
	}
	cl->next_secret = 2;
	if ((r = client_store(s, cl, &sec, 1, &cl->generation, &cl->meta)) !=
	    0) {
		token_destroy(s, sec.key);
		OPENSSL_cleanse(secret, HK_SECRET_LEN);
		goto out;
	}
	cl->secrets[0] = sec;
	cl->nsecrets = 1;
	pthread_rwlock_wrlock(&c->lock);
	cl->next = c->list;
	c->list = cl;
	pthread_rwlock_unlock(&c->lock);
	*secret_nop = 1;
	*expiresp = sec.expires_ms;
	log_info("added client %s", id);
	cl = NULL;
out:
	pthread_mutex_unlock(&c->admin);
	client_free(cl);
	return r;
}

int
clients_rotate(struct clients *c, struct token_session *s, const char *id,
    uint8_t secret[HK_SECRET_LEN], uint32_t *secret_nop, uint64_t *expiresp)
{
	struct secret  draft[CLIENTS_MAX_SECRETS], sec;
	struct client *cl;
	uint64_t       gen;
	token_obj_t    meta;
	uint32_t       number;
	int	       r;

	*secret_nop = 0;
	*expiresp = 0;
	pthread_mutex_lock(&c->admin);
	pthread_rwlock_rdlock(&c->lock);
	cl = find_client(c, id);
	pthread_rwlock_unlock(&c->lock);
	if (cl == NULL) {
		r = HK_ERR_NOT_FOUND;
		goto out;
	}
	if (cl->nsecrets >= CLIENTS_MAX_SECRETS) {
		r = HK_ERR_EXHAUSTED; /* revoke an old one first */
		goto out;
	}
	number = cl->next_secret > 0 ? cl->next_secret : 1;
	if (number > MAX_SECRET_NO) {
		r = HK_ERR_EXHAUSTED;
		goto out;
	}
	if ((r = new_secret(c, s, id, number, secret, &sec)) != 0) {
		goto out;
	}
	memcpy(draft, cl->secrets, sizeof(draft));
	draft[cl->nsecrets] = sec;
	gen = cl->generation;
	meta = cl->meta;
	cl->next_secret = number + 1;
	if ((r = client_store(s, cl, draft, cl->nsecrets + 1, &gen, &meta)) !=
	    0) {
		cl->next_secret = number;
		token_destroy(s, sec.key);
		OPENSSL_cleanse(secret, HK_SECRET_LEN);
		goto out;
	}
	pthread_rwlock_wrlock(&c->lock);
	cl->secrets[cl->nsecrets++] = sec;
	cl->generation = gen;
	cl->meta = meta;
	pthread_rwlock_unlock(&c->lock);
	*secret_nop = number;
	*expiresp = sec.expires_ms;
	log_info("client %s: added secret %" PRIu32, id, number);
out:
	pthread_mutex_unlock(&c->admin);
	return r;
}

int
clients_revoke(struct clients *c, struct token_session *s, const char *id,
    uint32_t secret_no)
{
	struct secret  draft[CLIENTS_MAX_SECRETS];
	struct client *cl;
	token_obj_t    key = TOKEN_OBJ_NONE, meta;
	uint64_t       gen;
	size_t	       i, n = 0;
	int	       r;

	pthread_mutex_lock(&c->admin);
	pthread_rwlock_rdlock(&c->lock);
	cl = find_client(c, id);
	pthread_rwlock_unlock(&c->lock);
	if (cl == NULL) {
		r = HK_ERR_NOT_FOUND;
		goto out;
	}
	for (i = 0; i < cl->nsecrets; i++) {
		if (cl->secrets[i].number == secret_no) {
			key = cl->secrets[i].key;
		} else {
			draft[n++] = cl->secrets[i];
		}
	}
	if (key == TOKEN_OBJ_NONE) {
		r = HK_ERR_NOT_FOUND;
		goto out;
	}
	/* refuse at once: drop it from memory before the token work */
	pthread_rwlock_wrlock(&c->lock);
	memcpy(cl->secrets, draft, sizeof(draft));
	cl->nsecrets = n;
	pthread_rwlock_unlock(&c->lock);
	forget_day_keys(cl, secret_no);
	gen = cl->generation;
	meta = cl->meta;
	if ((r = client_store(s, cl, draft, n, &gen, &meta)) != 0) {
		goto out;
	}
	pthread_rwlock_wrlock(&c->lock);
	cl->generation = gen;
	cl->meta = meta;
	pthread_rwlock_unlock(&c->lock);
	if ((r = token_destroy(s, key)) != 0 && r != HK_ERR_NOT_FOUND) {
		log_err_r(r,
		    "client %s: cannot destroy secret %" PRIu32
		    " (the next start removes it)",
		    id, secret_no);
	}
	r = 0;
	log_info("client %s: revoked secret %" PRIu32, id, secret_no);
out:
	pthread_mutex_unlock(&c->admin);
	return r;
}

void
clients_list_free(Hsmkey__V1__ClientInfo **infos, size_t n)
{
	size_t i, j;

	if (infos == NULL) {
		return;
	}
	for (i = 0; i < n; i++) {
		Hsmkey__V1__ClientInfo *ci = infos[i];

		if (ci == NULL) {
			continue;
		}
		for (j = 0; j < ci->n_grants; j++) {
			free(ci->grants[j]);
		}
		for (j = 0; j < ci->n_secrets; j++) {
			free(ci->secrets[j]);
		}
		free(ci->grants);
		free(ci->secrets);
		free(ci->id);
		free(ci);
	}
	free(infos);
}

int
clients_list(struct clients *c, Hsmkey__V1__ClientInfo ***infosp, size_t *np)
{
	Hsmkey__V1__ClientInfo **infos = NULL, *ci;
	struct client		*cl;
	size_t			 n = 0, total = 0, i;
	int			 r = HK_ERR_NOMEM;

	*infosp = NULL;
	*np = 0;
	pthread_rwlock_rdlock(&c->lock);
	for (cl = c->list; cl != NULL; cl = cl->next) {
		total++;
	}
	if ((infos = calloc(total + 1, sizeof(*infos))) == NULL) {
		goto out;
	}
	for (cl = c->list; cl != NULL; cl = cl->next) {
		if (cl->id[0] == '\0') {
			continue;
		}
		if ((ci = calloc(1, sizeof(*ci))) == NULL) {
			goto out;
		}
		hsmkey__v1__client_info__init(ci);
		infos[n++] = ci;
		if ((ci->id = strdup(cl->id)) == NULL ||
		    (ci->grants = calloc(
			 cl->ngrants + 1, sizeof(*ci->grants))) == NULL ||
		    (ci->secrets = calloc(
			 cl->nsecrets + 1, sizeof(*ci->secrets))) == NULL) {
			goto out;
		}
		for (i = 0; i < cl->ngrants; i++) {
			if ((ci->grants[i] = strdup(cl->grants[i].text)) ==
			    NULL) {
				goto out;
			}
			ci->n_grants++;
		}
		for (i = 0; i < cl->nsecrets; i++) {
			Hsmkey__V1__SecretInfo *si;

			if ((si = calloc(1, sizeof(*si))) == NULL) {
				goto out;
			}
			hsmkey__v1__secret_info__init(si);
			si->number = cl->secrets[i].number;
			si->created_ms = cl->secrets[i].created_ms;
			si->expires_ms = cl->secrets[i].expires_ms;
			si->last_used_ms =
			    atomic_load(&cl->secrets[i].last_used_ms);
			ci->secrets[ci->n_secrets++] = si;
		}
	}
	*infosp = infos;
	*np = n;
	infos = NULL;
	r = 0;
out:
	pthread_rwlock_unlock(&c->lock);
	clients_list_free(infos, n);
	return r;
}
