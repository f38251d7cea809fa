/*
 * codec.h: size-capped protobuf encoding and decoding shared by the service
 * and the client.  Decoding is strict: a message must re-encode to exactly
 * the bytes received (no duplicate, out-of-order or non-canonical fields
 * smuggled under a valid MAC).  Thread-safe.
 */
#ifndef HK_CODEC_H
#define HK_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "hsmkey.pb-c.h"

#define HK_MAX_MESSAGE (1024 * 1024) /* NN_RCVMAXSIZE, both ends */
#define HK_MAX_BATCH   1000	     /* items in one sign request */

/*
 * Decodes len bytes as a message of descriptor d, then re-encodes it and
 * fails with HK_ERR_DECODE unless the result equals the input and no field
 * at any depth is unknown to the schema.
 * Caller frees *mp with protobuf_c_message_free_unpacked(*mp, NULL).
 */
int hk_decode_strict(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
    size_t len, ProtobufCMessage **mp);

/* Encodes m into a new buffer. Caller must free *outp. */
int hk_encode(const ProtobufCMessage *m, uint8_t **outp, size_t *lenp);

#endif /* HK_CODEC_H */
