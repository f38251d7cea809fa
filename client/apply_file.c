/*
 * apply_file.c: reading the file of `hsmkey apply` (apply.h) with libinih.
 *
 * inih calls the handler once per KEY = VALUE line; it does not call it
 * for a section header.  The reader below hands inih its lines and counts
 * them (inih's own count), and notes which lines open a section, so that
 * each value knows its line, an empty section is an error, and two
 * sections of one name are told apart.  A line longer than inih's buffer
 * is an error rather than two lines.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "apply.h"
#include "cli.h"
#include "wire.h"

struct reader {
	FILE  *f;
	int    line;		   /* lines handed to inih */
	int    header;		   /* the last line that opened a section */
	char   text[INI_MAX_LINE]; /* that line, from its '[' */
	int   *headers;		   /* every such line */
	size_t nheaders;
	int    too_long; /* the line that did not fit, or 0 */
};

struct parse {
	struct apply_file *f;
	struct reader	   rd;
	int		   cur_header; /* the header of the current item */
	int		   cur_kind;   /* 'k', 'c' */
	int		   err_line;   /* of the first error, or 0 */
	char		   err[512];
};

static void perr(struct parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Keeps the first error. */
static void
perr(struct parse *p, int line, const char *fmt, ...)
{
	va_list ap;

	if (p->err_line != 0) {
		return;
	}
	p->err_line = line;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
}

static char *
read_line(char *str, int num, void *stream)
{
	struct reader *rd = stream;
	const char    *s;
	size_t	       len;

	if (rd->too_long != 0 || fgets(str, num, rd->f) == NULL) {
		return NULL;
	}
	rd->line++;
	len = strlen(str);
	if (len + 1 == (size_t)num && str[len - 1] != '\n' && !feof(rd->f)) {
		rd->too_long = rd->line;
		return NULL;
	}
	for (s = str; *s == ' ' || *s == '\t'; s++) {
		;
	}
	if (*s == '[') {
		rd->header = rd->line;
		snprintf(rd->text, sizeof(rd->text), "%s", s);
		rd->headers = xreallocarray(
		    rd->headers, rd->nheaders + 1, sizeof(*rd->headers));
		rd->headers[rd->nheaders++] = rd->line;
	}
	return str;
}

/* ---- values -------------------------------------------------------------- */

static int
parse_alg(const char *s, uint64_t *v)
{
	hk_alg a;

	if (hk_alg_parse(s, &a) != 0) {
		return -1;
	}
	*v = (uint64_t)a;
	return 0;
}

static int
parse_duration(const char *s, uint64_t *v)
{
	return hk_parse_duration(s, v) != 0 ? -1 : 0;
}

static int
parse_time(const char *s, uint64_t *v)
{
	return cli_parse_expiry(s, v);
}

static int
parse_bool(const char *s, uint64_t *v)
{
	static const char *const yes[] = { "yes", "true", "1", NULL };
	static const char *const no[] = { "no", "false", "0", NULL };
	int			 i;

	for (i = 0; yes[i] != NULL; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*v = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*v = 0;
			return 0;
		}
	}
	return -1;
}

#define DURATION_HINT "give a duration like 90, 30s, 15m, 12h or 7d"

/* The values of [key NAME], in enum apply_key_field's order. */
static const struct key_field {
	const char *name;
	int (*parse)(const char *, uint64_t *);
	const char *hint;
} key_fields[APPLY_NFIELDS] = {
	{ "alg", parse_alg,
	    "use ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072 or "
	    "rsa-4096" },
	{ "sign_overlap", parse_duration, DURATION_HINT },
	{ "verify_grace", parse_duration, DURATION_HINT },
	{ "rotate_every", parse_duration, DURATION_HINT " (0: off)" },
	{ "expires", parse_time,
	    "give never, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)" },
};

const char *
apply_field_name(enum apply_key_field i)
{
	return key_fields[i].name;
}

