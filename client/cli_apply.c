/*
 * cli_apply.c: hsmkey apply FILE [--dry-run]: provisioning as code.
 *
 * The file (apply.h) is read whole and checked first: a bad one is exit 2
 * before any request.  Then the service's keys and clients are listed and
 * every section of the file becomes one plan item: create, change (each
 * change "FIELD OLD -> NEW"), unchanged, or error (what cannot be done,
 * e.g. another algorithm for an existing key).  A plan with an error is
 * printed and nothing is done (exit 2).  Otherwise --dry-run stops there
 * and apply does the items in the file's order, keys before clients,
 * printing each as it is done; a failure stops it with a one-line error
 * naming the item, and a rerun continues where it stopped (every item is
 * planned from the service's state again).
 *
 * Nothing the file does not name is touched; nothing is taken away unless
 * the file says so: grants only with grants_exact = yes, secrets only by
 * revoke_secrets.  A new client's secret goes to its credentials file
 * only (made with O_EXCL|O_NOFOLLOW, mode 0600), never to stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "cli.h"

enum plan_act {
	ACT_UNCHANGED,
	ACT_CREATE,
	ACT_CHANGE,
	ACT_ERROR,
};

/* The words of a plan line, before (dry run) and after it is done. */
static const struct {
	const char *plan;
	const char *done;
} act_words[] = {
	[ACT_UNCHANGED] = { "unchanged", "unchanged" },
	[ACT_CREATE] = { "create", "created" },
	[ACT_CHANGE] = { "change", "changed" },
	[ACT_ERROR] = { "error", "error" },
};

#define PLAN_MAX_CHANGES (APPLY_NFIELDS + APPLY_MAX_REVOKES + 2)

struct plan_change {
	const char *field;
	char	   *from; /* NULL: a new item's value */
	char	   *to;
};

struct plan_item {
	const char		    *kind; /* "key", "client" */
	const char		    *name;
	int			     line;
	enum plan_act		     act;
	int			     done;
	char			    *error;
	struct plan_change	     ch[PLAN_MAX_CHANGES];
	size_t			     nch;
	const struct apply_key	    *key;
	const struct apply_client   *client;
	const struct hk_client_info *have; /* NULL: a new client */
	/* a key's policy change */
	struct hk_policy_change pc;
	uint64_t		pcv[APPLY_NFIELDS];
	/* a client's grants to set (set_grants), secrets to revoke */
	const char *grants[APPLY_MAX_GRANTS * 2];
	size_t	    ngrants;
	int	    set_grants;
	uint32_t    revoke[APPLY_MAX_REVOKES];
	size_t	    nrevoke;
};

struct plan {
	struct apply_file     f;
	struct hk_key_list    keys;
	struct hk_client_list clients;
	struct plan_item     *items;
	size_t		      n;
	size_t		      nerrors;
	size_t		      nchanges; /* items to create or change */
	int		      dry_run;
};

static void
add_change(
    struct plan_item *it, const char *field, const char *from, const char *to)
{
	struct plan_change *c;

	if (it->nch == PLAN_MAX_CHANGES) {
		return; /* cannot happen: the table bounds every kind */
	}
	c = &it->ch[it->nch++];
	c->field = field;
	c->from = from != NULL ? xstrdup(from) : NULL;
	c->to = xstrdup(to);
}

