/*
 * convert.c: C snapshots to wire messages (see convert.h).  A message is
 * built in one allocation where its shape allows it: the struct, its
 * pointer arrays and its elements, laid out one after the other, so that
 * one free() releases it.
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "svckeys.h"
#include "wire.h"
#include "hk_err.h"

/* Our states are the schema's VersionState, number for number: the
 * conversion is a cast, checked here once. */
#define SAME(ours, wire) \
	((int)(ours) == (int)HSMKEY__V1__VERSION_STATE__##wire)
_Static_assert(SAME(LC_NONE, STATE_UNSPECIFIED) &&
	SAME(LC_PENDING, STATE_PENDING) && SAME(LC_ACTIVE, STATE_ACTIVE) &&
	SAME(LC_VERIFY_ONLY, STATE_VERIFY_ONLY) &&
	SAME(LC_DISABLED, STATE_DISABLED) &&
	SAME(LC_DESTROY_SCHEDULED, STATE_DESTROY_SCHEDULED) &&
	SAME(LC_DESTROYED, STATE_DESTROYED) && LC_NSTATES == 7,
    "enum lc_state must match hsmkey.v1.VersionState");
#undef SAME

Hsmkey__V1__VersionState
convert_state(enum lc_state st)
{
	return (Hsmkey__V1__VersionState)st;
}

int
convert_state_from(Hsmkey__V1__VersionState wire, enum lc_state *stp)
{
	if (!lifecycle_valid((int)wire)) {
		return HK_ERR_DECODE;
	}
	*stp = (enum lc_state)wire;
	return 0;
}

/* One block carved into parts: room() reserves, carve() hands out. */
struct block {
	uint8_t *base;
	size_t	 off;
};

static size_t
room(size_t *total, size_t n, size_t size)
{
	size_t at =
	    (*total + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);

	*total = at + n * size;
	return at;
}

static void *
carve(struct block *b, size_t n, size_t size)
{
	return b->base + room(&b->off, n, size);
}

/* ---- keys ------------------------------------------------------------- */

static void
version_info(const struct keyring_vinfo *v, Hsmkey__V1__VersionInfo *vi)
{
	hsmkey__v1__version_info__init(vi);
	vi->version = v->version;
	vi->state = convert_state(v->state);
	vi->created_ms = v->created_ms;
	vi->activated_ms = v->activated_ms;
	vi->retire_ms = v->retire_ms;
	vi->primary = v->primary != 0;
	vi->signs = v->signs;
	vi->verifies = v->verifies;
	vi->errors = v->errors;
	vi->last_use_ms = v->last_use_ms;
}

int
convert_key_info(const struct keyring_info *info, Hsmkey__V1__KeyInfo **outp)
{
	Hsmkey__V1__KeyInfo	*ki;
	Hsmkey__V1__VersionInfo *vis;
	struct block		 b = { NULL, 0 };
	size_t			 total = 0, i, n = info->nversions;

	*outp = NULL;
	room(&total, 1, sizeof(*ki));
	room(&total, 1, sizeof(*ki->policy));
	room(&total, n + 1, sizeof(*ki->versions));
	room(&total, n + 1, sizeof(*vis));
	room(&total, strlen(info->name) + 1, 1);
	if ((b.base = calloc(1, total)) == NULL) {
		return HK_ERR_NOMEM;
	}
	ki = carve(&b, 1, sizeof(*ki));
	hsmkey__v1__key_info__init(ki);
	ki->policy = carve(&b, 1, sizeof(*ki->policy));
	hsmkey__v1__policy__init(ki->policy);
	ki->versions = carve(&b, n + 1, sizeof(*ki->versions));
	vis = carve(&b, n + 1, sizeof(*vis));
	ki->name = carve(&b, strlen(info->name) + 1, 1);
	memcpy(ki->name, info->name, strlen(info->name) + 1);
	ki->alg = hk_alg_to_wire(info->alg);
	ki->primary = info->primary;
	ki->created_ms = info->created_ms;
	ki->service_key = svckeys_is(info->name);
	ki->next_rotation_ms = info->next_rotation_ms;
	ki->policy->sign_overlap_s = info->policy.sign_overlap_s;
	ki->policy->verify_grace_s = info->policy.verify_grace_s;
	ki->policy->rotate_every_s = info->policy.rotate_every_s;
	ki->policy->expires_ms = info->policy.expires_ms;
	for (i = 0; i < n; i++) {
		version_info(&info->versions[i], &vis[i]);
		ki->versions[i] = &vis[i];
	}
	ki->n_versions = n;
	*outp = ki;
	return 0;
}

void
convert_key_info_free(void *ki)
{
	free(ki); /* one block */
}

void
convert_key_list_free(void *p)
{
	Hsmkey__V1__ListResponse *l = p;
	size_t			  i;

	if (l == NULL) {
		return;
	}
	for (i = 0; i < l->n_keys; i++) {
		convert_key_info_free(l->keys[i]);
	}
	free(l->keys);
	free(l);
}

int
convert_key_list(const struct keyring_info *infos, size_t n,
    Hsmkey__V1__ListResponse **outp)
{
	Hsmkey__V1__ListResponse *l;
	int			  r;

	*outp = NULL;
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		return HK_ERR_NOMEM;
	}
	hsmkey__v1__list_response__init(l);
	if ((l->keys = calloc(n + 1, sizeof(*l->keys))) == NULL) {
		free(l);
		return HK_ERR_NOMEM;
	}
	for (; l->n_keys < n; l->n_keys++) {
		if ((r = convert_key_info(
			 &infos[l->n_keys], &l->keys[l->n_keys])) != 0) {
			convert_key_list_free(l);
			return r;
		}
	}
	*outp = l;
	return 0;
}

