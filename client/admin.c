/*
 * admin.c: libhsmkey's key and admin calls for the hsmkey CLI
 * (hk_client.h): each builds its request, sends it through
 * hk_client_call() and hands back plain C results that point into the
 * reply they hold.
 */
#include <stdlib.h>
#include <string.h>

#include "hk_call.h"
#include "wire.h"

static const char *
str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* The version infos of k into an array; NULL (and *np 0) for none. */
static int
versions_of(struct hsmkey *h, const Hsmkey__V1__KeyInfo *k,
    struct hk_version_info **vp, size_t *np)
{
	struct hk_version_info *v;
	size_t			i;

	*vp = NULL;
	*np = 0;
	if (k->n_versions == 0) {
		return 0;
	}
	if ((v = calloc(k->n_versions, sizeof(*v))) == NULL) {
		return hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
	}
	for (i = 0; i < k->n_versions; i++) {
		const Hsmkey__V1__VersionInfo *w = k->versions[i];

		v[i].version = w->version;
		v[i].state = hk_state_name(w->state);
		v[i].destroy_scheduled = w->state ==
		    HSMKEY__V1__VERSION_STATE__STATE_DESTROY_SCHEDULED;
		v[i].primary = w->primary;
		v[i].created_ms = w->created_ms;
		v[i].activated_ms = w->activated_ms;
		v[i].retire_ms = w->retire_ms;
		v[i].signs = w->signs;
		v[i].verifies = w->verifies;
		v[i].errors = w->errors;
		v[i].last_use_ms = w->last_use_ms;
	}
	*vp = v;
	*np = k->n_versions;
	return 0;
}

static int
key_of(struct hsmkey *h, const Hsmkey__V1__KeyInfo *k, struct hk_key_info *o)
{
	memset(o, 0, sizeof(*o));
	o->name = str_or_empty(k->name);
	o->alg = hk_alg_name(hk_alg_from_wire(k->alg));
	o->primary = k->primary;
	o->created_ms = k->created_ms;
	o->service_key = k->service_key;
	o->next_rotation_ms = k->next_rotation_ms;
	if (k->policy != NULL) {
		o->has_policy = 1;
		o->sign_overlap_s = k->policy->sign_overlap_s;
		o->verify_grace_s = k->policy->verify_grace_s;
		o->rotate_every_s = k->policy->rotate_every_s;
		o->expires_ms = k->policy->expires_ms;
	}
	return versions_of(h, k, &o->versions, &o->n_versions);
}

/* Sends req, answered by a KeyResponse, into *res. */
static int
key_call(struct hsmkey *h, Hsmkey__V1__Request *req, struct hk_key_result *res)
{
	Hsmkey__V1__Response *resp = NULL;
	int		      r;

	memset(res, 0, sizeof(*res));
	if ((r = hk_client_call(
		 h, req, HSMKEY__V1__RESPONSE__RESULT_KEY, &resp)) != 0) {
		return r;
	}
	res->reply = resp;
	if (resp->key->key == NULL) {
		return hk_client_error(
		    h, HSMKEY_EPROTO, "reply carries no key");
	}
	if ((r = key_of(h, resp->key->key, &res->key)) != 0) {
		return r;
	}
	res->key.changed = resp->key->version;
	return 0;
}

void
hk_key_result_free(struct hk_key_result *res)
{
	free(res->key.versions);
	hk_client_response_free(res->reply);
	memset(res, 0, sizeof(*res));
}

int
hk_key_create(struct hsmkey *h, const char *name, const char *alg,
    struct hk_key_result *res)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__CreateRequest cr = HSMKEY__V1__CREATE_REQUEST__INIT;
	hk_alg			  al = HK_ALG_ECDSA_P256;

	memset(res, 0, sizeof(*res));
	if (alg != NULL && hk_alg_parse(alg, &al) != 0) {
		return hk_client_error(
		    h, HSMKEY_EINVAL, "unknown algorithm '%s'", alg);
	}
	cr.name = (char *)name;
	cr.alg = hk_alg_to_wire(al);
	req.op_case = HSMKEY__V1__REQUEST__OP_CREATE;
	req.create = &cr;
	return key_call(h, &req, res);
}

