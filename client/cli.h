/*
 * cli.h: the hsmkey command line.  cli.c parses global flags, finds the
 * command and its flags; cli_key.c holds the key commands, cli_admin.c the
 * client/stats/health commands, cli_apply.c apply (its file: apply.h),
 * cli_util.c parsing, formatting, I/O and
 * the x* allocation wrappers (which exit on failure: the CLI only).
 * Single-threaded.
 */
#ifndef HK_CLI_H
#define HK_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hk_client.h"
#include "hsmkey.h"
#include "json.h"

/* Exit codes (DESIGN.md). */
#define EXIT_INVALID 1 /* verify: invalid signature */
#define EXIT_USAGE   2

#define CLI_MAX_OPTS 16
#define CLI_MAX_POS  64 /* audit verify takes many files */

struct cli_opt {
	const char *name; /* without the leading "--" */
	int	    has_arg;
	int	    multi; /* may repeat (values collected) */
};

struct cli_args {
	const char	     *pos[CLI_MAX_POS];
	int		      npos;
	const char	     *val[CLI_MAX_OPTS]; /* last value, or "" */
	const char	    **multi; /* values of the multi option */
	size_t		      nmulti;
	const struct cli_opt *opts;
};

struct cli;

struct cli_cmd {
	const char *name; /* "sign", "client add" */
	int (*fn)(struct cli *, struct cli_args *);
	const char	     *usage; /* after the name */
	const char	     *help;  /* a few lines */
	const struct cli_opt *opts;  /* NULL-terminated */
	int		      min_pos, max_pos;
};

struct cli {
	const char	     *connect;
	const char	     *credentials;
	int		      json;
	int		      timeout_ms; /* 0: the library default */
	int		      connect_ms; /* 0: the library default */
	const char	     *reason;	  /* --reason, or NULL */
	struct hsmkey	     *h;	  /* opened by cli_handle() */
	const struct cli_cmd *cmd;
	const char	     *key; /* the key the command names (for hints) */
	struct json	      j;
};

/* cli.c */
/* The options of a command that takes none. */
extern const struct cli_opt cli_no_opts[];
int			    cli_run(int argc, char **argv);
/* The option's value, "" for a flag that is set, or NULL. */
const char *cli_opt(const struct cli_args *a, const char *name);
/* Opens the handle on first use; returns 0 or an exit code (error
 * printed). */
int cli_handle(struct cli *c, struct hsmkey **hp);
/* Prints a usage error with a hint; returns EXIT_USAGE. */
int cli_usage(struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints an error of code err (message fmt) with a hint to do; returns
 * hsmkey_exit_code(err). */
int cli_error(struct cli *c, int err, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prints hsmkey_last_error() of the handle with a hint fit for err;
 * returns the exit code. */
int cli_fail(struct cli *c, int err);

/* cli_key.c */
extern const struct cli_cmd cli_key_cmds[];
/* Prints a key as text or JSON (changed: the version the operation made
 * or changed, 0 for none). */
void
cli_print_key(struct cli *c, const struct hk_key_info *k, uint32_t changed);

/* cli_confirm.c */
/*
 * Asks question on the terminal (stderr) and reads the answer from stdin:
 * 0 when it is answer; else an exit code (2), the error printed with
 * what ("rotate k --emergency"): stdin not a terminal, or another answer.
 */
int cli_confirm(
    struct cli *c, const char *what, const char *question, const char *answer);
/*
 * Asks before an emergency rotation of name, naming the versions it
 * disables (describe); *expectp, when 0, becomes the newest version seen,
 * so that the rotation is the one confirmed.  0, or an exit code.
 */
int cli_confirm_emergency(
    struct cli *c, struct hsmkey *h, const char *name, uint32_t *expectp);
/* cli_keyset.c */
extern const struct cli_cmd cli_keyset_cmds[];
/* sign --jws: a usage error with --digest, --raw or --version. */
int cli_jws_check(struct cli *c, const struct cli_args *a);
/* sign --jws: prints the compact JWS over data. */
int cli_sign_jws(struct cli *c, struct hsmkey *h, const char *key,
    const uint8_t *data, size_t len, int flags);
/* pubkey --all: every version of the key set as PEM (--json: an array). */
int cli_pubkey_all(struct cli *c, const struct cli_args *a);
/* Writes len bytes to path (NULL or "-": stdout); 0 or an exit code
 * (error printed). */
int cli_write_out(struct cli *c, const char *path, const void *p, size_t len);

/* cli_admin.c */
extern const struct cli_cmd cli_admin_cmds[];
/*
 * The credentials file (INI) of the new secret cs: *inip (NUL-terminated,
 * *lenp bytes) and, when b64p is not NULL, the secret in base64.  0, or an
 * exit code (error printed).  Caller must cli_free_secret() both.
 */
int cli_credentials_ini(struct cli *c, const struct hk_client_secret *cs,
    char **inip, size_t *lenp, char **b64p);
/* Zeroes and frees a string that holds a secret; accepts NULL. */
void cli_free_secret(char *s);

/* cli_apply.c */
extern const struct cli_cmd cli_apply_cmds[];

/* cli_audit.c */
extern const struct cli_cmd cli_audit_cmds[];

/* cli_util.c */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);

/* Decimal 1..UINT32_MAX (0 allowed when zero_ok).  -1 on anything else. */
int cli_parse_u32(const char *s, int zero_ok, uint32_t *vp);
/* Hex (even length) into a new buffer; -1 when not hex. Caller frees. */
int cli_parse_hex(const char *s, uint8_t **outp, size_t *lenp);
/* "never" (0), "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SSZ" (UTC) to ms since
 * the epoch.  -1 on anything else. */
int cli_parse_expiry(const char *s, uint64_t *msp);
/* Seconds "30", "0.5", "2s", "1m" to ms (1 ms .. 1 day). -1 otherwise. */
int cli_parse_timeout(const char *s, int *msp);
/* 1 if g is OP:GLOB with OP sign|verify|pubkey|admin and a sane glob. */
int cli_valid_grant(const char *g);

/* ISO 8601 UTC "2024-05-01T12:00:00Z"; "-" for 0. */
const char *cli_fmt_time(uint64_t ms, char *buf, size_t len);
/* "30d", "12h", "90m", "45s", "0s". */
const char *cli_fmt_duration(uint64_t s, char *buf, size_t len);
/* JSON: the ISO time, or null for 0. */
void cli_json_time(struct json *j, const char *key, uint64_t ms);
/*
 * Prints n items of size bytes from items with item(): in JSON as the
 * object {"key": [...]}, as text separated by blank lines (the line none
 * when there is none).
 */
void cli_print_list(struct cli *c, const char *key, const char *none,
    const void *items, size_t n, size_t size,
    void (*item)(struct cli *c, const void *item));

/*
 * Reads a whole file (path, or stdin for NULL or "-") of at most max
 * bytes.  Returns 0, or -1 with a message in err (too large: -2).
 * Caller must free *bufp.
 */
int cli_read_input(const char *path, size_t max, uint8_t **bufp, size_t *lenp,
    char *err, size_t errlen);
/* Writes len bytes to f; -1 on a write error. */
int cli_write_all(FILE *f, const void *p, size_t len);

#endif /* HK_CLI_H */
