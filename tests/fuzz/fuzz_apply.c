/*
 * fuzz_apply.c: libFuzzer target for the file of `hsmkey apply`: each
 * input is a whole file, read by the real apply_file_read()
 * (client/apply_file.c, libinih).  What is read must hold only valid
 * names, grants and keys with an algorithm; what fails must say why in one
 * line naming the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "cli.h"
#include "fuzz_file.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 1 if what f holds is what apply_file_read() promises. */
static int
file_ok(const struct apply_file *f)
{
	size_t i, j;

	for (i = 0; i < f->nkeys; i++) {
		if (!hk_valid_key_name(f->keys[i].name) ||
		    !f->keys[i].f[APPLY_ALG].set || f->keys[i].line < 1) {
			return 0;
		}
	}
	for (i = 0; i < f->nclients; i++) {
		const struct apply_client *c = &f->clients[i];

		if (!hk_valid_client_id(c->id) ||
		    c->ngrants > APPLY_MAX_GRANTS ||
		    c->nrevoke > APPLY_MAX_REVOKES ||
		    (c->exact.v && c->ngrants == 0)) {
			return 0;
		}
		for (j = 0; j < c->ngrants; j++) {
			if (!cli_valid_grant(c->grants[j])) {
				return 0;
			}
		}
		for (j = 0; j < c->nrevoke; j++) {
			if (c->revoke[j] == 0) {
				return 0;
			}
		}
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct apply_file f;
	const char	 *path = fuzz_file(data, size);
	char		  err[1024];
	int		  r;

	err[0] = '\0';
	r = apply_file_read(path, &f, err, sizeof(err));
	if (r != 0) {
		/* one line, "PATH:LINE: ..." */
		if (err[0] == '\0' || strchr(err, '\n') != NULL ||
		    strncmp(err, path, strlen(path)) != 0 ||
		    err[strlen(path)] != ':') {
			abort();
		}
	} else if (!file_ok(&f)) {
		abort();
	}
	apply_file_free(&f);
	return 0;
}
