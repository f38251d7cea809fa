/*
 * cli_key.c: the key commands of hsmkey: create, list, describe, sign,
 * verify, pubkey, rotate, promote, policy, disable, destroy.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "wire.h"

#define NAME_HINT "use [a-z0-9][a-z0-9._-]{0,63}"

/* Output */

/* When k rotates next, as the service's ticker decides it: "off", "waits"
 * (a staged version holds it back), or the time. */
static const char *
next_rotation(const struct hk_key_info *k, char *buf, size_t len)
{
	if (k->next_rotation_ms != 0) {
		return cli_fmt_time(k->next_rotation_ms, buf, len);
	}
	return k->rotate_every_s != 0 && k->primary != 0 ? "waits" : "off";
}

static void
print_key_text(FILE *f, const struct hk_key_info *k)
{
	const struct hk_version_info *v;
	char	    t1[64], t2[64], t3[64], d1[32], d2[32], d3[32], ver[16];
	const char *next;
	size_t	    i;

	fprintf(f, "key       %s\n", k->name);
	fprintf(f, "alg       %s\n", k->alg != NULL ? k->alg : "unknown");
	if (k->service_key) {
		fprintf(f,
		    "role      the service's own key: no client "
		    "signs with it\n");
	}
	fprintf(
	    f, "created   %s\n", cli_fmt_time(k->created_ms, t1, sizeof(t1)));
	if (k->primary != 0) {
		fprintf(f, "primary   v%" PRIu32 "\n", k->primary);
	} else {
		fprintf(f, "primary   none (no active version)\n");
	}
	if (k->has_policy) {
		fprintf(f,
		    "policy    sign-overlap %s, verify-grace %s, "
		    "rotate-every %s, expires %s\n",
		    cli_fmt_duration(k->sign_overlap_s, d1, sizeof(d1)),
		    cli_fmt_duration(k->verify_grace_s, d2, sizeof(d2)),
		    k->rotate_every_s == 0
			? "off"
			: cli_fmt_duration(k->rotate_every_s, d3, sizeof(d3)),
		    k->expires_ms == 0
			? "never"
			: cli_fmt_time(k->expires_ms, t1, sizeof(t1)));
		next = next_rotation(k, t1, sizeof(t1));
		fprintf(f, "next rotation: %s%s\n", next,
		    strcmp(next, "waits") == 0
			? " (a pending version: promote it)"
			: "");
	}
	fprintf(f, "versions\n");
	fprintf(f, "  %-8s %-18s %-21s %-21s %s\n", "VERSION", "STATE",
	    "CREATED", "ACTIVATED", "UNTIL");
	for (i = 0; i < k->n_versions; i++) {
		v = &k->versions[i];
		snprintf(ver, sizeof(ver), "v%" PRIu32 "%s", v->version,
		    v->primary ? "*" : "");
		fprintf(f, "  %-8s %-18s %-21s %-21s %s\n", ver, v->state,
		    cli_fmt_time(v->created_ms, t1, sizeof(t1)),
		    cli_fmt_time(v->activated_ms, t2, sizeof(t2)),
		    cli_fmt_time(v->retire_ms, t3, sizeof(t3)));
	}
	fprintf(f, "usage     since the service started\n");
	fprintf(f, "  %-8s %10s %10s %8s  %s\n", "VERSION", "SIGNS",
	    "VERIFIES", "ERRORS", "LAST-USE");
	for (i = 0; i < k->n_versions; i++) {
		v = &k->versions[i];
		snprintf(ver, sizeof(ver), "v%" PRIu32, v->version);
		fprintf(f,
		    "  %-8s %10" PRIu64 " %10" PRIu64 " %8" PRIu64 "  %s\n",
		    ver, v->signs, v->verifies, v->errors,
		    v->last_use_ms == 0
			? "never"
			: cli_fmt_time(v->last_use_ms, t1, sizeof(t1)));
	}
}