const char *
apply_field_text(enum apply_key_field i, uint64_t v, char *buf, size_t len)
{
	if (i == APPLY_ALG) {
		snprintf(buf, len, "%s", hk_alg_name((hk_alg)v));
	} else if (i == APPLY_EXPIRES) {
		if (v == 0) {
			snprintf(buf, len, "never");
		} else {
			cli_fmt_time(v, buf, len);
		}
	} else {
		cli_fmt_duration(v, buf, len);
	}
	return buf;
}

static int
key_value(
    struct parse *p, struct apply_key *k, const char *name, const char *value)
{
	struct apply_value *f;
	int		    i, line = p->rd.line;

	for (i = 0; i < APPLY_NFIELDS; i++) {
		if (strcmp(key_fields[i].name, name) == 0) {
			break;
		}
	}
	if (i == APPLY_NFIELDS) {
		perr(p, line,
		    "unknown key '%s' in [key %s]: use alg, sign_overlap, "
		    "verify_grace, rotate_every or expires",
		    name, k->name);
		return 0;
	}
	f = &k->f[i];
	if (f->set) {
		perr(p, line, "%s given twice in [key %s] (first on line %d)",
		    name, k->name, f->line);
		return 0;
	}
	if (key_fields[i].parse(value, &f->v) != 0) {
		perr(p, line, "invalid %s '%s': %s", name, value,
		    key_fields[i].hint);
		return 0;
	}
	f->set = 1;
	f->line = line;
	return 1;
}

/* ---- clients ------------------------------------------------------------- */

static int
client_grant(struct parse *p, struct apply_client *c, const char *value)
{
	size_t i;
	int    line = p->rd.line;

	if (!cli_valid_grant(value)) {
		perr(p, line,
		    "invalid grant '%s': use OP:GLOB with OP sign, verify, "
		    "pubkey or admin and GLOB of [a-z0-9._-*?[]!]",
		    value);
		return 0;
	}
	for (i = 0; i < c->ngrants; i++) {
		if (strcmp(c->grants[i], value) == 0) {
			perr(p, line, "grant %s given twice in [client %s]",
			    value, c->id);
			return 0;
		}
	}
	if (c->ngrants == APPLY_MAX_GRANTS) {
		perr(p, line, "more than %d grants in [client %s]",
		    APPLY_MAX_GRANTS, c->id);
		return 0;
	}
	if (c->ngrants == 0) {
		c->grants_line = line;
	}
	c->grants[c->ngrants++] = xstrdup(value);
	return 1;
}

/* revoke_secrets = N [N...]: numbers separated by blanks; repeats add. */
static int
client_revoke(struct parse *p, struct apply_client *c, const char *value)
{
	char	*copy = xstrdup(value), *s = copy, *end;
	uint32_t n;
	size_t	 i;
	int	 ok = 1, line = p->rd.line;

	for (;;) {
		s += strspn(s, " \t,");
		if (*s == '\0') {
			break;
		}
		end = s + strcspn(s, " \t,");
		if (*end != '\0') {
			*end++ = '\0';
		}
		for (i = 0; cli_parse_u32(s, 0, &n) == 0 && i < c->nrevoke &&
		     c->revoke[i] != n;
		     i++) {
			;
		}
		if (cli_parse_u32(s, 0, &n) != 0 || i < c->nrevoke ||
		    c->nrevoke == APPLY_MAX_REVOKES) {
			perr(p, line,
			    "invalid revoke_secrets '%s': give distinct "
			    "secret numbers (1 or more), at most %d",
			    value, APPLY_MAX_REVOKES);
			ok = 0;
			break;
		}
		if (c->nrevoke == 0) {
			c->revoke_line = line;
		}
		c->revoke[c->nrevoke++] = n;
		s = end;
	}
	free(copy);
	return ok;
}

