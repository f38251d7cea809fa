/* secmem_test.c: the locked-secret-memory allocator (secmem.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hk_err.h"
#include "secmem.h"
#include "testproc.h"
#include "testutil.h"

static int
all_zero(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] != 0) {
			return 0;
		}
	}
	return 1;
}

/* Zeroed, usable, page-aligned; as many bytes as asked, and the rest of
 * the page. */
static void
test_zeroed_usable(void)
{
	size_t	 page = (size_t)sysconf(_SC_PAGESIZE);
	uint8_t *p;

	TRUE((p = hk_secmem_alloc(33)) != NULL);
	TRUE((uintptr_t)p % page == 0);
	TRUE(all_zero(p, page));
	memset(p, 0xa5, page);
	EQ_INT(p[0], 0xa5);
	EQ_INT(p[page - 1], 0xa5);
	hk_secmem_free(p, 33);
}

/* ASan's mlock() interceptor locks nothing (and says it worked). */
#ifdef __SANITIZE_ADDRESS__
#define MLOCK_WORKS 0
#else
#define MLOCK_WORKS 1
#endif

/* Locked when the process may lock: VmLck grows while it is held. */
static void
test_locked(void)
{
	long	 before = hk_test_status_kib("VmLck:"), during;
	uint8_t *p;
	int	 locked = -1;

	TRUE((p = hk_secmem_alloc_locked(64 * 1024, &locked)) != NULL);
	TRUE(locked == 0 || locked == 1);
	during = hk_test_status_kib("VmLck:");
	if (MLOCK_WORKS && locked && before >= 0) {
		TRUE(during - before >= 64);
	}
	hk_secmem_free(p, 64 * 1024);
	if (MLOCK_WORKS && locked && before >= 0) {
		EQ_INT(hk_test_status_kib("VmLck:"), before);
	}
	if (!locked) {
		fprintf(stderr, "(mlock refused here: memory not locked)\n");
	}
}

/* NULL and nothing are no-ops or refused, never a crash. */
static void
test_null_and_zero(void)
{
	void *p;
	int   locked = 1;

	hk_secmem_free(NULL, 0);
	hk_secmem_free(NULL, 4096);
	TRUE(hk_secmem_alloc(0) == NULL);
	TRUE(hk_secmem_alloc_locked(0, &locked) == NULL);
	EQ_INT(locked, 0);
	TRUE((p = hk_secmem_alloc_locked(16, NULL)) != NULL);
	hk_secmem_free(p, 16);
}

/* Large sizes: several pages work; a size that cannot be rounded up to a
 * page is refused. */
static void
test_large(void)
{
	size_t	 len = 8 * 1024 * 1024 + 1;
	uint8_t *p;

	TRUE((p = hk_secmem_alloc(len)) != NULL);
	TRUE(all_zero(p, len));
	p[0] = 1;
	p[len - 1] = 2;
	EQ_INT(p[len - 1], 2);
	hk_secmem_free(p, len);
	TRUE(hk_secmem_alloc(SIZE_MAX) == NULL);
	TRUE(hk_secmem_alloc(SIZE_MAX - 1) == NULL);
}

/* Slots: distinct, zeroed, in locked pages core dumps leave out, zeroed
 * again when freed, and reused. */
static void
test_slots(void)
{
	uint8_t *s[200], *again;
	size_t	 i, j;

	for (i = 0; i < 200; i++) {
		TRUE((s[i] = hk_secmem_slot_alloc()) != NULL);
		TRUE(all_zero(s[i], HK_SECMEM_SLOT));
		memset(s[i], (int)i + 1, HK_SECMEM_SLOT);
	}
	for (i = 0; i < 200; i++) {
		EQ_INT(s[i][0], (uint8_t)(i + 1));
		EQ_INT(s[i][HK_SECMEM_SLOT - 1], (uint8_t)(i + 1));
		EQ_INT(hk_test_dontdump(s[i]), 1);
		for (j = 0; j < i; j++) {
			TRUE(s[i] != s[j]);
		}
	}
	hk_secmem_slot_free(s[7]);
	/* the page stays mapped: all zero but for the free list's link */
	TRUE(all_zero(s[7] + sizeof(void *), HK_SECMEM_SLOT - sizeof(void *)));
	TRUE((again = hk_secmem_slot_alloc()) == s[7]);
	TRUE(all_zero(again, HK_SECMEM_SLOT));
	for (i = 0; i < 200; i++) {
		hk_secmem_slot_free(s[i]);
	}
	hk_secmem_slot_free(NULL);
}

TEST_LIST = {
	{ "zeroed_usable", test_zeroed_usable },
	{ "locked", test_locked },
	{ "null_and_zero", test_null_and_zero },
	{ "large", test_large },
	{ "slots", test_slots },
	{ NULL, NULL },
};

TEST_MAIN