static void
print_key_json(struct json *j, const struct hk_key_info *k, uint32_t changed)
{
	const struct hk_version_info *v;
	size_t			      i;

	json_object_begin(j);
	json_kv_string(j, "name", k->name);
	if (changed != 0) {
		json_kv_u64(j, "version", changed);
	}
	json_kv_string(j, "alg", k->alg);
	json_kv_u64(j, "primary", k->primary);
	json_kv_bool(j, "service_key", k->service_key);
	cli_json_time(j, "created", k->created_ms);
	json_key(j, "policy");
	json_object_begin(j);
	json_kv_u64(j, "sign_overlap_s", k->sign_overlap_s);
	json_kv_u64(j, "verify_grace_s", k->verify_grace_s);
	json_kv_u64(j, "rotate_every_s", k->rotate_every_s);
	cli_json_time(j, "expires", k->expires_ms);
	json_object_end(j);
	cli_json_time(j, "next_rotation", k->next_rotation_ms);
	json_key(j, "versions");
	json_array_begin(j);
	for (i = 0; i < k->n_versions; i++) {
		v = &k->versions[i];
		json_object_begin(j);
		json_kv_u64(j, "version", v->version);
		json_kv_string(j, "state", v->state);
		json_kv_bool(j, "primary", v->primary);
		cli_json_time(j, "created", v->created_ms);
		cli_json_time(j, "activated", v->activated_ms);
		cli_json_time(j, "retire", v->retire_ms);
		json_kv_u64(j, "signs", v->signs);
		json_kv_u64(j, "verifies", v->verifies);
		json_kv_u64(j, "errors", v->errors);
		cli_json_time(j, "last_use", v->last_use_ms);
		json_object_end(j);
	}
	json_array_end(j);
	json_object_end(j);
}

void
cli_print_key(struct cli *c, const struct hk_key_info *k, uint32_t changed)
{
	if (c->json) {
		print_key_json(&c->j, k, changed);
	} else {
		print_key_text(stdout, k);
	}
}

/* Helpers */

static int
check_name(struct cli *c, const char *name)
{
	if (!hk_valid_key_name(name)) {
		return cli_usage(c, "invalid key name '%s': " NAME_HINT, name);
	}
	c->key = name;
	return 0;
}

static int
opt_version(struct cli *c, const struct cli_args *a, const char *opt,
    int required, uint32_t *vp)
{
	const char *s = cli_opt(a, opt);

	*vp = 0;
	if (s == NULL) {
		if (required) {
			return cli_usage(c, "missing --%s N", opt);
		}
		return 0;
	}
	if (cli_parse_u32(s, 0, vp) != 0) {
		return cli_usage(c,
		    "invalid --%s '%s': give a version "
		    "number, 1 or more",
		    opt, s);
	}
	return 0;
}

/* Ends a key call: r from an hk_key_*() call, printed as an error or,
 * with the summary line fmt (text), the key.  Frees res. */
