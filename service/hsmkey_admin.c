/*
 * hsmkey_admin.c: hsmkey-admin, the operator's tool for what happens
 * before hsmkeyd runs.  One command so far: init-token (pkcs11/token_init.c
 * does the work).  PINs come from files only, never from argv or the
 * environment.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hk_err.h"
#include "log.h"
#include "token_init.h"

struct admin_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static int cmd_init_token(int argc, char **argv);

static const struct admin_cmd admin_cmds[] = {
	{ "init-token", cmd_init_token,
	    "init-token --module M [--slot N | --free] --label L\n"
	    "                    --so-pin-file F --pin-file F [--force]" },
	{ NULL, NULL, NULL },
};

/* Exit status of an hk_err (README, hsmkey-admin(8)); 5 otherwise. */
static const struct {
	int err, code;
} exit_codes[] = {
	{ 0, 0 },
	{ HK_ERR_INVALID, 2 },
	{ HK_ERR_CONFIG, 2 },
	{ HK_ERR_PIN, 3 },
	{ HK_ERR_NOT_FOUND, 4 },
};

static int
exit_code(int r)
{
	size_t i;

	for (i = 0; i < sizeof(exit_codes) / sizeof(exit_codes[0]); i++) {
		if (exit_codes[i].err == r) {
			return exit_codes[i].code;
		}
	}
	return 5;
}

static void
usage(FILE *f)
{
	const struct admin_cmd *c;

	for (c = admin_cmds; c->name != NULL; c++) {
		fprintf(f, "%s hsmkey-admin %s\n",
		    c == admin_cmds ? "usage:" : "      ", c->usage);
	}
	fprintf(f,
	    "       hsmkey-admin --version | --help\n"
	    "\n"
	    "PIN files that do not exist are made (random PIN, mode "
	    "0600).\n"
	    "Exit status: 0 done, 2 usage or invalid argument, 3 PIN "
	    "file or PIN refused,\n"
	    "4 no such slot or token, 5 token already initialised or "
	    "any other error.\n");
}

/* 2 after one line on stderr. */
static int
usage_error(const char *what)
{
	fprintf(stderr, "hsmkey-admin: %s (see hsmkey-admin --help)\n", what);
	return 2;
}

/* Parses --slot's value. */
static int
parse_slot(const char *s, unsigned long *slotp)
{
	char *end;

	errno = 0;
	*slotp = strtoul(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *s != '-' ? 0 : -1;
}

/* Prints the URI, then the lines for hsmkeyd.conf. */
static void
print_result(
    const struct token_init_spec *spec, const struct token_init_result *res)
{
	char abs[PATH_MAX];

	if (realpath(spec->pin_file, abs) == NULL) {
		snprintf(abs, sizeof(abs), "%s", spec->pin_file);
	}
	printf("%s\n"
	       "\n"
	       "; for hsmkeyd.conf\n"
	       "[pkcs11]\n"
	       "module = %s\n"
	       "token = %s\n"
	       "pin_file = %s\n",
	    res->uri, spec->module, res->uri, abs);
	log_info(
	    "token \"%s\" (serial %s) initialised", res->label, res->serial);
}

static int
cmd_init_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "slot", required_argument, NULL, 's' },
		{ "free", no_argument, NULL, 'F' },
		{ "label", required_argument, NULL, 'l' },
		{ "so-pin-file", required_argument, NULL, 'S' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	struct token_init_spec	 spec = { .any_slot = 1 };
	struct token_init_result res;
	int			 ch, have_slot = 0, have_free = 0, r;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'm') {
			spec.module = optarg;
		} else if (ch == 's') {
			if (parse_slot(optarg, &spec.slot) != 0) {
				return usage_error("--slot takes a number");
			}
			have_slot = 1;
			spec.any_slot = 0;
		} else if (ch == 'F') {
			have_free = 1;
		} else if (ch == 'l') {
			spec.label = optarg;
		} else if (ch == 'S') {
			spec.so_pin_file = optarg;
		} else if (ch == 'p') {
			spec.pin_file = optarg;
		} else if (ch == 'f') {
			spec.force = 1;
		} else {
			return usage_error("unknown option");
		}
	}
	if (optind != argc) {
		return usage_error("unexpected argument");
	}
	if (spec.module == NULL || spec.label == NULL ||
	    spec.so_pin_file == NULL || spec.pin_file == NULL) {
		return usage_error("init-token needs --module, --label, "
				   "--so-pin-file and --pin-file");
	}
	if (have_slot && have_free) {
		return usage_error("--slot and --free exclude each other");
	}
	if (strcmp(spec.so_pin_file, spec.pin_file) == 0) {
		return usage_error("the SO PIN and the user PIN need a file "
				   "each");
	}
	if ((r = token_init(&spec, &res)) != 0) {
		/* token_init() said why in one line */
		return exit_code(r);
	}
	print_result(&spec, &res);
	token_init_result_free(&res);
	return 0;
}

int
main(int argc, char **argv)
{
	const struct admin_cmd *c;

	hk_log_init("hsmkey-admin", 0, HK_LOG_INFO);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("hsmkey-admin %s\n", HSMKEY_VERSION);
		return 0;
	}
	for (c = admin_cmds; c->name != NULL; c++) {
		if (strcmp(argv[1], c->name) == 0) {
			return c->run(argc - 1, argv + 1);
		}
	}
	return usage_error("no such command");
}