static void plan_error(struct plan_item *it, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
plan_error(struct plan_item *it, int line, const char *fmt, ...)
{
	va_list ap;
	char	msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (it->error == NULL) {
		it->error = xstrdup(msg);
		it->line = line;
	}
	it->act = ACT_ERROR;
}

/* ---- keys ---------------------------------------------------------------- */

/* Where struct hk_key_info holds each policy field (not the alg). */
static const size_t have_off[APPLY_NFIELDS] = {
	[APPLY_SIGN_OVERLAP] = offsetof(struct hk_key_info, sign_overlap_s),
	[APPLY_VERIFY_GRACE] = offsetof(struct hk_key_info, verify_grace_s),
	[APPLY_ROTATE_EVERY] = offsetof(struct hk_key_info, rotate_every_s),
	[APPLY_EXPIRES] = offsetof(struct hk_key_info, expires_ms),
};

/* The policy fields of k that have differs in, into it->pc (and, with
 * changes, as plan changes); returns how many. */
static size_t
policy_diff(struct plan_item *it, const struct apply_key *k,
    const struct hk_key_info *have, int changes)
{
	const uint64_t **pc[APPLY_NFIELDS] = {
		[APPLY_SIGN_OVERLAP] = &it->pc.sign_overlap_s,
		[APPLY_VERIFY_GRACE] = &it->pc.verify_grace_s,
		[APPLY_ROTATE_EVERY] = &it->pc.rotate_every_s,
		[APPLY_EXPIRES] = &it->pc.expires_ms,
	};
	char	 a[64], b[64];
	uint64_t old;
	size_t	 n = 0;
	int	 i;

	memset(&it->pc, 0, sizeof(it->pc));
	for (i = APPLY_ALG + 1; i < APPLY_NFIELDS; i++) {
		old = *(const uint64_t *)((const char *)have + have_off[i]);
		if (!k->f[i].set || k->f[i].v == old) {
			continue;
		}
		it->pcv[i] = k->f[i].v;
		*pc[i] = &it->pcv[i];
		n++;
		if (changes) {
			add_change(it, apply_field_name(i),
			    apply_field_text(i, old, a, sizeof(a)),
			    apply_field_text(i, k->f[i].v, b, sizeof(b)));
		}
	}
	return n;
}

static void
plan_key(struct plan *p, struct plan_item *it, const struct apply_key *k)
{
	const struct hk_key_info *have = NULL;
	char			  buf[64];
	size_t			  i;

	it->kind = "key";
	it->name = k->name;
	it->line = k->line;
	it->key = k;
	for (i = 0; i < p->keys.n && have == NULL; i++) {
		if (strcmp(p->keys.keys[i].name, k->name) == 0) {
			have = &p->keys.keys[i];
		}
	}
	if (have == NULL) {
		it->act = ACT_CREATE;
		for (i = 0; i < APPLY_NFIELDS; i++) {
			if (k->f[i].set) {
				add_change(it, apply_field_name(i), NULL,
				    apply_field_text(
					i, k->f[i].v, buf, sizeof(buf)));
			}
		}
		return;
	}
	apply_field_text(APPLY_ALG, k->f[APPLY_ALG].v, buf, sizeof(buf));
	if (have->alg == NULL || strcmp(have->alg, buf) != 0) {
		plan_error(it, k->f[APPLY_ALG].line,
		    "alg %s in the file, %s in the service: a key's "
		    "algorithm is fixed when it is created",
		    buf, have->alg != NULL ? have->alg : "unknown");
		return;
	}
	it->act = policy_diff(it, k, have, 1) > 0 ? ACT_CHANGE : ACT_UNCHANGED;
}

/* ---- clients ------------------------------------------------------------- */

static int
has_grant(const char *const *grants, size_t n, const char *g)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (strcmp(grants[i], g) == 0) {
			return 1;
		}
	}
	return 0;
}

/* The grants separated by blanks ("none" for none); caller frees. */
static char *
join_grants(const char *const *grants, size_t n)
{
	size_t i, off = 0, len = 8;
	char  *s;

	for (i = 0; i < n; i++) {
		len += strlen(grants[i]) + 1;
	}
	s = xmalloc(len);
	snprintf(s, len, "%s", n == 0 ? "none" : "");
	for (i = 0; i < n; i++) {
		off += (size_t)snprintf(
		    s + off, len - off, "%s%s", i > 0 ? " " : "", grants[i]);
	}
	return s;
}