/* ---- counters --------------------------------------------------------- */

static void
version_stats(const struct keyring_vstats *v, Hsmkey__V1__VersionStats *x)
{
	hsmkey__v1__version_stats__init(x);
	x->key = (char *)v->key; /* points into the same block */
	x->version = v->version;
	x->state = convert_state(v->state);
	x->signs = v->signs;
	x->verifies = v->verifies;
	x->errors = v->errors;
	x->last_use_ms = v->last_use_ms;
}

static void
secret_stats(const struct clients_secret_stats *s, Hsmkey__V1__SecretStats *x)
{
	hsmkey__v1__secret_stats__init(x);
	x->client = (char *)s->client;
	x->secret = s->secret;
	x->requests = s->requests;
	x->denials = s->denials;
	x->last_use_ms = s->last_use_ms;
}

int
convert_stats(const struct keyring_vstats *vs, size_t nv,
    const struct clients_secret_stats *ss, size_t ns,
    Hsmkey__V1__StatsResponse **outp)
{
	Hsmkey__V1__StatsResponse   *st;
	Hsmkey__V1__VersionStats    *xv;
	Hsmkey__V1__SecretStats	    *xs;
	struct keyring_vstats	    *cv;
	struct clients_secret_stats *cs;
	struct block		     b = { NULL, 0 };
	size_t			     total = 0, i;

	*outp = NULL;
	room(&total, 1, sizeof(*st));
	room(&total, nv + 1, sizeof(*st->versions));
	room(&total, nv + 1, sizeof(*xv));
	room(&total, nv + 1, sizeof(*cv));
	room(&total, ns + 1, sizeof(*st->secrets));
	room(&total, ns + 1, sizeof(*xs));
	room(&total, ns + 1, sizeof(*cs));
	if ((b.base = calloc(1, total)) == NULL) {
		return HK_ERR_NOMEM;
	}
	st = carve(&b, 1, sizeof(*st));
	hsmkey__v1__stats_response__init(st);
	st->versions = carve(&b, nv + 1, sizeof(*st->versions));
	xv = carve(&b, nv + 1, sizeof(*xv));
	cv = carve(&b, nv + 1, sizeof(*cv));
	st->secrets = carve(&b, ns + 1, sizeof(*st->secrets));
	xs = carve(&b, ns + 1, sizeof(*xs));
	cs = carve(&b, ns + 1, sizeof(*cs));
	/* the names are copied too: the message owns everything */
	for (i = 0; i < nv; i++) {
		cv[i] = vs[i];
		version_stats(&cv[i], &xv[i]);
		st->versions[i] = &xv[i];
	}
	for (i = 0; i < ns; i++) {
		cs[i] = ss[i];
		secret_stats(&cs[i], &xs[i]);
		st->secrets[i] = &xs[i];
	}
	st->n_versions = nv;
	st->n_secrets = ns;
	*outp = st;
	return 0;
}

