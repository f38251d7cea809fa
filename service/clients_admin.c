/*
 * clients_admin.c: loading the clients from the token, and the changes:
 * add, rotate, revoke (see clients.h).  Each change is written to the
 * token before it is published, under the admin mutex.
 */
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
#include "store.h"
#include "store.pb-c.h"
#include "wire.h"

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
	size_t				 i, n;
	int				 r;

	for (i = 0; i < cl->ngrants; i++) {
		grants[i] = cl->grants[i].text;
	}
	for (i = 0, n = 0; i < nsecrets; i++) {
		if (secrets[i].revoked) {
			continue; /* a revocation this record makes durable */
		}
		hsmkey__store__v1__stored_secret__init(&ss[n]);
		ss[n].number = secrets[i].number;
		ss[n].created_ms = secrets[i].created_ms;
		ss[n].expires_ms = secrets[i].expires_ms;
		ssp[n] = &ss[n];
		n++;
	}
	sc.generation = *genp + 1;
	sc.id = (char *)cl->id;
	sc.n_grants = cl->ngrants;
	sc.grants = grants;
	sc.n_secrets = n;
	sc.secrets = ssp;
	sc.created_ms = cl->created_ms;
	sc.next_secret = cl->next_secret;
	snprintf(label, sizeof(label), CL_CLIENT_PREFIX "%s", cl->id);
	if ((r = store_replace(s, label, &sc.base, metap)) != 0) {
		return r;
	}
	(*genp)++;
	return 0;
}

