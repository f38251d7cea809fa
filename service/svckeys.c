/* svckeys.c: the service's own keys (see svckeys.h). */
#include <string.h>

#include "audit_format.h"
#include "hk_err.h"
#include "log.h"
#include "svckeys.h"

struct svckey {
	const char *name;
	hk_alg	    alg;
	const char *what; /* what it signs, for the log */
};

static const struct svckey svckeys[] = {
	{ HK_AUDIT_KEY_NAME, HK_ALG_ECDSA_P256, "checkpoints" },
	{ SVCKEYS_KEYSET_NAME, HK_ALG_ECDSA_P256, "key sets" },
};

#define NSVCKEYS (sizeof(svckeys) / sizeof(svckeys[0]))

static const struct svckey *
find(const char *name)
{
	size_t i;

	for (i = 0; name != NULL && i < NSVCKEYS; i++) {
		if (strcmp(svckeys[i].name, name) == 0) {
			return &svckeys[i];
		}
	}
	return NULL;
}

int
svckeys_is(const char *name)
{
	return find(name) != NULL;
}

int
svckeys_ensure(struct keyring *kr, struct token_session *s, const char *name)
{
	const struct svckey  *k = find(name);
	struct keyring_signer sg;
	int		      r;

	if (k == NULL) {
		return HK_ERR_INTERNAL;
	}
	if ((r = keyring_signer(kr, k->name, 0, &sg)) == 0) {
		return 0;
	}
	if (r != HK_ERR_NOT_FOUND) {
		log_warnx("service key '%s' has no version that signs: "
			  "%s fail until an admin rotates it",
		    k->name, k->what);
		return 0;
	}
	if ((r = keyring_create(kr, s, k->name, k->alg)) != 0 &&
	    r != HK_ERR_EXISTS) {
		log_err_r(r, "cannot create the service key '%s'", k->name);
		return r;
	}
	if (r == 0) {
		log_info("created the service key '%s' (%s, signs %s) in the "
			 "token",
		    k->name, hk_alg_name(k->alg), k->what);
	}
	return 0;
}