static int key_done(struct cli *c, int r, struct hk_key_result *res,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
key_done(struct cli *c, int r, struct hk_key_result *res, const char *fmt, ...)
{
	va_list ap;

	if (r != 0) {
		hk_key_result_free(res);
		return cli_fail(c, r);
	}
	if (!c->json && fmt != NULL) {
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n\n");
	}
	cli_print_key(c, &res->key, res->key.changed);
	hk_key_result_free(res);
	return 0;
}

/* Reads the message of sign/verify (--in FILE, else stdin). */
static int
read_message(struct cli *c, const char *path, uint8_t **bufp, size_t *lenp)
{
	char err[256];
	int  r;

	if ((r = cli_read_input(path, HK_CLIENT_MAX_DATA, bufp, lenp, err,
		 sizeof(err))) != 0) {
		if (r == -2) {
			return cli_usage(c, "%s", err);
		}
		return cli_error(c, HSMKEY_EINVAL, "", "%s", err);
	}
	if (*lenp == 0) {
		free(*bufp);
		*bufp = NULL;
		return cli_usage(c,
		    "message is empty: give --in FILE, data "
		    "on stdin, or --digest HEX");
	}
	return 0;
}

static int
sig_flags(struct cli *c, const struct cli_args *a, int *flagsp)
{
	*flagsp = 0;
	if (cli_opt(a, "raw") != NULL) {
		*flagsp |= HSMKEY_SIG_RAW;
	}
	if (cli_opt(a, "pkcs1") != NULL) {
		*flagsp |= HSMKEY_RSA_PKCS1;
	}
	if (cli_opt(a, "in") != NULL && cli_opt(a, "digest") != NULL) {
		return cli_usage(c,
		    "give --in FILE or --digest HEX, not "
		    "both");
	}
	return 0;
}

/* The message or digest of sign/verify. */
static int
sig_data(struct cli *c, const struct cli_args *a, int *flagsp, uint8_t **datap,
    size_t *lenp)
{
	const char *hex = cli_opt(a, "digest"), *path;

	*datap = NULL;
	*lenp = 0;
	if (hex == NULL) {
		path = cli_opt(a, "in");
		if ((path == NULL || strcmp(path, "-") == 0) &&
		    isatty(STDIN_FILENO)) {
			fprintf(stderr,
			    "hsmkey: reading the message from "
			    "stdin (end it with Ctrl-D)\n");
		}
		return read_message(c, path, datap, lenp);
	}
	if (cli_parse_hex(hex, datap, lenp) != 0) {
		return cli_usage(c, "invalid --digest: not hex");
	}
	if (*lenp != 32 && *lenp != 48) {
		free(*datap);
		*datap = NULL;
		return cli_usage(c,
		    "invalid --digest: %zu bytes; give a "
		    "SHA-256 (32 bytes) or SHA-384 (48 bytes) digest",
		    *lenp);
	}
	*flagsp |= HSMKEY_DIGEST;
	return 0;
}

/* Commands */

static int
cmd_create(struct cli *c, struct cli_args *a)
{
	struct hk_key_result res;
	struct hsmkey	    *h;
	const char	    *alg = cli_opt(a, "alg");
	hk_alg		     al;
	char		     names[128];
	int		     r;

	if ((r = check_name(c, a->pos[0])) != 0) {
		return r;
	}
	if (alg != NULL && hk_alg_parse(alg, &al) != 0) {
		return cli_usage(c, "unknown algorithm '%s': use %s", alg,
		    hk_alg_list(names, sizeof(names)));
	}
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	r = hk_key_create(h, a->pos[0], alg, &res);
	return key_done(c, r, &res,
	    "created key '%s' (%s): v%" PRIu32 " is primary", res.key.name,
	    res.key.alg, res.key.primary);
}

/* The states in life-cycle order, for list's VERSIONS column. */
static const char *const list_states[] = { "pending", "active", "verify-only",
	"disabled", "destroy-scheduled", "destroyed" };

/* "2 active, 1 verify-only" into buf: k's versions counted by state. */
static const char *
list_versions(const struct hk_key_info *k, char *buf, size_t len)
{
	size_t i, j, n, used = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(list_states) / sizeof(list_states[0]); i++) {
		for (j = 0, n = 0; j < k->n_versions; j++) {
			n += strcmp(k->versions[j].state, list_states[i]) == 0;
		}
		if (n > 0 && used < len) {
			used += (size_t)snprintf(buf + used, len - used,
			    "%s%zu %s", used > 0 ? ", " : "", n,
			    list_states[i]);
		}
	}
	return used > 0 ? buf : "none";
}

/* One line a key: name, algorithm, primary, versions by state, the next
 * rotation, and what is special about it (describe has the detail).
 * Columns as wide as their widest cell. */
static void
list_table(const struct hk_key_list *l)
{
	char   ver[16], vers[160], next[64], line[512];
	size_t i, wn = strlen("NAME"), wv = strlen("VERSIONS");
	int    len;

	for (i = 0; i < l->n; i++) {
		size_t n =
		    strlen(list_versions(&l->keys[i], vers, sizeof(vers)));

		if (strlen(l->keys[i].name) > wn) {
			wn = strlen(l->keys[i].name);
		}
		if (n > wv) {
			wv = n;
		}
	}
	printf("%-*s  %-10s  %-7s  %-*s  %-20s  %s\n", (int)wn, "NAME", "ALG",
	    "PRIMARY", (int)wv, "VERSIONS", "NEXT-ROTATION", "NOTE");
	for (i = 0; i < l->n; i++) {
		const struct hk_key_info *k = &l->keys[i];

		if (k->primary != 0) {
			snprintf(ver, sizeof(ver), "v%" PRIu32, k->primary);
		} else {
			snprintf(ver, sizeof(ver), "none");
		}
		len = snprintf(line, sizeof(line),
		    "%-*s  %-10s  %-7s  %-*s  %-20s  %s", (int)wn, k->name,
		    k->alg != NULL ? k->alg : "unknown", ver, (int)wv,
		    list_versions(k, vers, sizeof(vers)),
		    next_rotation(k, next, sizeof(next)),
		    k->service_key ? "service key (no client signs with it)"
				   : "");
		/* no trailing blanks where the note is empty */
		while (len > 0 && (size_t)len < sizeof(line) &&
		    line[len - 1] == ' ') {
			line[--len] = '\0';
		}
		printf("%s\n", line);
	}
}

