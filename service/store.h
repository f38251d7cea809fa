/*
 * store.h: records kept in the token as CKO_DATA objects.  A record is
 * replaced by writing the new one first and removing the old one after, so
 * that a crash leaves at least one whole record; readers keep the highest
 * generation.  Thread-safe with one session per thread.
 */
#ifndef HK_STORE_H
#define HK_STORE_H

#include <protobuf-c/protobuf-c.h>

#include "token.h"

/* Writes m as a new record labelled label, then destroys *metap (if any);
 * *metap becomes the new object. */
int store_replace(struct token_session *s, const char *label,
    const ProtobufCMessage *m, token_obj_t *metap);

#endif /* HK_STORE_H */
