/*
 * cli_confirm.c: the confirmation a command asks for on the terminal
 * before it does something drastic (rotate --emergency).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The refusal when stdin is not a terminal: nobody to ask. */
static int
not_a_terminal(struct cli *c, const char *what)
{
	return cli_error(c, HSMKEY_EINVAL, "",
	    "%s: not a terminal; add --yes to confirm", what);
}

int
cli_confirm(
    struct cli *c, const char *what, const char *question, const char *answer)
{
	char   line[256];
	size_t n;

	if (!isatty(STDIN_FILENO)) {
		return not_a_terminal(c, what);
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

int
cli_confirm_emergency(
    struct cli *c, struct hsmkey *h, const char *name, uint32_t *expectp)
{
	struct hk_key_result res;
	char		     what[128], list[256], q[512];
	size_t		     i, n = 0, len = 0;
	int		     r;

	snprintf(what, sizeof(what), "rotate %s --emergency", name);
	if (!isatty(STDIN_FILENO)) {
		return not_a_terminal(c, what); /* before any request */
	}
	if ((r = hk_key_describe(h, name, &res)) != 0) {
		hk_key_result_free(&res);
		return cli_fail(c, r);
	}
	list[0] = '\0';
	for (i = 0; i < res.key.n_versions; i++) {
		const struct hk_version_info *v = &res.key.versions[i];

		if (*expectp == 0 && i + 1 == res.key.n_versions) {
			*expectp = v->version;
		}
		if (strcmp(v->state, "disabled") == 0 ||
		    strcmp(v->state, "destroyed") == 0 ||
		    v->destroy_scheduled || len >= sizeof(list) - 16) {
			continue;
		}
		len += (size_t)snprintf(list + len, sizeof(list) - len,
		    "%s%" PRIu32, n++ > 0 ? ", " : "", v->version);
	}
	hk_key_result_free(&res);
	snprintf(q, sizeof(q),
	    "%s disables %s%s for signing and verifying. Type the key name "
	    "to go on:",
	    what,
	    n == 0	 ? "no version"
		: n == 1 ? "version "
			 : "versions ",
	    list);
	return cli_confirm(c, what, q, name);
}
