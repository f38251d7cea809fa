/*
 * secmem.h: memory for secrets (PINs, client secrets, day keys): whole
 * anonymous pages, locked with mlock(2) and left out of core dumps
 * (MADV_DONTDUMP), zeroed before they are unmapped.  Thread-safe.
 *
 * Locking is best effort: RLIMIT_MEMLOCK may be 0 (containers, unprivileged
 * users).  When mlock or madvise fails the memory is still handed out, not
 * locked; hk_secmem_alloc_locked() tells the caller so (errno is that of the
 * failed call), for the callers that warn about it.
 */
#ifndef HK_SECMEM_H
#define HK_SECMEM_H

#include <stddef.h>

/* len zeroed bytes (rounded up to whole pages), locked if possible.  NULL
 * when len is 0 or memory is short.  Caller must hk_secmem_free(p, len). */
void *hk_secmem_alloc(size_t len);
/* hk_secmem_alloc(), and *lockedp is 1 if mlock and MADV_DONTDUMP both
 * worked, 0 if not (then errno says why). */
void *hk_secmem_alloc_locked(size_t len, int *lockedp);
/* Zeroes and unmaps what hk_secmem_alloc(len) returned.  Accepts NULL. */
void hk_secmem_free(void *p, size_t len);

/*
 * Small secrets that come and go per request (a copy of a day key): slots
 * of HK_SECMEM_SLOT bytes carved from hk_secmem_alloc() pages, shared by
 * every thread, so that each does not cost a page and a system call.  A
 * slot comes zeroed and is zeroed again when it is freed (but for the
 * free list's link, which is no secret); pages are kept
 * for reuse (as many as were ever in use at once).  NULL when memory is
 * short.  Caller must hk_secmem_slot_free(p).
 */
#define HK_SECMEM_SLOT 64
void *hk_secmem_slot_alloc(void);
/* Zeroes a slot and returns it for reuse.  Accepts NULL. */
void hk_secmem_slot_free(void *p);

#endif /* HK_SECMEM_H */