static void
key_item(struct cli *c, const void *k)
{
	cli_print_key(c, k, 0);
}

static int
cmd_list(struct cli *c, struct cli_args *a)
{
	struct hk_key_list l;
	struct hsmkey	  *h;
	int		   r;

	(void)a;
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if ((r = hk_key_list(h, &l)) != 0) {
		hk_key_list_free(&l);
		return cli_fail(c, r);
	}
	if (c->json) {
		cli_print_list(
		    c, "keys", "", l.keys, l.n, sizeof(*l.keys), key_item);
	} else if (l.n == 0) {
		printf("no keys (create one with 'hsmkey create NAME')\n");
	} else {
		list_table(&l);
	}
	hk_key_list_free(&l);
	return 0;
}

static int
describe(struct cli *c, const char *name)
{
	struct hk_key_result res;
	struct hsmkey	    *h;
	int		     r;

	if ((r = check_name(c, name)) != 0 || (r = cli_handle(c, &h)) != 0) {
		return r;
	}
	r = hk_key_describe(h, name, &res);
	res.key.changed = 0;
	return key_done(c, r, &res, NULL);
}

static int
cmd_describe(struct cli *c, struct cli_args *a)
{
	return describe(c, a->pos[0]);
}

static int
cmd_sign(struct cli *c, struct cli_args *a)
{
	struct hsmkey *h;
	uint8_t	      *data = NULL;
	size_t	       len = 0;
	uint32_t       version;
	char	      *sig = NULL, *end;
	int	       r, flags;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_version(c, a, "version", 0, &version)) != 0 ||
	    (r = sig_flags(c, a, &flags)) != 0 ||
	    (r = cli_jws_check(c, a)) != 0 ||
	    (r = sig_data(c, a, &flags, &data, &len)) != 0) {
		goto out;
	}
	if ((r = cli_handle(c, &h)) != 0) {
		goto out;
	}
	if (cli_opt(a, "jws") != NULL) {
		r = cli_sign_jws(c, h, a->pos[0], data, len, flags);
		goto out;
	}
	if ((r = hsmkey_sign_ex(
		 h, a->pos[0], data, len, version, flags, &sig)) != 0) {
		r = cli_fail(c, r);
		goto out;
	}
	if (c->json) {
		/* "hsmkey:v<N>:..." */
		version = (uint32_t)strtoul(sig + 8, &end, 10);
		json_object_begin(&c->j);
		json_kv_string(&c->j, "key", a->pos[0]);
		json_kv_u64(&c->j, "version", version);
		json_kv_string(&c->j, "signature", sig);
		json_object_end(&c->j);
	} else {
		printf("%s\n", sig);
	}
	r = 0;
out:
	free(sig);
	free(data);
	return r;
}

/* --sig TEXT or --sig @FILE. */
static int
read_sig(struct cli *c, const char *arg, char **sigp)
{
	uint8_t *buf = NULL;
	size_t	 len = 0;
	char	 err[256], *s;

	*sigp = NULL;
	if (arg == NULL) {
		return cli_usage(c,
		    "missing --sig SIG (the hsmkey:vN:... "
		    "text, or @FILE)");
	}
	if (arg[0] != '@') {
		*sigp = xstrdup(arg);
		return 0;
	}
	if (cli_read_input(arg + 1, 64 * 1024, &buf, &len, err, sizeof(err)) !=
	    0) {
		return cli_usage(c, "--sig %s: %s", arg, err);
	}
	s = xmalloc(len + 1);
	memcpy(s, buf, len);
	s[len] = '\0';
	free(buf);
	if (strlen(s) != len) {
		free(s);
		return cli_usage(c, "--sig %s: not a text file", arg);
	}
	while (len > 0 &&
	    (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' ||
		s[len - 1] == '\t')) {
		s[--len] = '\0';
	}
	*sigp = s;
	return 0;
}

