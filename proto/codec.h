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

/*
 * Reading protobuf wire bytes without unpacking them, to refuse what
 * would cost allocations before protobuf_c_message_unpack() makes them.
 * One field: its number, wire type and, for wire type 2 (bytes, strings,
 * messages, packed scalars), its bytes, which point into the input.
 */
struct hk_pb_field {
	uint32_t       number;
	unsigned int   wire_type;
	const uint8_t *data;
	size_t	       len;
};

/* Reads the field at buf[*off] (of len bytes) and moves *off past it: 0, or
 * HK_ERR_DECODE on malformed or truncated bytes. */
int
hk_pb_next(const uint8_t *buf, size_t len, size_t *off, struct hk_pb_field *f);

/*
 * Counts the fields of the message in buf at every depth that d describes
 * (the elements of a packed field count as its length in bytes), stopping
 * at max + 1: HK_ERR_TOO_LARGE over max, HK_ERR_DECODE on malformed bytes,
 * else 0 with *countp.  Costs O(min(fields, max)), allocates nothing.
 */
int hk_pb_count_fields(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
    size_t len, size_t max, size_t *countp);

/* Encodes m into a new buffer. Caller must free *outp. */
int hk_encode(const ProtobufCMessage *m, uint8_t **outp, size_t *lenp);

#endif /* HK_CODEC_H */