static int
client_value(struct parse *p, struct apply_client *c, const char *name,
    const char *value)
{
	int line = p->rd.line;

	if (strcmp(name, "grant") == 0) {
		return client_grant(p, c, value);
	}
	if (strcmp(name, "revoke_secrets") == 0) {
		return client_revoke(p, c, value);
	}
	if (strcmp(name, "grants_exact") == 0) {
		if (c->exact.set || parse_bool(value, &c->exact.v) != 0) {
			perr(p, line,
			    "invalid grants_exact '%s' in [client %s]: give "
			    "yes or no, once",
			    value, c->id);
			return 0;
		}
		c->exact.set = 1;
		c->exact.line = line;
		return 1;
	}
	if (strcmp(name, "credentials") == 0) {
		if (c->credentials != NULL || *value == '\0') {
			perr(p, line,
			    "invalid credentials in [client %s]: give one "
			    "file name, once",
			    c->id);
			return 0;
		}
		c->credentials = xstrdup(value);
		c->credentials_line = line;
		return 1;
	}
	perr(p, line,
	    "unknown key '%s' in [client %s]: use grant, grants_exact, "
	    "credentials or revoke_secrets",
	    name, c->id);
	return 0;
}

/* ---- sections ------------------------------------------------------------ */

/* The kinds of section: "[WORD NAME]". */
static const struct section_kind {
	const char *word;
	int	    kind; /* 'k', 'c' */
	int (*valid)(const char *);
	const char *hint;
} section_kinds[] = {
	{ "key", 'k', hk_valid_key_name, "[a-z0-9][a-z0-9._-]{0,63}" },
	{ "client", 'c', hk_valid_client_id,
	    "[A-Za-z0-9][A-Za-z0-9._@-]{0,63}" },
};

/* The header line of the item of kind called name, or 0. */
static int
item_line(const struct apply_file *f, int kind, const char *name)
{
	size_t i;

	for (i = 0; kind == 'k' && i < f->nkeys; i++) {
		if (strcmp(f->keys[i].name, name) == 0) {
			return f->keys[i].line;
		}
	}
	for (i = 0; kind == 'c' && i < f->nclients; i++) {
		if (strcmp(f->clients[i].id, name) == 0) {
			return f->clients[i].line;
		}
	}
	return 0;
}

static void
add_item(struct apply_file *f, int kind, const char *name, int line)
{
	if (kind == 'k') {
		f->keys =
		    xreallocarray(f->keys, f->nkeys + 1, sizeof(*f->keys));
		memset(&f->keys[f->nkeys], 0, sizeof(f->keys[0]));
		snprintf(f->keys[f->nkeys].name, sizeof(f->keys[0].name), "%s",
		    name);
		f->keys[f->nkeys++].line = line;
		return;
	}
	f->clients =
	    xreallocarray(f->clients, f->nclients + 1, sizeof(*f->clients));
	memset(&f->clients[f->nclients], 0, sizeof(f->clients[0]));
	snprintf(
	    f->clients[f->nclients].id, sizeof(f->clients[0].id), "%s", name);
	f->clients[f->nclients++].line = line;
}

/* A new item for the section header "WORD NAME" read at line. */
static int
new_item(struct parse *p, const char *section, int line)
{
	const struct section_kind *sk = NULL;
	const char		  *name;
	size_t			   i, n;
	int			   first;

	p->cur_header = line;
	p->cur_kind = 0;
	/* inih keeps the first 49 characters of a section name */
	if (strncmp(p->rd.text + 1, section, strlen(section)) != 0 ||
	    p->rd.text[1 + strlen(section)] != ']') {
		perr(p, line,
		    "section name too long: at most %zu characters between "
		    "[ and ]",
		    strlen(section));
		return 0;
	}
	for (i = 0; i < sizeof(section_kinds) / sizeof(section_kinds[0]);
	     i++) {
		n = strlen(section_kinds[i].word);
		if (strncmp(section, section_kinds[i].word, n) == 0 &&
		    (section[n] == ' ' || section[n] == '\t')) {
			sk = &section_kinds[i];
		}
	}
	if (sk == NULL) {
		perr(p, line,
		    "unknown section [%s]: use [key NAME] or [client ID]",
		    section);
		return 0;
	}
	name = section + strlen(sk->word);
	name += strspn(name, " \t");
	if (!sk->valid(name)) {
		perr(p, line, "invalid %s name '%s': use %s", sk->word, name,
		    sk->hint);
		return 0;
	}
	if ((first = item_line(p->f, sk->kind, name)) != 0) {
		perr(p, line, "[%s %s] given twice (first on line %d)",
		    sk->word, name, first);
		return 0;
	}
	add_item(p->f, sk->kind, name, line);
	p->cur_kind = sk->kind;
	return 1;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;

	if (p->err_line != 0) {
		return 1; /* the first error is the one reported */
	}
	if (p->rd.header == 0) {
		perr(p, p->rd.line,
		    "'%s' outside a section: begin with [key NAME] or "
		    "[client ID]",
		    name);
		return 0;
	}
	if (p->rd.header != p->cur_header &&
	    !new_item(p, section, p->rd.header)) {
		return 0;
	}
	if (p->cur_kind == 'k') {
		return key_value(p, &p->f->keys[p->f->nkeys - 1], name, value);
	}
	return client_value(
	    p, &p->f->clients[p->f->nclients - 1], name, value);
}