int
hk_key_describe(struct hsmkey *h, const char *name, struct hk_key_result *res)
{
	Hsmkey__V1__Request	    req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__DescribeRequest dr = HSMKEY__V1__DESCRIBE_REQUEST__INIT;

	dr.name = (char *)name;
	req.op_case = HSMKEY__V1__REQUEST__OP_DESCRIBE;
	req.describe = &dr;
	return key_call(h, &req, res);
}

int
hk_key_rotate(struct hsmkey *h, const char *name, uint32_t expect, int flags,
    struct hk_key_result *res)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__RotateRequest rr = HSMKEY__V1__ROTATE_REQUEST__INIT;

	rr.name = (char *)name;
	rr.expect = expect;
	rr.stage = (flags & HSMKEY_ROTATE_STAGE) != 0;
	rr.emergency = (flags & HSMKEY_ROTATE_EMERGENCY) != 0;
	req.op_case = HSMKEY__V1__REQUEST__OP_ROTATE;
	req.rotate = &rr;
	return key_call(h, &req, res);
}

int
hk_key_version_op(struct hsmkey *h, enum hk_key_op op, const char *name,
    uint32_t version, struct hk_key_result *res)
{
	Hsmkey__V1__Request	   req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__PromoteRequest pr = HSMKEY__V1__PROMOTE_REQUEST__INIT;
	Hsmkey__V1__DisableRequest dr = HSMKEY__V1__DISABLE_REQUEST__INIT;
	Hsmkey__V1__DestroyRequest xr = HSMKEY__V1__DESTROY_REQUEST__INIT;

	/* the three messages differ only in their type: fill them all,
	 * send the one op names */
	pr.name = dr.name = xr.name = (char *)name;
	pr.version = dr.version = xr.version = version;
	switch (op) {
	case HK_KEY_PROMOTE:
		req.op_case = HSMKEY__V1__REQUEST__OP_PROMOTE;
		req.promote = &pr;
		break;
	case HK_KEY_DISABLE:
		req.op_case = HSMKEY__V1__REQUEST__OP_DISABLE;
		req.disable = &dr;
		break;
	case HK_KEY_DESTROY:
	case HK_KEY_CANCEL:
		xr.cancel = op == HK_KEY_CANCEL;
		req.op_case = HSMKEY__V1__REQUEST__OP_DESTROY;
		req.destroy = &xr;
		break;
	default:
		memset(res, 0, sizeof(*res));
		return hk_client_error(
		    h, HSMKEY_EINVAL, "unknown key operation");
	}
	return key_call(h, &req, res);
}

/* *up = u holding *v when v is given. */
static void
opt_u64(const uint64_t *v, Hsmkey__V1__U64Value *u, Hsmkey__V1__U64Value **up)
{
	if (v != NULL) {
		u->value = *v;
		*up = u;
	}
}

int
hk_key_policy(struct hsmkey *h, const char *name,
    const struct hk_policy_change *pc, struct hk_key_result *res)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__PolicyRequest pr = HSMKEY__V1__POLICY_REQUEST__INIT;
	Hsmkey__V1__U64Value	  so = HSMKEY__V1__U64_VALUE__INIT;
	Hsmkey__V1__U64Value	  vg = HSMKEY__V1__U64_VALUE__INIT;
	Hsmkey__V1__U64Value	  re = HSMKEY__V1__U64_VALUE__INIT;
	Hsmkey__V1__U64Value	  ex = HSMKEY__V1__U64_VALUE__INIT;

	opt_u64(pc->sign_overlap_s, &so, &pr.sign_overlap_s);
	opt_u64(pc->verify_grace_s, &vg, &pr.verify_grace_s);
	opt_u64(pc->rotate_every_s, &re, &pr.rotate_every_s);
	opt_u64(pc->expires_ms, &ex, &pr.expires_ms);
	pr.name = (char *)name;
	req.op_case = HSMKEY__V1__REQUEST__OP_POLICY;
	req.policy = &pr;
	return key_call(h, &req, res);
}

