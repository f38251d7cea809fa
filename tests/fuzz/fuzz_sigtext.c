/*
 * fuzz_sigtext.c: libFuzzer target for the text form of a signature,
 * "hsmkey:v<N>:<base64>" (proto/wire.c hk_sigtext_parse()).  What parses
 * must format back to a text that parses to the same version and bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts unless text parses to version v and the len bytes of sig. */
static void
same(const char *text, uint32_t v, const uint8_t *sig, size_t len)
{
	uint8_t *sig2 = NULL;
	size_t	 len2 = 0;
	uint32_t v2 = 0;

	if (hk_sigtext_parse(text, &v2, &sig2, &len2) != 0 || v2 != v ||
	    len2 != len || memcmp(sig2, sig, len) != 0) {
		abort();
	}
	free(sig2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*text, *again = NULL;
	uint8_t *sig = NULL;
	size_t	 len = 0;
	uint32_t v = 0;

	if ((text = malloc(size + 1)) == NULL) {
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	if (hk_sigtext_parse(text, &v, &sig, &len) != 0) {
		if (sig != NULL || len != 0 || v != 0) {
			abort(); /* a refusal hands nothing out */
		}
		goto out;
	}
	if (v == 0 || len == 0 || sig == NULL) {
		abort();
	}
	if (hk_sigtext_format(v, sig, len, &again) != 0) {
		abort();
	}
	same(again, v, sig, len);
out:
	free(again);
	free(sig);
	free(text);
	return 0;
}
