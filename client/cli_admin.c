/*
 * cli_admin.c: the client-management and service commands of hsmkey:
 * client add, client rotate, client revoke, client grant, client list,
 * stats, health.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "wire.h"

#define ID_HINT "use [A-Za-z0-9][A-Za-z0-9._@-]{0,63}"

static int
check_id(struct cli *c, const char *id)
{
	if (!hk_valid_client_id(id)) {
		return cli_usage(c, "invalid client id '%s': " ID_HINT, id);
	}
	return 0;
}

/*
 * The new credentials go to a temporary file next to --out, made before
 * the request (so a bad path fails before a secret exists) and renamed
 * over --out after it.
 */
struct outfile {
	const char *path;
	char	   *tmp;
	int	    fd;
};

static int
outfile_open(struct cli *c, struct outfile *o, const char *path)
{
	size_t len;

	o->path = path;
	o->tmp = NULL;
	o->fd = -1;
	if (path == NULL) {
		return 0;
	}
	len = strlen(path) + 16;
	o->tmp = xmalloc(len);
	snprintf(o->tmp, len, "%s.tmp.XXXXXX", path);
	if ((o->fd = mkstemp(o->tmp)) < 0) {
		free(o->tmp);
		o->tmp = NULL;
		return cli_error(c, HSMKEY_EINVAL, "",
		    "cannot create a file "
		    "next to %s: %s",
		    path, strerror(errno));
	}
	if (fchmod(o->fd, 0600) != 0) {
		return cli_error(c, HSMKEY_EINVAL, "", "cannot chmod %s: %s",
		    o->tmp, strerror(errno));
	}
	return 0;
}

/* Removes the temporary file unless it was committed. */
static void
outfile_close(struct outfile *o)
{
	if (o->fd >= 0) {
		close(o->fd);
	}
	if (o->tmp != NULL) {
		unlink(o->tmp);
		free(o->tmp);
	}
	o->fd = -1;
	o->tmp = NULL;
}

static int
outfile_commit(struct outfile *o, const char *data, size_t len)
{
	size_t	off = 0;
	ssize_t n;

	while (off < len) {
		if ((n = write(o->fd, data + off, len - off)) < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -1;
		}
		off += (size_t)n;
	}
	if (fsync(o->fd) != 0 || close(o->fd) != 0) {
		o->fd = -1;
		return -1;
	}
	o->fd = -1;
	if (rename(o->tmp, o->path) != 0) {
		return -1;
	}
	free(o->tmp);
	o->tmp = NULL;
	return 0;
}

