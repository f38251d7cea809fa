/*
 * cli_confirm.c: the confirmation a command asks for on the terminal
 * before it does something drastic (rotate --emergency).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int
cli_confirm(
    struct cli *c, const char *what, const char *question, const char *answer)
{
	char   line[256];
	size_t n;

	if (!isatty(STDIN_FILENO)) {
		return cli_error(c, HSMKEY_EINVAL, "",
		    "%s: not a terminal; add --yes to confirm", what);
	}
	fflush(stdout);
	fprintf(stderr, "%s ", question);
	fflush(stderr);
	if (fgets(line, sizeof(line), stdin) == NULL) {
		return cli_error(c, HSMKEY_EINVAL, "",
		    "%s: no answer; nothing was changed", what);
	}
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (strcmp(line, answer) != 0) {
		return cli_error(c, HSMKEY_EINVAL, "",
		    "%s: not confirmed (the answer was not '%s'); nothing was "
		    "changed",
		    what, answer);
	}
	return 0;
}
