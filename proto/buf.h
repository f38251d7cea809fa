/*
 * buf.h: a bounds-checked byte buffer for building and reading untrusted
 * bytes.  Each buffer has a per-instance maximum; a "secret" buffer zeroes
 * its memory on reset and free.  Not thread-safe: one owner at a time.
 */
#ifndef HK_BUF_H
#define HK_BUF_H

#include <stddef.h>
#include <stdint.h>

struct hk_buf;

/* New empty buffer that may grow to max bytes; NULL on allocation failure. */
struct hk_buf *hk_buf_new(size_t max);
/* Same, but the contents are zeroed before memory is released. */
struct hk_buf *hk_buf_new_secret(size_t max);
/* Read-only view of len bytes at p (not copied: p must outlive the buffer). */
struct hk_buf *hk_buf_from(const void *p, size_t len);
void	       hk_buf_free(struct hk_buf *b); /* accepts NULL */
void	       hk_buf_reset(struct hk_buf *b);

size_t	       hk_buf_len(const struct hk_buf *b);
const uint8_t *hk_buf_ptr(const struct hk_buf *b); /* caller does not free */

int hk_buf_put(struct hk_buf *b, const void *p, size_t len);
int hk_buf_put_u32(struct hk_buf *b, uint32_t v); /* big-endian */
int hk_buf_put_u64(struct hk_buf *b, uint64_t v); /* big-endian */
/* A u32 length, then the bytes. */
int hk_buf_put_string(struct hk_buf *b, const void *p, size_t len);

/* Consume from the front; HK_ERR_DECODE when too few bytes remain. */
int hk_buf_get_u32(struct hk_buf *b, uint32_t *vp);
int hk_buf_get_u64(struct hk_buf *b, uint64_t *vp);
/* Points *pp into the buffer (caller does not free), n bytes consumed. */
int hk_buf_get_bytes_direct(struct hk_buf *b, size_t n, const uint8_t **pp);
/* HK_ERR_DECODE if any byte is left: callers reject trailing bytes. */
int hk_buf_end(const struct hk_buf *b);

#endif /* HK_BUF_H */
