/*
 * keyring_load.c: builds the keyring from the token's objects, and repairs
 * what a crash left half done: intents of dead makers are rolled back, the
 * stale one of two records is removed, key objects no record knows are
 * deleted (see keyring.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "hk_err.h"
#include "keyring_int.h"
#include "log.h"
#include "wire.h"

/* Parses "hsmkey:<name>:v<N>". */
static int
parse_key_label(
    const char *label, char *name, size_t namelen, uint32_t *versionp)
{
	const char   *p, *colon;
	unsigned long v;
	char	     *end;

	if (strncmp(label, KR_KEY_PREFIX, strlen(KR_KEY_PREFIX)) != 0) {
		return HK_ERR_INVALID;
	}
	p = label + strlen(KR_KEY_PREFIX);
	if ((colon = strrchr(p, ':')) == NULL || colon[1] != 'v' ||
	    (size_t)(colon - p) >= namelen) {
		return HK_ERR_INVALID;
	}
	memcpy(name, p, (size_t)(colon - p));
	name[colon - p] = '\0';
	errno = 0;
	v = strtoul(colon + 2, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > KR_MAX_VERSIONS ||
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
	char	    host[KR_OWNER_MAX];
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
		return now < hk_time_add_s(v->intent_ms, 10 * 60);
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
		h = kr_hash(ls->objs[i].label) % ls->nheads;
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

	for (i = ls->heads[kr_hash(label) % ls->nheads]; i != 0;
	     i = ls->chain[i - 1]) {
		if (ls->objs[i - 1].klass == klass &&
		    strcmp(ls->objs[i - 1].label, label) == 0) {
			*idxp = i - 1;
			return &ls->objs[i - 1];
		}
	}
	return NULL;
}

/* Removes the unused objects labelled as version of key name; how many. */
static size_t
destroy_version_objects(struct token_session *s, struct load_state *ls,
    const char *name, uint32_t version)
{
	static const enum token_class classes[] = { TOKEN_CLASS_PRIVATE,
		TOKEN_CLASS_PUBLIC };
	const struct token_object    *o;
	char			      label[TOKEN_LABEL_MAX];
	size_t			      i, idx, n = 0;
	int			      r;

	kr_key_label(label, sizeof(label), name, version);
	for (i = 0; i < 2; i++) {
		while ((o = find_obj(ls, label, classes[i], &idx)) != NULL &&
		    !ls->used[idx]) {
			if ((r = token_destroy(s, o->handle)) != 0 &&
			    r != HK_ERR_NOT_FOUND) {
				log_err_r(r, "cannot remove %s", label);
			}
			ls->used[idx] = 1;
			n++;
		}
	}
	return n;
}

/*
 * Rolls back the interrupted creates and rotations of rec whose makers are
 * dead (only the newest versions can be such), rewriting the record.
 * *metap becomes TOKEN_OBJ_NONE if no version is left: the key is gone.
 */
static int
roll_back_intents(struct keyring *kr, struct token_session *s,
    struct load_state *ls, struct kr_rec *rec, token_obj_t *metap,
    uint64_t now)
{
	const struct kr_vrec *last;
	int		      r, changed = 0;

	while (rec->nv > 0 && (last = &rec->v[rec->nv - 1])->creating &&
	    !owner_alive(kr, last, now)) {
		log_warnx("key %s: rolling back v%" PRIu32 " left half made "
			  "by %s",
		    rec->name, last->version, last->owner);
		destroy_version_objects(s, ls, rec->name, last->version);
		rec->nv--;
		changed = 1;
	}
	if (rec->nv == 0) {
		log_warnx(
		    "key %s: creation never finished; removed", rec->name);
		if ((r = token_destroy(s, *metap)) != 0 &&
		    r != HK_ERR_NOT_FOUND) {
			return r;
		}
		*metap = TOKEN_OBJ_NONE;
		return 0;
	}
	return changed ? kr_rec_store(s, rec, metap) : 0;
}

/* Finds the token objects of version v of k and marks them used. */
static void
attach_objects(
    struct load_state *ls, const struct kr_key *k, struct kr_version *v)
{
	char			   label[TOKEN_LABEL_MAX];
	const struct token_object *o;
	size_t			   idx;

	kr_key_label(label, sizeof(label), k->name, v->rec.version);
	if ((o = find_obj(ls, label, TOKEN_CLASS_PRIVATE, &idx)) != NULL) {
		v->priv = o->handle;
		v->token_can_sign = o->can_sign;
		ls->used[idx] = 1;
	}
	if ((o = find_obj(ls, label, TOKEN_CLASS_PUBLIC, &idx)) != NULL) {
		v->pub = o->handle;
		ls->used[idx] = 1;
	}
	if (v->rec.state != LC_DESTROYED && !v->rec.creating &&
	    (v->priv == TOKEN_OBJ_NONE ||
		(v->pub == TOKEN_OBJ_NONE && v->spki == NULL))) {
		log_warnx("key %s v%" PRIu32 ": key objects missing from the "
			  "token; the version cannot be used",
		    k->name, v->rec.version);
	}
}

/* Builds key k from rec, rolling back intents of dead owners. */
static int
load_key(struct keyring *kr, struct token_session *s, struct load_state *ls,
    struct kr_rec *rec, token_obj_t meta, uint64_t now)
{
	struct kr_key *k = NULL;
	size_t	       i;
	int	       r;

	if ((r = roll_back_intents(kr, s, ls, rec, &meta, now)) != 0 ||
	    meta == TOKEN_OBJ_NONE) {
		return r;
	}
	if ((k = kr_key_new(rec, meta)) == NULL) {
		return HK_ERR_NOMEM;
	}
	for (i = 0; i < k->nv; i++) {
		if (k->v[i]->rec.state != LC_DESTROYED) {
			attach_objects(ls, k, k->v[i]);
		} else if (destroy_version_objects(
			       s, ls, k->name, k->v[i]->rec.version) > 0) {
			/* the record said destroyed, then the process died
			 * before the objects went: finish the destruction */
			log_warnx("key %s v%" PRIu32
				  ": destroyed, but its key "
				  "objects were still in the token: removed",
			    k->name, k->v[i]->rec.version);
		}
	}
	/* copies are made at first use: a token of thousands of keys starts
	 * faster and smaller */
	kr_sync_can_sign(kr, s, k, 0);
	if ((r = kr_insert_key(kr, k)) != 0) {
		kr_key_free(k);
		return r;
	}
	kr->nversions += k->nv;
	return 0;
}

/* The records of ls: the newest generation of each key wins, the others
 * are removed.  recs and metas have room for every object. */
static int
read_records(struct token_session *s, const struct load_state *ls,
    struct kr_rec *recs, token_obj_t *metas, size_t *nrecsp)
{
	const struct token_object *o;
	struct kr_rec		   rec;
	uint8_t			  *val;
	size_t			   i, j, vlen, nrecs = 0;
	int			   r;

	for (i = 0; i < ls->nobjs; i++) {
		o = &ls->objs[i];
		if (o->klass != TOKEN_CLASS_DATA ||
		    strncmp(o->label, KR_META_PREFIX,
			strlen(KR_META_PREFIX)) != 0) {
			continue;
		}
		if ((r = token_data_read(s, o->handle, &val, &vlen)) != 0) {
			log_err_r(r, "cannot read %s", o->label);
			*nrecsp = nrecs;
			return r;
		}
		r = kr_rec_decode(val, vlen, &rec);
		free(val);
		if (r != 0) {
			log_err_r(
			    r, "unreadable record %s; left alone", o->label);
			continue;
		}
		for (j = 0; j < nrecs; j++) {
			if (strcmp(recs[j].name, rec.name) == 0) {
				break;
			}
		}
		if (j < nrecs && recs[j].generation >= rec.generation) {
			log_info("removing stale record of key %s", rec.name);
			token_destroy(s, o->handle);
			kr_rec_free(&rec);
			continue;
		}
		if (j < nrecs) {
			log_info("removing stale record of key %s", rec.name);
			token_destroy(s, metas[j]);
			kr_rec_free(&recs[j]);
		} else {
			nrecs++;
		}
		recs[j] = rec;
		metas[j] = o->handle;
	}
	*nrecsp = nrecs;
	return 0;
}

/* 1 if version of key name is an intent someone may still be making. */
static int
being_made(struct keyring *kr, const struct kr_rec *recs, size_t nrecs,
    const char *name, uint32_t version)
{
	struct kr_key *k;
	size_t	       j;

	if ((k = kr_find_key(kr, name)) != NULL && version <= k->nv &&
	    k->v[version - 1]->rec.creating) {
		return 1;
	}
	for (j = 0; j < nrecs; j++) {
		if (strcmp(recs[j].name, name) == 0 && version <= recs[j].nv &&
		    recs[j].v[version - 1].creating) {
			return 1;
		}
	}
	return 0;
}

/* Key objects that no record knows were never used: removes them, unless
 * a live process is still making them. */
static void
remove_orphans(struct keyring *kr, struct token_session *s,
    const struct load_state *ls, const struct kr_rec *recs, size_t nrecs)
{
	const struct token_object *o;
	char			   name[KEYRING_NAME_MAX + 1];
	uint32_t		   version;
	size_t			   i;
	int			   r;

	for (i = 0; i < ls->nobjs; i++) {
		o = &ls->objs[i];
		if (ls->used[i] ||
		    (o->klass != TOKEN_CLASS_PRIVATE &&
			o->klass != TOKEN_CLASS_PUBLIC) ||
		    parse_key_label(o->label, name, sizeof(name), &version) !=
			0 ||
		    being_made(kr, recs, nrecs, name, version)) {
			continue;
		}
		log_warnx("removing orphan token object %s", o->label);
		if ((r = token_destroy(s, o->handle)) != 0 &&
		    r != HK_ERR_NOT_FOUND) {
			log_err_r(r, "cannot remove %s", o->label);
		}
	}
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
	size_t		  j, nrecs = 0;
	uint64_t	  now = hk_now_ms();
	int		  r = HK_ERR_NOMEM;

	*krp = NULL;
	memset(&ls, 0, sizeof(ls));
	ls.objs = objs;
	ls.nobjs = nobjs;
	if ((kr = kr_new(tok, opts)) == NULL ||
	    (r = index_objects(&ls)) != 0) {
		goto out;
	}
	r = HK_ERR_NOMEM;
	if ((ls.used = calloc(nobjs + 1, sizeof(*ls.used))) == NULL ||
	    (recs = calloc(nobjs + 1, sizeof(*recs))) == NULL ||
	    (metas = calloc(nobjs + 1, sizeof(*metas))) == NULL) {
		goto out;
	}
	if ((r = read_records(s, &ls, recs, metas, &nrecs)) != 0) {
		goto out;
	}
	for (j = 0; j < nrecs; j++) {
		if ((r = load_key(kr, s, &ls, &recs[j], metas[j], now)) != 0) {
			goto out;
		}
	}
	remove_orphans(kr, s, &ls, recs, nrecs);
	log_info("keyring: %zu keys, %zu versions", kr->nkeys, kr->nversions);
	/* success */
	*krp = kr;
	kr = NULL;
	r = 0;
out:
	for (j = 0; recs != NULL && j < nrecs; j++) {
		kr_rec_free(&recs[j]);
	}
	free(recs);
	free(metas);
	free(ls.used);
	free(ls.heads);
	free(ls.chain);
	keyring_free(kr);
	return r;
}

/* k's record object: the data object labelled with its name. */
static token_obj_t
find_meta(const struct load_state *ls, const struct kr_key *k)
{
	char			   label[TOKEN_LABEL_MAX];
	const struct token_object *o;
	size_t			   idx;

	snprintf(label, sizeof(label), KR_META_PREFIX "%s", k->name);
	if ((o = find_obj(ls, label, TOKEN_CLASS_DATA, &idx)) == NULL) {
		log_warnx(
		    "key %s: its record is missing from the token", k->name);
		return TOKEN_OBJ_NONE;
	}
	return o->handle;
}

int
keyring_rebind(
    struct keyring *kr, const struct token_object *objs, size_t nobjs)
{
	struct load_state  ls;
	struct kr_key	  *k;
	struct kr_version *v;
	size_t		   b, i;
	int		   r = HK_ERR_NOMEM;

	memset(&ls, 0, sizeof(ls));
	ls.objs = objs;
	ls.nobjs = nobjs;
	if ((ls.used = calloc(nobjs + 1, sizeof(*ls.used))) == NULL ||
	    (r = index_objects(&ls)) != 0) {
		goto out;
	}
	pthread_mutex_lock(&kr->admin);
	pthread_rwlock_wrlock(&kr->lock);
	for (b = 0; b < kr->nbuckets; b++) {
		for (k = kr->buckets[b]; k != NULL; k = k->next) {
			k->meta = find_meta(&ls, k);
			for (i = 0; i < k->nv; i++) {
				v = k->v[i];
				/* session copies died with the old sessions:
				 * the next signature makes a new one */
				v->priv = v->pub = v->copy = TOKEN_OBJ_NONE;
				v->no_copy = 0;
				if (v->rec.state != LC_DESTROYED) {
					attach_objects(&ls, k, v);
				}
			}
		}
	}
	pthread_rwlock_unlock(&kr->lock);
	pthread_mutex_unlock(&kr->admin);
	r = 0;
out:
	free(ls.used);
	free(ls.heads);
	free(ls.chain);
	return r;
}
