/* ops.c: what every request handler shares (see ops.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "convert.h"
#include "hk_err.h"
#include "ops.h"
#include "testhooks.h"
#include "wire.h"

#define ARENA_MAX (HK_MAX_BATCH * 2 + 64)

void *
ops_keep(struct dispatch_reply *rep, void *p, void (*fn)(void *))
{
	struct arena	  *a = &rep->arena;
	struct arena_item *grown;
	size_t		   cap;

	if (p == NULL) {
		return NULL;
	}
	if (a->items == NULL) {
		a->items = a->inl;
		a->cap = ARENA_INLINE;
	}
	if (a->n == a->cap) {
		cap = a->cap * 4;
		if (a->n >= ARENA_MAX ||
		    (grown = calloc(cap, sizeof(*grown))) == NULL) {
			a->full = 1;
			fn(p);
			return NULL;
		}
		memcpy(grown, a->items, a->n * sizeof(*grown));
		if (a->items != a->inl) {
			free(a->items);
		}
		a->items = grown;
		a->cap = cap;
	}
	a->items[a->n].p = p;
	a->items[a->n].fn = fn;
	a->n++;
	return p;
}

void *
ops_calloc(struct dispatch_reply *rep, size_t n, size_t size)
{
	return ops_keep(rep, calloc(n == 0 ? 1 : n, size), free);
}

void
ops_release(struct dispatch_reply *rep)
{
	struct arena *a = &rep->arena;
	size_t	      i;

	for (i = a->n; i > 0; i--) {
		a->items[i - 1].fn(a->items[i - 1].p);
	}
	a->n = 0;
	if (a->items != NULL && a->items != a->inl) {
		free(a->items);
	}
	a->items = NULL;
	a->cap = 0;
}

int
ops_result(struct dispatch_reply *rep, Hsmkey__V1__Response__ResultCase kind,
    void *msg, void (*fn)(void *))
{
	const ProtobufCFieldDescriptor *f;

	f = protobuf_c_message_descriptor_get_field(
	    &hsmkey__v1__response__descriptor, (unsigned)kind);
	if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE) {
		if (fn != NULL) {
			fn(msg);
		}
		return ops_fail(rep, HK_ERR_INTERNAL, "no such result");
	}
	if (msg == NULL || (fn != NULL && ops_keep(rep, msg, fn) == NULL)) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	*(void **)((char *)&rep->resp + f->offset) = msg;
	rep->resp.result_case = kind;
	return 0;
}

/* Sets the reply to the status of r with a one-line message. */
int
ops_fail(struct dispatch_reply *rep, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rep->msg, sizeof(rep->msg), fmt, ap);
	va_end(ap);
	rep->resp.status = hk_status_from_err(r);
	rep->resp.message = rep->msg;
	rep->resp.result_case = HSMKEY__V1__RESPONSE__RESULT__NOT_SET;
	return r;
}

/* 1 if ctx's client holds op on key (NULL: on every key). */
int
ops_allowed(struct dispatch_ctx *ctx, enum client_op op, const char *key)
{
	if (testhooks_skip_auth()) {
		return 1;
	}
	return clients_allowed(ctx->sv->clients, ctx->client, op, key);
}

/* Reports a keyring lookup failure for name/version. */
int
ops_key_error(struct dispatch_reply *rep, int r, const char *name,
    uint32_t version, const char *what)
{
	switch (r) {
	case HK_ERR_NOT_FOUND:
		if (version == 0) {
			return ops_fail(rep, r, "key '%s' not found", name);
		}
		return ops_fail(
		    rep, r, "key '%s' has no version %" PRIu32, name, version);
	case HK_ERR_PRECONDITION:
		if (version == 0) {
			return ops_fail(rep, r,
			    "key '%s' has no active version "
			    "to %s",
			    name, what);
		}
		return ops_fail(rep, r,
		    "version %" PRIu32 " of key '%s' may not "
		    "%s in its state",
		    version, name, what);
	case HK_ERR_EXISTS:
		return ops_fail(rep, r, "key '%s' already exists", name);
	case HK_ERR_UNAVAILABLE:
		return ops_fail(rep, r,
		    "the token is unavailable, cannot %s key '%s': hsmkeyd "
		    "is reconnecting to it; try again",
		    what, name);
	case HK_ERR_PKCS11:
		return ops_fail(rep, r,
		    "the token failed to %s key '%s': see the "
		    "service log",
		    what, name);
	default:
		return ops_fail(rep, r, "cannot %s key '%s': %s", what, name,
		    hk_strerror(r));
	}
}

/* The reply: key name described, with version the one used or made. */
int
ops_key_result(struct dispatch_reply *rep, struct keyring *kr,
    const char *name, uint32_t version)
{
	Hsmkey__V1__KeyResponse *kresp;
	Hsmkey__V1__KeyInfo	*info = NULL;
	struct keyring_info	 ki;
	int			 r;

	if ((r = keyring_info(kr, name, &ki)) == 0) {
		r = convert_key_info(&ki, &info);
	}
	keyring_info_clear(&ki);
	if (r != 0) {
		return ops_fail(rep, r, "cannot describe key '%s'", name);
	}
	ops_keep(rep, info, convert_key_info_free);
	if ((kresp = ops_calloc(rep, 1, sizeof(*kresp))) == NULL) {
		return ops_fail(rep, HK_ERR_NOMEM, "out of memory");
	}
	hsmkey__v1__key_response__init(kresp);
	kresp->key = info;
	kresp->version = version;
	rep->version = version;
	return ops_result(rep, HSMKEY__V1__RESPONSE__RESULT_KEY, kresp, NULL);
}

/* 1 if the client of ctx (arg) may see key name in a list. */
int
ops_shown(void *arg, const char *name)
{
	struct dispatch_ctx *ctx = arg;

	return testhooks_skip_auth() ||
	    clients_any_grant(ctx->sv->clients, ctx->client, name);
}