static void
secret_label(char *buf, size_t len, const char *id, uint32_t n)
{
	snprintf(buf, len, CL_SECRET_PREFIX "%s:%" PRIu32, id, n);
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

/* The secrets of record sc that the token holds, into cl; used[] marks
 * their objects. */
static void
load_secrets(struct client *cl, const Hsmkey__Store__V1__StoredClient *sc,
    const struct token_object *objs, size_t nobjs, int *used)
{
	const struct token_object *o;
	char			   label[TOKEN_LABEL_MAX];
	size_t			   j, idx;

	for (j = 0; j < sc->n_secrets; j++) {
		struct secret *sec = &cl->secrets[cl->nsecrets];

		secret_label(
		    label, sizeof(label), cl->id, sc->secrets[j]->number);
		if ((o = find_secret_obj(objs, nobjs, label, &idx)) == NULL) {
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
}

/* Unmarks the secret objects of cl, whose record a newer one replaces: the
 * newer record marks those it keeps; the others (a revocation the crash
 * cut short) are orphans, and clients_load() removes them. */
static void
unmark_secrets(struct client *cl, const struct token_object *objs,
    size_t nobjs, int *used)
{
	size_t i, j;

	for (i = 0; i < cl->nsecrets; i++) {
		for (j = 0; j < nobjs; j++) {
			if (objs[j].klass == TOKEN_CLASS_SECRET &&
			    objs[j].handle == cl->secrets[i].key) {
				used[j] = 0;
			}
		}
	}
	cl->nsecrets = 0;
}

/* Adds the client of record sc (object meta) to c, unless c holds a newer
 * record of it; of two records the older is removed. */
static int
load_client(struct clients *c, struct token_session *s,
    const Hsmkey__Store__V1__StoredClient *sc, token_obj_t meta,
    const struct token_object *objs, size_t nobjs, int *used)
{
	struct client *cl, *old;
	int	       r;

	if ((old = cl_find(c, sc->id)) != NULL) {
		/* two records of one client: keep the newer */
		if (old->generation >= sc->generation) {
			token_destroy(s, meta);
			return 0;
		}
		token_destroy(s, old->meta);
		unmark_secrets(old, objs, nobjs, used);
		old->id[0] = '\0'; /* shadowed: never matches */
	}
	if ((cl = cl_client_new()) == NULL) {
		return HK_ERR_NOMEM;
	}
	cl->next = c->list;
	c->list = cl;
	snprintf(cl->id, sizeof(cl->id), "%s", sc->id);
	cl->generation = sc->generation;
	cl->created_ms = sc->created_ms;
	cl->next_secret = sc->next_secret;
	cl->meta = meta;
	if ((r = cl_set_grants(cl, sc->grants, sc->n_grants)) != 0) {
		log_err_r(r, "client %s: bad grants in record", sc->id);
		cl->ngrants = 0;
	}
	load_secrets(cl, sc, objs, nobjs, used);
	return 0;
}

/* Reads and loads the client record o. */
static int
load_record(struct clients *c, struct token_session *s,
    const struct token_object *o, const struct token_object *objs,
    size_t nobjs, int *used)
{
	Hsmkey__Store__V1__StoredClient *sc;
	uint8_t				*val = NULL;
	size_t				 vlen;
	int				 r;

	if ((r = token_data_read(s, o->handle, &val, &vlen)) != 0) {
		return r;
	}
	sc = hsmkey__store__v1__stored_client__unpack(NULL, vlen, val);
	free(val);
	if (sc == NULL || !hk_valid_client_id(sc->id) ||
	    sc->n_secrets > CLIENTS_MAX_SECRETS) {
		log_warnx("unreadable record %s; left alone", o->label);
		r = 0;
	} else {
		r = load_client(c, s, sc, o->handle, objs, nobjs, used);
	}
	if (sc != NULL) {
		hsmkey__store__v1__stored_client__free_unpacked(sc, NULL);
	}
	return r;
}

static int
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int
clients_load(struct clients **cp, struct token_session *s,
    const struct token_object *objs, size_t nobjs, uint64_t secret_lifetime_s)
{
	struct clients *c;
	struct client  *cl;
	int	       *used = NULL, r = HK_ERR_NOMEM;
	size_t		i, nclients = 0;

	*cp = NULL;
	if ((c = cl_zalloc_lines(sizeof(*c))) == NULL) {
		return HK_ERR_NOMEM;
	}
	pthread_rwlock_init(&c->lock, NULL);
	pthread_mutex_init(&c->admin, NULL);
	c->lifetime_s = secret_lifetime_s;
	if ((used = calloc(nobjs + 1, sizeof(*used))) == NULL) {
		goto out;
	}
	for (i = 0; i < nobjs; i++) {
		if (objs[i].klass == TOKEN_CLASS_DATA &&
		    has_prefix(objs[i].label, CL_CLIENT_PREFIX) &&
		    (r = load_record(c, s, &objs[i], objs, nobjs, used)) !=
			0) {
			goto out;
		}
	}
	/* secret objects no record knows: a crash before the record, or a
	 * revocation half done; they never authenticated anything */
	for (i = 0; i < nobjs; i++) {
		if (objs[i].klass == TOKEN_CLASS_SECRET && !used[i] &&
		    has_prefix(objs[i].label, CL_SECRET_PREFIX)) {
			log_warnx("removing orphan secret %s", objs[i].label);
			token_destroy(s, objs[i].handle);
		}
	}
	for (cl = c->list; cl != NULL; cl = cl->next) {
		nclients += cl->id[0] != '\0';
	}
	log_info("clients: %zu", nclients);
	/* success */
	*cp = c;
	c = NULL;
	r = 0;
out:
	free(used);
	clients_free(c);
	return r;
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
	out->expires_ms = hk_time_add_s(now, c->lifetime_s);
	return 0;
}

/* Takes the admin lock (the caller releases it) and finds client id. */
static struct client *
admin_find(struct clients *c, const char *id)
{
	struct client *cl;

	pthread_mutex_lock(&c->admin);
	pthread_rwlock_rdlock(&c->lock);
	cl = cl_find(c, id);
	pthread_rwlock_unlock(&c->lock);
	return cl;
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
	if ((cl = cl_client_new()) == NULL) {
		return HK_ERR_NOMEM;
	}
	snprintf(cl->id, sizeof(cl->id), "%s", id);
	cl->created_ms = hk_now_ms();
	if ((r = cl_set_grants(cl, grants, ngrants)) != 0) {
		cl_client_free(cl);
		return r;
	}
	exists = admin_find(c, id) != NULL;
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
	cl_client_free(cl);
	return r;
}

/*
 * Drops from memory the secrets of cl whose revocation the token's record
 * now holds, and destroys their key objects.  With the admin lock held.
 */
static void
forget_revoked(struct clients *c, struct token_session *s, struct client *cl)
{
	token_obj_t keys[CLIENTS_MAX_SECRETS];
	uint32_t    numbers[CLIENTS_MAX_SECRETS];
	size_t	    i, n = 0, k = 0;
	int	    r;

	pthread_rwlock_wrlock(&c->lock);
	for (i = 0; i < cl->nsecrets; i++) {
		if (cl->secrets[i].revoked) {
			numbers[k] = cl->secrets[i].number;
			keys[k++] = cl->secrets[i].key;
		} else {
			cl->secrets[n++] = cl->secrets[i];
		}
	}
	cl->nsecrets = n;
	pthread_rwlock_unlock(&c->lock);
	for (i = 0; i < k; i++) {
		if ((r = token_destroy(s, keys[i])) != 0 &&
		    r != HK_ERR_NOT_FOUND) {
			log_err_r(r,
			    "client %s: cannot destroy revoked secret %" PRIu32
			    " (the next start removes it)",
			    cl->id, numbers[i]);
		}
	}
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
	if (!hk_valid_client_id(id)) {
		return HK_ERR_INVALID;
	}
	if ((cl = admin_find(c, id)) == NULL) {
		r = HK_ERR_NOT_FOUND;
		goto out;
	}
	if (cl->nsecrets >= CLIENTS_MAX_SECRETS) {
		r = HK_ERR_EXHAUSTED; /* revoke an old one first */
		goto out;
	}
	number = cl->next_secret > 0 ? cl->next_secret : 1;
	if (number > CL_MAX_SECRET_NO) {
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
	forget_revoked(c, s, cl); /* the record holds their revocation too */
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
	struct client *cl;
	token_obj_t    meta;
	uint64_t       gen;
	size_t	       i;
	int	       r = HK_ERR_NOT_FOUND;

	if (!hk_valid_client_id(id)) {
		return HK_ERR_INVALID;
	}
	if ((cl = admin_find(c, id)) == NULL) {
		goto out;
	}
	for (i = 0; i < cl->nsecrets && cl->secrets[i].number != secret_no;
	     i++) {
		;
	}
	if (i == cl->nsecrets) {
		goto out;
	}
	/* refused from now on, also when the token write below fails; a
	 * revoked secret found here again is a retry that finishes it */
	pthread_rwlock_wrlock(&c->lock);
	cl->secrets[i].revoked = 1;
	pthread_rwlock_unlock(&c->lock);
	cl_forget_day_keys(cl, secret_no);
	gen = cl->generation;
	meta = cl->meta;
	if ((r = client_store(
		 s, cl, cl->secrets, cl->nsecrets, &gen, &meta)) != 0) {
		log_err_r(r,
		    "client %s: secret %" PRIu32 " is refused, but the token "
		    "did not record its revocation: retry the revoke",
		    id, secret_no);
		goto out;
	}
	pthread_rwlock_wrlock(&c->lock);
	cl->generation = gen;
	cl->meta = meta;
	pthread_rwlock_unlock(&c->lock);
	forget_revoked(c, s, cl);
	log_info("client %s: revoked secret %" PRIu32, id, secret_no);
out:
	pthread_mutex_unlock(&c->admin);
	return r;
}

/* The snapshot of cl into ci; the caller holds a lock. */
static void
snapshot(const struct client *cl, struct clients_info *ci)
{
	size_t i;

	memset(ci, 0, sizeof(*ci));
	memcpy(ci->id, cl->id, sizeof(ci->id));
	for (i = 0; i < cl->ngrants; i++) {
		snprintf(ci->grants[i], sizeof(ci->grants[i]), "%s",
		    cl->grants[i].text);
	}
	ci->ngrants = cl->ngrants;
	for (i = 0; i < cl->nsecrets; i++) {
		const struct secret	   *x = &cl->secrets[i];
		struct clients_secret_info *o;

		if (x->revoked) {
			continue;
		}
		o = &ci->secrets[ci->nsecrets++];
		o->number = x->number;
		o->created_ms = x->created_ms;
		o->expires_ms = x->expires_ms;
		o->last_used_ms = atomic_load(&x->last_used_ms);
	}
}

/* Frees the grant strings of n grants. */
static void
grants_free(struct grant *g, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(g[i].glob);
		free(g[i].text);
	}
}

int
clients_grant(struct clients *c, struct token_session *s, const char *id,
    char *const *grants, size_t ngrants, struct clients_info *infop)
{
	struct client *cl, *draft = NULL;
	struct grant   old[CLIENTS_MAX_GRANTS];
	token_obj_t    meta;
	uint64_t       gen;
	size_t	       nold;
	int	       r = HK_ERR_NOMEM;

	memset(infop, 0, sizeof(*infop));
	if (!hk_valid_client_id(id) || ngrants == 0 ||
	    ngrants > CLIENTS_MAX_GRANTS) {
		return HK_ERR_INVALID;
	}
	/* the new grants in a draft: the record is written from it, and
	 * its grants are swapped in once the token holds them */
	if ((draft = cl_zalloc_lines(sizeof(*draft))) == NULL) {
		return HK_ERR_NOMEM;
	}
	if ((r = cl_set_grants(draft, grants, ngrants)) != 0) {
		grants_free(draft->grants, draft->ngrants);
		free(draft);
		return r;
	}
	if ((cl = admin_find(c, id)) == NULL) {
		r = HK_ERR_NOT_FOUND;
		goto out;
	}
	memcpy(draft->id, cl->id, sizeof(draft->id));
	draft->created_ms = cl->created_ms;
	draft->next_secret = cl->next_secret;
	gen = cl->generation;
	meta = cl->meta;
	if ((r = client_store(
		 s, draft, cl->secrets, cl->nsecrets, &gen, &meta)) != 0) {
		goto out;
	}
	pthread_rwlock_wrlock(&c->lock);
	memcpy(old, cl->grants, sizeof(old));
	nold = cl->ngrants;
	memcpy(cl->grants, draft->grants, sizeof(cl->grants));
	cl->ngrants = draft->ngrants;
	memcpy(draft->grants, old, sizeof(old));
	draft->ngrants = nold;
	cl->generation = gen;
	cl->meta = meta;
	snapshot(cl, infop);
	pthread_rwlock_unlock(&c->lock);
	forget_revoked(c, s, cl); /* the record holds their revocation too */
	log_info("client %s: grants set (%zu)", id, ngrants);
out:
	pthread_mutex_unlock(&c->admin);
	grants_free(draft->grants, draft->ngrants);
	free(draft);
	return r;
}

int
clients_list(struct clients *c, struct clients_info **infosp, size_t *np)
{
	struct clients_info *infos = NULL;
	struct client	    *cl;
	size_t		     n = 0, total = 0;

	*infosp = NULL;
	*np = 0;
	pthread_rwlock_rdlock(&c->lock);
	for (cl = c->list; cl != NULL; cl = cl->next) {
		total++;
	}
	if ((infos = calloc(total + 1, sizeof(*infos))) == NULL) {
		pthread_rwlock_unlock(&c->lock);
		return HK_ERR_NOMEM;
	}
	for (cl = c->list; cl != NULL; cl = cl->next) {
		if (cl->id[0] != '\0') {
			snapshot(cl, &infos[n++]);
		}
	}
	pthread_rwlock_unlock(&c->lock);
	*infosp = infos;
	*np = n;
	return 0;
}

/* The data object labelled label, or TOKEN_OBJ_NONE. */
static token_obj_t
find_record_obj(
    const struct token_object *objs, size_t nobjs, const char *label)
{
	size_t i;

	for (i = 0; i < nobjs; i++) {
		if (objs[i].klass == TOKEN_CLASS_DATA &&
		    strcmp(objs[i].label, label) == 0) {
			return objs[i].handle;
		}
	}
	return TOKEN_OBJ_NONE;
}

int
clients_rebind(
    struct clients *c, const struct token_object *objs, size_t nobjs)
{
	const struct token_object *o;
	struct client		  *cl;
	char			   label[TOKEN_LABEL_MAX];
	size_t			   i, idx;

	pthread_mutex_lock(&c->admin);
	pthread_rwlock_wrlock(&c->lock);
	for (cl = c->list; cl != NULL; cl = cl->next) {
		if (cl->id[0] == '\0') {
			continue;
		}
		snprintf(label, sizeof(label), CL_CLIENT_PREFIX "%s", cl->id);
		if ((cl->meta = find_record_obj(objs, nobjs, label)) ==
		    TOKEN_OBJ_NONE) {
			log_warnx("client %s: its record is missing from the "
				  "token",
			    cl->id);
		}
		for (i = 0; i < cl->nsecrets; i++) {
			secret_label(label, sizeof(label), cl->id,
			    cl->secrets[i].number);
			o = find_secret_obj(objs, nobjs, label, &idx);
			cl->secrets[i].key =
			    o != NULL ? o->handle : TOKEN_OBJ_NONE;
		}
	}
	pthread_rwlock_unlock(&c->lock);
	pthread_mutex_unlock(&c->admin);
	return 0;
}
