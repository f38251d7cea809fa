/*
 * cli.c: the hsmkey command line: global flags, the command table, flag
 * parsing, help, and the one-line error reports (DESIGN.md "The command
 * line").
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "hk_client.h"

static const struct cli_opt global_opts[] = {
	{ "connect", 1, 0 },
	{ "credentials", 1, 0 },
	{ "json", 0, 0 },
	{ "timeout", 1, 0 },
	{ "connect-timeout", 1, 0 },
	{ "reason", 1, 0 },
	{ NULL, 0, 0 },
};

/* The commands that change something: the ones --reason is for. */
static const char *const reason_cmds[] = {
	"create",
	"rotate",
	"promote",
	"policy",
	"disable",
	"destroy",
	"client add",
	"client rotate",
	"client revoke",
	"client grant",
	"apply",
};

static const char global_usage[] =
    "usage: hsmkey [--connect URL] [--credentials FILE] [--json] "
    "[--timeout SECONDS]\n"
    "              [--connect-timeout SECONDS] [--reason TEXT] COMMAND "
    "[ARGS...]\n";

static int cmd_help(struct cli *, struct cli_args *);

const struct cli_opt cli_no_opts[] = {
	{ NULL, 0, 0 },
};

static const struct cli_cmd help_cmds[] = {
	{ "help", cmd_help, "[COMMAND]",
	    "Prints this summary, or the help of one command.", cli_no_opts, 0,
	    2 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0 },
};

static const struct cli_cmd *const cmd_tables[] = {
	cli_key_cmds,
	cli_keyset_cmds,
	cli_admin_cmds,
	cli_audit_cmds,
	cli_apply_cmds,
	help_cmds,
	NULL,
};

/* Finds the command named by argv[0] (and argv[1] for "client ..."):
 * *usedp gets the number of words. */
static const struct cli_cmd *
find_cmd(int argc, char **argv, int *usedp)
{
	const struct cli_cmd *t;
	size_t		      n;
	int		      i;

	*usedp = 0;
	if (argc < 1) {
		return NULL;
	}
	for (i = 0; cmd_tables[i] != NULL; i++) {
		for (t = cmd_tables[i]; t->name != NULL; t++) {
			n = strlen(argv[0]);
			if (strcmp(t->name, argv[0]) == 0) {
				*usedp = 1;
				return t;
			}
			if (argc >= 2 && strncmp(t->name, argv[0], n) == 0 &&
			    t->name[n] == ' ' &&
			    strcmp(t->name + n + 1, argv[1]) == 0) {
				*usedp = 2;
				return t;
			}
		}
	}
	return NULL;
}

/* 1 if word starts a command group ("client"). */
static int
is_group(const char *word)
{
	const struct cli_cmd *t;
	size_t		      n = strlen(word);
	int		      i;

	for (i = 0; cmd_tables[i] != NULL; i++) {
		for (t = cmd_tables[i]; t->name != NULL; t++) {
			if (strncmp(t->name, word, n) == 0 &&
			    t->name[n] == ' ') {
				return 1;
			}
		}
	}
	return 0;
}

/* Writes text word-wrapped to 79 columns: the first line indented by
 * indent, the others by cont. */
static void
print_wrapped(FILE *f, int indent, int cont, const char *text)
{
	const char *p = text, *end;
	int	    col = 0, len;

	while (*p != '\0') {
		while (*p == ' ') {
			p++;
		}
		if (*p == '\0') {
			break;
		}
		end = strchr(p, ' ');
		len = end != NULL ? (int)(end - p) : (int)strlen(p);
		if (col > 0 && col + 1 + len > 79) {
			fputc('\n', f);
			col = 0;
		}
		if (col == 0) {
			col = fprintf(f, "%*s%.*s", indent, "", len, p);
			indent = cont;
		} else {
			col += fprintf(f, " %.*s", len, p);
		}
		p += len;
	}
	if (col > 0) {
		fputc('\n', f);
	}
}

