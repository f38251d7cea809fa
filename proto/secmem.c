/* secmem.c: locked, non-dumpable pages for secrets (see secmem.h). */
#include <sys/mman.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "secmem.h"

/* len rounded up to whole pages; 0 if len is 0 or that overflows. */
static size_t
map_len(size_t len)
{
	long   ps = sysconf(_SC_PAGESIZE);
	size_t page = ps > 0 ? (size_t)ps : 4096;

	if (len == 0 || len > SIZE_MAX - page) {
		return 0;
	}
	return (len + page - 1) / page * page;
}

void *
hk_secmem_alloc_locked(size_t len, int *lockedp)
{
	size_t maplen = map_len(len);
	void  *p;
	int    locked = 1, saved = 0;

	if (lockedp != NULL) {
		*lockedp = 0;
	}
	if (maplen == 0) {
		errno = len == 0 ? EINVAL : ENOMEM;
		return NULL;
	}
	/* anonymous pages come zeroed */
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		return NULL;
	}
	if (mlock(p, maplen) == -1) {
		locked = 0;
		saved = errno;
	}
	if (madvise(p, maplen, MADV_DONTDUMP) == -1) {
		if (locked) {
			saved = errno;
		}
		locked = 0;
	}
	if (lockedp != NULL) {
		*lockedp = locked;
	}
	if (!locked) {
		errno = saved;
	}
	return p;
}

void *
hk_secmem_alloc(size_t len)
{
	return hk_secmem_alloc_locked(len, NULL);
}

void
hk_secmem_free(void *p, size_t len)
{
	size_t maplen = map_len(len);

	if (p == NULL || maplen == 0) {
		return;
	}
	explicit_bzero(p, maplen);
	(void)munlock(p, maplen);
	munmap(p, maplen);
}

/* ---- slots ------------------------------------------------------------- */

/* A free slot holds the link to the next free one, nothing else. */
struct slot {
	struct slot *next;
};

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot    *slot_free; /* under slot_lock */

/* Threads a new page's slots onto the free list; the caller holds
 * slot_lock.  0, or -1 when no page can be had. */
static int
slot_page(void)
{
	size_t	 len = map_len(1), i;
	uint8_t *page;

	if (len == 0 || (page = hk_secmem_alloc(len)) == NULL) {
		return -1;
	}
	for (i = 0; i + HK_SECMEM_SLOT <= len; i += HK_SECMEM_SLOT) {
		struct slot *s = (struct slot *)(void *)(page + i);

		s->next = slot_free;
		slot_free = s;
	}
	return 0;
}

void *
hk_secmem_slot_alloc(void)
{
	struct slot *s = NULL;

	pthread_mutex_lock(&slot_lock);
	if (slot_free != NULL || slot_page() == 0) {
		s = slot_free;
		slot_free = s->next;
		s->next = NULL; /* the slot is all zero again */
	}
	pthread_mutex_unlock(&slot_lock);
	return s;
}

void
hk_secmem_slot_free(void *p)
{
	struct slot *s = p;

	if (s == NULL) {
		return;
	}
	explicit_bzero(s, HK_SECMEM_SLOT);
	pthread_mutex_lock(&slot_lock);
	s->next = slot_free;
	slot_free = s;
	pthread_mutex_unlock(&slot_lock);
}
