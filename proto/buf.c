/* buf.c: bounds-checked byte buffer (see buf.h). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "buf.h"
#include "hk_err.h"

struct hk_buf {
	uint8_t	      *d;
	const uint8_t *ro;  /* read-only view, or NULL */
	size_t	       off; /* read offset */
	size_t	       len; /* bytes written (or viewed) */
	size_t	       alloc;
	size_t	       max;
	int	       secret;
};

static struct hk_buf *
buf_alloc(size_t max, int secret)
{
	struct hk_buf *b;

	if ((b = calloc(1, sizeof(*b))) == NULL) {
		return NULL;
	}
	b->max = max;
	b->secret = secret;
	return b;
}

struct hk_buf *
hk_buf_new(size_t max)
{
	return buf_alloc(max, 0);
}

struct hk_buf *
hk_buf_new_secret(size_t max)
{
	return buf_alloc(max, 1);
}

struct hk_buf *
hk_buf_from(const void *p, size_t len)
{
	struct hk_buf *b;

	if ((b = buf_alloc(len, 0)) == NULL) {
		return NULL;
	}
	b->ro = p;
	b->len = len;
	return b;
}

void
hk_buf_reset(struct hk_buf *b)
{
	if (b == NULL) {
		return;
	}
	if (b->d != NULL && b->secret) {
		OPENSSL_cleanse(b->d, b->alloc);
	}
	if (b->ro == NULL) {
		b->len = 0;
	}
	b->off = 0;
}

void
hk_buf_free(struct hk_buf *b)
{
	if (b == NULL) {
		return;
	}
	hk_buf_reset(b);
	free(b->d);
	free(b);
}

size_t
hk_buf_len(const struct hk_buf *b)
{
	return b->len - b->off;
}

const uint8_t *
hk_buf_ptr(const struct hk_buf *b)
{
	return (b->ro != NULL ? b->ro : b->d) + b->off;
}

static int
buf_reserve(struct hk_buf *b, size_t n)
{
	size_t	 want;
	uint8_t *nd;

	if (b->ro != NULL) {
		return HK_ERR_INTERNAL;
	}
	if (n > b->max || b->len > b->max - n) {
		return HK_ERR_TOO_LARGE;
	}
	if (b->len + n <= b->alloc) {
		return 0;
	}
	want = b->alloc < 64 ? 64 : b->alloc;
	while (want < b->len + n) {
		want *= 2;
	}
	if (want > b->max) {
		want = b->max;
	}
	if ((nd = malloc(want)) == NULL) {
		return HK_ERR_NOMEM;
	}
	if (b->d != NULL) {
		memcpy(nd, b->d, b->len);
		if (b->secret) {
			OPENSSL_cleanse(b->d, b->alloc);
		}
		free(b->d);
	}
	b->d = nd;
	b->alloc = want;
	return 0;
}

int
hk_buf_put(struct hk_buf *b, const void *p, size_t len)
{
	int r;

	if ((r = buf_reserve(b, len)) != 0) {
		return r;
	}
	if (len > 0) {
		memcpy(b->d + b->len, p, len);
	}
	b->len += len;
	return 0;
}

int
hk_buf_put_u32(struct hk_buf *b, uint32_t v)
{
	uint8_t x[4] = { v >> 24, v >> 16, v >> 8, v };

	return hk_buf_put(b, x, sizeof(x));
}

int
hk_buf_put_u64(struct hk_buf *b, uint64_t v)
{
	int r;

	if ((r = hk_buf_put_u32(b, (uint32_t)(v >> 32))) != 0) {
		return r;
	}
	return hk_buf_put_u32(b, (uint32_t)v);
}

int
hk_buf_put_string(struct hk_buf *b, const void *p, size_t len)
{
	int r;

	if (len > UINT32_MAX) {
		return HK_ERR_TOO_LARGE;
	}
	if ((r = hk_buf_put_u32(b, (uint32_t)len)) != 0) {
		return r;
	}
	return hk_buf_put(b, p, len);
}

int
hk_buf_get_bytes_direct(struct hk_buf *b, size_t n, const uint8_t **pp)
{
	*pp = NULL;
	if (b->len - b->off < n) {
		return HK_ERR_DECODE;
	}
	*pp = hk_buf_ptr(b);
	b->off += n;
	return 0;
}

int
hk_buf_get_u32(struct hk_buf *b, uint32_t *vp)
{
	const uint8_t *p;
	int	       r;

	*vp = 0;
	if ((r = hk_buf_get_bytes_direct(b, 4, &p)) != 0) {
		return r;
	}
	*vp = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
	return 0;
}

int
hk_buf_get_u64(struct hk_buf *b, uint64_t *vp)
{
	uint32_t hi, lo;
	int	 r;

	*vp = 0;
	if ((r = hk_buf_get_u32(b, &hi)) != 0 ||
	    (r = hk_buf_get_u32(b, &lo)) != 0) {
		return r;
	}
	*vp = (uint64_t)hi << 32 | lo;
	return 0;
}

int
hk_buf_end(const struct hk_buf *b)
{
	return b->off == b->len ? 0 : HK_ERR_DECODE;
}
