/*
 * kill_probe.c: the many small requests of one check of
 * tests/test_kill_loop.sh in one process (a process per request costs more
 * than the request, ten times more under ASan).
 *
 *   kill_probe CREDFILE sign MSGFILE KEY...
 *	signs MSGFILE with the primary of each KEY and verifies the
 *	signature through the service; prints "KEY SIGTEXT" for a valid one,
 *	else "KEY error: MESSAGE" or "KEY invalid SIGTEXT".
 *   kill_probe CREDFILE verify KEY
 *	verifies each stdin line "SIGTEXT DIGESTHEX" (SHA-256) with KEY;
 *	prints "valid STATE", "invalid" or "error: MESSAGE" for each.
 *
 * Exits 0 if every request succeeded and every signature was valid, 1 if
 * not, 2 on bad arguments.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsmkey.h"

#define MSG_MAX 65536

static int
sign_each(struct hsmkey *h, const char *msgfile, char **keys, int nkeys)
{
	static uint8_t		    msg[MSG_MAX];
	struct hsmkey_verify_result res;
	FILE			   *f;
	size_t			    len;
	char			   *sig = NULL;
	int			    i, bad = 0;

	if ((f = fopen(msgfile, "rb")) == NULL) {
		perror(msgfile);
		return 2;
	}
	len = fread(msg, 1, sizeof(msg), f);
	fclose(f);
	for (i = 0; i < nkeys; i++) {
		if (hsmkey_sign(h, keys[i], msg, len, 0, &sig) != 0 ||
		    hsmkey_verify(h, keys[i], msg, len, sig, &res) != 0) {
			printf(
			    "%s error: %s\n", keys[i], hsmkey_last_error(h));
			bad = 1;
		} else if (!res.valid) {
			printf("%s invalid %s\n", keys[i], sig);
			bad = 1;
		} else {
			printf("%s %s\n", keys[i], sig);
		}
		free(sig);
		sig = NULL;
	}
	return bad;
}

static int
nibble(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}

/* 32 bytes from 64 lower-case hex digits. */
static int
unhex(const char *hex, uint8_t out[32])
{
	size_t i;
	int    hi, lo;

	if (strlen(hex) != 64) {
		return -1;
	}
	for (i = 0; i < 32; i++) {
		if ((hi = nibble(hex[2 * i])) < 0 ||
		    (lo = nibble(hex[2 * i + 1])) < 0) {
			return -1;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int
verify_each(struct hsmkey *h, const char *key)
{
	struct hsmkey_verify_result res;
	char			    line[1024], *sig, *hex, *save = NULL;
	uint8_t			    digest[32];
	int			    bad = 0;

	while (fgets(line, sizeof(line), stdin) != NULL) {
		sig = strtok_r(line, " \n", &save);
		hex = strtok_r(NULL, " \n", &save);
		if (sig == NULL || hex == NULL || unhex(hex, digest) != 0) {
			printf("error: bad input line\n");
			bad = 1;
		} else if (hsmkey_verify_digest(h, key, digest, sizeof(digest),
			       sig, &res) != 0) {
			printf("error: %s\n", hsmkey_last_error(h));
			bad = 1;
		} else if (!res.valid) {
			printf("invalid\n");
			bad = 1;
		} else {
			printf("valid %s\n", res.state);
		}
	}
	return bad;
}

int
main(int argc, char **argv)
{
	struct hsmkey *h = NULL;
	int	       r;

	if (argc < 4 || (strcmp(argv[2], "sign") == 0 && argc < 5) ||
	    (strcmp(argv[2], "sign") != 0 && strcmp(argv[2], "verify") != 0)) {
		fprintf(stderr,
		    "usage: kill_probe CREDFILE sign MSGFILE "
		    "KEY... | verify KEY\n");
		return 2;
	}
	if (hsmkey_open(&h, argv[1], NULL) != 0) {
		fprintf(stderr, "kill_probe: %s\n", hsmkey_last_error(NULL));
		return 1;
	}
	hsmkey_set_timeout(h, 20000);
	if (strcmp(argv[2], "sign") == 0) {
		r = sign_each(h, argv[3], argv + 4, argc - 4);
	} else {
		r = verify_each(h, argv[3]);
	}
	hsmkey_close(h);
	return r;
}