static void
plan_new_client(struct plan_item *it, const struct apply_client *c)
{
	struct stat sb;
	char	   *g;
	int	    found = 0;

	it->act = ACT_CREATE;
	if (c->credentials != NULL) {
		found = lstat(c->credentials, &sb) == 0 ? 1
		    : errno == ENOENT			? 0
							: -1;
	}
	if (c->ngrants == 0) {
		plan_error(it, c->line,
		    "no such client, and a new one needs a grant");
	} else if (c->credentials == NULL) {
		plan_error(it, c->line,
		    "no such client: give credentials = FILE, where the new "
		    "client's secret is written");
	} else if (found != 0) {
		plan_error(it, c->credentials_line,
		    "credentials file %s %s: apply writes a new client's "
		    "secret only to a file it creates",
		    c->credentials,
		    found > 0 ? "exists" : "cannot be checked");
	} else if (c->nrevoke > 0) {
		plan_error(it, c->revoke_line,
		    "revoke_secrets for a client that does not exist yet");
	}
	if (it->act == ACT_ERROR) {
		return;
	}
	g = join_grants((const char *const *)c->grants, c->ngrants);
	add_change(it, "grants", NULL, g);
	free(g);
	add_change(it, "credentials", NULL, c->credentials);
}

/* The grants the client is to hold: the file's (grants_exact), or the
 * service's and the file's. */
static void
plan_grants(struct plan_item *it, const struct apply_client *c,
    const struct hk_client_info *have)
{
	char  *from, *to;
	size_t i, same;

	it->ngrants = 0;
	if (have->n_grants > APPLY_MAX_GRANTS) {
		plan_error(it, c->line,
		    "the service lists %zu grants, over %d", have->n_grants,
		    APPLY_MAX_GRANTS);
		return;
	}
	if (!c->exact.v) {
		for (i = 0; i < have->n_grants; i++) {
			it->grants[it->ngrants++] = have->grants[i];
		}
	}
	for (i = 0; i < c->ngrants; i++) {
		if (!has_grant(
			it->grants, it->ngrants, (const char *)c->grants[i])) {
			it->grants[it->ngrants++] = c->grants[i];
		}
	}
	for (i = 0, same = 0; i < it->ngrants; i++) {
		same += has_grant(have->grants, have->n_grants, it->grants[i]);
	}
	if (same == have->n_grants && same == it->ngrants) {
		return;
	}
	if (it->ngrants > APPLY_MAX_GRANTS) {
		plan_error(it, c->grants_line,
		    "the client would hold %zu grants, over %d: list them "
		    "all with grants_exact = yes",
		    it->ngrants, APPLY_MAX_GRANTS);
		return;
	}
	it->set_grants = 1;
	from = join_grants(have->grants, have->n_grants);
	to = join_grants(it->grants, it->ngrants);
	add_change(it, "grants", from, to);
	free(from);
	free(to);
}

static void
plan_client(struct plan *p, struct plan_item *it, const struct apply_client *c)
{
	const struct hk_client_info *have = NULL;
	char			     field[32];
	size_t			     i, j;

	it->kind = "client";
	it->name = c->id;
	it->line = c->line;
	it->client = c;
	for (i = 0; i < p->clients.n && have == NULL; i++) {
		if (strcmp(p->clients.clients[i].id, c->id) == 0) {
			have = &p->clients.clients[i];
		}
	}
	if ((it->have = have) == NULL) {
		plan_new_client(it, c);
		return;
	}
	plan_grants(it, c, have);
	for (i = 0; i < c->nrevoke && it->act != ACT_ERROR; i++) {
		for (j = 0; j < have->n_secrets &&
		     have->secrets[j].number != c->revoke[i];
		     j++) {
			;
		}
		if (j == have->n_secrets) {
			continue; /* revoked already, or never made */
		}
		it->revoke[it->nrevoke++] = c->revoke[i];
		snprintf(
		    field, sizeof(field), "secret %" PRIu32, c->revoke[i]);
		add_change(it, "revoke", NULL, field);
	}
	if (it->act != ACT_ERROR) {
		it->act = it->nch > 0 ? ACT_CHANGE : ACT_UNCHANGED;
	}
}