static int
cmd_verify(struct cli *c, struct cli_args *a)
{
	struct hsmkey_verify_result res;
	struct hsmkey		   *h;
	uint8_t			   *data = NULL, *raw = NULL;
	size_t			    len = 0, rawlen;
	uint32_t		    v;
	char			   *sig = NULL, t[64];
	int			    r, flags;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = sig_flags(c, a, &flags)) != 0 ||
	    (r = read_sig(c, cli_opt(a, "sig"), &sig)) != 0) {
		goto out;
	}
	if (hk_sigtext_parse(sig, &v, &raw, &rawlen) != 0) {
		r = cli_usage(c,
		    "invalid --sig: expected the text form "
		    "hsmkey:v<N>:<base64>");
		goto out;
	}
	if ((r = sig_data(c, a, &flags, &data, &len)) != 0) {
		goto out;
	}
	if ((r = cli_handle(c, &h)) != 0) {
		goto out;
	}
	if ((r = hsmkey_verify_ex(
		 h, a->pos[0], data, len, flags, sig, &res)) != 0) {
		r = cli_fail(c, r);
		goto out;
	}
	if (c->json) {
		json_object_begin(&c->j);
		json_kv_bool(&c->j, "valid", res.valid);
		json_kv_u64(&c->j, "version", res.version);
		json_kv_string(
		    &c->j, "state", res.state[0] != '\0' ? res.state : NULL);
		cli_json_time(&c->j, "retire", res.retire_ms);
		json_object_end(&c->j);
	} else if (res.valid) {
		printf("valid: signed by %s v%" PRIu32 " (%s)", a->pos[0],
		    res.version, res.state[0] != '\0' ? res.state : "unknown");
		if (res.retire_ms != 0) {
			printf(", retires %s",
			    cli_fmt_time(res.retire_ms, t, sizeof(t)));
		}
		printf("\n");
	} else if (strcmp(res.state, "disabled") == 0 ||
	    strcmp(res.state, "destroy-scheduled") == 0 ||
	    strcmp(res.state, "destroyed") == 0 ||
	    strcmp(res.state, "pending") == 0) {
		printf("invalid signature: %s v%" PRIu32 " is %s\n", a->pos[0],
		    res.version, res.state);
	} else {
		printf("invalid signature\n");
	}
	r = res.valid ? 0 : EXIT_INVALID;
out:
	free(raw);
	free(data);
	free(sig);
	return r;
}

static int
cmd_pubkey(struct cli *c, struct cli_args *a)
{
	struct hk_pubkey pk;
	const char	*out = cli_opt(a, "out");
	int		 der = cli_opt(a, "der") != NULL;
	struct hsmkey	*h;
	uint32_t	 version;
	char		*b64 = NULL;
	int		 r;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_version(c, a, "version", 0, &version)) != 0) {
		return r;
	}
	if (cli_opt(a, "all") != NULL) {
		return cli_pubkey_all(c, a);
	}
	if (der && !c->json && (out == NULL || strcmp(out, "-") == 0) &&
	    isatty(STDOUT_FILENO)) {
		return cli_usage(c,
		    "refusing to write DER to a terminal: "
		    "give --out FILE or redirect stdout");
	}
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if ((r = hk_key_pubkey(h, a->pos[0], version, &pk)) != 0) {
		hk_pubkey_free(&pk);
		return cli_fail(c, r);
	}
	if (pk.der_len == 0 || *pk.pem == '\0') {
		r = cli_error(c, HSMKEY_EPROTO, "",
		    "reply carries no public "
		    "key");
		goto out;
	}
	if (!c->json) {
		r = der ? cli_write_out(c, out, pk.der, pk.der_len)
			: cli_write_out(c, out, pk.pem, strlen(pk.pem));
		goto out;
	}
	if (out != NULL &&
	    (r = cli_write_out(c, out, der ? pk.der : (const void *)pk.pem,
		 der ? pk.der_len : strlen(pk.pem))) != 0) {
		goto out;
	}
	if (hk_base64_encode(pk.der, pk.der_len, &b64) != 0) {
		r = cli_error(c, HSMKEY_ENOMEM, "", "out of memory");
		goto out;
	}
	json_object_begin(&c->j);
	json_kv_string(&c->j, "key", a->pos[0]);
	json_kv_u64(&c->j, "version", pk.version);
	json_kv_string(&c->j, "alg", pk.alg);
	json_kv_string(&c->j, "pem", pk.pem);
	json_kv_string(&c->j, "der", b64);
	json_object_end(&c->j);
	r = 0;
