/* errors.c: the names and descriptions of libhsmkey's error codes, from
 * one table (hsmkey.h). */
#include <stddef.h>

#include "hsmkey.h"

struct hk_errdesc {
	int	    err;
	const char *name; /* hsmkey_error_name() */
	const char *text; /* hsmkey_strerror() */
};

static const struct hk_errdesc errdescs[] = {
	{ HSMKEY_OK, "OK", "success" },
	{ HSMKEY_EINVAL, "INVALID_ARGUMENT", "invalid argument" },
	{ HSMKEY_EUNAUTH, "UNAUTHENTICATED", "unauthenticated" },
	{ HSMKEY_EDENIED, "PERMISSION_DENIED", "permission denied" },
	{ HSMKEY_ENOTFOUND, "NOT_FOUND", "not found" },
	{ HSMKEY_EEXISTS, "ALREADY_EXISTS", "already exists" },
	{ HSMKEY_EPRECONDITION, "FAILED_PRECONDITION", "failed precondition" },
	{ HSMKEY_EREPLAY, "REPLAY", "replayed request" },
	{ HSMKEY_EUNAVAIL, "UNAVAILABLE", "service unavailable" },
	{ HSMKEY_EINTERNAL, "INTERNAL", "internal service error" },
	{ HSMKEY_EEXHAUSTED, "RESOURCE_EXHAUSTED", "resource exhausted" },
	{ HSMKEY_EUNSUPPORTED, "UNIMPLEMENTED", "not supported" },
	{ HSMKEY_ECONNECT, "CONNECT", "cannot reach the service" },
	{ HSMKEY_ETIMEOUT, "TIMEOUT", "no reply in time" },
	{ HSMKEY_EPROTO, "PROTOCOL", "malformed or unauthenticated reply" },
	{ HSMKEY_ENOMEM, "NOMEM", "out of memory" },
	{ HSMKEY_ECREDENTIALS, "CREDENTIALS", "credentials file unusable" },
	{ HSMKEY_ECONNLOST, "CONNECTION_LOST",
	    "connection lost with a request in flight" },
};

static const struct hk_errdesc *
errdesc(int err)
{
	size_t i;

	for (i = 0; i < sizeof(errdescs) / sizeof(errdescs[0]); i++) {
		if (errdescs[i].err == err) {
			return &errdescs[i];
		}
	}
	return NULL;
}

const char *
hsmkey_strerror(int err)
{
	const struct hk_errdesc *d = errdesc(err);

	return d != NULL ? d->text : "unknown error";
}

const char *
hsmkey_error_name(int err)
{
	const struct hk_errdesc *d = errdesc(err);

	return d != NULL ? d->name : "UNKNOWN";
}