/* ---- the plan ------------------------------------------------------------ */

static int
plan_make(struct cli *c, struct hsmkey *h, struct plan *p)
{
	struct plan_item *it;
	size_t		  i;
	int		  r;

	if ((p->f.nkeys > 0 && (r = hk_key_list(h, &p->keys)) != 0) ||
	    (p->f.nclients > 0 && (r = hk_client_list(h, &p->clients)) != 0)) {
		return cli_fail(c, r);
	}
	p->items = xcalloc(p->f.nkeys + p->f.nclients, sizeof(*p->items));
	for (i = 0; i < p->f.nkeys; i++) {
		plan_key(p, &p->items[p->n++], &p->f.keys[i]);
	}
	for (i = 0; i < p->f.nclients; i++) {
		plan_client(p, &p->items[p->n++], &p->f.clients[i]);
	}
	for (i = 0; i < p->n; i++) {
		it = &p->items[i];
		p->nerrors += it->act == ACT_ERROR;
		p->nchanges += it->act == ACT_CREATE || it->act == ACT_CHANGE;
	}
	return 0;
}

static void
plan_free(struct plan *p)
{
	size_t i, j;

	for (i = 0; i < p->n; i++) {
		for (j = 0; j < p->items[i].nch; j++) {
			free(p->items[i].ch[j].from);
			free(p->items[i].ch[j].to);
		}
		free(p->items[i].error);
	}
	free(p->items);
	hk_key_list_free(&p->keys);
	hk_client_list_free(&p->clients);
	apply_file_free(&p->f);
}

static const char *
item_word(const struct plan_item *it)
{
	return it->done ? act_words[it->act].done : act_words[it->act].plan;
}

/* One plan line: "WORD KIND NAME[: FIELD [OLD -> ]NEW, ...]". */
static void
item_text(const struct plan *p, const struct plan_item *it)
{
	const struct plan_change *ch;
	size_t			  i;

	printf("%-9s %s %s", item_word(it), it->kind, it->name);
	if (it->act == ACT_ERROR) {
		printf(": %s:%d: %s\n", p->f.path, it->line, it->error);
		return;
	}
	for (i = 0; i < it->nch; i++) {
		ch = &it->ch[i];
		printf("%s%s %s%s%s", i == 0 ? ": " : ", ", ch->field,
		    ch->from != NULL ? ch->from : "",
		    ch->from != NULL ? " -> " : "", ch->to);
	}
	printf("\n");
}

static void
item_json(struct json *j, const struct plan_item *it)
{
	size_t i;

	json_object_begin(j);
	json_kv_string(j, "kind", it->kind);
	json_kv_string(j, "name", it->name);
	json_kv_u64(j, "line", (uint64_t)it->line);
	json_kv_string(j, "action", act_words[it->act].plan);
	json_kv_bool(j, "done", it->done);
	json_key(j, "changes");
	json_array_begin(j);
	for (i = 0; i < it->nch; i++) {
		json_object_begin(j);
		json_kv_string(j, "field", it->ch[i].field);
		json_kv_string(j, "from", it->ch[i].from);
		json_kv_string(j, "to", it->ch[i].to);
		json_object_end(j);
	}
	json_array_end(j);
	if (it->error != NULL) {
		json_kv_string(j, "error", it->error);
	}
	json_object_end(j);
}

static void
plan_json(struct cli *c, const struct plan *p)
{
	size_t i;

	json_object_begin(&c->j);
	json_kv_string(&c->j, "file", p->f.path);
	json_kv_bool(&c->j, "dry_run", p->dry_run);
	json_kv_u64(&c->j, "changes", p->nchanges);
	json_kv_u64(&c->j, "errors", p->nerrors);
	json_key(&c->j, "items");
	json_array_begin(&c->j);
	for (i = 0; i < p->n; i++) {
		item_json(&c->j, &p->items[i]);
	}
	json_array_end(&c->j);
	json_object_end(&c->j);
}

