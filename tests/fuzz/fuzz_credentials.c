/*
 * fuzz_credentials.c: libFuzzer target for the client credentials file
 * parser: each input is a whole file, read by the real
 * hk_credentials_load() (client/credentials.c, libinih).  What loads must
 * be a usable credential; what fails must say why in one line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"
#include "fuzz_file.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hk_credentials c;
	char		      err[512];
	int		      r;

	err[0] = '\0';
	r = hk_credentials_load(fuzz_file(data, size), &c, err, sizeof(err));
	if (r != 0) {
		if (err[0] == '\0' || strchr(err, '\n') != NULL) {
			abort(); /* a failure says why, in one line */
		}
	} else if (!hk_valid_client_id(c.id) || c.secret == NULL ||
	    c.secret_len < HK_SECRET_MIN || c.secret_len > HK_SECRET_MAX) {
		abort();
	}
	hk_credentials_clear(&c);
	return 0;
}