out:
	free(b64);
	hk_pubkey_free(&pk);
	return r;
}

static int
cmd_rotate(struct cli *c, struct cli_args *a)
{
	struct hk_key_result res;
	struct hsmkey	    *h;
	const char	    *name = a->pos[0];
	uint32_t	     expect, n;
	int		     r, stage = cli_opt(a, "stage") != NULL;
	int		     emergency = cli_opt(a, "emergency") != NULL;

	if (stage && emergency) {
		return cli_usage(c,
		    "--stage and --emergency do not go together: an emergency "
		    "rotation makes the new version primary at once");
	}
	if (cli_opt(a, "yes") != NULL && !emergency) {
		return cli_usage(c, "--yes confirms --emergency only");
	}
	if ((r = check_name(c, name)) != 0 ||
	    (r = opt_version(c, a, "expect", 0, &expect)) != 0 ||
	    (r = cli_handle(c, &h)) != 0) {
		return r;
	}
	if (emergency && cli_opt(a, "yes") == NULL &&
	    (r = cli_confirm_emergency(c, h, name, &expect)) != 0) {
		return r;
	}
	r = hk_key_rotate(h, name, expect,
	    (stage ? HSMKEY_ROTATE_STAGE : 0) |
		(emergency ? HSMKEY_ROTATE_EMERGENCY : 0),
	    &res);
	n = res.key.changed;
	if (emergency) {
		return key_done(c, r, &res,
		    "rotated '%s' in an emergency: v%" PRIu32 " is primary; "
		    "every older version is disabled",
		    name, n);
	}
	if (stage) {
		return key_done(c, r, &res,
		    "rotated '%s': v%" PRIu32 " is pending; "
		    "make it primary with 'hsmkey promote %s --version "
		    "%" PRIu32 "'",
		    name, n, name, n);
	}
	return key_done(
	    c, r, &res, "rotated '%s': v%" PRIu32 " is primary", name, n);
}

/*
 * Runs op on version --version of the key the command names, into *res.
 * Returns an exit code (> 0, reported) when the command line or the
 * connection is wrong, else what hk_key_version_op() returned: hand that
 * and *res to key_done().
 */
static int
version_op(struct cli *c, struct cli_args *a, enum hk_key_op op, uint32_t *vp,
    struct hk_key_result *res)
{
	struct hsmkey *h;
	int	       r;

	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_version(c, a, "version", 1, vp)) != 0 ||
	    (r = cli_handle(c, &h)) != 0) {
		return r;
	}
	return hk_key_version_op(h, op, a->pos[0], *vp, res);
}

static int
cmd_promote(struct cli *c, struct cli_args *a)
{
	struct hk_key_result res;
	uint32_t	     v;
	int		     r;

	if ((r = version_op(c, a, HK_KEY_PROMOTE, &v, &res)) > 0) {
		return r;
	}
	return key_done(c, r, &res,
	    "promoted '%s' v%" PRIu32 ": primary is v%" PRIu32, a->pos[0], v,
	    res.key.primary);
}

static int
opt_duration(struct cli *c, const struct cli_args *a, const char *opt,
    uint64_t *v, const uint64_t **vp)
{
	const char *s = cli_opt(a, opt);

	if (s == NULL) {
		return 0;
	}
	if (hk_parse_duration(s, v) != 0) {
		return cli_usage(c,
		    "invalid --%s '%s': give a duration like "
		    "90, 30s, 15m, 12h or 7d, at most 100 years (36525d)",
		    opt, s);
	}
	*vp = v;
	return 0;
}