static void
print_help_all(FILE *f)
{
	const struct cli_cmd *t;
	char		      line[256];
	int		      i;

	fputs(global_usage, f);
	fputs("\nhsmkey talks to hsmkeyd, which keeps signing keys in a "
	      "PKCS#11 token.\n\nCommands:\n",
	    f);
	for (i = 0; cmd_tables[i] != NULL; i++) {
		for (t = cmd_tables[i]; t->name != NULL; t++) {
			snprintf(
			    line, sizeof(line), "%s %s", t->name, t->usage);
			print_wrapped(f, 2, 4, line);
			print_wrapped(f, 6, 6, t->help);
		}
	}
	fputs("\nGlobal options (before or after the command):\n"
	      "  --connect URL        the service, ipc://PATH or "
	      "tcp://HOST:PORT\n"
	      "                       (default: $HSMKEY_CONNECT, then the "
	      "credentials file)\n"
	      "  --credentials FILE   INI file with [client] id, secret, "
	      "connect\n"
	      "                       (and secret_no, optional)\n"
	      "                       (default: $HSMKEY_CREDENTIALS)\n"
	      "  --json               print one JSON object per command on "
	      "stdout\n"
	      "  --timeout SECONDS    how long to wait for a reply "
	      "(default 30)\n"
	      "  --connect-timeout SECONDS\n"
	      "                       how long the connection may be down "
	      "in a call (default 3)\n"
	      "  --reason TEXT        why (a ticket, an incident id): "
	      "written into the audit\n"
	      "                       line of the change; only for commands "
	      "that change\n"
	      "                       something\n"
	      "\nExit status: 0 success, 1 invalid signature, 2 usage or "
	      "invalid argument,\n"
	      "3 unauthenticated, denied or replay, 4 not found, 5 any other "
	      "error.\n"
	      "Secrets are never taken from the command line.\n",
	    f);
}

static void
print_help_cmd(FILE *f, const struct cli_cmd *t)
{
	fprintf(f, "usage: hsmkey %s%s%s\n\n", t->name,
	    *t->usage != '\0' ? " " : "", t->usage);
	print_wrapped(f, 0, 0, t->help);
}

static int
cmd_help(struct cli *c, struct cli_args *a)
{
	const struct cli_cmd *t;
	int		      used;

	if (a->npos == 0) {
		print_help_all(stdout);
		return 0;
	}
	if ((t = find_cmd(a->npos, (char **)a->pos, &used)) == NULL ||
	    used != a->npos) {
		return cli_usage(c, "no command '%s%s%s'", a->pos[0],
		    a->npos > 1 ? " " : "", a->npos > 1 ? a->pos[1] : "");
	}
	print_help_cmd(stdout, t);
	return 0;
}

const char *
cli_opt(const struct cli_args *a, const char *name)
{
	int i;

	for (i = 0; a->opts[i].name != NULL; i++) {
		if (strcmp(a->opts[i].name, name) == 0) {
			return a->val[i];
		}
	}
	return NULL;
}

static void vreport(struct cli *, int, const char *, const char *, va_list)
    __attribute__((format(printf, 4, 0)));

/* One line on stderr; with --json also {"error":..,"message":..} on
 * stdout. */
static void
vreport(struct cli *c, int err, const char *hint, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* no second hint when the message (from the service) has one */
	if (hint != NULL && *hint != '\0' && strstr(msg, hint) == NULL &&
	    strstr(msg, "'hsmkey ") == NULL) {
		size_t n = strlen(msg);

		snprintf(msg + n, sizeof(msg) - n, "%s", hint);
	}
	fflush(stdout);
	fprintf(stderr, "hsmkey: %s\n", msg);
	if (c != NULL && c->json) {
		struct json j;

		json_init(&j, stdout);
		json_object_begin(&j);
		json_kv_string(&j, "error", hsmkey_error_name(err));
		json_kv_string(&j, "message", msg);
		json_object_end(&j);
		fflush(stdout);
	}
}

