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