static int
cmd_policy(struct cli *c, struct cli_args *a)
{
	struct hk_policy_change pc;
	struct hk_key_result	res;
	struct hsmkey	       *h;
	uint64_t		so, vg, re, ex;
	const char	       *exp = cli_opt(a, "expires");
	int			r;

	memset(&pc, 0, sizeof(pc));
	if ((r = check_name(c, a->pos[0])) != 0 ||
	    (r = opt_duration(
		 c, a, "sign-overlap", &so, &pc.sign_overlap_s)) != 0 ||
	    (r = opt_duration(
		 c, a, "verify-grace", &vg, &pc.verify_grace_s)) != 0 ||
	    (r = opt_duration(
		 c, a, "rotate-every", &re, &pc.rotate_every_s)) != 0) {
		return r;
	}
	if (exp != NULL) {
		if (cli_parse_expiry(exp, &ex) != 0) {
			return cli_usage(c,
			    "invalid --expires '%s': give "
			    "never, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ",
			    exp);
		}
		pc.expires_ms = &ex;
	}
	if (pc.sign_overlap_s == NULL && pc.verify_grace_s == NULL &&
	    pc.rotate_every_s == NULL && pc.expires_ms == NULL) {
		/* nothing to change: show the policy */
		return describe(c, a->pos[0]);
	}
	if ((r = cli_handle(c, &h)) != 0) {
		return r;
	}
	r = hk_key_policy(h, a->pos[0], &pc, &res);
	return key_done(c, r, &res, "updated the policy of '%s'", a->pos[0]);
}

static int
cmd_disable(struct cli *c, struct cli_args *a)
{
	struct hk_key_result res;
	uint32_t	     v;
	int		     r;

	if ((r = version_op(c, a, HK_KEY_DISABLE, &v, &res)) > 0) {
		return r;
	}
	return key_done(c, r, &res, "disabled '%s' v%" PRIu32, a->pos[0], v);
}

static int
cmd_destroy(struct cli *c, struct cli_args *a)
{
	struct hk_key_result	      res;
	const struct hk_version_info *vi = NULL;
	uint32_t		      v;
	size_t			      i;
	char			      t[64];
	int			      r;

	if (cli_opt(a, "cancel") != NULL) {
		if ((r = version_op(c, a, HK_KEY_CANCEL, &v, &res)) > 0) {
			return r;
		}
		return key_done(c, r, &res,
		    "cancelled the destruction of '%s' v%" PRIu32
		    ": it is disabled, with the same key",
		    a->pos[0], v);
	}
	if ((r = version_op(c, a, HK_KEY_DESTROY, &v, &res)) > 0) {
		return r;
	}
	for (i = 0; r == 0 && i < res.key.n_versions; i++) {
		if (res.key.versions[i].version == v) {
			vi = &res.key.versions[i];
		}
	}
	if (vi != NULL && vi->destroy_scheduled) {
		return key_done(c, r, &res,
		    "'%s' v%" PRIu32 " will be destroyed at %s", a->pos[0], v,
		    cli_fmt_time(vi->retire_ms, t, sizeof(t)));
	}
	return key_done(c, r, &res, "destroyed '%s' v%" PRIu32, a->pos[0], v);
}