void
convert_stats_free(void *st)
{
	free(st); /* one block */
}

/* ---- clients ---------------------------------------------------------- */

Hsmkey__V1__ClientInfo *
convert_client_info(const struct clients_info *ci)
{
	Hsmkey__V1__ClientInfo *x;
	Hsmkey__V1__SecretInfo *si;
	struct block		b = { NULL, 0 };
	size_t			total = 0, i;

	room(&total, 1, sizeof(*x));
	room(&total, ci->ngrants + 1, sizeof(*x->grants));
	room(&total, ci->nsecrets + 1, sizeof(*x->secrets));
	room(&total, ci->nsecrets + 1, sizeof(*si));
	if ((b.base = calloc(1, total)) == NULL) {
		return NULL;
	}
	x = carve(&b, 1, sizeof(*x));
	hsmkey__v1__client_info__init(x);
	x->grants = carve(&b, ci->ngrants + 1, sizeof(*x->grants));
	x->secrets = carve(&b, ci->nsecrets + 1, sizeof(*x->secrets));
	si = carve(&b, ci->nsecrets + 1, sizeof(*si));
	x->id = (char *)ci->id;
	for (i = 0; i < ci->ngrants; i++) {
		x->grants[i] = (char *)ci->grants[i];
	}
	x->n_grants = ci->ngrants;
	for (i = 0; i < ci->nsecrets; i++) {
		hsmkey__v1__secret_info__init(&si[i]);
		si[i].number = ci->secrets[i].number;
		si[i].created_ms = ci->secrets[i].created_ms;
		si[i].expires_ms = ci->secrets[i].expires_ms;
		si[i].last_used_ms = ci->secrets[i].last_used_ms;
		x->secrets[i] = &si[i];
	}
	x->n_secrets = ci->nsecrets;
	return x;
}

/* The response keeps a copy of the snapshots its strings point into. */
struct client_list {
	Hsmkey__V1__ClientListResponse resp; /* first: freed by its address */
	struct clients_info	      *infos;
};

int
convert_client_list(const struct clients_info *infos, size_t n,
    Hsmkey__V1__ClientListResponse **outp)
{
	struct client_list *cl;
	size_t		    i;

	*outp = NULL;
	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		return HK_ERR_NOMEM;
	}
	hsmkey__v1__client_list_response__init(&cl->resp);
	if ((cl->infos = calloc(n + 1, sizeof(*cl->infos))) == NULL ||
	    (cl->resp.clients = calloc(n + 1, sizeof(*cl->resp.clients))) ==
		NULL) {
		convert_client_list_free(&cl->resp);
		return HK_ERR_NOMEM;
	}
	if (n > 0) {
		memcpy(cl->infos, infos, n * sizeof(*infos));
	}
	for (i = 0; i < n; i++) {
		if ((cl->resp.clients[i] =
			    convert_client_info(&cl->infos[i])) == NULL) {
			convert_client_list_free(&cl->resp);
			return HK_ERR_NOMEM;
		}
		cl->resp.n_clients = i + 1;
	}
	*outp = &cl->resp;
	return 0;
}

void
convert_client_list_free(void *p)
{
	Hsmkey__V1__ClientListResponse *resp = p;
	struct client_list	       *cl = p;
	size_t				i;

	if (cl == NULL) {
		return;
	}
	for (i = 0; i < resp->n_clients; i++) {
		free(resp->clients[i]);
	}
	free(resp->clients);
	free(cl->infos);
	free(cl);
}

/* ---- requests --------------------------------------------------------- */

void
convert_policy_change(
    const Hsmkey__V1__PolicyRequest *req, struct keyring_policy_change *ch)
{
	memset(ch, 0, sizeof(*ch));
	if (req->sign_overlap_s != NULL) {
		ch->sign_overlap_s = &req->sign_overlap_s->value;
	}
	if (req->verify_grace_s != NULL) {
		ch->verify_grace_s = &req->verify_grace_s->value;
	}
	if (req->rotate_every_s != NULL) {
		ch->rotate_every_s = &req->rotate_every_s->value;
	}
	if (req->expires_ms != NULL) {
		ch->expires_ms = &req->expires_ms->value;
	}
}