/* What the whole file must hold once every line is read. */
static void
check_items(struct parse *p)
{
	struct apply_file *f = p->f;
	size_t		   i, j;

	/* a header no value followed: inih never told us of it */
	for (i = 0; i < p->rd.nheaders; i++) {
		for (j = 0;
		     j < f->nkeys && f->keys[j].line != p->rd.headers[i];
		     j++) {
			;
		}
		if (j < f->nkeys) {
			continue;
		}
		for (j = 0;
		     j < f->nclients && f->clients[j].line != p->rd.headers[i];
		     j++) {
			;
		}
		if (j == f->nclients) {
			perr(p, p->rd.headers[i],
			    "empty section: a [key NAME] needs alg, a "
			    "[client ID] a grant or revoke_secrets");
		}
	}
	for (i = 0; i < f->nkeys; i++) {
		if (!f->keys[i].f[APPLY_ALG].set) {
			perr(p, f->keys[i].line,
			    "[key %s] has no alg: every key names its "
			    "algorithm",
			    f->keys[i].name);
		}
	}
	for (i = 0; i < f->nclients; i++) {
		if (f->clients[i].exact.v && f->clients[i].ngrants == 0) {
			perr(p, f->clients[i].exact.line,
			    "grants_exact = yes in [client %s] without any "
			    "grant",
			    f->clients[i].id);
		}
	}
}

int
apply_file_read(
    const char *path, struct apply_file *f, char *err, size_t errlen)
{
	struct parse p;
	int	     r;

	memset(f, 0, sizeof(*f));
	memset(&p, 0, sizeof(p));
	f->path = path;
	p.f = f;
	if ((p.rd.f = fopen(path, "r")) == NULL) {
		snprintf(
		    err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	r = ini_parse_stream(read_line, &p.rd, handler, &p);
	if (r == 0 && ferror(p.rd.f)) {
		r = -1;
	}
	fclose(p.rd.f);
	if (p.rd.too_long != 0 &&
	    (p.err_line == 0 || p.rd.too_long < p.err_line)) {
		p.err_line = 0;
		perr(&p, p.rd.too_long, "line too long (over %d characters)",
		    INI_MAX_LINE - 2);
	}
	if (r > 0 && (p.err_line == 0 || r < p.err_line)) {
		p.err_line = 0;
		perr(&p, r, "not KEY = VALUE, [key NAME] or [client ID]");
	}
	if (r == 0) {
		check_items(&p);
	}
	free(p.rd.headers);
	if (r < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path,
		    r == -2 ? "out of memory" : "read error");
		return -1;
	}
	if (p.err_line != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, p.err_line, p.err);
		return -1;
	}
	return 0;
}

void
apply_file_free(struct apply_file *f)
{
	size_t i, j;

	for (i = 0; i < f->nclients; i++) {
		for (j = 0; j < f->clients[i].ngrants; j++) {
			free(f->clients[i].grants[j]);
		}
		free(f->clients[i].credentials);
	}
	free(f->clients);
	free(f->keys);
	memset(f, 0, sizeof(*f));
}