int
hk_key_list(struct hsmkey *h, struct hk_key_list *l)
{
	Hsmkey__V1__Request	req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__ListRequest lr = HSMKEY__V1__LIST_REQUEST__INIT;
	Hsmkey__V1__Response   *resp = NULL;
	size_t			i;
	int			r;

	memset(l, 0, sizeof(*l));
	req.op_case = HSMKEY__V1__REQUEST__OP_LIST;
	req.list = &lr;
	if ((r = hk_client_call(
		 h, &req, HSMKEY__V1__RESPONSE__RESULT_LIST, &resp)) != 0) {
		return r;
	}
	l->reply = resp;
	if (resp->list->n_keys > 0 &&
	    (l->keys = calloc(resp->list->n_keys, sizeof(*l->keys))) == NULL) {
		return hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
	}
	for (i = 0; i < resp->list->n_keys; i++) {
		if ((r = key_of(h, resp->list->keys[i], &l->keys[i])) != 0) {
			return r;
		}
		l->n = i + 1;
	}
	return 0;
}

void
hk_key_list_free(struct hk_key_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->keys[i].versions);
	}
	free(l->keys);
	hk_client_response_free(l->reply);
	memset(l, 0, sizeof(*l));
}

int
hk_key_pubkey(
    struct hsmkey *h, const char *name, uint32_t version, struct hk_pubkey *pk)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__PubkeyRequest pr = HSMKEY__V1__PUBKEY_REQUEST__INIT;
	Hsmkey__V1__Response	 *resp = NULL;
	int			  r;

	memset(pk, 0, sizeof(*pk));
	pr.name = (char *)name;
	pr.version = version;
	req.op_case = HSMKEY__V1__REQUEST__OP_PUBKEY;
	req.pubkey = &pr;
	if ((r = hk_client_call(
		 h, &req, HSMKEY__V1__RESPONSE__RESULT_PUBKEY, &resp)) != 0) {
		return r;
	}
	pk->reply = resp;
	pk->version = resp->pubkey->version;
	pk->alg = hk_alg_name(hk_alg_from_wire(resp->pubkey->alg));
	pk->pem = str_or_empty(resp->pubkey->pem);
	pk->der = resp->pubkey->der.data;
	pk->der_len = resp->pubkey->der.len;
	return 0;
}

void
hk_pubkey_free(struct hk_pubkey *pk)
{
	hk_client_response_free(pk->reply);
	memset(pk, 0, sizeof(*pk));
}

/* Sends req, answered by a ClientSecretResponse, into *cs. */
static int
secret_call(
    struct hsmkey *h, Hsmkey__V1__Request *req, struct hk_client_secret *cs)
{
	Hsmkey__V1__Response		 *resp = NULL;
	Hsmkey__V1__ClientSecretResponse *s;
	int				  r;

	memset(cs, 0, sizeof(*cs));
	if ((r = hk_client_call(h, req,
		 HSMKEY__V1__RESPONSE__RESULT_CLIENT_SECRET, &resp)) != 0) {
		return r;
	}
	cs->reply = resp;
	s = resp->client_secret;
	cs->id = str_or_empty(s->id);
	cs->secret_no = s->secret_no;
	cs->secret = s->secret.data;
	cs->secret_len = s->secret.len;
	cs->expires_ms = s->expires_ms;
	return 0;
}

int
hk_client_add(struct hsmkey *h, const char *id, const char *const *grants,
    size_t n_grants, struct hk_client_secret *cs)
{
	Hsmkey__V1__Request	     req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__ClientAddRequest ar = HSMKEY__V1__CLIENT_ADD_REQUEST__INIT;

	ar.id = (char *)id;
	ar.n_grants = n_grants;
	ar.grants = (char **)grants;
	req.op_case = HSMKEY__V1__REQUEST__OP_CLIENT_ADD;
	req.client_add = &ar;
	return secret_call(h, &req, cs);
}

int
hk_client_rotate(struct hsmkey *h, const char *id, struct hk_client_secret *cs)
{
	Hsmkey__V1__Request		req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__ClientRotateRequest rr =
	    HSMKEY__V1__CLIENT_ROTATE_REQUEST__INIT;

	rr.id = (char *)id;
	req.op_case = HSMKEY__V1__REQUEST__OP_CLIENT_ROTATE;
	req.client_rotate = &rr;
	return secret_call(h, &req, cs);
}

void
hk_client_secret_free(struct hk_client_secret *cs)
{
	/* hk_client_response_free() zeroes the secret */
	hk_client_response_free(cs->reply);
	memset(cs, 0, sizeof(*cs));
}