static void
plan_print(struct cli *c, const struct plan *p)
{
	size_t i;

	if (c->json) {
		plan_json(c, p);
		return;
	}
	for (i = 0; i < p->n; i++) {
		item_text(p, &p->items[i]);
	}
}

/* A plan with errors: the first one on stderr; exit 2. */
static int
plan_refused(const struct plan *p)
{
	const struct plan_item *it;
	size_t			i;

	for (i = 0; p->items[i].act != ACT_ERROR; i++) {
		;
	}
	it = &p->items[i];
	fflush(stdout);
	fprintf(stderr, "hsmkey: %s:%d: %s %s: %s; nothing was changed",
	    p->f.path, it->line, it->kind, it->name, it->error);
	if (p->nerrors > 1) {
		fprintf(
		    stderr, " (%zu more errors in the plan)", p->nerrors - 1);
	}
	fprintf(stderr, "\n");
	return EXIT_USAGE;
}

/* ---- applying ------------------------------------------------------------ */

/* Fails item it with the handle's last error; returns the exit code. */
static int
item_failed(struct plan_item *it, struct hsmkey *h, int err)
{
	free(it->error);
	it->error = xstrdup(hsmkey_last_error(h));
	return hsmkey_exit_code(err);
}

static int
apply_key(struct hsmkey *h, struct plan_item *it)
{
	struct hk_key_result res;
	char		     alg[64];
	int		     r;

	if (it->act == ACT_CREATE) {
		apply_field_text(
		    APPLY_ALG, it->key->f[APPLY_ALG].v, alg, sizeof(alg));
		r = hk_key_create(h, it->name, alg, &res);
		/* the service's default policy, then the file's fields */
		if (r == 0 && policy_diff(it, it->key, &res.key, 0) == 0) {
			hk_key_result_free(&res);
			return 0;
		}
		hk_key_result_free(&res);
		if (r != 0) {
			return item_failed(it, h, r);
		}
	}
	r = hk_key_policy(h, it->name, &it->pc, &res);
	hk_key_result_free(&res);
	return r != 0 ? item_failed(it, h, r) : 0;
}

/* Writes the new secret cs to fd (the credentials file apply made). */
static int
write_credentials(struct cli *c, struct plan_item *it, int fd,
    const struct hk_client_secret *cs)
{
	char  *ini = NULL, msg[512];
	size_t len;
	FILE  *f;
	int    r;

	if ((r = cli_credentials_ini(c, cs, &ini, &len, NULL)) != 0) {
		close(fd);
		it->error = xstrdup("the reply carries no secret");
		return r;
	}
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
	}
	if (f == NULL || cli_write_all(f, ini, len) != 0 || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		snprintf(msg, sizeof(msg),
		    "created client %s but cannot write %s: %s: get a new "
		    "secret with 'hsmkey client rotate %s --out FILE'",
		    it->name, it->client->credentials, strerror(errno),
		    it->name);
		it->error = xstrdup(msg);
		r = 5;
	}
	if (f != NULL && fclose(f) != 0 && r == 0) {
		r = 5;
		it->error = xstrdup("cannot close the credentials file");
	}
	cli_free_secret(ini);
	return r;
}

