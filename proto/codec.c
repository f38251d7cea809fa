/* codec.c: strict, size-capped protobuf decoding (see codec.h). */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hk_err.h"

int
hk_encode(const ProtobufCMessage *m, uint8_t **outp, size_t *lenp)
{
	size_t	 len;
	uint8_t *out;

	*outp = NULL;
	*lenp = 0;
	len = protobuf_c_message_get_packed_size(m);
	if (len > HK_MAX_MESSAGE) {
		return HK_ERR_TOO_LARGE;
	}
	/* malloc(0) may return NULL: always ask for one byte at least */
	if ((out = malloc(len + 1)) == NULL) {
		return HK_ERR_NOMEM;
	}
	if (protobuf_c_message_pack(m, out) != len) {
		free(out);
		return HK_ERR_INTERNAL;
	}
	*outp = out;
	*lenp = len;
	return 0;
}

/* 1 if m or any message inside it carries fields its schema lacks. */
static int
has_unknown(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor	 *f;
	const char			 *base = (const char *)m;
	const ProtobufCMessage *sub, *const *subs;
	unsigned int i;
	size_t	     j, n;

	if (m->n_unknown_fields > 0) {
		return 1;
	}
	for (i = 0; i < d->n_fields; i++) {
		f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
			continue;
		}
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			memcpy(&n, base + f->quantifier_offset, sizeof(n));
			memcpy(&subs, base + f->offset, sizeof(subs));
			for (j = 0; j < n; j++) {
				if (has_unknown(subs[j])) {
					return 1;
				}
			}
			continue;
		}
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0) {
			uint32_t which;

			memcpy(&which, base + f->quantifier_offset,
			    sizeof(which));
			if (which != f->id) {
				continue;
			}
		}
		memcpy(&sub, base + f->offset, sizeof(sub));
		if (sub != NULL && has_unknown(sub)) {
			return 1;
		}
	}
	return 0;
}

/* A base-128 varint of at most 10 bytes at buf[*off]. */
static int
get_varint(const uint8_t *buf, size_t len, size_t *off, uint64_t *vp)
{
	uint64_t     v = 0;
	unsigned int shift;

	for (shift = 0; shift < 70 && *off < len; shift += 7) {
		v |= (uint64_t)(buf[*off] & 0x7f) << shift;
		if ((buf[(*off)++] & 0x80) == 0) {
			*vp = v;
			return 0;
		}
	}
	return HK_ERR_DECODE;
}

int
hk_pb_next(const uint8_t *buf, size_t len, size_t *off, struct hk_pb_field *f)
{
	/* bytes after the key of wire types 1 and 5; 0: see below */
	static const size_t fixed[8] = { 0, 8, 0, 0, 0, 4, 0, 0 };
	uint64_t	    key, v;
	int		    r;

	memset(f, 0, sizeof(*f));
	if ((r = get_varint(buf, len, off, &key)) != 0 || (key >> 3) == 0 ||
	    (key >> 3) > UINT32_MAX) {
		return HK_ERR_DECODE;
	}
	f->number = (uint32_t)(key >> 3);
	f->wire_type = (unsigned int)(key & 7);
	switch (f->wire_type) {
	case 0:
		return get_varint(buf, len, off, &v);
	case 2:
		if ((r = get_varint(buf, len, off, &v)) != 0 ||
		    v > len - *off) {
			return HK_ERR_DECODE;
		}
		f->data = buf + *off;
		f->len = (size_t)v;
		*off += f->len;
		return 0;
	case 1:
	case 5:
		if (len - *off < fixed[f->wire_type]) {
			return HK_ERR_DECODE;
		}
		*off += fixed[f->wire_type];
		return 0;
	default: /* groups (3, 4) and 6, 7: never in this protocol */
		return HK_ERR_DECODE;
	}
}

#define PB_MAX_DEPTH 8

static int
count_fields(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
    size_t len, size_t max, size_t *countp, unsigned int depth)
{
	const ProtobufCFieldDescriptor *fd;
	struct hk_pb_field		f;
	size_t				off = 0;
	int				r;

	if (depth > PB_MAX_DEPTH) {
		return HK_ERR_DECODE;
	}
	while (off < len) {
		if ((r = hk_pb_next(buf, len, &off, &f)) != 0) {
			return r;
		}
		fd = protobuf_c_message_descriptor_get_field(d, f.number);
		if (fd != NULL && f.wire_type == 2 &&
		    fd->type == PROTOBUF_C_TYPE_MESSAGE) {
			(*countp)++;
			r = count_fields(fd->descriptor, f.data, f.len, max,
			    countp, depth + 1);
			if (r != 0) {
				return r;
			}
		} else if (fd != NULL && f.wire_type == 2 &&
		    fd->label == PROTOBUF_C_LABEL_REPEATED &&
		    fd->type != PROTOBUF_C_TYPE_STRING &&
		    fd->type != PROTOBUF_C_TYPE_BYTES) {
			*countp += f.len; /* packed: at least a byte each */
		} else {
			(*countp)++;
		}
		if (*countp > max) {
			return HK_ERR_TOO_LARGE;
		}
	}
	return 0;
}

int
hk_pb_count_fields(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
    size_t len, size_t max, size_t *countp)
{
	*countp = 0;
	return count_fields(d, buf, len, max, countp, 0);
}

int
hk_decode_strict(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
    size_t len, ProtobufCMessage **mp)
{
	ProtobufCMessage *m = NULL;
	uint8_t		 *again = NULL;
	size_t		  again_len;
	int		  r = HK_ERR_DECODE;

	*mp = NULL;
	if (len > HK_MAX_MESSAGE) {
		return HK_ERR_TOO_LARGE;
	}
	if ((m = protobuf_c_message_unpack(d, NULL, len, buf)) == NULL) {
		goto out;
	}
	if (has_unknown(m)) {
		r = HK_ERR_DECODE;
		goto out;
	}
	if ((r = hk_encode(m, &again, &again_len)) != 0) {
		goto out;
	}
	if (again_len != len || (len > 0 && memcmp(again, buf, len) != 0)) {
		r = HK_ERR_DECODE;
		goto out;
	}
	/* success */
	*mp = m;
	m = NULL;
	r = 0;
out:
	free(again);
	if (m != NULL) {
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return r;
}