void
cli_free_secret(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

int
cli_credentials_ini(struct cli *c, const struct hk_client_secret *cs,
    char **inip, size_t *lenp, char **b64p)
{
	char	   *b64 = NULL, *ini = NULL, t1[64];
	const char *url = hk_client_url(c->h);
	size_t	    len;
	int	    n;

	*inip = NULL;
	*lenp = 0;
	if (cs->secret_len == 0 || cs->secret_no == 0) {
		return cli_error(c, HSMKEY_EPROTO, "",
		    "reply carries no "
		    "secret");
	}
	if (hk_base64_encode(cs->secret, cs->secret_len, &b64) != 0) {
		return cli_error(c, HSMKEY_ENOMEM, "", "out of memory");
	}
	len = strlen(b64) + strlen(cs->id) + strlen(url) + 512;
	ini = xmalloc(len);
	n = snprintf(ini, len,
	    "; hsmkey client credentials: keep secret (mode 0600)\n"
	    "; secret %" PRIu32 " of client %s, expires %s\n"
	    "[client]\n"
	    "id = %s\n"
	    "secret = %s\n"
	    "secret_no = %" PRIu32 "\n"
	    "connect = %s\n",
	    cs->secret_no, cs->id,
	    cs->expires_ms == 0 ? "never"
				: cli_fmt_time(cs->expires_ms, t1, sizeof(t1)),
	    cs->id, b64, cs->secret_no, url);
	if (n < 0 || (size_t)n >= len) {
		cli_free_secret(b64);
		cli_free_secret(ini);
		return cli_error(
		    c, HSMKEY_EINTERNAL, "", "credentials too long");
	}
	*inip = ini;
	*lenp = (size_t)n;
	if (b64p != NULL) {
		*b64p = b64;
	} else {
		cli_free_secret(b64);
	}
	return 0;
}

/*
 * Shows new credentials once: to --out (INI, mode 0600) or stdout (INI,
 * or JSON with --json).
 */
static int
show_secret(struct cli *c, struct outfile *o,
    const struct hk_client_secret *cs, const char *what)
{
	const char *url = hk_client_url(c->h);
	char	   *b64 = NULL, *ini = NULL;
	size_t	    n;
	int	    r;

	if ((r = cli_credentials_ini(c, cs, &ini, &n, &b64)) != 0) {
		return r;
	}
	if (o->path != NULL && outfile_commit(o, ini, n) != 0) {
		r = cli_error(c, HSMKEY_EINTERNAL, "",
		    "%s client '%s' but "
		    "cannot write %s: %s: get a new secret with 'hsmkey "
		    "client rotate %s'",
		    what, cs->id, o->path, strerror(errno), cs->id);
		goto out;
	}
	if (c->json) {
		json_object_begin(&c->j);
		json_kv_string(&c->j, "id", cs->id);
		json_kv_u64(&c->j, "secret_no", cs->secret_no);
		cli_json_time(&c->j, "expires", cs->expires_ms);
		json_kv_string(&c->j, "connect", url);
		if (o->path != NULL) {
			json_kv_string(&c->j, "file", o->path);
		} else {
			json_kv_string(&c->j, "secret", b64);
		}
		json_object_end(&c->j);
	} else if (o->path != NULL) {
		printf("%s client '%s': secret %" PRIu32 " written to %s\n",
		    what, cs->id, cs->secret_no, o->path);
	} else {
		fputs(ini, stdout);
		fflush(stdout);
		fprintf(stderr,
		    "hsmkey: the secret above is shown once: "
		    "save it as a file with mode 0600\n");
	}
	r = 0;
out:
	cli_free_secret(b64);
	cli_free_secret(ini);
	return r;
}

/* client add (add 1: with the --grant values) or client rotate: the
 * request, then the new secret shown once. */
static int
secret_cmd(struct cli *c, struct cli_args *a, int add, const char *what)
{
	struct hk_client_secret cs;
	struct outfile		o;
	struct hsmkey	       *h;
	int			r;

	memset(&cs, 0, sizeof(cs));
	if ((r = outfile_open(c, &o, cli_opt(a, "out"))) != 0 ||
	    (r = cli_handle(c, &h)) != 0) {
		goto out;
	}
	r = add ? hk_client_add(h, a->pos[0], (const char *const *)a->multi,
		      a->nmulti, &cs)
		: hk_client_rotate(h, a->pos[0], &cs);
	r = r != 0 ? cli_fail(c, r) : show_secret(c, &o, &cs, what);
out:
	outfile_close(&o);
	hk_client_secret_free(&cs);
	return r;
}

/* The client id and the --grant values of client add and client grant. */
static int
check_id_grants(struct cli *c, const struct cli_args *a)
{
	size_t i;
	int    r;

	if ((r = check_id(c, a->pos[0])) != 0) {
		return r;
	}
	if (a->nmulti == 0) {
		return cli_usage(c,
		    "missing --grant OP:GLOB (OP: sign, "
		    "verify, pubkey or admin)");
	}
	for (i = 0; i < a->nmulti; i++) {
		if (!cli_valid_grant(a->multi[i])) {
			return cli_usage(c,
			    "invalid grant '%s': use OP:GLOB "
			    "with OP sign, verify, pubkey or admin and GLOB "
			    "of [a-z0-9._-*?[]!]",
			    a->multi[i]);
		}
	}
	return 0;
}

static int
cmd_client_add(struct cli *c, struct cli_args *a)
{
	int r;

	if ((r = check_id_grants(c, a)) != 0) {
		return r;
	}
	return secret_cmd(c, a, 1, "created");
}

static int
cmd_client_rotate(struct cli *c, struct cli_args *a)
{
	int r;

	if ((r = check_id(c, a->pos[0])) != 0) {
		return r;
	}
	return secret_cmd(c, a, 0, "new secret for");
}

static int
cmd_client_revoke(struct cli *c, struct cli_args *a)
{
	const char    *s = cli_opt(a, "secret");
	struct hsmkey *h;
	uint32_t       n;
	int	       r;

	if ((r = check_id(c, a->pos[0])) != 0) {
		return r;
	}
	if (s == NULL) {
		return cli_usage(c,
		    "missing --secret N (the number 'hsmkey "
		    "client list' shows)");
	}
	if (cli_parse_u32(s, 0, &n) != 0) {
		return cli_usage(c,
		    "invalid --secret '%s': give a secret "
		    "number, 1 or more",
		    s);
	}
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if ((r = hk_client_revoke(h, a->pos[0], n)) != 0) {
		return cli_fail(c, r);
	}
	if (c->json) {
		json_object_begin(&c->j);
		json_kv_string(&c->j, "id", a->pos[0]);
		json_kv_u64(&c->j, "secret_no", n);
		json_kv_bool(&c->j, "revoked", 1);
		json_object_end(&c->j);
	} else {
		printf("revoked secret %" PRIu32 " of client '%s'\n", n,
		    a->pos[0]);
	}
	return 0;
}

static void
client_json(struct json *j, const struct hk_client_info *ci)
{
	const struct hk_secret_info *si;
	size_t			     k;

	json_object_begin(j);
	json_kv_string(j, "id", ci->id);
	json_key(j, "grants");
	json_array_begin(j);
	for (k = 0; k < ci->n_grants; k++) {
		json_string(j, ci->grants[k]);
	}
	json_array_end(j);
	json_key(j, "secrets");
	json_array_begin(j);
	for (k = 0; k < ci->n_secrets; k++) {
		si = &ci->secrets[k];
		json_object_begin(j);
		json_kv_u64(j, "number", si->number);
		cli_json_time(j, "created", si->created_ms);
		cli_json_time(j, "expires", si->expires_ms);
		cli_json_time(j, "last_used", si->last_used_ms);
		json_object_end(j);
	}
	json_array_end(j);
	json_object_end(j);
}

/* ms as an ISO time, or "never" for 0, into buf. */
static const char *
time_or_never(uint64_t ms, char *buf, size_t len)
{
	return ms == 0 ? "never" : cli_fmt_time(ms, buf, len);
}

static void
client_text(const struct hk_client_info *ci)
{
	const struct hk_secret_info *si;
	char			     t1[64], t2[64], t3[64], num[16];
	size_t			     k;

	printf("client    %s\n", ci->id);
	printf("grants    ");
	for (k = 0; k < ci->n_grants; k++) {
		printf("%s%s", k > 0 ? " " : "", ci->grants[k]);
	}
	printf("%s\n", ci->n_grants == 0 ? "none" : "");
	printf("secrets\n");
	printf("  %-7s %-21s %-21s %s\n", "NUMBER", "CREATED", "EXPIRES",
	    "LAST-USED");
	for (k = 0; k < ci->n_secrets; k++) {
		si = &ci->secrets[k];
		snprintf(num, sizeof(num), "%" PRIu32, si->number);
		printf("  %-7s %-21s %-21s %s\n", num,
		    cli_fmt_time(si->created_ms, t1, sizeof(t1)),
		    time_or_never(si->expires_ms, t2, sizeof(t2)),
		    time_or_never(si->last_used_ms, t3, sizeof(t3)));
	}
}

static void
client_item(struct cli *c, const void *ci)
{
	if (c->json) {
		client_json(&c->j, ci);
	} else {
		client_text(ci);
	}
}

static int
cmd_client_grant(struct cli *c, struct cli_args *a)
{
	struct hk_client_result res;
	struct hsmkey	       *h;
	int			r;

	if ((r = check_id_grants(c, a)) != 0 || (r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if ((r = hk_client_grant(h, a->pos[0], (const char *const *)a->multi,
		 a->nmulti, &res)) != 0) {
		hk_client_result_free(&res);
		return cli_fail(c, r);
	}
	if (!c->json) {
		printf("set the grants of client '%s'\n", res.client.id);
	}
	client_item(c, &res.client);
	hk_client_result_free(&res);
	return 0;
}

static int
cmd_client_list(struct cli *c, struct cli_args *a)
{
	struct hk_client_list l;
	struct hsmkey	     *h;
	int		      r;

	(void)a;
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if ((r = hk_client_list(h, &l)) != 0) {
		hk_client_list_free(&l);
		return cli_fail(c, r);
	}
	cli_print_list(c, "clients", "no clients", l.clients, l.n,
	    sizeof(*l.clients), client_item);
	hk_client_list_free(&l);
	return 0;
}

static void
version_stats(struct cli *c, const struct hk_version_stats *vs)
{
	char t[64], ver[16];

	if (c->json) {
		json_object_begin(&c->j);
		json_kv_string(&c->j, "key", vs->key);
		json_kv_u64(&c->j, "version", vs->version);
		json_kv_string(&c->j, "state", vs->state);
		json_kv_u64(&c->j, "signs", vs->signs);
		json_kv_u64(&c->j, "verifies", vs->verifies);
		json_kv_u64(&c->j, "errors", vs->errors);
		cli_json_time(&c->j, "last_use", vs->last_use_ms);
		json_object_end(&c->j);
		return;
	}
	snprintf(ver, sizeof(ver), "v%" PRIu32, vs->version);
	printf("%-24s %-8s %-18s %10" PRIu64 " %10" PRIu64 " %8" PRIu64
	       "  %s\n",
	    vs->key, ver, vs->state, vs->signs, vs->verifies, vs->errors,
	    time_or_never(vs->last_use_ms, t, sizeof(t)));
}

static void
secret_stats(struct cli *c, const struct hk_secret_stats *ss)
{
	char t[64], ver[16];

	if (c->json) {
		json_object_begin(&c->j);
		json_kv_string(&c->j, "client", ss->client);
		json_kv_u64(&c->j, "secret", ss->secret);
		json_kv_u64(&c->j, "requests", ss->requests);
		json_kv_u64(&c->j, "denials", ss->denials);
		cli_json_time(&c->j, "last_use", ss->last_use_ms);
		json_object_end(&c->j);
		return;
	}
	snprintf(ver, sizeof(ver), "%" PRIu32, ss->secret);
	printf("%-24s %-8s %10" PRIu64 " %10" PRIu64 "  %s\n", ss->client, ver,
	    ss->requests, ss->denials,
	    time_or_never(ss->last_use_ms, t, sizeof(t)));
}

static int
cmd_stats(struct cli *c, struct cli_args *a)
{
	struct hk_stats st;
	struct hsmkey  *h;
	size_t		i;
	int		r;

	(void)a;
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if ((r = hk_service_stats(h, &st)) != 0) {
		hk_stats_free(&st);
		return cli_fail(c, r);
	}
	if (c->json) {
		json_object_begin(&c->j);
		json_key(&c->j, "versions");
		json_array_begin(&c->j);
	} else {
		printf("%-24s %-8s %-18s %10s %10s %8s  %s\n", "KEY",
		    "VERSION", "STATE", "SIGNS", "VERIFIES", "ERRORS",
		    "LAST-USE");
	}
	for (i = 0; i < st.n_versions; i++) {
		version_stats(c, &st.versions[i]);
	}
	if (c->json) {
		json_array_end(&c->j);
		json_key(&c->j, "secrets");
		json_array_begin(&c->j);
	} else if (st.n_secrets > 0) {
		printf("\n%-24s %-8s %10s %10s  %s\n", "CLIENT", "SECRET",
		    "REQUESTS", "DENIALS", "LAST-USE");
	}
	for (i = 0; i < st.n_secrets; i++) {
		secret_stats(c, &st.secrets[i]);
	}
	if (c->json) {
		json_array_end(&c->j);
		json_object_end(&c->j);
	}
	hk_stats_free(&st);
	return 0;
}

static void
fmt_uptime(uint64_t s, char *buf, size_t len)
{
	if (s >= 86400) {
		snprintf(buf, len, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m",
		    s / 86400, s % 86400 / 3600, s % 3600 / 60);
	} else if (s >= 3600) {
		snprintf(buf, len, "%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s",
		    s / 3600, s % 3600 / 60, s % 60);
	} else {
		snprintf(
		    buf, len, "%" PRIu64 "m %" PRIu64 "s", s / 60, s % 60);
	}
}

static int
cmd_health(struct cli *c, struct cli_args *a)
{
	struct hk_health hv, *hh = &hv;
	const char	*state, *audit;
	struct hsmkey	*h;
	char		 up[64], since[64];
	int		 healthy;
	int		 r;

	(void)a;
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if ((r = hk_service_health(h, hh)) != 0) {
		hk_health_free(hh);
		return cli_fail(c, r);
	}
	state = *hh->token_state != '\0'
	    ? hh->token_state
	    : (hh->token_ok ? "ok" : "unavailable");
	audit = *hh->audit_state != '\0'
	    ? hh->audit_state
	    : (hh->audit_ok ? "ok" : "unavailable");
	healthy = hh->token_ok && hh->audit_ok;
	if (c->json) {
		json_object_begin(&c->j);
		json_kv_string(&c->j, "status", healthy ? "ok" : "degraded");
		json_kv_string(&c->j, "version", hh->version);
		json_kv_u64(&c->j, "protocol", hh->protocol);
		json_kv_bool(&c->j, "token_ok", hh->token_ok);
		json_kv_string(&c->j, "token_label", hh->token_label);
		json_kv_string(&c->j, "token_state", state);
		json_kv_u64(
		    &c->j, "token_down_since_ms", hh->token_down_since_ms);
		json_kv_u64(&c->j, "token_repairs", hh->token_repairs);
		json_kv_bool(&c->j, "audit_ok", hh->audit_ok);
		json_kv_string(&c->j, "audit_state", audit);
		json_kv_u64(&c->j, "keys", hh->keys);
		json_kv_u64(&c->j, "versions", hh->versions);
		json_kv_u64(&c->j, "workers", hh->workers);
		json_kv_u64(&c->j, "uptime_s", hh->uptime_s);
		json_object_end(&c->j);
	} else {
		fmt_uptime(hh->uptime_s, up, sizeof(up));
		printf("status    %s\n", healthy ? "ok" : "degraded");
		printf("service   hsmkeyd %s (protocol %" PRIu32 ") at %s\n",
		    hh->version, hh->protocol, hk_client_url(h));
		printf("token     %s: %s", hh->token_label, state);
		if (hh->token_down_since_ms != 0) {
			cli_fmt_time(
			    hh->token_down_since_ms, since, sizeof(since));
			printf(" (down since %s)", since);
		}
		if (hh->token_repairs != 0) {
			printf(" (reconnected %" PRIu64 " times)",
			    hh->token_repairs);
		}
		printf("\n");
		printf("audit     %s\n", audit);
		printf("keys      %" PRIu32 " (%" PRIu32 " versions)\n",
		    hh->keys, hh->versions);
		printf("workers   %" PRIu32 "\n", hh->workers);
		printf("uptime    %s\n", up);
	}
	r = 0;
	if (!hh->token_ok) {
		/* the service answers, the token does not: exit 5 */
		fflush(stdout);
		fprintf(stderr,
		    "hsmkey: token unavailable: %s (see the "
		    "hsmkeyd log)\n",
		    state);
		r = 5;
	} else if (!hh->audit_ok) {
		/* audited requests fail until the log can be written */
		fflush(stdout);
		fprintf(stderr, "hsmkey: %s (see the hsmkeyd log)\n", audit);
		r = 5;
	}
	hk_health_free(hh);
	return r;
}

static const struct cli_opt add_opts[] = {
	{ "grant", 1, 1 },
	{ "out", 1, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt grant_opts[] = {
	{ "grant", 1, 1 },
	{ NULL, 0, 0 },
};
static const struct cli_opt out_opts[] = {
	{ "out", 1, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt revoke_opts[] = {
	{ "secret", 1, 0 },
	{ NULL, 0, 0 },
};

const struct cli_cmd cli_admin_cmds[] = {
	{ "client add", cmd_client_add, "ID --grant OP:GLOB ... [--out FILE]",
	    "Creates client ID with grants (OP: sign, verify, pubkey, admin; "
	    "GLOB "
	    "matches key names; --grant repeats) and prints its credentials "
	    "file once, "
	    "to FILE (mode 0600) or stdout.",
	    add_opts, 1, 1 },
	{ "client rotate", cmd_client_rotate, "ID [--out FILE]",
	    "Gives client ID a new secret (old ones stay valid until revoked) "
	    "and prints "
	    "the new credentials file once.",
	    out_opts, 1, 1 },
	{ "client revoke", cmd_client_revoke, "ID --secret N",
	    "Revokes secret number N of client ID.", revoke_opts, 1, 1 },
	{ "client grant", cmd_client_grant, "ID --grant OP:GLOB ...",
	    "Sets the grants of client ID to exactly the --grant values "
	    "(--grant repeats; grants not given are taken away; its secrets "
	    "stay) and shows the client.",
	    grant_opts, 1, 1 },
	{ "client list", cmd_client_list, "",
	    "Lists clients, their grants and secrets (number, created, "
	    "expires, last used).",
	    cli_no_opts, 0, 0 },
	{ "stats", cmd_stats, "",
	    "Counters since the service started, per key version (signs, "
	    "verifies, errors, last use) and per client secret (requests, "
	    "denials, last use; admins see every client's).",
	    cli_no_opts, 0, 0 },
	{ "health", cmd_health, "",
	    "Service version, token and audit log state, keys, workers, "
	    "uptime (exit 5 when the token or the audit log is unavailable).",
	    cli_no_opts, 0, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0 },
};