int
cli_usage(struct cli *c, const char *fmt, ...)
{
	char	hint[128];
	va_list ap;

	if (c != NULL && c->cmd != NULL && strcmp(c->cmd->name, "help") != 0) {
		snprintf(hint, sizeof(hint), " (see 'hsmkey help %s')",
		    c->cmd->name);
	} else {
		snprintf(hint, sizeof(hint), " (see 'hsmkey help')");
	}
	va_start(ap, fmt);
	vreport(c, HSMKEY_EINVAL, hint, fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

int
cli_error(struct cli *c, int err, const char *hint, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(c, err, hint, fmt, ap);
	va_end(ap);
	return hsmkey_exit_code(err);
}

static const char *
hint_for(const struct cli *c, int err, char *buf, size_t len)
{
	int client_cmd =
	    c->cmd != NULL && strncmp(c->cmd->name, "client ", 7) == 0;

	switch (err) {
	case HSMKEY_ENOTFOUND:
		return client_cmd ? " (see 'hsmkey client list')"
				  : " (see 'hsmkey list')";
	case HSMKEY_EUNAUTH:
		return ": check the credentials file (id, secret, secret_no) "
		       "and the clock";
	case HSMKEY_EDENIED:
		return ": ask an admin for a grant";
	case HSMKEY_EREPLAY:
		return ": retry the command";
	case HSMKEY_EPRECONDITION:
		if (c->key != NULL) {
			snprintf(
			    buf, len, " (see 'hsmkey describe %s')", c->key);
			return buf;
		}
		return " (see 'hsmkey describe')";
	case HSMKEY_EUNAVAIL:
	case HSMKEY_EEXHAUSTED:
		return " (see 'hsmkey health')";
	case HSMKEY_EINTERNAL:
		return " (see the hsmkeyd log)";
	case HSMKEY_ECONNECT:
		return " (check --connect or $HSMKEY_CONNECT)";
	default:
		return "";
	}
}

int
cli_fail(struct cli *c, int err)
{
	char buf[128];

	return cli_error(c, err, hint_for(c, err, buf, sizeof(buf)), "%s",
	    hsmkey_last_error(c->h));
}

int
cli_handle(struct cli *c, struct hsmkey **hp)
{
	const char *path;
	struct stat sb;
	int	    r;

	*hp = NULL;
	if (c->h != NULL) {
		*hp = c->h;
		return 0;
	}
	if ((path = c->credentials) == NULL) {
		path = getenv("HSMKEY_CREDENTIALS");
	}
	if (path != NULL && stat(path, &sb) == 0 &&
	    (sb.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		fprintf(stderr,
		    "hsmkey: warning: credentials file %s is "
		    "open to group or others: chmod 600 %s\n",
		    path, path);
	}
	if ((r = hsmkey_open(&c->h, path, c->connect)) != 0) {
		c->h = NULL;
		return cli_fail(c, r);
	}
	if ((c->timeout_ms > 0 &&
		(r = hsmkey_set_timeout(c->h, c->timeout_ms)) != 0) ||
	    (c->connect_ms > 0 &&
		(r = hsmkey_set_connect_timeout(c->h, c->connect_ms)) != 0)) {
		return cli_fail(c, r);
	}
	if (c->reason != NULL &&
	    (r = hsmkey_set_reason(c->h, c->reason)) != 0) {
		return cli_fail(c, r);
	}
	*hp = c->h;
	return 0;
}

/* A --reason on a command that changes nothing is a usage error. */
static int
check_reason(struct cli *c, const struct cli_cmd *cmd)
{
	size_t i;

	if (c->reason == NULL) {
		return 0;
	}
	for (i = 0; i < sizeof(reason_cmds) / sizeof(reason_cmds[0]); i++) {
		if (strcmp(cmd->name, reason_cmds[i]) == 0) {
			return 0;
		}
	}
	return cli_usage(c,
	    "--reason is for commands that change something (create, rotate, "
	    "promote, policy, disable, destroy, client "
	    "add/rotate/revoke/grant, "
	    "apply), not '%s'",
	    cmd->name);
}

static int
set_global(struct cli *c, const char *name, const char *val)
{
	if (strcmp(name, "connect") == 0) {
		c->connect = val;
	} else if (strcmp(name, "credentials") == 0) {
		c->credentials = val;
	} else if (strcmp(name, "json") == 0) {
		c->json = 1;
	} else if (strcmp(name, "reason") == 0) {
		c->reason = val;
	} else if (strcmp(name, "timeout") == 0 ||
	    strcmp(name, "connect-timeout") == 0) {
		if (cli_parse_timeout(val,
			name[0] == 't' ? &c->timeout_ms : &c->connect_ms) !=
		    0) {
			return cli_usage(c,
			    "invalid --%s '%s': give "
			    "seconds, e.g. 30 or 0.5",
			    name, val);
		}
	}
	return 0;
}

static const struct cli_opt *
find_opt(const struct cli_opt *opts, const char *name, size_t len, int *ip)
{
	int i;

	for (i = 0; opts[i].name != NULL; i++) {
		if (strlen(opts[i].name) == len &&
		    strncmp(opts[i].name, name, len) == 0) {
			*ip = i;
			return &opts[i];
		}
	}
	return NULL;
}

/*
 * Parses one option at argv[*ip] against opts (global options too).
 * Returns 0, EXIT_USAGE (reported), or -1 for --help.
 */
static int
parse_opt(struct cli *c, const struct cli_opt *opts, struct cli_args *a,
    int argc, char **argv, int *ip)
{
	const struct cli_opt *o;
	const char *arg = argv[*ip], *name = arg + 2, *eq, *val = NULL;
	size_t	    len;
	int	    idx, global = 0;

	if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
		return -1;
	}
	if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
		return cli_usage(c, "unknown option '%s'", arg);
	}
	len = (eq = strchr(name, '=')) != NULL ? (size_t)(eq - name)
					       : strlen(name);
	if (opts != NULL && (o = find_opt(opts, name, len, &idx)) != NULL) {
		global = 0;
	} else if ((o = find_opt(global_opts, name, len, &idx)) != NULL) {
		global = 1;
	} else {
		return cli_usage(c, "unknown option '--%.*s'%s%s", (int)len,
		    name, c->cmd != NULL ? " for " : "",
		    c->cmd != NULL ? c->cmd->name : "");
	}
	if (o->has_arg) {
		if (eq != NULL) {
			val = eq + 1;
		} else if (*ip + 1 < argc) {
			val = argv[++*ip];
		} else {
			return cli_usage(
			    c, "option --%s needs a value", o->name);
		}
	} else if (eq != NULL) {
		return cli_usage(c, "option --%s takes no value", o->name);
	} else {
		val = "";
	}
	if (global) {
		return set_global(c, o->name, val);
	}
	if (o->multi) {
		a->multi =
		    xreallocarray(a->multi, a->nmulti + 1, sizeof(*a->multi));
		a->multi[a->nmulti++] = val;
	}
	a->val[idx] = val;
	return 0;
}

/* The global options; *ip gets the first word after them.  Returns -1 to
 * go on, else the exit code. */
static int
parse_globals(
    struct cli *c, struct cli_args *a, int argc, char **argv, int *ip)
{
	int i, r;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("hsmkey %s\n", HSMKEY_VERSION);
			return 0;
		}
		if ((r = parse_opt(c, NULL, a, argc, argv, &i)) != 0) {
			if (r < 0) {
				print_help_all(stdout);
				return 0;
			}
			return r;
		}
	}
	*ip = i;
	return -1;
}

