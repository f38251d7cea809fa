/*
 * svckeys.h: the service's own keys, one table row each (svckeys.c): the
 * audit key (checkpoints, audit.c) and the key set key (signed key sets,
 * ops_keyset.c).  They live in the keyring like any key and export their
 * public keys as any other; no client may sign with them, since a client
 * that could would forge what they sign.  Thread-safe.
 */
#ifndef HK_SVCKEYS_H
#define HK_SVCKEYS_H

#include "keyring.h"
#include "token.h"

#define SVCKEYS_KEYSET_NAME "hsmkey-keyset" /* signs key sets */

/* 1 if name is one of the service's own keys. */
int svckeys_is(const char *name);

/* Creates the service key name (of its row's algorithm) if the token has
 * none; an existing key that cannot sign is logged, not an error. */
int
svckeys_ensure(struct keyring *kr, struct token_session *s, const char *name);

#endif /* HK_SVCKEYS_H */