static int
apply_new_client(struct cli *c, struct hsmkey *h, struct plan_item *it)
{
	const struct apply_client *cl = it->client;
	struct hk_client_secret	   cs;
	char			   msg[512];
	int			   fd, r;

	/* the file before the secret: a path that cannot be written fails
	 * before the client exists */
	if ((fd = open(cl->credentials,
		 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) <
		0 ||
	    fchmod(fd, 0600) != 0) {
		snprintf(msg, sizeof(msg), "cannot create %s: %s",
		    cl->credentials, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(cl->credentials);
		}
		it->error = xstrdup(msg);
		return EXIT_USAGE;
	}
	if ((r = hk_client_add(h, cl->id, (const char *const *)cl->grants,
		 cl->ngrants, &cs)) != 0) {
		close(fd);
		unlink(cl->credentials);
		hk_client_secret_free(&cs);
		return item_failed(it, h, r);
	}
	if ((r = write_credentials(c, it, fd, &cs)) != 0) {
		unlink(cl->credentials); /* no half a secret left behind */
	}
	hk_client_secret_free(&cs);
	return r;
}

static int
apply_client(struct cli *c, struct hsmkey *h, struct plan_item *it)
{
	struct hk_client_result res;
	size_t			i;
	int			r;

	if (it->act == ACT_CREATE) {
		return apply_new_client(c, h, it);
	}
	if (it->set_grants) {
		r = hk_client_grant(
		    h, it->name, it->grants, it->ngrants, &res);
		hk_client_result_free(&res);
		if (r != 0) {
			return item_failed(it, h, r);
		}
	}
	for (i = 0; i < it->nrevoke; i++) {
		if ((r = hk_client_revoke(h, it->name, it->revoke[i])) != 0) {
			return item_failed(it, h, r);
		}
	}
	return 0;
}

/* Does the plan's items in order, printing each once done; stops at the
 * first failure. */
static int
plan_apply(struct cli *c, struct hsmkey *h, struct plan *p)
{
	struct plan_item *it = NULL;
	size_t		  i;
	int		  r = 0;

	for (i = 0; i < p->n && r == 0; i++) {
		it = &p->items[i];
		if (it->act != ACT_UNCHANGED) {
			r = it->key != NULL ? apply_key(h, it)
					    : apply_client(c, h, it);
		}
		if (r != 0) {
			it->act = ACT_ERROR;
			p->nerrors++;
		} else {
			it->done = 1;
		}
		if (!c->json) {
			item_text(p, it);
		}
	}
	if (c->json) {
		plan_json(c, p);
	}
	if (r != 0) {
		fflush(stdout);
		fprintf(stderr,
		    "hsmkey: %s %s: %s; stopped there (the lines above were "
		    "done): run 'hsmkey apply %s' again to go on\n",
		    it->kind, it->name, it->error, p->f.path);
	}
	return r;
}

static int
cmd_apply(struct cli *c, struct cli_args *a)
{
	struct hsmkey *h;
	struct plan    p;
	char	       err[1024];
	int	       r;

	memset(&p, 0, sizeof(p));
	p.dry_run = cli_opt(a, "dry-run") != NULL;
	if (apply_file_read(a->pos[0], &p.f, err, sizeof(err)) != 0) {
		r = cli_usage(c, "%s", err);
		goto out;
	}
	if ((r = cli_handle(c, &h)) != 0 || (r = plan_make(c, h, &p)) != 0) {
		goto out;
	}
	if (p.nerrors > 0) {
		plan_print(c, &p);
		r = plan_refused(&p);
	} else if (p.dry_run) {
		plan_print(c, &p);
		r = 0;
	} else {
		r = plan_apply(c, h, &p);
	}
out:
	plan_free(&p);
	return r;
}

static const struct cli_opt apply_opts[] = {
	{ "dry-run", 0, 0 },
	{ NULL, 0, 0 },
};

const struct cli_cmd cli_apply_cmds[] = {
	{ "apply", cmd_apply, "FILE [--dry-run]",
	    "Makes the service hold the keys and clients FILE declares "
	    "([key NAME]: alg, sign_overlap, verify_grace, rotate_every, "
	    "expires; [client ID]: grant, grants_exact, credentials, "
	    "revoke_secrets) and prints one line per item: create, change "
	    "(OLD -> NEW), unchanged or error. Leaves alone what FILE does "
	    "not name; takes a grant away only with grants_exact = yes, a "
	    "secret only by revoke_secrets. --dry-run: prints the plan, "
	    "changes nothing. "
	    "Exit 2 for a bad file or a plan with an error (nothing done).",
	    apply_opts, 1, 1 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0 },
};