/* The command named at argv[i]: *cmdp and *usedp (its words), or NULL
 * and a usage error's exit code. */
static int
lookup_cmd(struct cli *c, int argc, char **argv, int i,
    const struct cli_cmd **cmdp, int *usedp)
{
	if (i >= argc) {
		fputs(global_usage, stderr);
		return cli_usage(c, "no command given");
	}
	if ((*cmdp = find_cmd(argc - i, argv + i, usedp)) != NULL) {
		return 0;
	}
	if (!is_group(argv[i])) {
		return cli_usage(c, "no command '%s'", argv[i]);
	}
	if (i + 1 >= argc || argv[i + 1][0] == '-') {
		return cli_usage(c, "'%s' needs a subcommand", argv[i]);
	}
	return cli_usage(c, "no command '%s %s'", argv[i], argv[i + 1]);
}

/* The command's options and arguments from argv[i]: 0, an exit code, or
 * -1 when --help was given (its help printed). */
static int
parse_cmd_args(struct cli *c, const struct cli_cmd *cmd, struct cli_args *a,
    int argc, char **argv, int i)
{
	int r, only_pos = 0;

	for (; i < argc; i++) {
		if (!only_pos && strcmp(argv[i], "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (!only_pos && argv[i][0] == '-' && argv[i][1] != '\0') {
			if ((r = parse_opt(c, cmd->opts, a, argc, argv, &i)) !=
			    0) {
				if (r < 0) {
					print_help_cmd(stdout, cmd);
				}
				return r;
			}
			continue;
		}
		if (a->npos >= cmd->max_pos || a->npos >= CLI_MAX_POS) {
			return cli_usage(
			    c, "unexpected argument '%s'", argv[i]);
		}
		a->pos[a->npos++] = argv[i];
	}
	if (a->npos < cmd->min_pos) {
		return cli_usage(c, "missing argument: hsmkey %s %s",
		    cmd->name, cmd->usage);
	}
	return 0;
}

int
cli_run(int argc, char **argv)
{
	struct cli	      c;
	struct cli_args	      a;
	const struct cli_cmd *cmd;
	int		      i, r, used;

	memset(&c, 0, sizeof(c));
	memset(&a, 0, sizeof(a));
	json_init(&c.j, stdout);

	/* global options, then the command */
	if ((r = parse_globals(&c, &a, argc, argv, &i)) >= 0 ||
	    (r = lookup_cmd(&c, argc, argv, i, &cmd, &used)) != 0) {
		return r;
	}
	c.cmd = cmd;
	a.opts = cmd->opts;
	if ((r = parse_cmd_args(&c, cmd, &a, argc, argv, i + used)) != 0) {
		r = r < 0 ? 0 : r;
		goto out;
	}
	if ((r = check_reason(&c, cmd)) != 0) {
		goto out;
	}
	r = cmd->fn(&c, &a);
	if (fflush(stdout) != 0 && r == 0) {
		r = cli_error(
		    &c, HSMKEY_EINTERNAL, "", "cannot write to stdout");
	}
out:
	free(a.multi);
	hsmkey_close(c.h);
	return r;
}