static const struct cli_opt create_opts[] = {
	{ "alg", 1, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt sign_opts[] = {
	{ "in", 1, 0 },
	{ "digest", 1, 0 },
	{ "version", 1, 0 },
	{ "raw", 0, 0 },
	{ "pkcs1", 0, 0 },
	{ "jws", 0, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt verify_opts[] = {
	{ "sig", 1, 0 },
	{ "in", 1, 0 },
	{ "digest", 1, 0 },
	{ "raw", 0, 0 },
	{ "pkcs1", 0, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt pubkey_opts[] = {
	{ "version", 1, 0 },
	{ "der", 0, 0 },
	{ "out", 1, 0 },
	{ "all", 0, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt rotate_opts[] = {
	{ "expect", 1, 0 },
	{ "stage", 0, 0 },
	{ "emergency", 0, 0 },
	{ "yes", 0, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt destroy_opts[] = {
	{ "version", 1, 0 },
	{ "cancel", 0, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt version_opts[] = {
	{ "version", 1, 0 },
	{ NULL, 0, 0 },
};
static const struct cli_opt policy_opts[] = {
	{ "sign-overlap", 1, 0 },
	{ "verify-grace", 1, 0 },
	{ "rotate-every", 1, 0 },
	{ "expires", 1, 0 },
	{ NULL, 0, 0 },
};

const struct cli_cmd cli_key_cmds[] = {
	{ "create", cmd_create, "NAME [--alg ALG]",
	    "Creates a key in the token; version 1 is primary. ALG: "
	    "ecdsa-p256 (default), "
	    "ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096.",
	    create_opts, 1, 1 },
	{ "list", cmd_list, "",
	    "Lists the keys, one line each: name, algorithm, primary version, "
	    "versions by state, next automatic rotation, and a note for the "
	    "service's own keys ('describe NAME' has the detail; --json: "
	    "every key in full).",
	    cli_no_opts, 0, 0 },
	{ "describe", cmd_describe, "NAME",
	    "Shows one key: algorithm, primary version, policy, and each "
	    "version's "
	    "state and dates (UTC; UNTIL: when it leaves that state).",
	    cli_no_opts, 1, 1 },
	{ "sign", cmd_sign,
	    "NAME [--in FILE] [--digest HEX] [--version N] [--raw] [--pkcs1] "
	    "[--jws]",
	    "Signs the message in FILE (default: stdin), or a SHA-256/384 "
	    "digest given "
	    "in hex, with the primary version (or version N). Prints "
	    "hsmkey:vN:<base64>. "
	    "--raw: ECDSA r||s instead of DER; --pkcs1: RSA PKCS#1 v1.5 "
	    "instead of PSS. --jws: prints a compact JWS (RFC 7515) over "
	    "FILE, kid NAME/vN of the primary.",
	    sign_opts, 1, 1 },
	{ "verify", cmd_verify,
	    "NAME --sig SIG [--in FILE] [--digest HEX] [--raw] [--pkcs1]",
	    "Verifies SIG (hsmkey:vN:..., or @FILE holding it) over the "
	    "message in FILE "
	    "(default: stdin) or a digest. Exit 0 valid, 1 invalid (also "
	    "when the "
	    "version is disabled).",
	    verify_opts, 1, 1 },
	{ "pubkey", cmd_pubkey,
	    "NAME [--version N] [--der] [--out FILE] [--all]",
	    "Prints the public key (SubjectPublicKeyInfo) of the primary "
	    "version, or N, "
	    "as PEM; --der writes DER. --out FILE writes to FILE. --all: "
	    "every version in the key set (see jwks), PEM blocks in version "
	    "order.",
	    pubkey_opts, 1, 1 },
	{ "rotate", cmd_rotate,
	    "NAME [--expect N] [--stage | --emergency [--yes]]",
	    "Makes a new version and makes it primary. --expect N: fail "
	    "unless N is "
	    "the newest version (exit 5 when another rotation won). "
	    "--stage: the new "
	    "version stays pending until 'promote'. --emergency: every older "
	    "version is disabled at once (its signatures no longer verify); "
	    "asks on the terminal unless --yes.",
	    rotate_opts, 1, 1 },
	{ "promote", cmd_promote, "NAME --version N",
	    "Makes pending version N active and primary.", version_opts, 1,
	    1 },
	{ "policy", cmd_policy,
	    "NAME [--sign-overlap D] [--verify-grace D] [--rotate-every D] "
	    "[--expires T]",
	    "Changes the given policy fields (D: 90, 30s, 15m, 12h, 7d; "
	    "--rotate-every 0: "
	    "off; T: never, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ). No flag: "
	    "shows the key.",
	    policy_opts, 1, 1 },
	{ "disable", cmd_disable, "NAME --version N",
	    "Disables version N: it no longer signs or verifies.",
	    version_opts, 1, 1 },
	{ "destroy", cmd_destroy, "NAME --version N [--cancel]",
	    "Schedules version N for destruction: after a delay (default 7 "
	    "days) its "
	    "objects are deleted from the token. --cancel: within the delay, "
	    "puts it back to disabled with the same key.",
	    destroy_opts, 1, 1 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0 },
};