int
hk_client_revoke(struct hsmkey *h, const char *id, uint32_t secret_no)
{
	Hsmkey__V1__Request		req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__ClientRevokeRequest rr =
	    HSMKEY__V1__CLIENT_REVOKE_REQUEST__INIT;

	rr.id = (char *)id;
	rr.secret_no = secret_no;
	req.op_case = HSMKEY__V1__REQUEST__OP_CLIENT_REVOKE;
	req.client_revoke = &rr;
	return hk_client_call_status(h, &req);
}

static int
client_of(struct hsmkey *h, const Hsmkey__V1__ClientInfo *ci,
    struct hk_client_info *o)
{
	size_t k;

	o->id = str_or_empty(ci->id);
	o->n_grants = ci->n_grants;
	o->grants = (const char *const *)ci->grants;
	if (ci->n_secrets == 0) {
		return 0;
	}
	if ((o->secrets = calloc(ci->n_secrets, sizeof(*o->secrets))) ==
	    NULL) {
		return hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
	}
	for (k = 0; k < ci->n_secrets; k++) {
		o->secrets[k].number = ci->secrets[k]->number;
		o->secrets[k].created_ms = ci->secrets[k]->created_ms;
		o->secrets[k].expires_ms = ci->secrets[k]->expires_ms;
		o->secrets[k].last_used_ms = ci->secrets[k]->last_used_ms;
	}
	o->n_secrets = ci->n_secrets;
	return 0;
}

int
hk_client_grant(struct hsmkey *h, const char *id, const char *const *grants,
    size_t n_grants, struct hk_client_result *res)
{
	Hsmkey__V1__Request	       req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__ClientGrantRequest gr =
	    HSMKEY__V1__CLIENT_GRANT_REQUEST__INIT;
	Hsmkey__V1__Response *resp = NULL;
	int		      r;

	memset(res, 0, sizeof(*res));
	if (h == NULL || id == NULL || (grants == NULL && n_grants > 0)) {
		return hk_client_error(h, HSMKEY_EINVAL, "invalid argument");
	}
	gr.id = (char *)id;
	gr.n_grants = n_grants;
	gr.grants = (char **)grants;
	req.op_case = HSMKEY__V1__REQUEST__OP_CLIENT_GRANT;
	req.client_grant = &gr;
	if ((r = hk_client_call(h, &req,
		 HSMKEY__V1__RESPONSE__RESULT_CLIENT_INFO, &resp)) != 0) {
		return r;
	}
	res->reply = resp;
	return client_of(h, resp->client_info, &res->client);
}

void
hk_client_result_free(struct hk_client_result *res)
{
	free(res->client.secrets);
	hk_client_response_free(res->reply);
	memset(res, 0, sizeof(*res));
}

int
hsmkey_client_grant(struct hsmkey *h, const char *id,
    const char *const *grants, size_t n_grants)
{
	struct hk_client_result res;
	int			r;

	r = hk_client_grant(h, id, grants, n_grants, &res);
	hk_client_result_free(&res);
	return r;
}

int
hk_client_list(struct hsmkey *h, struct hk_client_list *l)
{
	Hsmkey__V1__Request	      req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__ClientListRequest lr =
	    HSMKEY__V1__CLIENT_LIST_REQUEST__INIT;
	Hsmkey__V1__Response		     *resp = NULL;
	const Hsmkey__V1__ClientListResponse *cl;
	size_t				      i;
	int				      r;

	memset(l, 0, sizeof(*l));
	req.op_case = HSMKEY__V1__REQUEST__OP_CLIENT_LIST;
	req.client_list = &lr;
	if ((r = hk_client_call(h, &req,
		 HSMKEY__V1__RESPONSE__RESULT_CLIENT_LIST, &resp)) != 0) {
		return r;
	}
	l->reply = resp;
	cl = resp->client_list;
	if (cl->n_clients > 0 &&
	    (l->clients = calloc(cl->n_clients, sizeof(*l->clients))) ==
		NULL) {
		return hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
	}
	for (i = 0; i < cl->n_clients; i++) {
		l->n = i + 1;
		if ((r = client_of(h, cl->clients[i], &l->clients[i])) != 0) {
			return r;
		}
	}
	return 0;
}

