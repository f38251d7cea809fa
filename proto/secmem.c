/* secmem.c: locked, non-dumpable pages for secrets (see secmem.h). */
#include <sys/mman.h>

#include <errno.h>
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