void
hk_client_list_free(struct hk_client_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->clients[i].secrets);
	}
	free(l->clients);
	hk_client_response_free(l->reply);
	memset(l, 0, sizeof(*l));
}

static int
stats_of(
    struct hsmkey *h, const Hsmkey__V1__StatsResponse *sr, struct hk_stats *st)
{
	size_t i;

	if ((sr->n_versions > 0 &&
		(st->versions = calloc(
		     sr->n_versions, sizeof(*st->versions))) == NULL) ||
	    (sr->n_secrets > 0 &&
		(st->secrets = calloc(sr->n_secrets, sizeof(*st->secrets))) ==
		    NULL)) {
		return hk_client_error(h, HSMKEY_ENOMEM, "out of memory");
	}
	for (i = 0; i < sr->n_versions; i++) {
		const Hsmkey__V1__VersionStats *vs = sr->versions[i];

		st->versions[i].key = str_or_empty(vs->key);
		st->versions[i].version = vs->version;
		st->versions[i].state = hk_state_name(vs->state);
		st->versions[i].signs = vs->signs;
		st->versions[i].verifies = vs->verifies;
		st->versions[i].errors = vs->errors;
		st->versions[i].last_use_ms = vs->last_use_ms;
	}
	st->n_versions = sr->n_versions;
	for (i = 0; i < sr->n_secrets; i++) {
		const Hsmkey__V1__SecretStats *ss = sr->secrets[i];

		st->secrets[i].client = str_or_empty(ss->client);
		st->secrets[i].secret = ss->secret;
		st->secrets[i].requests = ss->requests;
		st->secrets[i].denials = ss->denials;
		st->secrets[i].last_use_ms = ss->last_use_ms;
	}
	st->n_secrets = sr->n_secrets;
	return 0;
}

int
hk_service_stats(struct hsmkey *h, struct hk_stats *st)
{
	Hsmkey__V1__Request	 req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__StatsRequest sr = HSMKEY__V1__STATS_REQUEST__INIT;
	Hsmkey__V1__Response	*resp = NULL;
	int			 r;

	memset(st, 0, sizeof(*st));
	req.op_case = HSMKEY__V1__REQUEST__OP_STATS;
	req.stats = &sr;
	if ((r = hk_client_call(
		 h, &req, HSMKEY__V1__RESPONSE__RESULT_STATS, &resp)) != 0) {
		return r;
	}
	st->reply = resp;
	return stats_of(h, resp->stats, st);
}

void
hk_stats_free(struct hk_stats *st)
{
	free(st->versions);
	free(st->secrets);
	hk_client_response_free(st->reply);
	memset(st, 0, sizeof(*st));
}

int
hk_service_health(struct hsmkey *h, struct hk_health *hh)
{
	Hsmkey__V1__Request	  req = HSMKEY__V1__REQUEST__INIT;
	Hsmkey__V1__HealthRequest hr = HSMKEY__V1__HEALTH_REQUEST__INIT;
	Hsmkey__V1__Response	 *resp = NULL;
	const Hsmkey__V1__HealthResponse *w;
	int				  r;

	memset(hh, 0, sizeof(*hh));
	req.op_case = HSMKEY__V1__REQUEST__OP_HEALTH;
	req.health = &hr;
	if ((r = hk_client_call(
		 h, &req, HSMKEY__V1__RESPONSE__RESULT_HEALTH, &resp)) != 0) {
		return r;
	}
	hh->reply = resp;
	w = resp->health;
	hh->version = str_or_empty(w->version);
	hh->protocol = w->protocol;
	hh->token_ok = w->token_ok;
	hh->audit_ok = w->audit_ok;
	hh->token_label = str_or_empty(w->token_label);
	hh->token_state = str_or_empty(w->token_state);
	hh->audit_state = str_or_empty(w->audit_state);
	hh->keys = w->keys;
	hh->versions = w->versions;
	hh->workers = w->workers;
	hh->uptime_s = w->uptime_s;
	hh->token_down_since_ms = w->token_down_since_ms;
	hh->token_repairs = w->token_repairs;
	return 0;
}

void
hk_health_free(struct hk_health *hh)
{
	hk_client_response_free(hh->reply);
	memset(hh, 0, sizeof(*hh));
}
